"""The grid controllers against the sandbox over HTTP, with the manager in-process: every example
manifest, unit churn, grid deletion, template/replicas changes, drift, children that are not ours,
bad input, autoDeleteUnusedTemplate, and zero writes on a converged resync."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from grid.conftest import Cluster
from grid.support import example
from servicegroup.api.grid_crds import crds
from servicegroup.api.labels import GRID_SELECTOR, GRID_UNIQ_KEY, TEMPLATE_HASH_KEY
from servicegroup.grid import reasons
from servicegroup.grid.kinds import DEPLOYMENT_GRIDS, SERVICE_GRIDS, STATEFULSET_GRIDS
from servicegroup.kube.client import Client
from servicegroup.kube.conditions import get_condition
from servicegroup.kube.errors import Invalid, NotFound
from servicegroup.kube.objects import ObjectKey, deep_copy
from servicegroup.kube.resources import (
    CUSTOMRESOURCEDEFINITIONS,
    DEPLOYMENTS,
    EVENTS,
    NODES,
    SERVICES,
    STATEFULSETS,
    Resource,
)
from waits import eventually

NS = "default"
Obj = dict[str, Any]


async def get(client: Client, res: Resource, name: str) -> Obj | None:
    try:
        return await client.get(res, name, NS)
    except NotFound:
        return None


async def names(client: Client, res: Resource) -> list[str]:
    return sorted(item["metadata"]["name"] for item in (await client.list(res, NS))["items"])


async def condition(client: Client, res: Resource, name: str, type_: str) -> Obj | None:
    grid = await get(client, res, name)
    return get_condition(((grid or {}).get("status") or {}).get("conditions"), type_)


async def events(client: Client, name: str, reason: str) -> list[Obj]:
    items = (await client.list(EVENTS, NS))["items"]
    return [e for e in items if e["involvedObject"]["name"] == name and e["reason"] == reason]


async def ready(client: Client, res: Resource, name: str) -> bool:
    found = await condition(client, res, name, reasons.READY)
    return found is not None and found["status"] == "True"


async def label_node(client: Client, node: str, **labels: str | None) -> None:
    await client.patch(NODES, node, {"metadata": {"labels": labels}})


async def idle(cluster: Cluster) -> bool:
    """Every grid controller's queue is empty and nothing is being reconciled."""
    for controller in cluster.manager.controllers:
        if controller.queue.len() or controller.queue.processing:
            return False
    return True


