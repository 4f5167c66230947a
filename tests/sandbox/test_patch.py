"""PATCH semantics: RFC 7386, RFC 6902 and strategic merge as kube-apiserver applies them."""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch
import pytest
from hypothesis import given
from hypothesis import strategies as st

from servicegroup.sandbox.errors import StatusError
from servicegroup.sandbox.patch import (
    json_patch,
    merge_patch,
    strategic_merge_patch,
    supports_strategic_merge,
)

JSON_SCALARS = st.none() | st.booleans() | st.integers() | st.text(max_size=5)
JSON = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=12,
)
NULL_FREE = st.recursive(
    st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.dictionaries(st.text(alphabet="abcd", max_size=3), inner, max_size=3),
    max_leaves=10,
)
NULL_FREE_MAP = st.dictionaries(st.text(alphabet="abcd", max_size=3), NULL_FREE, max_size=3)


@pytest.mark.parametrize(
    ("doc", "patch", "expected"),
    [
        ({"a": "b"}, {"a": "c"}, {"a": "c"}),
        ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
        ({"a": "b"}, {"a": None}, {}),
        ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
        ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
        ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
        ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
        ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
        ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
        (["a"], {"a": "b"}, {"a": "b"}),
        ({"a": "foo"}, "bar", "bar"),
    ],
)
def test_merge_patch_rfc7386_examples(doc: Any, patch: Any, expected: Any) -> None:
    before = copy.deepcopy(doc)
    assert merge_patch(doc, patch) == expected
    assert doc == before


@given(NULL_FREE_MAP, NULL_FREE_MAP)
def test_merge_patch_with_null_free_target_yields_target_keys(
    doc: dict[str, Any], target: dict[str, Any]
) -> None:
    result = merge_patch(doc, target)
    assert merge_patch(result, target) == result  # idempotent
    for key, value in target.items():
        if not isinstance(value, dict):
            assert result[key] == value


@given(JSON, JSON)
def test_json_patch_round_trip(a: Any, b: Any) -> None:
    doc, target = {"root": a}, {"root": b}
    ops = jsonpatch.make_patch(doc, target).patch
    assert json_patch(doc, ops) == target


def test_json_patch_test_op_failure_is_422_with_path() -> None:
    doc = {"spec": {"replicas": 1}}
    ops = [
        {"op": "test", "path": "/spec/replicas", "value": 2},
        {"op": "replace", "path": "/spec/replicas", "value": 3},
    ]
    with pytest.raises(StatusError) as err:
        json_patch(doc, ops)
    assert err.value.code == 422
    assert err.value.reason == "Invalid"
    assert err.value.message == "the server rejected our request due to an error in our request"
    assert err.value.details == {
        "causes": [
            {
                "reason": "UnexpectedServerResponse",
                "message": "testing value /spec/replicas failed: test failed",
            }
        ]
    }
    assert doc == {"spec": {"replicas": 1}}


def test_json_patch_test_op_success_applies_rest() -> None:
    ops = [{"op": "test", "path": "/a", "value": 1}, {"op": "add", "path": "/b", "value": [1]}]
    assert json_patch({"a": 1}, ops) == {"a": 1, "b": [1]}


@pytest.mark.parametrize(
    ("ops", "code", "cause"),
    [
        ({"op": "add"}, 400, None),
        ([{"op": "frobnicate", "path": "/a"}], 400, None),
        (
            [{"op": "replace", "path": "/missing", "value": 1}],
            422,
            "replace operation does not apply: doc is missing key: /missing: missing value",
        ),
        (
            [{"op": "remove", "path": "/nope"}],
            422,
            'remove operation does not apply: doc is missing path: "/nope": missing value',
        ),
        (
            [{"op": "add", "path": "/x/y", "value": 1}],
            422,
            'add operation does not apply: doc is missing path: "/x/y": missing value',
        ),
    ],
)
def test_json_patch_errors(ops: Any, code: int, cause: str | None) -> None:
    doc = {"a": 1}
    with pytest.raises(StatusError) as err:
        json_patch(doc, ops)
    assert err.value.code == code
    if cause is not None:
        assert err.value.details == {"causes": [{"reason": "UnexpectedServerResponse", "message": cause}]}
    assert doc == {"a": 1}


