"""Per-site configuration benchmark: U units, each with its own config, against the sandbox.

One ConfigMapGrid with a base and per-unit data for every unit (`units: {u<i>: {data: ...}}`) and
G DeploymentGrids whose pods mount it and carry an override rule. Measures, with the grid
controllers running in this process under the real Manager:
  * time to converge from nothing (U ConfigMaps + G x U Deployments);
  * time to converge after ONE change of the base data: every ConfigMap rewritten and every
    Deployment's pod template carrying the new config hash (a rollout of every unit);
  * time and writes after a change of ONE unit's data: only that unit's ConfigMap and Deployments;
  * write requests of a resync of the converged cluster (must be 0; exit 1 otherwise).

    .venv/bin/python bench/config_bench.py            # 1,000 units, 1 DeploymentGrid (quick)
    .venv/bin/python bench/config_bench.py --full     # 1,000 units, 5 DeploymentGrids, 5,000 children
    .venv/bin/python bench/config_bench.py --units 200 --json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import time
from functools import partial
from typing import Any

from grid_bench import (
    NAMESPACE,
    bounded,
    diff,
    idle,
    progress,
    resync,
    sandbox,
    sandbox_rss_mib,
    seed,
    wait_for,
    writes_by_resource,
)

from servicegroup.api.labels import CONFIG_HASH
from servicegroup.grid.kinds import ALL_KINDS, CONFIGMAP_GRIDS, DEPLOYMENT_GRIDS
from servicegroup.kube.client import Client
from servicegroup.kube.resources import CONFIGMAPS, DEPLOYMENTS
from servicegroup.manager import Manager

KEY = "bench.servicegroup.io/unit"
CONFIG = "site-config"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--units", type=int, default=1000, help="units = nodes (default 1000)")
    parser.add_argument("--grids", type=int, default=1, help="DeploymentGrids using the config (default 1)")
    parser.add_argument("--full", action="store_true", help="1,000 units x 5 DeploymentGrids")
    parser.add_argument("--workers", type=int, default=2, help="reconcile workers per controller")
    parser.add_argument("--timeout", type=float, default=3600.0, help="give up after this many seconds")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    if args.full:
        args.units, args.grids = 1000, 5
    return args


def config_grid(units: int) -> dict[str, Any]:
    return {
        "apiVersion": "servicegroup.io/v1alpha1",
        "kind": "ConfigMapGrid",
        "metadata": {"name": CONFIG, "namespace": NAMESPACE},
        "spec": {
            "gridUniqKey": KEY,
            "data": {"base": "v1", "site": "((unit))"},
            "units": {f"u{i}": {"data": {"id": str(i)}} for i in range(units)},
        },
    }


def app_grid(index: int) -> dict[str, Any]:
    container = {
        "name": "app",
        "image": "app:1",
        "volumeMounts": [{"name": "cfg", "mountPath": "/etc/app"}],
        "envFrom": [{"configMapRef": {"name": CONFIG}}],
    }
    return {
        "apiVersion": "superedge.io/v1",
        "kind": "DeploymentGrid",
        "metadata": {"name": f"app-{index}", "namespace": NAMESPACE},
        "spec": {
            "gridUniqKey": KEY,
            "template": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": f"app-{index}"}},
                "template": {
                    "metadata": {"labels": {"app": f"app-{index}"}},
                    "spec": {
                        "containers": [container],
                        "volumes": [{"name": "cfg", "configMap": {"name": CONFIG}}],
                    },
                },
            },
            "overrides": [
                {"name": "canary", "unitPattern": "u1*", "containers": [{"name": "app", "image": "app:2"}]}
            ],
        },
    }


def settled(manager: Manager) -> bool:
    """Idle, and no retry or delayed requeue waiting either (e.g. a status write that hit a 409)."""
    return idle(manager) and not any(c.queue.waiting for c in manager.controllers)


class View:
    """Reads of the manager's caches (cheap, in memory)."""

    def __init__(self, manager: Manager) -> None:
        informers = {inf.res: inf for inf in manager.informers.informers}
        self.configmaps = informers[CONFIGMAPS].store
        self.deployments = informers[DEPLOYMENTS].store

    def config_data(self) -> list[dict[str, str]]:
        return [c.get("data") or {} for key, c in self._items(self.configmaps)]

    def hashes(self) -> dict[str, str]:
        """Deployment key -> its pod template's config hash."""
        found = {}
        for key, deployment in self._items(self.deployments):
            pod_meta = deployment["spec"]["template"].get("metadata") or {}
            found[key] = (pod_meta.get("annotations") or {}).get(CONFIG_HASH, "")
        return found

    @staticmethod
    def _items(store: Any) -> list[tuple[str, dict[str, Any]]]:
        return [(key, store.get(key)) for key in store if key.startswith(f"{NAMESPACE}/")]


