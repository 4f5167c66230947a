"""`servicegroup demo`: the sandbox with the docs' five-node cluster and every capability shown.

The demo is a script over the real components: the sandbox (with `--simulate`, so pods run and
EndpointSlices exist), the manager's controllers, one topology proxy and one DNS daemon per node
being shown. Each step applies the docs' manifests from `examples/`, waits (bounded) for the
result, and prints what a user would check with kubectl. Then it stays up for kubectl until Ctrl-C
(`--once` exits after the walk-through; the tests use it).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import importlib.resources
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import yaml

from servicegroup.api.crds import all_crds
from servicegroup.api.labels import SITE_API_VERSION
from servicegroup.kube import resources as builtin
from servicegroup.kube.client import Client
from servicegroup.kube.errors import AlreadyExists, ApiError
from servicegroup.kube.objects import labels_of
from servicegroup.kube.resources import Resource, crd_resource
from servicegroup.manager import Manager
from servicegroup.sandbox import Sandbox

Obj = dict[str, Any]
T = TypeVar("T")

BEIJING, GUANGZHOU = "bj-1", "gz-1"
STATEFUL_NAMESPACE = "stateful"
CANARY_NAMESPACE = "canary"
WAIT_SECONDS = 60.0


def register(subparsers: Any) -> None:
    """Add `servicegroup demo`."""
    parser = subparsers.add_parser(
        "demo",
        help="run the sandbox with the docs' five-node cluster and show every capability",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--listen", default="127.0.0.1:0", metavar="HOST:PORT", help="where the sandbox API listens"
    )
    parser.add_argument(
        "--kubeconfig",
        default="servicegroup-demo.kubeconfig",
        metavar="PATH",
        help="kubeconfig written for kubectl (default: %(default)s)",
    )
    parser.add_argument("--once", action="store_true", help="exit after the walk-through")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Entry point of the sub-command."""
    host, _, port = str(args.listen).rpartition(":")
    if not host or not port.isdigit():
        raise SystemExit(f"servicegroup demo: error: --listen wants HOST:PORT, got {args.listen!r}")
    return asyncio.run(_demo(host, int(port), str(Path(args.kubeconfig).resolve()), once=bool(args.once)))


async def _demo(host: str, port: int, kubeconfig: str, *, once: bool) -> int:
    sandbox = Sandbox(simulate=True)
    url = await sandbox.start(host, port)
    sandbox.write_kubeconfig(kubeconfig)
    _say(f"sandbox API server: {url}   (export KUBECONFIG={kubeconfig})")
    manager: Manager | None = None
    try:
        async with Client(url) as client:
            await _install(client)
            manager = Manager(client, ["grid", "site"])
            await manager.start()
            for step in STEPS:
                await step(client)
            _say(
                f"\nThe demo stays up. Try:\n  export KUBECONFIG={kubeconfig}\n"
                "  kubectl get nodeunits,nodegroups\n  kubectl get dg,ssg,sg,cmg -A\n"
                "  kubectl get deploy,sts,pods -A -o wide\nCtrl-C stops it."
            )
            if not once:
                await _until_signalled()
    finally:
        if manager is not None:
            await manager.stop()
        await sandbox.stop()
    return 0


# -- the steps ------------------------------------------------------------------------------------


async def _install(client: Client) -> None:
    _title("1. The cluster: the docs' five edge nodes (examples/00-nodes.yaml) and our CRDs")
    await _apply_all(client, _example("00-nodes.yaml"))
    await _apply_all(client, all_crds())
    for node in await _items(client, builtin.NODES):
        _say(f"  node {node['metadata']['name']:<6} location={labels_of(node).get('location')}")


async def _show_sites(client: Client) -> None:
    _title("2. NodeUnits and a NodeGroup group nodes and label them in bulk (examples/07-nodeunits.yaml)")
    await _apply_all(client, _example("07-nodeunits.yaml"))
    units = _crd("NodeUnit")

    async def ready_units() -> list[Obj]:
        found = await _items(client, units)
        return found if found and all((u.get("status") or {}).get("readyRate") for u in found) else []

    for unit in await _wait(ready_units, "NodeUnit status"):
        status = unit.get("status") or {}
        _say(
            f"  nodeunit {unit['metadata']['name']:<10} ready {status.get('readyRate')}  "
            f"nodes {', '.join(status.get('readyNodes') or [])}"
        )

    async def counted_groups() -> list[Obj]:
        found = await _items(client, _crd("NodeGroup"))
        return found if all((g.get("status") or {}).get("nodeUnits") for g in found) else []

    for group in await _wait(counted_groups, "NodeGroup status"):
        status = group.get("status") or {}
        _say(f"  nodegroup {group['metadata']['name']:<9} units {', '.join(status.get('nodeUnits') or [])}")

    async def labelled() -> list[Obj]:
        nodes = await _items(client, builtin.NODES)
        return (
            nodes
            if all(labels_of(n).get("site") or labels_of(n).get("region") == "south" for n in nodes)
            else []
        )

    for node in await _wait(labelled, "node labels from setNode"):
        keep = {k: v for k, v in labels_of(node).items() if k in ("location", "site", "beijing", "guangzhou")}
        _say(f"  node {node['metadata']['name']:<6} {keep}")


