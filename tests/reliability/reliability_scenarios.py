"""The reliability scenarios, parameterised: the tests run them small, the bench runs them big.

Each returns a `Report` (trials, faults by kind, what was lost, convergence times); the tests
assert `report.lost == []`, the bench prints `report.line()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import random
import signal
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from reliability_support import FaultCounter, Report, Tap, fault_storm, retrying
from reliability_worlds import World, check, install_crds, resource_of

from servicegroup.dns.daemon import HostsDaemon
from servicegroup.grid.kinds import DEPLOYMENT_GRIDS
from servicegroup.kube.client import Client
from servicegroup.kube.errors import NotFound
from servicegroup.kube.informer import InformerFactory
from servicegroup.kube.resources import ENDPOINTSLICES, LEASES, NODES, SERVICES
from servicegroup.manager import Manager
from servicegroup.sandbox import Sandbox
from servicegroup.site.controller import EVENT_INTERVAL, NODEUNITS, STATUS_DELAY
from servicegroup.traffic.proxy import Proxy
from waits import eventually

Obj = dict[str, Any]

# 10% 500s everywhere, 429s with Retry-After, 409s on writes, a little latency on every request
FAULT_MIX: list[dict[str, Any]] = [
    {"code": 500, "rate": 0.10},
    {"code": 429, "rate": 0.03, "retryAfter": 1},
    {"code": 409, "rate": 0.10, "verb": "update"},
    {"code": 409, "rate": 0.10, "verb": "patch"},
    {"code": 409, "rate": 0.05, "verb": "create"},
]
LATENCY = 0.002


@contextlib.asynccontextmanager
async def sandbox_running(seed: int, *, simulate: bool = True) -> AsyncIterator[Sandbox]:
    sandbox = Sandbox(simulate=simulate, seed=seed, bookmark_interval=0.2)
    await sandbox.start("127.0.0.1", 0)
    try:
        yield sandbox
    finally:
        await sandbox.stop()


async def create_objects(client: Client, objects: list[Obj]) -> None:
    """Create (through any injected faults) every object, and Node status as the kubelet would."""
    for obj in objects:
        res = resource_of(obj)
        ns = obj["metadata"].get("namespace")
        await retrying(lambda res=res, obj=obj, ns=ns: client.create(res, obj, ns))
        if obj["kind"] == "Node" and obj.get("status"):
            name = obj["metadata"]["name"]
            body = {"status": obj["status"]}
            await retrying(
                lambda res=res, name=name, body=body: client.patch(res, name, body, subresource="status")
            )


async def converged(client: Client, world: World, timeout: float) -> list[str]:
    """Wait (bounded) for the exact desired state; returns what is still wrong if it never came."""
    last: list[str] = []

    async def probe() -> bool:
        nonlocal last
        last = await check(client, world.desired)
        return not last

    with contextlib.suppress(AssertionError):
        await eventually(probe, timeout=timeout, interval=0.2, message="exact desired state")
    return last


async def settle(manager: Manager, quiet_for: float = 2.5) -> None:
    """Every queue empty, nothing in progress and no write for `quiet_for` seconds; Events posted.

    Keys waiting out a retry backoff from the fault phase may wait minutes (exponential, like
    client-go) and are not waited for; the quiet period covers the short, deliberate delays
    (the site controller batches status reconciles for 1 s, STATUS_DELAY) so that a write they
    cause lands before the measurement starts, or inside it.
    """
    since, writes = time.monotonic(), manager.client.write_count

    async def quiet() -> bool:
        nonlocal since, writes
        busy = any(len(c.queue) or c.queue.processing for c in manager.controllers)
        if busy or manager.client.write_count != writes:
            since, writes = time.monotonic(), manager.client.write_count
        return time.monotonic() - since >= quiet_for

    await eventually(quiet, timeout=60, interval=0.1, message="controllers did not go quiet")
    for recorder in manager._recorders.values():
        await recorder.flush()


async def resync_writes(manager: Manager, sandbox: Sandbox, rounds: int = 2) -> tuple[int, list[str]]:
    """Writes by the manager, and the changes anyone committed, over forced resyncs.

    Before: quiet for longer than the site controller's deliberate delays (membership Events are
    at most one per EVENT_INTERVAL per unit, the rest wait). During: quiet for longer than
    STATUS_DELAY, so a write the resync causes is counted.
    """
    await settle(manager, quiet_for=EVENT_INTERVAL + 1.0)
    writes = manager.client.write_count
    subscription = sandbox.storage.subscribe()
    sent: list[str] = []
    original = Client._write

    async def recording(self: Client, verb: str, method: str, res: Any, *, path: str, **kw: Any) -> Obj:
        sent.append(f"{method} {path}")
        return await original(self, verb, method, res, path=path, **kw)

    Client._write = recording  # type: ignore[method-assign]  # names the writes in the report
    try:
        for _ in range(rounds):
            for informer in manager.informers.informers:
                informer.resync()
            await settle(manager, quiet_for=STATUS_DELAY + 1.5)
        changes = []
        while (event := await subscription.next(wait=0)) is not None:
            meta = event.obj.get("metadata") or {}
            changes.append(f"{event.type} {event.rt.kind} {meta.get('namespace', '')}/{meta.get('name')}")
    finally:
        Client._write = original  # type: ignore[method-assign]
        subscription.close()
    return manager.client.write_count - writes, changes + [f"sent {w}" for w in sent]


async def api_faults(world: World, *, seed: int, storm_rounds: int = 6, timeout: float = 90) -> Report:
    """Scenario 1: converge `world` while the API server fails, throttles, conflicts, drops watches
    and compacts; then, faults off, the exact end state and zero writes on resync."""
    report = Report("api-faults", trials=1)
    async with sandbox_running(seed) as sandbox:
        client = Client(sandbox.url, read_retries=50, max_backoff=0.2)
        manager = Manager(Client(sandbox.url, max_backoff=1.0), ["grid", "site"])
        counter = FaultCounter(sandbox)
        stop = asyncio.Event()
        try:
            await install_crds(client)
            await manager.start()
            started = time.monotonic()
            sandbox.faults.set(errors=list(FAULT_MIX), latency=LATENCY)
            storm = asyncio.create_task(fault_storm(counter, stop))
            await create_objects(client, world.objects)
            await eventually(
                lambda: _at_least(counter.counts, "compactions", storm_rounds), timeout=120, interval=0.1
            )
            stop.set()
            await storm
            sandbox.faults.clear()
            report.lost = await converged(client, world, timeout)
            report.seconds.append(time.monotonic() - started)
            if not report.lost:
                writes, changes = await resync_writes(manager, sandbox)
                report.extra["resync_writes"] = writes
                report.extra["resync_commits"] = sum(not c.startswith("sent ") for c in changes)
                if writes or changes:
                    report.lost.append(f"update loop: {writes} writes on a resync, committed: {changes}")
        finally:
            stop.set()
            sandbox.faults.clear()
            await manager.stop()
            await manager.client.close()
            await client.close()
        report.faults.update(counter.counts)
    return report


async def _at_least(counts: Any, key: str, n: int) -> bool:
    return bool(counts[key] >= n)


# -- crashes --------------------------------------------------------------------------------------


async def start_manager(
    kubeconfig: Path, *extra: str, controllers: str = "grid,site"
) -> asyncio.subprocess.Process:
    """`servicegroup manager` as a real process (so kill -9 is real)."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "servicegroup",
        "manager",
        "--kubeconfig",
        str(kubeconfig),
        "--controllers",
        controllers,
        "--health-listen",
        "127.0.0.1:0",
        *extra,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


