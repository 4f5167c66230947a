"""Fed test fixtures: the demo's three sandboxes (`servicegroup.fed.demo.fleet`: control running `fed`,
member-a holding zone1 and member-b holding zone2, both running `grid`), with a fast member probe
so outages are noticed within a fraction of a second."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from servicegroup.fed.controller import ENV_PROBE_SECONDS
from servicegroup.fed.demo import Fleet, fleet


@pytest.fixture
async def federation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Fleet]:
    monkeypatch.setenv(ENV_PROBE_SECONDS, "0.2")
    async with fleet(tmp_path) as started:
        yield started
