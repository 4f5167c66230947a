"""Server-side apply: field ownership (`metadata.managedFields`), the apply merge, and conflicts.

A structured-merge-diff model reduced to what clients observe. An object's fields are paths of
`f:name` (map keys and struct fields), `k:{"name":"c"}` (items of `x-kubernetes-list-type: map`
lists), and `v:"x"` (items of `set` lists); atomic maps and lists, scalars and empty maps are
leaves. The types come from the built-in OpenAPI schemas and CRD schemas.

* Apply by manager M: the applied configuration is merged into the live object (maps and keyed
  lists field by field, sets by union, everything else replaced); fields M applied before and
  dropped now are removed unless another manager also owns them; a field the configuration sets to
  a value other than the live one while another manager owns it is a conflict (409), unless
  `force` moves its ownership to M. M's Apply entry then owns exactly the applied fields.
* Any other write to an object that has managedFields (an Update) gives its field manager the
  fields it changed, taking them from the others, as kube-apiserver records it.

Objects never applied carry no managedFields: the sandbox does not track plain writes to them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from servicegroup.sandbox import errors, openapi
from servicegroup.sandbox.errors import StatusError
from servicegroup.sandbox.resources import ResourceType

Obj = dict[str, Any]
Schema = dict[str, Any]
Path = tuple[str, ...]
Leaves = dict[Path, Any]
# The built-in schemas (from kubernetes-validate) lack kube's `+default=` markers; the one defaulted
# key of built-in keyed lists is a port's protocol (containers, Services, EndpointSlices).
_KEY_DEFAULTS = {"protocol": "TCP"}
_MEMBER = object()  # the value recorded for a keyed-list or set item: present, compared by identity
_IGNORED_META = (
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "selfLink",
)


def schema_of(rt: ResourceType) -> Schema | None:
    """The root schema of a served type: the CRD version's, or the built-in definition."""
    if rt.custom:
        source: Schema | None = getattr(rt.schema, "source", None)
        return source
    name = openapi.definition_name(rt.group, rt.kind, rt.version)
    return openapi.builtin_schemas().get(name) if name else None


def _ext(schema: Schema | None, key: str) -> Any:
    """An `x-kubernetes-*` extension, beside a `$ref` or on the definition it points to."""
    for node in (schema, openapi.resolve(schema)):
        if node is not None and key in node:
            return node[key]
    return None


def _key_element(item: Obj, keys: list[str], item_schema: Schema | None) -> str:
    """`k:{...}` of a keyed-list item; a key field left out takes its schema default (port protocols)."""
    fields = {}
    for key in sorted(keys):
        value = item.get(key)
        if value is None:
            value = (openapi.resolve(openapi.child(item_schema, key)) or {}).get(
                "default", _KEY_DEFAULTS.get(key)
            )
        if value is not None:
            fields[key] = value
    return "k:" + orjson.dumps(fields).decode()


def _value_element(value: Any) -> str:
    return "v:" + orjson.dumps(value).decode()


def strip(rt: ResourceType, obj: Obj, *, status: bool) -> Obj:
    """The part of an object fields are tracked for: no type or server metadata; status only if asked."""
    out = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "status")}
    meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k not in _IGNORED_META}
    if meta:
        out["metadata"] = meta
    else:
        out.pop("metadata", None)
    if status and "status" in obj:
        out["status"] = obj["status"]
    return out


def leaves(value: Any, schema: Schema | None, path: Path = ()) -> Leaves:
    """Every field path of `value` with its value (keyed-list and set items: present)."""
    out: Leaves = {}
    _walk(value, schema, path, out)
    return out


def _walk(value: Any, schema: Schema | None, path: Path, out: Leaves) -> None:
    if isinstance(value, dict) and value and _ext(schema, "x-kubernetes-map-type") != "atomic":
        for key, sub in value.items():
            _walk(sub, openapi.child(schema, key), (*path, f"f:{key}"), out)
        return
    kind = _ext(schema, "x-kubernetes-list-type") if isinstance(value, list) and value else None
    if kind == "map":
        keys = list(_ext(schema, "x-kubernetes-list-map-keys") or [])
        item_schema = openapi.items(schema)
        for item in value:
            if not isinstance(item, dict):
                continue
            item_path = (*path, _key_element(item, keys, item_schema))
            out[item_path] = _MEMBER
            for key, sub in item.items():
                _walk(sub, openapi.child(item_schema, key), (*item_path, f"f:{key}"), out)
        return
    if kind == "set":
        for item in value:
            out[(*path, _value_element(item))] = _MEMBER
        return
    if path:
        out[path] = value


# ---------------------------------------------------------------------------------------------
# FieldsV1


def to_fields_v1(paths: Iterable[Path]) -> Obj:
    """The FieldsV1 tree of a path set; "." marks a path that is a member and has children."""
    members = set(paths)
    root: Obj = {}
    for path in members:
        node = root
        for element in path:
            node = node.setdefault(element, {})
    for path in members:
        node = root
        for element in path:
            node = node[element]
        if node:
            node["."] = {}
    return _sorted_tree(root)