async def test_deploymentgrid_example_converges_with_status_and_events(cluster: Cluster) -> None:
    client = cluster.client
    grid = await client.create(DEPLOYMENT_GRIDS, example("01-deploymentgrid"))
    await eventually(lambda: ready(client, DEPLOYMENT_GRIDS, "deploymentgrid-demo"), message="DG ready")
    assert await names(client, DEPLOYMENTS) == [
        "deploymentgrid-demo-beijing",
        "deploymentgrid-demo-guangzhou",
    ]
    child = await client.get(DEPLOYMENTS, "deploymentgrid-demo-beijing", NS)
    assert child["metadata"]["labels"] == {GRID_SELECTOR: "deploymentgrid-demo", GRID_UNIQ_KEY: "location"}
    assert child["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "superedge.io/v1",
            "kind": "DeploymentGrid",
            "name": "deploymentgrid-demo",
            "uid": grid["metadata"]["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    assert child["spec"]["replicas"] == 2
    assert child["spec"]["template"]["spec"]["nodeSelector"] == {"location": "beijing"}
    assert TEMPLATE_HASH_KEY in child["spec"]["template"]["metadata"]["labels"]
    status = (await client.get(DEPLOYMENT_GRIDS, "deploymentgrid-demo", NS))["status"]
    assert status["units"] == 2 and status["readyUnits"] == 2 and status["observedGeneration"] == 1
    state = status["states"]["beijing"]
    assert state["replicas"] == 2 and state["readyReplicas"] == 2
    assert [c["type"] for c in state["conditions"]] == ["Available"]
    grid_now = await client.get(DEPLOYMENT_GRIDS, "deploymentgrid-demo", NS)
    assert grid_now["spec"] == {
        **example("01-deploymentgrid")["spec"],
        "defaultTemplateName": "default",
    }  # no hash labels written back
    created = await eventually(lambda: events(client, "deploymentgrid-demo", reasons.CHILD_CREATED))
    assert "deploymentgrid-demo-beijing" in created[0]["message"]


async def test_statefulsetgrid_and_servicegrid_examples(cluster: Cluster) -> None:
    client = cluster.client
    await client.create(STATEFULSET_GRIDS, example("03-statefulsetgrid"))
    sg = await client.create(SERVICE_GRIDS, example("04-servicegrid-headless"))
    await eventually(lambda: ready(client, STATEFULSET_GRIDS, "statefulsetgrid-demo"), message="SSG ready")
    await eventually(lambda: ready(client, SERVICE_GRIDS, "servicegrid-demo"), message="SG ready")
    assert await names(client, STATEFULSETS) == [
        "statefulsetgrid-demo-beijing",
        "statefulsetgrid-demo-guangzhou",
    ]
    ssg = await client.get(STATEFULSET_GRIDS, "statefulsetgrid-demo", NS)
    assert ssg["status"]["states"]["guangzhou"]["readyReplicas"] == 3
    service = await client.get(SERVICES, "servicegrid-demo-svc", NS)
    assert service["metadata"]["annotations"]["topologyKeys"] == '["location"]'
    assert service["spec"]["clusterIP"] == "None"
    assert service["metadata"]["ownerReferences"][0]["uid"] == sg["metadata"]["uid"]


async def test_servicegrid_example_and_its_update(cluster: Cluster) -> None:
    client = cluster.client
    await client.create(SERVICE_GRIDS, example("02-servicegrid"))
    service = await eventually(lambda: get(client, SERVICES, "servicegrid-demo-svc"))
    cluster_ip = service["spec"]["clusterIP"]
    await client.patch(
        SERVICE_GRIDS,
        "servicegrid-demo",
        {"spec": {"template": {"ports": [{"protocol": "TCP", "port": 80, "targetPort": 9090}]}}},
        namespace=NS,
    )

    async def updated() -> bool:
        live = await client.get(SERVICES, "servicegrid-demo-svc", NS)
        return live["spec"]["ports"][0]["targetPort"] == 9090 and live["spec"]["clusterIP"] == cluster_ip

    await eventually(updated, message="Service updated in place, clusterIP kept")


async def test_canary_example_picks_templates_per_unit(cluster: Cluster) -> None:
    client = cluster.client
    for node, zone in (("bj-1", "zone1"), ("gz-1", "zone2"), ("gz-2", "zone3")):
        await label_node(client, node, zone=zone)
    await client.create(DEPLOYMENT_GRIDS, example("05-deploymentgrid-canary"))
    await eventually(lambda: ready(client, DEPLOYMENT_GRIDS, "deploymentgrid-demo"), message="canary ready")
    found = {}
    for unit in ("zone1", "zone2", "zone3"):
        spec = (await client.get(DEPLOYMENTS, f"deploymentgrid-demo-{unit}", NS))["spec"]
        found[unit] = (spec["template"]["spec"]["containers"][0]["image"], spec["replicas"])
    assert found == {
        "zone1": ("superedge/echoserver:2.2", 2),
        "zone2": ("superedge/echoserver:2.3", 3),
        "zone3": ("superedge/echoserver:2.2", 2),
    }


async def test_units_come_and_go_with_node_labels(cluster: Cluster) -> None:
    client = cluster.client
    await client.create(DEPLOYMENT_GRIDS, example("01-deploymentgrid"))
    await eventually(lambda: ready(client, DEPLOYMENT_GRIDS, "deploymentgrid-demo"))
    await label_node(client, "bj-1", location="shanghai")
    await eventually(
        lambda: get(client, DEPLOYMENTS, "deploymentgrid-demo-shanghai"), message="new unit child"
    )
    assert await get(client, DEPLOYMENTS, "deploymentgrid-demo-beijing") is not None  # bj-2 still there
    await label_node(client, "bj-2", location=None)

    async def beijing_gone() -> bool:
        return await names(client, DEPLOYMENTS) == [
            "deploymentgrid-demo-guangzhou",
            "deploymentgrid-demo-shanghai",
        ]

    await eventually(beijing_gone, message="vanished unit's child deleted")
    assert await eventually(lambda: events(client, "deploymentgrid-demo", reasons.CHILD_DELETED))


async def test_deleting_the_grid_removes_children_through_owner_references(cluster: Cluster) -> None:
    client = cluster.client
    await client.create(DEPLOYMENT_GRIDS, example("01-deploymentgrid"))
    await client.create(SERVICE_GRIDS, example("02-servicegrid"))
    await eventually(lambda: get(client, SERVICES, "servicegrid-demo-svc"))
    await eventually(lambda: names(client, DEPLOYMENTS))
    await client.delete(DEPLOYMENT_GRIDS, "deploymentgrid-demo", NS)
    await client.delete(SERVICE_GRIDS, "servicegrid-demo", NS)

    async def all_gone() -> bool:
        return (
            not await names(client, DEPLOYMENTS)
            and await get(client, SERVICES, "servicegrid-demo-svc") is None
        )

    await eventually(all_gone, message="children garbage-collected")


async def test_template_and_replicas_changes_update_children(cluster: Cluster) -> None:
    client = cluster.client
    await client.create(DEPLOYMENT_GRIDS, example("01-deploymentgrid"))
    await eventually(lambda: ready(client, DEPLOYMENT_GRIDS, "deploymentgrid-demo"))
    grid = await client.get(DEPLOYMENT_GRIDS, "deploymentgrid-demo", NS)
    grid["spec"]["template"]["replicas"] = 1
    grid["spec"]["template"]["template"]["spec"]["containers"][0]["image"] = "superedge/echoserver:2.5"
    await client.replace(DEPLOYMENT_GRIDS, grid)

    async def rolled() -> bool:
        for unit in ("beijing", "guangzhou"):
            spec = (await client.get(DEPLOYMENTS, f"deploymentgrid-demo-{unit}", NS))["spec"]
            if (spec["replicas"], spec["template"]["spec"]["containers"][0]["image"]) != (
                1,
                "superedge/echoserver:2.5",
            ):
                return False
        return True

    await eventually(rolled, message="children updated")
    await eventually(lambda: ready(client, DEPLOYMENT_GRIDS, "deploymentgrid-demo"))
    status = (await client.get(DEPLOYMENT_GRIDS, "deploymentgrid-demo", NS))["status"]
    assert status["observedGeneration"] == 2 and status["states"]["beijing"]["replicas"] == 1


async def test_hand_edits_of_a_child_are_reverted(cluster: Cluster) -> None:
    client = cluster.client
    await client.create(DEPLOYMENT_GRIDS, example("01-deploymentgrid"))
    await eventually(lambda: ready(client, DEPLOYMENT_GRIDS, "deploymentgrid-demo"))
    child = await client.get(DEPLOYMENTS, "deploymentgrid-demo-beijing", NS)
    child["spec"]["replicas"] = 5
    child["spec"]["template"]["spec"]["containers"][0]["image"] = "hacked"
    await client.replace(DEPLOYMENTS, child)

    async def reverted() -> bool:
        spec = (await client.get(DEPLOYMENTS, "deploymentgrid-demo-beijing", NS))["spec"]
        return (
            spec["replicas"] == 2
            and spec["template"]["spec"]["containers"][0]["image"] == "superedge/echoserver:2.2"
        )

    await eventually(reverted, message="drift reverted")


async def test_a_deleted_child_is_recreated(cluster: Cluster) -> None:
    client = cluster.client
    await client.create(DEPLOYMENT_GRIDS, example("01-deploymentgrid"))
    await eventually(lambda: ready(client, DEPLOYMENT_GRIDS, "deploymentgrid-demo"))
    old = await client.get(DEPLOYMENTS, "deploymentgrid-demo-beijing", NS)
    await client.delete(DEPLOYMENTS, "deploymentgrid-demo-beijing", NS)

    async def recreated() -> bool:
        child = await get(client, DEPLOYMENTS, "deploymentgrid-demo-beijing")
        return child is not None and child["metadata"]["uid"] != old["metadata"]["uid"]

    await eventually(recreated, message="child recreated")


async def test_a_child_name_taken_by_someone_else_is_left_alone(cluster: Cluster) -> None:
    client = cluster.client
    squatter = example("01-deploymentgrid")["spec"]["template"]
    await client.create(
        DEPLOYMENTS,
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "deploymentgrid-demo-beijing", "namespace": NS},
            "spec": {**squatter, "replicas": 1},
        },
    )
    await client.create(DEPLOYMENT_GRIDS, example("01-deploymentgrid"))
    await eventually(
        lambda: get(client, DEPLOYMENTS, "deploymentgrid-demo-guangzhou"), message="other unit proceeds"
    )

    async def conflict_reported() -> bool:
        found = await condition(client, DEPLOYMENT_GRIDS, "deploymentgrid-demo", reasons.CHILD_CONFLICT)
        return (
            found is not None
            and found["status"] == "True"
            and "deploymentgrid-demo-beijing" in found["message"]
        )

    await eventually(conflict_reported, message="ChildConflict condition")
    warned = await eventually(lambda: events(client, "deploymentgrid-demo", reasons.CHILD_NOT_OWNED))
    assert warned[0]["type"] == "Warning" and "unit beijing" in warned[0]["message"]
    foreign = await client.get(DEPLOYMENTS, "deploymentgrid-demo-beijing", NS)
    assert "ownerReferences" not in foreign["metadata"] and foreign["spec"]["replicas"] == 1
    await client.delete(DEPLOYMENTS, "deploymentgrid-demo-beijing", NS)

    async def ours_now() -> bool:
        child = await get(client, DEPLOYMENTS, "deploymentgrid-demo-beijing")
        return child is not None and bool(child["metadata"].get("ownerReferences"))

    await eventually(ours_now, message="name freed → our child created")


