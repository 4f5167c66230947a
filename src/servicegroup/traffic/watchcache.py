"""The proxy's own resourceVersions over its filtered view, with a bounded event history.

Re-filtering (a node relabelled, an annotation removed) changes what a client must see without
any upstream write, so upstream resourceVersions cannot describe the view. Every change of the
*served* object takes the next number of one proxy-wide counter; each resource keeps its recent
events, so a client that resumes a watch from the last RV it saw gets exactly the events after
it, or 410 Expired when they have left the history (then it re-lists, as client-go does).

Watchers never lose an event: each has its own queue fed synchronously on every change; a client
too slow to drain `max_backlog` lines is disconnected with a clean end of stream (it resumes from
its last RV), never silently skipped.
"""

from __future__ import annotations

import asyncio
import bisect
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Final

import orjson
from prometheus_client import Counter, Gauge

Obj = dict[str, Any]
Predicate = Callable[[Obj], bool]

INITIAL_EVENTS_END: Final = "k8s.io/initial-events-end"
RV_BLOCK: Final = 10_000

WATCHERS = Gauge("servicegroup_proxy_watchers", "Open watches served by the topology proxy.", ["resource"])
EVENTS_SENT = Counter(
    "servicegroup_proxy_watch_events_total", "Watch events queued to proxy clients.", ["resource"]
)
SLOW_CLOSED = Counter(
    "servicegroup_proxy_slow_watchers_closed_total",
    "Watches ended because the client fell more than max_backlog events behind.",
    ["resource"],
)
BACKLOG = Gauge(
    "servicegroup_proxy_watch_backlog_max", "Largest queue of a proxy watcher seen so far.", ["resource"]
)


class Expired(Exception):
    """The client's resourceVersion is older than the history (or unknown): it must re-list."""


class ResourceVersions:
    """One increasing counter for the whole proxy.

    `reserve(upto)` is called before any number above the last reservation is handed out, so a
    persisted reservation bounds every RV ever served: after a restart the counter resumes above
    it and no old RV can be mistaken for a new one.
    """

    def __init__(self, start: int = 0, reserve: Callable[[int], None] | None = None) -> None:
        self.current = start
        self._reserved = start
        self._reserve = reserve

    def next(self) -> int:
        """The next resourceVersion."""
        self.current += 1
        if self._reserve is not None and self.current > self._reserved:
            self._reserved = self.current + RV_BLOCK
            self._reserve(self._reserved)
        return self.current


def stamp(obj: Obj, rv: int, kind: str, api_version: str) -> Obj:
    """A shallow copy of `obj` carrying our resourceVersion (and its type, which list items lack)."""
    return {
        **obj,
        "kind": kind,
        "apiVersion": api_version,
        "metadata": {**obj.get("metadata", {}), "resourceVersion": str(rv)},
    }


def _content(obj: Obj) -> Obj:
    """The object minus what the proxy rewrites: equal contents mean the client sees no change."""
    metadata = {k: v for k, v in obj.get("metadata", {}).items() if k != "resourceVersion"}
    return {**{k: v for k, v in obj.items() if k not in ("kind", "apiVersion")}, "metadata": metadata}


@dataclass(slots=True)
class Event:
    """One change of a served object; `old` is the previous served state (for selector moves)."""

    rv: int
    type: str
    obj: Obj
    old: Obj | None
    lines: dict[str, bytes] = field(default_factory=dict)

    def line(self, type_: str) -> bytes:
        """The framed watch line for this event seen as `type_` (encoded once, shared by watchers)."""
        cached = self.lines.get(type_)
        if cached is None:
            cached = self.lines[type_] = orjson.dumps({"type": type_, "object": self.obj}) + b"\n"
        return cached

    def as_seen_by(self, predicate: Predicate | None) -> str | None:
        """The event type a watcher with this selector sees (apiserver rules), None to skip."""
        if predicate is None:
            return self.type
        now = self.type != "DELETED" and predicate(self.obj)
        before = self.old is not None and predicate(self.old)
        if now:
            return "MODIFIED" if before else "ADDED"
        return "DELETED" if before else None


class Watcher:
    """One client's ordered stream of framed lines."""

    def __init__(self, cache: ResourceCache, predicate: Predicate | None, max_backlog: int | None) -> None:
        self._cache = cache
        self.predicate = predicate
        self.max_backlog = max_backlog
        self._lines: deque[bytes] = deque()
        self._wake = asyncio.Event()
        self.closed = False
        self.overflowed = False

    def offer(self, event: Event) -> None:
        """Queue the event if this watcher sees it; close the watch when the client lags too far."""
        if self.closed:
            return
        type_ = event.as_seen_by(self.predicate)
        if type_ is None:
            return
        self.push(event.line(type_))

    def push(self, line: bytes) -> None:
        """Queue one framed line (an event or a bookmark)."""
        if self.closed:
            return
        self._lines.append(line)
        self._wake.set()
        self._cache.sent.inc()
        if self.max_backlog is not None and len(self._lines) > self.max_backlog:
            self.overflowed = True
            SLOW_CLOSED.labels(self._cache.resource).inc()
            self.close()

    def bookmark(self, annotations: dict[str, str] | None = None) -> None:
        """Queue a BOOKMARK at the current RV: every earlier event is already ahead of it."""
        metadata: Obj = {"resourceVersion": str(self._cache.rvs.current)}
        if annotations:
            metadata["annotations"] = annotations
        obj = {"kind": self._cache.kind, "apiVersion": self._cache.api_version, "metadata": metadata}
        self.push(orjson.dumps({"type": "BOOKMARK", "object": obj}) + b"\n")

    @property
    def backlog(self) -> int:
        """Lines queued and not yet taken by the writer."""
        return len(self._lines)

    async def take(self, idle: float | None = None) -> list[bytes]:
        """Every queued line, waiting up to `idle` seconds for one; `[]` after that or when closed.

        An overflowed watcher drops its backlog: the stream ends at the last line the client got,
        so its last RV is still exact and it resumes from there.
        """
        if not self._lines and not self.closed:
            self._wake.clear()
            try:
                async with asyncio.timeout(idle):
                    await self._wake.wait()
            except TimeoutError:
                return []
        if self.overflowed:
            self._lines.clear()
            return []
        self._cache.note_backlog(len(self._lines))
        lines = list(self._lines)
        self._lines.clear()
        return lines

    def close(self) -> None:
        """End the stream (idempotent); the cache forgets the watcher."""
        if not self.closed:
            self.closed = True
            self._wake.set()
            self._cache.forget(self)


