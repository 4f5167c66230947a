"""Scenario 2: `servicegroup manager` (a real process) is killed with SIGKILL after a seeded random
number of commits, restarted, killed again; between crashes the desired state changes. The last
manager must always reach exactly the desired state: nothing duplicated, orphaned or lost."""

from __future__ import annotations

from pathlib import Path

import pytest
from reliability_scenarios import crash_restart
from reliability_worlds import docs_world

pytestmark = pytest.mark.timeout(240)


@pytest.mark.parametrize("seed", [11, 12])
async def test_kill9_at_random_points_always_ends_in_the_desired_state(seed: int, tmp_path: Path) -> None:
    report = await crash_restart(docs_world(), seed=seed, tmp=tmp_path, kills=2)
    assert report.lost == [], report.line()
    assert report.faults["kill9"] == 2
