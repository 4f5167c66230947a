"""Informers: a reflector (list + watch) feeding a Store and notifying handlers, as in client-go
(`tools/cache/reflector.go`, `shared_informer.go`).

Guarantees (each has a test of the same name in tests/kube/test_informer.py):

* list_then_watch_from_list_rv: the first list uses resourceVersion "0" in `limit=500` pages; the
  watch starts at the list's resourceVersion with `allowWatchBookmarks=true` and a random 5-10 min
  `timeoutSeconds`.
* watch_end_resumes_from_last_rv: a watch that ends (timeout, dropped connection) is reopened from
  the last seen resourceVersion, without a relist and without duplicate notifications.
* gone_relists_and_delivers_only_differences: on 410 Gone (an ERROR event with reason Expired, or
  HTTP 410) the informer relists and emits only the differences against its cache: adds for new
  keys, updates for keys whose resourceVersion changed, deletes (with the last known object) for
  keys that vanished. Handlers see a consistent history, as if they had watched all along.
* bookmark_advances_rv_without_event: every ADDED/MODIFIED/DELETED/BOOKMARK event moves
  `last_resource_version`; bookmarks never reach handlers. RVs are opaque strings.
* cache_first_then_notify: the store (and its indexes) is updated before handlers run; handlers are
  sync callables called in event order; a handler that raises is logged and does not stop others.
* synced_after_first_list: `has_synced` turns true (and `wait_synced` returns) once the first full
  list has been delivered to the store and handlers.
* late_handler_gets_current_objects: a handler added after objects are cached receives an add for
  each of them first, as client-go's shared informer does.
* resync_reoffers_cached_objects: with `resync_period`, every cached object is re-offered as an
  update with old == new, with no API call; handlers may filter by comparing resourceVersions.
* errors_back_off: failed lists/watches are retried with capped exponential backoff (0.8 s to
  30 s, jittered, reset after 2 min healthy) and counted in
  `servicegroup_watch_restarts_total{resource}`; 410 Gone is routine and logged at info level.

List items get `apiVersion` and `kind` filled in from the resource, because the API server omits
them inside Lists and handlers build owner references from them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from servicegroup.kube.client import Client
from servicegroup.kube.clock import Clock
from servicegroup.kube.errors import Gone, TooManyRequests
from servicegroup.kube.metrics import RELISTS, WATCH_RESTARTS
from servicegroup.kube.objects import meta
from servicegroup.kube.resources import Resource
from servicegroup.kube.store import IndexFunc, Store, object_key

log = logging.getLogger(__name__)

Obj = dict[str, Any]
OnAdd = Callable[[Obj], None]
OnUpdate = Callable[[Obj, Obj], None]
OnDelete = Callable[[Obj], None]

HEALTHY_RESET = 120.0


@dataclass(frozen=True)
class Handler:
    """One listener's callbacks (any may be None)."""

    on_add: OnAdd | None = None
    on_update: OnUpdate | None = None
    on_delete: OnDelete | None = None


class Backoff:
    """Capped, jittered exponential delays, reset after a healthy stretch (client-go's 0.8 s..30 s)."""

    def __init__(
        self, clock: Clock, initial: float = 0.8, cap: float = 30.0, reset_after: float = HEALTHY_RESET
    ):
        self._clock = clock
        self.initial = initial
        self.cap = cap
        self.reset_after = reset_after
        self._current = 0.0
        self._last_failure = 0.0

    def next_delay(self) -> float:
        """The delay before the next attempt (doubles per failure, up to `cap`)."""
        now = self._clock.now()
        if now - self._last_failure > self.reset_after:
            self._current = 0.0
        self._last_failure = now
        self._current = self.initial if self._current == 0 else min(self.cap, self._current * 2)
        return self._current * random.uniform(1.0, 1.2)


