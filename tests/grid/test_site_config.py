"""Per-unit configuration in desired.py (pure): overrides after the canary choice, placeholders,
config grid children, reference rewriting with a per-unit config hash, and held problem units."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from grid.support import app_grid, config_grid, with_identity
from servicegroup.api.labels import CONFIG_HASH, TEMPLATE_HASH_KEY
from servicegroup.grid import reasons
from servicegroup.grid.configs import ConfigGrids, config_body
from servicegroup.grid.desired import UnitContext, desired_children
from servicegroup.grid.kinds import CONFIGMAP_GRID, DEPLOYMENT_GRID, SECRET_GRID, STATEFULSET_GRID
from servicegroup.grid.placeholders import UnitInfo
from servicegroup.grid.templates import template_hash

Obj = dict[str, Any]
UNITS = ["hebei", "xian"]
CONFIGMAP = config_grid(
    "ConfigMapGrid",
    "app-config",
    data={"mode": "normal", "site": "((unit))"},
    units={"xian": {"data": {"mode": "busy"}}},
)
SECRET = config_grid("SecretGrid", "app-secret", stringData={"token": "t-((unit))"})


def context(
    configs: list[Obj] | None = None, labels: Mapping[str, Mapping[str, str]] | None = None
) -> UnitContext:
    by_name = {(c["kind"].removesuffix("Grid"), c["metadata"]["name"]): c for c in configs or []}
    return UnitContext(dict(labels or {}), ConfigGrids(lambda kind, name: by_name.get((kind, name))))


def pod(desired_child: Obj) -> Obj:
    template: Obj = desired_child["spec"]["template"]
    return template


def test_without_overrides_or_configs_children_are_superedge_ones() -> None:
    grid = with_identity(app_grid())
    plain = desired_children(DEPLOYMENT_GRID, grid, UNITS)
    with_context = desired_children(DEPLOYMENT_GRID, grid, UNITS, context())
    assert plain.children == with_context.children
    labels = pod(plain.children["app-xian"])["metadata"]["labels"]
    assert labels[TEMPLATE_HASH_KEY] == template_hash(grid["spec"]["template"])
    assert plain.rendered == {}  # units that run spec.template as is are not listed


def test_overrides_apply_after_the_canary_template_choice() -> None:
    grid = app_grid(
        templatePool={"canary": {**app_grid()["spec"]["template"], "replicas": 5}},
        templates={"xian": "canary"},
        overrides=[
            {"name": "north", "unitSelector": {"matchLabels": {"region": "north"}}, "replicas": 2},
            {"name": "img", "units": ["xian"], "containers": [{"name": "app", "image": "app:2"}]},
        ],
    )
    labels = {"xian": {"region": "north"}, "hebei": {"region": "north"}}
    desired = desired_children(DEPLOYMENT_GRID, with_identity(grid), UNITS, context(labels=labels))
    xian, hebei = desired.children["app-xian"], desired.children["app-hebei"]
    assert xian["spec"]["replicas"] == 2  # the rule wins over the canary template's 5
    assert pod(xian)["spec"]["containers"][0]["image"] == "app:2"
    assert pod(hebei)["spec"]["containers"][0]["image"] == "app:1"
    assert desired.rendered["xian"] == {"template": "canary", "overrides": ["north", "img"]}
    assert desired.rendered["hebei"] == {"template": "default", "overrides": ["north"]}
    hashes = {u: pod(desired.children[f"app-{u}"])["metadata"]["labels"][TEMPLATE_HASH_KEY] for u in UNITS}
    assert hashes["xian"] != hashes["hebei"]  # per-unit hash: changing one unit's rules rolls only it
    assert pod(xian)["spec"]["nodeSelector"] == {"location": "xian"}


def test_a_rule_cannot_move_a_unit_off_its_nodes() -> None:
    patch = {"spec": {"template": {"spec": {"nodeSelector": {"location": "elsewhere", "disk": "ssd"}}}}}
    grid = app_grid(overrides=[{"unitPattern": "*", "strategicMergePatch": patch}])
    child = desired_children(DEPLOYMENT_GRID, with_identity(grid), ["xian"]).children["app-xian"]
    assert pod(child)["spec"]["nodeSelector"] == {"location": "xian", "disk": "ssd"}


def test_placeholders_in_template_and_rules() -> None:
    grid = app_grid(overrides=[{"units": ["xian"], "containers": [{"name": "app", "image": "app:((unit))"}]}])
    grid["spec"]["template"]["template"]["spec"]["containers"][0]["args"] = [
        "--site=((unit))",
        "--tier=((unit.labels['tier']))",
        "--literal=\\((unit))",
        "$(POD_NAME)",
    ]
    labels = {"xian": {"tier": "gold"}, "hebei": {"tier": "silver"}}
    desired = desired_children(DEPLOYMENT_GRID, with_identity(grid), UNITS, context(labels=labels))
    xian = pod(desired.children["app-xian"])["spec"]["containers"][0]
    hebei = pod(desired.children["app-hebei"])["spec"]["containers"][0]
    assert xian["args"] == ["--site=xian", "--tier=gold", "--literal=((unit))", "$(POD_NAME)"]
    assert hebei["args"][:2] == ["--site=hebei", "--tier=silver"]
    assert (xian["image"], hebei["image"]) == ("app:xian", "app:1")


def test_bad_rules_and_placeholders_hold_only_their_unit() -> None:
    grid = app_grid(
        overrides=[{"name": "typo", "units": ["xian"], "containers": [{"name": "ap", "image": "x"}]}]
    )
    desired = desired_children(DEPLOYMENT_GRID, with_identity(grid), UNITS)
    assert desired.problems["xian"].reason == reasons.OVERRIDE_FAILED
    assert "override typo: no container 'ap'" in desired.problems["xian"].message
    assert "app-xian" in desired.held and "app-hebei" in desired.children
    grid = app_grid()
    grid["spec"]["template"]["template"]["spec"]["containers"][0]["args"] = ["((unit.labels['tier']))"]
    desired = desired_children(
        DEPLOYMENT_GRID, with_identity(grid), UNITS, context(labels={"xian": {"tier": "a"}})
    )
    assert sorted(desired.children) == ["app-xian"]
    assert desired.problems["hebei"].reason == reasons.INVALID_PLACEHOLDER
    assert "hebei has no NodeUnit" in desired.problems["hebei"].message


def test_config_references_are_rewritten_per_unit_with_a_config_hash() -> None:
    ctx = context([CONFIGMAP, SECRET])
    desired = desired_children(DEPLOYMENT_GRID, with_identity(app_grid()), UNITS, ctx)
    spec = pod(desired.children["app-xian"])["spec"]
    container = spec["containers"][0]
    assert container["envFrom"] == [{"configMapRef": {"name": "app-config-xian"}}]
    assert container["env"][0]["valueFrom"]["configMapKeyRef"]["name"] == "unmanaged"  # no such grid
    assert container["env"][1]["valueFrom"]["configMapKeyRef"]["name"] == "app-config-xian"
    assert spec["volumes"][0]["configMap"]["name"] == "app-config-xian"
    assert spec["volumes"][1]["projected"]["sources"][0]["secret"]["name"] == "app-secret-xian"
    annotations = {
        u: pod(desired.children[f"app-{u}"])["metadata"]["annotations"][CONFIG_HASH] for u in UNITS
    }
    assert annotations["xian"] != annotations["hebei"]
    assert desired.rendered["xian"]["configs"] == ["ConfigMap/app-config", "Secret/app-secret"]
    assert desired.rendered["xian"]["configHash"] == annotations["xian"]
    # the same reference in a StatefulSetGrid
    ssg = {**app_grid(), "kind": "StatefulSetGrid"}
    child = desired_children(STATEFULSET_GRID, with_identity(ssg), ["xian"], ctx).children["app-xian"]
    assert pod(child)["spec"]["volumes"][0]["configMap"]["name"] == "app-config-xian"


def test_a_config_change_for_one_unit_changes_only_that_units_child() -> None:
    before = desired_children(DEPLOYMENT_GRID, with_identity(app_grid()), UNITS, context([CONFIGMAP]))
    changed = config_grid(
        "ConfigMapGrid",
        "app-config",
        data=CONFIGMAP["spec"]["data"],
        units={"xian": {"data": {"mode": "idle"}}},
    )
    after = desired_children(DEPLOYMENT_GRID, with_identity(app_grid()), UNITS, context([changed]))
    assert after.children["app-hebei"] == before.children["app-hebei"]
    assert after.children["app-xian"] != before.children["app-xian"]


def test_a_config_grid_on_another_key_is_a_problem() -> None:
    other = config_grid("ConfigMapGrid", "app-config", key="zone", data={"a": "b"})
    desired = desired_children(DEPLOYMENT_GRID, with_identity(app_grid()), UNITS, context([other]))
    assert desired.problems["xian"].reason == reasons.CONFIG_UNAVAILABLE
    assert "keyed on 'zone'" in desired.problems["xian"].message


def test_configmap_grid_children_layer_base_rules_and_units() -> None:
    grid = config_grid(
        "ConfigMapGrid",
        "app-config",
        data={"mode": "normal", "site": "((unit))", "tier": "((unit.labels['tier']))"},
        binaryData={"logo": "AAEC"},
        overrides=[
            {"name": "north", "unitPattern": "*", "data": {"mode": "north"}},
            {"units": ["xian"], "data": {"extra": "1"}},
        ],
        units={"xian": {"data": {"mode": "busy"}}},
    )
    labels = {"xian": {"tier": "gold"}, "hebei": {"tier": "silver"}}
    desired = desired_children(CONFIGMAP_GRID, with_identity(grid), UNITS, context(labels=labels))
    xian = desired.children["app-config-xian"]
    assert xian["kind"] == "ConfigMap" and "spec" not in xian
    assert xian["data"] == {"mode": "busy", "site": "xian", "tier": "gold", "extra": "1"}
    assert desired.children["app-config-hebei"]["data"] == {
        "mode": "north",
        "site": "hebei",
        "tier": "silver",
    }
    assert xian["binaryData"] == {"logo": "AAEC"}
    assert xian["metadata"]["annotations"][CONFIG_HASH] == desired.rendered["xian"]["configHash"]


def test_secret_grid_children_fold_string_data_into_data() -> None:
    grid = config_grid(
        "SecretGrid",
        "app-secret",
        type="kubernetes.io/basic-auth",
        data={"username": base64.b64encode(b"admin").decode()},
        stringData={"password": "pw-((unit))"},
        units={"xian": {"stringData": {"username": "root"}}},
    )
    child = desired_children(SECRET_GRID, with_identity(grid), ["xian"]).children["app-secret-xian"]
    decoded = {k: base64.b64decode(v).decode() for k, v in child["data"].items()}
    assert child["type"] == "kubernetes.io/basic-auth"
    assert decoded == {"username": "root", "password": "pw-xian"}
    assert "stringData" not in child


def test_config_body_omits_empty_maps() -> None:
    assert config_body("ConfigMap", {}, UnitInfo("x")) == {}
    assert config_body("Secret", {}, UnitInfo("x")) == {"type": "Opaque"}