async def kill9(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGKILL)
        await process.wait()


async def crash_restart(
    world: World, *, seed: int, tmp: Path, kills: int = 2, change: bool = True, timeout: float = 90
) -> Report:
    """Scenario 2: kill -9 the manager after a seeded random number of commits (or once it has
    converged, whichever comes first), `kills` times, changing the desired state after every
    crash; the last manager must reach it exactly."""
    report = Report("crash-restart", trials=1)
    rng = random.Random(seed)
    async with sandbox_running(seed) as sandbox:
        kubeconfig = sandbox.write_kubeconfig(tmp / f"kubeconfig-{seed}")
        client = Client(sandbox.url)
        process: asyncio.subprocess.Process | None = None
        try:
            await install_crds(client)
            await create_objects(client, world.objects)
            started = time.monotonic()
            for kill in range(kills):
                base = sandbox.storage.resource_version
                point = base + rng.randint(1, 40)
                process = await start_manager(kubeconfig)
                await eventually(
                    lambda point=point: kill_point(sandbox, client, world, point), timeout=60, interval=0.005
                )
                await kill9(process)
                report.faults["kill9"] += 1
                report.extra.setdefault("kill_points", []).append(sandbox.storage.resource_version - base)
                if change:
                    await apply_change(client, world, replicas=3 + kill)
            process = await start_manager(kubeconfig)
            report.lost = await converged(client, world, timeout)
            report.seconds.append(time.monotonic() - started)
        finally:
            if process is not None:
                await kill9(process)
            await client.close()
    return report


