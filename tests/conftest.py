"""Shared test helpers: bounded waiting without sleeps-as-synchronisation."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from hypothesis import HealthCheck, settings

T = TypeVar("T")

# Timing never decides a test's outcome (it belongs in bench/): on a loaded 2-core CI machine, slow
# input generation or a slow example must not fail a property test.
settings.register_profile(
    "ci", deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
settings.load_profile("ci")


async def eventually(
    probe: Callable[[], Awaitable[T]],
    *,
    timeout: float = 20.0,
    interval: float = 0.05,
    message: str = "condition not reached",
) -> T:
    """Poll `probe` until it returns a truthy value or raises no AssertionError; fail after `timeout`.

    The wait is bounded and the probe re-reads real state each time, so a slow machine only makes
    the test slower, never wrong.
    """
    deadline = time.monotonic() + timeout
    last_error: AssertionError | None = None
    while True:
        try:
            value = await probe()
            if value:
                return value
        except AssertionError as err:
            last_error = err
        if time.monotonic() > deadline:
            raise AssertionError(f"{message} within {timeout}s; last: {last_error}") from last_error
        await asyncio.sleep(interval)
