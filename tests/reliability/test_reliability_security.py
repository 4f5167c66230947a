"""Scenario 7: security.

* The topology proxy refuses every write and every resource outside its allow-list: verbs x
  resources enumerated (secrets, pods/exec, namespaced writes...), and it never forwards anything
  upstream (its own upstream traffic, seen through a tap, is list/watch of what it serves).
* An RBAC denial of a controller's write is surfaced (condition + Event naming the 403) and retried
  with exponential backoff, not hammered. The sandbox has no authorization and its fault table
  cannot inject 403, so the tap in front of the manager answers 403 for the denied calls.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import orjson
import pytest
from reliability_scenarios import create_objects, sandbox_running, traffic_objects
from reliability_support import Tap
from reliability_worlds import docs_world, install_crds

from servicegroup.grid.kinds import DEPLOYMENT_GRIDS
from servicegroup.kube.client import Client
from servicegroup.kube.conditions import get_condition
from servicegroup.kube.resources import EVENTS
from servicegroup.manager import Manager
from servicegroup.sandbox import Sandbox
from servicegroup.site.controller import NODEUNITS
from servicegroup.traffic.proxy import Proxy
from waits import eventually

pytestmark = pytest.mark.timeout(120)

SERVED = {  # resource -> (cluster-wide path, namespaced path or None, an existing name)
    "services": ("/api/v1/services", "/api/v1/namespaces/default/services", "echo"),
    "endpoints": ("/api/v1/endpoints", "/api/v1/namespaces/default/endpoints", "echo"),
    "nodes": ("/api/v1/nodes", None, "bj-1"),
    "namespaces": ("/api/v1/namespaces", None, "default"),
    "endpointslices": (
        "/apis/discovery.k8s.io/v1/endpointslices",
        "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices",
        "echo-a",
    ),
}
NOT_SERVED = [
    "/api/v1/namespaces/default/secrets",
    "/api/v1/secrets",
    "/api/v1/namespaces/default/configmaps",
    "/api/v1/namespaces/default/pods",
    "/api/v1/pods",
    "/api/v1/namespaces/default/events",
    "/api/v1/namespaces/default/serviceaccounts",
    "/apis/apps/v1/namespaces/default/deployments",
    "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases",
    "/apis/superedge.io/v1/namespaces/default/deploymentgrids",
    "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
    "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
]
SUBRESOURCES = [
    "/api/v1/namespaces/default/pods/echo-0/exec?command=sh&stdin=true",
    "/api/v1/namespaces/default/pods/echo-0/attach",
    "/api/v1/namespaces/default/pods/echo-0/portforward",
    "/api/v1/namespaces/default/pods/echo-0/log",
    "/api/v1/namespaces/default/serviceaccounts/default/token",
    "/api/v1/nodes/bj-1/proxy/metrics",
    "/api/v1/nodes/bj-1/status",
    "/api/v1/namespaces/default/services/echo/proxy/",
    "/api/v1/namespaces/default/services/echo/status",
    "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices/echo-a/status",
]
WRITES = ["POST", "PUT", "PATCH", "DELETE"]
BODY = b'{"apiVersion":"v1","kind":"Secret","metadata":{"name":"x"}}'


@dataclass
class ProxyUnderTest:
    proxy: Proxy
    tap: Tap


@pytest.fixture
async def proxied() -> AsyncIterator[ProxyUnderTest]:
    async with sandbox_running(71, simulate=False) as sandbox:
        async with Client(sandbox.url) as client:
            for res, obj in traffic_objects():
                await client.create(res, obj, obj["metadata"].get("namespace"))
        tap = Tap(sandbox.url, "proxy")
        await tap.start()
        upstream = Client(tap.url)
        proxy = Proxy(upstream, "bj-1")
        await proxy.start("127.0.0.1", 0)
        await proxy.ready.wait()
        try:
            yield ProxyUnderTest(proxy, tap)
        finally:
            await proxy.stop()
            await upstream.close()
            await tap.stop()


def requests() -> list[tuple[str, str, bool]]:
    """(method, path, allowed) for every verb x resource; only reads of served resources pass."""
    out = []
    for cluster, namespaced, name in SERVED.values():
        for base in filter(None, (cluster, namespaced)):
            out += [("GET", base, True), ("GET", base + "?watch=true&timeoutSeconds=1", True)]
            out += [(m, base, False) for m in ("POST", "DELETE")]  # create, deletecollection
        item = f"{namespaced or cluster}/{name}"
        out += [("GET", item, True)] + [(m, item, False) for m in WRITES]
    for base in NOT_SERVED:
        out += [("GET", base, False), ("GET", base + "?watch=true", False)]
        out += [(m, base, False) for m in ("POST", "DELETE")]
        out += [(m, f"{base}/x", False) for m in ["GET", *WRITES]]
    out += [(m, path, False) for path, m in itertools.product(SUBRESOURCES, ["GET", *WRITES])]
    return out


async def test_proxy_refuses_every_write_and_every_resource_outside_its_allow_list(
    proxied: ProxyUnderTest,
) -> None:
    wrong = []
    async with aiohttp.ClientSession() as session:
        for method, path, allowed in requests():
            headers = {
                "Content-Type": "application/merge-patch+json" if method == "PATCH" else "application/json"
            }
            async with session.request(method, proxied.proxy.url + path, data=BODY, headers=headers) as resp:
                status = resp.status
                body = await resp.json(content_type=None) if status == 403 else None
            if allowed and status not in (200, 404):  # 404: a name the view does not hold
                wrong.append(f"{method} {path}: {status}, expected 200")
            if not allowed and (status != 403 or body.get("reason") != "Forbidden"):
                wrong.append(f"{method} {path}: {status}, expected 403 Forbidden")
    assert wrong == [], "\n".join(wrong)
    upstream = Counter((r.method, r.path.rsplit("/", 1)[-1]) for r in proxied.tap.log)
    assert {method for method, _ in upstream} == {"GET"}, f"the proxy forwarded {upstream}"
    assert {plural for _, plural in upstream} == {
        "services",
        "endpoints",
        "nodes",
        "namespaces",
        "endpointslices",
    }


# -- RBAC denial of a controller's writes ---------------------------------------------------------------


@dataclass
class Denied:
    sandbox: Sandbox
    client: Client
    tap: Tap


@pytest.fixture
async def denied_manager(request: pytest.FixtureRequest) -> AsyncIterator[Denied]:
    """The docs' cluster and a manager whose calls matching `request.param` are answered 403."""
    async with sandbox_running(72) as sandbox:
        client = Client(sandbox.url)
        await install_crds(client)
        await create_objects(client, docs_world().objects)
        tap = Tap(sandbox.url, "manager")
        await tap.start()
        tap.deny = request.param
        manager = Manager(Client(tap.url), ["grid", "site"])
        await manager.start()
        try:
            yield Denied(sandbox, client, tap)
        finally:
            await manager.stop()
            await manager.client.close()
            await tap.stop()
            await client.close()


