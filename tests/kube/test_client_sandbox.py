"""Client against the real sandbox: typed errors for real API failures, write counting, and
retries of injected faults on reads (writes raise).
"""

from __future__ import annotations

from typing import Any

import pytest

from servicegroup.kube import errors
from servicegroup.kube.client import Client
from servicegroup.kube.objects import deep_copy
from servicegroup.kube.resources import CONFIGMAPS
from servicegroup.sandbox import Sandbox


def configmap(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "default"}}


async def test_real_failures_are_typed(kube: Client) -> None:
    created = await kube.create(CONFIGMAPS, configmap("a"))
    with pytest.raises(errors.AlreadyExists):
        await kube.create(CONFIGMAPS, configmap("a"))
    with pytest.raises(errors.NotFound):
        await kube.get(CONFIGMAPS, "missing", "default")
    with pytest.raises(errors.Invalid) as invalid:
        await kube.create(CONFIGMAPS, configmap("Not_A_DNS_Name"))
    assert invalid.value.causes
    await kube.patch(CONFIGMAPS, "a", {"data": {"k": "v"}}, namespace="default")
    with pytest.raises(errors.Conflict):
        await kube.replace(CONFIGMAPS, deep_copy(created))  # stale resourceVersion
    with pytest.raises(errors.NotFound):
        await kube.delete(CONFIGMAPS, "missing", "default")


async def test_write_count_counts_writes_only(kube: Client) -> None:
    start = kube.write_count
    obj = await kube.create(CONFIGMAPS, configmap("a"))
    await kube.get(CONFIGMAPS, "a", "default")
    await kube.list_all(CONFIGMAPS, "default")
    obj["data"] = {"k": "v"}
    await kube.replace(CONFIGMAPS, obj)
    await kube.delete(CONFIGMAPS, "a", "default")
    assert kube.write_count - start == 3


async def test_injected_read_faults_are_retried(sandbox: Sandbox) -> None:
    sleeps: list[float] = []

    async def no_wait(seconds: float) -> None:
        sleeps.append(seconds)

    client = Client(sandbox.url, read_retries=5, sleep=no_wait)
    try:
        sandbox.faults.set(errors=[{"code": 500, "rate": 0.5, "verb": "list"}], seed=7)
        for _ in range(10):
            await client.list(CONFIGMAPS, "default")
        assert sleeps  # some lists failed and were retried transparently
        sandbox.faults.set(errors=[{"code": 429, "verb": "create", "retryAfter": 3}])
        with pytest.raises(errors.TooManyRequests) as throttled:
            await client.create(CONFIGMAPS, configmap("a"))
        assert throttled.value.retry_after == 3
    finally:
        sandbox.faults.clear()
        await client.close()
