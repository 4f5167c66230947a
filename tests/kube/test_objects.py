"""kube/objects.py: keys, owner references, label selectors, deep_copy and DeepContains.

Pure functions, so table tests with named cases; no I/O.
"""

from __future__ import annotations

from typing import Any

import pytest

from servicegroup.kube.objects import (
    ObjectKey,
    controller_of,
    deep_contains,
    deep_copy,
    is_controlled_by,
    match_label_selector,
    match_selector_string,
    owner_reference,
    parse_selector_string,
    selector_to_string,
)

GRID = {
    "apiVersion": "superedge.io/v1",
    "kind": "DeploymentGrid",
    "metadata": {"name": "g", "namespace": "ns", "uid": "uid-g"},
}


class TestObjectKey:
    def test_str_is_the_store_key(self) -> None:
        assert str(ObjectKey("ns", "a")) == "ns/a"
        assert str(ObjectKey("", "node1")) == "node1"

    def test_parse_round_trips(self) -> None:
        for key in (ObjectKey("ns", "a"), ObjectKey("", "n")):
            assert ObjectKey.parse(str(key)) == key

    def test_from_object(self) -> None:
        assert ObjectKey.from_object(GRID) == ObjectKey("ns", "g")
        assert ObjectKey.from_object({"metadata": {"name": "n1"}}) == ObjectKey("", "n1")


class TestOwnerReferences:
    def test_owner_reference_names_the_owner_by_uid(self) -> None:
        ref = owner_reference(GRID)
        assert ref == {
            "apiVersion": "superedge.io/v1",
            "kind": "DeploymentGrid",
            "name": "g",
            "uid": "uid-g",
            "controller": True,
            "blockOwnerDeletion": True,
        }

    def test_is_controlled_by_compares_uids(self) -> None:
        child = {"metadata": {"ownerReferences": [owner_reference(GRID)]}}
        assert is_controlled_by(child, GRID)
        recreated = {**GRID, "metadata": {**GRID["metadata"], "uid": "uid-new"}}
        assert not is_controlled_by(child, recreated)

    def test_non_controller_owner_does_not_control(self) -> None:
        child = {"metadata": {"ownerReferences": [owner_reference(GRID, controller=False)]}}
        assert controller_of(child) is None
        assert not is_controlled_by(child, GRID)


LABELS = {"app": "web", "zone": "z1", "tier": "front"}

