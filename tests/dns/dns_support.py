"""Test support for tests/dns and bench/dns_bench.py: grid children built the way the grid
controller builds them (names, labels, controller references), a real dnsmasq, and a DNS query.

Kept out of a conftest so the bench can import it too, and named uniquely because tests/ has no
packages (pytest's default import mode puts every test directory on sys.path).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import orjson

from servicegroup.api.crds import all_crds
from servicegroup.api.labels import GRID_API_VERSION, GRID_SELECTOR, GRID_UNIQ_KEY
from servicegroup.dns.daemon import STATEFULSETGRIDS
from servicegroup.kube.client import Client
from servicegroup.kube.resources import CUSTOMRESOURCEDEFINITIONS, NODES, PODS, SERVICES, STATEFULSETS

Obj = dict[str, Any]
T = TypeVar("T")

GRID = "statefulsetgrid-demo"
SERVICE = "servicegrid-demo-svc"
SERVICE_GRID = "servicegrid-demo"
KEY = "location"


def fqdn(ordinal: int, *, grid: str = GRID, service: str = SERVICE, namespace: str = "default") -> str:
    """The per-unit alias of ordinal `ordinal`."""
    return f"{grid}-{ordinal}.{service}.{namespace}.svc.cluster.local"


def node(name: str, labels: dict[str, str]) -> Obj:
    """A Node with labels."""
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": labels}}


def statefulset_grid(
    name: str = GRID, *, namespace: str = "default", key: str = KEY, service: str = SERVICE
) -> Obj:
    """A StatefulSetGrid like examples/03-statefulsetgrid.yaml (the uid is the server's)."""
    return {
        "apiVersion": GRID_API_VERSION,
        "kind": "StatefulSetGrid",
        "metadata": {"name": name, "namespace": namespace, "uid": str(uuid.uuid4())},
        "spec": {
            "gridUniqKey": key,
            "template": {
                "selector": {"matchLabels": {"appGrid": name}},
                "serviceName": service,
                "replicas": 3,
                "template": {
                    "metadata": {"labels": {"appGrid": name}},
                    "spec": {"containers": [{"name": "echo", "image": "superedge/echoserver:2.2"}]},
                },
            },
        },
    }


def statefulset(grid: Obj, unit: str, *, replicas: int = 3) -> Obj:
    """The grid controller's child for `unit`: `<grid>-<unit>`, labels, nodeSelector, controller ref."""
    grid_meta = grid["metadata"]
    key = grid["spec"]["gridUniqKey"]
    spec = _copy(grid["spec"]["template"])
    spec["replicas"] = replicas
    spec["template"]["spec"]["nodeSelector"] = {key: unit}
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {
            "name": f"{grid_meta['name']}-{unit}",
            "namespace": grid_meta["namespace"],
            "uid": str(uuid.uuid4()),
            "labels": {GRID_SELECTOR: grid_meta["name"], GRID_UNIQ_KEY: key},
            "ownerReferences": [_controller_ref(grid)],
        },
        "spec": spec,
    }


