"""Desired node state from all units, and the patch that changes only what we own."""

from __future__ import annotations

from typing import Any

import orjson
from sitesupport import node, unit

from servicegroup.kube.objects import deep_copy
from servicegroup.sandbox.patch import merge_patch
from servicegroup.site.labels import (
    OWNED_ANNOTATION,
    NodeState,
    Owned,
    desired_node_state,
    node_patch,
    unit_effect,
)

MEMBER = "nodeunits.superedge.io"
NO_SCHEDULE = {"key": "dedicated", "value": "edge", "effect": "NoSchedule"}


def converge(n: dict[str, Any], state: NodeState) -> dict[str, Any]:
    """Apply our patch like the API server would; the result must then need no patch."""
    patch = node_patch(n, state)
    result = merge_patch(deep_copy(n), patch) if patch else n
    assert node_patch(result, state) is None, "a second pass must write nothing"
    return result


def test_setnode_items_and_membership_label_are_applied() -> None:
    u = unit(
        "beijing", setNode={"labels": {"site": "bj"}, "annotations": {"a": "1"}, "taints": [NO_SCHEDULE]}
    )
    result = converge(node("bj-1", zone="x"), desired_node_state([unit_effect(u)], {"location": "beijing"}))
    assert result["metadata"]["labels"] == {
        "zone": "x",
        "site": "bj",
        "beijing": MEMBER,
        "location": "beijing",
    }
    assert result["metadata"]["annotations"]["a"] == "1"
    assert result["spec"]["taints"] == [NO_SCHEDULE]
    assert Owned.of(result) == Owned(
        frozenset({"site", "beijing", "location"}), frozenset({"a"}), frozenset({("dedicated", "NoSchedule")})
    )


def test_leaving_removes_only_what_we_set() -> None:
    u = unit("beijing", setNode={"labels": {"site": "bj", "zone": "x"}, "taints": [NO_SCHEDULE]})
    other_taint = {"key": "gpu", "effect": "NoSchedule"}
    start = node("bj-1", zone="x", keep="me")
    start["spec"]["taints"] = [other_taint]
    member = converge(start, desired_node_state([unit_effect(u)], {}))
    assert "zone" not in Owned.of(member).labels  # already had the value: not ours
    left = converge(member, desired_node_state([], {}))
    assert left["metadata"]["labels"] == {"zone": "x", "keep": "me"}
    assert left["spec"]["taints"] == [other_taint]
    assert OWNED_ANNOTATION not in left["metadata"].get("annotations", {})


def test_annotations_are_compared_to_annotations_so_a_converged_node_needs_no_write() -> None:
    u = unit("a", setNode={"annotations": {"owner": "ops"}})
    state = desired_node_state([unit_effect(u)], {})
    converged = converge(node("n"), state)
    assert node_patch(converged, state) is None


def test_taints_are_never_duplicated() -> None:
    units = [unit(n, setNode={"taints": [NO_SCHEDULE, NO_SCHEDULE]}) for n in ("a", "b")]
    start = node("n")
    start["spec"]["taints"] = [NO_SCHEDULE]
    result = converge(start, desired_node_state([unit_effect(u) for u in units], {}))
    assert result["spec"]["taints"] == [NO_SCHEDULE]


def test_taint_patch_carries_a_resource_version_precondition() -> None:
    n = node("n")
    n["metadata"]["resourceVersion"] = "42"
    patch = node_patch(n, desired_node_state([unit_effect(unit("a", setNode={"taints": [NO_SCHEDULE]}))], {}))
    assert patch is not None and patch["metadata"]["resourceVersion"] == "42"
    label_only = node_patch(n, desired_node_state([unit_effect(unit("a"))], {}))
    assert label_only is not None and "resourceVersion" not in label_only["metadata"]


def test_first_unit_wins_a_shared_key_in_any_order() -> None:
    a = unit_effect(unit("a", setNode={"labels": {"site": "from-a"}}))
    b = unit_effect(unit("b", setNode={"labels": {"site": "from-b"}}))
    assert desired_node_state([b, a], {}).labels["site"] == "from-a"
    assert desired_node_state([a, b], {}).labels["site"] == "from-a"


def test_group_label_beats_setnode_and_membership_beats_both() -> None:
    a = unit_effect(unit("a", setNode={"labels": {"location": "elsewhere", "b": "x"}}))
    b = unit_effect(unit("b"))
    labels = desired_node_state([a, b], {"location": "a", "b": "a"}).labels
    assert labels["location"] == "a"
    assert labels["b"] == MEMBER


def test_removing_one_of_two_units_keeps_the_others_items() -> None:
    a = unit_effect(unit("a", setNode={"labels": {"shared": "v"}}))
    b = unit_effect(unit("b", setNode={"labels": {"shared": "v"}}))
    both = converge(node("n"), desired_node_state([a, b], {}))
    only_b = converge(both, desired_node_state([b], {}))
    assert only_b["metadata"]["labels"] == {"shared": "v", "b": MEMBER}


def test_unschedulable_cordons_and_uncordons_only_our_cordon() -> None:
    cordoning = desired_node_state([unit_effect(unit("a", unschedulable=True))], {})
    cordoned = converge(node("n"), cordoning)
    assert cordoned["spec"]["unschedulable"] is True and Owned.of(cordoned).cordoned
    released = converge(cordoned, desired_node_state([unit_effect(unit("a"))], {}))
    assert not released["spec"].get("unschedulable")
    admin = node("m")
    admin["spec"]["unschedulable"] = True  # cordoned by an admin before the unit wanted it
    joined = converge(admin, cordoning)
    assert not Owned.of(joined).cordoned
    assert converge(joined, desired_node_state([], {}))["spec"]["unschedulable"] is True


def test_invalid_setnode_items_are_dropped_and_reported() -> None:
    effect = unit_effect(unit("a", setNode={"labels": {"ok": "v", "bad key!": "v", "k": "bad value!"}}))
    assert effect.labels == {"ok": "v"}
    assert len(effect.errors) == 2


def test_unreadable_ownership_record_owns_nothing() -> None:
    n = node("n", site="x")
    n["metadata"]["annotations"] = {OWNED_ANNOTATION: "not json"}
    assert Owned.of(n) == Owned()
    n["metadata"]["annotations"] = {OWNED_ANNOTATION: orjson.dumps({"labels": ["site"]}).decode()}
    assert Owned.of(n).labels == {"site"}
