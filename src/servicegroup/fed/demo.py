"""Demo hook: the docs' fed example across a control cluster and two member clusters.

    lines = await demo_lines()          # starts and stops three sandboxes itself
    # ["control cluster http://127.0.0.1:..., members: member-a (zone1), member-b (zone2)",
    #  "member-a got Deployments: deploymentgrid-demo-zone1 2/2",
    #  "member-b got Deployments: deploymentgrid-demo-zone2 3/3", ...]

Three in-process sandboxes play the clusters: the control cluster runs the `fed` controller
(registered members are kubeconfig Secrets, exactly as in production), each member runs the
`grid` controller over its own nodes (zone1 nodes in member-a, zone2 nodes in member-b) and a
simulated kubelet. The control cluster runs no `grid` controller: it holds no unit of a fed grid,
and its status is the fed controller's aggregate (see docs/fed.md). `fleet` is also what the fed
tests and the benchmark start.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import importlib.resources
import tempfile
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, cast

import yaml

from servicegroup.api.crds import all_crds
from servicegroup.fed.controller import GRID_CONTROLLER, FedController
from servicegroup.fed.members import DEFAULT_NAMESPACE, KUBECONFIG_KEY, MEMBER_LABEL
from servicegroup.grid.kinds import DEPLOYMENT_GRIDS
from servicegroup.kube.client import Client
from servicegroup.kube.conditions import get_condition
from servicegroup.kube.resources import CUSTOMRESOURCEDEFINITIONS, DEPLOYMENTS, NAMESPACES, NODES, SECRETS
from servicegroup.manager import Manager
from servicegroup.sandbox import Sandbox

Obj = dict[str, Any]

EXAMPLE: Final = "06-deploymentgrid-fed.yaml"
GRID_NAME: Final = "deploymentgrid-demo"


def node(name: str, **labels: str) -> Obj:
    """A Node with these labels."""
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": dict(labels)}}


DEMO_MEMBERS: Final[Mapping[str, Sequence[Obj]]] = {
    "member-a": (node("a-1", zone="zone1"), node("a-2", zone="zone1")),
    "member-b": (node("b-1", zone="zone2"),),
}


@dataclass
class Cluster:
    """One sandbox; `client` is the user's, `manager.client` the controllers'."""

    name: str
    sandbox: Sandbox
    client: Client
    manager: Manager


@dataclass
class Fleet:
    """The control cluster and its members."""

    control: Cluster
    members: dict[str, Cluster] = field(default_factory=dict)

    @property
    def fed(self) -> FedController:
        """The FedController running in the control manager."""
        runner = next(c for c in self.control.manager.controllers if c.name == GRID_CONTROLLER)
        return cast(FedController, cast(Any, runner.reconcile).__self__)


def member_secret(name: str, kubeconfig: bytes, namespace: str = DEFAULT_NAMESPACE) -> Obj:
    """The Secret registering member `name` (docs/fed.md)."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace, "labels": {MEMBER_LABEL: "true"}},
        "data": {KUBECONFIG_KEY: base64.b64encode(kubeconfig).decode()},
    }


async def start_cluster(
    name: str, controllers: Sequence[str], nodes: Sequence[Obj], *, simulate: bool, workers: int = 2
) -> Cluster:
    """A started sandbox with the grid CRDs and `nodes`; its manager is created, not started."""
    sandbox = Sandbox(simulate=simulate)
    url = await sandbox.start("127.0.0.1", 0)
    client = Client(url)
    for crd in all_crds():
        await client.create(CUSTOMRESOURCEDEFINITIONS, crd)
    for obj in nodes:
        await client.create(NODES, obj)
    return Cluster(name, sandbox, client, Manager(Client(url), controllers, workers=workers))


async def stop_cluster(cluster: Cluster) -> None:
    """Stop the manager, close both clients, stop the sandbox."""
    await cluster.manager.stop()
    await cluster.manager.client.close()
    await cluster.client.close()
    await cluster.sandbox.stop()