async def kill_point(sandbox: Sandbox, client: Client, world: World, commits: int) -> bool:
    """The seeded number of commits is reached, or there is nothing left to do."""
    if sandbox.storage.resource_version >= commits:
        return True
    return not await check(client, world.desired)


async def apply_change(client: Client, world: World, replicas: int) -> None:
    """Mid-run change of the docs' world: new replicas for deploymentgrid-demo (no lost update)."""
    patch = {"spec": {"template": {"replicas": replicas}}}
    await client.patch(DEPLOYMENT_GRIDS, "deploymentgrid-demo", patch, namespace="default")
    world.desired.set_replicas("default", replicas)


# -- leader failover --------------------------------------------------------------------------------

LEASE_ARGS = ("--leader-elect", "--lease-duration", "2", "--renew-deadline", "1.5", "--retry-period", "0.2")


async def lease_holder(client: Client) -> str:
    try:
        lease = await client.get(LEASES, "servicegroup-manager", "kube-system")
    except NotFound:
        return ""
    return str(lease["spec"].get("holderIdentity") or "")


def churn_step(world: World, step: int) -> list[tuple[Any, str, Obj, str | None]]:
    """Step `step` of the churn: new replicas for the docs' grid, a new `site` label for beijing."""
    replicas = 1 + step % 4
    site = f"bj-{step}"
    world.desired.set_replicas("default", replicas)
    for _name, labels in world.desired.node_labels.items():
        if "site" in labels:
            labels["site"] = site
    return [
        (DEPLOYMENT_GRIDS, "deploymentgrid-demo", {"spec": {"template": {"replicas": replicas}}}, "default"),
        (NODEUNITS, "beijing", {"spec": {"setNode": {"labels": {"site": site}}}}, None),
    ]


def overlapping_writers(log: list[Any]) -> list[str]:
    """Writes (other than the Lease) of two identities interleaved in time, and writes of an
    identity outside the span in which the Lease says it leads."""
    writes = sorted((r for r in log if r.is_write and "/leases" not in r.path), key=lambda r: r.started)
    problems = []
    for before, after in itertools.pairwise(writes):
        if before.identity != after.identity and after.started < before.ended:
            problems.append(
                f"{before.identity} {before.method} {before.path} and {after.identity} {after.method} "
                f"{after.path} overlap"
            )
    acquired: dict[str, float] = {}
    for r in log:
        took = f'"holderIdentity":"{r.identity}"'.encode() in r.body.replace(b" ", b"")
        if (
            "/leases" in r.path
            and r.is_write
            and 200 <= r.status < 300
            and took
            and r.identity not in acquired
        ):
            acquired[r.identity] = r.ended
    for r in writes:
        if r.identity not in acquired or r.started < acquired[r.identity]:
            problems.append(f"{r.identity} wrote {r.method} {r.path} before holding the Lease")
    return problems


