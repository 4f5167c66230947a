"""The controller runner: informer handlers enqueue keys, N workers reconcile them.

The shape is sample-controller's / controller-runtime's: `run()` waits until every informer the
controller reads has synced (WaitForCacheSync), then starts the workers. For each key:

* `reconcile(key)` returns None or `Result()` → success: the key's failure count is forgotten;
* returns `Result(requeue_after=s)` → forgotten, then re-added after `s` seconds (clocks only);
* returns `Result(requeue=True)` → re-added with rate limiting (no error logged);
* raises `TerminalError` → logged and counted, not retried (a later event requeues the key);
* raises anything else (API errors, bugs) → logged, re-added with rate limiting; a Conflict is
  routine and logged at debug level. The worker itself never dies.

Metrics: `servicegroup_reconcile_total{controller,result}` (success, requeue, error, terminal),
`servicegroup_reconcile_seconds{controller}`, `servicegroup_workqueue_depth{name}` and the queue's
retries. Every log record inside a reconcile carries `controller`, `key` and `reconcile_id`.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Awaitable, Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from servicegroup.kube.clock import Clock
from servicegroup.kube.errors import ApiError, Conflict
from servicegroup.kube.informer import Informer
from servicegroup.kube.logs import log_context
from servicegroup.kube.metrics import RECONCILE_SECONDS, RECONCILE_TOTAL
from servicegroup.kube.objects import ObjectKey, controller_of, meta
from servicegroup.kube.workqueue import RateLimiter, ShutDown, WorkQueue

log = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)
Obj = dict[str, Any]
KeyMapper = Callable[[Obj], Iterable[K]]
Predicate = Callable[[Obj | None, Obj], bool]

_reconcile_ids = itertools.count(1)


@dataclass(frozen=True)
class Result:
    """What a successful reconcile asks for: nothing, a timed requeue, or a rate-limited one."""

    requeue_after: float | None = None
    requeue: bool = False


class TerminalError(Exception):
    """A failure retrying cannot fix (bad user spec): logged and counted, never retried."""


def object_keys(obj: Obj) -> list[ObjectKey]:
    """Key mapper: the object's own key (the default for `Controller.watch`)."""
    return [ObjectKey.from_object(obj)]


def controller_owner_keys(kind: str, group: str | None = None) -> Callable[[Obj], list[ObjectKey]]:
    """Key mapper: the key of the object's controller owner when it is of `kind` (and API `group`).

    The owner is assumed to be in the child's namespace, as ownerReferences require.
    """

    def mapper(obj: Obj) -> list[ObjectKey]:
        ref = controller_of(obj)
        if ref is None or ref.get("kind") != kind:
            return []
        if group is not None and str(ref.get("apiVersion", "")).rpartition("/")[0] != group:
            return []
        return [ObjectKey(meta(obj).get("namespace") or "", ref["name"])]

    return mapper


def resource_version_changed(old: Obj | None, new: Obj) -> bool:
    """Predicate: drop resync re-offers (old and new with the same resourceVersion)."""
    return old is None or meta(old).get("resourceVersion") != meta(new).get("resourceVersion")


def generation_changed(old: Obj | None, new: Obj) -> bool:
    """Predicate: only spec changes (metadata.generation moved) and adds pass."""
    return old is None or meta(old).get("generation") != meta(new).get("generation")


