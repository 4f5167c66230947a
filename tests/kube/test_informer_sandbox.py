"""Informers against the real sandbox over HTTP: list+watch, resume after a dropped watch,
relist on 410 with a correct diff, bookmarks, and zero writes from a converged resync.
"""

from __future__ import annotations

import asyncio
from typing import Any

from prometheus_client import REGISTRY

from servicegroup.kube.client import Client
from servicegroup.kube.informer import Informer
from servicegroup.kube.resources import CONFIGMAPS
from servicegroup.sandbox import Sandbox
from waits import eventually


def configmap(name: str, value: str = "1") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "default"},
        "data": {"v": value},
    }


class Log:
    """Handler recording (kind, name, data value)."""

    def __init__(self, informer: Informer) -> None:
        self.events: list[tuple[str, str, str]] = []
        informer.add_handler(
            lambda o: self.events.append(("add", *self._id(o))),
            lambda _old, new: self.events.append(("update", *self._id(new))),
            lambda o: self.events.append(("delete", *self._id(o))),
        )

    @staticmethod
    def _id(obj: dict[str, Any]) -> tuple[str, str]:
        return obj["metadata"]["name"], (obj.get("data") or {}).get("v", "")

    def count(self, n: int) -> Any:
        async def probe() -> bool:
            return len(self.events) >= n

        return probe


def counter(name: str, resource: str = "configmaps") -> float:
    return REGISTRY.get_sample_value(name, {"resource": resource}) or 0


async def started(kube: Client, **kw: Any) -> tuple[Informer, Log]:
    informer = Informer(kube, CONFIGMAPS, "default", **kw)
    log = Log(informer)
    informer.start()
    await asyncio.wait_for(informer.wait_synced(), 10)
    return informer, log


async def test_list_and_watch(kube: Client) -> None:
    for name in ("a", "b"):
        await kube.create(CONFIGMAPS, configmap(name))
    informer, log = await started(kube, page_size=1)
    try:
        assert sorted(log.events) == [("add", "a", "1"), ("add", "b", "1")]
        await kube.patch(CONFIGMAPS, "a", {"data": {"v": "2"}}, namespace="default")
        await kube.delete(CONFIGMAPS, "b", "default")
        await kube.create(CONFIGMAPS, configmap("c"))
        await eventually(log.count(5))
        assert log.events[2:] == [("update", "a", "2"), ("delete", "b", "1"), ("add", "c", "1")]
        assert sorted(informer.store.keys()) == ["default/a", "default/c"]
    finally:
        await informer.stop()


async def test_resume_after_dropped_watch(kube: Client, sandbox: Sandbox) -> None:
    await kube.create(CONFIGMAPS, configmap("a"))
    informer, log = await started(kube)
    relists = counter("servicegroup_informer_relists_total")
    restarts = counter("servicegroup_watch_restarts_total")
    try:
        await eventually(drop_open_watch(sandbox))
        await kube.create(CONFIGMAPS, configmap("b"))
        await eventually(log.count(2))
        assert log.events == [("add", "a", "1"), ("add", "b", "1")]
        assert counter("servicegroup_informer_relists_total") == relists  # resumed, not relisted
        assert counter("servicegroup_watch_restarts_total") > restarts
    finally:
        await informer.stop()


def drop_open_watch(sandbox: Sandbox) -> Any:
    """Probe that drops client watches and is true once it actually dropped one."""

    async def probe() -> bool:
        return sandbox.faults.drop_watches() > 0

    return probe


async def test_relist_on_410_delivers_only_differences(kube: Client, sandbox: Sandbox) -> None:
    for name in ("same", "changed", "vanished"):
        await kube.create(CONFIGMAPS, configmap(name))
    informer, log = await started(kube)
    relists = counter("servicegroup_informer_relists_total")
    try:
        # the re-watch is delayed, so these changes are missed and then compacted away: 410
        sandbox.faults.set(latency=[{"seconds": 0.5, "verb": "watch", "resource": "configmaps"}])
        await eventually(drop_open_watch(sandbox))
        await kube.patch(CONFIGMAPS, "changed", {"data": {"v": "2"}}, namespace="default")
        await kube.delete(CONFIGMAPS, "vanished", "default")
        await kube.create(CONFIGMAPS, configmap("fresh"))
        sandbox.faults.compact()
        await eventually(log.count(6))
        sandbox.faults.clear()
        assert sorted(log.events[3:]) == [
            ("add", "fresh", "1"),
            ("delete", "vanished", "1"),
            ("update", "changed", "2"),
        ]
        assert counter("servicegroup_informer_relists_total") == relists + 1
        assert sorted(informer.store.keys()) == ["default/changed", "default/fresh", "default/same"]
    finally:
        await informer.stop()


async def test_bookmarks_advance_resource_version(kube: Client) -> None:
    await kube.create(CONFIGMAPS, configmap("a"))
    informer, log = await started(kube)
    try:
        listed_rv = informer.last_resource_version
        other = {**configmap("x"), "metadata": {"name": "x", "namespace": "kube-system"}}
        await kube.create(CONFIGMAPS, other)
        await eventually(lambda: _rv_moved(informer, listed_rv))
        assert log.events == [("add", "a", "1")]  # the other namespace's change came only as a bookmark
    finally:
        await informer.stop()


async def _rv_moved(informer: Informer, rv: str) -> bool:
    return informer.last_resource_version != rv


async def test_converged_resync_writes_nothing(kube: Client) -> None:
    await kube.create(CONFIGMAPS, configmap("a"))
    informer, _log = await started(kube)
    writes = kube.write_count
    updates: list[Any] = []
    informer.add_handler(on_update=lambda old, new: updates.append(old is new))
    try:
        informer.resync()
        assert updates == [True]
        assert kube.write_count == writes
    finally:
        await informer.stop()