def service(
    name: str = SERVICE,
    *,
    namespace: str = "default",
    key: str = KEY,
    grid: str = SERVICE_GRID,
    selector: str = GRID,
) -> Obj:
    """The ServiceGrid's headless Service `<sg>-svc` (created without owner, as SuperEdge does)."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {GRID_SELECTOR: grid, GRID_UNIQ_KEY: key},
            "annotations": {"topologyKeys": f'["{key}"]'},
        },
        "spec": {"clusterIP": "None", "selector": {"appGrid": selector}, "ports": [{"port": 8080}]},
    }


def pod(sts: Obj, ordinal: int, ip: str | None, *, phase: str = "Running") -> Obj:
    """Pod `<set>-<ordinal>` controlled by the StatefulSet, with `ip` as podIP when given."""
    status: Obj = {"phase": phase}
    if ip:
        status.update(podIP=ip, podIPs=[{"ip": ip}])
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"{sts['metadata']['name']}-{ordinal}",
            "namespace": sts["metadata"]["namespace"],
            "uid": str(uuid.uuid4()),
            "ownerReferences": [_controller_ref(sts)],
        },
        "status": status,
    }


def ready_node(name: str, unit: str) -> Obj:
    """A Ready node in `unit` of gridUniqKey `location` (the simulator schedules only onto Ready nodes)."""
    obj = node(name, {KEY: unit, "kubernetes.io/hostname": name})
    obj["status"] = {"conditions": [{"type": "Ready", "status": "True"}]}
    return obj


def _server_side(obj: Obj) -> Obj:
    """The object without the uid the builders invent (the API server assigns it)."""
    del obj["metadata"]["uid"]
    return obj


async def create_grid_world(
    client: Client, nodes: dict[str, str], units: list[str], *, replicas: int = 3
) -> GridWorld:
    """CRDs, Ready nodes `{name: unit}`, the demo StatefulSetGrid, its StatefulSets for `units`, its
    Service: everything the grid controller would have made, without running it."""
    for crd in all_crds():
        await client.create(CUSTOMRESOURCEDEFINITIONS, crd)
    for name, unit in nodes.items():
        await client.create(NODES, ready_node(name, unit))
    grid = await client.create(STATEFULSETGRIDS, _server_side(statefulset_grid()))
    sets = {}
    for unit in units:
        body = _server_side(statefulset(grid, unit, replicas=replicas))
        sets[unit] = await client.create(STATEFULSETS, body)
    await client.create(SERVICES, service())
    return GridWorld(grid, sets)


@dataclass
class GridWorld:
    """What `create_grid_world` made, as the API server returned it."""

    grid: Obj
    sets: dict[str, Obj]


async def create_pod(client: Client, sts: Obj, ordinal: int, ip: str | None) -> Obj:
    """Play the StatefulSet controller (pod `<set>-<ordinal>`) and the kubelet (its IP, via /status)."""
    body = _server_side(pod(sts, ordinal, None))
    body["metadata"]["labels"] = {"statefulset.kubernetes.io/pod-name": body["metadata"]["name"]}
    body["spec"] = {"containers": [{"name": "echo", "image": "superedge/echoserver:2.2"}]}
    created: Obj = await client.create(PODS, body)
    return await set_pod_ip(client, created["metadata"]["name"], ip) if ip else created


async def set_pod_ip(client: Client, name: str, ip: str, namespace: str = "default") -> Obj:
    """What the kubelet does: report the pod Running with `ip`."""
    patch = {"status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}]}}
    patched: Obj = await client.patch(PODS, name, patch, namespace=namespace, subresource="status")
    return patched


def _controller_ref(owner: Obj) -> Obj:
    meta = owner["metadata"]
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _copy(value: Any) -> Any:
    return orjson.loads(orjson.dumps(value))


# -- a real DNS server -----------------------------------------------------------------------------


def dnsmasq_binary() -> str | None:
    """Path of Debian's dnsmasq (package dnsmasq-base), if installed."""
    return shutil.which("dnsmasq") or next((p for p in ("/usr/sbin/dnsmasq",) if os.path.exists(p)), None)


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def run_dnsmasq(hosts_dir: Path) -> Iterator[int]:
    """dnsmasq serving every file of `hosts_dir` (inotify `--hostsdir`, as CoreDNS `reload`
    watches its file) on a loopback port; yields the port. Upstream lookups are disabled."""
    binary = dnsmasq_binary()
    if binary is None:
        raise RuntimeError("dnsmasq not installed: apt-get install dnsmasq-base")
    for _ in range(5):
        port = _free_udp_port()
        proc = subprocess.Popen(
            [
                binary,
                "--keep-in-foreground",
                "--no-resolv",
                "--no-hosts",
                f"--hostsdir={hosts_dir}",
                f"--port={port}",
                "--listen-address=127.0.0.1",
                "--bind-interfaces",
                "--cache-size=0",
                "--user=root",
                "--pid-file=",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            if _wait_listening(port, proc):
                break
        except BaseException:
            proc.kill()
            raise
        proc.kill()
        proc.wait()
    else:
        raise RuntimeError("dnsmasq did not start")
    try:
        yield port
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr:
            proc.stderr.close()


def _wait_listening(port: int, proc: subprocess.Popen[bytes]) -> bool:
    """True once dnsmasq answers on `port` (a bounded number of tries), False if it exited."""
    for _ in range(200):
        if proc.poll() is not None:
            return False
        try:
            query_a_sync(port, "probe.invalid", timeout=0.05)
            return True
        except TimeoutError:
            continue
    return False


def _encode_query(name: str, query_id: int, qtype: int) -> bytes:
    header = struct.pack("!HHHHHH", query_id, 0x0100, 1, 0, 0, 0)
    labels = b"".join(bytes([len(part)]) + part.encode("ascii") for part in name.rstrip(".").split("."))
    return header + labels + b"\x00" + struct.pack("!HH", qtype, 1)


def _skip_name(data: bytes, offset: int) -> int:
    while True:
        length = data[offset]
        if length & 0xC0 == 0xC0:
            return offset + 2
        if length == 0:
            return offset + 1
        offset += length + 1


def _decode_answers(data: bytes, query_id: int, qtype: int) -> tuple[int, list[str]]:
    """(rcode, addresses) of a response to our query."""
    rid, flags, qdcount, ancount, _, _ = struct.unpack("!HHHHHH", data[:12])
    if rid != query_id:
        raise ValueError("response id mismatch")
    offset = 12
    for _ in range(qdcount):
        offset = _skip_name(data, offset) + 4
    addresses = []
    for _ in range(ancount):
        offset = _skip_name(data, offset)
        rtype, _, _, rdlength = struct.unpack("!HHIH", data[offset : offset + 10])
        offset += 10
        rdata = data[offset : offset + rdlength]
        offset += rdlength
        if rtype == qtype:
            family = socket.AF_INET if qtype == 1 else socket.AF_INET6
            addresses.append(socket.inet_ntop(family, rdata))
    return flags & 0x000F, sorted(addresses)


def query_a_sync(port: int, name: str, *, timeout: float = 1.0, qtype: int = 1) -> list[str]:
    """A (or AAAA with qtype=28) records of `name` from 127.0.0.1:port; `[]` for NXDOMAIN."""
    query_id = secrets.randbelow(0xFFFF)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.sendto(_encode_query(name, query_id, qtype), ("127.0.0.1", port))
        try:
            data, _ = sock.recvfrom(4096)
        except TimeoutError:
            raise
        except OSError as err:
            raise TimeoutError(str(err)) from err
    _, addresses = _decode_answers(data, query_id, qtype)
    return addresses


async def resolve(port: int, name: str, *, qtype: int = 1) -> list[str]:
    """`query_a_sync` off the event loop."""
    return await asyncio.to_thread(query_a_sync, port, name, qtype=qtype)


@contextlib.contextmanager
def tmpfs(directory: Path, size: str) -> Iterator[Path]:
    """A tiny tmpfs at `directory` (a real full disk); needs root with CAP_SYS_ADMIN."""
    directory.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(directory)], check=True)
    try:
        yield directory
    finally:
        subprocess.run(["umount", "-l", str(directory)], check=False)


def can_mount_tmpfs(scratch: Path) -> bool:
    """Whether this process may mount a tmpfs (root with CAP_SYS_ADMIN, as in the dev container)."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    target = scratch / "probe"
    target.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4k", "tmpfs", str(target)], check=False, capture_output=True
    )
    if done.returncode != 0:
        return False
    subprocess.run(["umount", str(target)], check=False)
    return True