async def test_schema_rejects_a_template_typo(cluster: Cluster) -> None:
    grid = example("05-deploymentgrid-canary")
    grid["spec"]["templates"]["zone1"] = "tset1"
    with pytest.raises(Invalid, match="templatePool"):
        await cluster.client.create(DEPLOYMENT_GRIDS, grid)


async def use_crd_without_validation(client: Client) -> None:
    """Replace our DeploymentGrid CRD by one without CEL rules, as with SuperEdge's own CRD."""
    crd = next(c for c in crds() if c["spec"]["names"]["kind"] == "DeploymentGrid")
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    schema.pop("x-kubernetes-validations")
    schema["properties"]["spec"].pop("x-kubernetes-validations")
    live = await client.get(CUSTOMRESOURCEDEFINITIONS, crd["metadata"]["name"])
    crd["metadata"]["resourceVersion"] = live["metadata"]["resourceVersion"]
    await client.replace(CUSTOMRESOURCEDEFINITIONS, crd)


async def test_template_typo_never_deletes_the_running_child(cluster: Cluster) -> None:
    client = cluster.client
    await use_crd_without_validation(client)
    for node, zone in (("bj-1", "zone1"), ("gz-1", "zone2")):
        await label_node(client, node, zone=zone)
    await client.create(DEPLOYMENT_GRIDS, example("05-deploymentgrid-canary"))
    await eventually(lambda: ready(client, DEPLOYMENT_GRIDS, "deploymentgrid-demo"))
    before = await client.get(DEPLOYMENTS, "deploymentgrid-demo-zone1", NS)
    await client.patch(
        DEPLOYMENT_GRIDS,
        "deploymentgrid-demo",
        {"spec": {"templates": {"zone1": "tset1"}, "templatePool": {"test2": {"replicas": 1}}}},
        namespace=NS,
    )

    async def degraded() -> Obj | None:
        found = await condition(client, DEPLOYMENT_GRIDS, "deploymentgrid-demo", reasons.DEGRADED)
        return found if found is not None and found["reason"] == reasons.TEMPLATE_NOT_FOUND else None

    found = await eventually(degraded, message="TemplateNotFound condition")
    assert "unit zone1" in found["message"] and "tset1" in found["message"]
    await eventually(lambda: events(client, "deploymentgrid-demo", reasons.TEMPLATE_NOT_FOUND))

    async def zone2_scaled() -> bool:
        return (await client.get(DEPLOYMENTS, "deploymentgrid-demo-zone2", NS))["spec"]["replicas"] == 1

    await eventually(zone2_scaled, message="the other unit keeps converging")
    after = await client.get(DEPLOYMENTS, "deploymentgrid-demo-zone1", NS)
    assert after["metadata"]["uid"] == before["metadata"]["uid"] and after["spec"] == before["spec"]


