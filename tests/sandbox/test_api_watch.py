"""Watch semantics: resume from a resourceVersion, synthetic ADDED, selectors, bookmarks, 410, timeouts."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from servicegroup.sandbox import Sandbox

CMS = "/api/v1/namespaces/default/configmaps"


async def collect(api: Any, params: dict[str, str], count: int, path: str = CMS) -> list[dict[str, Any]]:
    """Read `count` watch events (bounded by the test timeout and a server-side timeoutSeconds)."""
    events = []
    params = {"watch": "1", "timeoutSeconds": "10"} | params
    async with api.session.get(api.url + path, params=params) as resp:
        assert resp.status == 200
        async for line in resp.content:
            if line.strip():
                events.append(orjson.loads(line))
            if len(events) >= count:
                break
    return events


async def test_watch_from_resource_version_sees_only_later_events(api: Any, make: Any) -> None:
    await api.ok("POST", CMS, make.configmap("before"))
    listed = await api.ok("GET", CMS)
    rv = listed["metadata"]["resourceVersion"]
    await api.ok("POST", CMS, make.configmap("after"))
    await api.ok("DELETE", f"{CMS}/before")
    events = await collect(api, {"resourceVersion": rv}, 2)
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("ADDED", "after"),
        ("DELETED", "before"),
    ]
    assert int(events[1]["object"]["metadata"]["resourceVersion"]) > int(
        events[0]["object"]["metadata"]["resourceVersion"]
    )


async def test_watch_without_resource_version_starts_with_current_state(api: Any, make: Any) -> None:
    await api.ok("POST", CMS, make.configmap("a"))
    await api.ok("POST", CMS, make.configmap("b"))
    task = asyncio.create_task(collect(api, {}, 3))
    # The third event is live: keep writing until the watcher has had its state and sees a change.
    n = 0
    while not task.done():
        n += 1
        await api.ok(
            "PATCH", f"{CMS}/a", {"data": {"n": str(n)}}, content_type="application/merge-patch+json"
        )
        await asyncio.wait({task}, timeout=0.1)
    events = task.result()
    assert {(e["type"], e["object"]["metadata"]["name"]) for e in events[:2]} == {
        ("ADDED", "a"),
        ("ADDED", "b"),
    }
    assert (events[2]["type"], events[2]["object"]["metadata"]["name"]) == ("MODIFIED", "a")


async def test_object_leaving_the_selector_is_deleted_for_the_watcher(api: Any, make: Any) -> None:
    created = await api.ok("POST", CMS, make.configmap("a", {"team": "x"}))
    rv = created["metadata"]["resourceVersion"]
    await api.ok(
        "PATCH",
        f"{CMS}/a",
        {"metadata": {"labels": {"team": "y"}}},
        content_type="application/merge-patch+json",
    )
    await api.ok(
        "PATCH",
        f"{CMS}/a",
        {"metadata": {"labels": {"team": "x"}}},
        content_type="application/merge-patch+json",
    )
    events = await collect(api, {"resourceVersion": rv, "labelSelector": "team=x"}, 2)
    assert [e["type"] for e in events] == ["DELETED", "ADDED"]
    field = await collect(api, {"resourceVersion": rv, "fieldSelector": "metadata.name=a"}, 2)
    assert [e["type"] for e in field] == ["MODIFIED", "MODIFIED"]


async def test_bookmarks_carry_the_current_resource_version(api: Any, sandbox: Sandbox, make: Any) -> None:
    created = await api.ok("POST", CMS, make.configmap("a"))
    rv = created["metadata"]["resourceVersion"]
    events = await collect(api, {"resourceVersion": rv, "allowWatchBookmarks": "true"}, 1)
    assert events[0]["type"] == "BOOKMARK"
    assert events[0]["object"]["kind"] == "ConfigMap"
    assert int(events[0]["object"]["metadata"]["resourceVersion"]) >= int(rv)


async def test_timeout_seconds_ends_the_stream(api: Any) -> None:
    async with api.session.get(
        api.url + CMS, params={"watch": "true", "timeoutSeconds": "1", "resourceVersion": "1"}
    ) as r:
        body = await asyncio.wait_for(r.read(), 10)
    assert body == b""


async def test_compacted_resource_version_is_410_expired(make: Any) -> None:
    sb = Sandbox(compaction_window=5)
    await sb.start("127.0.0.1", 0)
    try:
        import aiohttp

        from servicegroup.sandbox.resources import BUILTIN_TYPES

        cms = next(t for t in BUILTIN_TYPES if t.plural == "configmaps")
        first = sb.storage.create(
            cms, {**make.configmap("c0"), "metadata": {"name": "c0", "namespace": "default"}}
        )
        for i in range(1, 10):
            sb.storage.create(
                cms, {**make.configmap(f"c{i}"), "metadata": {"name": f"c{i}", "namespace": "default"}}
            )
        async with aiohttp.ClientSession() as session:
            params = {"watch": "1", "resourceVersion": first["metadata"]["resourceVersion"]}
            async with session.get(sb.url + CMS, params=params) as resp:
                lines = [orjson.loads(line) for line in (await resp.read()).splitlines() if line.strip()]
            assert len(lines) == 1 and lines[0]["type"] == "ERROR"
            status = lines[0]["object"]
            assert (status["kind"], status["code"], status["reason"]) == ("Status", 410, "Expired")
            assert status["message"].startswith("too old resource version: ")
            # A continue token from before the window is 410 too.
            async with session.get(sb.url + CMS, params={"limit": "2"}) as resp:
                token = (await resp.json())["metadata"]["continue"]
            sb.storage.create(cms, {"metadata": {"name": "later", "namespace": "default"}})
            sb.faults.compact()
            async with session.get(sb.url + CMS, params={"limit": "2", "continue": token}) as resp:
                assert resp.status == 410 and (await resp.json())["reason"] == "Expired"
    finally:
        await sb.stop()


async def test_table_watch_for_kubectl_get_w(api: Any, make: Any) -> None:
    created = await api.ok("POST", CMS, make.configmap("a"))
    await api.ok("DELETE", f"{CMS}/a")
    headers = {"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"}
    params = {"watch": "1", "resourceVersion": created["metadata"]["resourceVersion"], "timeoutSeconds": "5"}
    async with api.session.get(api.url + CMS, params=params, headers=headers) as resp:
        line = await resp.content.readline()
    event = orjson.loads(line)
    assert event["type"] == "DELETED" and event["object"]["kind"] == "Table"
    assert event["object"]["rows"][0]["cells"][0] == "a"


async def test_watch_list_sends_initial_events_then_an_end_bookmark(api: Any, make: Any) -> None:
    await api.ok("POST", CMS, make.configmap("a"))
    params = {
        "sendInitialEvents": "true",
        "allowWatchBookmarks": "true",
        "resourceVersionMatch": "NotOlderThan",
    }
    events = await collect(api, params, 2)
    assert (events[0]["type"], events[0]["object"]["metadata"]["name"]) == ("ADDED", "a")
    assert events[1]["type"] == "BOOKMARK"
    assert events[1]["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}


async def test_resource_version_from_the_future_is_too_large(api: Any) -> None:
    status, body = await api.call("GET", CMS, params={"resourceVersion": "999999"})
    assert (status, body["reason"]) == (504, "Timeout")
    assert body["message"].startswith("Timeout: Too large resource version: 999999, current: ")
    assert body["details"]["causes"][0]["reason"] == "ResourceVersionTooLarge"
    events = await collect(api, {"resourceVersion": "999999"}, 1)
    assert events[0]["type"] == "ERROR" and events[0]["object"]["code"] == 504


async def test_filtered_watch_gets_bookmarks_despite_unrelated_traffic(api: Any, make: Any) -> None:
    created = await api.ok("POST", CMS, make.configmap("seed"))
    params = {
        "watch": "1",
        "resourceVersion": created["metadata"]["resourceVersion"],
        "labelSelector": "never=matches",
        "allowWatchBookmarks": "true",
        "timeoutSeconds": "20",
    }
    async with api.session.get(api.url + CMS, params=params) as resp:
        reading = asyncio.ensure_future(resp.content.readline())
        n = 0
        while not reading.done():
            n += 1  # unrelated changes keep flowing while we wait for the bookmark
            await api.ok("POST", CMS, make.configmap(f"noise-{n}"))
            await asyncio.wait({reading}, timeout=0.05)
        event = orjson.loads(reading.result())
    assert event["type"] == "BOOKMARK"
    assert int(event["object"]["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])


async def test_legacy_watch_path_streams_the_same_events(api: Any, make: Any) -> None:
    created = await api.ok("POST", CMS, make.configmap("legacy"))
    await api.ok("DELETE", f"{CMS}/legacy")
    params = {"resourceVersion": created["metadata"]["resourceVersion"]}
    (event,) = await collect(api, params, 1, path="/api/v1/watch/namespaces/default/configmaps")
    assert (event["type"], event["object"]["metadata"]["name"]) == ("DELETED", "legacy")
    status, body = await api.call("POST", "/api/v1/watch/namespaces/default/configmaps", make.configmap("x"))
    assert (status, body["reason"]) == (405, "MethodNotAllowed")
