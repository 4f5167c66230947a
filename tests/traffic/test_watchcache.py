"""The proxy's own resourceVersions: change detection, history replay, 410, selectors, slow clients."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from servicegroup.traffic.watchcache import Expired, ResourceCache, ResourceVersions


def obj(
    name: str, value: str = "a", upstream_rv: str = "7", labels: dict[str, str] | None = None
) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "ns", "resourceVersion": upstream_rv, "labels": labels or {}},
        "data": value,
    }


def make_cache(history_limit: int = 100, rvs: ResourceVersions | None = None) -> ResourceCache:
    return ResourceCache("widgets", "Widget", "v1", rvs or ResourceVersions(), history_limit)


def decode(lines: list[bytes]) -> list[tuple[str, str, str]]:
    events = [orjson.loads(line) for line in lines]
    return [
        (e["type"], e["object"]["metadata"].get("name", ""), e["object"]["metadata"]["resourceVersion"])
        for e in events
    ]


async def test_put_stamps_our_rv_kind_and_api_version() -> None:
    cache = make_cache()
    assert cache.put("ns/a", obj("a"))
    served = cache.get("ns/a")
    assert served is not None
    assert served["metadata"]["resourceVersion"] == "1"
    assert (served["kind"], served["apiVersion"]) == ("Widget", "v1")


async def test_identical_content_makes_no_event_even_with_new_upstream_rv() -> None:
    cache = make_cache()
    cache.put("ns/a", obj("a"))
    watcher = cache.watch(1)
    assert not cache.put("ns/a", obj("a", upstream_rv="99"))
    assert cache.put("ns/a", obj("a", value="b"))
    assert decode(await watcher.take(0)) == [("MODIFIED", "a", "2")]


async def test_resume_from_rv_replays_exactly_the_later_events() -> None:
    cache = make_cache()
    for name in "abc":
        cache.put(f"ns/{name}", obj(name))
    cache.delete("ns/b")
    watcher = cache.watch(2)
    assert decode(await watcher.take(0)) == [("ADDED", "c", "3"), ("DELETED", "b", "4")]


async def test_watch_without_rv_starts_with_current_state() -> None:
    cache = make_cache()
    cache.put("ns/b", obj("b"))
    cache.put("ns/a", obj("a"))
    watcher = cache.watch(None, initial_events_end=True)
    lines = await watcher.take(0)
    assert decode(lines[:2]) == [("ADDED", "a", "2"), ("ADDED", "b", "1")]
    bookmark = orjson.loads(lines[2])
    assert bookmark["type"] == "BOOKMARK"
    assert bookmark["object"]["metadata"] == {
        "resourceVersion": "2",
        "annotations": {"k8s.io/initial-events-end": "true"},
    }


async def test_rv_older_than_history_is_expired() -> None:
    cache = make_cache(history_limit=2)
    for name in "abcd":
        cache.put(f"ns/{name}", obj(name))
    with pytest.raises(Expired):
        cache.watch(1)
    assert decode(await cache.watch(2).take(0)) == [("ADDED", "c", "3"), ("ADDED", "d", "4")]


async def test_rv_from_the_future_is_expired() -> None:
    cache = make_cache()
    with pytest.raises(Expired):
        cache.watch(5)


async def test_counter_is_shared_and_reserved_before_use() -> None:
    reserved: list[int] = []
    rvs = ResourceVersions(100, reserved.append)
    one, two = make_cache(rvs=rvs), ResourceCache("others", "Other", "v1", rvs)
    one.put("ns/a", obj("a"))
    two.put("ns/a", obj("a"))
    assert (one.get("ns/a") or {})["metadata"]["resourceVersion"] == "101"
    assert (two.get("ns/a") or {})["metadata"]["resourceVersion"] == "102"
    assert reserved == [101 + 10_000], "one reservation covers a block of RVs"


async def test_selector_moves_become_added_and_deleted() -> None:
    cache = make_cache()
    cache.put("ns/a", obj("a", labels={"x": "1"}))
    watcher = cache.watch(1, predicate=lambda o: o["metadata"]["labels"].get("x") == "1")
    cache.put("ns/a", obj("a", labels={"x": "2"}))
    cache.put("ns/a", obj("a", labels={"x": "1"}))
    cache.put("ns/a", obj("a", value="z", labels={"x": "1"}))
    cache.put("ns/b", obj("b", labels={"x": "2"}))
    assert decode(await watcher.take(0)) == [
        ("DELETED", "a", "2"),
        ("ADDED", "a", "3"),
        ("MODIFIED", "a", "4"),
    ]


async def test_slow_watcher_is_closed_not_skipped() -> None:
    cache = make_cache()
    watcher = cache.watch(0, max_backlog=3)
    for name in "abc":
        cache.put(f"ns/{name}", obj(name))
    assert not watcher.closed
    cache.put("ns/d", obj("d"))
    assert watcher.closed and watcher.overflowed
    assert await watcher.take(0) == [], "an overflowed stream ends instead of jumping over events"
    assert cache.watchers == 0


async def test_bookmark_follows_queued_events() -> None:
    cache = make_cache()
    watcher = cache.watch(0)
    cache.put("ns/a", obj("a"))
    watcher.bookmark()
    lines = await watcher.take(0)
    assert [orjson.loads(line)["type"] for line in lines] == ["ADDED", "BOOKMARK"]
    assert orjson.loads(lines[1])["object"]["metadata"]["resourceVersion"] == "1"


async def test_take_waits_and_times_out_empty() -> None:
    cache = make_cache()
    assert await cache.watch(0).take(0.01) == []


async def test_replace_emits_only_differences() -> None:
    cache = make_cache()
    cache.replace({"ns/a": obj("a"), "ns/b": obj("b")})
    watcher = cache.watch(2)
    cache.replace({"ns/a": obj("a"), "ns/c": obj("c")})
    assert decode(await watcher.take(0)) == [("DELETED", "b", "3"), ("ADDED", "c", "4")]


async def test_catch_up_does_not_count_as_lag() -> None:
    cache = make_cache()
    for i in range(10):
        cache.put(f"ns/{i}", obj(str(i)))
    resumed = cache.watch(0, max_backlog=3)
    fresh = cache.watch(None, max_backlog=3)
    assert not resumed.closed and not fresh.closed
    assert len(await resumed.take(0)) == 10
    assert len(await fresh.take(0)) == 10