class Controller(Generic[K]):
    """Runs `reconcile(key)` on `workers` concurrent workers fed by a rate-limited WorkQueue."""

    def __init__(
        self,
        name: str,
        reconcile: Callable[[K], Awaitable[Result | None]],
        workers: int = 2,
        *,
        informers: Iterable[Informer] = (),
        rate_limiter: RateLimiter | None = None,
        clock: Clock | None = None,
        max_retries: int | None = None,
    ) -> None:
        self.name = name
        self.reconcile = reconcile
        self.workers = workers
        self.max_retries = max_retries
        self.queue: WorkQueue[K] = WorkQueue(name, rate_limiter, clock)
        self.informers: list[Informer] = list(informers)
        self._tasks: list[asyncio.Task[None]] = []
        self._started = asyncio.Event()

    def __repr__(self) -> str:
        return f"<Controller {self.name}>"

    # -- wiring ----------------------------------------------------------------------------------

    def enqueue(self, key: K) -> None:
        """Queue a key for reconcile (deduplicated while waiting)."""
        self.queue.add(key)

    def enqueue_after(self, key: K, seconds: float) -> None:
        """Queue a key after a delay (the earliest pending delay wins)."""
        self.queue.add_after(key, seconds)

    def wait_for(self, *informers: Informer) -> None:
        """Also wait for these informers to sync before starting workers."""
        for informer in informers:
            if informer not in self.informers:
                self.informers.append(informer)

    def watch(
        self,
        informer: Informer,
        map_keys: Callable[[Obj], Iterable[K]] | None = None,
        *,
        predicate: Predicate | None = None,
    ) -> None:
        """Enqueue keys for every add/update/delete of `informer` (and wait for its sync).

        `map_keys(obj)` returns the keys to enqueue (default: the object's own ObjectKey; see
        `controller_owner_keys`). On update both the old and the new object are mapped, so a child
        moved between parents wakes both. `predicate(old, new)` may filter events (old is None for
        adds and deletes).
        """
        mapper: Callable[[Obj], Iterable[Any]] = map_keys or object_keys
        passes: Predicate = predicate or (lambda _old, _new: True)

        def on_add(obj: Obj) -> None:
            if passes(None, obj):
                self._enqueue_all(mapper(obj))

        def on_update(old: Obj, new: Obj) -> None:
            if passes(old, new):
                self._enqueue_all(itertools.chain(mapper(old), mapper(new)))

        def on_delete(obj: Obj) -> None:
            if passes(None, obj):
                self._enqueue_all(mapper(obj))

        informer.add_handler(on_add, on_update, on_delete)
        self.wait_for(informer)

    def _enqueue_all(self, keys: Iterable[K]) -> None:
        for key in keys:
            self.queue.add(key)

    # -- running ---------------------------------------------------------------------------------

    @property
    def started(self) -> bool:
        """True once caches synced and workers are running."""
        return self._started.is_set()

    async def run(self) -> None:
        """Wait for the informers' sync, then run the workers until `stop()` (or cancellation)."""
        await asyncio.gather(*(informer.wait_synced() for informer in self.informers))
        log.info("controller %s: caches synced, starting %d workers", self.name, self.workers)
        self._tasks = [
            asyncio.create_task(self._worker(), name=f"{self.name} worker {i}") for i in range(self.workers)
        ]
        self._started.set()
        try:
            await asyncio.gather(*self._tasks)
        finally:
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def stop(self, drain_timeout: float | None = 10.0) -> None:
        """Stop taking keys, let in-flight reconciles finish for at most `drain_timeout` s, then cancel."""
        drained = await self.queue.shutdown_with_drain(drain_timeout)
        if not drained:
            log.warning(
                "controller %s: reconciles still running after %ss; cancelling", self.name, drain_timeout
            )
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def abort(self) -> None:
        """Stop at once (leadership lost): take no more keys and cancel in-flight reconciles."""
        self.queue.shutdown()
        for task in self._tasks:
            task.cancel()

    async def _worker(self) -> None:
        while True:
            try:
                key = await self.queue.get()
            except ShutDown:
                return
            try:
                await self.process(key)
            finally:
                self.queue.done(key)

    async def process(self, key: K) -> str:
        """Reconcile one key and act on the outcome; returns the result label used in metrics.

        Workers call this; tests may call it directly for one deterministic pass.
        """
        started = time.perf_counter()
        with log_context(controller=self.name, key=str(key), reconcile_id=next(_reconcile_ids)):
            outcome = await self._reconcile_and_requeue(key)
        RECONCILE_TOTAL.labels(self.name, outcome).inc()
        RECONCILE_SECONDS.labels(self.name).observe(time.perf_counter() - started)
        return outcome

    async def _reconcile_and_requeue(self, key: K) -> str:
        try:
            result = await self.reconcile(key)
        except TerminalError as err:
            log.error("reconcile failed permanently (not retried): %s", err)
            self.queue.forget(key)
            return "terminal"
        except Exception as err:
            return self._retry(key, err)
        if result is not None and result.requeue_after is not None:
            self.queue.forget(key)
            self.queue.add_after(key, result.requeue_after)
            return "requeue"
        if result is not None and result.requeue:
            self.queue.add_rate_limited(key)
            return "requeue"
        self.queue.forget(key)
        return "success"

    def _retry(self, key: K, err: Exception) -> str:
        retries = self.queue.num_requeues(key)
        if self.max_retries is not None and retries >= self.max_retries:
            log.error("reconcile failed %d times, dropping key until its next event: %s", retries + 1, err)
            self.queue.forget(key)
            return "error"
        if isinstance(err, Conflict):
            log.debug("reconcile conflict, requeueing: %s", err)
        else:  # API errors are transient and self-explanatory; anything else is a bug: show where
            trace = None if isinstance(err, ApiError) else err
            log.warning("reconcile failed (retry %d): %s", retries + 1, err, exc_info=trace)
        self.queue.add_rate_limited(key)
        return "error"


def keys_from_index(
    informer: Informer, index: str, values: Callable[[Obj], Iterable[str]]
) -> Callable[[Obj], list[ObjectKey]]:
    """Key mapper: for each value `values(obj)` yields, the keys of `informer`'s objects in `index`.

    Example: a Node event → every grid whose gridUniqKey the node carries, with the grid informer
    indexed by gridUniqKey and `values=lambda node: labels_of(node).keys()`.
    """

    def mapper(obj: Obj) -> list[ObjectKey]:
        keys: set[ObjectKey] = set()
        for value in values(obj):
            keys.update(ObjectKey.parse(key) for key in informer.store.index_keys(index, value))
        return sorted(keys)

    return mapper
