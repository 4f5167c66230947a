"""WorkQueue and rate limiters: each guarantee of kube/workqueue.py's docstring, by name.

Time is a FakeClock; a test never sleeps to synchronise. Covers ordering, dedup, delayed and
rate-limited adds, shutdown. Excludes metrics exposition (tests/kube/test_serve.py).
"""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import REGISTRY

from servicegroup.kube.clock import FakeClock
from servicegroup.kube.objects import ObjectKey
from servicegroup.kube.workqueue import (
    BucketRateLimiter,
    ItemExponentialFailureRateLimiter,
    MaxOfRateLimiter,
    ShutDown,
    WorkQueue,
    default_controller_rate_limiter,
)

A, B, C = ObjectKey("ns", "a"), ObjectKey("ns", "b"), ObjectKey("ns", "c")


def make_queue(clock: FakeClock | None = None) -> WorkQueue[ObjectKey]:
    return WorkQueue("test", clock=clock or FakeClock())


async def no_key_ready(queue: WorkQueue[ObjectKey]) -> bool:
    """True if `get` would block now (checked without waiting on time)."""
    task = asyncio.ensure_future(queue.get())
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    if task.done():
        queue.done(task.result())
        return False
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    return True


class TestWorkQueue:
    async def test_dedup_while_queued(self) -> None:
        queue = make_queue()
        for key in (A, B, A, C, B):
            queue.add(key)
        assert len(queue) == 3
        assert [await queue.get() for _ in range(3)] == [A, B, C]

    async def test_one_worker_per_key(self) -> None:
        queue = make_queue()
        queue.add(A)
        key = await queue.get()
        queue.add(A)  # added while processing: only marked dirty
        assert len(queue) == 0
        assert await no_key_ready(queue)
        queue.done(key)
        assert len(queue) == 1
        assert await queue.get() == A
        queue.done(A)
        assert len(queue) == 0

    async def test_two_workers_never_hold_the_same_key(self) -> None:
        queue = make_queue()
        queue.add(A)
        first = await queue.get()
        second = asyncio.ensure_future(queue.get())
        queue.add(A)
        await asyncio.sleep(0)
        assert not second.done()
        queue.done(first)
        assert await second == A

    async def test_add_after_keeps_earliest(self) -> None:
        clock = FakeClock()
        queue = make_queue(clock)
        queue.add_after(A, 10)
        queue.add_after(A, 5)
        queue.add_after(A, 20)
        assert queue.waiting == 1
        getter = asyncio.ensure_future(queue.get())
        await asyncio.sleep(0)
        clock.advance(4.9)
        await asyncio.sleep(0)
        assert not getter.done()
        clock.advance(0.2)
        assert await getter == A

    async def test_add_after_zero_adds_at_once(self) -> None:
        queue = make_queue()
        queue.add_after(A, 0)
        queue.add_after(B, -1)
        assert len(queue) == 2

    async def test_delayed_key_already_queued_is_not_duplicated(self) -> None:
        clock = FakeClock()
        queue = make_queue(clock)
        queue.add(A)
        queue.add_after(A, 1)
        clock.advance(2)
        assert await queue.get() == A
        queue.done(A)
        assert await no_key_ready(queue)

    async def test_new_earlier_delay_wakes_a_waiting_getter(self) -> None:
        clock = FakeClock()
        queue = make_queue(clock)
        queue.add_after(A, 100)
        getter = asyncio.ensure_future(queue.get())
        await asyncio.sleep(0)
        queue.add_after(B, 1)
        await asyncio.sleep(0)
        clock.advance(1)
        assert await getter == B

    async def test_rate_limited_requeue(self) -> None:
        clock = FakeClock()
        queue = make_queue(clock)
        for _ in range(3):
            queue.add_rate_limited(A)
        assert queue.num_requeues(A) == 3
        assert len(queue) == 0  # 5 ms, 10 ms, 20 ms: the earliest (5 ms) wins
        clock.advance(0.005)
        assert await queue.get() == A
        queue.forget(A)
        assert queue.num_requeues(A) == 0

    async def test_shutdown(self) -> None:
        queue = make_queue()
        queue.add(A)
        getter_blocked = asyncio.ensure_future(make_queue().get())
        queue.shutdown()
        queue.add(B)
        assert len(queue) == 0
        with pytest.raises(ShutDown):
            await queue.get()
        getter_blocked.cancel()
        await asyncio.gather(getter_blocked, return_exceptions=True)

    async def test_shutdown_wakes_blocked_getters(self) -> None:
        queue = make_queue()
        getter = asyncio.ensure_future(queue.get())
        await asyncio.sleep(0)
        queue.shutdown()
        with pytest.raises(ShutDown):
            await getter

    async def test_shutdown_with_drain_waits_for_in_flight_keys(self) -> None:
        queue = make_queue()
        queue.add(A)
        key = await queue.get()
        drain = asyncio.ensure_future(queue.shutdown_with_drain(5))
        await asyncio.sleep(0)
        assert not drain.done()
        queue.done(key)
        assert await drain is True

    async def test_shutdown_with_drain_gives_up_after_the_bound(self) -> None:
        queue = make_queue()
        queue.add(A)
        await queue.get()
        assert await queue.shutdown_with_drain(0.01) is False

    async def test_depth_metric_follows_the_queue(self) -> None:
        queue = make_queue()
        for key in (A, B, C):
            queue.add(key)
        await queue.get()
        assert REGISTRY.get_sample_value("servicegroup_workqueue_depth", {"name": "test"}) == 2
        queue.shutdown()
        assert REGISTRY.get_sample_value("servicegroup_workqueue_depth", {"name": "test"}) == 0