async def measure(
    manager: Manager, what: str, change: Any, done: Any, limit: float
) -> tuple[float, dict[str, int]]:
    """Make a change, wait until `done()` and idle; seconds to `done` and the controller's writes."""
    progress(what)
    await wait_for(lambda: idle(manager), limit, "idle controllers")
    before = writes_by_resource()
    started = time.perf_counter()
    await change()
    await wait_for(done, limit, what)
    elapsed = time.perf_counter() - started
    await wait_for(lambda: settled(manager), limit, "settled controllers")
    for controller in manager.controllers:
        await manager.recorder(controller.name).flush()
    writes = diff(writes_by_resource(), before)
    for user_write in (f"patch {CONFIGMAP_GRIDS}", f"create {CONFIGMAP_GRIDS}", f"create {DEPLOYMENT_GRIDS}"):
        writes.pop(user_write, None)
    return round(elapsed, 2), writes


async def run(url: str, args: argparse.Namespace) -> dict[str, Any]:
    user, manager_client = Client(url), Client(url)
    manager = Manager(manager_client, ["grid"], workers=args.workers)
    units, grids = args.units, args.grids
    try:
        progress(f"seeding CRDs and {units} nodes")
        await seed(user, units)
        await manager.start()
        await manager.informers.wait_synced()
        view = View(manager)

        async def create() -> None:
            await user.create(CONFIGMAP_GRIDS, config_grid(units))
            await bounded([partial(user.create, DEPLOYMENT_GRIDS, app_grid(i)) for i in range(grids)], 8)

        def created() -> bool:
            hashes = view.hashes()
            return len(view.config_data()) == units and len(hashes) == units * grids and all(hashes.values())

        initial, initial_writes = await measure(manager, "initial convergence", create, created, args.timeout)
        old = view.hashes()

        async def change_base() -> None:
            patch = {"spec": {"data": {"base": "v2"}}}
            await user.patch(CONFIGMAP_GRIDS, CONFIG, patch, namespace=NAMESPACE)

        def base_done() -> bool:
            hashes = view.hashes()
            data_done = all(d.get("base") == "v2" for d in view.config_data())
            return data_done and all(hashes[k] != old[k] for k in old)

        base, base_writes = await measure(
            manager, "one base-data change", change_base, base_done, args.timeout
        )
        old = view.hashes()

        async def change_one() -> None:
            patch = {"spec": {"units": {"u0": {"data": {"id": "zero"}}}}}
            await user.patch(CONFIGMAP_GRIDS, CONFIG, patch, namespace=NAMESPACE)

        def one_done() -> bool:
            hashes = view.hashes()
            return all(
                hashes[f"{NAMESPACE}/app-{i}-u0"] != old[f"{NAMESPACE}/app-{i}-u0"] for i in range(grids)
            )

        one, one_writes = await measure(manager, "one unit's data change", change_one, one_done, args.timeout)
        unchanged = sum(1 for k, v in view.hashes().items() if old[k] == v)
        resync_writes = await resync(manager, ALL_KINDS)
        rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    finally:
        await manager.stop()
        await manager_client.close()
        await user.close()
    return {
        "units": units,
        "grids": grids,
        "children": units * (grids + 1),
        "initial_seconds": initial,
        "initial_writes": initial_writes,
        "base_change_seconds": base,
        "base_change_writes": base_writes,
        "one_unit_seconds": one,
        "one_unit_writes": one_writes,
        "deployments_untouched_by_one_unit_change": unchanged,
        "resync_writes": resync_writes,
        "peak_rss_mib": round(rss_kib / 1024, 1),
    }


async def main(args: argparse.Namespace) -> dict[str, Any]:
    async with sandbox() as (url, pid):
        result = await run(url, args)
        result["sandbox_peak_rss_mib"] = sandbox_rss_mib(pid)
    return result


def report(result: dict[str, Any]) -> str:
    def writes(key: str) -> str:
        return ", ".join(f"{k}={v}" for k, v in result[key].items())

    return "\n".join(
        [
            f"{result['units']} units with per-unit config, {result['grids']} DeploymentGrid(s) using it "
            f"({result['children']} children)",
            f"initial convergence: {result['initial_seconds']} s ({writes('initial_writes')})",
            f"one base-data change -> every unit updated and rolled: {result['base_change_seconds']} s "
            f"({writes('base_change_writes')})",
            f"one unit's data change: {result['one_unit_seconds']} s ({writes('one_unit_writes')}); "
            f"{result['deployments_untouched_by_one_unit_change']} Deployments untouched",
            f"writes on a converged resync: {result['resync_writes']}",
            f"peak RSS: manager {result['peak_rss_mib']} MiB, sandbox {result['sandbox_peak_rss_mib']} MiB",
        ]
    )


if __name__ == "__main__":
    arguments = parse_args()
    outcome = asyncio.run(main(arguments))
    print(json.dumps(outcome, indent=2) if arguments.json else report(outcome))
    if outcome["resync_writes"] != 0:
        sys.exit(1)