async def test_unit_whose_child_name_is_invalid_is_reported_and_others_work(cluster: Cluster) -> None:
    client = cluster.client
    await label_node(client, "gz-3", location="Guangzhou_Zone_3")
    await client.create(STATEFULSET_GRIDS, example("03-statefulsetgrid"))

    async def reported() -> Obj | None:
        found = await condition(client, STATEFULSET_GRIDS, "statefulsetgrid-demo", reasons.DEGRADED)
        return found if found is not None and found["reason"] == reasons.INVALID_CHILD_NAME else None

    found = await eventually(reported, message="InvalidChildName")
    assert "unit Guangzhou_Zone_3" in found["message"]
    await eventually(lambda: get(client, STATEFULSETS, "statefulsetgrid-demo-guangzhou"))
    assert await eventually(lambda: events(client, "statefulsetgrid-demo", reasons.INVALID_CHILD_NAME))


async def test_auto_delete_unused_template_prunes_only_unused_pool_entries(cluster: Cluster) -> None:
    client = cluster.client
    grid = example("05-deploymentgrid-canary")
    grid["spec"]["templatePool"]["old"] = deep_copy(grid["spec"]["templatePool"]["test1"])
    grid["spec"]["autoDeleteUnusedTemplate"] = True
    await client.create(DEPLOYMENT_GRIDS, grid)

    async def pruned() -> bool:
        live = await client.get(DEPLOYMENT_GRIDS, "deploymentgrid-demo", NS)
        return sorted(live["spec"]["templatePool"]) == ["test1", "test2"]

    await eventually(pruned, message="unused pool entry deleted")
    assert await eventually(lambda: events(client, "deploymentgrid-demo", reasons.TEMPLATES_PRUNED))


