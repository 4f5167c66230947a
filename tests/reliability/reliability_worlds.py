"""The clusters the reliability scenarios converge, and an exact check of their end state.

The expected state is written out here from the docs' comments (examples/01, 02, 05, 07), not
computed with the product's own `desired_children`, so a bug shared by both cannot hide. `check`
lists every discrepancy: missing, duplicate (two children for one unit), orphaned or foreign
children, wrong specs, wrong node labels, unready units.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from servicegroup.api.crds import all_crds
from servicegroup.api.labels import GRID_SELECTOR, NODEUNIT_MEMBER_VALUE, TOPOLOGY_KEYS
from servicegroup.grid import reasons
from servicegroup.grid.kinds import DEPLOYMENT_GRIDS, SERVICE_GRIDS
from servicegroup.kube.client import Client
from servicegroup.kube.conditions import get_condition
from servicegroup.kube.errors import NotFound
from servicegroup.kube.resources import (
    CUSTOMRESOURCEDEFINITIONS,
    DEPLOYMENTS,
    NAMESPACES,
    NODES,
    SERVICES,
    Resource,
)
from servicegroup.site.controller import NODEGROUPS, NODEUNITS

Obj = dict[str, Any]
EXAMPLES = Path(__file__).resolve().parents[2] / "src" / "servicegroup" / "examples"
CANARY_NS = "canary"
FLEET_NS = "fleet"
# example 05 keys on `zone`, which the docs' nodes lack: zone3 gets the default template
ZONES = {"bj-1": "zone1", "bj-2": "zone2", "gz-1": "zone3", "gz-2": "zone1", "gz-3": "zone2"}
UNIT_OF = {
    "bj-1": "beijing",
    "bj-2": "beijing",
    "gz-1": "guangzhou",
    "gz-2": "guangzhou",
    "gz-3": "guangzhou",
}
IMAGE_22 = "superedge/echoserver:2.2"
IMAGE_23 = "superedge/echoserver:2.3"
KIND_RESOURCES = {
    "Node": NODES,
    "NodeUnit": NODEUNITS,
    "NodeGroup": NODEGROUPS,
    "DeploymentGrid": DEPLOYMENT_GRIDS,
    "ServiceGrid": SERVICE_GRIDS,
    "Namespace": NAMESPACES,
}


def examples(name: str) -> list[Obj]:
    with open(EXAMPLES / f"{name}.yaml", encoding="utf-8") as stream:
        return [doc for doc in yaml.safe_load_all(stream) if doc]


def ready_status() -> Obj:
    return {"conditions": [{"type": "Ready", "status": "True"}]}


@dataclass(frozen=True)
class Child:
    """One expected per-unit workload."""

    grid: str
    key: str
    unit: str
    replicas: int
    image: str


@dataclass
class Desired:
    """Everything a converged cluster must hold, exactly."""

    workloads: dict[tuple[str, str], Child] = field(default_factory=dict)  # (ns, name)
    services: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)  # -> (grid, key)
    node_labels: dict[str, dict[str, str]] = field(default_factory=dict)
    unit_ready: dict[str, str] = field(default_factory=dict)  # NodeUnit -> readyRate
    group_workloads: dict[str, list[Obj]] = field(default_factory=dict)  # NodeGroup -> workloadStatus
    grids: list[tuple[Resource, str, str]] = field(default_factory=list)  # must be Ready

    def set_replicas(self, namespace: str, replicas: int) -> None:
        """The grids of `namespace` were changed to `replicas`: so must their children be."""
        for key, child in list(self.workloads.items()):
            if key[0] == namespace:
                self.workloads[key] = replace(child, replicas=replicas)


@dataclass
class World:
    """Objects to create (in order) and what they must converge to."""

    objects: list[Obj]
    desired: Desired


def docs_world(replicas: int = 2) -> World:
    """The docs' cluster: nodes (00, location to be set by 07), NodeUnits/NodeGroup (07), the
    DeploymentGrid (01, with `replicas`), the ServiceGrid (02) and the canary grid (05, in ns canary)."""
    nodes = []
    for n in examples("00-nodes"):
        labels = n["metadata"]["labels"]
        labels.pop("location")
        labels["zone"] = ZONES[n["metadata"]["name"]]
        n["status"] = ready_status()
        nodes.append(n)
    grid = examples("01-deploymentgrid")[0]
    grid["spec"]["template"]["replicas"] = replicas
    canary = examples("05-deploymentgrid-canary")[0]
    canary["metadata"]["namespace"] = CANARY_NS
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": CANARY_NS}}
    objects = [*nodes, *examples("07-nodeunits"), grid, examples("02-servicegrid")[0], namespace, canary]
    desired = Desired()
    for unit in ("beijing", "guangzhou"):
        desired.workloads[("default", f"deploymentgrid-demo-{unit}")] = Child(
            "deploymentgrid-demo", "location", unit, replicas, IMAGE_22
        )
    for zone, replicas_, image in (("zone1", 2, IMAGE_22), ("zone2", 3, IMAGE_23), ("zone3", 2, IMAGE_22)):
        desired.workloads[(CANARY_NS, f"deploymentgrid-demo-{zone}")] = Child(
            "deploymentgrid-demo", "zone", zone, replicas_, image
        )
    desired.services[("default", "servicegrid-demo-svc")] = ("servicegrid-demo", "location")
    for n in nodes:
        name = n["metadata"]["name"]
        unit = UNIT_OF[name]
        labels = {**n["metadata"]["labels"], "location": unit, unit: NODEUNIT_MEMBER_VALUE}
        if unit == "beijing":
            labels["site"] = "beijing"
        desired.node_labels[name] = labels
    desired.unit_ready = {"beijing": "2/2", "guangzhou": "3/3"}
    desired.group_workloads["location"] = [
        {
            "workloadName": "default/deploymentgrid-demo",
            "type": "DeploymentGrid",
            "readyUnit": ["beijing", "guangzhou"],
        }
    ]
    desired.grids = [
        (DEPLOYMENT_GRIDS, "default", "deploymentgrid-demo"),
        (DEPLOYMENT_GRIDS, CANARY_NS, "deploymentgrid-demo"),
        (SERVICE_GRIDS, "default", "servicegrid-demo"),
    ]
    return World(objects, desired)


def fleet_world(units: int = 100) -> World:
    """`units` one-node NodeUnits in NodeGroup `fleet`, a DeploymentGrid and a ServiceGrid keyed on it."""
    names = [f"u-{i:03d}" for i in range(units)]
    objects: list[Obj] = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": FLEET_NS}}]
    desired = Desired()
    for i, unit in enumerate(names):
        node = f"f-{i:03d}"
        base = {"kubernetes.io/hostname": node}
        objects.append(
            {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {"name": node, "labels": dict(base)},
                "status": ready_status(),
            }
        )
        desired.node_labels[node] = {**base, "fleet": unit, unit: NODEUNIT_MEMBER_VALUE}
        desired.unit_ready[unit] = "1/1"
        desired.workloads[(FLEET_NS, f"fleet-app-{unit}")] = Child("fleet-app", "fleet", unit, 1, IMAGE_22)
    for i, unit in enumerate(names):
        objects.append(
            {
                "apiVersion": "site.superedge.io/v1alpha2",
                "kind": "NodeUnit",
                "metadata": {"name": unit},
                "spec": {"type": "edge", "nodes": [f"f-{i:03d}"]},
            }
        )
    objects.append(
        {
            "apiVersion": "site.superedge.io/v1alpha2",
            "kind": "NodeGroup",
            "metadata": {"name": "fleet"},
            "spec": {"nodeUnits": names},
        }
    )
    grid = examples("01-deploymentgrid")[0]
    grid["metadata"] = {"name": "fleet-app", "namespace": FLEET_NS}
    grid["spec"]["gridUniqKey"] = "fleet"
    grid["spec"]["template"]["replicas"] = 1
    service = examples("02-servicegrid")[0]
    service["metadata"] = {"name": "fleet-svc", "namespace": FLEET_NS}
    service["spec"]["gridUniqKey"] = "fleet"
    objects += [grid, service]
    desired.services[(FLEET_NS, "fleet-svc-svc")] = ("fleet-svc", "fleet")
    desired.grids = [(DEPLOYMENT_GRIDS, FLEET_NS, "fleet-app"), (SERVICE_GRIDS, FLEET_NS, "fleet-svc")]
    return World(objects, desired)


def resource_of(obj: Obj) -> Resource:
    return KIND_RESOURCES[obj["kind"]]


async def install_crds(client: Client) -> None:
    for crd in all_crds():
        await client.create(CUSTOMRESOURCEDEFINITIONS, crd)


# -- the exact check ------------------------------------------------------------------------------


async def check(client: Client, desired: Desired) -> list[str]:
    """Every discrepancy between the cluster and `desired` (empty: converged exactly)."""
    problems: list[str] = []
    problems += await _check_workloads(client, desired)
    problems += await _check_services(client, desired)
    problems += await _check_nodes(client, desired)
    problems += await _check_units(client, desired)
    problems += await _check_grids(client, desired)
    return problems


async def _grid_uids(client: Client) -> dict[tuple[str, str, str], str]:
    uids = {}
    for res in (DEPLOYMENT_GRIDS, SERVICE_GRIDS):
        for grid in (await client.list(res))["items"]:
            meta = grid["metadata"]
            uids[(grid["kind"], meta["namespace"], meta["name"])] = meta["uid"]
    return uids


def _owner_problem(obj: Obj, kind: str, grid: str, uids: dict[tuple[str, str, str], str]) -> str | None:
    meta = obj["metadata"]
    uid = uids.get((kind, meta["namespace"], grid))
    refs = meta.get("ownerReferences") or []
    controllers = [r for r in refs if r.get("controller")]
    if uid is None or [r.get("uid") for r in controllers] != [uid]:
        return f"orphan {obj['kind']} {meta['namespace']}/{meta['name']}: owners {refs}, grid uid {uid}"
    if meta.get("deletionTimestamp"):
        return f"{obj['kind']} {meta['namespace']}/{meta['name']} is being deleted"
    return None


async def _check_workloads(client: Client, desired: Desired) -> list[str]:
    problems = []
    uids = await _grid_uids(client)
    live = (await client.list(DEPLOYMENTS, label_selector=GRID_SELECTOR))["items"]
    per_unit: Counter[tuple[str, str, str]] = Counter()
    seen = set()
    for obj in live:
        meta = obj["metadata"]
        key = (meta["namespace"], meta["name"])
        seen.add(key)
        want = desired.workloads.get(key)
        if want is None:
            problems.append(f"unexpected Deployment {key[0]}/{key[1]}")
            continue
        per_unit[(key[0], want.grid, want.unit)] += 1
        owner = _owner_problem(obj, "DeploymentGrid", want.grid, uids)
        if owner:
            problems.append(owner)
        spec = obj["spec"]
        pod = spec["template"]["spec"]
        got = (spec.get("replicas"), pod.get("nodeSelector"), [c["image"] for c in pod["containers"]])
        wanted = (want.replicas, {want.key: want.unit}, [want.image])
        if got != wanted:
            problems.append(f"wrong spec of Deployment {key[0]}/{key[1]}: {got} != {wanted}")
        if meta["labels"].get(GRID_SELECTOR) != want.grid:
            problems.append(f"wrong labels of Deployment {key[0]}/{key[1]}: {meta['labels']}")
    problems += [
        f"missing Deployment {ns}/{name}" for ns, name in desired.workloads if (ns, name) not in seen
    ]
    problems += [f"duplicate children for {k}: {n}" for k, n in per_unit.items() if n > 1]
    return problems


async def _check_services(client: Client, desired: Desired) -> list[str]:
    problems = []
    uids = await _grid_uids(client)
    live = {
        (s["metadata"]["namespace"], s["metadata"]["name"]): s
        for s in (await client.list(SERVICES, label_selector=GRID_SELECTOR))["items"]
    }
    for key in sorted(set(live) - set(desired.services)):
        problems.append(f"unexpected Service {key[0]}/{key[1]}")
    for key, (grid, topology) in desired.services.items():
        svc = live.get(key)
        if svc is None:
            problems.append(f"missing Service {key[0]}/{key[1]}")
            continue
        owner = _owner_problem(svc, "ServiceGrid", grid, uids)
        if owner:
            problems.append(owner)
        keys = (svc["metadata"].get("annotations") or {}).get(TOPOLOGY_KEYS)
        if keys != f'["{topology}"]' or svc["spec"].get("selector") != {"appGrid": "echo"}:
            problems.append(f"wrong Service {key[0]}/{key[1]}: {keys} {svc['spec'].get('selector')}")
    return problems


async def _check_nodes(client: Client, desired: Desired) -> list[str]:
    problems = []
    live = {n["metadata"]["name"]: n for n in (await client.list(NODES))["items"]}
    for name, labels in desired.node_labels.items():
        got = (live.get(name) or {}).get("metadata", {}).get("labels")
        if got != labels:
            problems.append(f"node {name} labels {got} != {labels}")
    return problems


async def _check_units(client: Client, desired: Desired) -> list[str]:
    problems = []
    live = {u["metadata"]["name"]: u for u in (await client.list(NODEUNITS))["items"]}
    for unit, rate in desired.unit_ready.items():
        got = ((live.get(unit) or {}).get("status") or {}).get("readyRate")
        if got != rate:
            problems.append(f"NodeUnit {unit} readyRate {got} != {rate}")
    groups = {g["metadata"]["name"]: g for g in (await client.list(NODEGROUPS))["items"]}
    for group, workloads in desired.group_workloads.items():
        got = ((groups.get(group) or {}).get("status") or {}).get("workloadStatus")
        if got != workloads:
            problems.append(f"NodeGroup {group} workloadStatus {got} != {workloads}")
    return problems


async def _check_grids(client: Client, desired: Desired) -> list[str]:
    problems = []
    for res, ns, name in desired.grids:
        try:
            grid = await client.get(res, name, ns)
        except NotFound:
            problems.append(f"grid {ns}/{name} is gone")
            continue
        status = grid.get("status") or {}
        ready = get_condition(status.get("conditions"), reasons.READY)
        if ready is None or ready["status"] != "True":
            problems.append(f"{res.kind} {ns}/{name} not Ready: {ready}")
        if status.get("observedGeneration") != grid["metadata"].get("generation"):
            problems.append(f"{res.kind} {ns}/{name} status is stale")
    return problems
