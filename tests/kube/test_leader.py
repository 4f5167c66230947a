"""LeaderElector against the sandbox's Lease API: exclusivity, takeover after a silent holder,
release on graceful stop, and immediate step-down when renewals fail.

Lease timings are shortened (1 s lease); waits are bounded polls, never sleeps.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from servicegroup.kube.client import Client
from servicegroup.kube.leader import LeaderElector
from servicegroup.kube.resources import LEASES
from servicegroup.sandbox import Sandbox
from waits import eventually

FAST = {"lease_duration": 1.0, "renew_deadline": 0.6, "retry_period": 0.1}  # for losing on purpose
STEADY = {"lease_duration": 10.0, "renew_deadline": 5.0, "retry_period": 0.1}  # a loaded machine keeps it
TAKEOVER = {"lease_duration": 2.0, "renew_deadline": 1.5, "retry_period": 0.1}  # short expiry to wait out


class Candidate:
    """An elector plus the record of its callbacks."""

    def __init__(self, client: Client, identity: str, **kw: Any) -> None:
        self.elector = LeaderElector(client, "kube-system", "servicegroup-test", identity, **{**FAST, **kw})
        self.started = 0
        self.stopped = 0
        self.task: asyncio.Task[None] | None = None

    def on_started(self) -> None:
        self.started += 1

    def on_stopped(self) -> None:
        self.stopped += 1

    def start(self) -> Candidate:
        self.task = asyncio.create_task(self.elector.run(self.on_started, self.on_stopped))
        return self

    async def cancel(self) -> None:
        assert self.task is not None
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


async def lease(kube: Client) -> dict[str, Any]:
    return await kube.get(LEASES, "servicegroup-test", "kube-system")


async def test_only_one_candidate_leads(kube: Client) -> None:
    a = Candidate(kube, "a", **STEADY).start()
    b = Candidate(kube, "b", **STEADY).start()
    try:
        await eventually(lambda: _any_leader(a, b))
        renewed = Renewals(kube)
        for _ in range(5):  # several renew periods: still exactly one leader
            await eventually(renewed)
            assert [a.elector.is_leader, b.elector.is_leader].count(True) == 1
        leader = a if a.elector.is_leader else b
        spec = (await lease(kube))["spec"]
        assert spec["holderIdentity"] == leader.elector.identity
        assert spec["leaseDurationSeconds"] == 10
        assert leader.started == 1 and leader.stopped == 0
    finally:
        await a.cancel()
        await b.cancel()


async def _any_leader(*candidates: Candidate) -> bool:
    return any(c.elector.is_leader for c in candidates)


class Renewals:
    """Probe that is true each time the Lease's renewTime has moved since the last look."""

    def __init__(self, kube: Client) -> None:
        self.kube = kube
        self.last = ""

    async def __call__(self) -> bool:
        renew = str((await lease(self.kube))["spec"]["renewTime"])
        changed, self.last = renew != self.last, renew
        return changed


async def test_standby_takes_over_after_holder_stops_renewing(kube: Client) -> None:
    a = Candidate(kube, "a", release_on_cancel=False, **TAKEOVER).start()
    await eventually(lambda: _any_leader(a))
    b = Candidate(kube, "b", **TAKEOVER).start()
    try:
        await eventually(Renewals(kube))
        assert not b.elector.is_leader
        await a.cancel()  # a crashes: no release, the lease just stops being renewed
        assert (await lease(kube))["spec"]["holderIdentity"] == "a"
        await eventually(lambda: _any_leader(b))
        spec = (await lease(kube))["spec"]
        assert spec["holderIdentity"] == "b"
        assert spec["leaseTransitions"] == 1
        assert b.started == 1
    finally:
        await b.cancel()


async def test_graceful_stop_releases_the_lease(kube: Client) -> None:
    a = Candidate(kube, "a", **STEADY).start()
    await eventually(lambda: _any_leader(a))
    await a.cancel()
    assert a.stopped == 1 and not a.elector.is_leader
    assert (await lease(kube))["spec"]["holderIdentity"] == ""
    b = Candidate(kube, "b", lease_duration=60.0, renew_deadline=30.0).start()
    try:
        await eventually(lambda: _any_leader(b))  # released: no wait for expiry
    finally:
        await b.cancel()


async def test_failed_renewals_stop_leading_at_once(kube: Client, sandbox: Sandbox) -> None:
    a = Candidate(kube, "a").start()
    await eventually(lambda: _any_leader(a))
    sandbox.faults.set(errors=[{"code": 500, "resource": "leases"}])
    assert a.task is not None
    await asyncio.wait_for(a.task, 5)  # run() returns once leadership is lost
    assert a.stopped == 1
    assert not a.elector.is_leader
    sandbox.faults.clear()
    # nobody released it: the lease still names a, and expires for others after its duration
    assert (await lease(kube))["spec"]["holderIdentity"] == "a"


async def test_leading_task_is_cancelled_when_leadership_ends(kube: Client, sandbox: Sandbox) -> None:
    cancelled = asyncio.Event()

    async def lead() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    elector = LeaderElector(kube, "kube-system", "servicegroup-test", "a", **FAST)
    task = asyncio.create_task(elector.run(lead, lambda: None))
    await eventually(lambda: _is(elector))
    sandbox.faults.set(errors=[{"code": 500, "resource": "leases"}])
    await asyncio.wait_for(cancelled.wait(), 5)
    await asyncio.wait_for(task, 5)


async def _is(elector: LeaderElector) -> bool:
    return elector.is_leader


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"lease_duration": 5, "renew_deadline": 5}, "greater than the renew deadline"),
        ({"renew_deadline": 2, "retry_period": 2}, "renew deadline must be greater"),
    ],
)
def test_invalid_timings_are_rejected(kw: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        LeaderElector(Client("http://127.0.0.1:9"), "ns", "l", "me", **kw)


async def test_a_lease_write_the_server_refuses_is_logged_as_a_warning(
    sandbox: Sandbox, kube: Client, caplog: pytest.LogCaptureFixture
) -> None:
    sandbox.faults.set(errors=[{"code": 500, "verb": "create", "resource": "leases"}])
    a = Candidate(kube, "a", **STEADY).start()
    try:

        async def warned() -> bool:
            return any(r.levelname == "WARNING" and "create failed" in r.getMessage() for r in caplog.records)

        await eventually(warned, message="a refused Lease create was not logged as a warning")
        assert a.started == 0
    finally:
        await a.cancel()


class CancelledDuringRenewal(Client):
    """A client that cancels the leading task while a renewal write completes: the moment when
    `asyncio.wait_for` (Python 3.11) returns the result and drops the cancel."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.renewals = 0
        self.target: asyncio.Task[None] | None = None

    async def replace(self, res: Any, obj: Any, *args: Any, **kwargs: Any) -> Any:
        result = await super().replace(res, obj, *args, **kwargs)
        self.renewals += 1
        if self.renewals == 2 and self.target is not None:  # the first renewal after acquiring
            self.target.cancel()
        return result


async def test_a_cancel_that_lands_as_a_renewal_completes_still_stops_the_elector(sandbox: Sandbox) -> None:
    client = CancelledDuringRenewal(sandbox.url)
    candidate = Candidate(client, "a", **STEADY)
    try:
        candidate.start()
        client.target = candidate.task
        assert candidate.task is not None
        await asyncio.wait_for(asyncio.gather(candidate.task, return_exceptions=True), 10)
        assert candidate.task.cancelled() and candidate.stopped == 1
        assert (await lease(client))["spec"]["holderIdentity"] == ""  # released on the way out
    finally:
        await client.close()