async def leader_failover(
    world: World, *, seed: int, tmp: Path, failovers: int = 1, steps: int = 8, timeout: float = 90
) -> Report:
    """Scenario 3: two managers with leader election, each behind its own tap; kill -9 the leader
    while grids and NodeUnits change; one writer at a time, and every change reflected at the end."""
    report = Report("leader-failover", trials=1)
    rng = random.Random(seed)
    async with sandbox_running(seed) as sandbox:
        client = Client(sandbox.url)
        log: list[Any] = []
        taps: dict[str, Tap] = {}
        processes: dict[str, asyncio.subprocess.Process] = {}

        async def launch(identity: str) -> None:
            """A fresh process has a fresh identity (hostname_uuid in real life), behind its own tap."""
            tap = taps[identity] = Tap(sandbox.url, identity, log)
            await tap.start()
            kubeconfig = tap.write_kubeconfig(tmp / f"kubeconfig-{identity}")
            processes[identity] = await start_manager(kubeconfig, *LEASE_ARGS, "--identity", identity)

        try:
            await install_crds(client)
            await create_objects(client, world.objects)
            started = time.monotonic()
            await launch("a")
            await eventually(lambda: _holder_is(client, "a"), timeout=60)
            await launch("b")
            kill_at = sorted(rng.sample(range(1, steps), failovers))
            kills: list[float] = []
            for step in range(steps):
                for res, name, patch, ns in churn_step(world, step):
                    await client.patch(res, name, patch, namespace=ns)
                if step in kill_at:
                    leader = await lease_holder(client)
                    await kill9(processes[leader])
                    kills.append(time.monotonic())
                    report.faults["leader_kill9"] += 1
                    await launch(f"{leader[0]}{step}")  # comes back as a stand-by
                    await eventually(lambda leader=leader: _holder_not(client, leader), timeout=60)
                await asyncio.sleep(rng.uniform(0.05, 0.3))  # churn pacing, not synchronisation
            report.lost = await converged(client, world, timeout)
            report.seconds.append(time.monotonic() - started)
            report.lost += overlapping_writers(log)
            report.extra["takeover_s"] = takeover_times(log, kills)
            report.extra["writes_by"] = dict(
                sorted(Counter(r.identity for r in log if r.is_write and "/leases" not in r.path).items())
            )
        finally:
            for process in processes.values():
                await kill9(process)
            for tap in taps.values():
                await tap.stop()
            await client.close()
    return report


def takeover_times(log: list[Any], kills: list[float]) -> list[float]:
    """Per kill: seconds until the first write (other than the Lease) of another identity."""
    out = []
    writes = [r for r in log if r.is_write and "/leases" not in r.path]
    for killed in kills:
        before = [r.identity for r in writes if r.started < killed]
        after = [r for r in writes if r.started >= killed and (not before or r.identity != before[-1])]
        if after:
            out.append(round(after[0].started - killed, 2))
    return out


async def _holder_is(client: Client, identity: str) -> bool:
    return await lease_holder(client) == identity


async def _holder_not(client: Client, identity: str) -> bool:
    holder = await lease_holder(client)
    return bool(holder) and holder != identity


# -- proxy through an outage --------------------------------------------------------------------------

SLICES_PATH = "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices"
SERVICE_LABEL = "kubernetes.io/service-name"
LOCATIONS = {
    "bj-1": "beijing",
    "bj-2": "beijing",
    "gz-1": "guangzhou",
    "gz-2": "guangzhou",
    "gz-3": "guangzhou",
}


def traffic_objects() -> list[tuple[Any, Obj]]:
    """The docs' nodes, Service `echo` (topologyKeys: location) and its EndpointSlice."""
    objs: list[tuple[Any, Obj]] = []
    for name, location in LOCATIONS.items():
        labels = {"location": location, "kubernetes.io/hostname": name}
        objs.append(
            (NODES, {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": labels}})
        )
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "echo", "namespace": "default", "annotations": {"topologyKeys": '["location"]'}},
        "spec": {"selector": {"app": "echo"}, "ports": [{"port": 80, "targetPort": 8080, "protocol": "TCP"}]},
    }
    objs.append((SERVICES, service))
    objs.append((ENDPOINTSLICES, endpoint_slice(["bj-1", "gz-1", "gz-2"])))
    return objs


def endpoint_slice(nodes: list[str], name: str = "echo-a") -> Obj:
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": name,
            "namespace": "default",
            "labels": {SERVICE_LABEL: "echo", "endpointslice.kubernetes.io/managed-by": "test"},
        },
        "addressType": "IPv4",
        "endpoints": [
            {
                "addresses": [f"10.244.{list(LOCATIONS).index(n)}.{10 + i}"],
                "nodeName": n,
                "conditions": {"ready": True},
            }
            for i, n in enumerate(nodes)
        ],
        "ports": [{"name": "", "port": 8080, "protocol": "TCP"}],
    }


