"""Grid controller benchmark: G DeploymentGrids x U units against the sandbox (a subprocess).

Measures, for the grid controllers running in this process under the real Manager:
  * time from creating the grids until every child exists and every grid reports all its units;
  * write requests issued, split by kind, against the minimum (one create per child);
  * the floor: the sandbox's own time for the same creates from a minimal client (same concurrency);
  * peak RSS of this process (the manager; the sandbox is measured separately, as a subprocess);
  * write requests of a resync of the converged cluster (must be 0).

    .venv/bin/python bench/grid_bench.py                 # 10 grids x 1,000 units (about 30 s)
    .venv/bin/python bench/grid_bench.py --full          # 50 grids x 1,000 units = 50,000 children
    .venv/bin/python bench/grid_bench.py --grids 10 --units 500 --json
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from functools import partial
from pathlib import Path
from typing import Any

from prometheus_client import REGISTRY

from servicegroup.api.crds import all_crds
from servicegroup.grid.apply import DEFAULT_CONCURRENCY
from servicegroup.grid.kinds import DEPLOYMENT_GRIDS, KINDS, GridKind
from servicegroup.kube.client import Client
from servicegroup.kube.objects import ObjectKey
from servicegroup.kube.resources import CUSTOMRESOURCEDEFINITIONS, DEPLOYMENTS, NAMESPACES, NODES
from servicegroup.manager import Manager

KEY = "bench.servicegroup.io/unit"
NAMESPACE = "bench"
FLOOR_NAMESPACE = "bench-floor"
POD_TEMPLATE: dict[str, Any] = {
    "replicas": 1,
    "selector": {"matchLabels": {"app": "echo"}},
    "template": {
        "metadata": {"labels": {"app": "echo"}},
        "spec": {"containers": [{"name": "echo", "image": "superedge/echoserver:2.2"}]},
    },
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--grids", type=int, default=10, help="DeploymentGrids (default 10)")
    parser.add_argument("--units", type=int, default=1000, help="units = nodes (default 1000)")
    parser.add_argument("--full", action="store_true", help="50 grids x 1,000 units (50,000 children)")
    parser.add_argument("--workers", type=int, default=2, help="reconcile workers per controller")
    parser.add_argument("--timeout", type=float, default=3600.0, help="give up after this many seconds")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    if args.full:
        args.grids, args.units = 50, 1000
    return args


@contextlib.asynccontextmanager
async def sandbox() -> AsyncIterator[tuple[str, int]]:
    """The sandbox as a subprocess (so its memory and CPU are not the manager's); yields (url, pid)."""
    with tempfile.TemporaryDirectory() as tmp:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "servicegroup", "sandbox", "--listen", "127.0.0.1:0",
            "--kubeconfig", str(Path(tmp) / "kubeconfig"),
            stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert process.stdout is not None
        line = (await process.stdout.readline()).decode()
        if "listening on" not in line:
            raise SystemExit(f"grid_bench: error: sandbox did not start: {line.strip()!r}")
        try:
            yield line.rsplit(" ", 1)[1].strip(), process.pid
        finally:
            process.terminate()
            await process.wait()


def progress(message: str) -> None:
    """Phase messages on stderr, so a long --full run shows where it is."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


async def bounded(calls: Iterable[Callable[[], Awaitable[Any]]], concurrency: int) -> None:
    """Run calls with at most `concurrency` in flight."""
    limit = asyncio.Semaphore(concurrency)

    async def run(call: Callable[[], Awaitable[Any]]) -> None:
        async with limit:
            await call()

    await asyncio.gather(*(run(call) for call in calls))


def writes_by_resource() -> dict[str, float]:
    """Successful and failed write requests so far, from the client's metrics, by verb/resource."""
    counts: dict[str, float] = {}
    for metric in REGISTRY.collect():
        if metric.name != "servicegroup_api_requests":
            continue
        for sample in metric.samples:
            verb = sample.labels.get("verb", "")
            if sample.name.endswith("_total") and verb in ("create", "update", "patch", "delete"):
                key = f"{verb} {sample.labels['resource']}"
                counts[key] = counts.get(key, 0) + sample.value
    return counts


def diff(after: dict[str, float], before: dict[str, float]) -> dict[str, int]:
    return {k: int(v - before.get(k, 0)) for k, v in sorted(after.items()) if v - before.get(k, 0)}


async def seed(client: Client, units: int) -> None:
    for crd in all_crds():
        await client.create(CUSTOMRESOURCEDEFINITIONS, crd)
    for namespace in (NAMESPACE, FLOOR_NAMESPACE):
        body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
        await client.create(NAMESPACES, body)
    nodes = [
        {"apiVersion": "v1", "kind": "Node", "metadata": {"name": f"node-{i}", "labels": {KEY: f"u{i}"}}}
        for i in range(units)
    ]
    await bounded([partial(client.create, NODES, n) for n in nodes], 32)


def grid(index: int) -> dict[str, Any]:
    return {
        "apiVersion": "superedge.io/v1",
        "kind": "DeploymentGrid",
        "metadata": {"name": f"grid-{index}", "namespace": NAMESPACE},
        "spec": {"gridUniqKey": KEY, "template": POD_TEMPLATE},
    }


def converged(manager: Manager, grids: int, units: int) -> bool:
    """Every child cached and every grid's status counting all its units (from the manager's caches)."""
    informers = {inf.res: inf for inf in manager.informers.informers}
    children = sum(1 for key in informers[DEPLOYMENTS].store if key.startswith(f"{NAMESPACE}/"))
    statuses = [(g.get("status") or {}).get("units") for g in informers[DEPLOYMENT_GRIDS].store.list()]
    return children == grids * units and statuses.count(units) == grids


def idle(manager: Manager) -> bool:
    return all(not c.queue.len() and not c.queue.processing for c in manager.controllers)


async def wait_for(predicate: Callable[[], bool], limit: float, what: str) -> None:
    """Poll a cheap in-memory predicate (a benchmark measures; it does not assert timing)."""
    deadline = time.monotonic() + limit
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"grid_bench: error: {what} not reached within {limit}s")
        await asyncio.sleep(0.05)


