"""The site controllers in-process (`Manager(controllers=["site"])`) against the sandbox over HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from sitesupport import group, node, unit

from servicegroup.api.crds import all_crds
from servicegroup.kube.client import Client
from servicegroup.kube.errors import NotFound
from servicegroup.kube.resources import CUSTOMRESOURCEDEFINITIONS, EVENTS, NODES
from servicegroup.manager import Manager
from servicegroup.sandbox import Sandbox
from servicegroup.site.controller import COMPONENT, NODEGROUPS, NODEUNITS
from servicegroup.site.labels import OWNED_ANNOTATION
from waits import eventually

Obj = dict[str, Any]
MEMBER = "nodeunits.superedge.io"
EXAMPLES = Path(__file__).resolve().parents[2] / "src" / "servicegroup" / "examples"
TAINT = {"key": "dedicated", "value": "edge", "effect": "NoSchedule"}


def examples(name: str) -> list[Obj]:
    with open(EXAMPLES / f"{name}.yaml", encoding="utf-8") as stream:
        return [doc for doc in yaml.safe_load_all(stream) if doc]


@dataclass
class Cluster:
    """`client` is the user's; `manager.client` is the controllers' own (its write_count is ours)."""

    sandbox: Sandbox
    client: Client
    manager: Manager

    async def labels(self, name: str) -> dict[str, str]:
        return dict((await self.client.get(NODES, name))["metadata"].get("labels") or {})

    async def node(self, name: str) -> Obj:
        return await self.client.get(NODES, name)

    async def status(self, res: Any, name: str) -> Obj:
        return dict((await self.client.get(res, name)).get("status") or {})

    async def absent(self, res: Any, name: str) -> bool:
        try:
            await self.client.get(res, name)
        except NotFound:
            return True
        return False

    async def events(self, reason: str) -> list[Obj]:
        items = (await self.client.list(EVENTS, "default"))["items"]
        return [e for e in items if e.get("reason") == reason]

    async def create_all(self, objs: Iterable[Obj]) -> None:
        for obj in objs:
            res = {"Node": NODES, "NodeUnit": NODEUNITS, "NodeGroup": NODEGROUPS}[obj["kind"]]
            await self.client.create(res, obj)
            if obj["kind"] == "Node" and obj.get("status"):
                status = {"status": obj["status"]}
                await self.client.patch(NODES, obj["metadata"]["name"], status, subresource="status")

    async def settle(self) -> None:
        """Wait until every site queue is empty and idle, and every Event is posted."""

        async def idle() -> bool:
            return all(
                len(c.queue) == 0 and c.queue.waiting == 0 and not c.queue.processing
                for c in self.manager.controllers
            )

        await eventually(idle, message="site controllers did not go idle")
        await self.manager.recorder(COMPONENT).flush()

    async def assert_resync_writes_nothing(self) -> None:
        """Reconcile every key once more: a converged cluster must cost zero writes."""
        await self.settle()
        before = self.manager.client.write_count
        for informer in self.manager.informers.informers:
            informer.resync()
        await self.settle()
        assert self.manager.client.write_count == before


@pytest.fixture
async def cluster_factory() -> AsyncIterator[Callable[..., Any]]:
    started: list[tuple[Sandbox, Client, Manager]] = []

    async def make(controllers: tuple[str, ...] = ("site",), simulate: bool = False) -> Cluster:
        sandbox = Sandbox(simulate=simulate)
        url = await sandbox.start("127.0.0.1", 0)
        client = Client(url)
        manager = Manager(Client(url), list(controllers))
        started.append((sandbox, client, manager))
        for crd in all_crds():
            await client.create(CUSTOMRESOURCEDEFINITIONS, crd)
        await manager.start()
        return Cluster(sandbox, client, manager)

    yield make
    for sandbox, client, manager in reversed(started):
        await manager.stop()
        await manager.client.close()
        await client.close()
        await sandbox.stop()


@pytest.fixture
async def cluster(cluster_factory: Callable[..., Any]) -> Cluster:
    result: Cluster = await cluster_factory()
    return result


def plain_nodes() -> list[Obj]:
    """The docs' five nodes without the `location` label (the site manager is to set it)."""
    nodes = []
    for n in examples("00-nodes"):
        n["metadata"]["labels"].pop("location")
        n["status"] = {"conditions": [{"type": "Ready", "status": "True"}]}
        nodes.append(n)
    return nodes


