"""`eventually`: the one bounded wait of every test (and of the benchmarks that reuse test set-ups).

A module of its own, not a conftest, so that any test or helper module can import it by a unique
name (`from waits import eventually`): pytest puts tests/ on sys.path, and several directories
have a conftest of their own that would shadow the name `conftest`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


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
