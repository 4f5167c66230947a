"""Benchmark of the topology proxy against the floor of relaying the same bytes unparsed.

    .venv/bin/python bench/traffic_bench.py            # quick: 1,000 Services, 5,000 endpoints, 100 units
    .venv/bin/python bench/traffic_bench.py --full     # 10,000 Services, 50,000 endpoints, 1,000 units

Three processes: a minimal in-memory upstream API server (pre-encoded lists, watch fan-out, an
/emit control to change slices at a steady rate or in a burst), and in turn (1) a dumb relay that
streams bytes from upstream to the client without parsing them (the floor), then (2) the real
`servicegroup proxy` for node-0. Every changed slice carries the send time (monotonic clock,
shared by processes on one host) in an annotation, so the client measures end-to-end latency.

Reported for each path: initial list time of EndpointSlices + Services, watch latency p50/p99 at a
steady event rate, events per second for a burst, and the peak RSS of the relaying process (plus
the proxy's time to its first synced view).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiohttp import web

Obj = dict[str, Any]
SLICES = "/apis/discovery.k8s.io/v1/endpointslices"
SERVICES = "/api/v1/services"
SENT = "bench.servicegroup.io/sent-ns"


@dataclass(frozen=True)
class Size:
    services: int
    endpoints_per_service: int
    units: int
    nodes_per_unit: int
    rate: int
    seconds: float
    burst: int


QUICK = Size(
    services=1_000, endpoints_per_service=5, units=100, nodes_per_unit=2, rate=100, seconds=5, burst=2_000
)
FULL = Size(
    services=10_000,
    endpoints_per_service=5,
    units=1_000,
    nodes_per_unit=2,
    rate=500,
    seconds=10,
    burst=20_000,
)


# -- the upstream API server ----------------------------------------------------------------------


def cluster(size: Size, seed: int = 1) -> dict[str, dict[str, Obj]]:
    """Nodes, namespaces, Services with topologyKeys, one EndpointSlice and one Endpoints each."""
    rng = random.Random(seed)
    nodes = [
        f"node-{u * size.nodes_per_unit + n}" for u in range(size.units) for n in range(size.nodes_per_unit)
    ]
    data: dict[str, dict[str, Obj]] = {
        "nodes": {
            name: {
                "metadata": {
                    "name": name,
                    "resourceVersion": "1",
                    "labels": {"location": f"unit-{i // size.nodes_per_unit}"},
                }
            }
            for i, name in enumerate(nodes)
        },
        "namespaces": {"default": {"metadata": {"name": "default", "resourceVersion": "1"}}},
        "services": {},
        "endpointslices": {},
        "endpoints": {},
    }
    for i in range(size.services):
        name = f"svc-{i}"
        on = [rng.choice(nodes) for _ in range(size.endpoints_per_service)]
        ips = [f"10.{i // 256 % 256}.{i % 256}.{k}" for k in range(len(on))]
        data["services"][f"default/{name}"] = {
            "metadata": {
                "name": name,
                "namespace": "default",
                "resourceVersion": "1",
                "annotations": {"topologyKeys": '["location"]'},
            },
            "spec": {
                "clusterIP": f"10.96.{i // 256 % 256}.{i % 256}",
                "ports": [{"port": 80, "protocol": "TCP"}],
            },
        }
        data["endpointslices"][f"default/{name}-x1"] = {
            "metadata": {
                "name": f"{name}-x1",
                "namespace": "default",
                "resourceVersion": "1",
                "labels": {"kubernetes.io/service-name": name},
            },
            "addressType": "IPv4",
            "endpoints": [
                {"addresses": [ip], "nodeName": n, "conditions": {"ready": True}}
                for ip, n in zip(ips, on, strict=True)
            ],
            "ports": [{"port": 8080, "protocol": "TCP"}],
        }
        data["endpoints"][f"default/{name}"] = {
            "metadata": {"name": name, "namespace": "default", "resourceVersion": "1"},
            "subsets": [
                {
                    "addresses": [{"ip": ip, "nodeName": n} for ip, n in zip(ips, on, strict=True)],
                    "ports": [{"port": 8080}],
                }
            ],
        }
    return data


KINDS = {
    "nodes": ("NodeList", "v1"),
    "namespaces": ("NamespaceList", "v1"),
    "services": ("ServiceList", "v1"),
    "endpoints": ("EndpointsList", "v1"),
    "endpointslices": ("EndpointSliceList", "discovery.k8s.io/v1"),
}


class Upstream:
    """List (pre-encoded), watch from now, and /emit to change slices."""

    def __init__(self, size: Size) -> None:
        self.data = cluster(size)
        self.rv = 1
        self.encoded: dict[str, bytes] = {}
        self.watchers: dict[str, set[asyncio.Queue[bytes]]] = {plural: set() for plural in KINDS}

    def body(self, plural: str) -> bytes:
        if plural not in self.encoded:
            kind, api_version = KINDS[plural]
            items = list(self.data[plural].values())
            self.encoded[plural] = orjson.dumps(
                {
                    "kind": kind,
                    "apiVersion": api_version,
                    "metadata": {"resourceVersion": str(self.rv)},
                    "items": items,
                }
            )
        return self.encoded[plural]

    async def handle(self, request: web.Request) -> web.StreamResponse:
        plural = request.path.rstrip("/").rsplit("/", 1)[-1]
        if request.path == "/emit":
            asyncio.get_running_loop().create_task(
                self.emit(int(request.query["count"]), float(request.query["rate"]))
            )
            return web.Response(text="ok")
        if plural not in KINDS:
            return web.Response(status=404)
        if request.query.get("watch") not in ("true", "1"):
            return web.Response(body=self.body(plural), content_type="application/json")
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        queue: asyncio.Queue[bytes] = asyncio.Queue()
        self.watchers[plural].add(queue)
        try:
            while True:
                line = await queue.get()
                await response.write(line)
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self.watchers[plural].discard(queue)
        return response

    async def emit(self, count: int, rate: float) -> None:
        """Change `count` slices at `rate`/s (0 = as fast as possible), stamping the send time."""
        keys = list(self.data["endpointslices"])
        start = time.monotonic()
        for i in range(count):
            if rate:
                delay = start + i / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            elif i % 200 == 0:
                await asyncio.sleep(0)
            key = keys[i % len(keys)]
            self.rv += 1
            old = self.data["endpointslices"][key]
            meta = {
                **old["metadata"],
                "resourceVersion": str(self.rv),
                "annotations": {SENT: str(time.monotonic_ns())},
            }
            new = {**old, "metadata": meta}
            self.data["endpointslices"][key] = new
            self.encoded.pop("endpointslices", None)
            line = orjson.dumps({"type": "MODIFIED", "object": new}) + b"\n"
            for queue in self.watchers["endpointslices"]:
                queue.put_nowait(line)


class Relay:
    """The floor: forward the request and stream the response bytes back untouched."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.session: aiohttp.ClientSession | None = None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if self.session is None:
            self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None))
        async with self.session.get(self.upstream + request.path_qs) as upstream:
            response = web.StreamResponse(
                status=upstream.status, headers={"Content-Type": upstream.content_type}
            )
            await response.prepare(request)
            async for chunk in upstream.content.iter_any():
                await response.write(chunk)
        return response