def _sorted_tree(node: Obj) -> Obj:
    return {k: _sorted_tree(node[k]) for k in sorted(node, key=lambda k: (k != ".", k))}


def from_fields_v1(tree: Any, prefix: Path = ()) -> set[Path]:
    """The path set of a FieldsV1 tree (malformed parts are ignored)."""
    out: set[Path] = set()
    if not isinstance(tree, dict):
        return out
    for key, sub in tree.items():
        if key == ".":
            out.add(prefix)
        elif isinstance(sub, dict) and sub:
            out |= from_fields_v1(sub, (*prefix, key))
        else:
            out.add((*prefix, key))
    return out


def path_string(path: Path) -> str:
    """A path as structured-merge-diff prints it: `.spec.containers[name="c"].image`."""
    out = []
    for element in path:
        kind, _, text = element.partition(":")
        if kind == "f":
            out.append(f".{text}")
        elif kind == "k":
            fields = orjson.loads(text)
            out.append("[" + ",".join(f"{k}={orjson.dumps(v).decode()}" for k, v in fields.items()) + "]")
        else:
            out.append(f"[={text}]")
    return "".join(out)


# ---------------------------------------------------------------------------------------------
# Managed fields entries


class Owners:
    """The managedFields entries of one object, with their path sets decoded."""

    def __init__(self, entries: Any) -> None:
        self.entries: list[tuple[Obj, set[Path]]] = [
            (entry, from_fields_v1(entry.get("fieldsV1")))
            for entry in entries or []
            if isinstance(entry, dict) and entry.get("manager") is not None
        ]

    def others(self, manager: str, operation: str, subresource: str) -> Iterable[tuple[Obj, set[Path]]]:
        return (e for e in self.entries if _identity(e[0]) != (manager, operation, subresource))

    def owned(self, manager: str, operation: str, subresource: str) -> set[Path]:
        for entry, paths in self.entries:
            if _identity(entry) == (manager, operation, subresource):
                return paths
        return set()

    def set(self, entry: Obj, paths: set[Path]) -> None:
        """Replace (in place) or append the entry with `entry`'s identity."""
        for i, (old, _) in enumerate(self.entries):
            if _identity(old) == _identity(entry):
                self.entries[i] = (entry, paths)
                return
        self.entries.append((entry, paths))

    def to_json(self) -> list[Obj]:
        """The managedFields list: entries that still own something, with their FieldsV1 trees."""
        return [{**entry, "fieldsV1": to_fields_v1(paths)} for entry, paths in self.entries if paths]


def _identity(entry: Obj) -> tuple[str, str, str]:
    return (str(entry.get("manager")), str(entry.get("operation")), str(entry.get("subresource") or ""))


def _entry(rt: ResourceType, manager: str, operation: str, now: str, subresource: str = "") -> Obj:
    entry: Obj = {
        "manager": manager,
        "operation": operation,
        "apiVersion": rt.api_version,
        "time": now,
        "fieldsType": "FieldsV1",
    }
    if subresource:
        entry["subresource"] = subresource
    return entry


def _print_manager(entry: Obj) -> str:
    name = orjson.dumps(entry.get("manager")).decode()
    if entry.get("subresource"):
        name += f' with subresource "{entry["subresource"]}"'
    if entry.get("operation") == "Update":
        name += f" using {entry.get('apiVersion')}"  # managers are identified without their time
    return name


def conflict_error(conflicts: list[tuple[Obj, Path]]) -> StatusError:
    """409 Conflict worded like the field manager's, one FieldManagerConflict cause per field."""
    causes = [
        {
            "reason": "FieldManagerConflict",
            "message": f"conflict with {_print_manager(e)}",
            "field": path_string(p),
        }
        for e, p in conflicts
    ]
    if len(conflicts) == 1:
        entry, path = conflicts[0]
        message = f"Apply failed with 1 conflict: conflict with {_print_manager(entry)}: {path_string(path)}"
    else:
        by_manager: dict[str, list[str]] = {}
        for entry, path in conflicts:
            by_manager.setdefault(_print_manager(entry), []).append(f"- {path_string(path)}")
        lines = [
            line for name in sorted(by_manager) for line in (f"conflicts with {name}:", *by_manager[name])
        ]
        message = f"Apply failed with {len(conflicts)} conflicts: " + "\n".join(lines)
    return StatusError(409, "Conflict", message, {"causes": causes})


# ---------------------------------------------------------------------------------------------
# Apply


def merge(live: Any, config: Any, schema: Schema | None) -> Any:
    """`config` merged into `live`: maps and keyed lists field by field, sets by union."""
    if (
        isinstance(config, dict)
        and isinstance(live, dict)
        and _ext(schema, "x-kubernetes-map-type") != "atomic"
    ):
        out = dict(live)
        for key, value in config.items():
            out[key] = merge(live.get(key), value, openapi.child(schema, key)) if key in live else value
        return out
    kind = (
        _ext(schema, "x-kubernetes-list-type")
        if isinstance(config, list) and isinstance(live, list)
        else None
    )
    if kind == "map":
        keys = list(_ext(schema, "x-kubernetes-list-map-keys") or [])
        item_schema = openapi.items(schema)
        applied = {_key_element(i, keys, item_schema): i for i in config if isinstance(i, dict)}
        out_items = []
        for item in live:
            key = _key_element(item, keys, item_schema) if isinstance(item, dict) else None
            out_items.append(merge(item, applied.pop(key), item_schema) if key in applied else item)
        return out_items + list(applied.values())
    if kind == "set":
        return live + [item for item in config if item not in live]
    return config