async def test_docs_example_labels_members_by_list_and_selector(cluster: Cluster) -> None:
    await cluster.create_all([*plain_nodes(), *examples("07-nodeunits")])

    async def labelled() -> bool:
        bj, gz = await cluster.labels("bj-1"), await cluster.labels("gz-3")
        assert bj.get("beijing") == MEMBER and bj.get("site") == "beijing" and bj.get("location") == "beijing"
        assert gz.get("guangzhou") == MEMBER and gz.get("location") == "guangzhou" and "site" not in gz
        return True

    await eventually(labelled)

    async def statuses() -> bool:
        assert (await cluster.status(NODEUNITS, "beijing")).get("readyRate") == "2/2"
        gz = await cluster.status(NODEUNITS, "guangzhou")
        assert gz.get("readyRate") == "3/3" and gz.get("readyNodes") == ["gz-1", "gz-2", "gz-3"]
        ng = await cluster.status(NODEGROUPS, "location")
        assert ng.get("nodeUnits") == ["beijing", "guangzhou"] and ng.get("unitNumber") == 2
        return True

    await eventually(statuses)
    unit_obj = await cluster.client.get(NODEUNITS, "beijing")
    assert "site.superedge.io/nodeunit" in unit_obj["metadata"]["finalizers"]
    assert unit_obj["metadata"]["labels"]["location"] == "nodegroups.superedge.io"
    assert "setNode" not in unit_obj["spec"] or "location" not in unit_obj["spec"]["setNode"].get(
        "labels", {}
    )
    await cluster.assert_resync_writes_nothing()
    joined = " ".join(e["message"] for e in await cluster.events("NodeJoined"))
    for name in ("bj-1", "bj-2"):
        assert name in joined and "joined NodeUnit beijing" in joined
    assert "gz-3" in joined and "joined NodeUnit guangzhou" in joined


async def test_nodes_join_and_leave_a_selector_only_unit(cluster: Cluster) -> None:
    await cluster.create_all(
        [
            node("a", region="south"),
            node("b", region="north"),
            unit("south", selector={"matchLabels": {"region": "south"}}, setNode={"labels": {"site": "s"}}),
        ]
    )

    async def a_member() -> bool:
        assert (await cluster.labels("a")).get("site") == "s"
        assert (await cluster.status(NODEUNITS, "south")).get("readyNodes") == ["a"]
        return True

    await eventually(a_member)
    await cluster.client.patch(NODES, "b", {"metadata": {"labels": {"region": "south"}}})
    await cluster.client.patch(NODES, "a", {"metadata": {"labels": {"region": "north"}}})

    async def swapped() -> bool:
        a, b = await cluster.labels("a"), await cluster.labels("b")
        assert a == {"region": "north"}, a  # SuperEdge never cleaned selector-only units
        assert b.get("site") == "s" and b.get("south") == MEMBER
        assert (await cluster.status(NODEUNITS, "south")).get("readyNodes") == ["b"]
        return True

    await eventually(swapped)
    await cluster.settle()
    assert [e["message"] for e in await cluster.events("NodeLeft")] == ["node a left NodeUnit south"]
    await cluster.assert_resync_writes_nothing()


async def test_deleting_a_unit_removes_its_labels_annotations_and_taints(cluster: Cluster) -> None:
    other_taint = {"key": "gpu", "effect": "NoSchedule"}
    n = node("n1", keep="me")
    n["spec"]["taints"] = [other_taint]
    set_node = {"labels": {"site": "x"}, "annotations": {"owner": "ops"}, "taints": [TAINT]}
    await cluster.create_all([n, unit("u", nodes=["n1"], setNode=set_node)])

    async def applied() -> bool:
        live = await cluster.node("n1")
        assert live["metadata"]["labels"].get("site") == "x"
        assert live["metadata"]["annotations"].get("owner") == "ops"
        assert live["spec"]["taints"] == [other_taint, TAINT]
        return True

    await eventually(applied)
    await cluster.client.delete(NODEUNITS, "u")

    async def cleaned() -> bool:
        assert await cluster.absent(NODEUNITS, "u")
        live = await cluster.node("n1")
        assert live["metadata"]["labels"] == {"keep": "me"}
        assert set(live["metadata"].get("annotations") or {}) <= set()
        assert live["spec"]["taints"] == [other_taint]
        return True

    await eventually(cleaned)