class Informer:
    """A cached, watched view of one resource (optionally one namespace / selector)."""

    def __init__(  # noqa: PLR0917 - positional order is the contract (docs/architecture.md)
        self,
        client: Client,
        res: Resource,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        resync_period: float | None = None,
        *,
        page_size: int = 500,
        clock: Clock | None = None,
        watch_timeout: tuple[int, int] = (300, 600),
        backoff: Backoff | None = None,
    ) -> None:
        self.client = client
        self.res = res
        self.namespace = namespace
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.resync_period = resync_period
        self.page_size = page_size
        self.watch_timeout = watch_timeout
        self.store = Store()
        self.last_resource_version = ""
        self._clock = clock or Clock()
        self._backoff = backoff or Backoff(self._clock)
        self._handlers: list[Handler] = []
        self._synced = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        scope = f" ns={self.namespace}" if self.namespace else ""
        selector = f" labels={self.label_selector}" if self.label_selector else ""
        return f"<Informer {self.res}{scope}{selector}>"

    # -- public API ------------------------------------------------------------------------------

    def add_handler(
        self,
        on_add: OnAdd | None = None,
        on_update: OnUpdate | None = None,
        on_delete: OnDelete | None = None,
    ) -> None:
        """Register callbacks; objects already cached are first offered to `on_add`."""
        handler = Handler(on_add, on_update, on_delete)
        self._handlers.append(handler)
        if on_add is not None:
            for obj in self.store.list():
                self._call(on_add, obj)

    def add_index(self, name: str, fn: IndexFunc) -> None:
        """Add a named index to the store (idempotent for the same name, so setups can share it)."""
        if not self.store.has_index(name):
            self.store.add_index(name, fn)

    @property
    def has_synced(self) -> bool:
        """True once the first full list is in the store and was delivered to handlers."""
        return self._synced.is_set()

    async def wait_synced(self) -> None:
        """Wait for `has_synced` (bound it with `asyncio.timeout` if needed)."""
        await self._synced.wait()

    def start(self) -> asyncio.Task[None]:
        """Run the informer as a task (idempotent); returns the task."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self.run(), name=f"informer {self.res}")
        return self._task

    def stop(self) -> asyncio.Future[Any]:
        """Cancel the informer's task; the result may be awaited to wait until it has ended."""
        task, self._task = self._task, None
        if task is None:
            done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            done.set_result(None)
            return done
        task.cancel()
        return asyncio.gather(task, return_exceptions=True)

    async def run(self) -> None:
        """Reflect forever: list, watch, resume, relist on 410, back off on errors (until cancelled)."""
        tasks = [asyncio.create_task(self._reflect(), name=f"reflector {self.res}")]
        if self.resync_period:
            tasks.append(
                asyncio.create_task(self._resync_loop(self.resync_period), name=f"resync {self.res}")
            )
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def resync(self) -> None:
        """Re-offer every cached object as an update with old == new (no API call)."""
        for obj in self.store.list():
            self._notify_update(obj, obj)

    # -- reflector -------------------------------------------------------------------------------

    async def _reflect(self) -> None:
        need_list = True
        while True:
            try:
                if need_list:
                    await self._list_and_replace()
                    need_list = False
                await self._watch()
                log.debug("watch %s ended; resuming from %s", self.res, self.last_resource_version)
                WATCH_RESTARTS.labels(str(self.res)).inc()
            except Gone as err:
                WATCH_RESTARTS.labels(str(self.res)).inc()
                if need_list:  # even the fresh list expired (continue token): back off, then list again
                    await self._back_off("list", err)
                else:
                    log.info(
                        "watch %s: resourceVersion %s is gone; relisting",
                        self.res,
                        self.last_resource_version,
                    )
                    need_list = True
            except asyncio.CancelledError:
                raise
            except Exception as err:
                WATCH_RESTARTS.labels(str(self.res)).inc()
                await self._back_off("list" if need_list else "watch", err)

    async def _back_off(self, what: str, err: Exception) -> None:
        delay = self._backoff.next_delay()
        level = logging.INFO if isinstance(err, TooManyRequests | Gone) else logging.WARNING
        log.log(level, "%s %s failed, retrying in %.1fs: %s", what, self.res, delay, err)
        await self._clock.sleep(delay)

    async def _list_and_replace(self) -> None:
        RELISTS.labels(str(self.res)).inc()
        rv = self.last_resource_version or "0"
        try:
            listed = await self._list(rv)
        except Gone:
            listed = await self._list("")
        items = listed.get("items") or []
        for item in items:
            item.setdefault("apiVersion", self.res.api_version)
            item.setdefault("kind", self.res.kind)
        self._replace(items)
        self.last_resource_version = str(meta(listed).get("resourceVersion") or "")
        self._synced.set()

    async def _list(self, resource_version: str) -> Obj:
        return await self.client.list_all(
            self.res,
            self.namespace,
            self.label_selector,
            self.field_selector,
            resource_version=resource_version or None,
            page_size=self.page_size,
        )

    async def _watch(self) -> None:
        stream = self.client.watch(
            self.res,
            self.namespace,
            resource_version=self.last_resource_version,
            label_selector=self.label_selector,
            field_selector=self.field_selector,
            timeout_seconds=random.randint(*self.watch_timeout),
            allow_bookmarks=True,
        )
        async with contextlib.aclosing(stream):
            async for event in stream:
                self._handle_event(event)

    def _handle_event(self, event: Obj) -> None:
        kind, obj = event.get("type"), event.get("object") or {}
        rv = meta(obj).get("resourceVersion")
        if kind in ("ADDED", "MODIFIED"):
            obj.setdefault("apiVersion", self.res.api_version)
            obj.setdefault("kind", self.res.kind)
            old = self.store.upsert(obj)
            if old is None:
                self._notify_add(obj)
            else:
                self._notify_update(old, obj)
        elif kind == "DELETED":
            old = self.store.delete(object_key(obj))
            if old is not None:
                self._notify_delete(obj)
        elif kind != "BOOKMARK":
            log.warning("watch %s: ignoring event of unknown type %r", self.res, kind)
            return
        if rv:
            self.last_resource_version = str(rv)

    def _replace(self, items: Iterable[Obj]) -> None:
        """Make the store equal to a fresh list, notifying only the differences."""
        fresh = {object_key(obj): obj for obj in items}
        for obj in fresh.values():
            old = self.store.upsert(obj)
            if old is None:
                self._notify_add(obj)
            elif meta(old).get("resourceVersion") != meta(obj).get("resourceVersion"):
                self._notify_update(old, obj)
        for key in self.store:
            if key not in fresh:
                old = self.store.delete(key)
                if old is not None:
                    self._notify_delete(old)

    async def _resync_loop(self, period: float) -> None:
        await self._synced.wait()
        while True:
            await self._clock.sleep(period)
            self.resync()

    # -- notification ----------------------------------------------------------------------------

    def _notify_add(self, obj: Obj) -> None:
        for handler in list(self._handlers):
            if handler.on_add is not None:
                self._call(handler.on_add, obj)

    def _notify_update(self, old: Obj, new: Obj) -> None:
        for handler in list(self._handlers):
            if handler.on_update is not None:
                self._call(handler.on_update, old, new)

    def _notify_delete(self, obj: Obj) -> None:
        for handler in list(self._handlers):
            if handler.on_delete is not None:
                self._call(handler.on_delete, obj)

    def _call(self, fn: Callable[..., None], *args: Obj) -> None:
        try:
            fn(*args)
        except Exception:
            log.exception("informer %s: handler %r failed", self.res, fn)


