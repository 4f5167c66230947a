"""Injectable time: the real monotonic clock, and a fake one tests advance by hand.

Queues, rate limiters, informers' backoff and the leader elector read time and sleep only through
a `Clock`, so their timing behaviour is tested without real sleeps.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time


class Clock:
    """Monotonic seconds and asyncio sleeping."""

    def now(self) -> float:
        """Seconds on a monotonic scale (only differences are meaningful)."""
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        """Sleep `seconds` (returns at once, after one loop turn, for `seconds <= 0`)."""
        await asyncio.sleep(max(0.0, seconds))

    async def sleep_until(self, deadline: float) -> None:
        """Sleep until `now() >= deadline` (an absolute time, so a late start does not shift it)."""
        await self.sleep(deadline - self.now())


class FakeClock(Clock):
    """A clock that moves only when `advance` is called; sleepers wake when their time is reached."""

    def __init__(self, start: float = 1000.0) -> None:
        self._now = start
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def now(self) -> float:
        return self._now

    async def sleep(self, seconds: float) -> None:
        await self.sleep_until(self._now + seconds)

    async def sleep_until(self, deadline: float) -> None:
        if deadline <= self._now:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (deadline, next(self._seq), future))
        await future

    def advance(self, seconds: float) -> None:
        """Move time forward and wake every sleeper whose deadline has passed."""
        self._now += seconds
        while self._sleepers and self._sleepers[0][0] <= self._now:
            _, _, future = heapq.heappop(self._sleepers)
            if not future.done():
                future.set_result(None)

    @property
    def sleepers(self) -> int:
        """How many sleeps are pending (lets a test wait until a task is parked on the clock)."""
        return sum(1 for _, _, future in self._sleepers if not future.done())

    def next_deadline(self) -> float | None:
        """The earliest pending sleeper's wake-up time, if any."""
        pending = [deadline for deadline, _, future in self._sleepers if not future.done()]
        return min(pending) if pending else None