def _remove(obj: Any, path: Path) -> None:
    """Delete the field or list item at `path` (absent paths are ignored)."""
    parent: Any = obj
    for element in path[:-1]:
        parent = _step(parent, element)
        if parent is None:
            return
    last = path[-1]
    if last.startswith("f:") and isinstance(parent, dict):
        parent.pop(last[2:], None)
    elif isinstance(parent, list):
        parent[:] = [item for item in parent if not _is_element(item, last)]


def _step(node: Any, element: str) -> Any:
    if element.startswith("f:"):
        return node.get(element[2:]) if isinstance(node, dict) else None
    if isinstance(node, list):
        return next((item for item in node if _is_element(item, element)), None)
    return None


def _is_element(item: Any, element: str) -> bool:
    if element.startswith("k:"):
        fields = orjson.loads(element[2:])
        return isinstance(item, dict) and all(item.get(k) == v for k, v in fields.items())
    return element.startswith("v:") and _value_element(item) == element


def _prune_empty(obj: Any, path: Path, kept: set[Path]) -> None:
    """Drop containers a removal left empty, walking up, unless someone owns them."""
    for end in range(len(path) - 1, 0, -1):
        parent = path[:end]
        node: Any = obj
        for element in parent:
            node = _step(node, element)
        if node not in ({}, []) or parent in kept:
            return
        _remove(obj, parent)


def apply(
    rt: ResourceType,
    live: Obj | None,
    config: Obj,
    manager: str,
    *,
    force: bool,
    now: str,
) -> Obj:
    """The object an apply by `manager` stores (with its managedFields); 409 on conflicts.

    `live` must be a private copy: dropped fields are removed from it in place.
    """
    schema = schema_of(rt)
    applied = strip(rt, config, status=False)
    applied_leaves = leaves(applied, schema)
    if live is None:
        owners = Owners([])
        owners.set(_entry(rt, manager, "Apply", now), set(applied_leaves))
        return _with_managed(config, owners)
    owners = Owners((live.get("metadata") or {}).get("managedFields"))
    live_leaves = leaves(strip(rt, live, status=False), schema)
    conflicts: list[tuple[Obj, Path]] = []
    for entry, paths in owners.others(manager, "Apply", ""):
        for path in sorted(paths & applied_leaves.keys()):
            if live_leaves.get(path, _MEMBER) != applied_leaves[path]:
                conflicts.append((entry, path))
    if conflicts and not force:
        raise conflict_error(conflicts)
    for entry, paths in owners.others(manager, "Apply", ""):
        paths.difference_update(path for e, path in conflicts if e is entry)
    merged: Obj = merge(live, {k: v for k, v in config.items() if k != "status"}, schema)
    kept = set(applied_leaves).union(*(paths for _, paths in owners.others(manager, "Apply", "")))
    for path in sorted(owners.owned(manager, "Apply", "") - kept, key=len):  # items before their fields
        _remove(merged, path)
        _prune_empty(merged, path, kept)
    owners.set(_entry(rt, manager, "Apply", now), set(applied_leaves))
    return _with_managed(merged, owners)


def _with_managed(obj: Obj, owners: Owners) -> Obj:
    meta = dict(obj.get("metadata") or {})
    meta["managedFields"] = owners.to_json()
    return {**obj, "metadata": meta}


def track_update(rt: ResourceType, old: Obj, new: Obj, *, manager: str, subresource: str, now: str) -> None:
    """Record a non-apply write in `new`'s managedFields (in place) when `old` has any."""
    entries = (old.get("metadata") or {}).get("managedFields")
    if not entries:
        return
    schema = schema_of(rt)
    status = subresource == "status"
    before = leaves(strip(rt, old, status=status), schema)
    after = leaves(strip(rt, new, status=status), schema)
    changed = {p for p in before.keys() | after.keys() if before.get(p, _MEMBER) != after.get(p, _MEMBER)}
    owners = Owners(entries)
    if changed:
        for _, paths in owners.others(manager, "Update", subresource):
            paths.difference_update(changed)
        mine = owners.owned(manager, "Update", subresource) - changed
        owners.set(_entry(rt, manager, "Update", now, subresource), mine | (changed & after.keys()))
    new.setdefault("metadata", {})["managedFields"] = owners.to_json()


def require_manager(manager: str | None) -> str:
    """The apply's field manager; kube-apiserver refuses an apply without one (422)."""
    if manager:
        return manager
    cause = errors.FieldCause(
        "FieldValueRequired", "fieldManager", "Required value: is required for apply patch"
    )
    raise errors.invalid("PatchOptions", "meta.k8s.io", "", [cause])
