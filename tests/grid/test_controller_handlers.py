"""controller.py handlers, with informer stores seeded directly (no server): which events wake
which grids. Node label changes wake only grids keyed on a label whose value changed."""

from __future__ import annotations

from typing import Any

from grid.support import example, node, with_identity
from servicegroup.grid.controller import GridController, changed_label_keys, grid_changed
from servicegroup.grid.kinds import DEPLOYMENT_GRID
from servicegroup.kube.client import Client
from servicegroup.kube.events import EventRecorder
from servicegroup.kube.informer import Informer
from servicegroup.kube.objects import ObjectKey
from servicegroup.kube.resources import NODES


def grid(name: str, key: str) -> dict[str, Any]:
    obj = with_identity(example("01-deploymentgrid"), uid=f"uid-{name}")
    obj["metadata"]["name"] = name
    obj["spec"]["gridUniqKey"] = key
    return obj


async def controller() -> GridController:
    client = Client("http://127.0.0.1:9")
    gc = GridController(
        DEPLOYMENT_GRID,
        client=client,
        grids=Informer(client, DEPLOYMENT_GRID.grid),
        children=Informer(client, DEPLOYMENT_GRID.child),
        nodes=Informer(client, NODES),
        recorder=EventRecorder(client, "test"),
    )
    for name, key in (
        ("by-zone", "zone"),
        ("by-zone-2", "zone"),
        ("by-region", "region"),
        ("by-rack", "example.com/rack"),
    ):
        gc.grids.store.upsert(grid(name, key))
    return gc


async def drain(gc: GridController) -> list[str]:
    keys = []
    while gc.controller.queue.len():
        key = await gc.controller.queue.get()
        gc.controller.queue.done(key)
        keys.append(key.name)
    return sorted(keys)


async def test_node_label_value_change_wakes_only_grids_on_that_key() -> None:
    gc = await controller()
    old = node("n1", zone="a", region="north", other="x")
    gc.node_changed(old, node("n1", zone="b", region="north", other="y"))
    assert await drain(gc) == ["by-zone", "by-zone-2"]
    gc.node_changed(old, node("n1", zone="a", region="north", other="z"))
    assert await drain(gc) == []
    gc.node_changed(old, node("n1", zone="a", other="x"))  # region removed
    assert await drain(gc) == ["by-region"]


async def test_node_add_and_delete_wake_grids_on_any_of_its_keys() -> None:
    gc = await controller()
    gc.node_changed(None, node("n2", **{"example.com/rack": "r1"}))
    assert await drain(gc) == ["by-rack"]
    gc.node_changed(node("n2", zone="a"), None)
    assert await drain(gc) == ["by-zone", "by-zone-2"]


def test_changed_label_keys() -> None:
    assert changed_label_keys(node("n", a="1", b="2"), node("n", a="1", b="3", c="4")) == {"b", "c"}
    assert changed_label_keys(None, node("n", a="1")) == {"a"}


def test_grid_status_only_updates_are_ignored_but_resyncs_and_spec_changes_pass() -> None:
    old = grid("g", "zone")
    status_only = {**old, "metadata": {**old["metadata"], "resourceVersion": "2"}, "status": {"units": 1}}
    assert not grid_changed(old, status_only)
    assert grid_changed(old, old)  # resync re-offer
    assert grid_changed(None, old)
    relabelled = {**status_only, "metadata": {**status_only["metadata"], "labels": {"a": "b"}}}
    assert grid_changed(old, relabelled)
    respec = {**status_only, "metadata": {**status_only["metadata"], "generation": 2}}
    assert grid_changed(old, respec)


async def test_child_events_wake_their_controller_owner_only() -> None:
    gc = await controller()
    owned = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "by-zone-a",
            "namespace": "default",
            "resourceVersion": "5",
            "ownerReferences": [
                {
                    "apiVersion": "superedge.io/v1",
                    "kind": "DeploymentGrid",
                    "name": "by-zone",
                    "uid": "uid-by-zone",
                    "controller": True,
                }
            ],
        },
    }
    foreign = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "x",
            "namespace": "default",
            "resourceVersion": "6",
            "ownerReferences": [
                {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "u", "controller": True}
            ],
        },
    }
    for handler in gc.children._handlers:  # the informer's own delivery path
        assert handler.on_add is not None
        handler.on_add(owned)
        handler.on_add(foreign)
    assert await drain(gc) == ["by-zone"]
    assert ObjectKey("default", "by-zone") not in gc.controller.queue.processing
