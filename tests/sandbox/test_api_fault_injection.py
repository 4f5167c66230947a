"""Fault injection: seeded error rates per verb/resource, latency, dropped watches, forced compaction."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from servicegroup.sandbox import Sandbox
from servicegroup.sandbox.faults import ErrorRule
from waits import eventually

CMS = "/api/v1/namespaces/default/configmaps"


async def test_error_rules_over_http_are_deterministic(api: Any, make: Any) -> None:
    rules = {"seed": 7, "errors": [{"verb": "list", "resource": "configmaps", "code": 500, "rate": 0.5}]}

    async def outcomes() -> list[int]:
        await api.ok("POST", "/sandbox/faults", rules)
        return [(await api.call("GET", CMS))[0] for _ in range(20)]

    first = await outcomes()
    assert set(first) == {200, 500} and first == await outcomes()
    # Other verbs and resources are untouched.
    assert (await api.call("GET", "/api/v1/namespaces/default/secrets"))[0] == 200
    await api.ok("POST", CMS, make.configmap("ok"))
    await api.ok("DELETE", "/sandbox/faults")
    assert {(await api.call("GET", CMS))[0] for _ in range(5)} == {200}


async def test_429_carries_retry_after_and_409_is_a_conflict(api: Any, sandbox: Sandbox, make: Any) -> None:
    sandbox.faults.set(errors=[ErrorRule(429, verb="create", retry_after=3)])
    async with api.session.post(api.url + CMS, json=make.configmap("a")) as resp:
        body = await resp.json()
        assert resp.status == 429 and resp.headers["Retry-After"] == "3"
    assert body["reason"] == "TooManyRequests" and body["details"]["retryAfterSeconds"] == 3
    sandbox.faults.set(errors=[{"verb": "update", "code": 409}])
    created = await api.ok("POST", CMS, make.configmap("b"))
    status, body = await api.call("PUT", f"{CMS}/b", created)
    assert status == 409 and body["reason"] == "Conflict"
    status, body = await api.call("POST", "/sandbox/faults", {"errors": [{"code": 418}]})
    assert status == 400


async def test_403_reads_as_an_rbac_denial(api: Any, sandbox: Sandbox, make: Any) -> None:
    created = await api.ok("POST", CMS, make.configmap("c"))
    sandbox.faults.set(errors=[{"verb": "patch", "resource": "configmaps", "code": 403}])
    status, body = await api.call(
        "PATCH", f"{CMS}/c", {"data": {"k": "v"}}, content_type="application/merge-patch+json"
    )
    assert status == 403 and body["reason"] == "Forbidden"
    assert body["message"].startswith('configmaps "c" is forbidden: User "system:serviceaccount:')
    assert "cannot patch resource" in body["message"]
    assert await api.ok("GET", f"{CMS}/c") == created  # nothing written


async def test_latency_delays_matching_requests(api: Any, sandbox: Sandbox) -> None:
    sandbox.faults.set(latency=[{"verb": "get", "resource": "configmaps", "seconds": 0.3}])
    loop = asyncio.get_running_loop()
    start = loop.time()
    await api.call("GET", f"{CMS}/none")
    assert loop.time() - start >= 0.3


async def test_dropped_watch_ends_the_stream(api: Any, sandbox: Sandbox, make: Any) -> None:
    created = await api.ok("POST", CMS, make.configmap("a"))
    params = {"watch": "1", "resourceVersion": created["metadata"]["resourceVersion"], "timeoutSeconds": "30"}
    async with api.session.get(api.url + CMS, params=params) as resp:
        reading = asyncio.create_task(resp.read())

        async def dropped() -> bool:
            await api.ok("POST", "/sandbox/faults", {"dropWatches": True})
            await asyncio.wait({reading}, timeout=0.1)
            return reading.done()

        await eventually(dropped)
        assert reading.result() == b""


async def test_forced_compaction_expires_old_resource_versions(api: Any, make: Any) -> None:
    created = await api.ok("POST", CMS, make.configmap("a"))
    await api.ok("POST", CMS, make.configmap("b"))
    await api.ok("POST", "/sandbox/faults", {"compact": True})
    params = {"watch": "1", "resourceVersion": created["metadata"]["resourceVersion"]}
    async with api.session.get(api.url + CMS, params=params) as resp:
        event = orjson.loads(await resp.content.readline())
    assert event["type"] == "ERROR" and event["object"]["code"] == 410


def test_rules_are_checked() -> None:
    with pytest.raises(ValueError, match="fault code"):
        ErrorRule(404)
    with pytest.raises(ValueError, match="rate"):
        ErrorRule(500, rate=2)
