"""The proxy over a simulated cluster (`Sandbox(simulate=True)`: scheduler, kubelets, EndpointSlice
and Endpoints controllers): real pod churn, kube-proxy's view and CoreDNS's view per unit.

CoreDNS's kubernetes plugin (`kubernetes cluster.local { endpoint http://127.0.0.1:51006 }`)
checks /version and the discovery.k8s.io/v1 resource list, then lists and watches Services,
EndpointSlices and Namespaces with no label selector, asking for protobuf with `*/*` as fallback.
No CoreDNS binary is installable here (not in Debian, PyPI or npm), so the test makes exactly
those requests and checks that a headless topology Service only yields local pod IPs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from servicegroup.kube.client import Client
from servicegroup.kube.resources import DEPLOYMENTS, NODES, SERVICES
from servicegroup.sandbox import Sandbox
from servicegroup.traffic.demo import endpoints_by_node, node_proxies
from waits import eventually

from .test_proxy_sandbox import LOCATIONS, node_manifest, service_manifest

COREDNS_ACCEPT = "application/vnd.kubernetes.protobuf, */*"
KUBE_PROXY_SELECTOR = "!service.kubernetes.io/headless,!service.kubernetes.io/service-proxy-name"


def deployment(unit: str, replicas: int) -> dict[str, Any]:
    labels = {"app": "echo", "unit": unit}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": f"echo-{unit}", "namespace": "default"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "nodeSelector": {"location": unit},
                    "containers": [{"name": "echo", "image": "echo", "ports": [{"containerPort": 8080}]}],
                },
            },
        },
    }


def headless_manifest() -> dict[str, Any]:
    manifest = service_manifest("echo-headless")
    manifest["spec"] = {**manifest["spec"], "clusterIP": "None", "selector": {"app": "echo"}}
    return manifest


@pytest.fixture
async def simulated() -> AsyncIterator[Client]:
    sandbox = Sandbox(simulate=True)
    url = await sandbox.start("127.0.0.1", 0)
    client = Client(url)
    try:
        for name in LOCATIONS:
            await client.create(NODES, node_manifest(name))
        echo = service_manifest()
        echo["spec"]["selector"] = {"app": "echo"}
        await client.create(SERVICES, echo, "default")
        await client.create(SERVICES, headless_manifest(), "default")
        await client.create(DEPLOYMENTS, deployment("beijing", 1), "default")
        await client.create(DEPLOYMENTS, deployment("guangzhou", 2), "default")
        yield client
    finally:
        await client.close()
        await sandbox.stop()


async def test_scale_up_reaches_only_the_units_proxies(simulated: Client) -> None:
    async with node_proxies(simulated, ["bj-1", "gz-3"]) as proxies:

        async def sizes() -> dict[str, int]:
            views = await endpoints_by_node(proxies, "default", "echo")
            return {node: len(eps) for node, eps in views.items()}

        async def settled(expected: dict[str, int]) -> bool:
            assert await sizes() == expected
            return True

        await eventually(lambda: settled({"bj-1": 1, "gz-3": 2}), message="one beijing, two guangzhou pods")
        views = await endpoints_by_node(proxies, "default", "echo")
        assert all(LOCATIONS[str(ep.node)] == "beijing" for ep in views["bj-1"])
        assert all(LOCATIONS[str(ep.node)] == "guangzhou" for ep in views["gz-3"])
        await simulated.patch(DEPLOYMENTS, "echo-beijing", {"spec": {"replicas": 3}}, namespace="default")
        await eventually(lambda: settled({"bj-1": 3, "gz-3": 2}), message="beijing scaled to three")


async def test_coredns_view_of_headless_service_is_per_unit(simulated: Client) -> None:
    async with node_proxies(simulated, ["gz-1"]) as proxies, aiohttp.ClientSession() as session:
        url = proxies["gz-1"].url
        headers = {"Accept": COREDNS_ACCEPT}

        async def get(path: str, **params: str) -> Any:
            async with session.get(url + path, params=params, headers=headers) as resp:
                assert resp.status == 200, await resp.text()
                assert resp.content_type == "application/json"
                return await resp.json()

        assert (await get("/version"))["major"] == "1"
        assert "endpointslices" in {r["name"] for r in (await get("/apis/discovery.k8s.io/v1"))["resources"]}

        async def headless_ips() -> set[str]:
            slices = await get("/apis/discovery.k8s.io/v1/endpointslices", resourceVersion="0")
            ours = [
                s
                for s in slices["items"]
                if s["metadata"]["labels"]["kubernetes.io/service-name"] == "echo-headless"
            ]
            assert ours, "headless slices are served to CoreDNS"
            nodes = {ep["nodeName"] for s in ours for ep in s["endpoints"]}
            ips = {address for s in ours for ep in s["endpoints"] for address in ep["addresses"]}
            assert nodes and all(LOCATIONS[n] == "guangzhou" for n in nodes), nodes
            assert len(ips) == 2
            return ips

        await eventually(headless_ips, message="two guangzhou pod IPs for the headless service")
        namespaces = await get("/api/v1/namespaces")
        assert "default" in {n["metadata"]["name"] for n in namespaces["items"]}
        services = await get("/api/v1/services")
        assert {"echo", "echo-headless"} <= {s["metadata"]["name"] for s in services["items"]}
        kube_proxy = await get("/apis/discovery.k8s.io/v1/endpointslices", labelSelector=KUBE_PROXY_SELECTOR)
        assert "echo-headless" not in {
            s["metadata"]["labels"]["kubernetes.io/service-name"] for s in kube_proxy["items"]
        }