class SliceWatcher:
    """kube-proxy's view through one proxy: list, then watch; every state it ever held is recorded.

    Reconnects (list again) whenever the proxy goes away, so a proxy restart is observed too.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.state: dict[str, tuple[str, ...]] = {}
        self.observed: list[dict[str, tuple[str, ...]]] = []
        self.reconnects = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def _set(self, obj: Obj, deleted: bool = False) -> None:
        name = obj["metadata"]["name"]
        if deleted:
            self.state.pop(name, None)
        else:
            self.state[name] = tuple(sorted(ep.get("nodeName") or "" for ep in obj.get("endpoints") or []))
        self.observed.append(dict(self.state))

    async def _run(self) -> None:
        import aiohttp
        import orjson

        params = {"labelSelector": f"{SERVICE_LABEL}=echo"}
        async with aiohttp.ClientSession() as session:
            while True:
                try:
                    async with session.get(self.url + SLICES_PATH, params=params) as resp:
                        listed = await resp.json()
                    if "items" not in listed:
                        raise ValueError(str(listed))
                    self.state = {}
                    for item in listed["items"]:
                        self._set(item)
                    self.observed.append(dict(self.state))
                    watch = {
                        **params,
                        "watch": "true",
                        "resourceVersion": listed["metadata"]["resourceVersion"],
                    }
                    async with session.get(self.url + SLICES_PATH, params=watch) as resp:
                        async for line in resp.content:
                            event = orjson.loads(line)
                            if event["type"] in ("ADDED", "MODIFIED", "DELETED"):
                                self._set(event["object"], event["type"] == "DELETED")
                            elif event["type"] == "ERROR":
                                break
                except (TimeoutError, aiohttp.ClientError, ValueError, OSError):
                    pass
                self.reconnects += 1
                await asyncio.sleep(0.05)  # reconnect pacing


def foreign_sightings(watcher: SliceWatcher, allowed: set[str]) -> list[str]:
    """Every moment the watcher held an endpoint of a node never in its unit."""
    return [
        f"saw {sorted(set(nodes) - allowed)} in {name} (state #{i})"
        for i, state in enumerate(watcher.observed)
        for name, nodes in state.items()
        if set(nodes) - allowed
    ]


async def proxy_outage(*, seed: int, tmp: Path, timeout: float = 60) -> Report:
    """Scenario 4: proxies for bj-1 and gz-1 lose the API server (their tap is cut) while units
    scale and nodes move; each restarts offline from --cache-dir; the link returns. A watcher through
    each proxy must never hold another unit's endpoint, and must end at the truth."""
    rng = random.Random(seed)
    report = Report("proxy-outage", trials=1)
    async with sandbox_running(seed, simulate=False) as sandbox:  # the test plays the slice controller
        client = Client(sandbox.url)
        for res, obj in traffic_objects():
            await client.create(res, obj, obj["metadata"].get("namespace"))
        allowed = {"bj-1": {"bj-1", "bj-2"}, "gz-1": {"gz-1", "gz-2", "gz-3"}}
        taps = {node: Tap(sandbox.url, f"proxy-{node}") for node in allowed}
        proxies: dict[str, Proxy] = {}
        watchers: dict[str, SliceWatcher] = {}
        clients: list[Client] = []

        async def start_proxy(node: str, port: int = 0) -> Proxy:
            upstream = Client(taps[node].url, read_retries=1, max_backoff=0.2)
            clients.append(upstream)
            proxy = Proxy(upstream, node, cache_dir=tmp / f"cache-{seed}", persist_interval=0.05)
            await proxy.start("127.0.0.1", port)
            proxies[node] = proxy
            return proxy

        async def change_slice(nodes: list[str]) -> None:
            live = await client.get(ENDPOINTSLICES, "echo-a", "default")
            live["endpoints"] = endpoint_slice(nodes)["endpoints"]
            await client.replace(ENDPOINTSLICES, live)

        try:
            for node, tap in taps.items():
                await tap.start()
                proxy = await start_proxy(node)
                await asyncio.wait_for(proxy.ready.wait(), 30)
                watchers[node] = SliceWatcher(proxy.url)
                watchers[node].start()
            started = time.monotonic()
            for tap in taps.values():
                tap.cut()
            report.faults["link_cuts"] += len(taps)
            pool = ["bj-1", "bj-2", "gz-1", "gz-2", "gz-3"]
            for _ in range(3):  # scale while offline
                await change_slice(sorted(rng.sample(pool, rng.randint(1, 5))))
            await client.patch(NODES, "bj-2", {"metadata": {"labels": {"location": "tianjin"}}})
            await client.patch(NODES, "gz-2", {"metadata": {"labels": {"location": "shenzhen"}}})
            for node in allowed:  # restart offline, same port, from the cache dir
                port = int(proxies[node].url.rsplit(":", 1)[1])
                await proxies[node].stop()
                proxy = await start_proxy(node, port)
                await asyncio.wait_for(proxy.ready.wait(), 30)
                report.faults["offline_restarts"] += 1
            final = ["bj-1", "bj-2", "gz-1", "gz-2", "gz-3"]
            await change_slice(final)
            for tap in taps.values():
                tap.mend()
            truth = {"bj-1": ("bj-1",), "gz-1": ("gz-1", "gz-3")}

            async def at_truth() -> bool:
                return all(watchers[n].state == {"echo-a": truth[n]} for n in truth)

            with contextlib.suppress(AssertionError):
                await eventually(at_truth, timeout=timeout, message="watchers at the truth")
            report.seconds.append(time.monotonic() - started)
            for node, watcher in watchers.items():
                report.lost += foreign_sightings(watcher, allowed[node])
                if watcher.state != {"echo-a": truth[node]}:
                    report.lost.append(f"{node} watcher ended at {watcher.state}, truth {truth[node]}")
            report.extra["observed_states"] = sum(len(w.observed) for w in watchers.values())
            report.extra["reconnects"] = sum(w.reconnects for w in watchers.values())
        finally:
            for watcher in watchers.values():
                await watcher.stop()
            for proxy in proxies.values():
                await proxy.stop()
            for tap in taps.values():
                await tap.stop()
            for c in clients:
                await c.close()
            await client.close()
    return report


