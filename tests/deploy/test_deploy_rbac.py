"""Each component's RBAC is exactly what it uses: the real command runs against the sandbox through a
recording proxy (the audit log), a scenario drives every code path that calls the API, and the
recorded requests are compared with the rules the rendered manifests bind to its ServiceAccount:
nothing missing, nothing unused."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from deploy_support import (
    BY_KIND,
    DEPLOY,
    DGRIDS,
    MANAGER_NAMESPACE,
    NODEUNITS,
    SGRIDS,
    SSGRIDS,
    Call,
    RecordingProxy,
    compare,
    component,
    create,
    example,
    exists,
    find,
    grants_of,
    installed_sandbox,
    render,
    status_of,
    to_call,
    with_components,
)

from servicegroup.fed.demo import DEMO_MEMBERS, member_secret, start_cluster, stop_cluster
from servicegroup.grid import reasons
from servicegroup.kube.client import Client
from servicegroup.kube.resources import (
    CONFIGMAPS,
    DEPLOYMENTS,
    LEASES,
    NODES,
    SECRETS,
    SERVICES,
    STATEFULSETS,
    Resource,
)
from servicegroup.sandbox import Sandbox
from waits import eventually

pytestmark = pytest.mark.slow

Obj = dict[str, Any]


@pytest.fixture
async def cluster() -> AsyncIterator[tuple[Sandbox, Client]]:
    async with installed_sandbox() as installed:
        yield installed


@pytest.fixture
async def recorder(cluster: tuple[Sandbox, Client]) -> AsyncIterator[tuple[RecordingProxy, str]]:
    proxy = RecordingProxy(cluster[0].url)
    url = await proxy.start()
    yield proxy, url
    await proxy.stop()


def assert_exact(account: str, namespace: str, calls: list[Call], *, overlay: str = "default") -> None:
    grants = grants_of(render(DEPLOY / "overlays" / overlay), namespace, account)
    assert grants, f"no RBAC bound to {namespace}/{account}"
    missing, unused = compare(grants, calls)
    assert not missing, f"{account} makes calls its RBAC does not allow: {sorted(map(str, missing))}"
    assert not unused, f"{account} is granted what it never uses: {sorted(unused)}"


async def test_manager_rbac_is_exactly_what_grid_and_site_use(
    cluster: tuple[Sandbox, Client], recorder: tuple[RecordingProxy, str], tmp_path: Path
) -> None:
    _, client = cluster
    proxy, url = recorder
    kubeconfig = proxy.kubeconfig(url, tmp_path / "kubeconfig")
    args = [
        "manager",
        f"--kubeconfig={kubeconfig}",
        "--controllers=grid,site",
        "--leader-elect",
        f"--leader-elect-namespace={MANAGER_NAMESPACE}",
        "--identity=recorded",
        "--health-listen=127.0.0.1:0",
    ]
    async with component(args, tmp_path / "manager.log") as manager:

        async def leading() -> bool:
            if not await exists(client, LEASES, "servicegroup-manager", MANAGER_NAMESPACE):
                return False
            lease = await client.get(LEASES, "servicegroup-manager", MANAGER_NAMESPACE)
            return bool(lease["spec"].get("holderIdentity") == "recorded")

        await eventually(leading, timeout=30, message="the manager holds the lease")
        await _drive_site(client)
        await _drive_grids(client)
        assert await manager.terminate() == 0
    assert_exact("servicegroup-manager", "servicegroup-system", proxy.calls)


async def _drive_site(client: Client) -> None:
    """NodeUnits label nodes; a NodeGroup with autoFindNodeKeys creates units and labels them."""
    await create(client, *example("07-nodeunits.yaml"))
    auto_group = {
        "apiVersion": "site.superedge.io/v1alpha2",
        "kind": "NodeGroup",
        "metadata": {"name": "region"},
        "spec": {"autoFindNodeKeys": ["region"]},
    }
    await create(client, auto_group)

    async def labelled_and_found() -> bool:
        node = await client.get(NODES, "bj-1")
        units = (await client.list(NODEUNITS))["items"]
        return node["metadata"]["labels"].get("site") == "beijing" and len(units) > 2

    await eventually(labelled_and_found, timeout=30, message="units labelled nodes and were auto-found")


async def _drive_grids(client: Client) -> None:
    """Per kind: children created, updated and deleted, unused templates pruned; a repeated Event."""
    await create(client, *example("01-deploymentgrid.yaml"), *example("02-servicegrid.yaml"))
    await create(client, *example("03-statefulsetgrid.yaml"))
    for grid_res, name, child_res in (
        (DGRIDS, "deploymentgrid-demo", DEPLOYMENTS),
        (SSGRIDS, "statefulsetgrid-demo", STATEFULSETS),
    ):
        await _update_and_shrink(client, grid_res, name, child_res)
        await _prune(client, grid_res, name)
    await _service_grid_writes(client)
    await _config_grid_writes(client, "ConfigMapGrid", CONFIGMAPS, {"data": {"a": "1"}})
    await _repeat_event(client)


async def _update_and_shrink(client: Client, grid_res: Resource, name: str, child_res: Resource) -> None:
    """A template change updates every child; a grid key only beijing has deletes the other child."""
    await eventually(lambda: exists(client, child_res, f"{name}-guangzhou"), timeout=30, message="children")
    patch = {"spec": {"template": {"replicas": 4}}}
    await client.patch(grid_res, name, patch, namespace="default")

    async def updated() -> bool:
        child = await client.get(child_res, f"{name}-beijing", "default")
        return bool(child["spec"]["replicas"] == 4)

    await eventually(updated, timeout=30, message=f"{name} child updated")
    await client.patch(grid_res, name, {"spec": {"gridUniqKey": "site"}}, namespace="default")

    async def deleted() -> bool:
        return not await exists(client, child_res, f"{name}-guangzhou")

    await eventually(deleted, timeout=30, message=f"{name}: child of a unit it no longer has deleted")


async def _prune(client: Client, grid_res: Resource, name: str) -> None:
    """autoDeleteUnusedTemplate: the controller patches the grid's own spec."""
    pool = {"unused": (await client.get(grid_res, name, "default"))["spec"]["template"]}
    patch = {"spec": {"autoDeleteUnusedTemplate": True, "templatePool": pool}}
    await client.patch(grid_res, name, patch, namespace="default")

    async def pruned() -> bool:
        grid = await client.get(grid_res, name, "default")
        return "unused" not in (grid["spec"].get("templatePool") or {})

    await eventually(pruned, timeout=30, message=f"{name}: unused template pruned")


