"""Scenario 3: two `servicegroup manager --leader-elect` processes (2 s lease), each behind its own
recording tap (the sandbox has no audit log and strips managedFields, so the tap is where "who
wrote what, when" is observable). The leader is killed with SIGKILL while the grid's replicas and a
NodeUnit's labels keep changing; it comes back as a stand-by with a new identity. Writes of two
identities never interleave, nobody writes before its Lease acquisition, and the end state
reflects the last of every change."""

from __future__ import annotations

from pathlib import Path

import pytest
from reliability_scenarios import leader_failover, overlapping_writers
from reliability_support import Request
from reliability_worlds import docs_world

pytestmark = pytest.mark.timeout(240)


async def test_leader_killed_under_churn_one_writer_and_no_lost_update(tmp_path: Path) -> None:
    report = await leader_failover(docs_world(), seed=21, tmp=tmp_path, failovers=1, steps=6)
    assert report.lost == [], report.line()
    assert report.faults["leader_kill9"] == 1
    assert len(report.extra["writes_by"]) >= 2, "the stand-by took over and wrote"


def test_the_overlap_check_catches_two_writers() -> None:
    """The checker itself: interleaved writers and a write before the Lease are both reported."""
    lease_a = Request(
        "a", "PUT", "/apis/coordination.k8s.io/v1/leases/x", 200, 0.0, 0.1, b'{"spec":{"holderIdentity":"a"}}'
    )
    log = [
        lease_a,
        Request("a", "PATCH", "/api/v1/nodes/n", 200, 1.0, 3.0),
        Request("b", "PATCH", "/api/v1/nodes/n", 200, 2.0, 2.5),
    ]
    problems = overlapping_writers(log)
    assert any("overlap" in p for p in problems)
    assert any(p.startswith("b wrote") and "before holding the Lease" in p for p in problems)
    assert overlapping_writers(log[:2]) == []
