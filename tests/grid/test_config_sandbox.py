"""Per-site configuration against the sandbox with the manager in-process: ConfigMapGrid and
SecretGrid lifecycle (create, new unit, unit gone, drift), per-unit rollout on a config change,
every override kind with NodeUnit labels, bad rules held per unit, schema 422s, zero-write resync."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from grid.conftest import Cluster
from grid.support import app_grid, config_grid, example, example_nodes
from grid.test_controller_sandbox import condition, events, get, idle, label_node, names, ready, resync_writes
from servicegroup.api.grid_crds import crds as grid_crds
from servicegroup.api.labels import CONFIG_HASH
from servicegroup.grid import reasons
from servicegroup.grid.kinds import (
    CONFIGMAP_GRIDS,
    DEPLOYMENT_GRIDS,
    NODEUNITS,
    SECRET_GRIDS,
    STATEFULSET_GRIDS,
)
from servicegroup.kube.client import Client
from servicegroup.kube.errors import Invalid
from servicegroup.kube.resources import (
    CONFIGMAPS,
    CUSTOMRESOURCEDEFINITIONS,
    DEPLOYMENTS,
    NODES,
    SECRETS,
    STATEFULSETS,
)
from servicegroup.manager import Manager
from servicegroup.sandbox import Sandbox
from waits import eventually

NS = "default"
Obj = dict[str, Any]


async def data_of(client: Client, name: str) -> dict[str, str] | None:
    found = await get(client, CONFIGMAPS, name)
    return None if found is None else dict(found.get("data") or {})


def pod_of(deployment: Obj) -> Obj:
    template: Obj = deployment["spec"]["template"]
    return template


async def nodeunit(client: Client, name: str, **labels: str) -> None:
    body = {"apiVersion": "site.superedge.io/v1alpha2", "kind": "NodeUnit", "spec": {}}
    await client.create(NODEUNITS, {**body, "metadata": {"name": name, "labels": labels}})


async def test_configmap_grid_lifecycle(cluster: Cluster) -> None:
    client = cluster.client
    grid = config_grid(
        "ConfigMapGrid",
        "mall-config",
        data={"mode": "normal", "site": "((unit))"},
        units={"beijing": {"data": {"mode": "busy"}}},
    )
    await client.create(CONFIGMAP_GRIDS, grid)
    await eventually(lambda: ready(client, CONFIGMAP_GRIDS, "mall-config"), message="ConfigMapGrid ready")
    assert await data_of(client, "mall-config-beijing") == {"mode": "busy", "site": "beijing"}
    assert await data_of(client, "mall-config-guangzhou") == {"mode": "normal", "site": "guangzhou"}
    child = await client.get(CONFIGMAPS, "mall-config-beijing", NS)
    status = (await client.get(CONFIGMAP_GRIDS, "mall-config", NS))["status"]
    assert status["states"]["beijing"] == {"dataHash": child["metadata"]["annotations"][CONFIG_HASH]}
    assert child["metadata"]["ownerReferences"][0]["kind"] == "ConfigMapGrid"

    await label_node(client, "gz-3", location="shanghai")  # a new site comes up with the base data
    await eventually(
        lambda: data_of(client, "mall-config-shanghai"), message="new unit's ConfigMap from the base"
    )
    assert await data_of(client, "mall-config-shanghai") == {"mode": "normal", "site": "shanghai"}

    child["data"] = {"mode": "hacked", "extra": "x"}  # drift: an edited and an added key
    await client.replace(CONFIGMAPS, child)

    async def reverted() -> bool:
        return await data_of(client, "mall-config-beijing") == {"mode": "busy", "site": "beijing"}

    await eventually(reverted, message="drift reverted")
    await label_node(client, "gz-3", location=None)

    async def shanghai_gone() -> bool:
        return await get(client, CONFIGMAPS, "mall-config-shanghai") is None

    await eventually(shanghai_gone, message="the unit's ConfigMap deleted with the unit")


async def test_secret_grid_creates_per_unit_secrets(cluster: Cluster) -> None:
    client = cluster.client
    grid = config_grid(
        "SecretGrid",
        "mall-secret",
        stringData={"token": "t-((unit))"},
        units={"beijing": {"stringData": {"a": "b"}}},
    )
    await client.create(SECRET_GRIDS, grid)
    await eventually(lambda: ready(client, SECRET_GRIDS, "mall-secret"), message="SecretGrid ready")
    secret = await client.get(SECRETS, "mall-secret-beijing", NS)
    assert secret["type"] == "Opaque"
    assert {k: base64.b64decode(v).decode() for k, v in secret["data"].items()} == {
        "token": "t-beijing",
        "a": "b",
    }
    other = await client.get(SECRETS, "mall-secret-guangzhou", NS)
    assert base64.b64decode(other["data"]["token"]) == b"t-guangzhou"


async def test_config_change_rolls_only_the_units_it_touched(cluster: Cluster) -> None:
    client = cluster.client
    await client.create(CONFIGMAP_GRIDS, config_grid("ConfigMapGrid", "app-config", data={"mode": "normal"}))
    await client.create(SECRET_GRIDS, config_grid("SecretGrid", "app-secret", stringData={"t": "1"}))
    await client.create(DEPLOYMENT_GRIDS, app_grid())
    await eventually(lambda: ready(client, DEPLOYMENT_GRIDS, "app"), message="DG ready")
    beijing = await client.get(DEPLOYMENTS, "app-beijing", NS)
    guangzhou = await client.get(DEPLOYMENTS, "app-guangzhou", NS)
    assert pod_of(beijing)["spec"]["volumes"][0]["configMap"]["name"] == "app-config-beijing"
    assert pod_of(guangzhou)["spec"]["containers"][0]["envFrom"][0]["configMapRef"]["name"] == (
        "app-config-guangzhou"
    )
    before = pod_of(beijing)["metadata"]["annotations"][CONFIG_HASH]
    status = (await client.get(DEPLOYMENT_GRIDS, "app", NS))["status"]
    assert status["rendered"]["beijing"]["configHash"] == before
    assert status["rendered"]["beijing"]["configs"] == ["ConfigMap/app-config", "Secret/app-secret"]

    await client.patch(
        CONFIGMAP_GRIDS,
        "app-config",
        {"spec": {"units": {"beijing": {"data": {"mode": "busy"}}}}},
        namespace=NS,
    )

    async def beijing_rolled() -> bool:
        live = await client.get(DEPLOYMENTS, "app-beijing", NS)
        return pod_of(live)["metadata"]["annotations"][CONFIG_HASH] != before

    await eventually(beijing_rolled, message="beijing's pod template changed")
    await eventually(lambda: idle(cluster), message="controllers idle")
    assert await data_of(client, "app-config-beijing") == {"mode": "busy"}
    after = await client.get(DEPLOYMENTS, "app-guangzhou", NS)
    assert after["metadata"]["generation"] == guangzhou["metadata"]["generation"]
    assert after["spec"] == guangzhou["spec"]


async def test_overrides_by_name_pattern_and_nodeunit_labels(cluster: Cluster) -> None:
    client = cluster.client
    await nodeunit(client, "beijing", tier="gold")
    await nodeunit(client, "guangzhou", tier="silver")
    grid = app_grid(
        overrides=[
            {"name": "gold", "unitSelector": {"matchLabels": {"tier": "gold"}}, "replicas": 2},
            {"name": "south", "unitPattern": "guang*", "containers": [{"name": "app", "image": "app:2"}]},
            {
                "name": "env",
                "units": ["beijing"],
                "containers": [
                    {
                        "name": "app",
                        "env": [{"name": "TIER", "value": "((unit.labels['tier']))"}],
                        "resources": {"limits": {"cpu": "1"}},
                    }
                ],
            },
            {
                "name": "smp",
                "units": ["guangzhou"],
                "strategicMergePatch": {"spec": {"template": {"spec": {"terminationGracePeriodSeconds": 5}}}},
            },
            {
                "name": "json",
                "units": ["guangzhou"],
                "jsonPatch": [
                    {"op": "add", "path": "/spec/template/metadata/labels/site", "value": "((unit))"}
                ],
            },
        ]
    )
    await client.create(DEPLOYMENT_GRIDS, grid)
    await eventually(lambda: ready(client, DEPLOYMENT_GRIDS, "app"), message="DG ready")
    beijing = await client.get(DEPLOYMENTS, "app-beijing", NS)
    guangzhou = await client.get(DEPLOYMENTS, "app-guangzhou", NS)
    bj_app = pod_of(beijing)["spec"]["containers"][0]
    assert beijing["spec"]["replicas"] == 2 and bj_app["image"] == "app:1"
    assert {"name": "TIER", "value": "gold"} in bj_app["env"] and bj_app["resources"]["limits"]["cpu"] == "1"
    assert guangzhou["spec"]["replicas"] == 1
    assert pod_of(guangzhou)["spec"]["containers"][0]["image"] == "app:2"
    assert pod_of(guangzhou)["spec"]["terminationGracePeriodSeconds"] == 5
    assert pod_of(guangzhou)["metadata"]["labels"]["site"] == "guangzhou"
    rendered = (await client.get(DEPLOYMENT_GRIDS, "app", NS))["status"]["rendered"]
    assert rendered == {
        "beijing": {"template": "default", "overrides": ["gold", "env"]},
        "guangzhou": {"template": "default", "overrides": ["south", "smp", "json"]},
    }
    generation = guangzhou["metadata"]["generation"]
    await client.patch(NODEUNITS, "beijing", {"metadata": {"labels": {"tier": "bronze"}}})

    async def relabelled() -> bool:
        live = await client.get(DEPLOYMENTS, "app-beijing", NS)
        env = pod_of(live)["spec"]["containers"][0]["env"]
        return live["spec"]["replicas"] == 1 and {"name": "TIER", "value": "bronze"} in env

    await eventually(relabelled, message="a NodeUnit label change re-reconciles the grid")
    assert (await client.get(DEPLOYMENTS, "app-guangzhou", NS))["metadata"]["generation"] == generation


async def test_a_broken_rule_holds_its_unit_and_reports_it(cluster: Cluster) -> None:
    client = cluster.client
    await client.create(DEPLOYMENT_GRIDS, app_grid())
    await eventually(lambda: ready(client, DEPLOYMENT_GRIDS, "app"), message="DG ready")
    before = await client.get(DEPLOYMENTS, "app-beijing", NS)
    overrides = [
        {"name": "typo", "units": ["beijing"], "containers": [{"name": "ap", "image": "x"}]},
        {"name": "scale", "unitPattern": "*", "replicas": 2},
    ]
    await client.patch(DEPLOYMENT_GRIDS, "app", {"spec": {"overrides": overrides}}, namespace=NS)

    async def degraded() -> Obj | None:
        found = await condition(client, DEPLOYMENT_GRIDS, "app", reasons.DEGRADED)
        return found if found is not None and found["reason"] == reasons.OVERRIDE_FAILED else None

    found = await eventually(degraded, message="OverrideFailed condition")
    assert "unit beijing: override typo: no container 'ap'" in found["message"]
    warned = await eventually(lambda: events(client, "app", reasons.OVERRIDE_FAILED))
    assert warned[0]["type"] == "Warning" and "override typo" in warned[0]["message"]

    async def guangzhou_scaled() -> bool:
        return (await client.get(DEPLOYMENTS, "app-guangzhou", NS))["spec"]["replicas"] == 2

    await eventually(guangzhou_scaled, message="the other unit keeps converging")
    after = await client.get(DEPLOYMENTS, "app-beijing", NS)
    assert after["metadata"]["uid"] == before["metadata"]["uid"] and after["spec"] == before["spec"]


BAD_RULES = [
    ({"replicas": 2}, "selects units"),
    ({"units": ["a"]}, "changes something"),
    ({"units": ["a"], "jsonPatch": [{"op": "move", "path": "/spec"}]}, "need from"),
    ({"units": ["a"], "jsonPatch": [{"op": "add", "path": "/spec/x"}]}, "need a value"),
    ({"units": ["a"], "jsonPatch": [{"op": "nope", "path": "/x", "value": 1}]}, "op"),
    ({"units": ["a"], "containers": [{"image": "x"}]}, "name"),
]


@pytest.mark.parametrize(("rule", "text"), BAD_RULES)
async def test_malformed_rules_are_rejected_with_422(cluster: Cluster, rule: Obj, text: str) -> None:
    with pytest.raises(Invalid, match=text):
        await cluster.client.create(DEPLOYMENT_GRIDS, app_grid(overrides=[rule]))


async def test_malformed_config_grids_are_rejected_with_422(cluster: Cluster) -> None:
    with pytest.raises(Invalid, match="selects units"):
        await cluster.client.create(
            CONFIGMAP_GRIDS, config_grid("ConfigMapGrid", "c", overrides=[{"data": {"a": "b"}}])
        )
    with pytest.raises(Invalid, match="gridUniqKey"):
        await cluster.client.create(CONFIGMAP_GRIDS, config_grid("ConfigMapGrid", "c", key="bad key"))
    with pytest.raises(Invalid, match="binaryData"):
        await cluster.client.create(
            CONFIGMAP_GRIDS, config_grid("ConfigMapGrid", "c", binaryData={"a": "not base64!"})
        )


async def test_converged_resync_with_configs_and_overrides_makes_zero_writes(cluster: Cluster) -> None:
    client = cluster.client
    await nodeunit(client, "beijing", tier="gold")
    await client.create(
        CONFIGMAP_GRIDS, config_grid("ConfigMapGrid", "app-config", data={"site": "((unit))"})
    )
    await client.create(SECRET_GRIDS, config_grid("SecretGrid", "app-secret", stringData={"t": "1"}))
    rules = [{"unitSelector": {"matchLabels": {"tier": "gold"}}, "replicas": 2}]
    await client.create(DEPLOYMENT_GRIDS, app_grid(overrides=rules))
    await client.create(DEPLOYMENT_GRIDS, example("01-deploymentgrid"))
    for res, name in (
        (CONFIGMAP_GRIDS, "app-config"),
        (SECRET_GRIDS, "app-secret"),
        (DEPLOYMENT_GRIDS, "app"),
        (DEPLOYMENT_GRIDS, "deploymentgrid-demo"),
    ):
        await eventually(lambda res=res, name=name: ready(client, res, name), message=f"{name} ready")
    assert await resync_writes(cluster, ["app", "deploymentgrid-demo", "app-config", "app-secret"]) == 0
    assert {"app-config-beijing", "app-config-guangzhou"} <= set(await names(client, CONFIGMAPS))


async def test_a_configmap_not_ours_is_left_alone_and_reported(cluster: Cluster) -> None:
    client = cluster.client
    squatter = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c-beijing"},
        "data": {"a": "1"},
    }
    await client.create(CONFIGMAPS, squatter, NS)
    await client.create(CONFIGMAP_GRIDS, config_grid("ConfigMapGrid", "c", data={"a": "2"}))
    await eventually(lambda: data_of(client, "c-guangzhou"), message="the other unit proceeds")

    async def conflict() -> Obj | None:
        found = await condition(client, CONFIGMAP_GRIDS, "c", reasons.CHILD_CONFLICT)
        return found if found is not None and found["status"] == "True" else None

    found = await eventually(conflict, message="ChildConflict condition")
    assert "c-beijing" in found["message"]
    assert await data_of(client, "c-beijing") == {"a": "1"}


async def test_a_grid_created_before_its_config_grid_is_rewritten_when_it_appears(cluster: Cluster) -> None:
    client = cluster.client
    await client.create(DEPLOYMENT_GRIDS, app_grid())
    await eventually(lambda: get(client, DEPLOYMENTS, "app-beijing"), message="DG child")
    live = await client.get(DEPLOYMENTS, "app-beijing", NS)
    assert pod_of(live)["spec"]["volumes"][0]["configMap"]["name"] == "app-config"  # a plain ConfigMap
    await client.create(CONFIGMAP_GRIDS, config_grid("ConfigMapGrid", "app-config", data={"a": "b"}))

    async def rewritten() -> bool:
        found = await client.get(DEPLOYMENTS, "app-beijing", NS)
        return bool(pod_of(found)["spec"]["volumes"][0]["configMap"]["name"] == "app-config-beijing")

    await eventually(rewritten, message="reference rewritten once the ConfigMapGrid exists")


async def test_statefulset_grid_gets_overrides_and_per_unit_secrets(cluster: Cluster) -> None:
    client = cluster.client
    await client.create(SECRET_GRIDS, config_grid("SecretGrid", "db-secret", stringData={"pw": "((unit))"}))
    grid = example("03-statefulsetgrid")
    pod_spec = grid["spec"]["template"]["template"]["spec"]
    pod_spec["volumes"] = [{"name": "s", "secret": {"secretName": "db-secret"}}]
    grid["spec"]["overrides"] = [{"name": "small", "units": ["guangzhou"], "replicas": 1}]
    await client.create(STATEFULSET_GRIDS, grid)
    await eventually(lambda: ready(client, STATEFULSET_GRIDS, "statefulsetgrid-demo"), message="SSG ready")
    guangzhou = await client.get(STATEFULSETS, "statefulsetgrid-demo-guangzhou", NS)
    beijing = await client.get(STATEFULSETS, "statefulsetgrid-demo-beijing", NS)
    assert (guangzhou["spec"]["replicas"], beijing["spec"]["replicas"]) == (1, 3)
    assert pod_of(guangzhou)["spec"]["volumes"][0]["secret"]["secretName"] == "db-secret-guangzhou"
    assert CONFIG_HASH in pod_of(beijing)["metadata"]["annotations"]
    rendered = (await client.get(STATEFULSET_GRIDS, "statefulsetgrid-demo", NS))["status"]["rendered"]
    assert rendered["guangzhou"]["overrides"] == ["small"]
    assert rendered["beijing"]["configs"] == ["Secret/db-secret"]


@pytest.mark.controllers("grid")
async def test_without_the_secretgrid_controller_no_secret_is_read_or_written(cluster: Cluster) -> None:
    """SecretGrid is opt-in: a manager without it leaves SecretGrids alone and Secret references
    as written (a ConfigMapGrid reference beside it is still resolved)."""
    client = cluster.client
    await client.create(SECRET_GRIDS, config_grid("SecretGrid", "app-secret", stringData={"pw": "x"}))
    await client.create(CONFIGMAP_GRIDS, config_grid("ConfigMapGrid", "app-config", data={"a": "b"}))
    await client.create(DEPLOYMENT_GRIDS, app_grid())
    await eventually(lambda: ready(client, DEPLOYMENT_GRIDS, "app"), message="DG ready")
    volumes = pod_of(await client.get(DEPLOYMENTS, "app-beijing", NS))["spec"]["volumes"]
    assert volumes[0]["configMap"]["name"] == "app-config-beijing"
    assert volumes[1]["projected"]["sources"][0]["secret"]["name"] == "app-secret"
    assert (await client.list(SECRETS, NS))["items"] == []
    assert "status" not in await client.get(SECRET_GRIDS, "app-secret", NS)
    assert not any(i.res == SECRETS for i in cluster.manager.informers.informers)


async def test_grids_work_without_the_nodeunit_and_config_grid_crds() -> None:
    """A SuperEdge cluster with only the grid CRDs: nothing waits for the optional informers."""
    sandbox = Sandbox(simulate=True)
    url = await sandbox.start("127.0.0.1", 0)
    client, manager = Client(url), Manager(Client(url), ["grid"])
    try:
        for crd in grid_crds():
            await client.create(CUSTOMRESOURCEDEFINITIONS, crd)
        for obj in example_nodes():
            await client.create(NODES, obj)
        await manager.start()
        rules = [
            {"name": "gold", "unitSelector": {"matchLabels": {"tier": "gold"}}, "replicas": 3},
            {"name": "img", "units": ["beijing"], "containers": [{"name": "app", "image": "app:((unit))"}]},
        ]
        await client.create(DEPLOYMENT_GRIDS, app_grid(overrides=rules))
        await eventually(lambda: ready(client, DEPLOYMENT_GRIDS, "app"), message="DG ready")
        beijing = await client.get(DEPLOYMENTS, "app-beijing", NS)
        assert beijing["spec"]["replicas"] == 1  # no NodeUnits: the selector rule selects nothing
        assert pod_of(beijing)["spec"]["containers"][0]["image"] == "app:beijing"
        assert pod_of(beijing)["spec"]["volumes"][0]["configMap"]["name"] == "app-config"  # no config grid
    finally:
        await manager.stop()
        await manager.client.close()
        await client.close()
        await sandbox.stop()


async def test_config_grid_follows_nodeunit_labels_and_holds_units_it_cannot_fill(cluster: Cluster) -> None:
    client = cluster.client
    await nodeunit(client, "beijing", tier="gold")
    grid = config_grid("ConfigMapGrid", "tiers", data={"tier": "((unit.labels['tier']))"})
    await client.create(CONFIGMAP_GRIDS, grid)
    await eventually(lambda: data_of(client, "tiers-beijing"), message="beijing's ConfigMap")
    assert await data_of(client, "tiers-beijing") == {"tier": "gold"}

    async def held() -> Obj | None:
        found = await condition(client, CONFIGMAP_GRIDS, "tiers", reasons.DEGRADED)
        return found if found is not None and found["reason"] == reasons.INVALID_PLACEHOLDER else None

    found = await eventually(held, message="InvalidPlaceholder for the unit without a NodeUnit")
    assert "unit guangzhou" in found["message"] and "has no NodeUnit" in found["message"]
    assert await get(client, CONFIGMAPS, "tiers-guangzhou") is None
    await nodeunit(client, "guangzhou", tier="silver")
    await client.patch(NODEUNITS, "beijing", {"metadata": {"labels": {"tier": "bronze"}}})

    async def followed() -> bool:
        return await data_of(client, "tiers-guangzhou") == {"tier": "silver"} and await data_of(
            client, "tiers-beijing"
        ) == {"tier": "bronze"}

    await eventually(followed, message="NodeUnit changes re-render the config grid")
    await eventually(lambda: ready(client, CONFIGMAP_GRIDS, "tiers"), message="no longer degraded")