async def run_manager_phase(url: str, args: argparse.Namespace) -> dict[str, Any]:
    user = Client(url)
    manager_client = Client(url)
    manager = Manager(manager_client, ["grid"], workers=args.workers)
    try:
        progress(f"seeding CRDs and {args.units} nodes")
        await seed(user, args.units)
        await manager.start()
        await manager.informers.wait_synced()
        progress(f"creating {args.grids} grids")
        before = writes_by_resource()
        started = time.perf_counter()
        await bounded([partial(user.create, DEPLOYMENT_GRIDS, grid(i)) for i in range(args.grids)], 16)
        await wait_for(lambda: converged(manager, args.grids, args.units), args.timeout, "convergence")
        elapsed = time.perf_counter() - started
        progress(f"converged in {elapsed:.1f}s; checking a resync")
        await wait_for(lambda: idle(manager), args.timeout, "idle controllers")
        for controller in manager.controllers:
            await manager.recorder(controller.name).flush()
        writes = diff(writes_by_resource(), before)
        resync_writes = await resync(manager)
        rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    finally:
        await manager.stop()
        await manager_client.close()
        await user.close()
    children = args.grids * args.units
    grid_writes = writes.pop(f"create {DEPLOYMENT_GRIDS}", 0)  # the user's, not the controller's
    return {
        "converge_seconds": round(elapsed, 2),
        "children": children,
        "child_creates": writes.get(f"create {DEPLOYMENTS}", 0),
        "controller_writes": sum(writes.values()),
        "controller_writes_by_kind": writes,
        "minimum_writes": children,
        "grids_created_by_user": grid_writes,
        "resync_writes": resync_writes,
        "peak_rss_mib": round(rss_kib / 1024, 1),
    }


async def resync(manager: Manager, kinds: Iterable[GridKind] = KINDS) -> int:
    """Re-offer every cached object and reconcile every grid once more; returns the writes made."""
    writes = manager.client.write_count
    for informer in manager.informers.informers:
        informer.resync()
    for kind in kinds:
        controller = next(c for c in manager.controllers if c.name == kind.controller_name)
        for key in manager.informers.informer(kind.grid).store:
            await controller.process(ObjectKey.parse(key))
    await wait_for(lambda: idle(manager), 600, "idle after resync")
    for controller in manager.controllers:
        await manager.recorder(controller.name).flush()
    return manager.client.write_count - writes


def floor_deployment(grid_index: int, unit: int) -> dict[str, Any]:
    """A Deployment like the controller's child (same template, a nodeSelector), named like it."""
    pod = POD_TEMPLATE["template"]
    spec = {**POD_TEMPLATE, "template": {**pod, "spec": {**pod["spec"], "nodeSelector": {KEY: f"u{unit}"}}}}
    metadata = {"name": f"grid-{grid_index}-u{unit}", "namespace": FLOOR_NAMESPACE}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": metadata, "spec": spec}


async def floor(url: str, args: argparse.Namespace) -> float:
    """The sandbox's time for the same creates from a minimal client at the controller's concurrency."""
    client = Client(url)
    objects = [floor_deployment(g, u) for g in range(args.grids) for u in range(args.units)]
    started = time.perf_counter()
    try:
        calls = [partial(client.create, DEPLOYMENTS, o) for o in objects]
        await bounded(calls, DEFAULT_CONCURRENCY * args.workers)
    finally:
        await client.close()
    return time.perf_counter() - started


def sandbox_rss_mib(pid: int) -> float | None:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    return None


async def main(args: argparse.Namespace) -> dict[str, Any]:
    async with sandbox() as (url, pid):
        result = {"grids": args.grids, "units": args.units, **await run_manager_phase(url, args)}
        progress("measuring the floor")
        result["floor_seconds"] = round(await floor(url, args), 2)
        result["sandbox_peak_rss_mib"] = sandbox_rss_mib(pid)
    result["overhead_vs_floor"] = round(result["converge_seconds"] / max(result["floor_seconds"], 1e-9), 2)
    return result


def report(result: dict[str, Any]) -> str:
    lines = [
        f"{result['grids']} grids x {result['units']} units = {result['children']} children",
        f"converged in {result['converge_seconds']} s (floor: {result['floor_seconds']} s for the same "
        f"creates, x{result['overhead_vs_floor']})",
        f"controller writes: {result['controller_writes']} (minimum {result['minimum_writes']}: one "
        f"create per child; child creates {result['child_creates']})",
        "  by kind: " + ", ".join(f"{k}={v}" for k, v in result["controller_writes_by_kind"].items()),
        f"writes on a converged resync: {result['resync_writes']}",
        f"peak RSS: manager {result['peak_rss_mib']} MiB, sandbox {result['sandbox_peak_rss_mib']} MiB",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    arguments = parse_args()
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    outcome = asyncio.run(main(arguments))
    print(json.dumps(outcome, indent=2) if arguments.json else report(outcome))
    if outcome["resync_writes"] != 0:
        sys.exit(1)