async def test_converged_resync_makes_zero_writes(cluster: Cluster) -> None:
    client = cluster.client
    await client.create(DEPLOYMENT_GRIDS, example("01-deploymentgrid"))
    await client.create(STATEFULSET_GRIDS, example("03-statefulsetgrid"))
    await client.create(SERVICE_GRIDS, example("02-servicegrid"))
    for res, name in (
        (DEPLOYMENT_GRIDS, "deploymentgrid-demo"),
        (STATEFULSET_GRIDS, "statefulsetgrid-demo"),
        (SERVICE_GRIDS, "servicegrid-demo"),
    ):
        await eventually(lambda res=res, name=name: ready(client, res, name), message=f"{name} ready")
    assert (
        await resync_writes(cluster, ["deploymentgrid-demo", "statefulsetgrid-demo", "servicegrid-demo"]) == 0
    )


async def resync_writes(cluster: Cluster, grids: list[str]) -> int:
    """Once idle: resync every informer and reconcile every named grid once more; the writes made."""
    await eventually(lambda: idle(cluster), message="controllers idle")
    for controller in cluster.manager.controllers:
        await cluster.manager.recorder(controller.name).flush()
    writes = cluster.manager.client.write_count
    for informer in cluster.manager.informers.informers:
        informer.resync()
    for controller in cluster.manager.controllers:  # and one explicit pass over every grid
        for name in grids:
            await controller.process(ObjectKey(NS, name))
    await eventually(lambda: idle(cluster), message="resync processed")
    for controller in cluster.manager.controllers:
        await cluster.manager.recorder(controller.name).flush()
    return cluster.manager.client.write_count - writes


