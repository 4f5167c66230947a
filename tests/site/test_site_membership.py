"""Membership of nodes in units and of units in groups; conflict resolution."""

from __future__ import annotations

from sitesupport import group, node, unit

from servicegroup.site.autofind import keys_hash
from servicegroup.site.membership import (
    Conflict,
    UnitIndex,
    group_assignment,
    group_conflicts,
    group_units,
    unit_members,
    unit_rule,
)

NODES = [
    node("bj-1", region="north", zone="a"),
    node("bj-2", region="north", zone="b"),
    node("gz-1", region="south", zone="a"),
    node("gz-2", region="south"),
]


def test_unit_selects_listed_nodes_that_exist() -> None:
    rule = unit_rule(unit("beijing", nodes=["bj-1", "bj-2", "missing"]))
    assert unit_members(rule, NODES) == ["bj-1", "bj-2"]


def test_unit_selects_by_match_labels_and_expressions() -> None:
    rule = unit_rule(
        unit(
            "south-a",
            selector={
                "matchLabels": {"region": "south"},
                "matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}],
            },
        )
    )
    assert unit_members(rule, NODES) == ["gz-1"]


def test_unit_with_list_and_selector_takes_the_union() -> None:
    rule = unit_rule(unit("mixed", nodes=["bj-1"], selector={"matchLabels": {"region": "south"}}))
    assert unit_members(rule, NODES) == ["bj-1", "gz-1", "gz-2"]


def test_empty_selector_selects_nothing_as_superedge() -> None:
    for spec in ({}, {"selector": {}}, {"selector": {"matchLabels": {}, "matchExpressions": []}}):
        assert unit_members(unit_rule(unit("empty", **spec)), NODES) == []


def test_selector_annotations_are_ignored() -> None:
    rule = unit_rule(unit("a", selector={"annotations": {"x": "y"}}))
    assert unit_members(rule, NODES) == []


def test_invalid_selector_selects_nothing_and_says_why() -> None:
    rule = unit_rule(unit("bad", selector={"matchExpressions": [{"key": "zone", "operator": "In"}]}))
    assert rule.selector is None
    assert rule.error is not None and "needs values" in rule.error


def test_index_agrees_with_testing_every_unit() -> None:
    units = [
        unit("beijing", nodes=["bj-1", "bj-2"]),
        unit("south", selector={"matchLabels": {"region": "south"}}),
        unit("zone-a", selector={"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}),
        unit("no-zone", selector={"matchExpressions": [{"key": "zone", "operator": "DoesNotExist"}]}),
        unit("two-labels", selector={"matchLabels": {"region": "north", "zone": "b"}}),
    ]
    rules = [unit_rule(u) for u in units]
    index = UnitIndex(rules)
    for n in NODES:
        name, labels = n["metadata"]["name"], n["metadata"]["labels"]
        expected = sorted(r.name for r in rules if name in unit_members(r, [n]))
        assert index.units_of(name, labels) == expected
    assert index.units_of("gz-2", {"region": "south"}) == ["no-zone", "south"]


def test_group_units_by_list_selector_and_auto_label() -> None:
    units = [
        unit("beijing"),
        unit("guangzhou", labels={"tier": "edge"}),
        unit(
            "auto-1",
            labels={
                "site.superedge.io/node-group-auto-keys-hash": keys_hash(["zone"]),
                "g": "nodegroups.superedge.io",
            },
        ),
        unit(
            "auto-old",
            labels={
                "site.superedge.io/node-group-auto-keys-hash": keys_hash(["x"]),
                "g": "nodegroups.superedge.io",
            },
        ),
        unit("other"),
    ]
    g = group(
        "g",
        nodeUnits=["beijing", "missing"],
        selector={"matchLabels": {"tier": "edge"}},
        autoFindNodeKeys=["zone"],
    )
    assert group_units(g, units) == ["auto-1", "beijing", "guangzhou"]


def test_group_empty_selector_means_every_unit_absent_means_none() -> None:
    units = [unit("a"), unit("b")]
    assert group_units(group("g", selector={}), units) == ["a", "b"]
    assert group_units(group("g"), units) == []


def test_deleting_units_are_not_members() -> None:
    gone = unit("a")
    gone["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    assert group_units(group("g", nodeUnits=["a", "b"]), [gone, unit("b")]) == ["b"]


def test_alphabetically_first_unit_wins_a_group_label_whatever_the_order() -> None:
    unit_groups = {"zeta": ["location"], "alpha": ["location"], "other": ["hw"]}
    for order in (["zeta", "alpha", "other"], ["other", "alpha", "zeta"]):
        assignment, conflicts = group_assignment("n1", order, unit_groups)
        assert assignment == {"location": "alpha", "hw": "other"}
        assert conflicts == [Conflict("location", "n1", "alpha", ("zeta",))]


def test_units_of_different_groups_do_not_conflict() -> None:
    assignment, conflicts = group_assignment("n1", ["a", "b"], {"a": ["g1"], "b": ["g2"]})
    assert assignment == {"g1": "a", "g2": "b"}
    assert conflicts == []


def test_group_conflicts_lists_shared_nodes_with_the_first_unit_winning() -> None:
    found = group_conflicts("location", {"zeta": ["n1", "n2"], "alpha": ["n1"], "beta": ["n3"]})
    assert found == [Conflict("location", "n1", "alpha", ("zeta",))]


def test_model_rebuild_recompiles_only_changed_units() -> None:
    from servicegroup.site.controller import build_model

    a, b = unit("a", nodes=["n"]), unit("b", setNode={"labels": {"x": "1"}})
    a["metadata"]["resourceVersion"], b["metadata"]["resourceVersion"] = "1", "2"
    first = build_model([a, b], [group("g", nodeUnits=["a"])])
    changed = unit("b", setNode={"labels": {"x": "2"}})
    changed["metadata"]["resourceVersion"] = "3"
    second = build_model([a, changed], [group("g", nodeUnits=["a", "b"])], first)
    assert second.effects["a"] is first.effects["a"]
    assert second.effects["b"].labels == {"x": "2"}
    assert second.unit_groups == {"a": ["g"], "b": ["g"]}