async def _service_grid_writes(client: Client) -> None:
    """The ServiceGrid's Service follows its template; a Service it controls but no longer wants
    (e.g. left by an older naming) is deleted."""
    patch = {"spec": {"template": {"ports": [{"protocol": "TCP", "port": 81, "targetPort": 8080}]}}}
    await client.patch(SGRIDS, "servicegrid-demo", patch, namespace="default")

    async def updated() -> bool:
        child = await client.get(SERVICES, "servicegrid-demo-svc", "default")
        return bool(child["spec"]["ports"][0]["port"] == 81)

    await eventually(updated, timeout=30, message="Service updated")
    grid = await client.get(SGRIDS, "servicegrid-demo", "default")
    owner = {
        "apiVersion": grid["apiVersion"],
        "kind": grid["kind"],
        "name": grid["metadata"]["name"],
        "uid": grid["metadata"]["uid"],
        "controller": True,
    }
    stray = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "servicegrid-demo-old", "ownerReferences": [owner]},
        "spec": {"ports": [{"port": 80}]},
    }
    await client.create(SERVICES, stray, namespace="default")

    async def deleted() -> bool:
        return not await exists(client, SERVICES, "servicegrid-demo-old")

    await eventually(deleted, timeout=30, message="stray Service deleted")


async def _config_grid_writes(client: Client, kind: str, child_res: Resource, data: dict[str, Any]) -> None:
    """Per-unit ConfigMaps / Secrets: created, restored after drift, deleted with a unit."""
    grid_res = BY_KIND[kind]
    name = kind.lower()
    grid = {
        "apiVersion": grid_res.api_version,
        "kind": kind,
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"gridUniqKey": "location", **data},
    }
    await create(client, grid)
    await eventually(lambda: exists(client, child_res, f"{name}-guangzhou"), timeout=30, message=kind)
    await eventually(lambda: _settled(client, grid_res, name), timeout=30, message=f"{kind} status")
    drifted = await client.patch(
        child_res, f"{name}-beijing", {"data": {"a": "ZHJpZnQ="}}, namespace="default"
    )

    async def updated() -> bool:
        child = await client.get(child_res, f"{name}-beijing", "default")
        return bool(child["metadata"]["resourceVersion"] != drifted["metadata"]["resourceVersion"])

    await eventually(updated, timeout=30, message=f"{kind}: drifted child restored")
    await client.patch(grid_res, name, {"spec": {"gridUniqKey": "site"}}, namespace="default")

    async def deleted() -> bool:
        return not await exists(client, child_res, f"{name}-guangzhou")

    await eventually(deleted, timeout=30, message=f"{kind}: child of a unit it no longer has deleted")


