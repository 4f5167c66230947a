"""The proxy's HTTP contract, over a real socket: lists, gets, watches with resume/410/bookmarks/
timeout, selectors, namespaced paths, discovery, content negotiation and the read-only rule.

The view is fed directly through TopologySync (no API server), so these tests pin the HTTP layer;
tests/traffic/test_proxy_sandbox.py runs the whole proxy against the sandbox.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp.test_utils import TestServer

from servicegroup.kube.resources import ENDPOINTSLICES, NODES
from servicegroup.traffic.server import ProxyServer, ServerOptions, accepts_json
from servicegroup.traffic.sync import ServedView, TopologySync
from servicegroup.traffic.watchcache import ResourceVersions
from waits import eventually

from .test_sync import NODES_LIST, endpoints, eslice, node, service

SLICES_PATH = "/apis/discovery.k8s.io/v1/endpointslices"


class Env:
    def __init__(self, sync: TopologySync, url: str, session: aiohttp.ClientSession) -> None:
        self.sync, self.url, self.session = sync, url, session

    async def get(self, path: str, **params: str) -> tuple[int, Any]:
        async with self.session.get(self.url + path, params=params) as resp:
            return resp.status, orjson.loads(await resp.read())

    async def watch(self, path: str, count: int, **params: str) -> list[dict[str, Any]]:
        """Read `count` events (or until the stream ends) from a watch."""
        events: list[dict[str, Any]] = []
        async with self.session.get(self.url + path, params={"watch": "true", **params}) as resp:
            assert resp.status == 200
            async with asyncio.timeout(10):
                while len(events) < count:
                    line = await resp.content.readline()
                    if not line:
                        break
                    events.append(orjson.loads(line))
        return events


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    view = ServedView(ResourceVersions(), history_limit=5)
    sync = TopologySync("bj-1", view)
    sync.resync(
        {
            "nodes": NODES_LIST,
            "services": [service(), service("plain", keys=None)],
            "endpointslices": [
                eslice("svc-1", "bj-2", "gz-1"),
                eslice("plain-1", "bj-2", "gz-1", service_name="plain"),
            ],
            "endpoints": [endpoints("svc", "bj-2", "gz-1")],
            "namespaces": [{"metadata": {"name": "default"}}],
        }
    )
    ready = asyncio.Event()
    ready.set()
    server = ProxyServer(view, ready, ServerOptions(bookmark_interval=0.05))
    async with TestServer(server.app) as test_server, aiohttp.ClientSession() as session:
        yield Env(sync, str(test_server.make_url("")), session)


def names(items: list[dict[str, Any]]) -> list[str]:
    return [item["metadata"]["name"] for item in items]


async def test_list_is_filtered_and_carries_our_rv(env: Env) -> None:
    status, body = await env.get("/apis/discovery.k8s.io/v1/endpointslices")
    assert status == 200
    assert body["kind"] == "EndpointSliceList"
    assert body["metadata"]["resourceVersion"] == str(env.sync.served.rvs.current)
    by_name = {item["metadata"]["name"]: item for item in body["items"]}
    assert [ep["nodeName"] for ep in by_name["svc-1"]["endpoints"]] == ["bj-2"]
    assert [ep["nodeName"] for ep in by_name["plain-1"]["endpoints"]] == ["bj-2", "gz-1"]


async def test_namespaced_paths_are_filtered_too(env: Env) -> None:
    _, body = await env.get("/apis/discovery.k8s.io/v1/namespaces/default/endpointslices")
    assert sorted(names(body["items"])) == ["plain-1", "svc-1"]
    _, other = await env.get("/apis/discovery.k8s.io/v1/namespaces/other/endpointslices")
    assert other["items"] == []
    status, one = await env.get("/apis/discovery.k8s.io/v1/namespaces/default/endpointslices/svc-1")
    assert status == 200
    assert [ep["nodeName"] for ep in one["endpoints"]] == ["bj-2"]
    _, eps = await env.get("/api/v1/namespaces/default/endpoints/svc")
    assert [a["nodeName"] for a in eps["subsets"][0]["addresses"]] == ["bj-2"]


async def test_get_missing_is_404_status(env: Env) -> None:
    status, body = await env.get("/api/v1/nodes/ghost")
    assert (status, body["kind"], body["reason"]) == (404, "Status", "NotFound")


async def test_label_and_field_selectors(env: Env) -> None:
    _, body = await env.get(
        "/api/v1/services",
        labelSelector="!service.kubernetes.io/headless,!service.kubernetes.io/service-proxy-name",
    )
    assert sorted(names(body["items"])) == ["plain", "svc"]
    _, nodes = await env.get("/api/v1/nodes", fieldSelector="metadata.name=gz-1")
    assert names(nodes["items"]) == ["gz-1"]
    _, nodes = await env.get("/api/v1/nodes", fieldSelector="metadata.name!=gz-1")
    assert names(nodes["items"]) == ["bj-1", "bj-2"]
    status, bad = await env.get("/api/v1/nodes", fieldSelector="spec.unschedulable=true")
    assert (status, bad["reason"]) == (400, "BadRequest")
    status, bad = await env.get("/api/v1/nodes", labelSelector="a in (")
    assert status == 400


async def test_watch_from_rv_gets_refilter_events(env: Env) -> None:
    rv = env.sync.served.rvs.current
    env.sync.changed(NODES, node("bj-1", "beijing"), node("bj-1", "guangzhou"))
    events = await env.watch("/apis/discovery.k8s.io/v1/endpointslices", 1, resourceVersion=str(rv))
    assert events[0]["type"] == "MODIFIED"
    assert [ep["nodeName"] for ep in events[0]["object"]["endpoints"]] == ["gz-1"]
    assert int(events[0]["object"]["metadata"]["resourceVersion"]) > rv


async def test_watch_without_rv_starts_with_added_events(env: Env) -> None:
    events = await env.watch("/apis/discovery.k8s.io/v1/namespaces/default/endpointslices", 2)
    assert {(e["type"], e["object"]["metadata"]["name"]) for e in events} == {
        ("ADDED", "svc-1"),
        ("ADDED", "plain-1"),
    }
    assert events[0]["object"]["kind"] == "EndpointSlice"


async def test_watch_with_too_old_rv_answers_expired(env: Env) -> None:
    for i in range(6):
        env.sync.changed(ENDPOINTSLICES, None, eslice(f"extra-{i}", "bj-1"))
    events = await env.watch("/apis/discovery.k8s.io/v1/endpointslices", 1, resourceVersion="1")
    assert events[0]["type"] == "ERROR"
    assert (events[0]["object"]["code"], events[0]["object"]["reason"]) == (410, "Expired")


async def test_watch_bookmarks_and_timeout(env: Env) -> None:
    events = await env.watch(
        "/api/v1/nodes",
        100,
        resourceVersion=str(env.sync.served.rvs.current),
        allowWatchBookmarks="true",
        timeoutSeconds="1",
    )
    assert events, "bookmarks arrive while nothing changes"
    assert {e["type"] for e in events} == {"BOOKMARK"}
    assert events[-1]["object"]["metadata"]["resourceVersion"] == str(env.sync.served.rvs.current)


async def test_watch_single_object_by_field_selector(env: Env) -> None:
    rv = str(env.sync.served.rvs.current)
    relabelled = node("bj-2", "beijing")
    relabelled["metadata"]["labels"]["disk"] = "ssd"
    env.sync.changed(NODES, node("gz-1", "guangzhou"), node("gz-1", "south"))
    env.sync.changed(NODES, node("bj-2", "beijing"), relabelled)
    events = await env.watch("/api/v1/nodes", 1, resourceVersion=rv, fieldSelector="metadata.name=bj-2")
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("MODIFIED", "bj-2")]


async def test_send_initial_events_ends_with_marked_bookmark(env: Env) -> None:
    events = await env.watch("/api/v1/namespaces", 2, sendInitialEvents="true", allowWatchBookmarks="true")
    assert events[0]["type"] == "ADDED"
    assert events[1]["type"] == "BOOKMARK"
    assert events[1]["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}


FORBIDDEN = [
    ("POST", "/api/v1/namespaces/default/events"),
    ("POST", "/apis/events.k8s.io/v1/namespaces/default/events"),
    ("PUT", "/api/v1/namespaces/default/services/svc"),
    ("DELETE", "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices/svc-1"),
    ("PATCH", "/api/v1/nodes/bj-1"),
    ("GET", "/api/v1/secrets"),
    ("GET", "/api/v1/namespaces/kube-system/secrets/token"),
    ("GET", "/api/v1/pods"),
    ("GET", "/apis/apps/v1/deployments"),
    ("GET", "/api/v1/namespaces/default/services/svc/proxy"),
    ("GET", "/api/v1/nodes/bj-1/proxy/metrics"),
]


@pytest.mark.parametrize(("method", "path"), FORBIDDEN, ids=[f"{m} {p}" for m, p in FORBIDDEN])
async def test_everything_else_is_forbidden(env: Env, method: str, path: str) -> None:
    async with env.session.request(method, env.url + path, data=b"{}") as resp:
        body = orjson.loads(await resp.read())
    assert resp.status == 403
    assert (body["kind"], body["reason"], body["code"]) == ("Status", "Forbidden", 403)


async def test_discovery_lists_only_served_resources(env: Env) -> None:
    _, core = await env.get("/api/v1")
    assert sorted(r["name"] for r in core["resources"]) == ["endpoints", "namespaces", "nodes", "services"]
    assert all(r["verbs"] == ["get", "list", "watch"] for r in core["resources"])
    _, groups = await env.get("/apis")
    assert [g["name"] for g in groups["groups"]] == ["discovery.k8s.io"]
    _, discovery = await env.get("/apis/discovery.k8s.io/v1")
    assert [r["name"] for r in discovery["resources"]] == ["endpointslices"]
    _, version = await env.get("/version")
    assert version["major"] == "1"
    _, api = await env.get("/api")
    assert api["versions"] == ["v1"]


ACCEPT_CASES = {
    "empty": ("", True),
    "json": ("application/json", True),
    "protobuf then json (kube-proxy default)": (
        "application/vnd.kubernetes.protobuf, application/json",
        True,
    ),
    "protobuf only": ("application/vnd.kubernetes.protobuf", False),
    "table then json (kubectl get)": ("application/json;as=Table;v=v1;g=meta.k8s.io,application/json", True),
    "table only": ("application/json;as=Table;v=v1;g=meta.k8s.io", False),
    "anything": ("*/*", True),
}


@pytest.mark.parametrize(("accept", "ok"), ACCEPT_CASES.values(), ids=ACCEPT_CASES.keys())
def test_accepts_json(accept: str, ok: bool) -> None:
    assert accepts_json(accept) is ok


async def test_protobuf_only_client_gets_406(env: Env) -> None:
    headers = {"Accept": "application/vnd.kubernetes.protobuf"}
    async with env.session.get(env.url + "/api/v1/services", headers=headers) as resp:
        assert resp.status == 406


async def test_slow_client_is_cut_cleanly_and_resumes_without_gaps() -> None:
    view = ServedView(ResourceVersions())
    sync = TopologySync("bj-1", view)
    sync.resync({"nodes": NODES_LIST, "services": [service()]})
    ready = asyncio.Event()
    ready.set()
    server = ProxyServer(view, ready, ServerOptions(max_backlog=5))
    async with TestServer(server.app) as test_server, aiohttp.ClientSession() as session:
        url = str(test_server.make_url(SLICES_PATH))
        start = str(view.rvs.current)
        async with session.get(url, params={"watch": "true", "resourceVersion": start}) as resp:
            await eventually(lambda: _watching(view), message="watch open")
            for i in range(50):  # far more than the client is allowed to lag
                sync.changed(ENDPOINTSLICES, None, eslice(f"s-{i}", "bj-2"))
            async with asyncio.timeout(10):
                cut = [orjson.loads(line) for line in (await resp.read()).splitlines() if line]
        last = cut[-1]["object"]["metadata"]["resourceVersion"] if cut else start
        async with session.get(url, params={"watch": "true", "resourceVersion": last}) as resp:
            async with asyncio.timeout(10):
                rest = []
                while len(cut) + len(rest) < 50:
                    rest.append(orjson.loads(await resp.content.readline()))
    names_seen = [e["object"]["metadata"]["name"] for e in cut + rest]
    assert names_seen == [f"s-{i}" for i in range(50)], "every event exactly once, in order"


async def _watching(view: ServedView) -> bool:
    return view.cache(ENDPOINTSLICES).watchers > 0


@pytest.mark.parametrize(
    "params", [{"resourceVersion": "abc"}, {"timeoutSeconds": "soon"}, {"labelSelector": "a in ("}]
)
async def test_bad_watch_parameters_are_400(env: Env, params: dict[str, str]) -> None:
    status, body = await env.get("/api/v1/nodes", watch="true", **params)
    assert (status, body["reason"]) == (400, "BadRequest")
