"""HostsDaemon against the sandbox over HTTP, proved with a real DNS server (Debian's dnsmasq).

The grid controller is not involved: each test creates what it would (a StatefulSetGrid through
the CRD, its per-unit StatefulSets with controller references, the ServiceGrid's Service) and plays
the StatefulSet controller and kubelet itself (pods, then their IPs through `/status`), so every
change is explicit. One test uses the sandbox's simulator for the real scale path.
"""

from __future__ import annotations

import asyncio
import errno
import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from dns_support import (
    GRID,
    GridWorld,
    can_mount_tmpfs,
    create_grid_world,
    create_pod,
    dnsmasq_binary,
    fqdn,
    resolve,
    run_dnsmasq,
    service,
    set_pod_ip,
    statefulset,
    statefulset_grid,
    tmpfs,
)
from prometheus_client import REGISTRY

from servicegroup.dns.daemon import STATEFULSETGRIDS, HostsDaemon
from servicegroup.dns.demo import DEMO_NAME, demo_lines
from servicegroup.dns.hosts import format_hosts
from servicegroup.kube.client import Client
from servicegroup.kube.clock import FakeClock
from servicegroup.kube.informer import InformerFactory
from servicegroup.kube.resources import (
    DEPLOYMENTS,
    NODES,
    PODS,
    SERVICES,
    STATEFULSETS,
)
from servicegroup.sandbox import Sandbox
from waits import eventually

Obj = dict[str, Any]

pytestmark = pytest.mark.skipif(
    dnsmasq_binary() is None, reason="needs dnsmasq (apt-get install dnsmasq-base)"
)

UNITS = {"bj-1": "beijing", "gz-1": "guangzhou"}
IPS = {"beijing": "10.244.1.{}", "guangzhou": "10.244.2.{}"}


@dataclass
class Cluster:
    """The sandbox with the demo's grid children; tests play the StatefulSet controller and kubelet."""

    client: Client
    world: GridWorld
    factory: InformerFactory
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def add_pod(self, unit: str, ordinal: int, ip: str | None = None) -> Obj:
        """Pod `<grid>-<unit>-<ordinal>`, Running with `ip` (default: by unit and ordinal)."""
        ip = ip or IPS[unit].format(10 + ordinal)
        return await create_pod(self.client, self.world.sets[unit], ordinal, ip)

    async def set_ip(self, name: str, ip: str) -> Obj:
        return await set_pod_ip(self.client, name, ip)

    def daemon(self, node_name: str, hosts_file: Path) -> HostsDaemon:
        """A running daemon for `node_name` (stopped at the end of the test)."""
        daemon = HostsDaemon(
            self.factory, node=node_name, hosts_file=hosts_file, debounce=0.02, retry_base=0.05, retry_cap=0.2
        )
        self.tasks.append(asyncio.create_task(daemon.run()))
        return daemon


@pytest.fixture
async def cluster() -> AsyncIterator[Cluster]:
    """Sandbox + nodes bj-1/gz-1 + the StatefulSetGrid, both StatefulSets, the Service, 3 pods each."""
    sandbox = Sandbox()
    client = Client(await sandbox.start("127.0.0.1", 0))
    factory = InformerFactory(client)
    try:
        world = Cluster(client, await create_grid_world(client, UNITS, list(UNITS.values())), factory)
        for unit in UNITS.values():
            for ordinal in range(3):
                await world.add_pod(unit, ordinal)
        yield world
        for task in world.tasks:
            task.cancel()
        await asyncio.gather(*world.tasks, return_exceptions=True)
    finally:
        await factory.stop()
        await client.close()
        await sandbox.stop()


