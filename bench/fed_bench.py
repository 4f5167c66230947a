"""Fed benchmark: one fed DeploymentGrid over M member clusters holding U units each.

Every cluster is an in-process sandbox (no pod simulation: the benchmark measures distribution,
not kubelets); the control cluster runs the `fed` controller and every member the `grid`
controller, each under the real Manager, all on this one event loop. Measured:
  * time from creating the grid until every member has its copy and all U Deployments;
  * time from a template change on the control grid until every member's copy is current (the
    fed controller's part) and until every member's U Deployments run it (plus the members'
    grid controllers);
  * writes by the fed controller (control + members) for the change, against the minimum
    (one copy update per member, one control status write);
  * writes of a resync of the converged federation (must be 0).

    .venv/bin/python bench/fed_bench.py              # 4 members x 10 units (a few seconds)
    .venv/bin/python bench/fed_bench.py --full       # 20 members x 50 units = 1,000 Deployments
    .venv/bin/python bench/fed_bench.py --members 8 --units 25 --json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from servicegroup.fed.controller import GridRef
from servicegroup.fed.demo import Fleet, fleet, node
from servicegroup.grid.kinds import DEPLOYMENT_GRIDS
from servicegroup.kube.resources import DEPLOYMENTS

KEY = "zone"
NAME = "bench"
IMAGES = ("superedge/echoserver:2.2", "superedge/echoserver:2.3")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--members", type=int, default=4, help="member clusters (default 4)")
    parser.add_argument("--units", type=int, default=10, help="units (one node each) per member (default 10)")
    parser.add_argument("--full", action="store_true", help="20 members x 50 units")
    parser.add_argument("--timeout", type=float, default=600.0, help="give up after this many seconds")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    if args.full:
        args.members, args.units = 20, 50
    return args


def member_nodes(members: int, units: int) -> dict[str, list[dict[str, Any]]]:
    """Member m holds units m<m>-u<u>, one node each."""
    return {
        f"member-{m}": [node(f"m{m}-n{u}", **{KEY: f"m{m}-u{u}"}) for u in range(units)]
        for m in range(members)
    }


def grid(image: str) -> dict[str, Any]:
    template = {
        "replicas": 1,
        "selector": {"matchLabels": {"app": "echo"}},
        "template": {
            "metadata": {"labels": {"app": "echo"}},
            "spec": {"containers": [{"name": "echo", "image": image}]},
        },
    }
    return {
        "apiVersion": "superedge.io/v1",
        "kind": "DeploymentGrid",
        "metadata": {"name": NAME, "namespace": "default", "labels": {"superedge.io/fed": "yes"}},
        "spec": {"gridUniqKey": KEY, "template": template},
    }


def copies_current(started: Fleet, image: str) -> bool:
    """Every member's grid cache holds the copy with `image` (the fed controller's part is done)."""
    for cluster in started.members.values():
        copy = cluster.manager.informers.informer(DEPLOYMENT_GRIDS).store.get(f"default/{NAME}")
        if copy is None or copy["spec"]["template"]["template"]["spec"]["containers"][0]["image"] != image:
            return False
    return True


def members_run(started: Fleet, image: str, units: int) -> bool:
    """Every member's Deployment cache holds its U Deployments, all with `image`."""
    for cluster in started.members.values():
        deployments = cluster.manager.informers.informer(DEPLOYMENTS).store.list()
        images = [d["spec"]["template"]["spec"]["containers"][0]["image"] for d in deployments]
        if len(images) != units or any(i != image for i in images):
            return False
    return True


async def wait_for(predicate: Callable[[], bool], limit: float, what: str) -> float:
    started = time.perf_counter()
    while not predicate():
        if time.perf_counter() - started > limit:
            raise SystemExit(f"fed_bench: {what} not reached within {limit}s")
        await asyncio.sleep(0.01)
    return time.perf_counter() - started


def fed_writes(started: Fleet) -> int:
    """Writes by the fed controller: its control client (shared with the control manager) and
    its member clients."""
    members = sum(cluster.client.write_count for cluster in started.fed.members.values())
    return int(started.control.manager.client.write_count) + members


async def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="fed-bench-") as directory:
        async with fleet(Path(directory), member_nodes(args.members, args.units), simulate=False) as started:
            await wait_for(
                lambda: len(started.fed.members) == args.members, args.timeout, "members connected"
            )
            await wait_for(
                lambda: all(c.available for c in started.fed.members.values()), args.timeout, "members synced"
            )
            client = started.control.client
            created = time.perf_counter()
            await client.create(DEPLOYMENT_GRIDS, grid(IMAGES[0]))
            await wait_for(lambda: members_run(started, IMAGES[0], args.units), args.timeout, "distribution")
            initial = time.perf_counter() - created
            await asyncio.sleep(1.0)  # let status echoes settle before counting the change's writes
            before = fed_writes(started)
            changed = time.perf_counter()
            patch = {
                "spec": {
                    "template": {"template": {"spec": {"containers": [{"name": "echo", "image": IMAGES[1]}]}}}
                }
            }
            await client.patch(DEPLOYMENT_GRIDS, NAME, patch, namespace="default")
            await wait_for(lambda: copies_current(started, IMAGES[1]), args.timeout, "copies")
            copies = time.perf_counter() - changed
            await wait_for(lambda: members_run(started, IMAGES[1], args.units), args.timeout, "change")
            change = time.perf_counter() - changed
            await asyncio.sleep(1.0)
            change_writes = fed_writes(started) - before
            before = fed_writes(started)
            await started.fed.reconcile(GridRef("DeploymentGrid", "default", NAME))
            resync_writes = fed_writes(started) - before
    return {
        "members": args.members,
        "units_per_member": args.units,
        "deployments": args.members * args.units,
        "initial_distribution_s": round(initial, 3),
        "change_to_all_copies_s": round(copies, 3),
        "change_to_all_members_s": round(change, 3),
        "fed_writes_for_change": change_writes,
        "fed_writes_minimum": args.members + 1,
        "resync_writes": resync_writes,
    }


def report(result: dict[str, Any]) -> str:
    return "\n".join(
        [
            f"{result['members']} members x {result['units_per_member']} units "
            f"= {result['deployments']} Deployments",
            f"create -> every member runs its units: {result['initial_distribution_s']:.2f} s",
            f"template change -> every member's copy current: {result['change_to_all_copies_s']:.2f} s",
            f"template change -> every member's Deployments: {result['change_to_all_members_s']:.2f} s",
            f"fed writes for the change: {result['fed_writes_for_change']} "
            f"(minimum {result['fed_writes_minimum']}: one copy update per member + one status)",
            f"writes of a converged resync: {result['resync_writes']}",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    result = asyncio.run(run(args))
    print(json.dumps(result) if args.json else report(result))
    return 0 if result["resync_writes"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