SELECTOR_CASES: list[tuple[str, dict[str, Any] | None, bool]] = [
    ("nil-selects-nothing", None, False),
    ("empty-selects-everything", {}, True),
    ("match-labels-hit", {"matchLabels": {"app": "web"}}, True),
    ("match-labels-miss", {"matchLabels": {"app": "db"}}, False),
    ("in-hit", {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["z1", "z2"]}]}, True),
    ("in-absent", {"matchExpressions": [{"key": "nope", "operator": "In", "values": ["x"]}]}, False),
    ("notin-hit", {"matchExpressions": [{"key": "zone", "operator": "NotIn", "values": ["z2"]}]}, True),
    (
        "notin-absent-matches",
        {"matchExpressions": [{"key": "nope", "operator": "NotIn", "values": ["x"]}]},
        True,
    ),
    ("exists", {"matchExpressions": [{"key": "tier", "operator": "Exists"}]}, True),
    ("does-not-exist", {"matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]}, False),
    (
        "labels-and-expressions",
        {
            "matchLabels": {"app": "web"},
            "matchExpressions": [{"key": "zone", "operator": "In", "values": ["z9"]}],
        },
        False,
    ),
]


@pytest.mark.parametrize(
    ("selector", "expected"), [c[1:] for c in SELECTOR_CASES], ids=[c[0] for c in SELECTOR_CASES]
)
def test_match_label_selector(selector: dict[str, Any] | None, expected: bool) -> None:
    assert match_label_selector(selector, LABELS) is expected


def test_unknown_operator_is_an_error() -> None:
    with pytest.raises(ValueError, match="Gt"):
        match_label_selector({"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]}, LABELS)


STRING_CASES = [
    ("empty", "", {}, True),
    ("equals", "app=web", {"matchLabels": {"app": "web"}}, True),
    ("double-equals", "app==db", {"matchLabels": {"app": "db"}}, False),
    (
        "not-equals",
        "zone!=z1",
        {"matchExpressions": [{"key": "zone", "operator": "NotIn", "values": ["z1"]}]},
        False,
    ),
    (
        "set-based",
        "zone in (z1, z2),tier notin (back)",
        {
            "matchExpressions": [
                {"key": "zone", "operator": "In", "values": ["z1", "z2"]},
                {"key": "tier", "operator": "NotIn", "values": ["back"]},
            ]
        },
        True,
    ),
    (
        "exists-and-absent",
        "tier,!gpu",
        {
            "matchExpressions": [
                {"key": "tier", "operator": "Exists"},
                {"key": "gpu", "operator": "DoesNotExist"},
            ]
        },
        True,
    ),
    (
        "prefixed-key",
        "superedge.io/grid-selector=g",
        {"matchLabels": {"superedge.io/grid-selector": "g"}},
        False,
    ),
]


@pytest.mark.parametrize(
    ("text", "parsed", "matches"), [c[1:] for c in STRING_CASES], ids=[c[0] for c in STRING_CASES]
)
def test_parse_selector_string(text: str, parsed: dict[str, Any], matches: bool) -> None:
    assert parse_selector_string(text) == parsed
    assert match_selector_string(text, LABELS) is matches


@pytest.mark.parametrize("bad", ["a=b=c", "a in b", "(x)", "a in (b", "=v"])
def test_invalid_selector_string_names_the_requirement(bad: str) -> None:
    with pytest.raises(ValueError, match="invalid label selector"):
        parse_selector_string(bad)


def test_selector_to_string_round_trips() -> None:
    selector = {
        "matchLabels": {"b": "2", "a": "1"},
        "matchExpressions": [
            {"key": "z", "operator": "In", "values": ["x", "y"]},
            {"key": "q", "operator": "DoesNotExist"},
            {"key": "e", "operator": "Exists"},
        ],
    }
    text = selector_to_string(selector)
    assert text == "a=1,b=2,z in (x,y),!q,e"
    assert parse_selector_string(text) == selector


CONTAINS_CASES: list[tuple[str, Any, Any, bool]] = [
    ("equal-scalars", 3, 3, True),
    ("different-scalars", 3, 4, False),
    ("zero-desired-string", "live", "", True),
    ("zero-desired-number-never-forced", 5, 0, True),
    ("false-desired-never-forced", True, False, True),
    ("none-desired", {"a": 1}, None, True),
    ("type-mismatch", "3", 3, False),
    ("bool-is-not-number", 1, True, False),
    ("int-equals-float", 1, 1.0, True),
    (
        "server-defaults-ignored",
        {"replicas": 2, "strategy": {"type": "RollingUpdate"}},
        {"replicas": 2},
        True,
    ),
    ("desired-key-missing", {"replicas": 2}, {"replicas": 2, "paused": True}, False),
    ("desired-zero-key-missing", {"replicas": 2}, {"replicas": 2, "paused": False}, True),
    ("nested-change", {"template": {"image": "a:1", "x": 1}}, {"template": {"image": "a:2"}}, False),
    (
        "list-prefix",
        [{"name": "c", "image": "i", "tty": False}, {"name": "d"}],
        [{"name": "c", "image": "i"}],
        True,
    ),
    ("list-shorter-actual", [1], [1, 2], False),
    ("list-empty-desired", [1, 2], [], True),
    ("list-element-differs", [{"name": "c", "image": "a"}], [{"name": "c", "image": "b"}], False),
    ("labels-map", {"a": "1", "b": "2"}, {"a": "1"}, True),
    ("labels-map-value-differs", {"a": "1"}, {"a": "2"}, False),
]


@pytest.mark.parametrize(
    ("actual", "desired", "expected"), [c[1:] for c in CONTAINS_CASES], ids=[c[0] for c in CONTAINS_CASES]
)
def test_deep_contains(actual: Any, desired: Any, expected: bool) -> None:
    assert deep_contains(actual, desired) is expected


def test_deep_copy_is_independent() -> None:
    original = {"metadata": {"labels": {"a": "1"}}, "spec": {"list": [1, {"x": 2}]}}
    copy = deep_copy(original)
    copy["metadata"]["labels"]["a"] = "changed"
    copy["spec"]["list"][1]["x"] = 3
    assert original == {"metadata": {"labels": {"a": "1"}}, "spec": {"list": [1, {"x": 2}]}}