async def test_unschedulable_cordons_members_and_undoes_only_its_own_cordon(cluster: Cluster) -> None:
    admin = node("admin-cordoned")
    admin["spec"]["unschedulable"] = True
    await cluster.create_all(
        [node("free"), admin, unit("u", nodes=["free", "admin-cordoned"], unschedulable=True)]
    )

    async def cordoned() -> bool:
        assert (await cluster.node("free"))["spec"].get("unschedulable") is True
        assert "u" in await cluster.labels("admin-cordoned")
        return True

    await eventually(cordoned)
    await cluster.client.patch(NODEUNITS, "u", {"spec": {"unschedulable": False}})

    async def released() -> bool:
        assert not (await cluster.node("free"))["spec"].get("unschedulable")
        return True

    await eventually(released)
    await cluster.settle()
    assert (await cluster.node("admin-cordoned"))["spec"]["unschedulable"] is True
    await cluster.assert_resync_writes_nothing()


async def test_auto_find_creates_units_and_follows_new_nodes(cluster: Cluster) -> None:
    await cluster.create_all([*plain_nodes(), group("area", autoFindNodeKeys=["region"])])

    async def found() -> bool:
        ng = await cluster.status(NODEGROUPS, "area")
        assert ng.get("nodeUnits") == ["north", "south"]
        assert (await cluster.labels("gz-1")).get("area") == "south"
        assert (await cluster.labels("bj-1")).get("north") == MEMBER
        return True

    await eventually(found)
    north = await cluster.client.get(NODEUNITS, "north")
    assert north["spec"]["type"] == "edge"
    assert north["metadata"]["labels"]["area"] == "nodegroups.superedge.io"
    assert "site.superedge.io/node-group-auto-keys-hash" in north["metadata"]["labels"]
    # A node with a new value: SuperEdge waited for the group's 30 s resync; node events suffice here.
    await cluster.client.create(NODES, node("sh-1", region="east"))

    async def east() -> bool:
        assert (await cluster.labels("sh-1")).get("area") == "east"
        return True

    await eventually(east)
    await cluster.assert_resync_writes_nothing()
    await cluster.client.delete(NODEGROUPS, "area")

    async def ungrouped() -> bool:
        assert "area" not in await cluster.labels("gz-1")
        unit_labels = (await cluster.client.get(NODEUNITS, "south"))["metadata"]["labels"]
        assert "area" not in unit_labels
        return True

    await eventually(ungrouped)


async def test_two_units_of_one_group_on_one_node_alphabetical_winner(cluster: Cluster) -> None:
    await cluster.create_all(
        [
            node("n1"),
            node("n2"),
            unit("zeta", nodes=["n1", "n2"]),
            unit("alpha", nodes=["n1"]),
            unit("other", nodes=["n1"]),
            group("location", nodeUnits=["zeta", "alpha"]),
            group("hw", nodeUnits=["other"]),
        ]
    )

    async def resolved() -> bool:
        n1, n2 = await cluster.labels("n1"), await cluster.labels("n2")
        assert n1.get("location") == "alpha" and n1.get("hw") == "other" and n2.get("location") == "zeta"
        assert {"alpha", "zeta", "other"} <= set(n1)
        zeta = await cluster.status(NODEUNITS, "zeta")
        conflict = next(c for c in zeta["conditions"] if c["type"] == "Conflict")
        assert conflict["status"] == "True" and "n1" in conflict["message"] and "alpha" in conflict["message"]
        alpha = await cluster.status(NODEUNITS, "alpha")
        assert next(c for c in alpha["conditions"] if c["type"] == "Conflict")["status"] == "False"
        ng = await cluster.status(NODEGROUPS, "location")
        assert next(c for c in ng["conditions"] if c["type"] == "Conflict")["status"] == "True"
        return True

    await eventually(resolved)
    await cluster.settle()
    warnings = await cluster.events("NodeConflict")
    assert {e["involvedObject"]["name"] for e in warnings} == {"zeta", "location"}
    assert all(e["type"] == "Warning" for e in warnings)
    await cluster.assert_resync_writes_nothing()  # no flapping: the winner is stable


async def test_invalid_set_node_is_a_condition_and_event_not_a_stuck_node(cluster: Cluster) -> None:
    await cluster.create_all(
        [node("n1"), unit("u", nodes=["n1"], setNode={"labels": {"good": "v", "bad key": "v"}})]
    )

    async def reported() -> bool:
        assert (await cluster.labels("n1")).get("good") == "v"
        valid = next(c for c in (await cluster.status(NODEUNITS, "u"))["conditions"] if c["type"] == "Valid")
        assert valid["status"] == "False" and "bad key" in valid["message"]
        return True

    await eventually(reported)
    await cluster.settle()
    assert [e["involvedObject"]["name"] for e in await cluster.events("InvalidSpec")] == ["u"]


