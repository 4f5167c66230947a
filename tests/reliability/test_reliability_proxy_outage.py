"""Scenario 4: topology proxies for bj-1 and gz-1 lose the API server (their taps are cut) while
the EndpointSlice scales and nodes move to other units; each proxy restarts offline from
--cache-dir; then the link returns. A watcher through each proxy (list + watch, reconnecting, every
state recorded) never holds an endpoint of a node that was never in its unit, and ends at the truth."""

from __future__ import annotations

from pathlib import Path

import pytest
from reliability_scenarios import SliceWatcher, foreign_sightings, proxy_outage

pytestmark = pytest.mark.timeout(240)


@pytest.mark.parametrize("seed", [31, 32])
async def test_watchers_never_see_another_unit_and_converge_after_the_outage(
    seed: int, tmp_path: Path
) -> None:
    report = await proxy_outage(seed=seed, tmp=tmp_path)
    assert report.lost == [], report.line()
    assert report.faults["offline_restarts"] == 2
    assert report.extra["reconnects"] >= 2, "the watchers saw the proxy restart"


def test_foreign_sightings_are_reported() -> None:
    watcher = SliceWatcher("http://unused")
    watcher.observed = [{"s": ("bj-1",)}, {"s": ("bj-1", "gz-1")}]
    assert foreign_sightings(watcher, {"bj-1"}) == ["saw ['gz-1'] in s (state #1)"]