async def serve(role: str, port: int, size: Size, upstream: str) -> None:
    handler = Upstream(size).handle if role == "upstream" else Relay(upstream).handle
    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    await asyncio.Event().wait()


# -- the measuring client -------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def spawn(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, *args, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )


async def wait_http(url: str, within: float = 600) -> float:
    """Seconds until `url` answers 200."""
    start = time.monotonic()
    async with aiohttp.ClientSession() as session:
        while time.monotonic() - start < within:
            try:
                async with session.get(url) as resp:
                    if resp.status == 200:
                        return time.monotonic() - start
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    raise TimeoutError(f"{url} not ready within {within}s")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def list_seconds(url: str) -> float:
    start = time.monotonic()
    async with aiohttp.ClientSession() as session:
        for path in (SLICES, SERVICES):
            async with session.get(url + path) as resp:
                orjson.loads(await resp.read())
    return time.monotonic() - start


async def watch_events(session: aiohttp.ClientSession, url: str) -> AsyncIterator[int]:
    """Latency (ns) of every slice event carrying a send stamp."""
    async with session.get(url + SLICES, params={"watch": "true"}) as resp:
        async for line in resp.content:
            event = orjson.loads(line)
            sent = ((event["object"].get("metadata") or {}).get("annotations") or {}).get(SENT)
            if event["type"] == "MODIFIED" and sent:
                yield time.monotonic_ns() - int(sent)


async def measure_watch(url: str, upstream: str, count: int, rate: float) -> tuple[list[int], float]:
    """Latencies of `count` events emitted at `rate` (0 = burst) and the receive rate."""
    latencies: list[int] = []
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None)) as session:
        stream = watch_events(session, url)
        first = asyncio.ensure_future(anext(stream))
        await asyncio.sleep(0.5)  # the watch is open before events are emitted (not a test sync)
        start = time.monotonic()
        async with session.get(f"{upstream}/emit", params={"count": str(count), "rate": str(rate)}):
            pass
        latencies.append(await first)
        async with asyncio.timeout(120 + count / 100):
            while len(latencies) < count:
                latencies.append(await anext(stream))
        elapsed = time.monotonic() - start
        await stream.aclose()
    return latencies, count / elapsed


