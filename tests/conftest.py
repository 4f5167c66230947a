"""Suite-wide settings and the one fixture every directory uses: a started sandbox (the bounded
wait is tests/waits.py, importable by name)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from hypothesis import HealthCheck, settings

from servicegroup.sandbox import Sandbox

# Timing never decides a test's outcome (it belongs in bench/): on a loaded 2-core CI machine, slow
# input generation or a slow example must not fail a property test.
settings.register_profile(
    "ci", deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
settings.load_profile("ci")


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    """A started sandbox on a free loopback port, with frequent bookmarks (informer tests)."""
    sb = Sandbox(bookmark_interval=0.2)
    await sb.start("127.0.0.1", 0)
    yield sb
    await sb.stop()
