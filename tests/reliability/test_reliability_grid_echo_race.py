"""Regression test for a bug the leader-failover scenario exposed: a grid change waited up to
EXPECTATION_TTL (30 s) when a child's status was written between the controller's write and its
bookkeeping.

After applying a plan, GridController records each written child as "expected" until the cache
shows the write. It used to require exactly the written resourceVersion: when the Deployment
controller (here: this test, as the sandbox's simulator does) updates the child's status right
after the write and the reply to the write arrives late (the tap delays it), the echo has gone by
and the cache holds a *newer* version; the entry stayed pending until its TTL and every plan
skipped that child, so the grid's next spec change was not applied for up to 30 s.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from reliability_support import Tap
from reliability_worlds import examples, install_crds

from servicegroup.grid.kinds import DEPLOYMENT_GRIDS
from servicegroup.kube.client import Client
from servicegroup.kube.objects import ObjectKey
from servicegroup.kube.resources import DEPLOYMENTS, NODES
from servicegroup.manager import Manager
from servicegroup.sandbox import Sandbox
from waits import eventually

pytestmark = pytest.mark.timeout(120)
KEY = ObjectKey("default", "deploymentgrid-demo")


async def play_deployment_controller(client: Client) -> None:
    """Report every new Deployment generation as observed, as soon as it is seen."""
    listed = await client.list(DEPLOYMENTS, "default")
    rv = listed["metadata"]["resourceVersion"]
    async for event in client.watch(DEPLOYMENTS, "default", resource_version=rv):
        obj: dict[str, Any] = event["object"]
        meta = obj["metadata"]
        if event["type"] != "DELETED" and (obj.get("status") or {}).get("observedGeneration") != meta.get(
            "generation"
        ):
            status = {
                "status": {"observedGeneration": meta["generation"], "replicas": obj["spec"]["replicas"]}
            }
            with contextlib.suppress(Exception):
                await client.patch(
                    DEPLOYMENTS, meta["name"], status, namespace="default", subresource="status"
                )


@pytest.fixture
async def manager() -> AsyncIterator[tuple[Client, Manager]]:
    sandbox = Sandbox(bookmark_interval=0.2)
    await sandbox.start("127.0.0.1", 0)
    client = Client(sandbox.url)
    await install_crds(client)
    for node in examples("00-nodes"):
        await client.create(NODES, node)
    tap = Tap(sandbox.url, "manager")
    await tap.start()
    # the reply to a child update is 100 ms late: the status write lands in the cache first
    tap.response_delay = lambda method, path: (
        0.1 if method in ("PUT", "PATCH") and "/deployments/" in path else 0
    )
    mgr = Manager(Client(tap.url), ["grid"])
    await mgr.start()
    status_client = Client(sandbox.url)
    status_writer = asyncio.create_task(play_deployment_controller(status_client))
    try:
        yield client, mgr
    finally:
        status_writer.cancel()
        await asyncio.gather(status_writer, return_exceptions=True)
        await status_client.close()
        await mgr.stop()
        await tap.stop()
        await mgr.client.close()
        await client.close()
        await sandbox.stop()


def grid_controller(mgr: Manager) -> Any:
    from servicegroup.grid.kinds import DEPLOYMENT_GRID

    controller = next(c for c in mgr.controllers if c.name == DEPLOYMENT_GRID.controller_name)
    return controller.reconcile.__self__  # type: ignore[attr-defined]


async def test_status_write_racing_the_echo_does_not_hold_the_next_change(
    manager: tuple[Client, Manager],
) -> None:
    client, mgr = manager
    await client.create(DEPLOYMENT_GRIDS, examples("01-deploymentgrid")[0], "default")
    expectations = grid_controller(mgr).expectations
    for replicas in (3, 4, 5, 6):
        patch = {"spec": {"template": {"replicas": replicas}}}
        await client.patch(DEPLOYMENT_GRIDS, "deploymentgrid-demo", patch, namespace="default")

        async def applied(replicas: int = replicas) -> bool:
            children = (await client.list(DEPLOYMENTS, "default"))["items"]
            return len(children) == 2 and all(c["spec"]["replicas"] == replicas for c in children)

        # bounds far below the 30 s TTL: the cache holds the write (or newer) within milliseconds
        await eventually(applied, timeout=8, message=f"replicas {replicas} applied to every child")

        async def settled() -> bool:
            return not expectations.pending(KEY)

        await eventually(settled, timeout=5, message="expectations settled once the cache is newer")
