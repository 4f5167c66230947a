"""A sandbox (simulating pods and workload status) with every CRD we ship (grids, config grids,
NodeUnits), the docs' five nodes and a Manager running the grid controllers in-process (`grid` and
`secretgrid`, unless the test is marked `@pytest.mark.controllers(...)`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from grid.support import example_nodes
from servicegroup.api.crds import all_crds
from servicegroup.kube.client import Client
from servicegroup.kube.resources import CUSTOMRESOURCEDEFINITIONS, NODES
from servicegroup.manager import Manager
from servicegroup.sandbox import Sandbox


@dataclass
class Cluster:
    """`client` is the test's (the user's); `manager.client` is the controllers' own."""

    sandbox: Sandbox
    client: Client
    manager: Manager


@pytest.fixture
async def cluster(request: pytest.FixtureRequest) -> AsyncIterator[Cluster]:
    marker = request.node.get_closest_marker("controllers")
    sandbox = Sandbox(simulate=True)
    url = await sandbox.start("127.0.0.1", 0)
    client = Client(url)
    manager = Manager(Client(url), list(marker.args) if marker else ["grid", "secretgrid"])
    try:
        for crd in all_crds():
            await client.create(CUSTOMRESOURCEDEFINITIONS, crd)
        for node in example_nodes():
            await client.create(NODES, node)
        await manager.start()
        yield Cluster(sandbox, client, manager)
    finally:
        await manager.stop()
        await manager.client.close()
        await client.close()
        await sandbox.stop()
