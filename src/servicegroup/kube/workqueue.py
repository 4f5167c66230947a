"""Work queue with client-go's guarantees (`util/workqueue`: queue.go, delaying_queue.go,
default_rate_limiters.go), for one asyncio event loop.

Guarantees (each has a test of the same name in tests/kube/test_workqueue.py):

* dedup_while_queued: adding a key that is already waiting does nothing; distinct keys are
  handed out in FIFO order (fair).
* one_worker_per_key: `get` moves a key from dirty to processing. A key added while it is being
  processed is only marked dirty, and is queued again when `done` is called, so it is processed
  once more and two workers never hold the same key (stingy).
* add_after_keeps_earliest: `add_after(key, d)` keeps the earlier ready time when the key is
  already waiting; `d <= 0` adds at once.
* rate_limited_requeue: `add_rate_limited` delays by max(per-key exponential 5 ms * 2^failures
  capped at 1000 s, overall token bucket 10 qps / 100 burst); `forget` resets the key's count.
* shutdown: after `shutdown` adds are ignored and `get` raises ShutDown (queued keys are dropped:
  the next owner relists anyway); `shutdown_with_drain` also waits for in-flight keys to be `done`.

Callers must call `done(key)` for every key `get` returned (in `finally`), or the key is wedged.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections import deque
from collections.abc import Hashable
from typing import Generic, Protocol, TypeVar

from servicegroup.kube.clock import Clock
from servicegroup.kube.metrics import WORKQUEUE_ADDS, WORKQUEUE_DEPTH, WORKQUEUE_RETRIES

K = TypeVar("K", bound=Hashable)


class ShutDown(Exception):
    """The queue was shut down; workers should exit."""


# -- rate limiters --------------------------------------------------------------------------------


class RateLimiter(Protocol):
    """How long to wait before a key may be retried (client-go's `RateLimiter`)."""

    def when(self, key: Hashable) -> float:
        """Delay in seconds for the next retry of `key` (records one more failure)."""
        ...

    def forget(self, key: Hashable) -> None:
        """Stop tracking `key` (after a success)."""
        ...

    def num_requeues(self, key: Hashable) -> int:
        """Failures recorded for `key` since the last `forget`."""
        ...


class ItemExponentialFailureRateLimiter:
    """Per-key delay `base * 2^failures`, capped at `max_delay`."""

    def __init__(self, base_delay: float = 0.005, max_delay: float = 1000.0) -> None:
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._failures: dict[Hashable, int] = {}

    def when(self, key: Hashable) -> float:
        exponent = self._failures.get(key, 0)
        self._failures[key] = exponent + 1
        if exponent > 62:  # 2**63 * base is beyond any cap
            return self.max_delay
        return min(self.base_delay * float(2**exponent), self.max_delay)

    def forget(self, key: Hashable) -> None:
        self._failures.pop(key, None)

    def num_requeues(self, key: Hashable) -> int:
        return self._failures.get(key, 0)


class BucketRateLimiter:
    """Overall token bucket (`qps` refill, `burst` size): each `when` reserves one token."""

    def __init__(self, qps: float = 10.0, burst: int = 100, clock: Clock | None = None) -> None:
        self.qps = qps
        self.burst = burst
        self._clock = clock or Clock()
        self._tokens = float(burst)
        self._last = self._clock.now()

    def reserve(self) -> float:
        """Take one token; returns how long to wait until it is actually available."""
        now = self._clock.now()
        self._tokens = min(float(self.burst), self._tokens + (now - self._last) * self.qps)
        self._last = now
        self._tokens -= 1
        return 0.0 if self._tokens >= 0 else -self._tokens / self.qps

    def when(self, key: Hashable) -> float:
        return self.reserve()

    def forget(self, key: Hashable) -> None:
        """Buckets do not track keys."""

    def num_requeues(self, key: Hashable) -> int:
        return 0


class MaxOfRateLimiter:
    """The longest delay of several limiters (client-go's `MaxOfRateLimiter`)."""

    def __init__(self, *limiters: RateLimiter) -> None:
        self.limiters = limiters

    def when(self, key: Hashable) -> float:
        return max(limiter.when(key) for limiter in self.limiters)

    def forget(self, key: Hashable) -> None:
        for limiter in self.limiters:
            limiter.forget(key)

    def num_requeues(self, key: Hashable) -> int:
        return max(limiter.num_requeues(key) for limiter in self.limiters)


def default_controller_rate_limiter(clock: Clock | None = None) -> RateLimiter:
    """client-go's default: max(per-key 5 ms..1000 s exponential, 10 qps / 100 burst bucket)."""
    return MaxOfRateLimiter(
        ItemExponentialFailureRateLimiter(0.005, 1000.0), BucketRateLimiter(10.0, 100, clock)
    )


# -- the queue ------------------------------------------------------------------------------------


class WorkQueue(Generic[K]):
    """A rate-limited, delaying, deduplicating queue of keys (see the module docstring)."""

    def __init__(
        self, name: str = "", rate_limiter: RateLimiter | None = None, clock: Clock | None = None
    ) -> None:
        self.name = name
        self._clock = clock or Clock()
        self.rate_limiter = rate_limiter or default_controller_rate_limiter(self._clock)
        self._queue: deque[K] = deque()
        self._dirty: set[K] = set()
        self._processing: set[K] = set()
        self._waiting: dict[K, float] = {}
        self._heap: list[tuple[float, int, K]] = []
        self._seq = itertools.count()
        self._shutting_down = False
        self._wakeup = asyncio.Event()

    # -- adding ----------------------------------------------------------------------------------

    def add(self, key: K) -> None:
        """Queue `key` unless it is already waiting; while it is processing, only mark it dirty."""
        if self._shutting_down or key in self._dirty:
            return
        self._dirty.add(key)
        if self.name:
            WORKQUEUE_ADDS.labels(self.name).inc()
        if key in self._processing:
            return
        self._queue.append(key)
        self._changed()

    def add_after(self, key: K, seconds: float) -> None:
        """Add `key` once `seconds` have passed; an earlier pending ready time wins."""
        if self._shutting_down:
            return
        if seconds <= 0:
            self.add(key)
            return
        ready = self._clock.now() + seconds
        if key in self._waiting and self._waiting[key] <= ready:
            return
        self._waiting[key] = ready
        heapq.heappush(self._heap, (ready, next(self._seq), key))
        self._changed()

    def add_rate_limited(self, key: K) -> None:
        """Add `key` after the rate limiter's delay (one more recorded failure)."""
        if self._shutting_down:
            return
        if self.name:
            WORKQUEUE_RETRIES.labels(self.name).inc()
        self.add_after(key, self.rate_limiter.when(key))

    def forget(self, key: K) -> None:
        """Reset `key`'s failure count (after a success, or before a deliberate `add_after`)."""
        self.rate_limiter.forget(key)

    def num_requeues(self, key: K) -> int:
        """Rate-limited retries of `key` since the last `forget`."""
        return self.rate_limiter.num_requeues(key)

    # -- taking ----------------------------------------------------------------------------------

    async def get(self) -> K:
        """Wait for the next ready key and mark it processing; raises ShutDown once shut down."""
        while True:
            if self._shutting_down:
                raise ShutDown(self.name)
            self._promote_ready()
            if self._queue:
                key = self._queue.popleft()
                self._processing.add(key)
                self._dirty.discard(key)
                self._report_depth()
                return key
            await self._wait(self._wakeup, self._next_ready_at())

    def done(self, key: K) -> None:
        """Finish processing `key`; if it was added meanwhile, queue it again now."""
        self._processing.discard(key)
        if key in self._dirty and not self._shutting_down:
            self._queue.append(key)
        self._changed()

    # -- state -----------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._queue)

    def len(self) -> int:
        """Keys ready to be handed out (client-go's `Len`; delayed keys are not counted)."""
        return len(self._queue)

    @property
    def waiting(self) -> int:
        """Keys scheduled by `add_after` that are not yet ready."""
        return len(self._waiting)

    @property
    def processing(self) -> frozenset[K]:
        """Keys handed out by `get` and not yet `done`."""
        return frozenset(self._processing)

    @property
    def shutting_down(self) -> bool:
        """True once `shutdown` was called."""
        return self._shutting_down

    # -- shutdown --------------------------------------------------------------------------------

    def shutdown(self) -> None:
        """Ignore later adds and make every `get` raise ShutDown; in-flight keys may still finish."""
        self._shutting_down = True
        self._queue.clear()
        self._heap.clear()
        self._waiting.clear()
        self._report_depth()
        self._changed()

    async def shutdown_with_drain(self, drain_timeout: float | None = None) -> bool:
        """`shutdown`, then wait (at most `drain_timeout` s) until no key is processing; True if drained."""
        self.shutdown()
        try:
            async with asyncio.timeout(drain_timeout):
                while self._processing:
                    await self._wakeup.wait()
        except TimeoutError:
            return False
        return True

    # -- internals -------------------------------------------------------------------------------

    def _changed(self) -> None:
        """Wake every waiter: they all hold the current event, which a fresh one replaces."""
        self._report_depth()
        self._wakeup.set()
        self._wakeup = asyncio.Event()

    def _report_depth(self) -> None:
        if self.name:
            WORKQUEUE_DEPTH.labels(self.name).set(len(self._queue))

    def _promote_ready(self) -> None:
        now = self._clock.now()
        while self._heap and self._heap[0][0] <= now:
            ready, _, key = heapq.heappop(self._heap)
            if self._waiting.get(key) == ready:
                del self._waiting[key]
                self.add(key)

    def _next_ready_at(self) -> float | None:
        while self._heap and self._waiting.get(self._heap[0][2]) != self._heap[0][0]:
            heapq.heappop(self._heap)  # superseded by an earlier add_after
        return self._heap[0][0] if self._heap else None

    async def _wait(self, event: asyncio.Event, deadline: float | None) -> None:
        if deadline is None:
            await event.wait()
            return
        waiters = {
            asyncio.ensure_future(event.wait()),
            asyncio.ensure_future(self._clock.sleep_until(deadline)),
        }
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