# -- DNS daemon: restarts and write failures -----------------------------------------------------------


class FileWatcher:
    """Samples a file from a thread as fast as it can and keeps every distinct version it saw."""

    def __init__(self, path: Path) -> None:
        import threading

        self.path = path
        self.versions: list[bytes | None] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                content: bytes | None = self.path.read_bytes()
            except FileNotFoundError:
                content = None
            if not self.versions or self.versions[-1] != content:
                self.versions.append(content)
            time.sleep(0.0005)  # sampling rate, not synchronisation


def hosts_problems(versions: list[bytes | None], allowed_ips: set[str], node: str) -> list[str]:
    """Every observed version must be complete (header, whole lines) and hold only local IPs."""
    problems = []
    header = f"# Generated by `servicegroup dns` for node {node}".encode()
    for i, content in enumerate(versions):
        if content is None:
            if i:  # missing before the first write is fine; vanishing later is not
                problems.append(f"version #{i}: the file disappeared")
            continue
        if not content.startswith(header) or not content.endswith(b"\n"):
            problems.append(f"version #{i}: truncated or foreign file: {content[:80]!r}...{content[-40:]!r}")
            continue
        for line in content.decode().splitlines():
            if line.startswith("#"):
                continue
            fields = line.split()
            if len(fields) != 2 or fields[0] not in allowed_ips:
                problems.append(f"version #{i}: foreign or broken line {line!r}")
    return problems


class DiskTrouble:
    """Makes a directory unwritable and back: a full or read-only tmpfs as root (mount works),
    chmod otherwise (not as root: root ignores modes). `kind` is None when neither is possible."""

    def __init__(self, directory: Path, kind: str | None) -> None:
        self.directory = directory
        self.kind = kind
        self._round = 0

    @staticmethod
    def probe(scratch: Path) -> str | None:
        import shutil
        import subprocess

        if os.geteuid() != 0:
            return "chmod"
        if shutil.which("mount") is None:
            return None
        target = scratch / "mount-probe"
        target.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=4k", "tmpfs", str(target)], check=False, capture_output=True
        )
        if done.returncode != 0:
            return None
        subprocess.run(["umount", str(target)], check=False)
        return "tmpfs"

    def setup(self) -> None:
        import subprocess

        self.directory.mkdir(parents=True, exist_ok=True)
        if self.kind == "tmpfs":
            subprocess.run(
                ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(self.directory)], check=True
            )

    def teardown(self) -> None:
        import subprocess

        if self.kind == "tmpfs":
            subprocess.run(["umount", "-l", str(self.directory)], check=False)
        else:
            self.directory.chmod(0o755)

    def break_(self) -> str:
        """Make writes fail; returns what was done."""
        import subprocess

        self._round += 1
        if self.kind == "chmod":
            self.directory.chmod(0o555)
            return "read_only"
        if self._round % 2:
            subprocess.run(["mount", "-o", "remount,ro", str(self.directory)], check=True)
            return "read_only"
        filler = self.directory / ".filler"
        with contextlib.suppress(OSError), open(filler, "wb") as out:
            while True:
                out.write(b"\0" * 4096)
                out.flush()
        return "disk_full"

    def repair(self) -> None:
        import subprocess

        if self.kind == "chmod":
            self.directory.chmod(0o755)
            return
        subprocess.run(["mount", "-o", "remount,rw", str(self.directory)], check=True)
        with contextlib.suppress(FileNotFoundError):
            (self.directory / ".filler").unlink()


