"""Benchmark of the site manager's bulk node labelling.

    .venv/bin/python bench/site_bench.py           # quick: 1,000 nodes in 100 NodeUnits (~10 s)
    .venv/bin/python bench/site_bench.py --full    # 5,000 nodes in 500 NodeUnits (~1 min)

The sandbox API server runs in its own process (`servicegroup sandbox`), so the peak RSS reported
is the manager's process alone (plus this script's polling). Half the units list their nodes by
name, half select them by label; each unit sets one label, every tenth one also a taint, and one
NodeGroup `location` holds every unit, so each node ends with four labels, an ownership annotation
and maybe a taint. Reported: time from manager start until every node carries its `location`
label, API writes, peak RSS, a converged resync (its duration and writes: must be 0), and the
time to relabel every node after every unit's `setNode` label changed.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sandbox_bench import start_server

from servicegroup.api.crds import all_crds
from servicegroup.kube.client import Client
from servicegroup.kube.resources import CUSTOMRESOURCEDEFINITIONS, NODES
from servicegroup.manager import Manager
from servicegroup.site.controller import NODEGROUPS, NODEUNITS

Obj = dict[str, Any]
TAINT = {"key": "bench.servicegroup.io/dedicated", "value": "site", "effect": "NoSchedule"}


@dataclass(frozen=True)
class Size:
    nodes: int
    units: int


QUICK = Size(nodes=1_000, units=100)
FULL = Size(nodes=5_000, units=500)


def rss_mib() -> float:
    """Peak resident set size of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def unit_of(i: int, size: Size) -> int:
    return i % size.units


def node_obj(i: int, size: Size) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": f"node-{i}", "labels": {"bench/site": f"s-{unit_of(i, size)}"}},
    }


def unit_obj(u: int, size: Size) -> Obj:
    spec: Obj = {"type": "edge", "setNode": {"labels": {"tier": f"tier-{u}"}}}
    if u % 2:
        spec["selector"] = {"matchLabels": {"bench/site": f"s-{u}"}}
    else:
        spec["nodes"] = [f"node-{i}" for i in range(u, size.nodes, size.units)]
    if u % 10 == 0:
        spec["setNode"]["taints"] = [TAINT]
    return {
        "apiVersion": "site.superedge.io/v1alpha2",
        "kind": "NodeUnit",
        "metadata": {"name": f"u-{u}"},
        "spec": spec,
    }


async def create_all(client: Client, res: Any, objs: list[Obj], parallel: int = 32) -> None:
    """Create objects with a bounded number of requests in flight."""
    gate = asyncio.Semaphore(parallel)

    async def one(obj: Obj) -> None:
        async with gate:
            await client.create(res, obj)

    await asyncio.gather(*(one(obj) for obj in objs))


async def labelled(client: Client, size: Size, key: str, value: str) -> int:
    """How many nodes carry label `key` = `value` formatted with their unit number."""
    items = (await client.list(NODES))["items"]
    return sum(
        1
        for node in items
        if (node["metadata"].get("labels") or {}).get(key)
        == value.format(unit_of(int(node["metadata"]["name"].split("-")[1]), size))
    )


async def wait_labelled(client: Client, size: Size, key: str, value: str) -> None:
    """Poll (a benchmark, not a test) until every node carries its label."""
    while await labelled(client, size, key, value) < size.nodes:  # noqa: ASYNC110
        await asyncio.sleep(0.5)


async def idle(manager: Manager) -> None:
    """Poll (a benchmark, not a test) until every site queue is empty and idle."""
    while any(len(c.queue) or c.queue.waiting or c.queue.processing for c in manager.controllers):  # noqa: ASYNC110
        await asyncio.sleep(0.05)


async def bench(url: str, size: Size) -> None:
    client = Client(url)
    for crd in all_crds():
        await client.create(CUSTOMRESOURCEDEFINITIONS, crd)
    started = time.perf_counter()
    await create_all(client, NODES, [node_obj(i, size) for i in range(size.nodes)])
    await create_all(client, NODEUNITS, [unit_obj(u, size) for u in range(size.units)])
    await client.create(
        NODEGROUPS,
        {
            "apiVersion": "site.superedge.io/v1alpha2",
            "kind": "NodeGroup",
            "metadata": {"name": "location"},
            "spec": {"selector": {}},
        },
    )
    print(f"setup: {size.nodes} nodes, {size.units} units in {time.perf_counter() - started:.1f}s")
    baseline = rss_mib()
    manager = Manager(Client(url), ["site"])
    started = time.perf_counter()
    await manager.start()
    await wait_labelled(client, size, "location", "u-{}")
    elapsed = time.perf_counter() - started
    print(
        f"labelled {size.nodes} nodes in {elapsed:.1f}s ({size.nodes / elapsed:.0f} nodes/s), "
        f"{manager.client.write_count} writes"
    )
    await idle(manager)
    await manager.recorder("servicegroup-site").flush()
    writes = manager.client.write_count
    started = time.perf_counter()
    for informer in manager.informers.informers:
        informer.resync()
    await idle(manager)
    resync_writes = manager.client.write_count - writes
    print(f"converged resync: {time.perf_counter() - started:.2f}s, {resync_writes} writes")
    started = time.perf_counter()
    for u in range(size.units):
        await client.patch(NODEUNITS, f"u-{u}", {"spec": {"setNode": {"labels": {"tier": f"v2-{u}"}}}})
    await wait_labelled(client, size, "tier", "v2-{}")
    print(f"relabel after every unit's setNode changed: {time.perf_counter() - started:.1f}s")
    print(f"peak RSS: {rss_mib():.0f} MiB (before the manager: {baseline:.0f} MiB)")
    await manager.stop()
    await manager.client.close()
    await client.close()


async def run(size: Size) -> None:
    """The sandbox in a child process (so RSS is ours alone), then the benchmark."""
    with tempfile.TemporaryDirectory() as tmp:
        server, url = await start_server(Path(tmp))
        try:
            await bench(url, size)
        finally:
            server.terminate()
            await server.wait()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--full", action="store_true", help="5,000 nodes in 500 units")
    args = parser.parse_args()
    asyncio.run(run(FULL if args.full else QUICK))
    return 0


if __name__ == "__main__":
    sys.exit(main())
