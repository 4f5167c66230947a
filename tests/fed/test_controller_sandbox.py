"""The fed controller against three real sandboxes: control (fed) and two members (grid)."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import pytest

from grid.support import example
from servicegroup.api.labels import DIS_LABEL, FED_LABEL
from servicegroup.fed import reasons
from servicegroup.fed.controller import ENV_CONTROL_NAME, ENV_PROBE_SECONDS, GridRef
from servicegroup.fed.demo import DEMO_MEMBERS, Fleet, fleet, member_secret
from servicegroup.fed.distribute import FED_BY_KIND
from servicegroup.fed.members import CONTROL_ANNOTATION, DEFAULT_NAMESPACE, FED_FINALIZER
from servicegroup.grid.kinds import CONFIGMAP_GRIDS, DEPLOYMENT_GRIDS, SERVICE_GRIDS, STATEFULSET_GRIDS
from servicegroup.kube.client import Client
from servicegroup.kube.conditions import get_condition
from servicegroup.kube.errors import Conflict, NotFound
from servicegroup.kube.resources import (
    CONFIGMAPS,
    CUSTOMRESOURCEDEFINITIONS,
    DEPLOYMENTS,
    EVENTS,
    NODES,
    SECRETS,
    SERVICES,
    STATEFULSETS,
    Resource,
)
from waits import eventually

Obj = dict[str, Any]
DG = "deploymentgrid-demo"


async def deployments(client: Client) -> dict[str, int]:
    """name -> spec.replicas of every Deployment in `default`."""
    listed = await client.list(DEPLOYMENTS, "default")
    return {item["metadata"]["name"]: item["spec"]["replicas"] for item in listed["items"]}


async def exists(client: Client, res: Resource, name: str) -> bool:
    """Whether `default/name` exists (never raises NotFound, so `eventually` can retry)."""
    try:
        await client.get(res, name, "default")
    except NotFound:
        return False
    return True


async def control_grid(fleet: Fleet) -> Obj:
    return await fleet.control.client.get(DEPLOYMENT_GRIDS, DG, "default")


def condition(grid: Obj, type_: str) -> Obj:
    found = get_condition((grid.get("status") or {}).get("conditions"), type_)
    assert found is not None, f"no {type_} condition in {grid.get('status')}"
    return found


async def converged(fleet: Fleet) -> Obj:
    """Wait until the control grid reports every unit ready and every copy current."""

    async def probe() -> Obj:
        grid = await control_grid(fleet)
        assert condition(grid, "Ready")["status"] == "True", grid.get("status")
        assert condition(grid, reasons.DISTRIBUTED)["status"] == "True", grid.get("status")
        return grid

    return await eventually(probe, timeout=30, message="federation did not converge")


async def test_distributes_each_member_its_own_units_and_aggregates_status(federation: Fleet) -> None:
    a, b = federation.members["member-a"], federation.members["member-b"]
    await federation.control.client.create(DEPLOYMENT_GRIDS, example("06-deploymentgrid-fed"))

    grid = await converged(federation)

    # canary as in one cluster: zone1 runs test1 (2 replicas) in A, zone2 runs test2 (3) in B
    assert await deployments(a.client) == {f"{DG}-zone1": 2}
    assert await deployments(b.client) == {f"{DG}-zone2": 3}
    assert await deployments(federation.control.client) == {}
    status = grid["status"]
    assert status["states"]["zone1"]["readyReplicas"] == 2
    assert status["states"]["zone2"]["readyReplicas"] == 3
    assert (status["units"], status["readyUnits"]) == (2, 2)
    # the CRD schema keeps the fed controller's unit → member map (not pruned by the API server)
    assert status["clusters"] == {"zone1": "member-a", "zone2": "member-b"}
    assert condition(grid, reasons.DISTRIBUTED)["message"] == "member-a: zone1; member-b: zone2"
    assert condition(grid, reasons.MEMBERS_REACHABLE)["status"] == "True"
    assert FED_FINALIZER in grid["metadata"]["finalizers"]
    copy = await a.client.get(DEPLOYMENT_GRIDS, DG, "default")
    assert copy["metadata"]["labels"][DIS_LABEL] == "yes"
    assert copy["metadata"]["annotations"][CONTROL_ANNOTATION] == "control"
    assert "ownerReferences" not in copy["metadata"]
    assert copy["spec"] == grid["spec"]


async def test_converged_resync_writes_nothing(federation: Fleet) -> None:
    await federation.control.client.create(DEPLOYMENT_GRIDS, example("06-deploymentgrid-fed"))
    await converged(federation)
    fed = federation.fed
    clients = [federation.control.manager.client, *(m.client for m in fed.members.values())]
    ref = GridRef(FED_BY_KIND["DeploymentGrid"].kind, "default", DG)

    async def quiet() -> bool:  # the last status echoes have arrived: a pass writes nothing
        before = [c.write_count for c in clients]
        with contextlib.suppress(Conflict):  # a worker may still be writing the last status
            await fed.reconcile(ref)
        return [c.write_count for c in clients] == before

    await eventually(quiet, message="reconcile kept writing")
    before = [c.write_count for c in clients]
    for _ in range(3):
        await fed.reconcile(ref)
    assert [c.write_count for c in clients] == before


async def test_unit_moving_between_members_moves_its_deployment(federation: Fleet) -> None:
    a, b = federation.members["member-a"], federation.members["member-b"]
    await federation.control.client.create(DEPLOYMENT_GRIDS, example("06-deploymentgrid-fed"))
    await converged(federation)

    # zone2 moves from B to A: B's only node leaves it, A's second node joins it
    await b.client.patch(NODES, "b-1", {"metadata": {"labels": {"zone": None}}})
    await a.client.patch(NODES, "a-2", {"metadata": {"labels": {"zone": "zone2"}}})

    async def moved() -> bool:
        assert await deployments(a.client) == {f"{DG}-zone1": 2, f"{DG}-zone2": 3}
        assert await deployments(b.client) == {}
        assert not await exists(b.client, DEPLOYMENT_GRIDS, DG)  # B holds no unit: copy removed
        grid = await control_grid(federation)
        assert condition(grid, reasons.DISTRIBUTED)["message"] == "member-a: zone1,zone2"
        assert condition(grid, "Ready")["status"] == "True"
        return True

    await eventually(moved, timeout=30, message="zone2 did not move to member-a")


async def test_member_outage_keeps_its_copy_and_it_catches_up(federation: Fleet) -> None:
    b = federation.members["member-b"]
    await federation.control.client.create(DEPLOYMENT_GRIDS, example("06-deploymentgrid-fed"))
    await converged(federation)
    uids = await _uids(b.client)

    b.sandbox.faults.set(errors=[{"code": 500}], drop_watches=True)  # B stops answering

    async def flagged() -> Obj:
        grid = await control_grid(federation)
        reachable = condition(grid, reasons.MEMBERS_REACHABLE)
        assert reachable["status"] == "False"
        assert "member-b" in reachable["message"] and "member-a" not in reachable["message"]
        return grid

    await eventually(flagged, message="unreachable member-b not reported")
    events = await federation.control.client.list(EVENTS, "default")
    assert any(
        e["reason"] == reasons.MEMBERS_UNREACHABLE and "member-b" in e["message"] for e in events["items"]
    )

    # a change during the outage reaches A at once; B keeps running what it has
    patch = {"spec": {"templatePool": {"test2": {"replicas": 1}, "test1": {"replicas": 4}}}}
    await federation.control.client.patch(DEPLOYMENT_GRIDS, DG, patch, namespace="default")
    a = federation.members["member-a"]
    await eventually(lambda: _replicas_are(a.client, {f"{DG}-zone1": 4}), message="A not updated")

    async def only_b_behind() -> bool:
        grid = await control_grid(federation)
        assert condition(grid, reasons.DISTRIBUTED)["message"] == "not current in: member-b"
        assert grid["status"]["states"]["zone2"]["readyReplicas"] == 3  # last known state kept
        return True

    await eventually(only_b_behind, message="member-b not reported behind")

    b.sandbox.faults.clear()
    await eventually(
        lambda: _replicas_are(b.client, {f"{DG}-zone2": 1}), timeout=30, message="B never caught up"
    )
    grid = await converged(federation)
    assert condition(grid, reasons.MEMBERS_REACHABLE)["status"] == "True"
    assert await _uids(b.client) == uids  # B's copy and Deployment were kept, not recreated


async def _uids(client: Client) -> tuple[str, str]:
    copy = await client.get(DEPLOYMENT_GRIDS, DG, "default")
    deployment = await client.get(DEPLOYMENTS, f"{DG}-zone2", "default")
    return copy["metadata"]["uid"], deployment["metadata"]["uid"]


async def _replicas_are(client: Client, expected: dict[str, int]) -> bool:
    assert await deployments(client) == expected
    return True


async def test_deleting_the_control_grid_removes_every_copy(federation: Fleet) -> None:
    await federation.control.client.create(DEPLOYMENT_GRIDS, example("06-deploymentgrid-fed"))
    await converged(federation)

    await federation.control.client.delete(DEPLOYMENT_GRIDS, DG, "default")

    async def gone() -> bool:
        for cluster in (federation.control, *federation.members.values()):
            assert not await exists(cluster.client, DEPLOYMENT_GRIDS, DG), cluster.name
        for member in federation.members.values():  # the member's GC removes the children
            assert await deployments(member.client) == {}
        return True

    await eventually(gone, timeout=30, message="copies or the control grid remained")


async def test_hand_edit_of_a_member_copy_is_reverted(federation: Fleet) -> None:
    a = federation.members["member-a"]
    await federation.control.client.create(DEPLOYMENT_GRIDS, example("06-deploymentgrid-fed"))
    await converged(federation)

    edit = {
        "metadata": {"labels": {"edited": "by-hand"}},
        "spec": {"templatePool": {"test1": {"replicas": 7}}},
    }
    await a.client.patch(DEPLOYMENT_GRIDS, DG, edit, namespace="default")

    async def reverted() -> bool:
        copy = await a.client.get(DEPLOYMENT_GRIDS, DG, "default")
        assert copy["spec"]["templatePool"]["test1"]["replicas"] == 2
        assert "edited" not in copy["metadata"]["labels"]
        assert await deployments(a.client) == {f"{DG}-zone1": 2}
        return True

    await eventually(reverted, message="drift not reverted")


async def test_bad_member_secret_is_an_event_and_the_others_keep_working(federation: Fleet) -> None:
    bad = member_secret("member-c", b"clusters: []\ncurrent-context: nowhere\n")
    await federation.control.client.create(SECRETS, bad)

    async def warned() -> bool:
        events = await federation.control.client.list(EVENTS, DEFAULT_NAMESPACE)
        found = [e for e in events["items"] if e["involvedObject"]["name"] == "member-c"]
        assert found and found[0]["type"] == "Warning" and found[0]["reason"] == reasons.INVALID_MEMBER
        assert found[0]["message"] == "kubeconfig has no contexts list"
        return True

    await eventually(warned, message="no Event for the bad member Secret")
    assert "member-c" not in federation.fed.members
    await federation.control.client.create(DEPLOYMENT_GRIDS, example("06-deploymentgrid-fed"))
    grid = await converged(federation)
    assert condition(grid, reasons.MEMBERS_REACHABLE)["message"] == "2 members reachable"


async def test_statefulset_and_service_grids_are_distributed(federation: Fleet) -> None:
    a, b = federation.members["member-a"], federation.members["member-b"]
    ssg = _fed(example("03-statefulsetgrid"), "zone")
    sg = _fed(example("02-servicegrid"), "zone")
    await federation.control.client.create(STATEFULSET_GRIDS, ssg)
    await federation.control.client.create(SERVICE_GRIDS, sg)
    ssg_name, sg_name = ssg["metadata"]["name"], sg["metadata"]["name"]

    async def distributed() -> bool:
        for cluster, unit in ((a, "zone1"), (b, "zone2")):
            sets = await cluster.client.list(STATEFULSETS, "default")
            assert [s["metadata"]["name"] for s in sets["items"]] == [f"{ssg_name}-{unit}"]
            assert await exists(cluster.client, SERVICES, f"{sg_name}-svc")
        control_ssg = await federation.control.client.get(STATEFULSET_GRIDS, ssg_name, "default")
        assert sorted(control_ssg["status"]["states"]) == ["zone1", "zone2"]
        control_sg = await federation.control.client.get(SERVICE_GRIDS, sg_name, "default")
        assert condition(control_sg, reasons.DISTRIBUTED)["status"] == "True"
        assert condition(control_sg, "Ready")["message"] == "ready in 2/2 member clusters"
        return True

    await eventually(distributed, timeout=30, message="SSG/SG not distributed")


def _fed(grid: Obj, key: str) -> Obj:
    grid["metadata"].setdefault("labels", {})[FED_LABEL] = "yes"
    grid["spec"]["gridUniqKey"] = key
    return grid


async def test_removing_a_member_secret_leaves_its_copy_running(federation: Fleet) -> None:
    b = federation.members["member-b"]
    await federation.control.client.create(DEPLOYMENT_GRIDS, example("06-deploymentgrid-fed"))
    await converged(federation)

    await federation.control.client.delete(SECRETS, "member-b", DEFAULT_NAMESPACE)

    async def forgotten() -> bool:
        assert "member-b" not in federation.fed.members
        grid = await control_grid(federation)
        assert condition(grid, reasons.DISTRIBUTED)["message"] == "member-a: zone1"
        assert sorted(grid["status"]["states"]) == ["zone1"]
        return True

    await eventually(forgotten, message="member-b not torn down")
    assert await deployments(b.client) == {f"{DG}-zone2": 3}  # edge autonomy: nothing deleted
    await b.client.get(DEPLOYMENT_GRIDS, DG, "default")


async def test_per_site_config_grid_is_distributed_with_its_unit_values(federation: Fleet) -> None:
    a, b = federation.members["member-a"], federation.members["member-b"]
    config = {
        "apiVersion": CONFIGMAP_GRIDS.api_version,
        "kind": "ConfigMapGrid",
        "metadata": {"name": "site-config", "namespace": "default", "labels": {FED_LABEL: "yes"}},
        "spec": {
            "gridUniqKey": "zone",
            "data": {"mode": "edge"},
            "units": {"zone1": {"data": {"mode": "A"}}},
        },
    }
    await federation.control.client.create(CONFIGMAP_GRIDS, config)

    async def distributed() -> bool:
        assert await exists(a.client, CONFIGMAPS, "site-config-zone1")
        assert await exists(b.client, CONFIGMAPS, "site-config-zone2")
        first = await a.client.get(CONFIGMAPS, "site-config-zone1", "default")
        second = await b.client.get(CONFIGMAPS, "site-config-zone2", "default")
        assert (first["data"], second["data"]) == ({"mode": "A"}, {"mode": "edge"})
        assert not await exists(a.client, CONFIGMAPS, "site-config-zone2")
        grid = await federation.control.client.get(CONFIGMAP_GRIDS, "site-config", "default")
        assert sorted(grid["status"]["states"]) == ["zone1", "zone2"]
        assert condition(grid, reasons.DISTRIBUTED)["message"] == "member-a: zone1; member-b: zone2"
        return True

    await eventually(distributed, timeout=30, message="ConfigMapGrid not distributed")


async def test_a_members_own_grid_of_that_name_is_left_alone(federation: Fleet) -> None:
    a = federation.members["member-a"]
    own = example("01-deploymentgrid")
    own["metadata"]["name"] = DG
    own["spec"]["gridUniqKey"] = "zone"
    await a.client.create(DEPLOYMENT_GRIDS, own)
    before = await a.client.get(DEPLOYMENT_GRIDS, DG, "default")
    await federation.control.client.create(DEPLOYMENT_GRIDS, example("06-deploymentgrid-fed"))

    async def reported() -> bool:
        grid = await control_grid(federation)
        degraded = condition(grid, "Degraded")
        assert (degraded["status"], degraded["reason"]) == ("True", reasons.COPY_NOT_OWNED)
        assert degraded["message"].startswith(
            "member-a: a grid of that name exists there and is not our copy"
        )
        assert await exists(federation.members["member-b"].client, DEPLOYMENT_GRIDS, DG)
        return True

    await eventually(reported, message="foreign grid not reported")
    after = await a.client.get(DEPLOYMENT_GRIDS, DG, "default")
    assert (after["spec"], after["metadata"]["generation"]) == (
        before["spec"],
        before["metadata"]["generation"],
    )
    assert DIS_LABEL not in after["metadata"].get("labels", {})


async def test_member_without_a_config_crd_is_reported_and_the_others_served(federation: Fleet) -> None:
    a, b = federation.members["member-a"], federation.members["member-b"]
    await b.client.delete(CUSTOMRESOURCEDEFINITIONS, "configmapgrids.servicegroup.io")
    config = {
        "apiVersion": CONFIGMAP_GRIDS.api_version,
        "kind": "ConfigMapGrid",
        "metadata": {"name": "site-config", "namespace": "default", "labels": {FED_LABEL: "yes"}},
        "spec": {"gridUniqKey": "zone", "data": {"mode": "edge"}},
    }
    await federation.control.client.create(CONFIGMAP_GRIDS, config)

    async def reported() -> bool:
        assert await exists(a.client, CONFIGMAPS, "site-config-zone1")
        grid = await federation.control.client.get(CONFIGMAP_GRIDS, "site-config", "default")
        degraded = condition(grid, "Degraded")
        assert (degraded["status"], degraded["reason"]) == ("True", reasons.KIND_NOT_INSTALLED)
        assert degraded["message"].startswith("member-b: ConfigMapGrid is not served there")
        return True

    await eventually(reported, message="missing CRD not reported")
    fed = federation.fed

    async def not_retried() -> bool:  # refused: no write to member-b until the grid changes
        writes = fed.members["member-b"].client.write_count
        with contextlib.suppress(Conflict):  # the running workers may write the status meanwhile
            await fed.reconcile(GridRef("ConfigMapGrid", "default", "site-config"))
        return fed.members["member-b"].client.write_count == writes

    await eventually(not_retried, message="refused copy retried")


async def test_control_cluster_name_comes_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_CONTROL_NAME, "hq")
    async with fleet(tmp_path) as started:
        await started.control.client.create(DEPLOYMENT_GRIDS, example("06-deploymentgrid-fed"))
        a = started.members["member-a"]

        async def annotated() -> bool:
            assert await exists(a.client, DEPLOYMENT_GRIDS, DG)
            copy = await a.client.get(DEPLOYMENT_GRIDS, DG, "default")
            assert copy["metadata"]["annotations"][CONTROL_ANNOTATION] == "hq"
            return True

        await eventually(annotated, message="copy not annotated with the control cluster's name")


async def test_grid_deleted_during_an_outage_waits_for_the_member(federation: Fleet) -> None:
    a, b = federation.members["member-a"], federation.members["member-b"]
    await federation.control.client.create(DEPLOYMENT_GRIDS, example("06-deploymentgrid-fed"))
    await converged(federation)
    b.sandbox.faults.set(errors=[{"code": 500}], drop_watches=True)
    await eventually(lambda: _unreachable(federation, "member-b"), message="outage not noticed")

    await federation.control.client.delete(DEPLOYMENT_GRIDS, DG, "default")

    async def a_cleaned_b_awaited() -> bool:
        assert not await exists(a.client, DEPLOYMENT_GRIDS, DG)
        assert await exists(federation.control.client, DEPLOYMENT_GRIDS, DG)  # finalizer holds it
        events = await federation.control.client.list(EVENTS, "default")
        assert any(
            "waiting to remove copies" in e["message"] and "member-b" in e["message"] for e in events["items"]
        )
        return True

    await eventually(a_cleaned_b_awaited, message="deletion did not wait for member-b")
    b.sandbox.faults.clear()

    async def all_gone() -> bool:
        assert not await exists(b.client, DEPLOYMENT_GRIDS, DG)
        assert not await exists(federation.control.client, DEPLOYMENT_GRIDS, DG)
        return True

    await eventually(all_gone, timeout=30, message="member-b's copy or the control grid remained")


async def _unreachable(fleet: Fleet, member: str) -> bool:
    return not fleet.fed.members[member].reachable


async def test_grid_controller_next_to_fed_leaves_fed_grids_to_fed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A control cluster running `grid` and `fed` (deploy/rbac/fed) with nodes of its own in zone1:
    the fed grid runs in the members only and keeps the fed aggregate as status, while a grid
    without the label gets its Deployment in the control cluster as usual, until it is labelled:
    then its control-cluster child goes and the member holding zone1 runs it."""
    monkeypatch.setenv(ENV_PROBE_SECONDS, "0.2")
    zone1 = [
        {**node, "metadata": {**node["metadata"], "name": "control-1"}}
        for node in DEMO_MEMBERS["member-a"][:1]
    ]
    async with fleet(tmp_path, control_controllers=["grid", "fed"], control_nodes=zone1) as federation:
        await federation.control.client.create(DEPLOYMENT_GRIDS, example("06-deploymentgrid-fed"))
        await converged(federation)
        plain = example("06-deploymentgrid-fed")
        plain["metadata"] = {"name": "plain"}
        await federation.control.client.create(DEPLOYMENT_GRIDS, plain, namespace="default")
        await eventually(
            lambda: exists(federation.control.client, DEPLOYMENTS, "plain-zone1"),
            timeout=30,
            message="the plain grid's child in the control cluster",
        )
        assert await deployments(federation.control.client) == {"plain-zone1": 2}
        grid = await control_grid(federation)
        assert condition(grid, reasons.DISTRIBUTED)["status"] == "True", "fed still owns the status"
        await federation.control.client.patch(
            DEPLOYMENT_GRIDS, "plain", {"metadata": {"labels": {FED_LABEL: "yes"}}}, namespace="default"
        )
        member_a = federation.members["member-a"].client

        async def handed_over() -> bool:
            return await deployments(federation.control.client) == {} and "plain-zone1" in await deployments(
                member_a
            )

        await eventually(handed_over, timeout=30, message="the labelled grid's unit moved to member-a")