class ResourceCache:
    """The served objects of one resource, their recent events and the open watchers."""

    def __init__(
        self, resource: str, kind: str, api_version: str, rvs: ResourceVersions, history_limit: int = 10_000
    ) -> None:
        self.resource = resource
        self.kind = kind
        self.api_version = api_version
        self.rvs = rvs
        self.history_limit = history_limit
        self._objects: dict[str, Obj] = {}
        self._history: deque[Event] = deque()
        self._start_rv = rvs.current  # every event after this RV is in the history
        self._watchers: set[Watcher] = set()
        self.peak_backlog = 0
        self.sent = EVENTS_SENT.labels(resource)  # resolved once: it is bumped for every line sent

    # -- reads -----------------------------------------------------------------------------------

    def get(self, key: str) -> Obj | None:
        """The served object under `ns/name` (or `name`)."""
        return self._objects.get(key)

    def objects(self, predicate: Predicate | None = None) -> list[Obj]:
        """Served objects sorted by key, as the API server lists them."""
        return [obj for _, obj in sorted(self._objects.items()) if predicate is None or predicate(obj)]

    def __len__(self) -> int:
        return len(self._objects)

    # -- writes ----------------------------------------------------------------------------------

    def put(self, key: str, obj: Obj) -> bool:
        """Serve `obj` under `key`; emits ADDED/MODIFIED only when what clients see changes."""
        old = self._objects.get(key)
        if old is not None and _content(old) == _content(obj):
            return False
        rv = self.rvs.next()
        served = stamp(obj, rv, self.kind, self.api_version)
        self._objects[key] = served
        self._emit(Event(rv, "MODIFIED" if old is not None else "ADDED", served, old))
        return True

    def delete(self, key: str) -> bool:
        """Stop serving `key`; emits DELETED with the last served state."""
        old = self._objects.pop(key, None)
        if old is None:
            return False
        rv = self.rvs.next()
        self._emit(Event(rv, "DELETED", stamp(old, rv, self.kind, self.api_version), old))
        return True

    def replace(self, objects: dict[str, Obj]) -> None:
        """Make the served set exactly `objects` (after a full resync), emitting only differences."""
        for key in [k for k in self._objects if k not in objects]:
            self.delete(key)
        for key, obj in objects.items():
            self.put(key, obj)

    def load(self, objects: Iterable[Obj], key_of: Callable[[Obj], str]) -> None:
        """Serve persisted objects as they were (their RVs included), without events."""
        self._objects = {key_of(obj): obj for obj in objects}

    def _emit(self, event: Event) -> None:
        self._history.append(event)
        while len(self._history) > self.history_limit:
            self._start_rv = self._history.popleft().rv
        for watcher in list(self._watchers):
            watcher.offer(event)

    # -- watch -----------------------------------------------------------------------------------

    def watch(
        self,
        resource_version: int | None,
        predicate: Predicate | None = None,
        max_backlog: int = 100_000,
        initial_events_end: bool = False,
    ) -> Watcher:
        """A watcher positioned after `resource_version`, or at "now" with synthetic ADDED events
        for the current objects when it is None (the apiserver's RV unset / "0" semantics).

        Raises Expired when events after that RV are no longer all in the history.
        """
        watcher = Watcher(self, predicate, None)  # the catch-up below is not lag
        if resource_version is None:
            for obj in self.objects(predicate):
                watcher.push(orjson.dumps({"type": "ADDED", "object": obj}) + b"\n")
            if initial_events_end:
                watcher.bookmark({INITIAL_EVENTS_END: "true"})
        else:
            if resource_version < self._start_rv or resource_version > self.rvs.current:
                raise Expired(
                    f"too old resource version: {resource_version} ({self._start_rv})"
                    if resource_version < self._start_rv
                    else f"resource version {resource_version} is not known to this proxy"
                )
            rvs = [event.rv for event in self._history]
            for event in list(self._history)[bisect.bisect_right(rvs, resource_version) :]:
                watcher.offer(event)
        watcher.max_backlog = watcher.backlog + max_backlog
        self._watchers.add(watcher)
        WATCHERS.labels(self.resource).inc()
        return watcher

    def forget(self, watcher: Watcher) -> None:
        """Called by `Watcher.close`."""
        if watcher in self._watchers:
            self._watchers.discard(watcher)
            WATCHERS.labels(self.resource).dec()

    def note_backlog(self, lines: int) -> None:
        """Track the deepest watcher queue (a client falling behind shows here before it is cut)."""
        if lines > self.peak_backlog:
            self.peak_backlog = lines
            BACKLOG.labels(self.resource).set(lines)

    @property
    def watchers(self) -> int:
        """Open watchers."""
        return len(self._watchers)