def assert_backs_off(tap: Tap) -> None:
    """Retries of each denied call back off exponentially (5 ms doubling): at most about
    log2(span / 5 ms) + 2 attempts over the span they cover, never a tight loop."""
    by_path: dict[str, list[float]] = {}
    for r in tap.log:
        if r.status == 403:  # a create's target is in its body
            name = (orjson.loads(r.body).get("metadata") or {}).get("name", "") if r.method == "POST" else ""
            by_path.setdefault(f"{r.method} {r.path} {name}", []).append(r.started)
    assert by_path
    for path, times in by_path.items():
        span = max(times[-1] - times[0], 0.005)
        assert len(times) <= math.log2(span / 0.005) + 3, f"{path}: {len(times)} attempts in {span:.2f}s"


async def _denied_at_least(tap: Tap, n: int) -> bool:
    return tap.denied >= n


def deny_deployment_creates(method: str, path: str) -> bool:
    return method == "POST" and path.endswith("/deployments")


def deny_node_patches(method: str, path: str) -> bool:
    return method == "PATCH" and path.startswith("/api/v1/nodes/")


@pytest.mark.parametrize("denied_manager", [deny_deployment_creates], indirect=True)
async def test_grid_surfaces_a_403_and_backs_off(denied_manager: Denied) -> None:
    client, tap = denied_manager.client, denied_manager.tap

    async def degraded() -> dict | None:
        grid = await client.get(DEPLOYMENT_GRIDS, "deploymentgrid-demo", "default")
        found = get_condition((grid.get("status") or {}).get("conditions"), "Degraded")
        return found if found and "403 Forbidden" in found["message"] else None

    condition = await eventually(degraded, timeout=30)
    assert condition["status"] == "True" and condition["reason"] == "ApplyFailed"
    assert "is forbidden" in condition["message"]

    async def event() -> bool:
        items = (await client.list(EVENTS, "default"))["items"]
        return any(e["reason"] == "ApplyFailed" and "403 Forbidden" in e["message"] for e in items)

    await eventually(event, timeout=30)
    await eventually(lambda: _denied_at_least(tap, 30), timeout=60)
    assert_backs_off(tap)


@pytest.mark.parametrize("denied_manager", [deny_node_patches], indirect=True)
async def test_site_surfaces_a_403_on_node_labelling(denied_manager: Denied) -> None:
    client, tap = denied_manager.client, denied_manager.tap
    await eventually(lambda: _denied_at_least(tap, 10), timeout=60)
    assert_backs_off(tap)

    async def surfaced() -> bool:
        unit = await client.get(NODEUNITS, "beijing")
        conditions = (unit.get("status") or {}).get("conditions") or []
        events = (await client.list(EVENTS, "default"))["items"]
        return any(
            "403" in c.get("message", "") or "orbidden" in c.get("message", "") for c in conditions
        ) or any("orbidden" in e["message"] for e in events)

    await eventually(surfaced, timeout=15, message="the 403 surfaced on the NodeUnit or as an Event")