async def _settled(client: Client, grid_res: Resource, name: str) -> bool:
    grid = await client.get(grid_res, name, "default")
    return bool(grid.get("status", {}).get("observedGeneration") == grid["metadata"]["generation"])


async def _repeat_event(client: Client) -> None:
    """A child deleted behind the grid's back is created again: the same Event as the first time,
    which the recorder counts with a patch instead of posting a new Event."""
    grid = example("01-deploymentgrid.yaml")[0]
    grid["metadata"]["name"] = "solo"
    grid["spec"]["gridUniqKey"] = "site"  # only bj-1 and bj-2 carry it: one child
    grid["spec"]["template"]["replicas"] = 1
    await create(client, grid)
    events = Resource("", "v1", "events", "Event")

    async def counted(times: int) -> bool:
        items = (await client.list(events, "default"))["items"]
        return any(
            e["involvedObject"]["name"] == "solo"
            and e["reason"] == reasons.CHILD_CREATED
            and e.get("count", 1) >= times
            for e in items
        )

    await eventually(lambda: exists(client, DEPLOYMENTS, "solo-beijing"), timeout=30, message="solo child")
    await eventually(lambda: counted(1), timeout=30, message="creation Event")
    await client.delete(DEPLOYMENTS, "solo-beijing", "default")
    await eventually(lambda: counted(2), timeout=30, message="the same Event counted twice")


async def _run_daemon(args: list[str], proxy: RecordingProxy, log: Path) -> None:
    """Start a daemon, wait until it is ready and watching all it listed, stop it with SIGTERM."""
    async with component(args, log) as daemon:
        health = await daemon.address("health server listening on")
        await eventually(lambda: _ready(health), timeout=30, message=f"{args[0]} ready")

        async def watching_all() -> bool:
            listed = {(c.group, c.resource) for c in proxy.calls if c.verb == "list"}
            watched = {(c.group, c.resource) for c in proxy.calls if c.verb == "watch"}
            return bool(listed) and listed <= watched

        await eventually(watching_all, timeout=30, message=f"{args[0]} watches what it listed")
        assert await daemon.terminate() == 0


async def _ready(health: str) -> bool:
    return await status_of(f"{health}/readyz") == 200


async def test_proxy_rbac_is_read_only_and_exact(
    recorder: tuple[RecordingProxy, str], tmp_path: Path
) -> None:
    proxy, url = recorder
    kubeconfig = proxy.kubeconfig(url, tmp_path / "kubeconfig")
    args = ["proxy", f"--kubeconfig={kubeconfig}", "--node=bj-1", "--listen=127.0.0.1:0"]
    await _run_daemon([*args, "--health-listen=127.0.0.1:0"], proxy, tmp_path / "proxy.log")
    assert not proxy.writes
    assert_exact("servicegroup-proxy", "kube-system", proxy.calls)


