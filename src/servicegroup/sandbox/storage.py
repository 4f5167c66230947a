"""The versioned object store, which is also the admission pipeline.

Every write, from HTTP, the garbage collector or the simulator, goes through the same steps a real
kube-apiserver applies: defaulting, pruning and validation, server-set metadata (uid,
resourceVersion, creationTimestamp, generation), optimistic concurrency, finalizers and
deletionTimestamp. One global resourceVersion counter orders every change; a bounded history of
events lets watches resume from a resourceVersion until it is compacted away (then 410 Expired).

Objects held here are never mutated after they are stored: writes build a new dict, so readers
that pass `copy=False` may share them safely as long as they do not change them.
"""

from __future__ import annotations

import asyncio
import base64
import bisect
import itertools
import random
import re
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import orjson

from servicegroup.sandbox import errors
from servicegroup.sandbox.apply import track_update
from servicegroup.sandbox.defaults import apply_defaults
from servicegroup.sandbox.errors import FieldCause, StatusError
from servicegroup.sandbox.ipam import ServiceIPAllocator
from servicegroup.sandbox.resources import (
    BUILTIN_TYPES,
    CRDS,
    NAMESPACES,
    PODS,
    PRIORITY_CLASSES,
    SYSTEM_PRIORITY_CLASSES,
    ResourceType,
    crd_types,
)
from servicegroup.sandbox.validation import (
    CrdSchema,
    unknown_fields,
    validate_builtin,
    validate_crd,
    validate_metadata,
)

Obj = dict[str, Any]
FieldValidation = Literal["Strict", "Warn", "Ignore"]
EventType = Literal["ADDED", "MODIFIED", "DELETED"]
Key = tuple[str, str]  # (namespace or "", name)
ObjList = list[Obj]
Warnings = list[str] | None
Dependents = list[tuple[ResourceType, Obj]]

INITIAL_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
IMMORTAL_NAMESPACES = ("default", "kube-system", "kube-public")  # the NamespaceLifecycle admission plugin
CRD_CLEANUP_FINALIZER = "customresourcecleanup.apiextensions.k8s.io"
ORPHAN_FINALIZER = "orphan"
FOREGROUND_FINALIZER = "foregroundDeletion"
MAX_PENDING = 50_000  # events a client watch may lag behind before it is closed
_NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"  # apimachinery's SimpleNameGenerator alphabet
_SERVER_METADATA = ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds")


def deep_copy(obj: Any) -> Any:
    """A fast deep copy of JSON data (an orjson round trip)."""
    return orjson.loads(orjson.dumps(obj))


_stamp: tuple[int, str] = (0, "")