@dataclass
class Result:
    list_s: float
    p50_ms: float
    p99_ms: float
    events_per_s: float
    rss_mb: float
    ready_s: float | None = None


async def measure(url: str, upstream: str, size: Size, pid: int) -> Result:
    list_s = min([await list_seconds(url) for _ in range(3)])
    steady, _ = await measure_watch(url, upstream, int(size.rate * size.seconds), size.rate)
    _, burst_rate = await measure_watch(url, upstream, size.burst, 0)
    quantiles = statistics.quantiles(steady, n=100)
    return Result(list_s, quantiles[49] / 1e6, quantiles[98] / 1e6, burst_rate, peak_rss_mb(pid))


async def stop(process: asyncio.subprocess.Process) -> None:
    process.terminate()
    await process.wait()


async def run(size: Size, me: str) -> None:
    up_port, relay_port, proxy_port = free_port(), free_port(), free_port()
    upstream = f"http://127.0.0.1:{up_port}"
    full = "--full" if size is FULL else "--quick"
    up = await spawn(me, "--role", "upstream", "--port", str(up_port), full)
    try:
        await wait_http(upstream + "/api/v1/namespaces")
        relay = await spawn(me, "--role", "relay", "--port", str(relay_port), "--upstream", upstream, full)
        await wait_http(f"http://127.0.0.1:{relay_port}/api/v1/namespaces")
        floor = await measure(f"http://127.0.0.1:{relay_port}", upstream, size, relay.pid or 0)
        await stop(relay)
        with tempfile.TemporaryDirectory() as tmp:
            kubeconfig = Path(tmp) / "kubeconfig"
            kubeconfig.write_text(
                orjson.dumps(
                    {
                        "apiVersion": "v1",
                        "kind": "Config",
                        "clusters": [{"name": "b", "cluster": {"server": upstream}}],
                        "users": [{"name": "b", "user": {"token": "bench"}}],
                        "contexts": [{"name": "b", "context": {"cluster": "b", "user": "b"}}],
                        "current-context": "b",
                    }
                ).decode()
            )
            args = ["-m", "servicegroup", "proxy", "--kubeconfig", str(kubeconfig), "--node", "node-0"]
            proxy = await spawn(*args, "--listen", f"127.0.0.1:{proxy_port}", "--log-level", "warning")
            proxy_url = f"http://127.0.0.1:{proxy_port}"
            ready = await wait_http(proxy_url + SLICES + "?limit=1")
            ours = await measure(proxy_url, upstream, size, proxy.pid or 0)
            ours.ready_s = ready
            await stop(proxy)
    finally:
        await stop(up)
    report(size, floor, ours)


def report(size: Size, floor: Result, ours: Result) -> None:
    endpoints = size.services * size.endpoints_per_service
    print(f"topology proxy benchmark: {size.services} Services, {endpoints} endpoints, {size.units} units")
    print("(the view of node-0; floor = the same upstream bytes relayed unparsed)")
    print(f"{'metric':<38}{'proxy':>12}{'floor (relay)':>16}")
    rows = [
        ("initial list slices+services (s)", ours.list_s, floor.list_s),
        (f"watch latency p50 at {size.rate}/s (ms)", ours.p50_ms, floor.p50_ms),
        (f"watch latency p99 at {size.rate}/s (ms)", ours.p99_ms, floor.p99_ms),
        (f"events per second (burst {size.burst})", ours.events_per_s, floor.events_per_s),
        ("peak RSS (MiB)", ours.rss_mb, floor.rss_mb),
    ]
    for name, mine, base in rows:
        print(f"{name:<38}{mine:>12.2f}{base:>16.2f}")
    print(f"{'proxy start to first synced view (s)':<38}{ours.ready_s or 0:>12.2f}{'-':>16}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--full", action="store_true", help="10,000 Services / 50,000 endpoints / 1,000 units")
    group.add_argument("--quick", action="store_true", help="the default: a tenth of --full")
    parser.add_argument("--role", choices=["upstream", "relay"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--upstream", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    size = FULL if args.full else QUICK
    if args.role:
        asyncio.run(serve(args.role, args.port, size, args.upstream))
    else:
        os.environ.setdefault("PYTHONUNBUFFERED", "1")
        asyncio.run(run(size, str(Path(__file__).resolve())))


if __name__ == "__main__":
    main()