async def test_dns_rbac_is_read_only_and_exact(recorder: tuple[RecordingProxy, str], tmp_path: Path) -> None:
    proxy, url = recorder
    kubeconfig = proxy.kubeconfig(url, tmp_path / "kubeconfig")
    args = ["dns", f"--kubeconfig={kubeconfig}", "--node=bj-1", f"--hosts-file={tmp_path / 'hosts'}"]
    await _run_daemon([*args, "--health-listen=127.0.0.1:0"], proxy, tmp_path / "dns.log")
    assert not proxy.writes
    assert_exact("servicegroup-dns", "kube-system", proxy.calls)


# -- the audit's own logic (pure) ------------------------------------------------------------


def test_requests_map_to_rbac_attributes() -> None:
    assert to_call("GET", "/api/v1/nodes", {}) == Call("list", "", "nodes", None, None)
    assert to_call("GET", "/api/v1/nodes", {"watch": ["true"]}) == Call("watch", "", "nodes", None, None)
    assert to_call("GET", "/api/v1/namespaces/a", {}) == Call("get", "", "namespaces", None, "a")
    lease = "/apis/coordination.k8s.io/v1/namespaces/ns/leases/l"
    assert to_call("PUT", lease, {}) == Call("update", "coordination.k8s.io", "leases", "ns", "l")
    status = "/apis/site.superedge.io/v1alpha2/nodeunits/u/status"
    assert to_call("PATCH", status, {}) == Call("patch", "site.superedge.io", "nodeunits/status", None, "u")
    assert to_call("GET", "/version", {}) is None
    assert to_call("GET", "/apis", {}) is None


def test_comparison_finds_missing_and_unused_rules() -> None:
    rules: list[dict[str, Any]] = [
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "verbs": ["get", "update"],
            "resourceNames": ["l"],
        },
    ]
    role = {"kind": "Role", "metadata": {"name": "r", "namespace": "ns"}, "rules": rules}
    binding = {
        "kind": "RoleBinding",
        "metadata": {"name": "b", "namespace": "ns"},
        "roleRef": {"kind": "Role", "name": "r"},
        "subjects": [{"kind": "ServiceAccount", "name": "sa", "namespace": "ns"}],
    }
    grants = grants_of([role, binding], "ns", "sa")
    calls = [
        Call("get", "coordination.k8s.io", "leases", "ns", "l"),
        Call("get", "coordination.k8s.io", "leases", "other", "l"),  # wrong namespace
        Call("update", "coordination.k8s.io", "leases", "ns", "m"),  # wrong name
    ]
    missing, unused = compare(grants, calls)
    assert missing == set(calls[1:])
    assert unused == {"update leases.coordination.k8s.io l in ns"}


