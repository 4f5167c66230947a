"""The in-process Storage API the GC and the simulator use: events, subscriptions, selectors, history."""

from __future__ import annotations

import asyncio

import pytest

from servicegroup.sandbox.errors import StatusError
from servicegroup.sandbox.resources import BUILTIN_TYPES, ResourceType
from servicegroup.sandbox.storage import Selector, Storage, decode_continue, encode_continue

CMS: ResourceType = next(t for t in BUILTIN_TYPES if t.plural == "configmaps")
NODES: ResourceType = next(t for t in BUILTIN_TYPES if t.plural == "nodes")


def cm(name: str, **labels: str) -> dict[str, object]:
    return {"metadata": {"name": name, "namespace": "default", "labels": labels}, "data": {}}


async def test_subscribe_registers_at_call_time_and_filters_by_type() -> None:
    storage = Storage()
    cms = storage.subscribe(CMS)
    every = storage.subscribe()
    storage.create(CMS, cm("a"))
    storage.create(NODES, {"metadata": {"name": "n"}})
    first = await asyncio.wait_for(cms.next(), 5)
    assert first is not None and (first.type, first.obj["metadata"]["name"], first.old) == (
        "ADDED",
        "a",
        None,
    )
    assert cms.pending() == 0 and every.pending() == 2
    storage.delete(CMS, "default", "a")
    gone = await asyncio.wait_for(cms.next(), 5)
    assert gone is not None and gone.type == "DELETED" and gone.old is not None
    assert int(gone.obj["metadata"]["resourceVersion"]) == storage.resource_version
    cms.close()
    with pytest.raises(StopAsyncIteration):
        await cms.next()


def test_returned_objects_are_copies() -> None:
    storage = Storage()
    out = storage.create(CMS, cm("a"))
    out["data"]["x"] = "mutated"
    assert storage.get(CMS, "default", "a")["data"] == {}


def test_watch_from_replays_only_later_events_and_expires() -> None:
    storage = Storage(compaction_window=3)
    first = storage.create(CMS, cm("a"))
    storage.create(CMS, cm("b"))
    replay = storage.watch_from(CMS, int(first["metadata"]["resourceVersion"]))
    assert replay.pending() == 1
    for name in "cdef":
        storage.create(CMS, cm(name))
    with pytest.raises(StatusError) as err:
        storage.watch_from(CMS, int(first["metadata"]["resourceVersion"]))
    assert (err.value.code, err.value.reason) == (410, "Expired")


def test_selectors() -> None:
    web = {"metadata": {"name": "a", "labels": {"tier": "web", "n": "5"}}}
    matches = Selector.parse(CMS, "tier in (web, db), n>3, !gone", "metadata.name=a").matches
    assert matches(web)
    assert not Selector.parse(CMS, "n<3", None).matches(web)
    assert Selector.parse(CMS, "", "").empty
    for bad in ("a in b", "!a=b", "x>y"):
        with pytest.raises(StatusError):
            Selector.parse(CMS, bad, None)
    with pytest.raises(StatusError, match=r"field label not supported: spec\.nodeName"):
        Selector.parse(CMS, None, "spec.nodeName=x")


def test_continue_tokens_round_trip() -> None:
    assert decode_continue(encode_continue(42, ("default", "cm-3"))) == (42, ("default", "cm-3"))
    assert decode_continue(encode_continue(7, ("", "node-1"))) == (7, ("", "node-1"))
    with pytest.raises(StatusError):
        decode_continue("not a token")


def test_a_client_watch_that_falls_too_far_behind_is_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    from servicegroup.sandbox import storage as storage_module

    monkeypatch.setattr(storage_module, "MAX_PENDING", 3)
    storage = Storage()
    client = storage.watch_from(CMS, None, droppable=True)
    internal = storage.subscribe(CMS)
    for name in "abcd":
        storage.create(CMS, cm(name))
    assert client.closed and client.dropped
    assert not internal.closed and internal.pending() == 4