def _deployment() -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d", "finalizers": ["a"], "labels": {"x": "1"}},
        "spec": {
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%"}},
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "web",
                            "image": "nginx:1",
                            "ports": [{"containerPort": 80}, {"containerPort": 443}],
                            "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                        },
                        {"name": "side", "image": "busybox"},
                    ],
                    "volumes": [{"name": "v", "emptyDir": {}}],
                    "tolerations": [{"key": "a", "operator": "Exists"}],
                }
            },
        },
    }


def _containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    containers: list[dict[str, Any]] = obj["spec"]["template"]["spec"]["containers"]
    return containers


def test_smp_merges_containers_by_name_and_env_by_name() -> None:
    patch = {
        "spec": {
            "template": {
                "spec": {
                    "containers": [{"name": "web", "image": "nginx:2", "env": [{"name": "B", "value": "3"}]}]
                }
            }
        }
    }
    out = strategic_merge_patch(_deployment(), patch, "apps", "Deployment")
    web, side = _containers(out)
    assert web["image"] == "nginx:2"
    assert web["env"] == [{"name": "A", "value": "1"}, {"name": "B", "value": "3"}]
    assert web["ports"] == [{"containerPort": 80}, {"containerPort": 443}]
    assert side == {"name": "side", "image": "busybox"}


def test_smp_appends_new_elements_and_deletes_with_directive() -> None:
    patch = {
        "spec": {
            "template": {
                "spec": {
                    "containers": [{"name": "side", "$patch": "delete"}, {"name": "new", "image": "x"}],
                    "volumes": [{"name": "w", "configMap": {"name": "c"}}],
                }
            }
        }
    }
    out = strategic_merge_patch(_deployment(), patch, "apps", "Deployment")
    assert [c["name"] for c in _containers(out)] == ["web", "new"]
    assert [v["name"] for v in out["spec"]["template"]["spec"]["volumes"]] == ["v", "w"]


def test_smp_ports_merge_by_container_port() -> None:
    patch = {
        "spec": {
            "template": {
                "spec": {"containers": [{"name": "web", "ports": [{"containerPort": 80, "name": "http"}]}]}
            }
        }
    }
    out = strategic_merge_patch(_deployment(), patch, "apps", "Deployment")
    assert _containers(out)[0]["ports"] == [{"containerPort": 80, "name": "http"}, {"containerPort": 443}]


def test_smp_atomic_list_is_replaced() -> None:
    patch = {"spec": {"template": {"spec": {"tolerations": [{"key": "b", "operator": "Exists"}]}}}}
    out = strategic_merge_patch(_deployment(), patch, "apps", "Deployment")
    assert out["spec"]["template"]["spec"]["tolerations"] == [{"key": "b", "operator": "Exists"}]


def test_smp_finalizers_merge_as_set_and_delete_from_primitive_list() -> None:
    out = strategic_merge_patch(_deployment(), {"metadata": {"finalizers": ["a", "b"]}}, "apps", "Deployment")
    assert out["metadata"]["finalizers"] == ["a", "b"]
    out = strategic_merge_patch(
        out, {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}}, "apps", "Deployment"
    )
    assert out["metadata"]["finalizers"] == ["b"]


def test_smp_null_deletes_and_map_replace_directive() -> None:
    out = strategic_merge_patch(
        _deployment(), {"metadata": {"labels": {"x": None, "y": "2"}}}, "apps", "Deployment"
    )
    assert out["metadata"]["labels"] == {"y": "2"}
    out = strategic_merge_patch(
        _deployment(), {"metadata": {"labels": {"$patch": "replace", "z": "3"}}}, "apps", "Deployment"
    )
    assert out["metadata"]["labels"] == {"z": "3"}


def test_smp_list_replace_directive() -> None:
    patch = {
        "spec": {
            "template": {"spec": {"containers": [{"$patch": "replace"}, {"name": "only", "image": "x"}]}}
        }
    }
    out = strategic_merge_patch(_deployment(), patch, "apps", "Deployment")
    assert _containers(out) == [{"name": "only", "image": "x"}]


def test_smp_retain_keys_switches_strategy_union() -> None:
    patch = {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": None}}}
    out = strategic_merge_patch(_deployment(), patch, "apps", "Deployment")
    assert out["spec"]["strategy"] == {"type": "Recreate"}


def test_smp_retain_keys_must_cover_patch() -> None:
    patch = {"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": {"maxSurge": 1}}}}
    with pytest.raises(StatusError) as err:
        strategic_merge_patch(_deployment(), patch, "apps", "Deployment")
    assert err.value.code == 422


