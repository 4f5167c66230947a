"""Two `servicegroup manager --leader-elect` processes against one sandbox, as the Deployment's two
replicas run: each talks through its own recording proxy (a per-process audit log), so we can see
that only the Lease holder writes, and that the follower takes over within the lease duration
after the leader is SIGKILLed (no graceful release)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from deploy_support import (
    MANAGER_NAMESPACE,
    Component,
    RecordingProxy,
    component,
    create,
    example,
    exists,
    installed_sandbox,
    scrape,
    status_of,
)

from servicegroup.kube.client import Client
from servicegroup.kube.resources import DEPLOYMENTS, LEASES
from servicegroup.sandbox import Sandbox
from waits import eventually

pytestmark = pytest.mark.slow

LEASE = "servicegroup-manager"
LEASE_DURATION, RENEW_DEADLINE, RETRY_PERIOD = 4.0, 3.0, 0.5
JITTER = 1.2  # kube/leader.py: retries wait retry_period x [1, 1.2]


@pytest.fixture
async def cluster() -> AsyncIterator[tuple[Sandbox, Client]]:
    async with installed_sandbox() as installed:
        yield installed


def manager_args(kubeconfig: Path, identity: str) -> list[str]:
    return [
        "manager",
        f"--kubeconfig={kubeconfig}",
        "--controllers=grid,site",
        "--leader-elect",
        f"--leader-elect-namespace={MANAGER_NAMESPACE}",
        f"--identity={identity}",
        f"--lease-duration={LEASE_DURATION}",
        f"--renew-deadline={RENEW_DEADLINE}",
        f"--retry-period={RETRY_PERIOD}",
        "--health-listen=127.0.0.1:0",
    ]


async def holder(client: Client) -> str:
    if not await exists(client, LEASES, LEASE, MANAGER_NAMESPACE):
        return ""
    return str((await client.get(LEASES, LEASE, MANAGER_NAMESPACE))["spec"].get("holderIdentity") or "")


async def leader_gauge(health: str) -> float:
    family = (await scrape(health))["servicegroup_leader"]
    values = [s.value for s in family.samples if s.labels["lease"] == f"{MANAGER_NAMESPACE}/{LEASE}"]
    return values[0] if values else 0.0


async def test_only_the_leader_writes_and_the_follower_takes_over_after_sigkill(
    cluster: tuple[Sandbox, Client], tmp_path: Path
) -> None:
    sandbox, client = cluster
    audits = {identity: RecordingProxy(sandbox.url) for identity in ("a", "b")}
    urls = {identity: await audit.start() for identity, audit in audits.items()}
    try:
        configs = {i: audits[i].kubeconfig(urls[i], tmp_path / f"kubeconfig-{i}") for i in audits}
        async with component(manager_args(configs["a"], "a"), tmp_path / "a.log") as leader:
            await eventually(lambda: _is(client, "a"), timeout=30, message="a leads")
            async with component(manager_args(configs["b"], "b"), tmp_path / "b.log") as follower:
                await _fail_over(client, audits, leader, follower)
        assert await holder(client) == "", "the new leader, stopped with SIGTERM, released the lease"
    finally:
        for audit in audits.values():
            await audit.stop()


async def _fail_over(
    client: Client, audits: dict[str, RecordingProxy], leader: Component, follower: Component
) -> None:
    health = {
        "a": await leader.address("health server listening on"),
        "b": await follower.address("health server listening on"),
    }
    await eventually(lambda: _ready(health["b"]), timeout=30, message="the follower is ready")
    await create(client, *example("01-deploymentgrid.yaml"))
    await eventually(
        lambda: exists(client, DEPLOYMENTS, "deploymentgrid-demo-beijing"),
        message="leader reconciles",
    )

    async def contending() -> bool:
        return any(c.resource == "leases" for c in audits["b"].calls)

    await eventually(contending, message="the follower contends for the lease")
    assert {c.verb for c in audits["b"].calls if c.resource == "leases"} == {"get"}
    assert not audits["b"].writes, f"the follower wrote: {audits['b'].writes}"
    assert any(c.resource == "deployments" and c.verb == "create" for c in audits["a"].writes)
    assert (await leader_gauge(health["a"]), await leader_gauge(health["b"])) == (1.0, 0.0)

    await leader.kill()  # SIGKILL: the lease is not released, it must expire
    killed = time.monotonic()
    bound = LEASE_DURATION + 2 * RETRY_PERIOD * JITTER + 2.0  # + scheduling slack
    await eventually(lambda: _is(client, "b"), timeout=bound, message="b takes over in the lease time")
    assert time.monotonic() - killed <= bound
    assert await leader_gauge(health["b"]) == 1.0
    grid = example("01-deploymentgrid.yaml")[0]
    grid["metadata"]["name"] = "after-failover"
    await create(client, grid)
    await eventually(
        lambda: exists(client, DEPLOYMENTS, "after-failover-beijing"), message="new leader reconciles"
    )
    assert any(c.resource == "deployments" and c.verb == "create" for c in audits["b"].writes)
    assert await follower.terminate() == 0


async def _is(client: Client, identity: str) -> bool:
    return await holder(client) == identity


async def _ready(health: str) -> bool:
    return await status_of(f"{health}/readyz") == 200
