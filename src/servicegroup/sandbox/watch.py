"""Watch streams with kube-apiserver semantics.

- `resourceVersion` N: only events after N; older than the compaction window: one ERROR event
  (Status 410 Expired) and the stream ends, exactly like the watch cache.
- unset or "0": synthetic ADDED events for the current state, then live events.
- label/field selectors apply to both the old and new object, so an object leaving the selector
  is seen as DELETED and one entering it as ADDED.
- BOOKMARK events (when allowed) every `bookmark_interval` seconds, only when nothing is pending,
  so the bookmark's resourceVersion never overtakes an undelivered event.
- `sendInitialEvents=true` (watch-list): the current state as ADDED events, then a BOOKMARK
  annotated `k8s.io/initial-events-end: "true"`.
- `timeoutSeconds` ends the stream cleanly.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any

from servicegroup.sandbox.errors import StatusError
from servicegroup.sandbox.resources import ResourceType
from servicegroup.sandbox.storage import Selector, Storage, StorageEvent

Obj = dict[str, Any]
DEFAULT_TIMEOUT = 1800.0


@dataclass(frozen=True)
class WatchSpec:
    """What one watch request asks for."""

    rt: ResourceType
    namespace: str | None = None
    selector: Selector = field(default_factory=Selector)
    resource_version: str | None = None
    timeout: float | None = None
    bookmarks: bool = False
    send_initial_events: bool = False


def _visible(spec: WatchSpec, event: StorageEvent) -> tuple[str, Obj] | None:
    """The (type, object) a watcher with this namespace/selector sees for a storage event."""
    obj = event.obj
    if spec.namespace and (obj.get("metadata") or {}).get("namespace") != spec.namespace:
        return None
    if obj.get("apiVersion") != spec.rt.api_version:
        obj = {**obj, "apiVersion": spec.rt.api_version}
    sel = spec.selector
    if sel.empty:
        return event.type, obj
    now = sel.matches(event.obj)
    before = event.old is not None and sel.matches(event.old)
    if event.type == "ADDED":
        return ("ADDED", obj) if now else None
    if event.type == "DELETED":
        return ("DELETED", obj) if now or before else None
    if now and before:
        return "MODIFIED", obj
    if now:
        return "ADDED", obj
    return ("DELETED", obj) if before else None


INITIAL_EVENTS_END = "k8s.io/initial-events-end"


def _bookmark(rt: ResourceType, rv: int, *, initial_end: bool = False) -> Obj:
    meta: Obj = {"resourceVersion": str(rv)}
    if initial_end:
        meta["annotations"] = {INITIAL_EVENTS_END: "true"}
    return {"kind": rt.kind, "apiVersion": rt.api_version, "metadata": meta}


async def watch_events(
    storage: Storage, spec: WatchSpec, *, bookmark_interval: float = 5.0
) -> AsyncGenerator[tuple[str, Obj]]:
    """Yield (type, object) pairs for one watch request until timeout, drop or shutdown."""
    rv = spec.resource_version
    initial: list[Obj] = []
    try:
        if rv in (None, "", "0") or spec.send_initial_events:
            ns = spec.namespace if spec.rt.namespaced else None
            initial = [o for o in storage.iter_objects(spec.rt, ns or None) if spec.selector.matches(o)]
            sub = storage.watch_from(spec.rt, None, droppable=True)
        else:
            if not str(rv).isdigit():
                raise StatusError(400, "BadRequest", f"invalid resource version: {rv}")
            sub = storage.watch_from(spec.rt, int(str(rv)), droppable=True)
    except StatusError as err:
        yield "ERROR", err.status()
        return
    deadline = time.monotonic() + (spec.timeout if spec.timeout else DEFAULT_TIMEOUT)
    initial_rv = storage.resource_version
    version = spec.rt.api_version
    try:
        for obj in initial:
            yield "ADDED", obj if obj.get("apiVersion") == version else {**obj, "apiVersion": version}
        if spec.send_initial_events:
            yield "BOOKMARK", _bookmark(spec.rt, initial_rv, initial_end=True)
        next_bookmark = time.monotonic() + bookmark_interval
        while True:
            now = time.monotonic()
            if now >= deadline:
                return
            # Due even while unrelated (filtered-out) events keep arriving; only once nothing is
            # queued, so the bookmark never overtakes an undelivered event.
            if spec.bookmarks and now >= next_bookmark and not sub.pending():
                yield "BOOKMARK", _bookmark(spec.rt, storage.resource_version)
                next_bookmark = now + bookmark_interval
            wait = deadline - now
            if spec.bookmarks:
                wait = min(wait, max(0.0, next_bookmark - now))
            try:
                event = await sub.next(wait)
            except StopAsyncIteration:
                return
            seen = _visible(spec, event) if event is not None else None
            if seen is not None:
                yield seen
    finally:
        sub.close()