async def dns_restarts(*, seed: int, tmp: Path, rounds: int = 6, timeout: float = 30) -> Report:
    """Scenario 5: pods change while the DNS daemon restarts and its writes fail (read-only, full
    disk); every version of the hosts file ever seen is whole and holds only the local unit's IPs."""
    sys.path.insert(0, str(Path(__file__).parents[1] / "dns"))
    from dns_support import create_grid_world, create_pod, set_pod_ip

    rng = random.Random(seed)
    report = Report("dns-restarts", trials=1)
    kind = DiskTrouble.probe(tmp)
    if kind is None:
        report.extra["skipped"] = "cannot make a directory unwritable here (root without mount)"
        return report
    disk = DiskTrouble(tmp / f"hosts-{seed}", kind)
    disk.setup()
    path = disk.directory / "hosts"
    async with sandbox_running(seed, simulate=False) as sandbox:
        client = Client(sandbox.url)
        world = await create_grid_world(
            client, {"bj-1": "beijing", "gz-1": "guangzhou"}, ["beijing", "guangzhou"]
        )
        local_ips: set[str] = set()
        pods: dict[str, dict[int, str]] = {"beijing": {}, "guangzhou": {}}  # unit -> ordinal -> ip
        serial = 10

        async def change_pods() -> None:
            nonlocal serial
            for unit, prefix in (("beijing", "10.244.1."), ("guangzhou", "10.244.2.")):
                ordinal = rng.randrange(3)
                serial += 1
                ip = f"{prefix}{serial}"
                if unit == "beijing":
                    local_ips.add(ip)
                name = f"{world.sets[unit]['metadata']['name']}-{ordinal}"
                if ordinal in pods[unit]:
                    await set_pod_ip(client, name, ip)
                else:
                    await create_pod(client, world.sets[unit], ordinal, ip)
                pods[unit][ordinal] = ip

        async def start_daemon() -> tuple[InformerFactory, HostsDaemon, asyncio.Task[None]]:
            factory = InformerFactory(client)
            daemon = HostsDaemon(
                factory, node="bj-1", hosts_file=path, debounce=0.01, retry_base=0.05, retry_cap=0.2
            )
            return factory, daemon, asyncio.create_task(daemon.run())

        async def stop_daemon(running: tuple[InformerFactory, HostsDaemon, asyncio.Task[None]]) -> None:
            factory, _, task = running
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await factory.stop()

        async def file_is_truth() -> bool:
            content = path.read_bytes() if path.exists() else b""
            got = sorted(
                line.split()[0] for line in content.decode().splitlines() if not line.startswith("#")
            )
            return got == sorted(pods["beijing"].values())

        watcher = FileWatcher(path)
        watcher.start()
        running = await start_daemon()
        started = time.monotonic()
        try:
            await change_pods()
            await eventually(file_is_truth, timeout=timeout)
            for _ in range(rounds):
                action = rng.choice(["fail", "restart", "fail-restart"])
                if action.startswith("fail"):
                    report.faults[disk.break_()] += 1
                await change_pods()
                if action.startswith("fail"):
                    daemon = running[1]
                    await eventually(lambda daemon=daemon: _failed(daemon), timeout=timeout)
                if action.endswith("restart"):
                    await stop_daemon(running)
                    running = await start_daemon()
                    report.faults["restarts"] += 1
                    await change_pods()
                if action.startswith("fail"):
                    disk.repair()
                await eventually(file_is_truth, timeout=timeout)
            report.seconds.append(time.monotonic() - started)
        except AssertionError as err:
            report.lost.append(f"hosts file never reached the truth: {err}")
        finally:
            await stop_daemon(running)
            watcher.stop()
            await client.close()
            disk.teardown()
        report.lost += hosts_problems(watcher.versions, local_ips, "bj-1")
        report.extra["versions_seen"] = len(watcher.versions)
        report.extra["disk"] = kind
    return report


async def _failed(daemon: Any) -> bool:
    return daemon.last_error is not None