async def test_foreign_labels_and_ownership_record(cluster: Cluster) -> None:
    """A label that already had the wanted value is not ours and survives the unit's removal."""
    await cluster.create_all(
        [node("n1", site="x"), unit("u", nodes=["n1"], setNode={"labels": {"site": "x"}})]
    )

    async def member() -> bool:
        live = await cluster.node("n1")
        assert live["metadata"]["labels"].get("u") == MEMBER
        assert "site" not in live["metadata"]["annotations"][OWNED_ANNOTATION]
        return True

    await eventually(member)
    await cluster.client.delete(NODEUNITS, "u")

    async def gone() -> bool:
        assert await cluster.labels("n1") == {"site": "x"}
        return True

    await eventually(gone)


@pytest.mark.slow
async def test_grid_follows_a_node_group(cluster_factory: Callable[..., Any]) -> None:
    """Site labels the nodes, the grid controller makes one Deployment per NodeUnit, status reports it."""
    from servicegroup.kube.resources import DEPLOYMENTS, crd_resource

    cluster: Cluster = await cluster_factory(("site", "grid"), simulate=True)
    grids = crd_resource("superedge.io", "v1", "deploymentgrids", "DeploymentGrid")
    await cluster.create_all([*plain_nodes(), *examples("07-nodeunits")])
    await cluster.client.create(grids, examples("01-deploymentgrid")[0])

    async def deployed() -> bool:
        names = {d["metadata"]["name"] for d in (await cluster.client.list(DEPLOYMENTS, "default"))["items"]}
        assert names == {"deploymentgrid-demo-beijing", "deploymentgrid-demo-guangzhou"}, names
        ng = await cluster.status(NODEGROUPS, "location")
        [workload] = ng["workloadStatus"]
        assert workload["workloadName"] == "default/deploymentgrid-demo"
        assert workload.get("readyUnit") == ["beijing", "guangzhou"], workload
        return True

    await eventually(deployed, timeout=60)
    await cluster.client.patch(NODEGROUPS, "location", {"spec": {"nodeUnits": ["beijing"]}})

    async def shrunk() -> bool:
        names = {d["metadata"]["name"] for d in (await cluster.client.list(DEPLOYMENTS, "default"))["items"]}
        assert names == {"deploymentgrid-demo-beijing"}, names
        return True

    await eventually(shrunk, timeout=60)
    await asyncio.sleep(0)


async def test_kubectl_get_nu_columns_show_type_and_ready_rate(cluster: Cluster) -> None:
    """`kubectl get nu` asks for a Table: the printer columns come from our CRD."""
    import aiohttp

    await cluster.create_all([node("n1"), unit("u", type="cloud", nodes=["n1"])])

    async def ready() -> bool:
        assert (await cluster.status(NODEUNITS, "u")).get("readyRate") == "1/1"
        return True

    await eventually(ready)
    accept = "application/json;as=Table;v=v1;g=meta.k8s.io"
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{cluster.client.base_url}{NODEUNITS.path()}", headers={"Accept": accept}) as response,
    ):
        table = await response.json()
    names = [c["name"] for c in table["columnDefinitions"]]
    assert names[:3] == ["Name", "TYPE", "READY"] and "DELETING" in names
    [row] = table["rows"]
    assert row["cells"][:3] == ["u", "cloud", "1/1"]


async def test_labelling_converges_through_api_errors_and_dropped_watches(cluster: Cluster) -> None:
    """409s and 500s on our writes and broken watches only delay convergence; nothing is lost."""
    await cluster.create_all([node(f"n{i}", zone="z") for i in range(6)])
    cluster.sandbox.faults.set(
        errors=[
            {"code": 409, "rate": 0.5, "verb": "patch", "resource": "nodes"},
            {"code": 500, "rate": 0.3, "verb": "patch", "resource": "nodeunits"},
        ],
        seed=7,
    )
    set_node = {"labels": {"site": "x"}, "taints": [TAINT]}
    await cluster.client.create(
        NODEUNITS, unit("u", selector={"matchLabels": {"zone": "z"}}, setNode=set_node)
    )
    cluster.sandbox.faults.drop_watches()

    async def converged() -> bool:
        for i in range(6):
            live = await cluster.node(f"n{i}")
            assert live["metadata"]["labels"].get("site") == "x" and live["spec"].get("taints") == [TAINT]
        assert (await cluster.status(NODEUNITS, "u")).get("readyRate") == "6/6"
        return True

    await eventually(converged, timeout=30)
    assert cluster.sandbox.faults.injected > 0
    cluster.sandbox.faults.clear()
    await cluster.assert_resync_writes_nothing()