async def _show_grids(client: Client) -> None:
    _title("3. DeploymentGrid + ServiceGrid: one Deployment per NodeUnit, one Service (examples/01, 02)")
    await _apply_all(client, [*_example("01-deploymentgrid.yaml"), *_example("02-servicegrid.yaml")])
    wanted = {"deploymentgrid-demo-beijing", "deploymentgrid-demo-guangzhou"}

    async def ready() -> list[Obj]:
        deployments = [
            d for d in await _items(client, builtin.DEPLOYMENTS, "default") if d["metadata"]["name"] in wanted
        ]
        done = len(deployments) == len(wanted) and all(
            (d.get("status") or {}).get("readyReplicas") == d["spec"]["replicas"] for d in deployments
        )
        return deployments if done else []

    for deployment in await _wait(ready, "per-unit Deployments ready"):
        name = deployment["metadata"]["name"]
        selector = deployment["spec"]["template"]["spec"].get("nodeSelector")
        _say(
            f"  deployment {name:<30} {deployment['status']['readyReplicas']}/"
            f"{deployment['spec']['replicas']} ready  nodeSelector={selector}"
        )
    for pod in await _items(client, builtin.PODS, "default"):
        _say(
            f"    pod {pod['metadata']['name']:<45} on {pod['spec'].get('nodeName')}"
            f"  ip {pod['status'].get('podIP')}"
        )
    service = await client.get(builtin.SERVICES, "servicegrid-demo-svc", "default")
    _say(
        "  service servicegrid-demo-svc  annotation "
        f"topologyKeys={service['metadata']['annotations'].get('topologyKeys')}"
    )
    grid = await client.get(_crd("DeploymentGrid"), "deploymentgrid-demo", "default")
    states = (grid.get("status") or {}).get("states") or {}
    for unit, state in sorted(states.items()):
        _say(
            f"  deploymentgrid status.states[{unit}]: "
            f"replicas {state.get('replicas')} ready {state.get('readyReplicas')}"
        )


async def _show_traffic(client: Client) -> None:
    _title("4. Traffic closed loop: the same Service seen through the topology proxy of two nodes")
    from servicegroup.traffic.demo import endpoints_by_node, node_proxies

    async with node_proxies(client, [BEIJING, GUANGZHOU]) as proxies:
        views = await endpoints_by_node(proxies, "default", "servicegrid-demo-svc")
    for node, endpoints in views.items():
        shown = ", ".join(f"{e.address}@{e.node}" for e in endpoints) or "(none)"
        _say(f"  kube-proxy on {node:<5} sees servicegrid-demo-svc -> {shown}")


async def _show_canary(client: Client) -> None:
    _title("5. Canary per NodeUnit: templatePool/templates (examples/05, gridUniqKey zone)")
    for node in await _items(client, builtin.NODES):
        zone = "zone1" if labels_of(node).get("location") == "beijing" else "zone2"
        patch = {"metadata": {"labels": {"zone": zone}}}
        await client.patch(builtin.NODES, node["metadata"]["name"], patch)
    await _ensure_namespace(client, CANARY_NAMESPACE)
    await _apply_all(client, _example("05-deploymentgrid-canary.yaml"), namespace=CANARY_NAMESPACE)
    wanted = {"deploymentgrid-demo-zone1", "deploymentgrid-demo-zone2"}

    async def created() -> list[Obj]:
        found = [
            d
            for d in await _items(client, builtin.DEPLOYMENTS, CANARY_NAMESPACE)
            if d["metadata"]["name"] in wanted
        ]
        return found if len(found) == len(wanted) else []

    for deployment in await _wait(created, "canary Deployments"):
        image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
        _say(
            f"  deployment {deployment['metadata']['name']:<28} "
            f"replicas {deployment['spec']['replicas']}  image {image}"
        )


async def _show_dns(client: Client) -> None:
    _title("6. Per-unit StatefulSet DNS (examples/03 + 04, namespace stateful)")
    from servicegroup.dns.demo import demo_lines

    await _ensure_namespace(client, STATEFUL_NAMESPACE)
    await _apply_all(
        client,
        [*_example("03-statefulsetgrid.yaml"), *_example("04-servicegrid-headless.yaml")],
        namespace=STATEFUL_NAMESPACE,
    )
    name = f"statefulsetgrid-demo-0.servicegrid-demo-svc.{STATEFUL_NAMESPACE}.svc.cluster.local"
    for line in await demo_lines(client, [BEIJING, GUANGZHOU], names=[name], within=WAIT_SECONDS):
        _say(f"  {line}")