@contextlib.asynccontextmanager
async def fleet(
    directory: Path,
    members: Mapping[str, Sequence[Obj]] = DEMO_MEMBERS,
    *,
    workers: int = 2,
    simulate: bool = True,
    control_controllers: Sequence[str] = ("fed",),
    control_nodes: Sequence[Obj] = (),
) -> AsyncIterator[Fleet]:
    """Members running `grid` (and, with `simulate`, pods), a control cluster running `fed` (or
    `control_controllers`, on `control_nodes`) with every member registered."""
    started: list[Cluster] = []
    try:
        running: dict[str, Cluster] = {}
        for name, nodes in members.items():
            cluster = await start_cluster(name, ["grid"], nodes, simulate=simulate, workers=workers)
            started.append(cluster)
            await cluster.manager.start()
            running[name] = cluster
        control = await start_cluster(
            "control", control_controllers, control_nodes, simulate=False, workers=workers
        )
        started.append(control)
        namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": DEFAULT_NAMESPACE}}
        await control.client.create(NAMESPACES, namespace)
        for name, cluster in running.items():
            path = cluster.sandbox.write_kubeconfig(directory / f"{name}.kubeconfig")
            await control.client.create(SECRETS, member_secret(name, path.read_bytes()))
        await control.manager.start()
        yield Fleet(control, running)
    finally:
        for cluster in reversed(started):
            await stop_cluster(cluster)


def example_grid() -> Obj:
    """The docs' fed example (examples/06-deploymentgrid-fed.yaml)."""
    text = importlib.resources.files("servicegroup").joinpath("examples", EXAMPLE).read_text()
    grid: Obj = yaml.safe_load(text)
    return grid


async def demo_lines(*, within: float = 60.0) -> list[str]:
    """Run the fed walk-through and return what a user would check with kubectl, line by line."""
    with tempfile.TemporaryDirectory(prefix="servicegroup-fed-demo-") as directory:
        async with fleet(Path(directory)) as started:
            await started.control.client.create(DEPLOYMENT_GRIDS, example_grid())
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(within):
                    await _converged(started.control.client)
            return await _lines(started)


async def _converged(client: Client) -> None:
    """Wait until the control grid reports Ready (polling: the demo has no informer of its own)."""
    while True:
        grid = await client.get(DEPLOYMENT_GRIDS, GRID_NAME, "default")
        ready = get_condition((grid.get("status") or {}).get("conditions"), "Ready")
        if ready is not None and ready.get("status") == "True":
            return
        await asyncio.sleep(0.2)


async def _lines(started: Fleet) -> list[str]:
    placement = ", ".join(
        f"{name} ({','.join(sorted({n['metadata']['labels']['zone'] for n in DEMO_MEMBERS[name]}))})"
        for name in started.members
    )
    lines = [f"control cluster {started.control.sandbox.url}, members: {placement}"]
    for name, cluster in started.members.items():
        listed = await cluster.client.list(DEPLOYMENTS, "default")
        items = sorted(listed["items"], key=lambda d: str(d["metadata"]["name"]))
        got = [f"{d['metadata']['name']} {_ready_of(d.get('status'))}/{d['spec']['replicas']}" for d in items]
        lines.append(f"{name} got Deployments: {', '.join(got) or 'none'}")
    grid = await started.control.client.get(DEPLOYMENT_GRIDS, GRID_NAME, "default")
    status = grid.get("status") or {}
    distributed = get_condition(status.get("conditions"), "Distributed") or {}
    lines.append(f"control {GRID_NAME} distributed to {distributed.get('message', '?')}")
    for unit, state in sorted((status.get("states") or {}).items()):
        lines.append(
            f"control {GRID_NAME} status.states.{unit}: {_ready_of(state)}/{state.get('replicas', 0)} ready"
        )
    for type_ in ("Ready", "MembersReachable"):
        condition = get_condition(status.get("conditions"), type_) or {}
        lines.append(
            f"control {GRID_NAME} {type_}={condition.get('status', '?')}: {condition.get('message', '')}"
        )
    return lines


def _ready_of(status: Mapping[str, Any] | None) -> int:
    return int((status or {}).get("readyReplicas") or 0)
