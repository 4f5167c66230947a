"""EventRecorder: core/v1 Events about objects, posted in the background.

`event()` never blocks and never raises into a reconcile: events are queued and posted in order
by one background task per recorder (so a repeat cannot race its first post). Repeats of the same
(object, type, reason, message) within 10 minutes PATCH `count` and `lastTimestamp` of the
existing Event instead of creating a new one, like client-go's EventCorrelator. Failures are
logged and counted in `servicegroup_events_dropped_total`.
"""

from __future__ import annotations

import asyncio
import logging
import re
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from servicegroup.kube.client import Client
from servicegroup.kube.clock import Clock
from servicegroup.kube.conditions import format_time
from servicegroup.kube.errors import NotFound
from servicegroup.kube.metrics import EVENTS_DROPPED
from servicegroup.kube.objects import meta
from servicegroup.kube.resources import EVENTS

log = logging.getLogger(__name__)

NORMAL: Final = "Normal"
WARNING: Final = "Warning"
AGGREGATION_WINDOW: Final = 600.0
MAX_MESSAGE: Final = 1024
_REASON = re.compile(r"^[A-Z][A-Za-z0-9]*$")

Obj = dict[str, Any]
_AggregationKey = tuple[str, str, str, str, str, str]


@dataclass
class _Posted:
    name: str
    namespace: str
    count: int
    last_seen: float


class EventRecorder:
    """Records Events as `component` (source.component and reportingComponent)."""

    def __init__(
        self,
        client: Client,
        component: str,
        *,
        host: str | None = None,
        clock: Clock | None = None,
        aggregation_window: float = AGGREGATION_WINDOW,
        max_pending: int = 1000,
    ) -> None:
        self.client = client
        self.component = component
        self.host = host if host is not None else socket.gethostname()
        self.aggregation_window = aggregation_window
        self._clock = clock or Clock()
        self._pending: asyncio.Queue[tuple[_AggregationKey, Obj]] = asyncio.Queue(max_pending)
        self._posted: dict[_AggregationKey, _Posted] = {}
        self._task: asyncio.Task[None] | None = None

    def event(self, obj: Mapping[str, Any], type_: str, reason: str, message: str) -> None:
        """Queue an Event about `obj` (type Normal/Warning, CamelCase reason); never raises."""
        try:
            self._enqueue(obj, type_, reason, message)
        except Exception:
            EVENTS_DROPPED.labels(self.component).inc()
            log.exception("event %s %s dropped", type_, reason)

    def _enqueue(self, obj: Mapping[str, Any], type_: str, reason: str, message: str) -> None:
        if type_ not in (NORMAL, WARNING):
            raise ValueError(f"event type must be Normal or Warning, not {type_!r}")
        if not _REASON.match(reason):
            log.warning("event reason %r is not CamelCase", reason)
        involved = involved_object(obj)
        key: _AggregationKey = (
            involved.get("uid") or f"{involved['kind']}/{involved.get('namespace', '')}/{involved['name']}",
            type_,
            reason,
            message,
            self.component,
            involved.get("namespace") or "default",
        )
        body: Obj = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"namespace": key[5]},
            "involvedObject": involved,
            "type": type_,
            "reason": reason,
            "message": message[:MAX_MESSAGE],
            "source": {"component": self.component, "host": self.host},
            "reportingComponent": self.component,
            "reportingInstance": self.host,
        }
        try:
            self._pending.put_nowait((key, body))
        except asyncio.QueueFull:
            EVENTS_DROPPED.labels(self.component).inc()
            log.warning("event queue full; dropped %s %s", type_, reason)
            return
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._post_loop(), name=f"events {self.component}")

    async def flush(self) -> None:
        """Wait until every queued Event has been posted (or dropped)."""
        await self._pending.join()

    async def close(self, grace: float | None = 5.0) -> None:
        """Post what is queued (for at most `grace` seconds), then stop the background task."""
        try:
            async with asyncio.timeout(grace):
                await self.flush()
        except TimeoutError:
            log.warning("events of %s not all posted before shutdown", self.component)
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _post_loop(self) -> None:
        while True:
            key, body = await self._pending.get()
            try:
                await self._post(key, body)
            except asyncio.CancelledError:
                raise
            except Exception as err:
                EVENTS_DROPPED.labels(self.component).inc()
                log.warning("could not post event %s: %s", body["reason"], err)
            finally:
                self._pending.task_done()

    async def _post(self, key: _AggregationKey, body: Obj) -> None:
        now = self._clock.now()
        stamp = format_time()
        previous = self._posted.get(key)
        if previous is not None and now - previous.last_seen <= self.aggregation_window:
            patch = {"count": previous.count + 1, "lastTimestamp": stamp}
            try:
                await self.client.patch(EVENTS, previous.name, patch, namespace=previous.namespace)
            except NotFound:
                pass  # expired or deleted by the server's TTL: post a fresh one
            else:
                previous.count += 1
                previous.last_seen = now
                return
        body["metadata"]["name"] = f"{body['involvedObject']['name']}.{time.time_ns():x}"
        body.update({"count": 1, "firstTimestamp": stamp, "lastTimestamp": stamp})
        created = await self.client.create(EVENTS, body)
        name = meta(created).get("name") or body["metadata"]["name"]
        self._posted[key] = _Posted(name, body["metadata"]["namespace"], 1, now)
        self._expire(now)

    def _expire(self, now: float) -> None:
        """Forget aggregation entries older than the window, so the cache stays bounded."""
        stale = [k for k, v in self._posted.items() if now - v.last_seen > self.aggregation_window]
        for k in stale:
            del self._posted[k]


def involved_object(obj: Mapping[str, Any]) -> Obj:
    """The ObjectReference an Event points at (apiVersion, kind, name, namespace, uid, RV)."""
    object_meta = meta(obj)
    ref: Obj = {
        "apiVersion": obj.get("apiVersion", ""),
        "kind": obj.get("kind", ""),
        "name": object_meta.get("name", ""),
    }
    for field, source in (("namespace", "namespace"), ("uid", "uid"), ("resourceVersion", "resourceVersion")):
        if object_meta.get(source):
            ref[field] = object_meta[source]
    return ref
