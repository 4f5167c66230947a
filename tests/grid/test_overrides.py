"""grid/overrides.py: unit selection, each rule kind, order, determinism and failures."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from servicegroup.grid.overrides import (
    OverrideError,
    Rule,
    apply_rules,
    matching,
    rules_of,
    selects,
    strategic_merge,
)
from servicegroup.grid.placeholders import UnitInfo

Obj = dict[str, Any]


def child() -> Obj:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "app-xian", "namespace": "default"},
        "spec": {
            "replicas": 1,
            "template": {
                "spec": {
                    "initContainers": [{"name": "init", "image": "busybox"}],
                    "containers": [
                        {
                            "name": "app",
                            "image": "app:1",
                            "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                            "resources": {"limits": {"cpu": "1", "memory": "1Gi"}},
                        },
                        {"name": "sidecar", "image": "side:1"},
                    ],
                    "volumes": [{"name": "v1", "emptyDir": {}}],
                }
            },
        },
    }


def rule(**body: Any) -> Rule:
    return Rule(str(body.get("name", "r")), body)


XIAN = UnitInfo("mall-xian", {"region": "north", "tier": "gold"})
HEBEI = UnitInfo("mall-hebei", {"region": "north"})
OTHER = UnitInfo("plant-1")  # no NodeUnit

SELECTION = [
    ({"units": ["mall-xian"]}, [True, False, False]),
    ({"unitPattern": "mall-*"}, [True, True, False]),
    ({"unitPattern": "mall-[xy]*"}, [True, False, False]),
    ({"unitSelector": {"matchLabels": {"region": "north"}}}, [True, True, False]),
    (
        {"unitSelector": {"matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]}},
        [False, True, False],  # a unit without a NodeUnit has no labels to select on
    ),
    ({"unitPattern": "mall-*", "unitSelector": {"matchLabels": {"tier": "gold"}}}, [True, False, False]),
    ({"units": []}, [False, False, False]),
    ({}, [False, False, False]),  # no selector selects nothing
]


@pytest.mark.parametrize(("selector", "expected"), SELECTION)
def test_selection_table(selector: Obj, expected: list[bool]) -> None:
    assert [selects(rule(**selector), u) for u in (XIAN, HEBEI, OTHER)] == expected


def test_bad_selector_operator_is_an_error_naming_the_rule() -> None:
    bad = rule(name="north", unitSelector={"matchExpressions": [{"key": "a", "operator": "Near"}]})
    with pytest.raises(OverrideError, match=r"override north: .*Near"):
        selects(bad, XIAN)


def test_rules_are_named_by_name_or_index() -> None:
    spec = {"overrides": [{"name": "a", "units": ["x"]}, {"units": ["y"]}]}
    assert [r.name for r in rules_of(spec)] == ["a", "#1"]


def test_replicas_image_env_resources() -> None:
    out = apply_rules(
        child(),
        [
            rule(
                units=["x"],
                replicas=3,
                containers=[
                    {
                        "name": "app",
                        "image": "app:2",
                        "env": [{"name": "B", "value": "20"}, {"name": "C", "value": "3"}],
                        "resources": {"limits": {"cpu": "2"}, "requests": {"cpu": "500m"}},
                    },
                    {"name": "init", "image": "busybox:2"},
                ],
            )
        ],
    )
    spec = out["spec"]
    app = spec["template"]["spec"]["containers"][0]
    assert spec["replicas"] == 3
    assert app["image"] == "app:2"
    assert app["env"] == [
        {"name": "A", "value": "1"},
        {"name": "B", "value": "20"},
        {"name": "C", "value": "3"},
    ]
    assert app["resources"] == {"limits": {"cpu": "2", "memory": "1Gi"}, "requests": {"cpu": "500m"}}
    assert spec["template"]["spec"]["initContainers"][0]["image"] == "busybox:2"


def test_input_is_not_mutated() -> None:
    original = child()
    apply_rules(
        original, [rule(units=["x"], replicas=5, jsonPatch=[{"op": "remove", "path": "/spec/template"}])]
    )
    assert original == child()


def test_unknown_container_is_an_error_naming_rule_and_containers() -> None:
    with pytest.raises(OverrideError, match=r"override big: no container 'ap'.*app, init, sidecar"):
        apply_rules(child(), [rule(name="big", units=["x"], containers=[{"name": "ap", "image": "i"}])])


def test_json_patch_and_its_failure() -> None:
    ops = [
        {"op": "add", "path": "/spec/template/spec/hostNetwork", "value": True},
        {"op": "replace", "path": "/spec/template/spec/containers/1/image", "value": "side:2"},
    ]
    out = apply_rules(child(), [rule(units=["x"], jsonPatch=ops)])
    assert out["spec"]["template"]["spec"]["hostNetwork"] is True
    assert out["spec"]["template"]["spec"]["containers"][1]["image"] == "side:2"
    failing = [{"op": "replace", "path": "/spec/template/spec/containers/7/image", "value": "x"}]
    with pytest.raises(OverrideError, match="override p: jsonPatch does not apply"):
        apply_rules(child(), [rule(name="p", units=["x"], jsonPatch=failing)])
    test_fails = [{"op": "test", "path": "/spec/replicas", "value": 9}]
    with pytest.raises(OverrideError, match="jsonPatch does not apply"):
        apply_rules(child(), [rule(units=["x"], jsonPatch=test_fails)])


def test_a_patch_may_not_change_identity() -> None:
    ops = [{"op": "replace", "path": "/metadata/name", "value": "other"}]
    with pytest.raises(OverrideError, match=r"metadata\.name"):
        apply_rules(child(), [rule(units=["x"], jsonPatch=ops)])


def test_strategic_merge_patch_merges_lists_by_key() -> None:
    patch = {
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {"name": "app", "env": [{"name": "A", "value": "10"}]},
                        {"name": "sidecar", "$patch": "delete"},
                    ],
                    "volumes": [{"name": "cfg", "configMap": {"name": "app-config"}}],
                    "tolerations": [{"operator": "Exists"}],
                    "initContainers": None,
                }
            }
        }
    }
    out = apply_rules(child(), [rule(units=["x"], strategicMergePatch=patch)])
    pod = out["spec"]["template"]["spec"]
    assert [c["name"] for c in pod["containers"]] == ["app"]
    assert pod["containers"][0]["env"] == [{"name": "A", "value": "10"}, {"name": "B", "value": "2"}]
    assert pod["containers"][0]["image"] == "app:1"
    assert [v["name"] for v in pod["volumes"]] == ["v1", "cfg"]
    assert pod["tolerations"] == [{"operator": "Exists"}]
    assert "initContainers" not in pod


def test_strategic_merge_replace_directive_and_missing_key() -> None:
    assert strategic_merge({"a": {"b": 1, "c": 2}}, {"a": {"$patch": "replace", "d": 3}}) == {"a": {"d": 3}}
    bad = {"spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}}
    with pytest.raises(OverrideError, match=r"override s: strategicMergePatch .* no merge key 'name'"):
        apply_rules(child(), [rule(name="s", units=["x"], strategicMergePatch=bad)])


def test_rules_apply_in_order_later_wins() -> None:
    rules = [
        rule(name="a", unitPattern="*", replicas=2, containers=[{"name": "app", "image": "a"}]),
        rule(name="b", units=["mall-xian"], containers=[{"name": "app", "image": "b"}]),
    ]
    chosen = matching(rules, XIAN)
    out = apply_rules(child(), chosen)
    assert [r.name for r in chosen] == ["a", "b"]
    assert (out["spec"]["replicas"], out["spec"]["template"]["spec"]["containers"][0]["image"]) == (2, "b")
    assert [r.name for r in matching(rules, HEBEI)] == ["a"]


@given(st.lists(st.integers(min_value=0, max_value=9), min_size=1, max_size=6))
def test_replicas_rules_are_deterministic_and_last_wins(values: list[int]) -> None:
    rules = [rule(name=str(i), unitPattern="*", replicas=v) for i, v in enumerate(values)]
    first = apply_rules(child(), matching(rules, XIAN))
    assert first == apply_rules(child(), matching(rules, XIAN))
    assert first["spec"]["replicas"] == values[-1]


_KEYS = st.sampled_from(["a", "b", "c"])
_MAPS = st.recursive(
    st.integers(0, 3) | st.text(max_size=2),
    lambda inner: st.dictionaries(_KEYS, inner, max_size=3),
    max_leaves=8,
)


def _deep_update(base: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return patch
    result = dict(base) if isinstance(base, dict) else {}
    for key, value in patch.items():
        result[key] = _deep_update(result.get(key), value)
    return result


@given(st.dictionaries(_KEYS, _MAPS, max_size=3), st.dictionaries(_KEYS, _MAPS, max_size=3))
def test_strategic_merge_of_plain_maps_is_a_deep_update(doc: Obj, patch: Obj) -> None:
    assert strategic_merge(doc, patch) == _deep_update(doc, patch)
    assert strategic_merge(doc, {}) == doc