async def test_fed_component_rbac_is_exactly_what_fed_adds(
    cluster: tuple[Sandbox, Client], recorder: tuple[RecordingProxy, str], tmp_path: Path
) -> None:
    """The manager with `fed` (env and flags as the Component sets them) distributes grids of every
    kind to a member and cleans them up: every request is allowed by the rendered rules, and every
    rule the fed Component adds (the member Secrets Role, the finalizer patches) is used."""
    _, client = cluster
    proxy, url = recorder
    objs = render(with_components(tmp_path, "fed"))
    manager = find(objs, "Deployment", "servicegroup-manager")["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e["value"] for e in manager["env"] if "value" in e}
    clusters_ns = env["SERVICEGROUP_FED_NAMESPACE"]
    member = await start_cluster("member-a", ["grid"], DEMO_MEMBERS["member-a"], simulate=False)
    try:
        await member.manager.start()
        await create(client, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": clusters_ns}})
        member_config = member.sandbox.write_kubeconfig(tmp_path / "member.kubeconfig")
        secret = member_secret("member-a", member_config.read_bytes(), namespace=clusters_ns)
        await client.create(SECRETS, secret, namespace=clusters_ns)
        args = [
            "manager",
            f"--kubeconfig={proxy.kubeconfig(url, tmp_path / 'kubeconfig')}",
            *(a for a in manager["args"] if a.startswith("--controllers")),
            "--health-listen=127.0.0.1:0",
        ]
        async with component(args, tmp_path / "manager.log", env) as running:
            await _distribute_and_clean_up(client, member.client)
            assert await running.terminate() == 0
    finally:
        await stop_cluster(member)
    assert_component_exact(objs, {"servicegroup-fed-clusters", "servicegroup-fed"}, proxy.calls)
    secret_calls = {c for c in proxy.calls if c.resource == "secrets" and c.verb in ("list", "watch")}
    assert {c.namespace for c in secret_calls} >= {clusters_ns}


ROLE_KINDS = ("Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding")


def assert_component_exact(objs: list[Obj], component_roles: set[str], calls: list[Call]) -> None:
    """Every call is allowed by the rendered RBAC, and every rule of the Component's roles (and
    bindings, by the same names) is used."""
    grants = grants_of(objs, MANAGER_NAMESPACE, "servicegroup-manager")
    missing, _ = compare(grants, calls)
    assert not missing, f"calls the rendered RBAC does not allow: {sorted(map(str, missing))}"
    own = [o for o in objs if o["metadata"]["name"] in component_roles or o["kind"] not in ROLE_KINDS]
    _, unused = compare(grants_of(own, MANAGER_NAMESPACE, "servicegroup-manager"), calls)
    assert not unused, f"the Component grants what its controller never uses: {sorted(unused)}"


async def test_secretgrid_component_rbac_is_exactly_what_secretgrid_adds(
    cluster: tuple[Sandbox, Client], recorder: tuple[RecordingProxy, str], tmp_path: Path
) -> None:
    """The manager with the secretgrid Component's flags: per-unit Secrets created, restored after
    drift and deleted with a unit, through exactly the Component's rules (the base has none)."""
    _, client = cluster
    proxy, url = recorder
    objs = render(with_components(tmp_path, "secretgrid"))
    manager = find(objs, "Deployment", "servicegroup-manager")["spec"]["template"]["spec"]["containers"][0]
    args = [
        "manager",
        f"--kubeconfig={proxy.kubeconfig(url, tmp_path / 'kubeconfig')}",
        *(a for a in manager["args"] if a.startswith("--controllers")),
        "--health-listen=127.0.0.1:0",
    ]
    async with component(args, tmp_path / "manager.log") as running:
        await _config_grid_writes(client, "SecretGrid", SECRETS, {"stringData": {"a": "1"}})
        assert await running.terminate() == 0
    assert_component_exact(objs, {"servicegroup-secretgrid"}, proxy.calls)


async def _distribute_and_clean_up(control: Client, member: Client) -> None:
    """One fed grid of each kind: copied to the member (finalizer and status on the original), then
    deleted (the finalizer waits for the copy to go)."""
    grids = [_fed_grid(kind) for kind in ("DeploymentGrid", "ServiceGrid", "ConfigMapGrid", "SecretGrid")]
    await create(control, *grids)
    for grid in grids:
        res = BY_KIND[grid["kind"]]
        await eventually(lambda res=res: exists(member, res, "fed"), timeout=30, message=f"{res.kind} copied")
    for grid in grids:
        await control.delete(BY_KIND[grid["kind"]], "fed", "default")
    for grid in grids:
        res = BY_KIND[grid["kind"]]

        async def gone(res: Resource = res) -> bool:
            return not await exists(control, res, "fed") and not await exists(member, res, "fed")

        await eventually(gone, timeout=30, message=f"{res.kind} and its copy deleted")


def _fed_grid(kind: str) -> dict[str, Any]:
    spec: dict[str, Any] = {"gridUniqKey": "zone"}
    if kind == "DeploymentGrid":
        spec = example("06-deploymentgrid-fed.yaml")[0]["spec"]
    elif kind == "ServiceGrid":
        spec["template"] = {"selector": {"appGrid": "echo"}, "ports": [{"port": 80}]}
    else:
        spec["data" if kind == "ConfigMapGrid" else "stringData"] = {"a": "1"}
    res = BY_KIND[kind]
    return {
        "apiVersion": res.api_version,
        "kind": kind,
        "metadata": {"name": "fed", "namespace": "default", "labels": {"superedge.io/fed": "yes"}},
        "spec": spec,
    }
