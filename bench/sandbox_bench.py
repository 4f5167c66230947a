"""Sandbox API server benchmark: creates, list latency with 10k objects, watch fan-out, apply.

Runs the server as `servicegroup sandbox` in its own process (as users do) and drives it over HTTP:

    python bench/sandbox_bench.py [--objects 10000] [--watchers 50] [--events 200] [--applies 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import orjson

CMS = "/api/v1/namespaces/default/configmaps"
CONCURRENCY = 32
DEPLOYS = "/apis/apps/v1/namespaces/default/deployments"
JSON_HEADERS = {"Content-Type": "application/json"}
APPLY_HEADERS = {"Content-Type": "application/apply-patch+yaml"}


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (0..1) of `values` by nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


async def start_server(tmp: Path) -> tuple[asyncio.subprocess.Process, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "servicegroup",
        "sandbox",
        "--listen",
        "127.0.0.1:0",
        "--kubeconfig",
        str(tmp / "kubeconfig"),
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
    return proc, line.split()[-1]


async def timed_pool(count: int, job: Callable[[int], Awaitable[None]]) -> float:
    """Run `job(0..count-1)` on CONCURRENCY clients; the seconds it took."""
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(count):
        queue.put_nowait(i)

    async def worker() -> None:
        while not queue.empty():
            await job(queue.get_nowait())

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return time.perf_counter() - start


async def bench_creates(session: aiohttp.ClientSession, url: str, count: int) -> None:
    async def create(i: int) -> None:
        meta = {"name": f"cm-{i:05d}", "labels": {"shard": str(i % 10)}}
        body = {"metadata": meta, "data": {"i": str(i)}}
        async with session.post(url + CMS, data=orjson.dumps(body), headers=JSON_HEADERS) as r:
            assert r.status == 201, await r.text()
            await r.read()

    elapsed = await timed_pool(count, create)
    rate = count / elapsed
    print(f"creates: {count} in {elapsed:.2f}s = {rate:.0f} creates/s ({CONCURRENCY} concurrent clients)")


async def bench_applies(session: aiohttp.ClientSession, url: str, count: int) -> None:
    """Server-side apply of `count` Deployments: the create, then an update with one field changed."""

    def deployment(i: int, image: str) -> bytes:
        labels = {"app": f"a{i}"}
        container = {"name": "c", "image": image, "ports": [{"containerPort": 80}]}
        spec = {
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}},
        }
        return orjson.dumps(
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": f"d-{i:05d}", "labels": labels},
                "spec": spec,
            }
        )

    async def round_(image: str) -> float:
        async def apply(i: int) -> None:
            path = f"{DEPLOYS}/d-{i:05d}?fieldManager=bench"
            async with session.patch(url + path, data=deployment(i, image), headers=APPLY_HEADERS) as r:
                assert r.status in (200, 201), await r.text()
                await r.read()

        return count / await timed_pool(count, apply)

    created, updated = await round_("nginx:1"), await round_("nginx:2")
    print(f"server-side apply: {count} Deployments, create {created:.0f}/s, update {updated:.0f}/s")


async def bench_lists(session: aiohttp.ClientSession, url: str, count: int) -> None:
    cases = {
        f"full list ({count} objects)": {},
        "page of 500 (limit)": {"limit": "500"},
        f"label selector (~{count // 10} objects)": {"labelSelector": "shard=3"},
    }
    for label, params in cases.items():
        samples = []
        for _ in range(5):
            start = time.perf_counter()
            async with session.get(url + CMS, params=params) as r:
                body = orjson.loads(await r.read())
            samples.append(time.perf_counter() - start)
        items = len(body["items"])
        print(f"list, {label}: {items} items, median {statistics.median(samples) * 1000:.1f} ms")


async def bench_watch(session: aiohttp.ClientSession, url: str, watchers: int, events: int) -> None:
    async with session.get(url + CMS, params={"limit": "1"}) as r:
        rv = (await r.json())["metadata"]["resourceVersion"]
    latencies: list[float] = []
    ready = asyncio.Event()
    connected = 0

    async def watch() -> None:
        nonlocal connected
        params = {"watch": "1", "resourceVersion": rv, "labelSelector": "bench=watch"}
        async with session.get(url + CMS, params=params) as resp:
            connected += 1
            if connected == watchers:
                ready.set()
            seen = 0
            async for line in resp.content:
                if not line.strip():
                    continue
                event = orjson.loads(line)
                sent = float(event["object"]["data"]["sent"])
                latencies.append(time.perf_counter() - sent)
                seen += 1
                if seen == events:
                    return

    tasks = [asyncio.create_task(watch()) for _ in range(watchers)]
    await asyncio.wait_for(ready.wait(), 60)
    for i in range(events):
        meta = {"name": f"w-{i}", "labels": {"bench": "watch"}}
        body = {"metadata": meta, "data": {"sent": repr(time.perf_counter())}}
        async with session.post(url + CMS, data=orjson.dumps(body), headers=JSON_HEADERS) as r:
            assert r.status == 201
    await asyncio.wait_for(asyncio.gather(*tasks), 120)
    p50, p99 = (percentile(latencies, q) * 1000 for q in (0.5, 0.99))
    print(
        f"watch fan-out: {watchers} watchers x {events} events = {len(latencies)} deliveries, "
        f"latency p50 {p50:.1f} ms, p99 {p99:.1f} ms"
    )


async def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--objects", type=int, default=10_000)
    parser.add_argument("--watchers", type=int, default=50)
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--applies", type=int, default=1000)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        proc, url = await start_server(Path(tmp))
        try:
            connector = aiohttp.TCPConnector(limit=CONCURRENCY + args.watchers + 8)
            async with aiohttp.ClientSession(connector=connector) as session:
                await bench_creates(session, url, args.objects)
                await bench_lists(session, url, args.objects)
                await bench_watch(session, url, args.watchers, args.events)
                await bench_applies(session, url, args.applies)
        finally:
            proc.terminate()
            await proc.wait()


def run_main(argv: list[str] | None = None) -> Any:
    """Entry point for `python bench/sandbox_bench.py`."""
    return asyncio.run(main(argv))


if __name__ == "__main__":
    run_main()
