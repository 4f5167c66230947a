"""Demo hook: one Service's endpoints as seen from several nodes, through real proxies.

    async with node_proxies(client, ["bj-1", "gz-1"]) as proxies:
        views = await endpoints_by_node(proxies, "default", "servicegrid-demo-svc")
    # {"bj-1": [Endpoint("10.244.0.5", "bj-1", True), ...], "gz-1": [...]}

Each proxy runs in-process on a free loopback port and is read exactly as kube-proxy reads it (an
HTTP list of EndpointSlices by the `kubernetes.io/service-name` label), so the demo shows what
kube-proxy on that node would program.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import NamedTuple

from servicegroup.kube.client import Client
from servicegroup.kube.resources import ENDPOINTSLICES
from servicegroup.traffic.filters import SERVICE_NAME_LABEL
from servicegroup.traffic.proxy import Proxy


class Endpoint(NamedTuple):
    """One endpoint address as a node's kube-proxy sees it."""

    address: str
    node: str | None
    ready: bool


@asynccontextmanager
async def node_proxies(
    client: Client, nodes: Sequence[str], *, sync_timeout: float = 30.0
) -> AsyncIterator[dict[str, Proxy]]:
    """Run one synced proxy per node on 127.0.0.1 (free ports) for the duration of the block."""
    async with AsyncExitStack() as stack:
        proxies: dict[str, Proxy] = {}
        for node in nodes:
            proxy = Proxy(client, node)
            await proxy.start("127.0.0.1", 0)
            stack.push_async_callback(proxy.stop)
            proxies[node] = proxy
        async with asyncio.timeout(sync_timeout):
            await asyncio.gather(*(proxy.ready.wait() for proxy in proxies.values()))
        yield proxies


async def endpoints_seen(url: str, namespace: str, service: str) -> list[Endpoint]:
    """The endpoints of a Service listed through the proxy at `url` (sorted by address)."""
    async with Client(url) as reader:
        listed = await reader.list(
            ENDPOINTSLICES, namespace, label_selector=f"{SERVICE_NAME_LABEL}={service}"
        )
    found = [
        Endpoint(address, ep.get("nodeName"), (ep.get("conditions") or {}).get("ready") is not False)
        for item in listed.get("items") or []
        for ep in item.get("endpoints") or []
        for address in ep.get("addresses") or []
    ]
    return sorted(found)


async def endpoints_by_node(
    proxies: dict[str, Proxy], namespace: str, service: str
) -> dict[str, list[Endpoint]]:
    """`endpoints_seen` through every proxy, keyed by node name."""
    return {node: await endpoints_seen(proxy.url, namespace, service) for node, proxy in proxies.items()}