async def _show_fed(_client: Client) -> None:
    _title("7. Multi-cluster: a control and two member clusters (examples/06, label superedge.io/fed)")
    from servicegroup.fed.demo import demo_lines as fed_lines

    for line in await fed_lines(within=WAIT_SECONDS):
        _say(f"  {line}")


async def _show_site_config(client: Client) -> None:
    _title("8. Per-site configuration: one app, its own config per site, and a new site (ConfigMapGrid)")
    from servicegroup.grid.demo_config import NEW_SITE, NEW_SITE_NODE
    from servicegroup.grid.demo_config import demo as config_lines

    async def new_site_unit(client: Client) -> str:
        """Here the NodeGroup `location` owns that label (step 2): a new site is a new NodeUnit in it."""
        await client.patch(builtin.NODES, NEW_SITE_NODE, {"metadata": {"labels": {"region": "east"}}})
        unit = {"apiVersion": SITE_API_VERSION, "kind": "NodeUnit", "metadata": {"name": NEW_SITE}}
        await client.create(_crd("NodeUnit"), {**unit, "spec": {"type": "edge", "nodes": [NEW_SITE_NODE]}})
        group = {"spec": {"nodeUnits": ["beijing", "guangzhou", NEW_SITE]}}
        await client.patch(_crd("NodeGroup"), "location", group)
        return (
            f"A new mall: NodeUnit {NEW_SITE} (node {NEW_SITE_NODE}) joins NodeGroup location, which labels "
            f"the node location={NEW_SITE}; no config was written for it"
        )

    for line in (await config_lines(client, wait_seconds=WAIT_SECONDS, add_site=new_site_unit))[1:]:
        _say(f"  {line}")


STEPS: tuple[Callable[[Client], Awaitable[None]], ...] = (
    _show_sites,
    _show_grids,
    _show_traffic,
    _show_canary,
    _show_dns,
    _show_fed,
    _show_site_config,  # last: it moves node gz-3 to a new site
)


# -- helpers --------------------------------------------------------------------------------------


def _example(name: str) -> list[Obj]:
    """The documents of one shipped example manifest."""
    text = importlib.resources.files("servicegroup").joinpath("examples", name).read_text()
    return [doc for doc in yaml.safe_load_all(text) if doc]


def _crd(kind: str) -> Resource:
    """The Resource of one of our CRD kinds, read from the CRD manifests (one source of truth)."""
    for crd in all_crds():
        spec = crd["spec"]
        if spec["names"]["kind"] == kind:
            version = next(v["name"] for v in spec["versions"] if v.get("storage"))
            return crd_resource(
                spec["group"], version, spec["names"]["plural"], kind, spec["scope"] == "Namespaced"
            )
    raise KeyError(kind)


_BUILTINS = {(r.api_version, r.kind): r for r in vars(builtin).values() if isinstance(r, Resource)}


def _resource_for(obj: Obj) -> Resource:
    key = (obj["apiVersion"], obj["kind"])
    return _BUILTINS[key] if key in _BUILTINS else _crd(obj["kind"])


async def _apply_all(client: Client, objs: Iterable[Obj], namespace: str | None = None) -> None:
    """Create each object, or replace it when it exists (like `kubectl apply` for the demo)."""
    for obj in objs:
        res = _resource_for(obj)
        ns = (namespace or obj["metadata"].get("namespace") or "default") if res.namespaced else None
        body = {**obj, "metadata": {**obj["metadata"], **({"namespace": ns} if ns else {})}}
        try:
            await client.create(res, body, ns)
        except AlreadyExists:
            live = await client.get(res, obj["metadata"]["name"], ns)
            body["metadata"]["resourceVersion"] = live["metadata"]["resourceVersion"]
            await client.replace(res, body)
        if res == builtin.CUSTOMRESOURCEDEFINITIONS:
            name = obj["metadata"]["name"]
            await _wait(functools.partial(_established, client, name), f"CRD {name}")


async def _established(client: Client, name: str) -> bool:
    crd = await client.get(builtin.CUSTOMRESOURCEDEFINITIONS, name)
    conditions = (crd.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions)


async def _ensure_namespace(client: Client, name: str) -> None:
    with contextlib.suppress(AlreadyExists):
        await client.create(
            builtin.NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
        )


async def _items(client: Client, res: Resource, namespace: str | None = None) -> list[Obj]:
    listed = await client.list(res, namespace)
    return sorted(listed.get("items") or [], key=lambda o: str(o["metadata"]["name"]))


async def _wait(probe: Callable[[], Awaitable[T]], what: str) -> T:
    """Poll `probe` until it returns something truthy; a bounded wait, so a broken step says so."""
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        with contextlib.suppress(ApiError):
            value = await probe()
            if value:
                return value
        if time.monotonic() > deadline:
            raise SystemExit(f"servicegroup demo: error: {what} not reached within {WAIT_SECONDS:.0f}s")
        await asyncio.sleep(0.1)


async def _until_signalled() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


def _title(text: str) -> None:
    _say(f"\n== {text}")


def _say(text: str) -> None:
    print(text, file=sys.stdout, flush=True)
