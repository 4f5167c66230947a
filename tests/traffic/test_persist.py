"""--cache-dir: atomic files, the RV reservation across restarts, and which snapshots are trusted."""

from __future__ import annotations

import asyncio
import gc
from pathlib import Path

import pytest

from servicegroup.kube.resources import ENDPOINTSLICES, NODES
from servicegroup.traffic.persist import CacheDir, write_atomically
from servicegroup.traffic.proxy import first_resource_version, keep_gc_cheap
from servicegroup.traffic.sync import ServedView
from servicegroup.traffic.watchcache import Expired, ResourceVersions
from waits import eventually

from .test_sync import eslice, node


def test_write_atomically_replaces_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "view.json"
    write_atomically(target, b"old")
    write_atomically(target, b"new")
    assert target.read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["view.json"]


async def test_saved_view_is_served_after_restart_with_fresh_rvs(tmp_path: Path) -> None:
    first = CacheDir(tmp_path, "bj-1")
    view = ServedView(ResourceVersions(first_resource_version(first.reserved()), first.reserve))
    view.cache(ENDPOINTSLICES).put("default/svc-1", eslice("svc-1", "bj-1"))
    view.cache(NODES).put("bj-1", node("bj-1", "beijing"))
    served = view.cache(ENDPOINTSLICES).get("default/svc-1")
    last_rv = view.rvs.current
    await first.save(view)

    again = CacheDir(tmp_path, "bj-1")
    assert again.reserved() > last_rv, "the reservation covers every RV served"
    restarted = ServedView(ResourceVersions(first_resource_version(again.reserved()), again.reserve))
    assert again.load(restarted)
    assert restarted.cache(ENDPOINTSLICES).get("default/svc-1") == served
    assert restarted.rvs.current >= again.reserved() + 1
    with pytest.raises(Expired):
        restarted.cache(ENDPOINTSLICES).watch(last_rv)  # an old client re-lists


async def test_snapshot_of_another_node_is_ignored(tmp_path: Path) -> None:
    view = ServedView(ResourceVersions())
    view.cache(NODES).put("bj-1", node("bj-1", "beijing"))
    await CacheDir(tmp_path, "bj-1").save(view)
    other = ServedView(ResourceVersions())
    assert not CacheDir(tmp_path, "gz-1").load(other)
    assert len(other.cache(NODES)) == 0


def test_unreadable_snapshot_is_ignored(tmp_path: Path) -> None:
    (tmp_path / "view.json").write_bytes(b"{not json")
    assert not CacheDir(tmp_path, "bj-1").load(ServedView(ResourceVersions()))


def test_bad_reservation_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "rv").write_text("twelve")
    with pytest.raises(ValueError, match="not a resourceVersion"):
        CacheDir(tmp_path, "bj-1").reserved()


async def test_keep_saved_writes_after_a_change(tmp_path: Path) -> None:
    cache_dir = CacheDir(tmp_path, "bj-1")
    view = ServedView(ResourceVersions())
    task = asyncio.create_task(cache_dir.keep_saved(view, interval=0.01))
    try:
        view.cache(NODES).put("bj-1", node("bj-1", "beijing"))
        await eventually(lambda: _exists(tmp_path / "view.json"), timeout=10, message="view saved")
    finally:
        task.cancel()


async def _exists(path: Path) -> bool:
    return await asyncio.to_thread(path.exists)


async def test_gc_policy_freezes_the_view() -> None:
    task = asyncio.create_task(keep_gc_cheap(freeze_every=0.01, full_every=2))
    try:
        await eventually(_frozen, timeout=10, message="objects frozen")
    finally:
        task.cancel()
        gc.unfreeze()


async def _frozen() -> bool:
    return gc.get_freeze_count() > 0