class TestRateLimiters:
    def test_item_exponential_doubles_from_5ms_to_the_cap(self) -> None:
        limiter = ItemExponentialFailureRateLimiter(0.005, 1000.0)
        delays = [limiter.when("k") for _ in range(20)]
        assert delays[:4] == [0.005, 0.01, 0.02, 0.04]
        assert delays[-1] == 1000.0
        assert limiter.when("other") == 0.005

    def test_item_exponential_forget_resets(self) -> None:
        limiter = ItemExponentialFailureRateLimiter()
        limiter.when("k")
        limiter.when("k")
        limiter.forget("k")
        assert limiter.num_requeues("k") == 0
        assert limiter.when("k") == 0.005

    def test_item_exponential_survives_huge_failure_counts(self) -> None:
        limiter = ItemExponentialFailureRateLimiter(0.005, 1000.0)
        for _ in range(2000):
            delay = limiter.when("k")
        assert delay == 1000.0

    def test_bucket_allows_burst_then_spaces_by_qps(self) -> None:
        clock = FakeClock()
        bucket = BucketRateLimiter(qps=10, burst=100, clock=clock)
        assert all(bucket.when(i) == 0 for i in range(100))
        assert bucket.when("next") == pytest.approx(0.1)
        assert bucket.when("next2") == pytest.approx(0.2)
        clock.advance(10)
        assert bucket.when("later") == 0

    def test_max_of_takes_the_longest(self) -> None:
        clock = FakeClock()
        limiter = MaxOfRateLimiter(
            ItemExponentialFailureRateLimiter(0.005, 1000), BucketRateLimiter(10, 1, clock)
        )
        assert limiter.when("a") == 0.005
        assert limiter.when("b") == pytest.approx(0.1)
        assert limiter.num_requeues("a") == 1
        limiter.forget("a")
        assert limiter.num_requeues("a") == 0

    def test_default_controller_rate_limiter_is_client_gos(self) -> None:
        clock = FakeClock()
        limiter = default_controller_rate_limiter(clock)
        assert [limiter.when("k") for _ in range(3)] == [0.005, 0.01, 0.02]
        for i in range(97):
            limiter.when(f"other{i}")
        assert limiter.when("burst-exhausted") == pytest.approx(0.1)