async def test_write_failures_are_reported_and_retried(cluster: Cluster) -> None:
    client = cluster.client
    cluster.sandbox.faults.set(errors=[{"code": 500, "verb": "create", "resource": "deployments"}])
    await client.create(DEPLOYMENT_GRIDS, example("01-deploymentgrid"))

    async def failing() -> Obj | None:
        found = await condition(client, DEPLOYMENT_GRIDS, "deploymentgrid-demo", reasons.DEGRADED)
        return found if found is not None and found["reason"] == reasons.APPLY_FAILED else None

    await eventually(failing, message="ApplyFailed condition")
    warned = await eventually(lambda: events(client, "deploymentgrid-demo", reasons.APPLY_FAILED))
    assert warned[0]["type"] == "Warning" and "unit " in warned[0]["message"]
    cluster.sandbox.faults.clear()
    await eventually(lambda: ready(client, DEPLOYMENT_GRIDS, "deploymentgrid-demo"), message="recovered")
    degraded = await condition(client, DEPLOYMENT_GRIDS, "deploymentgrid-demo", reasons.DEGRADED)
    assert degraded is not None and degraded["status"] == "False"


async def test_update_conflicts_are_retried_until_converged(cluster: Cluster) -> None:
    client = cluster.client
    await client.create(DEPLOYMENT_GRIDS, example("01-deploymentgrid"))
    await eventually(lambda: ready(client, DEPLOYMENT_GRIDS, "deploymentgrid-demo"))
    cluster.sandbox.faults.set(
        errors=[{"code": 409, "rate": 0.5, "verb": "update", "resource": "deployments"}], seed=7
    )
    await client.patch(
        DEPLOYMENT_GRIDS, "deploymentgrid-demo", {"spec": {"template": {"replicas": 3}}}, namespace=NS
    )

    async def scaled() -> bool:
        replicas = [
            (await client.get(DEPLOYMENTS, f"deploymentgrid-demo-{u}", NS))["spec"]["replicas"]
            for u in ("beijing", "guangzhou")
        ]
        return replicas == [3, 3]

    await eventually(scaled, message="converged through conflicts")
    assert cluster.sandbox.faults.injected > 0


async def test_kubectl_get_columns_show_units_and_ready(cluster: Cluster) -> None:
    client = cluster.client
    await client.create(DEPLOYMENT_GRIDS, example("01-deploymentgrid"))
    await eventually(lambda: ready(client, DEPLOYMENT_GRIDS, "deploymentgrid-demo"))
    headers = {"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"}
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{cluster.sandbox.url}{DEPLOYMENT_GRIDS.path(NS)}", headers=headers) as response,
    ):
        table = await response.json()
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Key", "Units", "Ready", "Age"]
    assert table["rows"][0]["cells"][:4] == ["deploymentgrid-demo", "location", 2, 2]


async def test_rejected_statefulset_update_is_reported_not_hot_looped(cluster: Cluster) -> None:
    client = cluster.client
    await client.create(STATEFULSET_GRIDS, example("03-statefulsetgrid"))
    await eventually(lambda: ready(client, STATEFULSET_GRIDS, "statefulsetgrid-demo"))
    patch = {"spec": {"template": {"serviceName": "other-svc"}}}  # immutable on a StatefulSet
    await client.patch(STATEFULSET_GRIDS, "statefulsetgrid-demo", patch, namespace=NS)

    async def rejected() -> Obj | None:
        found = await condition(client, STATEFULSET_GRIDS, "statefulsetgrid-demo", reasons.DEGRADED)
        return found if found is not None and found["reason"] == reasons.CHILD_REJECTED else None

    found = await eventually(rejected, message="ChildRejected")
    assert "unit beijing" in found["message"]
    await eventually(lambda: idle(cluster), message="controllers idle")
    ssg_controller = next(c for c in cluster.manager.controllers if c.name == "statefulset-grid-controller")
    assert ssg_controller.queue.num_requeues(ObjectKey(NS, "statefulsetgrid-demo")) == 0  # not retried
    children = await client.list(STATEFULSETS, NS)
    assert {c["spec"]["serviceName"] for c in children["items"]} == {
        "servicegrid-demo-svc"
    }  # nothing deleted
