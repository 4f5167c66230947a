"""Benchmark of the per-node DNS daemon (`servicegroup dns`) at scale.

    .venv/bin/python bench/dns_bench.py            # quick: 1,000 StatefulSet pods (100 units x 10)
    .venv/bin/python bench/dns_bench.py --full     # 10,000 StatefulSet pods (1,000 units x 10)

Three processes: the sandbox API server, the real `servicegroup dns` daemon for node-0 (unit-0),
and this script, which creates what the grid controller, the StatefulSet controller and the
kubelet would (grid, one StatefulSet per unit, pods with IPs; helpers of tests/dns/dns_support.py),
then changes one local pod's IP at a time and times how long until the hosts file holds it.

Reported: time to create the cluster, the daemon's time from start to its first complete file,
the pod-change-to-new-file latency (p50 / p95 / max; includes the --debounce window, default
0.1 s), and the daemon's peak RSS (VmHWM) with every StatefulSet pod of the cluster in its cache.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "dns"))

from dns_support import GRID, create_grid_world, create_pod, set_pod_ip

from servicegroup.kube.client import Client


@dataclass(frozen=True)
class Size:
    units: int
    pods_per_unit: int
    changes: int


QUICK = Size(units=100, pods_per_unit=10, changes=20)
FULL = Size(units=1_000, pods_per_unit=10, changes=50)
CONCURRENCY = 32


def _holds(path: Path, text: str) -> bool:
    """Does the file exist and contain `text`? (A small local read; blocking it is cheaper than a thread.)"""
    try:
        return text in path.read_text()
    except FileNotFoundError:
        return False


async def wait_for_file(path: Path, seconds: float = 60.0) -> None:
    """Wait for a file another process writes (polling is fine in a benchmark, not in a test)."""
    deadline = time.monotonic() + seconds
    while not _holds(path, ""):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} not written")
        await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def process(*args: str) -> AsyncIterator[asyncio.subprocess.Process]:
    """A `servicegroup` sub-process, stopped with SIGTERM on exit."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "servicegroup", *args, stdout=asyncio.subprocess.DEVNULL
    )
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 20)
            except TimeoutError:
                proc.kill()
                await proc.wait()


async def populate(client: Client, size: Size) -> None:
    """Nodes node-<i> in unit-<i>, the grid, a StatefulSet per unit, its pods with IPs."""
    units = [f"unit-{i}" for i in range(size.units)]
    world = await create_grid_world(
        client, {f"node-{i}": unit for i, unit in enumerate(units)}, units, replicas=size.pods_per_unit
    )
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(unit_index: int, ordinal: int) -> None:
        async with gate:
            ip = f"10.{unit_index // 250}.{unit_index % 250}.{ordinal + 10}"
            await create_pod(client, world.sets[units[unit_index]], ordinal, ip)

    await asyncio.gather(*(one(u, o) for u in range(size.units) for o in range(size.pods_per_unit)))


def peak_rss_mib(pid: int) -> float:
    """VmHWM (peak resident set) of a process, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")


async def measure_changes(client: Client, hosts: Path, size: Size) -> list[float]:
    """Latency of each local pod IP change until the file holds the new line."""
    latencies = []
    for change in range(size.changes):
        ordinal = change % size.pods_per_unit
        ip = f"10.255.{change // 200}.{change % 200 + 1}"
        line = f"{ip} {GRID}-{ordinal}."
        start = time.monotonic()
        await set_pod_ip(client, f"{GRID}-unit-0-{ordinal}", ip)
        while not _holds(hosts, line):
            if time.monotonic() - start > 30:
                raise TimeoutError(f"change {change} not written")
            await asyncio.sleep(0.001)
        latencies.append(time.monotonic() - start)
    return latencies


async def main(size: Size, debounce: float) -> None:
    with tempfile.TemporaryDirectory(prefix="dns-bench-") as tmp:
        kubeconfig, hosts = Path(tmp) / "kubeconfig", Path(tmp) / "hosts"
        async with process("sandbox", "--listen", "127.0.0.1:0", "--kubeconfig", str(kubeconfig)):
            await wait_for_file(kubeconfig)
            client = await Client.from_kubeconfig(str(kubeconfig))
            async with client:
                started = time.monotonic()
                await populate(client, size)
                pods = size.units * size.pods_per_unit
                elapsed = time.monotonic() - started
                print(f"cluster: {size.units} units, {pods} StatefulSet pods, created in {elapsed:.1f}s")
                started = time.monotonic()
                args = [
                    "dns",
                    "--kubeconfig",
                    str(kubeconfig),
                    "--node",
                    "node-0",
                    "--hosts-file",
                    str(hosts),
                ]
                async with process(*args, "--debounce", str(debounce), "--log-level", "warning") as daemon:
                    await wait_for_file(hosts, 120)
                    print(f"daemon: first complete file {time.monotonic() - started:.2f}s after start")
                    latencies = await measure_changes(client, hosts, size)
                    p50, p95 = statistics.median(latencies), statistics.quantiles(latencies, n=20)[18]
                    print(
                        f"pod change -> new file ({len(latencies)} changes, debounce {debounce}s): "
                        f"p50 {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, "
                        f"max {max(latencies) * 1000:.0f} ms"
                    )
                    print(f"daemon peak RSS: {peak_rss_mib(daemon.pid):.0f} MiB ({pods} pods cached)")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--full", action="store_true", help="10,000 pods instead of 1,000")
    parser.add_argument("--debounce", type=float, default=0.1, help="the daemon's --debounce (default 0.1)")
    return parser.parse_args()


if __name__ == "__main__":
    options = parse_args()
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    asyncio.run(main(FULL if options.full else QUICK, options.debounce))
