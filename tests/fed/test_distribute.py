"""Desired member copies and the writes to reach them (pure)."""

from __future__ import annotations

from typing import Any

from grid.support import example, node, with_identity
from servicegroup.api.labels import DIS_LABEL, FED_LABEL, is_fed
from servicegroup.fed.distribute import (
    FED_BY_KIND,
    copy_in_sync,
    desired_copies,
    grid_key,
    held_units,
    is_copy_of,
    member_copy,
    plan_copies,
    split_units,
)
from servicegroup.fed.members import CONTROL_ANNOTATION

Obj = dict[str, Any]


def fed_grid() -> Obj:
    grid = with_identity(example("06-deploymentgrid-fed"))
    grid["metadata"]["annotations"] = {
        "kubectl.kubernetes.io/last-applied-configuration": "{}",
        "team": "edge",
    }
    grid["metadata"]["finalizers"] = ["servicegroup.io/fed-cleanup"]
    return grid


def live(copy: Obj, rv: str = "7") -> Obj:
    obj = {**copy, "metadata": {**copy["metadata"], "uid": "u-copy", "resourceVersion": rv}}
    obj["status"] = {"states": {}}
    return obj


def test_only_labelled_control_grids_are_distributed() -> None:
    grid = fed_grid()
    assert is_fed(grid)
    copy = member_copy(grid, "control")
    assert not is_fed(copy)  # a copy is never distributed again (SuperEdge's child quirk)
    assert not is_fed(with_identity(example("01-deploymentgrid")))


def test_copy_is_the_full_grid_marked_as_ours_without_owner_or_status() -> None:
    copy = member_copy(fed_grid(), "hq")
    assert copy["metadata"] == {
        "name": "deploymentgrid-demo",
        "namespace": "default",
        "labels": {FED_LABEL: "yes", DIS_LABEL: "yes"},
        "annotations": {"team": "edge", CONTROL_ANNOTATION: "hq"},
    }
    assert copy["spec"] == fed_grid()["spec"]  # templates intact: canary behaves as in one cluster
    assert is_copy_of(copy, "hq") and not is_copy_of(copy, "other-control")


def test_members_get_a_copy_only_while_they_hold_a_unit() -> None:
    nodes = [node("a", zone="zone1"), node("b", zone="zone1"), node("c", zone=""), node("d", other="x")]
    assert held_units(nodes, "zone") == ["zone1"]
    assert held_units(nodes, "") == []
    copies = desired_copies(fed_grid(), {"a": ["zone1"], "b": ["zone2"], "c": []}, "control")
    assert sorted(copies) == ["a", "b"]


def test_invalid_grid_key_holds_nothing() -> None:
    grid = fed_grid()
    grid["spec"]["gridUniqKey"] = "bad key!"
    assert grid_key(grid) == ""


def test_plan_creates_updates_and_deletes_only_on_reachable_members() -> None:
    grid = fed_grid()
    copy = member_copy(grid, "control")
    drifted = live(copy)
    drifted["spec"] = {**copy["spec"], "defaultTemplateName": "test2"}
    desired = {"new": copy, "drift": copy, "same": copy, "down": copy}
    have = {"drift": drifted, "same": live(copy), "gone": live(copy), "down-gone": live(copy)}
    plan = plan_copies(desired, have, reachable=["new", "drift", "same", "gone"])
    assert list(plan.create) == ["new"]
    assert list(plan.update) == ["drift"]
    assert plan.delete == ["gone"]  # down-gone is unreachable: never deleted because of an outage
    put = plan.update["drift"]
    assert put["spec"] == copy["spec"]
    assert (put["metadata"]["resourceVersion"], put["metadata"]["uid"]) == ("7", "u-copy")
    assert plan.members == ["drift", "gone", "new"]


def test_converged_copies_plan_nothing_and_in_sync_skips_the_comparison() -> None:
    copy = member_copy(fed_grid(), "control")
    assert plan_copies({"a": copy}, {"a": live(copy)}, reachable=["a"]).empty
    stale = live(copy)
    stale["metadata"]["labels"] = {"edited": "by-hand"}
    assert not copy_in_sync(stale, copy)
    assert plan_copies({"a": copy}, {"a": stale}, reachable=["a"], in_sync=["a"]).empty


def test_split_units_are_found() -> None:
    assert split_units({"a": ["z1", "z2"], "b": ["z2"], "c": []}) == {"z2": ["a", "b"]}


def test_every_grid_kind_is_distributable_and_config_grids_are_optional() -> None:
    assert sorted(FED_BY_KIND) == [
        "ConfigMapGrid",
        "DeploymentGrid",
        "SecretGrid",
        "ServiceGrid",
        "StatefulSetGrid",
    ]
    assert not FED_BY_KIND["ServiceGrid"].per_unit
    assert [k for k, v in FED_BY_KIND.items() if v.optional] == ["ConfigMapGrid", "SecretGrid"]
