"""Scenario 1: the manager (grid + site, in-process) converges the docs' examples 00, 01, 02, 05,
07 and a 100-unit fleet while the API server answers 10% 500s, 429s with Retry-After and 409s,
adds latency, drops every watch and compacts history (410 on resume). After the faults stop the end
state is exactly the desired one, and a forced resync issues zero writes (no update loop), counted
by the manager's `Client.write_count` and by the sandbox's own resourceVersion counter."""

from __future__ import annotations

import pytest
from reliability_scenarios import api_faults
from reliability_worlds import docs_world, fleet_world

pytestmark = pytest.mark.timeout(240)


async def test_docs_examples_converge_exactly_under_api_faults() -> None:
    report = await api_faults(docs_world(), seed=1, storm_rounds=4)
    assert report.lost == [], report.line()
    assert report.faults["http500"] and report.faults["http409"] and report.faults["compactions"] == 4
    assert report.faults["dropped_watches"] > 0
    assert report.extra == {"resync_writes": 0, "resync_commits": 0}


async def test_hundred_unit_fleet_converges_exactly_under_api_faults() -> None:
    report = await api_faults(fleet_world(100), seed=2, storm_rounds=4)
    assert report.lost == [], report.line()
    assert report.faults["http500"] and report.faults["http429"] and report.faults["http409"]
    assert report.extra == {"resync_writes": 0, "resync_commits": 0}