def now_rfc3339() -> str:
    """The current time the way the API server stamps it (seconds precision, Z); formatted once a second."""
    global _stamp  # noqa: PLW0603 - a one-entry cache of the formatted second
    second = int(time.time())
    if _stamp[0] != second:
        _stamp = (second, datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
    return _stamp[1]


@dataclass(frozen=True, slots=True)
class StorageEvent:
    """One committed change; `obj` carries the new resourceVersion, `old` the previous state."""

    type: EventType
    rt: ResourceType
    obj: Obj
    old: Obj | None
    rv: int
    at: float = 0.0


class Subscription:
    """A live, unbounded event stream registered at creation time (so no event is missed).

    Iterate with `async for`; iteration ends when the subscription is closed (storage stopped,
    watch dropped by fault injection, or `close()`).
    """

    def __init__(
        self,
        storage: Storage,
        key: tuple[str, str] | None,
        backlog: Iterable[StorageEvent] = (),
        *,
        droppable: bool = False,
    ) -> None:
        self._storage = storage
        self.key = key
        self.droppable = droppable
        self._buf: deque[StorageEvent] = deque(backlog)
        self._wake = asyncio.Event()
        self.closed = False
        self.dropped = False

    def push(self, event: StorageEvent) -> None:
        """Queue one event (called by the storage at commit time).

        A client watch that falls `MAX_PENDING` events behind is closed, as kube-apiserver closes
        unresponsive watchers; the client re-watches from its last resourceVersion.
        """
        if self.droppable and len(self._buf) >= MAX_PENDING:
            self.close(dropped=True)
            return
        self._buf.append(event)
        self._wake.set()

    def pending(self) -> int:
        """Events queued and not yet consumed."""
        return len(self._buf)

    def close(self, *, dropped: bool = False) -> None:
        """Stop the stream; queued events are discarded."""
        if not self.closed:
            self.closed = True
            self.dropped = dropped
            self._buf.clear()
            self._storage._unsubscribe(self)
            self._wake.set()

    async def next(self, wait: float | None = None) -> StorageEvent | None:
        """The next event, or None after `wait` seconds without one; StopAsyncIteration once closed."""
        while not self._buf:
            if self.closed:
                raise StopAsyncIteration
            self._wake.clear()
            if wait is None:
                await self._wake.wait()
            else:
                try:
                    async with asyncio.timeout(wait):
                        await self._wake.wait()
                except TimeoutError:
                    return None
        return self._buf.popleft()

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> StorageEvent:
        event = await self.next()
        assert event is not None
        return event


@dataclass
class _Bucket:
    """All objects of one (group, plural), indexed by namespace, with lazily sorted key lists."""

    by_ns: dict[str, dict[str, Obj]] = field(default_factory=dict)
    _sorted: list[Key] | None = None
    _sorted_ns: dict[str, list[Key]] = field(default_factory=dict)

    def get(self, ns: str, name: str) -> Obj | None:
        objs = self.by_ns.get(ns)
        return objs.get(name) if objs else None

    def put(self, ns: str, name: str, obj: Obj) -> None:
        objs = self.by_ns.setdefault(ns, {})
        if name not in objs:
            self._invalidate(ns)
        objs[name] = obj

    def remove(self, ns: str, name: str) -> None:
        objs = self.by_ns.get(ns)
        if objs is not None and objs.pop(name, None) is not None:
            self._invalidate(ns)
            if not objs:
                del self.by_ns[ns]

    def _invalidate(self, ns: str) -> None:
        self._sorted = None
        self._sorted_ns.pop(ns, None)

    def sorted_keys(self, ns: str | None) -> list[Key]:
        """Keys in (namespace, name) order, the order lists and continue tokens use."""
        if ns is not None:
            keys = self._sorted_ns.get(ns)
            if keys is None:
                keys = self._sorted_ns[ns] = [(ns, n) for n in sorted(self.by_ns.get(ns, ()))]
            return keys
        if self._sorted is None:
            self._sorted = sorted((n_s, n) for n_s, objs in self.by_ns.items() for n in objs)
        return self._sorted


# ---------------------------------------------------------------------------------------------
# Selectors


LabelMatcher = Callable[[dict[str, str]], bool]
_LABEL_REQ = re.compile(
    r"^\s*(?P<not>!)?\s*(?P<key>[A-Za-z0-9_./-]+)\s*"
    r"(?:(?P<op>==|=|!=|>|<|\s+in\s+|\s+notin\s+)\s*(?P<val>\([^)]*\)|[A-Za-z0-9_.-]*))?\s*$"
)


def _split_selector(selector: str) -> list[str]:
    """Split on commas that are not inside a parenthesised value set."""
    parts: list[str] = []
    cur: list[str] = []
    depth = 0
    for ch in selector:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return [p for p in parts if p.strip()]


def _label_requirement(text: str) -> LabelMatcher:
    m = _LABEL_REQ.match(text)
    if not m or (m.group("not") and m.group("op")):
        raise errors.bad_request(f"unable to parse requirement: invalid label selector: {text.strip()!r}")
    key, op, raw = m.group("key"), (m.group("op") or "").strip(), m.group("val")
    if m.group("not"):
        return lambda labels: key not in labels
    if not op:
        return lambda labels: key in labels
    if op in ("in", "notin"):
        if not raw or not raw.startswith("("):
            raise errors.bad_request(f"unable to parse requirement: found '{raw}', expected: '('")
        values = {v.strip() for v in raw[1:-1].split(",")}
        if op == "in":
            return lambda labels: labels.get(key) in values
        return lambda labels: labels.get(key) not in values
    value = raw or ""
    if op in ("=", "=="):
        return lambda labels: labels.get(key) == value
    if op == "!=":
        return lambda labels: labels.get(key) != value
    try:
        bound = int(value)
    except ValueError:
        raise errors.bad_request(
            f"unable to parse requirement: for 'Gt', 'Lt' operators, the value must be an integer: {value}"
        ) from None
    if op == ">":
        return lambda labels: key in labels and labels[key].isdigit() and int(labels[key]) > bound
    return lambda labels: key in labels and labels[key].isdigit() and int(labels[key]) < bound


def parse_label_selector(selector: str | None) -> LabelMatcher | None:
    """A matcher for a label selector string (`a=b,c in (x,y),!d`), None when it selects everything."""
    if not selector or not selector.strip():
        return None
    reqs = [_label_requirement(part) for part in _split_selector(selector)]
    return lambda labels: all(req(labels) for req in reqs)


_FIELD_ALIASES = {"source": "source.component"}


def _field_value(obj: Obj, path: str) -> str:
    cur: Any = obj
    for part in _FIELD_ALIASES.get(path, path).split("."):
        if not isinstance(cur, dict):
            return ""
        cur = cur.get(part)
    if cur is None:
        return ""
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return str(cur)


def parse_field_selector(rt: ResourceType, selector: str | None) -> Callable[[Obj], bool] | None:
    """A matcher for a field selector over `rt`'s supported field labels (400 for unknown ones)."""
    if not selector or not selector.strip():
        return None
    reqs: list[tuple[str, bool, str]] = []
    for part in _split_selector(selector):
        m = re.match(r"^\s*([A-Za-z0-9_.\-/]+)\s*(==|!=|=)\s*(.*?)\s*$", part)
        if not m:
            raise errors.bad_request(f"invalid selector: '{selector}'; can't understand '{part}'")
        label, op, value = m.groups()
        if not rt.supports_field(label):
            raise errors.bad_request(f"field label not supported: {label}")
        reqs.append((label, op != "!=", value))
    return lambda obj: all((_field_value(obj, label) == value) is eq for label, eq, value in reqs)


@dataclass(frozen=True)
class Selector:
    """A parsed label + field selector pair applied to whole objects."""

    labels: LabelMatcher | None = None
    fields: Callable[[Obj], bool] | None = None

    @classmethod
    def parse(cls, rt: ResourceType, label_selector: str | None, field_selector: str | None) -> Selector:
        """Parse both selector strings (400 BadRequest on bad syntax or unsupported fields)."""
        return cls(parse_label_selector(label_selector), parse_field_selector(rt, field_selector))

    @property
    def empty(self) -> bool:
        """Selects everything."""
        return self.labels is None and self.fields is None

    def matches(self, obj: Obj) -> bool:
        """Whether `obj` is selected."""
        if self.labels is not None and not self.labels((obj.get("metadata") or {}).get("labels") or {}):
            return False
        return self.fields is None or self.fields(obj)


# ---------------------------------------------------------------------------------------------
# Continue tokens (same shape as the apiserver's: base64 JSON {v, rv, start})


def encode_continue(rv: int, last: Key) -> str:
    """The token resuming a list after `last` at snapshot `rv`."""
    start = f"{last[0]}/{last[1]}\x00" if last[0] else f"{last[1]}\x00"
    raw = orjson.dumps({"v": "meta.k8s.io/v1", "rv": rv, "start": start})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_continue(token: str) -> tuple[int, Key]:
    """(rv, last key) from a continue token; 400 when it is malformed."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = orjson.loads(raw)
        start = str(data["start"]).rstrip("\x00")
        ns, _, name = start.rpartition("/")
        return int(data["rv"]), (ns, name)
    except (ValueError, KeyError, TypeError):
        raise errors.bad_request(
            "continue key is not valid: incorrect encoded start resourceVersion"
        ) from None


# ---------------------------------------------------------------------------------------------
# Small object helpers


def _meta(obj: Obj) -> Obj:
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        meta = obj["metadata"] = {}
    return meta


def _key(rt: ResourceType, obj: Obj) -> Key:
    meta = obj.get("metadata") or {}
    return (meta.get("namespace") or "" if rt.namespaced else "", meta.get("name") or "")


def _without(obj: Obj, *keys: str) -> Obj:
    return {k: v for k, v in obj.items() if k not in keys}


def _qos_class(spec: Obj) -> str:
    """The pod QoS class (BestEffort / Burstable / Guaranteed) from container resources."""
    containers = [c for c in spec.get("containers") or [] if isinstance(c, dict)]
    resources = [c.get("resources") or {} for c in containers]
    if not any(r.get("requests") or r.get("limits") for r in resources):
        return "BestEffort"
    for r in resources:
        limits, requests = r.get("limits") or {}, r.get("requests") or {}
        for res in ("cpu", "memory"):
            if res not in limits or requests.get(res, limits[res]) != limits[res]:
                return "Burstable"
    return "Guaranteed"


def set_condition(conditions: list[Obj], new: Obj, now: str, *, update_time: bool = False) -> list[Obj]:
    """Set one condition; nothing changes when status and reason already match.

    lastTransitionTime moves only when the status flips; `update_time` adds the Deployment-style
    lastUpdateTime.
    """
    old = next((c for c in conditions if c.get("type") == new["type"]), None)
    if old is not None and old.get("status") == new["status"] and old.get("reason") == new.get("reason"):
        return conditions
    cond = {"type": new["type"], "status": new["status"]}
    if update_time:
        cond["lastUpdateTime"] = now
    same = old is not None and old.get("status") == new["status"]
    cond["lastTransitionTime"] = old.get("lastTransitionTime", now) if same and old else now
    cond.update({k: v for k, v in new.items() if k not in ("type", "status")})
    if old is None:
        return [*conditions, cond]
    return [cond if c is old else c for c in conditions]


def _precondition(rt: ResourceType, name: str, meta: Obj, key: str, want: Any) -> None:
    """409 when a uid/resourceVersion precondition does not hold, worded like the apiserver."""
    if want and want != meta.get(key):
        label = {"uid": "UID", "resourceVersion": "ResourceVersion"}[key]
        raise errors.conflict(
            rt.plural,
            rt.group,
            name,
            f"Precondition failed: {label} in precondition: {want}, {label} in object meta: {meta.get(key)}",
        )


def _exact_read(resource_version: str | None, match: str | None) -> bool:
    """Whether a list asks for the exact snapshot at its resourceVersion (422 for bad ListOptions)."""
    why = ""
    if match not in (None, "", "Exact", "NotOlderThan"):
        why = f'Unsupported value: "{match}": supported values: "Exact", "NotOlderThan", ""'
    elif match and not resource_version:
        why = "Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided"
    elif match == "Exact" and resource_version == "0":
        why = 'Forbidden: resourceVersionMatch "exact" is forbidden for resourceVersion "0"'
    if why:
        cause = FieldCause("FieldValueForbidden", "resourceVersionMatch", why)
        raise errors.invalid("ListOptions", "meta.k8s.io", "", [cause])
    return match == "Exact"


def _deletion_finalizers(meta: Obj, policy: str | None) -> list[str]:
    """The finalizers a delete leaves: Orphan and Foreground add the ones the GC acts on."""
    if policy not in (None, "Orphan", "Background", "Foreground"):
        cause = FieldCause(
            "FieldValueNotSupported",
            "propagationPolicy",
            f'Unsupported value: "{policy}": supported values: "Foreground", "Background", "Orphan", "nil"',
        )
        raise errors.invalid("DeleteOptions", "meta.k8s.io", "", [cause])
    finalizers = list(meta.get("finalizers") or [])
    extra = {"Orphan": ORPHAN_FINALIZER, "Foreground": FOREGROUND_FINALIZER}.get(policy or "")
    if extra and extra not in finalizers:
        finalizers.append(extra)
    return finalizers


def _initial_status(rt: ResourceType, obj: Obj) -> None:
    """The status a create strategy leaves: built-ins start from their zero status."""
    if rt.custom:
        obj.pop("status", None)
        return
    if rt.kind == "Pod" and not rt.group:
        obj["status"] = {"phase": "Pending", "qosClass": _qos_class(obj.get("spec") or {})}
    else:
        obj["status"] = {}


def _undeletable(rt: ResourceType, name: str) -> str | None:
    """Why kube-apiserver refuses to delete a built-in object (None: it may go)."""
    if rt == NAMESPACES and name in IMMORTAL_NAMESPACES:
        return "this namespace may not be deleted"
    if rt == PRIORITY_CLASSES and name in SYSTEM_PRIORITY_CLASSES:
        return "this is a system priority class and cannot be deleted"
    return None


def _unbindable(pod: Obj) -> str | None:
    """Why a pod cannot be bound, worded as the binding registry's errors (None: it can)."""
    name, spec = pod["metadata"].get("name", ""), pod.get("spec") or {}
    if pod["metadata"].get("deletionTimestamp"):
        return f"pod {name} is being deleted, cannot be assigned to a host"
    if spec.get("nodeName"):
        return f'pod {name} is already assigned to node "{spec["nodeName"]}"'
    if spec.get("schedulingGates"):
        return f"pod {name} has non-empty .spec.schedulingGates"
    return None


def _spec_changed(rt: ResourceType, old: Obj, new: Obj) -> bool:
    """Whether an update bumps metadata.generation: spec for built-ins, all but metadata/status for CRs."""
    if rt.custom or rt == CRDS:
        return _without(old, "metadata", "status") != _without(new, "metadata", "status")
    return old.get("spec") != new.get("spec")


def _crd_status(crd: Obj) -> Obj:
    """The status the apiextensions controllers give an accepted CRD (NamesAccepted, Established)."""
    spec = crd.get("spec") or {}
    names = dict(spec.get("names") or {})
    names.setdefault("singular", str(names.get("kind", "")).lower())
    names.setdefault("listKind", f"{names.get('kind', '')}List")
    stamp = ((crd.get("status") or {}).get("conditions") or [{}])[0].get(
        "lastTransitionTime"
    ) or now_rfc3339()
    stored = [v["name"] for v in spec.get("versions") or [] if v.get("storage")]
    previous = (crd.get("status") or {}).get("storedVersions") or []
    return {
        "conditions": [
            {
                "type": "NamesAccepted",
                "status": "True",
                "reason": "NoConflicts",
                "message": "no conflicts found",
                "lastTransitionTime": stamp,
            },
            {
                "type": "Established",
                "status": "True",
                "reason": "InitialNamesAccepted",
                "message": "the initial names have been accepted",
                "lastTransitionTime": stamp,
            },
        ],
        "acceptedNames": names,
        "storedVersions": list(dict.fromkeys([*previous, *stored])),
    }


# ---------------------------------------------------------------------------------------------
# Storage


class Storage:
    """The sandbox's object store and admission pipeline (sync methods, one event loop)."""

    def __init__(
        self,
        *,
        compaction_window: int = 100_000,
        compaction_seconds: float | None = None,
        on_commit: Callable[[StorageEvent], None] | None = None,
        seed_objects: Iterable[tuple[str, str, Obj]] = (),
        start_rv: int = 0,
    ) -> None:
        self.compaction_window = compaction_window
        self.compaction_seconds = compaction_seconds
        self._on_commit = on_commit
        self._rv = start_rv
        self._compacted = start_rv
        self._history: deque[StorageEvent] = deque()
        self._types: dict[tuple[str, str, str], ResourceType] = {}
        self._crd_types: dict[str, list[ResourceType]] = {}
        self._buckets: dict[tuple[str, str], _Bucket] = {}
        self._subs: dict[tuple[str, str] | None, set[Subscription]] = {}
        self._uids: dict[str, tuple[ResourceType, str, str]] = {}
        self._dependents: dict[str, set[tuple[ResourceType, str, str]]] = {}
        self.ipam = ServiceIPAllocator()
        self._random = random.Random()
        for rt in BUILTIN_TYPES:
            self._register(rt)
        self._restore(seed_objects)
        self._bootstrap()

    def _bootstrap(self) -> None:
        """What kube-apiserver creates at start and clients take for granted, unless restored."""
        for ns in INITIAL_NAMESPACES:
            if self._bucket(NAMESPACES).get("", ns) is None:
                self.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        for name, (value, description) in SYSTEM_PRIORITY_CLASSES.items():
            if self._bucket(PRIORITY_CLASSES).get("", name) is None:
                meta = {"name": name}
                self.create(PRIORITY_CLASSES, {"metadata": meta, "value": value, "description": description})

    # -- types -----------------------------------------------------------------------------

    def _register(self, rt: ResourceType) -> None:
        self._types[(rt.group, rt.version, rt.plural)] = rt
        self._buckets.setdefault(rt.key, _Bucket())

    def types(self) -> list[ResourceType]:
        """Every served resource type (built-ins and CRD versions)."""
        return list(self._types.values())

    def resource_type(self, group: str, version: str, name: str) -> ResourceType:
        """The served type by plural, kind, singular or short name; 404 when not served."""
        rt = self._types.get((group, version, name))
        if rt is not None:
            return rt
        lowered = name.lower()
        for cand in self._types.values():
            if (
                cand.group == group
                and cand.version == version
                and (cand.kind == name or cand.singular == lowered or lowered in cand.short_names)
            ):
                return cand
        raise StatusError(404, "NotFound", "the server could not find the requested resource", {})

    def served(self, group: str, version: str, plural: str) -> ResourceType | None:
        """The type served at /apis/group/version/plural, if any (exact plural only, like the router)."""
        return self._types.get((group, version, plural))

    def served_by_api_version(self, api_version: str, rt: ResourceType) -> ResourceType | None:
        """`rt`'s resource in another served version of its group (bodies may name any of them)."""
        group, _, version = api_version.rpartition("/")
        return self._types.get((group, version, rt.plural)) if group == rt.group else None

    def _bucket(self, rt: ResourceType) -> _Bucket:
        return self._buckets.setdefault(rt.key, _Bucket())

    def _sync_crd_types(self, crd: Obj, *, removed: bool = False) -> None:
        """(Re)register the types a CRD serves; drop them once the CRD is gone."""
        name = _meta(crd).get("name", "")
        for rt in self._crd_types.pop(name, []):
            self._types.pop((rt.group, rt.version, rt.plural), None)
        if removed:
            spec = crd.get("spec") or {}
            self._buckets.pop((spec.get("group", ""), (spec.get("names") or {}).get("plural", "")), None)
            return
        types = crd_types(crd, CrdSchema)
        self._crd_types[name] = types
        for rt in types:
            self._register(rt)

    # -- reads -----------------------------------------------------------------------------

    @property
    def resource_version(self) -> int:
        """The latest committed resourceVersion."""
        return self._rv

    def _as_version(self, rt: ResourceType, obj: Obj, copy: bool) -> Obj:
        if obj.get("apiVersion") != rt.api_version:
            obj = {**obj, "apiVersion": rt.api_version}
        if copy:
            copied: Obj = deep_copy(obj)
            return copied
        return obj

    def get(self, rt: ResourceType, namespace: str | None, name: str, *, copy: bool = True) -> Obj:
        """One object; 404 NotFound with the apiserver's wording when absent."""
        obj = self._bucket(rt).get(namespace or "" if rt.namespaced else "", name)
        if obj is None:
            raise errors.not_found(rt.plural, rt.group, name)
        return self._as_version(rt, obj, copy)

    def exists(self, rt: ResourceType, namespace: str | None, name: str) -> bool:
        """Whether the object is stored (no copy, no error)."""
        return self._bucket(rt).get(namespace or "" if rt.namespaced else "", name) is not None

    def iter_objects(self, rt: ResourceType, namespace: str | None = None) -> Iterator[Obj]:
        """Stored objects (shared, do not mutate), unsorted, cheapest scan."""
        bucket = self._bucket(rt)
        if namespace is not None:
            yield from bucket.by_ns.get(namespace, {}).values()
            return
        for objs in bucket.by_ns.values():
            yield from objs.values()

    def list(  # noqa: PLR0917 - the contract's positional signature
        self,
        rt: ResourceType,
        namespace: str | None = None,
        label_selector: str | Selector | None = None,
        field_selector: str | None = None,
        limit: int | None = None,
        continue_: str | None = None,
        resource_version: str | None = None,
        *,
        resource_version_match: str | None = None,
        copy: bool = True,
    ) -> tuple[ObjList, str, str | None]:
        """(items sorted by namespace/name, list resourceVersion, continue token or None).

        Later pages show the first page's snapshot; a continue token older than the compaction
        window is 410 Expired, like etcd's compaction.
        """
        selector = (
            label_selector
            if isinstance(label_selector, Selector)
            else Selector.parse(rt, label_selector, field_selector)
        )
        exact = _exact_read(resource_version, resource_version_match)
        if resource_version not in (None, "", "0"):
            if not str(resource_version).isdigit():
                raise errors.bad_request(f"invalid resource version: {resource_version}")
            self._not_newer(int(str(resource_version)))
        ns = namespace or None if rt.namespaced else None
        last: Key | None = None
        list_rv = self._rv
        if continue_:
            list_rv, last = self._resume(continue_)
        elif exact:
            list_rv = int(str(resource_version))
            if list_rv < self._compacted:
                raise errors.gone(f"too old resource version: {list_rv} ({self._compacted})")
        items = self._snapshot(rt, ns, list_rv, after=last, selector=selector, limit=limit)
        next_token = None
        if limit and len(items) > limit:
            items = items[:limit]
            next_token = encode_continue(list_rv, _key(rt, items[-1]))
        out = [self._as_version(rt, o, copy) for o in items]
        return out, str(list_rv), next_token

    def _snapshot(
        self,
        rt: ResourceType,
        ns: str | None,
        rv: int,
        *,
        after: Key | None,
        selector: Selector,
        limit: int | None,
    ) -> ObjList:
        """Up to limit+1 selected objects as of `rv`, in key order, after the key `after`."""
        bucket = self._bucket(rt)
        keys = bucket.sorted_keys(ns)
        past = self._state_at(rt, ns, rv) if rv < self._rv else {}
        if past:
            keys = sorted(set(keys) | past.keys())
        start = bisect.bisect_right(keys, after) if after is not None else 0
        items: ObjList = []
        for key in itertools.islice(keys, start, None):
            obj = past[key] if key in past else bucket.get(*key)
            if obj is not None and selector.matches(obj):
                items.append(obj)
                if limit and len(items) > limit:
                    break
        return items

    def _state_at(self, rt: ResourceType, ns: str | None, rv: int) -> dict[Key, Obj | None]:
        """The objects (None: absent) at `rv` of every key changed since, so every page of a
        paginated list shows one snapshot, as etcd's MVCC reads do."""
        past: dict[Key, Obj | None] = {}
        for event in reversed(self._history):
            if event.rv <= rv:
                break
            key = _key(rt, event.obj)
            if event.rt.key == rt.key and (ns is None or key[0] == ns):
                past[key] = event.old  # walking back in time: the oldest change's `old` wins
        return past

    def _not_newer(self, rv: int) -> None:
        """504 for a resourceVersion this server never issued (a client from before a restart)."""
        if rv > self._rv:
            raise errors.too_large_resource_version(rv, self._rv)

    def _resume(self, token: str) -> tuple[int, Key]:
        """(snapshot resourceVersion, last key) of a continue token; 410 once compacted away."""
        token_rv, last = decode_continue(token)
        if token_rv < self._compacted:
            raise errors.gone(
                "The provided continue parameter is too old to display a consistent list result. "
                "You can start a new list without the continue parameter, or use the continue token "
                "in this response to retrieve the remainder of the results. Continuing with the "
                "provided token results in an inconsistent list - objects that were created, "
                "modified, or deleted between the time the first chunk was returned and now may "
                "show up in the list."
            )
        return token_rv, last

    # -- writes ----------------------------------------------------------------------------

    def _commit(self, type_: EventType, rt: ResourceType, obj: Obj, old: Obj | None) -> StorageEvent:
        """Stamp the next resourceVersion, store or remove, index, record history, fan out."""
        self._rv += 1
        _meta(obj)["resourceVersion"] = str(self._rv)
        ns, name = _key(rt, obj)
        bucket = self._bucket(rt)
        if type_ == "DELETED":
            bucket.remove(ns, name)
        else:
            bucket.put(ns, name, obj)
        self._index_owners(rt, ns, name, old, None if type_ == "DELETED" else obj)
        event = StorageEvent(type_, rt, obj, old, self._rv, time.monotonic())
        self._history.append(event)
        self._trim_history()
        for sub in (*self._subs.get(rt.key, ()), *self._subs.get(None, ())):
            sub.push(event)
        if self._on_commit is not None:
            self._on_commit(event)
        return event

    def _index_owners(self, rt: ResourceType, ns: str, name: str, old: Obj | None, new: Obj | None) -> None:
        ref = (rt, ns, name)
        if old is not None:
            for owner in _meta(old).get("ownerReferences") or []:
                deps = self._dependents.get(owner.get("uid", ""))
                if deps is not None:
                    deps.discard(ref)
                    if not deps:
                        del self._dependents[owner.get("uid", "")]
            if new is None:
                self._uids.pop(_meta(old).get("uid", ""), None)
        if new is not None:
            self._uids[_meta(new).get("uid", "")] = ref
            for owner in _meta(new).get("ownerReferences") or []:
                self._dependents.setdefault(owner.get("uid", ""), set()).add(ref)

    def _restore(self, rows: Iterable[tuple[str, str, Obj]]) -> None:
        """Put persisted (group, plural, object) rows back without events, CRDs first."""
        rows = sorted(rows, key=lambda row: (row[0], row[1]) != CRDS.key)
        for group, plural, obj in rows:
            rt = next((t for t in self._types.values() if t.key == (group, plural)), None)
            if rt is not None:
                self._load(rt, obj)

    def _load(self, rt: ResourceType, obj: Obj) -> None:
        ns, name = _key(rt, obj)
        if rt == CRDS:
            self._sync_crd_types(obj)
        self._bucket(rt).put(ns, name, obj)
        self._index_owners(rt, ns, name, None, obj)
        if rt.plural == "services" and not rt.group:
            self.ipam.restore([obj])

    def _trim_history(self) -> None:
        history = self._history
        while len(history) > self.compaction_window:
            self._compacted = history.popleft().rv
        if self.compaction_seconds is not None:
            horizon = time.monotonic() - self.compaction_seconds
            while history and history[0].at < horizon:
                self._compacted = history.popleft().rv

    def compact(self) -> None:
        """Forget all history: every watch or continue from an older resourceVersion gets 410."""
        self._history.clear()
        self._compacted = self._rv

    def owner_of(self, uid: str) -> tuple[ResourceType, str, str] | None:
        """(type, namespace, name) of the live object with this uid."""
        return self._uids.get(uid)

    def dependents(self, uid: str) -> Dependents:
        """Live objects with an ownerReference to `uid` (shared objects, do not mutate)."""
        out = []
        for rt, ns, name in list(self._dependents.get(uid, ())):
            obj = self._bucket(rt).get(ns, name)
            if obj is not None:
                out.append((rt, obj))
        return out

    def _check_namespace(self, rt: ResourceType, ns: str, name: str) -> None:
        """404 for a missing namespace, 403 for a terminating one (a missing field is left to validation)."""
        if not rt.namespaced or not ns:
            return
        namespace = self._bucket(NAMESPACES).get("", ns)
        if namespace is None:
            raise errors.not_found("namespaces", "", ns)
        if _meta(namespace).get("deletionTimestamp"):
            raise errors.forbidden(
                rt.plural,
                rt.group,
                name,
                f"unable to create new content in namespace {ns} because it is being terminated",
            )

    def _admit(
        self,
        rt: ResourceType,
        obj: Obj,
        old: Obj | None,
        field_validation: FieldValidation,
        warnings: Warnings,
    ) -> None:
        """Defaulting, pruning, unknown-field policy and validation, in the apiserver's order."""
        unknown: list[str] = []
        if rt.custom:
            if rt.schema is not None:
                unknown = rt.schema.prune(obj)
                rt.schema.default(obj)
        else:
            if field_validation != "Ignore":
                unknown = unknown_fields(rt.group, rt.kind, obj)
            apply_defaults(rt.group, rt.kind, obj)
        if unknown and field_validation == "Strict":
            raise errors.bad_request(
                "strict decoding error: " + ", ".join(f'unknown field "{path}"' for path in unknown)
            )
        if unknown and field_validation == "Warn" and warnings is not None:
            warnings.extend(f'unknown field "{path}"' for path in unknown)
        causes: list[FieldCause] = validate_metadata(obj, namespaced=rt.namespaced)
        if rt.custom:
            if rt.schema is not None:
                causes += rt.schema.validate(obj, old)
        else:
            causes += validate_builtin(rt.group, rt.kind, obj, old)
            if rt == CRDS:
                causes += validate_crd(obj)
        if causes:
            raise errors.invalid(rt.kind, rt.group, _meta(obj).get("name") or "", causes)

    def _generate_name(self, prefix: str) -> str:
        return prefix + "".join(self._random.choice(_NAME_CHARS) for _ in range(5))

    def create(
        self,
        rt: ResourceType,
        obj: Obj,
        *,
        dry_run: bool = False,
        field_validation: FieldValidation = "Strict",
        warnings: Warnings = None,
        copy: bool = True,
        managed_fields: ObjList | None = None,
    ) -> Obj:
        """Admit and store a new object; 409 AlreadyExists, 404 for a missing namespace, 422 Invalid.

        Client-sent managedFields are dropped; `managed_fields` (from a server-side apply) are kept.
        """
        obj = deep_copy(obj)
        meta = _meta(obj)
        obj["apiVersion"], obj["kind"] = rt.api_version, rt.kind
        if not rt.namespaced:
            meta.pop("namespace", None)
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = self._generate_name(str(meta["generateName"]))
        ns, name = _key(rt, obj)
        self._check_namespace(rt, ns, name)
        for key in (*_SERVER_METADATA, "managedFields", "resourceVersion"):
            meta.pop(key, None)
        if managed_fields:
            meta["managedFields"] = managed_fields
        if rt.reset_status_on_create or rt == NAMESPACES:
            _initial_status(rt, obj)
        self._admit(rt, obj, None, field_validation, warnings)
        if self._bucket(rt).get(ns, name) is not None:
            raise errors.already_exists(rt.plural, rt.group, name)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now_rfc3339()
        if rt.has_generation:
            meta["generation"] = 1
        if rt == CRDS:
            meta["finalizers"] = list(dict.fromkeys([*(meta.get("finalizers") or []), CRD_CLEANUP_FINALIZER]))
            obj["status"] = _crd_status(obj)
        self._allocate_service_ips(rt, obj, None, dry_run)
        if dry_run:
            return obj
        self._commit("ADDED", rt, obj, None)
        if rt == CRDS:
            self._sync_crd_types(obj)
        return self._as_version(rt, obj, copy)

    def _allocate_service_ips(self, rt: ResourceType, obj: Obj, old: Obj | None, dry_run: bool) -> None:
        """ClusterIP allocation: keep the old IPs on update, allocate or reserve on create."""
        if rt.plural != "services" or rt.group:
            return
        spec = obj.setdefault("spec", {})
        if spec.get("type") == "ExternalName":
            return
        if old is not None:
            old_spec = old.get("spec") or {}
            if not spec.get("clusterIP") and old_spec.get("clusterIP"):
                spec["clusterIP"] = old_spec["clusterIP"]
                spec["clusterIPs"] = old_spec.get("clusterIPs") or [old_spec["clusterIP"]]
            return
        wanted = spec.get("clusterIP") or ((spec.get("clusterIPs") or [None])[0])
        if wanted == "None":
            spec["clusterIP"], spec["clusterIPs"] = "None", ["None"]
            return
        if wanted:
            try:
                self.ipam.reserve(wanted)
            except ValueError as err:
                cause = FieldCause(
                    "FieldValueInvalid",
                    "spec.clusterIPs",
                    f'Invalid value: []string{{"{wanted}"}}: failed to allocate IP {wanted}: {err}',
                )
                raise errors.invalid(rt.kind, rt.group, _meta(obj).get("name", ""), [cause]) from None
            ip = wanted
        else:
            ip = self.ipam.allocate()
        if dry_run:
            self.ipam.release(ip)
        spec["clusterIP"], spec["clusterIPs"] = ip, [ip]

    def update(
        self,
        rt: ResourceType,
        obj: Obj,
        *,
        subresource: str | None = None,
        dry_run: bool = False,
        field_validation: FieldValidation = "Strict",
        warnings: Warnings = None,
        copy: bool = True,
        field_manager: str | None = None,
        managed_fields: ObjList | None = None,
    ) -> Obj:
        """Replace an object (or only its status with subresource="status"), honouring the
        resourceVersion precondition (409 Conflict). A no-op write does not bump resourceVersion.

        An object that was server-side applied keeps its managedFields: `managed_fields` replaces
        them (an apply), otherwise the change is recorded as an Update by `field_manager`.
        """
        obj = deep_copy(obj)
        meta = _meta(obj)
        ns = (meta.get("namespace") or "") if rt.namespaced else ""
        name = meta.get("name") or ""
        old = self._bucket(rt).get(ns, name)
        if old is None:
            raise errors.not_found(rt.plural, rt.group, name)
        precondition = meta.get("resourceVersion")
        if precondition and precondition != old["metadata"]["resourceVersion"]:
            raise errors.conflict(rt.plural, rt.group, name)
        _precondition(rt, name, old["metadata"], "uid", meta.get("uid"))
        if not precondition and rt.custom:
            cause = FieldCause(
                "FieldValueInvalid",
                "metadata.resourceVersion",
                "Invalid value: 0x0: must be specified for an update",
            )
            raise errors.invalid(rt.kind, rt.group, name, [cause])
        new = self._merge_update(rt, old, obj, subresource)
        self._admit(rt, new, old, field_validation if subresource is None else "Ignore", warnings)
        self._allocate_service_ips(rt, new, old, dry_run)
        if rt.has_generation:
            gen = int(old["metadata"].get("generation") or 1)
            _meta(new)["generation"] = gen + 1 if _spec_changed(rt, old, new) else gen
        if rt == CRDS:
            new["status"] = _crd_status(new)
        self._manage_fields(
            rt, old, new, subresource=subresource, field_manager=field_manager, managed_fields=managed_fields
        )
        _meta(new)["resourceVersion"] = old["metadata"]["resourceVersion"]
        if new == old or dry_run:
            return self._as_version(rt, new if dry_run else old, copy)
        self._commit("MODIFIED", rt, new, old)
        if rt == CRDS:
            self._sync_crd_types(new)
        self._finish_if_released(rt, new)
        return self._as_version(rt, new, copy)

    @staticmethod
    def _manage_fields(
        rt: ResourceType,
        old: Obj,
        new: Obj,
        *,
        subresource: str | None,
        field_manager: str | None,
        managed_fields: ObjList | None,
    ) -> None:
        """Set `new`'s managedFields: an apply's, or the old ones with this write recorded."""
        meta = _meta(new)
        if managed_fields is not None:
            meta["managedFields"] = managed_fields
            return
        meta.pop("managedFields", None)
        if old["metadata"].get("managedFields"):
            meta["managedFields"] = old["metadata"]["managedFields"]
            if field_manager:
                track_update(
                    rt, old, new, manager=field_manager, subresource=subresource or "", now=now_rfc3339()
                )

    def _merge_update(self, rt: ResourceType, old: Obj, obj: Obj, subresource: str | None) -> Obj:
        """The object an update would store: status-only or status-preserving, server metadata kept."""
        new: Obj
        if subresource == "status":
            new = deep_copy(old)
            if "status" in obj:
                new["status"] = obj["status"]
            else:
                new.pop("status", None)
            return new
        if subresource not in (None, "finalize", "scale"):  # a Scale write is a whole-object write
            raise errors.bad_request(f"subresource {subresource} cannot be updated directly")
        new = obj
        if subresource == "finalize":
            new = {**deep_copy(old), "spec": obj.get("spec") or {}}
        elif "status" in rt.subresources:
            if "status" in old:
                new["status"] = deep_copy(old["status"])
            else:
                new.pop("status", None)
        new["apiVersion"], new["kind"] = rt.api_version, rt.kind
        meta, old_meta = _meta(new), old["metadata"]
        meta.pop("managedFields", None)
        for key in (*_SERVER_METADATA, "namespace", "name"):
            if key in old_meta:
                meta[key] = old_meta[key]
            else:
                meta.pop(key, None)
        if old_meta.get("deletionTimestamp"):
            added = set(meta.get("finalizers") or []) - set(old_meta.get("finalizers") or [])
            if added:
                cause = FieldCause(
                    "FieldValueForbidden",
                    "metadata.finalizers",
                    f"Forbidden: no new finalizers can be added if the object is being deleted, found new "
                    f"finalizers []string{{{', '.join(repr(f) for f in sorted(added))}}}",
                )
                raise errors.invalid(rt.kind, rt.group, meta.get("name", ""), [cause])
        return new

    def _released(self, rt: ResourceType, obj: Obj) -> bool:
        meta = obj["metadata"]
        if not meta.get("deletionTimestamp") or meta.get("finalizers"):
            return False
        return not (rt == NAMESPACES and (obj.get("spec") or {}).get("finalizers"))

    def _finish_if_released(self, rt: ResourceType, obj: Obj) -> None:
        """Remove an object whose deletion was pending once its last finalizer is gone."""
        if self._released(rt, obj):
            self._remove(rt, obj)

    def _remove(self, rt: ResourceType, obj: Obj) -> Obj:
        gone: Obj = deep_copy(obj)
        self._commit("DELETED", rt, gone, obj)
        if rt.plural == "services" and not rt.group:
            for ip in (gone.get("spec") or {}).get("clusterIPs") or []:
                if ip != "None":
                    self.ipam.release(ip)
        if rt == CRDS:
            self._sync_crd_types(gone, removed=True)
        return gone

    def delete(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        *,
        propagation_policy: str | None = None,
        preconditions: dict[str, Any] | None = None,
        dry_run: bool = False,
        copy: bool = True,
    ) -> Obj:
        """Delete, or mark for deletion (deletionTimestamp) while finalizers remain.

        Orphan and Foreground add the `orphan` / `foregroundDeletion` finalizers the garbage
        collector acts on. Returns the final (or pending) object; `metadata.deletionTimestamp` tells
        which.
        """
        ns = (namespace or "") if rt.namespaced else ""
        old = self._bucket(rt).get(ns, name)
        if old is None:
            raise errors.not_found(rt.plural, rt.group, name)
        refusal = _undeletable(rt, name)
        if refusal is not None:
            raise errors.forbidden(rt.plural, rt.group, name, refusal)
        old_meta = old["metadata"]
        for key in ("uid", "resourceVersion"):
            _precondition(rt, name, old_meta, key, (preconditions or {}).get(key))
        finalizers = _deletion_finalizers(old_meta, propagation_policy)
        pending = bool(finalizers) or (rt == NAMESPACES and (old.get("spec") or {}).get("finalizers"))
        if dry_run:
            return self._as_version(rt, old, copy)
        if not pending:
            return self._as_version(rt, self._remove(rt, old), copy)
        if old_meta.get("deletionTimestamp") and finalizers == list(old_meta.get("finalizers") or []):
            return self._as_version(rt, old, copy)
        new = deep_copy(old)
        meta = new["metadata"]
        meta.setdefault("deletionTimestamp", now_rfc3339())
        meta.setdefault("deletionGracePeriodSeconds", 0)
        meta["finalizers"] = finalizers
        if rt == NAMESPACES:
            new.setdefault("status", {})["phase"] = "Terminating"
        self._commit("MODIFIED", rt, new, old)
        return self._as_version(rt, new, copy)

    def bind(
        self,
        namespace: str,
        pod_name: str,
        node_name: str,
        *,
        resource_version: str | None = None,
        uid: str | None = None,
        annotations: dict[str, str] | None = None,
        dry_run: bool = False,
    ) -> Obj:
        """Assign a pod to a node (POST pods/NAME/binding): spec.nodeName and PodScheduled=True.

        This is the one spec change pod-update validation forbids, so, like kube-apiserver's
        binding registry, it writes around admission (no generation bump), with the binding's uid
        and resourceVersion as preconditions. A bound, terminating or gated pod is a 409 Conflict
        on pods/binding. Returns the bound pod.
        """
        if not node_name:
            cause = FieldCause("FieldValueRequired", "target.name", "Required value")
            raise errors.invalid("Binding", "", pod_name, [cause])
        old = self._bucket(PODS).get(namespace, pod_name)
        if old is None:
            raise errors.not_found(PODS.plural, PODS.group, pod_name)
        _precondition(PODS, pod_name, old["metadata"], "uid", uid)
        _precondition(PODS, pod_name, old["metadata"], "resourceVersion", resource_version)
        why = _unbindable(old)
        if why:
            raise errors.conflict("pods/binding", "", pod_name, why)
        new = deep_copy(old)
        new.setdefault("spec", {})["nodeName"] = node_name
        if annotations:
            meta = new["metadata"]
            meta["annotations"] = {**(meta.get("annotations") or {}), **annotations}
        status = new.setdefault("status", {})
        scheduled = {"type": "PodScheduled", "status": "True", "lastProbeTime": None}
        status["conditions"] = set_condition(status.get("conditions") or [], scheduled, now_rfc3339())
        if not dry_run:
            self._commit("MODIFIED", PODS, new, old)
        return self._as_version(PODS, new, copy=True)

    # -- subscriptions ---------------------------------------------------------------------

    def watch_from(
        self, rt: ResourceType | None, since: int | None, *, droppable: bool = False
    ) -> Subscription:
        """A subscription replaying every retained event after `since` (None: only new events).

        410 Expired when `since` is older than the compaction window, 504 when it is newer than
        anything this server issued. `droppable` subscriptions
        (client watches) are the ones fault injection may break.
        """
        key = rt.key if rt is not None else None
        backlog: deque[StorageEvent] = deque()
        if since is not None:
            self._not_newer(since)
        if since is not None and since < self._rv:
            if since < self._compacted:
                raise errors.gone(f"too old resource version: {since} ({self._compacted})")
            for event in reversed(self._history):
                if event.rv <= since:
                    break
                if key is None or event.rt.key == key:
                    backlog.appendleft(event)
        sub = Subscription(self, key, backlog, droppable=droppable)
        self._subs.setdefault(key, set()).add(sub)
        return sub

    def subscribe(self, rt: ResourceType | None = None) -> Subscription:
        """Live events from now on, for in-process components (GC, simulator)."""
        return self.watch_from(rt, None)

    def _unsubscribe(self, sub: Subscription) -> None:
        subs = self._subs.get(sub.key)
        if subs is not None:
            subs.discard(sub)

    def drop_watches(self) -> int:
        """Close every client watch as if its connection broke; returns how many."""
        subs = [s for group in self._subs.values() for s in group if s.droppable]
        for sub in subs:
            sub.close(dropped=True)
        return len(subs)

    def close(self) -> None:
        """End every subscription (shutdown)."""
        for group in list(self._subs.values()):
            for sub in list(group):
                sub.close()
