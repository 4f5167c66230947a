"""Informer guarantees (kube/informer.py docstring), one test named after each, against FakeApi.

FakeApi scripts exact list pages and watch streams; tests/kube/test_sandbox_integration.py runs
the same machinery against the real sandbox. Waits are bounded polls (`eventually`), never sleeps.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from prometheus_client import REGISTRY

from servicegroup.kube.client import Client
from servicegroup.kube.clock import FakeClock
from servicegroup.kube.informer import Informer, InformerFactory
from servicegroup.kube.resources import CONFIGMAPS, SECRETS
from servicegroup.kube.store import label_index
from waits import eventually

from .fakeapi import CLOSE, SPLIT, FakeApi, bookmark, cm, event, gone_event


class Recorder:
    """Handler that records (kind, name, rv) and checks the store was updated first."""

    def __init__(self, informer: Informer) -> None:
        self.informer = informer
        self.events: list[tuple[str, str, str]] = []
        informer.add_handler(self.on_add, self.on_update, self.on_delete)

    def _rv(self, obj: dict[str, Any]) -> str:
        return str(obj["metadata"].get("resourceVersion"))

    def on_add(self, obj: dict[str, Any]) -> None:
        assert self.informer.store.get(f"default/{obj['metadata']['name']}") is obj
        self.events.append(("add", obj["metadata"]["name"], self._rv(obj)))

    def on_update(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        assert self.informer.store.get(f"default/{new['metadata']['name']}") is new
        self.events.append(("update", new["metadata"]["name"], self._rv(new)))

    def on_delete(self, obj: dict[str, Any]) -> None:
        assert f"default/{obj['metadata']['name']}" not in self.informer.store
        self.events.append(("delete", obj["metadata"]["name"], self._rv(obj)))


@pytest.fixture
async def client(api: FakeApi) -> AsyncIterator[Client]:
    c = Client(api.url, read_retries=0)
    yield c
    await c.close()


async def running(informer: Informer) -> Informer:
    informer.start()
    await asyncio.wait_for(informer.wait_synced(), 10)
    return informer


def restarts(resource: str) -> float:
    return REGISTRY.get_sample_value("servicegroup_watch_restarts_total", {"resource": resource}) or 0.0


async def test_list_then_watch_from_list_rv(api: FakeApi, client: Client) -> None:
    api.objects = [cm(f"c{i}", str(10 + i)) for i in range(5)]
    api.rv = "50"
    informer = Informer(client, CONFIGMAPS, "default", page_size=2)
    await running(informer)
    try:
        lists = api.requests("GET", watch=False)
        assert [
            (r.query.get("limit"), r.query.get("continue"), r.query.get("resourceVersion")) for r in lists
        ] == [
            ("2", None, "0"),
            ("2", "2", None),
            ("2", "4", None),
        ]
        assert lists[0].path == "/api/v1/namespaces/default/configmaps"
        assert sorted(informer.store.keys()) == [f"default/c{i}" for i in range(5)]
        watch = await eventually(lambda: _first_watch(api))
        assert watch.query["resourceVersion"] == "50"
        assert watch.query["allowWatchBookmarks"] == "true"
        assert 300 <= int(watch.query["timeoutSeconds"]) <= 600
    finally:
        await informer.stop()


async def _first_watch(api: FakeApi) -> Any:
    watches = api.requests("GET", watch=True)
    return watches[0] if watches else None


async def test_list_items_get_api_version_and_kind(api: FakeApi, client: Client) -> None:
    bare = cm("bare", "1")
    del bare["apiVersion"], bare["kind"]
    api.objects = [bare]
    informer = await running(Informer(client, CONFIGMAPS, "default"))
    try:
        stored = informer.store.get("default/bare")
        assert stored is not None
        assert (stored["apiVersion"], stored["kind"]) == ("v1", "ConfigMap")
    finally:
        await informer.stop()


async def test_watch_end_resumes_from_last_rv(api: FakeApi, client: Client) -> None:
    api.objects = [cm("a", "10")]
    api.rv = "10"
    api.watch_scripts.append([event("ADDED", cm("b", "11")), event("MODIFIED", cm("a", "12", "x")), CLOSE])
    informer = Informer(client, CONFIGMAPS, "default")
    recorder = Recorder(informer)
    await running(informer)
    try:
        await eventually(lambda: _watch_count(api, 2))
        second = api.requests("GET", watch=True)[1]
        assert second.query["resourceVersion"] == "12"
        assert len(api.requests("GET", watch=False)) == 1  # no relist
        assert recorder.events == [("add", "a", "10"), ("add", "b", "11"), ("update", "a", "12")]
    finally:
        await informer.stop()


async def _watch_count(api: FakeApi, n: int) -> bool:
    return len(api.requests("GET", watch=True)) >= n


@pytest.mark.parametrize("how", ["error-event", "http-410"])
async def test_gone_relists_and_delivers_only_differences(api: FakeApi, client: Client, how: str) -> None:
    api.objects = [cm("same", "1"), cm("changed", "2"), cm("vanished", "3")]
    api.rv = "3"
    api.watch_scripts.append([gone_event()] if how == "error-event" else [410])
    informer = Informer(client, CONFIGMAPS, "default")
    recorder = Recorder(informer)
    before = restarts("configmaps")
    # what the world looks like by the time the informer relists
    original_list = api.objects
    api.objects = [cm("same", "1"), cm("changed", "7", "new"), cm("fresh", "8")]
    api.objects, staged = original_list, api.objects
    informer.start()
    await asyncio.wait_for(informer.wait_synced(), 10)
    api.objects, api.rv = staged, "9"
    try:
        await eventually(lambda: _has_events(recorder, 6))
        assert recorder.events[3:] == [
            ("update", "changed", "7"),
            ("add", "fresh", "8"),
            ("delete", "vanished", "3"),
        ]
        assert sorted(informer.store.keys()) == ["default/changed", "default/fresh", "default/same"]
        relist = api.requests("GET", watch=False)[-1]
        assert relist.query.get("resourceVersion") == "3"  # relists from the last seen RV
        assert informer.last_resource_version == "9"
        assert restarts("configmaps") > before
    finally:
        await informer.stop()


async def _has_events(recorder: Recorder, n: int) -> bool:
    return len(recorder.events) >= n


async def test_relist_falls_back_to_latest_when_last_rv_is_too_old(api: FakeApi, client: Client) -> None:
    api.objects = [cm("a", "1")]
    api.rv = "1"
    api.watch_scripts.append([gone_event()])
    informer = await running(Informer(client, CONFIGMAPS, "default"))
    gone = {"kind": "Status", "code": 410, "reason": "Expired", "message": "too old"}
    api.canned.append(("GET", 410, gone, {}))
    try:
        await eventually(lambda: _list_count(api, 3))
        relists = api.requests("GET", watch=False)[1:]
        assert [r.query.get("resourceVersion") for r in relists[:2]] == ["1", None]
    finally:
        await informer.stop()


async def _list_count(api: FakeApi, n: int) -> bool:
    return len(api.requests("GET", watch=False)) >= n


async def test_bookmark_advances_rv_without_event(api: FakeApi, client: Client) -> None:
    api.objects = [cm("a", "5")]
    api.rv = "5"
    api.watch_scripts.append([bookmark("40"), CLOSE])
    informer = Informer(client, CONFIGMAPS, "default")
    recorder = Recorder(informer)
    await running(informer)
    try:
        await eventually(lambda: _watch_count(api, 2))
        assert api.requests("GET", watch=True)[1].query["resourceVersion"] == "40"
        assert informer.last_resource_version == "40"
        assert recorder.events == [("add", "a", "5")]
    finally:
        await informer.stop()


async def test_cache_first_then_notify(api: FakeApi, client: Client) -> None:
    """Recorder asserts store state inside each callback; a raising handler does not stop others."""
    api.watch_scripts.append(
        [event("ADDED", cm("a", "1")), event("MODIFIED", cm("a", "2")), event("DELETED", cm("a", "3"))]
    )
    informer = Informer(client, CONFIGMAPS, "default")

    def broken(_obj: dict[str, Any]) -> None:
        raise RuntimeError("handler bug")

    informer.add_handler(on_add=broken)
    recorder = Recorder(informer)
    await running(informer)
    try:
        await eventually(lambda: _has_events(recorder, 3))
        assert recorder.events == [("add", "a", "1"), ("update", "a", "2"), ("delete", "a", "3")]
    finally:
        await informer.stop()


async def test_watch_lines_split_across_chunks_are_parsed(api: FakeApi, client: Client) -> None:
    api.watch_scripts.append([SPLIT, event("ADDED", cm("a", "1")), SPLIT, event("ADDED", cm("b", "2"))])
    informer = Informer(client, CONFIGMAPS, "default")
    recorder = Recorder(informer)
    await running(informer)
    try:
        await eventually(lambda: _has_events(recorder, 2))
        assert [e[1] for e in recorder.events] == ["a", "b"]
    finally:
        await informer.stop()


async def test_synced_after_first_list(api: FakeApi, client: Client) -> None:
    api.objects = [cm("a", "1"), cm("b", "2")]
    api.canned.append(("GET", 500, {"reason": "InternalError"}, {}))
    clock = FakeClock()
    informer = Informer(client, CONFIGMAPS, "default", clock=clock)
    seen_at_sync: list[int] = []
    informer.add_handler(on_add=lambda _o: seen_at_sync.append(int(informer.has_synced)))
    informer.start()
    try:
        await eventually(lambda: _clock_parked(clock))
        assert not informer.has_synced
        clock.advance(60)
        await asyncio.wait_for(informer.wait_synced(), 10)
        assert seen_at_sync == [0, 0]  # both adds were delivered before has_synced flipped
    finally:
        await informer.stop()


async def _clock_parked(clock: FakeClock) -> bool:
    return clock.sleepers > 0


async def test_late_handler_gets_current_objects(api: FakeApi, client: Client) -> None:
    api.objects = [cm("a", "1"), cm("b", "2")]
    informer = await running(Informer(client, CONFIGMAPS, "default"))
    try:
        recorder = Recorder(informer)
        assert sorted(recorder.events) == [("add", "a", "1"), ("add", "b", "2")]
    finally:
        await informer.stop()


async def test_resync_reoffers_cached_objects(api: FakeApi, client: Client) -> None:
    api.objects = [cm("a", "1")]
    clock = FakeClock()
    informer = Informer(client, CONFIGMAPS, "default", resync_period=30, clock=clock)
    pairs: list[tuple[Any, Any]] = []
    informer.add_handler(on_update=lambda old, new: pairs.append((old, new)))
    await running(informer)
    try:
        await eventually(lambda: _clock_parked(clock))
        await eventually(lambda: _watch_count(api, 1))
        requests_before = len(api.seen)
        clock.advance(30)
        await eventually(lambda: _nonempty(pairs))
        ((old, new),) = pairs
        assert old is new
        assert len(api.seen) == requests_before
    finally:
        await informer.stop()


async def _nonempty(items: list[Any]) -> bool:
    return bool(items)


async def test_errors_back_off(api: FakeApi, client: Client) -> None:
    api.objects = [cm("a", "1")]
    api.watch_scripts.extend([[500], [500], [500]])
    clock = FakeClock()
    informer = Informer(client, CONFIGMAPS, "default", clock=clock)
    before = restarts("configmaps")
    await running(informer)
    try:
        delays = []
        for _ in range(3):
            await eventually(lambda: _clock_parked(clock))
            deadline = clock.next_deadline()
            assert deadline is not None
            delays.append(deadline - clock.now())
            clock.advance(delays[-1])
        assert 0.8 <= delays[0] <= 0.96
        assert 1.6 <= delays[1] <= 1.92
        assert 3.2 <= delays[2] <= 3.84
        await eventually(lambda: _watch_count(api, 4))
        assert restarts("configmaps") - before == 3
        assert len(api.requests("GET", watch=False)) == 1  # watch errors do not relist
    finally:
        await informer.stop()


async def test_index_on_informer_store(api: FakeApi, client: Client) -> None:
    labelled = cm("a", "1")
    labelled["metadata"]["labels"] = {"zone": "z1"}
    api.objects = [labelled, cm("b", "2")]
    informer = Informer(client, CONFIGMAPS, "default")
    informer.add_index("zone", label_index("zone"))
    informer.add_index("zone", label_index("zone"))  # idempotent: setups may share indexes
    await running(informer)
    try:
        assert [o["metadata"]["name"] for o in informer.store.by_index("zone", "z1")] == ["a"]
    finally:
        await informer.stop()


async def test_factory_shares_informers_and_waits_for_all(api: FakeApi, client: Client) -> None:
    factory = InformerFactory(client)
    first = factory.informer(CONFIGMAPS, "default")
    assert factory.informer(CONFIGMAPS, "default") is first
    assert factory.informer(CONFIGMAPS, "default", label_selector="a=b") is not first
    factory.start()
    late = factory.informer(SECRETS)
    try:
        await asyncio.wait_for(factory.wait_synced(), 10)
        assert late.has_synced and factory.has_synced
        selected = [r for r in api.requests("GET", watch=False) if r.query.get("labelSelector") == "a=b"]
        assert selected
    finally:
        await factory.stop()


async def test_list_that_keeps_expiring_backs_off_instead_of_spinning(api: FakeApi, client: Client) -> None:
    gone = {"kind": "Status", "code": 410, "reason": "Expired", "message": "continue token expired"}
    api.canned.extend([("GET", 410, gone, {}), ("GET", 410, gone, {})])  # RV "0" list, then the "" list
    clock = FakeClock()
    informer = Informer(client, CONFIGMAPS, "default", clock=clock)
    informer.start()
    try:
        await eventually(lambda: _clock_parked(clock))
        assert len(api.requests("GET", watch=False)) == 2
        clock.advance(1)
        await asyncio.wait_for(informer.wait_synced(), 10)
    finally:
        await informer.stop()