@pytest.fixture
def dns_dir(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    """A hosts directory served by dnsmasq: (directory, port)."""
    directory = tmp_path / "dns"
    directory.mkdir()
    with run_dnsmasq(directory) as port:
        yield directory, port


async def answers(port: int, name: str, expected: list[str]) -> bool:
    """Probe for `eventually`: does dnsmasq answer `name` with exactly `expected`?"""
    got = await resolve(port, name)
    assert got == expected, f"{name}: {got} != {expected}"
    return True


def writes(node_name: str, result: str) -> float:
    return (
        REGISTRY.get_sample_value(
            "servicegroup_dns_hosts_writes_total", {"node": node_name, "result": result}
        )
        or 0.0
    )


async def test_each_unit_resolves_the_alias_to_its_own_pod(cluster: Cluster, tmp_path: Path) -> None:
    ports = {}
    with (
        run_dnsmasq(_mkdir(tmp_path / "bj")) as ports["bj-1"],
        run_dnsmasq(_mkdir(tmp_path / "gz")) as ports["gz-1"],
    ):
        bj = cluster.daemon("bj-1", tmp_path / "bj" / "hosts")
        cluster.daemon("gz-1", tmp_path / "gz" / "hosts")
        for ordinal in range(3):
            await eventually(lambda o=ordinal: answers(ports["bj-1"], fqdn(o), [f"10.244.1.{10 + o}"]))
            await eventually(lambda o=ordinal: answers(ports["gz-1"], fqdn(o), [f"10.244.2.{10 + o}"]))
        assert await resolve(ports["bj-1"], fqdn(3)) == []
    lines = (tmp_path / "bj" / "hosts").read_text().splitlines()
    assert lines[0].startswith("# Generated by `servicegroup dns` for node bj-1")
    assert lines[2:] == [f"10.244.1.{10 + i} {fqdn(i)}" for i in range(3)]
    assert (tmp_path / "bj" / "hosts").read_text() == format_hosts(bj.entries, node="bj-1")
    assert bj.ready


async def test_pod_ip_change_is_served(cluster: Cluster, dns_dir: tuple[Path, int]) -> None:
    directory, port = dns_dir
    cluster.daemon("bj-1", directory / "hosts")
    await eventually(lambda: answers(port, fqdn(1), ["10.244.1.11"]))
    await cluster.set_ip(f"{GRID}-beijing-1", "10.244.1.99")
    await eventually(lambda: answers(port, fqdn(1), ["10.244.1.99"]))
    assert await resolve(port, fqdn(0)) == ["10.244.1.10"]


async def test_scale_down_then_up(cluster: Cluster, dns_dir: tuple[Path, int]) -> None:
    directory, port = dns_dir
    cluster.daemon("bj-1", directory / "hosts")
    await eventually(lambda: answers(port, fqdn(2), ["10.244.1.12"]))
    await cluster.client.delete(PODS, f"{GRID}-beijing-2", "default")
    await eventually(lambda: answers(port, fqdn(2), []))
    await cluster.add_pod("beijing", 2, "10.244.1.42")
    await cluster.add_pod("beijing", 3)
    await eventually(lambda: answers(port, fqdn(2), ["10.244.1.42"]))
    await eventually(lambda: answers(port, fqdn(3), ["10.244.1.13"]))


async def test_pod_without_ip_yet_is_not_listed(cluster: Cluster, dns_dir: tuple[Path, int]) -> None:
    directory, port = dns_dir
    daemon = cluster.daemon("bj-1", directory / "hosts")
    await create_pod(cluster.client, cluster.world.sets["beijing"], 5, None)
    await cluster.set_ip(f"{GRID}-beijing-0", "10.244.1.50")  # a change we can wait for
    await eventually(lambda: answers(port, fqdn(0), ["10.244.1.50"]))
    assert await resolve(port, fqdn(5)) == []
    assert fqdn(5) not in {entry.fqdn for entry in daemon.entries}


async def test_node_moved_to_other_unit_follows_it(cluster: Cluster, dns_dir: tuple[Path, int]) -> None:
    directory, port = dns_dir
    cluster.daemon("bj-1", directory / "hosts")
    await eventually(lambda: answers(port, fqdn(0), ["10.244.1.10"]))
    await cluster.client.patch(NODES, "bj-1", {"metadata": {"labels": {"location": "guangzhou"}}})
    await eventually(lambda: answers(port, fqdn(0), ["10.244.2.10"]))
    await cluster.client.patch(NODES, "bj-1", {"metadata": {"labels": {"location": None}}})
    await eventually(lambda: answers(port, fqdn(0), []))


async def test_grid_deletion_removes_every_name(cluster: Cluster, dns_dir: tuple[Path, int]) -> None:
    directory, port = dns_dir
    daemon = cluster.daemon("bj-1", directory / "hosts")
    await eventually(lambda: answers(port, fqdn(0), ["10.244.1.10"]))
    await cluster.client.delete(STATEFULSETGRIDS, GRID, "default")
    for ordinal in range(3):
        await eventually(lambda o=ordinal: answers(port, fqdn(o), []))
    await eventually(lambda: _equal((directory / "hosts").read_text(), format_hosts([], node="bj-1")))
    assert daemon.entries == []


async def test_foreign_objects_are_ignored(cluster: Cluster, dns_dir: tuple[Path, int]) -> None:
    directory, port = dns_dir
    cluster.daemon("bj-1", directory / "hosts")
    await eventually(lambda: answers(port, fqdn(0), ["10.244.1.10"]))
    before = (directory / "hosts").read_text()
    client = cluster.client
    # A StatefulSet with our labels but no StatefulSetGrid controller, whose pods would be named
    # like ours, and a grid child that points at a Service keyed differently.
    impostor = statefulset(cluster.world.grid, "beijing")
    del impostor["metadata"]["uid"]
    impostor["metadata"]["name"] = f"{GRID}-beijing-x"
    impostor["metadata"]["ownerReferences"][0]["kind"] = "DeploymentGrid"
    impostor = await client.create(STATEFULSETS, impostor)
    foreign_grid = statefulset_grid("other", service="plain-svc")
    del foreign_grid["metadata"]["uid"]
    foreign_grid = await client.create(STATEFULSETGRIDS, foreign_grid)
    other_set = statefulset(foreign_grid, "beijing")
    del other_set["metadata"]["uid"]
    other_set = await client.create(STATEFULSETS, other_set)
    plain = service("plain-svc")
    plain["metadata"]["labels"] = {"app": "plain"}
    await client.create(SERVICES, plain)
    for sts in (impostor, other_set):
        await create_pod(client, sts, 0, "10.9.9.9")
    await client.create(DEPLOYMENTS, _deployment())
    # A change of ours after all the foreign ones: once it is served, they have been seen.
    await cluster.set_ip(f"{GRID}-beijing-1", "10.244.1.77")
    await eventually(lambda: answers(port, fqdn(1), ["10.244.1.77"]))
    after = (directory / "hosts").read_text()
    assert after == before.replace("10.244.1.11 ", "10.244.1.77 ")
    assert "10.9.9.9" not in after
    assert await resolve(port, fqdn(0, grid="other", service="plain-svc")) == []


async def test_unchanged_content_is_not_rewritten(cluster: Cluster, dns_dir: tuple[Path, int]) -> None:
    directory, port = dns_dir
    cluster.daemon("bj-1", directory / "hosts")
    await eventually(lambda: answers(port, fqdn(0), ["10.244.1.10"]))
    inode = (directory / "hosts").stat().st_ino
    unchanged = writes("bj-1", "unchanged")
    await cluster.client.patch(
        PODS, f"{GRID}-beijing-0", {"metadata": {"annotations": {"touched": "yes"}}}, namespace="default"
    )
    await eventually(lambda: _greater(writes("bj-1", "unchanged"), unchanged))
    assert (directory / "hosts").stat().st_ino == inode


async def test_burst_of_changes_is_coalesced_into_one_sync(cluster: Cluster, tmp_path: Path) -> None:
    clock = FakeClock()
    daemon = HostsDaemon(
        cluster.factory, node="bj-1", hosts_file=tmp_path / "hosts", debounce=1.0, clock=clock
    )
    cluster.tasks.append(asyncio.create_task(daemon.run()))
    await daemon.wait_for(lambda entries: len(entries) == 3)  # the first sync is immediate
    before = writes("bj-1", "written") + writes("bj-1", "unchanged")
    await asyncio.gather(*(cluster.add_pod("beijing", ordinal) for ordinal in range(3, 13)))
    await eventually(lambda: _pods_with_ip(daemon, 13))
    assert len(daemon.entries) == 3  # nothing synced while the debounce window is open
    clock.advance(1.0)
    await daemon.wait_for(lambda entries: len(entries) == 13)
    assert writes("bj-1", "written") + writes("bj-1", "unchanged") - before == 1


async def _pods_with_ip(daemon: HostsDaemon, count: int) -> bool:
    with_ip = [p for p in daemon.pods.store.list() if (p.get("status") or {}).get("podIP")]
    assert len(with_ip) >= count + 3, len(with_ip)  # + guangzhou's three
    return True


FAILURES = {"disk-full": "full", "read-only": "ro"}


@pytest.mark.parametrize("failure", FAILURES.values(), ids=FAILURES.keys())
async def test_failed_write_keeps_old_file_and_recovers(
    cluster: Cluster, tmp_path: Path, failure: str
) -> None:
    if not can_mount_tmpfs(tmp_path):
        pytest.skip("needs root with CAP_SYS_ADMIN to mount a tmpfs (a real full or read-only disk)")
    # 8 KiB: the hosts file takes one page, a replacement needs the other.
    with tmpfs(tmp_path / "disk", "8k") as disk, run_dnsmasq(disk) as port:
        daemon = cluster.daemon("bj-1", disk / "hosts")
        await eventually(lambda: answers(port, fqdn(0), ["10.244.1.10"]))
        old = (disk / "hosts").read_text()
        errors = writes("bj-1", "error")
        _break_disk(disk, failure)
        await cluster.set_ip(f"{GRID}-beijing-0", "10.244.1.60")
        await eventually(lambda: _greater(writes("bj-1", "error"), errors + 1))  # failed, then retried
        assert (disk / "hosts").read_text() == old
        assert [p.name for p in disk.iterdir() if p.name.startswith(".hosts.")] == []
        assert not daemon.ready
        assert isinstance(daemon.last_error, OSError)
        assert daemon.last_error.errno in (errno.ENOSPC, errno.EROFS)
        assert await resolve(port, fqdn(0)) == ["10.244.1.10"]
        _repair_disk(disk, failure)
        await eventually(lambda: answers(port, fqdn(0), ["10.244.1.60"]))
        assert daemon.ready


def _break_disk(disk: Path, failure: str) -> None:
    if failure == "ro":
        _mount(["-o", "remount,ro", str(disk)])
        return
    fd = os.open(disk / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, b"\0" * 1024)
    except OSError as err:
        assert err.errno == errno.ENOSPC
    finally:
        os.close(fd)


def _repair_disk(disk: Path, failure: str) -> None:
    if failure == "ro":
        _mount(["-o", "remount,rw", str(disk)])
    else:
        (disk / "filler").unlink()


def _mount(args: list[str]) -> None:
    import subprocess

    subprocess.run(["mount", *args], check=True)


async def test_simulated_statefulset_scale_is_followed(tmp_path: Path) -> None:
    """The real path: the sandbox's simulated StatefulSet controller and kubelet make the pods."""
    sandbox = Sandbox(simulate=True)
    client = Client(await sandbox.start("127.0.0.1", 0))
    factory = InformerFactory(client)
    try:
        await create_grid_world(client, UNITS, ["beijing"], replicas=2)
        daemon = HostsDaemon(factory, node="bj-1", hosts_file=tmp_path / "hosts", debounce=0.02)
        task = asyncio.create_task(daemon.run())
        try:
            await eventually(lambda: _names(daemon, {fqdn(0), fqdn(1)}), timeout=30)
            scale = {"spec": {"replicas": 1}}
            await client.patch(STATEFULSETS, f"{GRID}-beijing", scale, namespace="default")
            await eventually(lambda: _names(daemon, {fqdn(0)}), timeout=30)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    finally:
        await factory.stop()
        await client.close()
        await sandbox.stop()


async def _names(daemon: HostsDaemon, expected: set[str]) -> bool:
    got = {entry.fqdn for entry in daemon.entries}
    assert got == expected, got
    return True


async def _equal(got: str, expected: str) -> bool:
    assert got == expected
    return True


async def _greater(value: float, than: float) -> bool:
    assert value > than, f"{value} <= {than}"
    return True


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _deployment() -> Obj:
    labels = {"app": "web"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": labels},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "c", "image": "x"}]},
            },
        },
    }


async def test_demo_lines_show_each_units_pod(cluster: Cluster) -> None:
    lines = await demo_lines(cluster.client, ["bj-1", "gz-1"], within=20)
    assert lines == [
        f"bj-1: {DEMO_NAME} -> 10.244.1.10 (default/{GRID}-beijing-0)",
        f"gz-1: {DEMO_NAME} -> 10.244.2.10 (default/{GRID}-guangzhou-0)",
    ]


async def test_demo_lines_report_unresolved_names(cluster: Cluster) -> None:
    lines = await demo_lines(cluster.client, ["bj-1"], names=[fqdn(7)], within=0.5)
    assert lines == [f"bj-1: {fqdn(7)} -> not resolved"]