def test_smp_set_element_order() -> None:
    patch = {
        "spec": {
            "template": {
                "spec": {
                    "$setElementOrder/containers": [{"name": "side"}, {"name": "web"}],
                    "containers": [{"name": "web", "image": "nginx:3"}],
                }
            }
        }
    }
    out = strategic_merge_patch(_deployment(), patch, "apps", "Deployment")
    assert [c["name"] for c in _containers(out)] == ["side", "web"]
    assert _containers(out)[1]["image"] == "nginx:3"


def test_smp_missing_merge_key_is_bad_request() -> None:
    patch = {"spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}}
    with pytest.raises(StatusError) as err:
        strategic_merge_patch(_deployment(), patch, "apps", "Deployment")
    assert err.value.code == 400


def test_smp_service_ports_by_port_and_owner_references_by_uid() -> None:
    svc = {
        "metadata": {"ownerReferences": [{"uid": "1", "name": "a"}]},
        "spec": {"ports": [{"port": 80, "targetPort": 8080}, {"port": 443}]},
    }
    patch = {
        "metadata": {"ownerReferences": [{"uid": "2", "name": "b"}]},
        "spec": {"ports": [{"port": 80, "targetPort": 9090}]},
    }
    out = strategic_merge_patch(svc, patch, "", "Service")
    assert out["spec"]["ports"] == [{"port": 80, "targetPort": 9090}, {"port": 443}]
    assert [o["uid"] for o in out["metadata"]["ownerReferences"]] == ["1", "2"]


def test_smp_status_conditions_by_type() -> None:
    node = {
        "status": {
            "conditions": [{"type": "Ready", "status": "False"}, {"type": "DiskPressure", "status": "False"}]
        }
    }
    out = strategic_merge_patch(
        node, {"status": {"conditions": [{"type": "Ready", "status": "True"}]}}, "", "Node"
    )
    assert out["status"]["conditions"] == [
        {"type": "Ready", "status": "True"},
        {"type": "DiskPressure", "status": "False"},
    ]


def test_smp_new_field_drops_directives_and_nulls() -> None:
    out = strategic_merge_patch(
        {"metadata": {}}, {"metadata": {"annotations": {"a": "1", "b": None}}}, "", "ConfigMap"
    )
    assert out == {"metadata": {"annotations": {"a": "1"}}}


def test_smp_does_not_modify_input() -> None:
    doc = _deployment()
    strategic_merge_patch(doc, {"metadata": {"labels": {"x": "2"}}}, "apps", "Deployment")
    assert doc == _deployment()


@given(NULL_FREE_MAP)
def test_smp_without_lists_equals_merge_patch(patch: dict[str, Any]) -> None:
    doc = {"data": {"a": "1"}, "metadata": {"name": "c"}}
    assert strategic_merge_patch(doc, {"data": patch}, "", "ConfigMap") == merge_patch(doc, {"data": patch})


def test_supports_strategic_merge_only_for_builtins() -> None:
    assert supports_strategic_merge("apps", "Deployment")
    assert supports_strategic_merge("", "ConfigMap")
    assert not supports_strategic_merge("superedge.io", "DeploymentGrid")


def test_smp_set_element_order_keeps_server_only_elements_in_place() -> None:
    doc = {"metadata": {"finalizers": ["a", "server", "b"]}}
    patch = {"metadata": {"$setElementOrder/finalizers": ["b", "a"], "finalizers": ["b", "a"]}}
    out = strategic_merge_patch(doc, patch, "", "ConfigMap")
    assert out["metadata"]["finalizers"] == ["server", "b", "a"]
    doc = {"spec": {"ports": [{"port": 1}, {"port": 2}, {"port": 3}]}}
    patch = {
        "spec": {"$setElementOrder/ports": [{"port": 1}, {"port": 3}, {"port": 4}], "ports": [{"port": 4}]}
    }
    out = strategic_merge_patch(doc, patch, "", "Service")
    assert [p["port"] for p in out["spec"]["ports"]] == [1, 2, 3, 4]
