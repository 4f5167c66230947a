"""The whole proxy against the sandbox API server: one proxy per node of the docs' five-node cluster
(examples/00-nodes.yaml), read through our client, the official `kubernetes` client and kubectl.

Scenarios: per-unit views, scale-up, node relabel, annotation removal, upstream outage with open
watches, restart with --cache-dir while offline, and forbidden requests. Services are created with
the topologyKeys annotation directly (as the ServiceGrid controller would), EndpointSlices and
Endpoints as the EndpointSlice controller would.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
import yaml

from servicegroup.kube.client import Client
from servicegroup.kube.resources import ENDPOINTS, ENDPOINTSLICES, NODES, SERVICES
from servicegroup.sandbox import Sandbox
from servicegroup.traffic.demo import endpoints_by_node, endpoints_seen, node_proxies
from servicegroup.traffic.proxy import Proxy
from waits import eventually

LOCATIONS = {
    "bj-1": "beijing",
    "bj-2": "beijing",
    "gz-1": "guangzhou",
    "gz-2": "guangzhou",
    "gz-3": "guangzhou",
}
REGIONS = {"beijing": "north", "guangzhou": "south"}
KUBECTL = Path(sys.executable).with_name("kubectl")


def node_manifest(name: str) -> dict[str, Any]:
    location = LOCATIONS[name]
    labels = {"location": location, "region": REGIONS[location], "kubernetes.io/hostname": name}
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": labels}}


def service_manifest(name: str = "echo", keys: str | None = '["location"]') -> dict[str, Any]:
    annotations = {"topologyKeys": keys} if keys else {}
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": "default", "annotations": annotations},
        "spec": {"selector": {"app": name}, "ports": [{"port": 80, "targetPort": 8080, "protocol": "TCP"}]},
    }


def pod_ip(node: str, index: int) -> str:
    return f"10.244.{list(LOCATIONS).index(node)}.{index + 10}"


def slice_manifest(service: str, nodes: list[str], name: str | None = None) -> dict[str, Any]:
    endpoints = [
        {"addresses": [pod_ip(n, i)], "nodeName": n, "conditions": {"ready": True}}
        for i, n in enumerate(nodes)
    ]
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": name or f"{service}-abcde",
            "namespace": "default",
            "labels": {
                "kubernetes.io/service-name": service,
                "endpointslice.kubernetes.io/managed-by": "test",
            },
        },
        "addressType": "IPv4",
        "endpoints": endpoints,
        "ports": [{"name": "", "port": 8080, "protocol": "TCP"}],
    }


def endpoints_manifest(service: str, nodes: list[str]) -> dict[str, Any]:
    addresses = [{"ip": pod_ip(n, i), "nodeName": n} for i, n in enumerate(nodes)]
    return {
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {"name": service, "namespace": "default"},
        "subsets": [{"addresses": addresses, "ports": [{"port": 8080, "protocol": "TCP"}]}],
    }


@dataclass
class Cluster:
    sandbox: Sandbox
    client: Client
    tmp: Path

    async def restart_sandbox(self) -> None:
        """Start a new sandbox on the same port and data dir (the API server comes back)."""
        port = int(self.sandbox.url.rsplit(":", 1)[1])
        self.sandbox = Sandbox(data_dir=self.tmp / "sandbox")
        await self.sandbox.start("127.0.0.1", port)

    async def set_slice_nodes(self, nodes: list[str], service: str = "echo") -> None:
        live = await self.client.get(ENDPOINTSLICES, f"{service}-abcde", "default")
        live["endpoints"] = slice_manifest(service, nodes)["endpoints"]
        await self.client.replace(ENDPOINTSLICES, live)


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    sandbox = Sandbox(data_dir=tmp_path / "sandbox")
    url = await sandbox.start("127.0.0.1", 0)
    client = Client(url, read_retries=1, max_backoff=0.2)
    for name in LOCATIONS:
        await client.create(NODES, node_manifest(name))
    await client.create(SERVICES, service_manifest(), "default")
    await client.create(ENDPOINTSLICES, slice_manifest("echo", ["bj-1", "gz-1", "gz-2"]), "default")
    await client.create(ENDPOINTS, endpoints_manifest("echo", ["bj-1", "gz-1", "gz-2"]), "default")
    await client.create(SERVICES, service_manifest("plain", keys=None), "default")
    await client.create(ENDPOINTSLICES, slice_manifest("plain", ["bj-1", "gz-1"]), "default")
    env = Cluster(sandbox, client, tmp_path)
    try:
        yield env
    finally:
        await client.close()
        await env.sandbox.stop()


@contextlib.asynccontextmanager
async def running(client: Client, node: str, cache_dir: Path | None = None) -> AsyncIterator[Proxy]:
    proxy = Proxy(client, node, cache_dir=cache_dir, persist_interval=0.05)
    await proxy.start("127.0.0.1", 0)
    try:
        await asyncio.wait_for(proxy.ready.wait(), 20)
        yield proxy
    finally:
        await proxy.stop()


def seen_nodes(endpoints: list[Any]) -> list[str]:
    return sorted(ep.node for ep in endpoints)


async def test_each_node_sees_only_its_unit(cluster: Cluster) -> None:
    async with node_proxies(cluster.client, list(LOCATIONS)) as proxies:
        views = await endpoints_by_node(proxies, "default", "echo")
        plain = await endpoints_by_node(proxies, "default", "plain")
    assert {node: seen_nodes(eps) for node, eps in views.items()} == {
        "bj-1": ["bj-1"],
        "bj-2": ["bj-1"],
        "gz-1": ["gz-1", "gz-2"],
        "gz-2": ["gz-1", "gz-2"],
        "gz-3": ["gz-1", "gz-2"],
    }
    assert all(seen_nodes(eps) == ["bj-1", "gz-1"] for eps in plain.values()), "unannotated: untouched"


async def watch_lines(url: str, path: str, rv: str) -> AsyncIterator[dict[str, Any]]:
    params = {"watch": "true", "resourceVersion": rv, "allowWatchBookmarks": "true"}
    async with aiohttp.ClientSession() as session, session.get(url + path, params=params) as resp:
        assert resp.status == 200
        async for line in resp.content:
            yield orjson.loads(line)


async def next_change(stream: AsyncIterator[dict[str, Any]], within: float = 20) -> dict[str, Any]:
    """The next non-bookmark event of a watch (bounded)."""
    async with asyncio.timeout(within):
        async for event in stream:
            if event["type"] != "BOOKMARK":
                return event
    raise AssertionError("watch ended")


async def list_rv(url: str, path: str) -> str:
    async with aiohttp.ClientSession() as session, session.get(url + path) as resp:
        return str((await resp.json())["metadata"]["resourceVersion"])


SLICES = "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices"


async def test_scale_up_relabel_and_annotation_removal_reach_watchers(cluster: Cluster) -> None:
    async with running(cluster.client, "bj-2") as proxy:
        stream = watch_lines(proxy.url, SLICES, await list_rv(proxy.url, SLICES))
        # scale-up in beijing: one MODIFIED with the new local endpoint
        await cluster.set_slice_nodes(["bj-1", "gz-1", "gz-2", "bj-2"])
        event = await next_change(stream)
        assert (event["type"], event["object"]["metadata"]["name"]) == ("MODIFIED", "echo-abcde")
        assert sorted(ep["nodeName"] for ep in event["object"]["endpoints"]) == ["bj-1", "bj-2"]
        # scale-up in guangzhou only: nothing to send; the next event is the relabel below
        await cluster.set_slice_nodes(["bj-1", "gz-1", "gz-2", "bj-2", "gz-3"])
        await cluster.client.patch(NODES, "gz-3", {"metadata": {"labels": {"location": "beijing"}}})
        event = await next_change(stream)
        assert sorted(ep["nodeName"] for ep in event["object"]["endpoints"]) == ["bj-1", "bj-2", "gz-3"]
        # this node moves to guangzhou: re-filtered at once
        await cluster.client.patch(NODES, "bj-2", {"metadata": {"labels": {"location": "guangzhou"}}})
        event = await next_change(stream)
        assert sorted(ep["nodeName"] for ep in event["object"]["endpoints"]) == ["bj-2", "gz-1", "gz-2"]
        # annotation removed: every endpoint
        await cluster.client.patch(
            SERVICES, "echo", {"metadata": {"annotations": {"topologyKeys": None}}}, namespace="default"
        )
        event = await next_change(stream)
        assert len(event["object"]["endpoints"]) == 5
        await stream.aclose()


async def test_official_client_lists_and_watches(cluster: Cluster) -> None:
    kubernetes = pytest.importorskip("kubernetes")
    async with running(cluster.client, "gz-1") as proxy:
        config = kubernetes.client.Configuration(host=proxy.url)

        def list_and_watch() -> tuple[list[str], list[tuple[str, list[str]]]]:
            with kubernetes.client.ApiClient(config) as api_client:
                api = kubernetes.client.DiscoveryV1Api(api_client)
                listed = api.list_namespaced_endpoint_slice(
                    "default", label_selector="kubernetes.io/service-name=echo"
                )
                nodes = sorted(ep.node_name for item in listed.items for ep in item.endpoints)
                watch = kubernetes.watch.Watch()
                events = []
                for event in watch.stream(
                    api.list_namespaced_endpoint_slice,
                    "default",
                    resource_version=listed.metadata.resource_version,
                    timeout_seconds=15,
                ):
                    events.append((event["type"], sorted(ep.node_name for ep in event["object"].endpoints)))
                    watch.stop()
                return nodes, events

        task = asyncio.create_task(asyncio.to_thread(list_and_watch))
        await eventually(lambda: _has_watchers(proxy), message="official client watching")
        await cluster.set_slice_nodes(["bj-1", "gz-1", "gz-2", "gz-3"])
        nodes, events = await asyncio.wait_for(task, 30)
    assert nodes == ["gz-1", "gz-2"]
    assert events == [("MODIFIED", ["gz-1", "gz-2", "gz-3"])]


async def _has_watchers(proxy: Proxy) -> bool:
    return proxy.view.caches["endpointslices"].watchers > 0


@pytest.mark.kubectl
async def test_kubectl_get_and_watch(cluster: Cluster, tmp_path: Path) -> None:
    if not KUBECTL.exists() and not shutil.which("kubectl"):
        pytest.skip("kubectl not installed")
    kubectl = str(KUBECTL) if KUBECTL.exists() else str(shutil.which("kubectl"))
    async with running(cluster.client, "bj-1") as proxy:
        config = tmp_path / "proxy.kubeconfig"
        config.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [{"name": "p", "cluster": {"server": proxy.url}}],
                    "users": [{"name": "p", "user": {}}],
                    "contexts": [
                        {"name": "p", "context": {"cluster": "p", "user": "p", "namespace": "default"}}
                    ],
                    "current-context": "p",
                }
            )
        )
        template = '{.metadata.name} {.endpoints[*].nodeName}{"\\n"}'
        args = [
            kubectl,
            "--kubeconfig",
            str(config),
            "get",
            "endpointslices",
            "-w",
            "-o",
            f"jsonpath={template}",
        ]
        process = await asyncio.create_subprocess_exec(
            *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        try:
            assert process.stdout is not None
            lines: list[str] = []

            async def read_until(expected: str) -> None:
                async with asyncio.timeout(30):
                    while expected not in lines:
                        raw = await process.stdout.readline()  # type: ignore[union-attr]
                        assert raw, f"kubectl ended: {lines}"
                        lines.append(raw.decode().strip())

            await read_until("echo-abcde bj-1")
            await cluster.set_slice_nodes(["bj-1", "gz-1", "gz-2", "bj-2"])
            await read_until("echo-abcde bj-1 bj-2")
            forbidden = await asyncio.create_subprocess_exec(
                kubectl,
                "--kubeconfig",
                str(config),
                "delete",
                "endpointslice",
                "echo-abcde",
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            _, err = await asyncio.wait_for(forbidden.communicate(), 30)
            assert forbidden.returncode != 0
            assert b"Forbidden" in err or b"forbidden" in err
        finally:
            process.kill()
            await process.wait()
    assert await cluster.client.get(ENDPOINTSLICES, "echo-abcde", "default")


async def test_outage_keeps_view_and_watch_then_reconciles(cluster: Cluster) -> None:
    async with running(cluster.client, "gz-2") as proxy:
        stream = watch_lines(proxy.url, SLICES, await list_rv(proxy.url, SLICES))
        await cluster.sandbox.stop()
        assert seen_nodes(await endpoints_seen(proxy.url, "default", "echo")) == ["gz-1", "gz-2"]
        await cluster.restart_sandbox()
        await cluster.set_slice_nodes(["bj-1", "gz-1", "gz-2", "gz-3"])
        event = await next_change(stream, within=60)
        assert sorted(ep["nodeName"] for ep in event["object"]["endpoints"]) == ["gz-1", "gz-2", "gz-3"]
        await stream.aclose()


async def test_relist_after_partition_emits_exactly_the_differences(cluster: Cluster) -> None:
    async with running(cluster.client, "bj-2") as proxy:
        stream = watch_lines(proxy.url, SLICES, await list_rv(proxy.url, SLICES))
        faults = cluster.sandbox.faults
        faults.set(errors=[{"code": 500, "verb": "watch"}, {"code": 500, "verb": "list"}], drop_watches=True)
        await cluster.client.create(
            ENDPOINTSLICES, slice_manifest("echo", ["bj-2"], name="echo-second"), "default"
        )
        await cluster.client.delete(ENDPOINTSLICES, "plain-abcde", "default")
        await cluster.client.patch(NODES, "gz-1", {"metadata": {"labels": {"location": "beijing"}}})
        faults.set(compact=True)  # the informers cannot resume: they must relist and diff
        faults.clear()
        events: list[tuple[str, str, list[str]]] = []
        while len({name for name, _, _ in events}) < 3:
            event = await next_change(stream, within=60)
            nodes = sorted(ep["nodeName"] for ep in event["object"]["endpoints"])
            events.append((event["object"]["metadata"]["name"], event["type"], nodes))
        assert len(events) == 3, f"one event per difference, no noise: {events}"
        assert {name: (type_, nodes) for name, type_, nodes in events} == {
            "echo-second": ("ADDED", ["bj-2"]),
            "plain-abcde": ("DELETED", ["bj-1", "gz-1"]),
            "echo-abcde": ("MODIFIED", ["bj-1", "gz-1"]),
        }
        await stream.aclose()


async def test_restart_offline_serves_persisted_view(cluster: Cluster) -> None:
    cache_dir = cluster.tmp / "proxy-cache"
    async with running(cluster.client, "bj-1", cache_dir) as proxy:
        first = await endpoints_seen(proxy.url, "default", "echo")
    await cluster.sandbox.stop()
    offline = Client(cluster.client.base_url, read_retries=0, max_backoff=0.2)
    try:
        async with running(offline, "bj-1", cache_dir) as restarted:
            assert not restarted.synced
            assert await endpoints_seen(restarted.url, "default", "echo") == first
            rv = await list_rv(restarted.url, SLICES)
            await cluster.restart_sandbox()
            await eventually(lambda: _synced(restarted), timeout=60, message="proxy resynced after outage")
            assert await list_rv(restarted.url, SLICES) == rv, "same upstream state: no spurious events"
            stream = watch_lines(restarted.url, SLICES, rv)
            await cluster.set_slice_nodes(["bj-1", "bj-2"])
            event = await next_change(stream)
            assert sorted(ep["nodeName"] for ep in event["object"]["endpoints"]) == ["bj-1", "bj-2"]
            await stream.aclose()
    finally:
        await offline.close()


async def _synced(proxy: Proxy) -> bool:
    return proxy.synced


async def test_cli_serves_and_stops_cleanly(cluster: Cluster, tmp_path: Path) -> None:
    kubeconfig = cluster.sandbox.write_kubeconfig(tmp_path / "kubeconfig")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "servicegroup",
        "proxy",
        "--kubeconfig",
        str(kubeconfig),
        "--node",
        "gz-3",
        "--listen",
        f"127.0.0.1:{port}",
        "--cache-dir",
        str(tmp_path / "cache"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "NODE_NAME": ""},
    )
    try:
        url = f"http://127.0.0.1:{port}"

        async def listed() -> list[str]:
            try:
                return seen_nodes(await endpoints_seen(url, "default", "echo"))
            except Exception as err:
                raise AssertionError(str(err)) from err

        assert await eventually(listed, timeout=30) == ["gz-1", "gz-2"]
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, err.decode()
    assert (tmp_path / "cache" / "view.json").exists()