InformerKey = tuple[Resource, str | None, str | None, str | None]


class InformerFactory:
    """One shared informer per (resource, namespace, label selector, field selector).

    Informers created after `start()` are started at once, so capabilities may ask for informers
    in their `setup` in any order.
    """

    def __init__(
        self, client: Client, resync_period: float | None = None, clock: Clock | None = None
    ) -> None:
        self.client = client
        self.resync_period = resync_period
        self._clock = clock
        self._informers: dict[InformerKey, Informer] = {}
        self._started = False

    def informer(
        self,
        res: Resource,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        resync_period: float | None = None,
    ) -> Informer:
        """The shared informer for this resource and scope (created on first request)."""
        key = (res, namespace or None, label_selector or None, field_selector or None)
        existing = self._informers.get(key)
        if existing is not None:
            return existing
        informer = Informer(
            self.client,
            res,
            namespace or None,
            label_selector or None,
            field_selector or None,
            resync_period if resync_period is not None else self.resync_period,
            clock=self._clock,
        )
        self._informers[key] = informer
        if self._started:
            informer.start()
        return informer

    @property
    def informers(self) -> list[Informer]:
        """Every informer created so far."""
        return list(self._informers.values())

    def start(self) -> None:
        """Start every informer (and any created later)."""
        self._started = True
        for informer in self._informers.values():
            informer.start()

    async def wait_synced(self) -> None:
        """Wait until every informer has synced (bound it with `asyncio.timeout` if needed)."""
        for informer in self.informers:
            await informer.wait_synced()

    @property
    def has_synced(self) -> bool:
        """True when every informer has synced."""
        return all(informer.has_synced for informer in self._informers.values())

    def stop(self) -> asyncio.Future[Any]:
        """Stop every informer; the result may be awaited to wait for them to end."""
        self._started = False
        return asyncio.gather(*(informer.stop() for informer in self.informers), return_exceptions=True)
