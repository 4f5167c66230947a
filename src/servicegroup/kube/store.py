"""The informer's cache: `key -> object` plus named indexes.

Single event loop, so no locks. Objects in the store are shared with every reader and are never
mutated: callers `deep_copy` before building a change (client-go's "read-only cache" rule). Index
functions map an object to a list of index values (owner uid, label value, node name ...) so
handlers find related objects without an API call.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from servicegroup.kube.objects import ObjectKey, meta

Obj = dict[str, Any]
IndexFunc = Callable[[Obj], list[str]]


def object_key(obj: Mapping[str, Any]) -> str:
    """Store key of an object: `ns/name`, or `name` when cluster-scoped."""
    return str(ObjectKey.from_object(obj))


def namespace_index(obj: Obj) -> list[str]:
    """Index function: the object's namespace."""
    return [meta(obj).get("namespace") or ""]


def owner_uid_index(obj: Obj) -> list[str]:
    """Index function: the uids of every owner reference (find children of a parent by uid)."""
    return [ref["uid"] for ref in meta(obj).get("ownerReferences") or [] if ref.get("uid")]


def controller_uid_index(obj: Obj) -> list[str]:
    """Index function: the uid of the controller owner reference only."""
    refs = meta(obj).get("ownerReferences") or []
    return [ref["uid"] for ref in refs if ref.get("controller") and ref.get("uid")]


def label_index(label: str) -> IndexFunc:
    """Index function factory: the value of one label (objects without it are not indexed)."""

    def index(obj: Obj) -> list[str]:
        value = (meta(obj).get("labels") or {}).get(label)
        return [] if value is None else [value]

    return index


def label_keys_index(obj: Obj) -> list[str]:
    """Index function: every label key the object carries (e.g. nodes by gridUniqKey)."""
    return list(meta(obj).get("labels") or {})


class Store:
    """Map of key -> object with named secondary indexes, kept in step on every write."""

    def __init__(self) -> None:
        self._items: dict[str, Obj] = {}
        self._index_funcs: dict[str, IndexFunc] = {}
        self._indexes: dict[str, dict[str, set[str]]] = {}

    # -- reads -----------------------------------------------------------------------------------

    def get(self, key: str | ObjectKey) -> Obj | None:
        """The object stored under `key` (`"ns/name"` or an ObjectKey), or None."""
        return self._items.get(str(key))

    def list(self) -> builtins.list[Obj]:
        """Every object, in no particular order."""
        return list(self._items.values())

    def keys(self) -> builtins.list[str]:
        """Every key."""
        return list(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return str(key) in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._items))

    # -- indexes ---------------------------------------------------------------------------------

    def add_index(self, name: str, fn: IndexFunc) -> None:
        """Register an index and build it over the current contents (may be added at any time)."""
        if name in self._index_funcs:
            raise ValueError(f"index {name!r} already exists")
        self._index_funcs[name] = fn
        self._indexes[name] = {}
        for key, obj in self._items.items():
            self._index_one(name, key, obj)

    def has_index(self, name: str) -> bool:
        """Whether an index of that name is registered."""
        return name in self._index_funcs

    def index_keys(self, name: str, value: str) -> builtins.list[str]:
        """Keys of the objects whose index function returned `value`."""
        try:
            index = self._indexes[name]
        except KeyError:
            raise KeyError(f"no index named {name!r}") from None
        return sorted(index.get(value, ()))

    def by_index(self, name: str, value: str) -> builtins.list[Obj]:
        """Objects whose index function returned `value` (sorted by key, so results are stable)."""
        return [self._items[key] for key in self.index_keys(name, value)]

    def index_values(self, name: str) -> builtins.list[str]:
        """Every value currently present in an index."""
        return sorted(self._indexes[name])

    # -- writes (the informer's) -----------------------------------------------------------------

    def upsert(self, obj: Obj) -> Obj | None:
        """Insert or replace an object; returns the previous one."""
        key = object_key(obj)
        old = self._items.get(key)
        if old is not None:
            self._unindex(key, old)
        self._items[key] = obj
        for name in self._index_funcs:
            self._index_one(name, key, obj)
        return old

    def delete(self, key: str | ObjectKey) -> Obj | None:
        """Remove an object; returns it (None when absent)."""
        old = self._items.pop(str(key), None)
        if old is not None:
            self._unindex(str(key), old)
        return old

    def _index_one(self, name: str, key: str, obj: Obj) -> None:
        index = self._indexes[name]
        for value in self._index_funcs[name](obj):
            index.setdefault(value, set()).add(key)

    def _unindex(self, key: str, obj: Obj) -> None:
        for name, fn in self._index_funcs.items():
            index = self._indexes[name]
            for value in fn(obj):
                keys = index.get(value)
                if keys is not None:
                    keys.discard(key)
                    if not keys:
                        del index[value]
