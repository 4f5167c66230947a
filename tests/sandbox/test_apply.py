"""Server-side apply: field sets, FieldsV1, merge, removal, conflicts (pure) and over HTTP."""

from __future__ import annotations

from typing import Any

import pytest

from servicegroup.sandbox.apply import (
    apply,
    from_fields_v1,
    leaves,
    merge,
    path_string,
    schema_of,
    to_fields_v1,
    track_update,
)
from servicegroup.sandbox.errors import StatusError
from servicegroup.sandbox.storage import Storage

APPLY = "application/apply-patch+yaml"
DEPLOYS = "/apis/apps/v1/namespaces/default/deployments"
CMS = "/api/v1/namespaces/default/configmaps"
NOW = "2026-01-02T03:04:05Z"


def deployment(
    image: str = "nginx:1", replicas: int = 2, env: list[dict[str, str]] | None = None
) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "c", "image": image, "env": env or []}]},
            },
        },
    }


@pytest.fixture
def deploys() -> Any:
    return Storage().resource_type("apps", "v1", "deployments")


def test_field_set_follows_the_schema(deploys: Any) -> None:
    obj = deployment(env=[{"name": "A", "value": "1"}])
    paths = set(leaves(obj["spec"], schema_of(deploys).get("properties", {}).get("spec")))
    container = ("f:template", "f:spec", "f:containers", 'k:{"name":"c"}')
    assert ("f:selector",) in paths  # LabelSelector is an atomic map: one leaf
    assert not any(p[:1] == ("f:selector",) and len(p) > 1 for p in paths)
    assert {container, (*container, "f:image"), (*container, "f:env", 'k:{"name":"A"}', "f:value")} <= paths
    tree = to_fields_v1(paths)
    assert tree["f:template"]["f:spec"]["f:containers"]['k:{"name":"c"}']["."] == {}
    assert next(iter(tree["f:template"]["f:spec"]["f:containers"]['k:{"name":"c"}'])) == "."
    assert from_fields_v1(tree) == paths
    assert path_string((*container, "f:image")) == '.template.spec.containers[name="c"].image'
    assert path_string(("f:metadata", "f:finalizers", 'v:"x"')) == '.metadata.finalizers[="x"]'


def test_merge_keyed_lists_by_key_sets_by_union_and_atomics_replaced(deploys: Any) -> None:
    schema = schema_of(deploys)
    live = deployment(env=[{"name": "A", "value": "1"}, {"name": "B", "value": "2"}])
    live["metadata"]["finalizers"] = ["a"]
    config = deployment(image="nginx:2", env=[{"name": "B", "value": "3"}, {"name": "C", "value": "4"}])
    config["metadata"]["finalizers"] = ["b"]
    config["spec"]["selector"] = {"matchLabels": {"app": "web", "new": "1"}}
    merged = merge(live, config, schema)
    container = merged["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "nginx:2"
    assert container["env"] == [
        {"name": "A", "value": "1"},
        {"name": "B", "value": "3"},
        {"name": "C", "value": "4"},
    ]
    assert merged["metadata"]["finalizers"] == ["a", "b"]
    assert merged["spec"]["selector"] == {"matchLabels": {"app": "web", "new": "1"}}


def test_reapply_removes_only_fields_no_one_else_owns(deploys: Any) -> None:
    first = apply(
        deploys,
        None,
        deployment(env=[{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]),
        "me",
        force=False,
        now=NOW,
    )
    edited = {**first, "metadata": {**first["metadata"], "labels": {"app": "web", "team": "x"}}}
    track_update(deploys, first, edited, manager="kubectl-label", subresource="", now=NOW)
    again = apply(deploys, edited, deployment(env=[{"name": "A", "value": "1"}]), "me", force=False, now=NOW)
    assert again["spec"]["template"]["spec"]["containers"][0]["env"] == [{"name": "A", "value": "1"}]
    assert again["metadata"]["labels"] == {"app": "web", "team": "x"}
    managers = {e["manager"]: e for e in again["metadata"]["managedFields"]}
    assert managers["me"]["operation"] == "Apply" and managers["kubectl-label"]["operation"] == "Update"
    assert managers["kubectl-label"]["fieldsV1"] == {"f:metadata": {"f:labels": {"f:team": {}}}}


def test_conflicts_name_the_owner_and_force_takes_the_field(deploys: Any) -> None:
    applied = apply(deploys, None, deployment(), "me", force=False, now=NOW)
    scaled = {**applied, "spec": {**applied["spec"], "replicas": 5}}
    track_update(deploys, applied, scaled, manager="hpa", subresource="", now=NOW)
    with pytest.raises(StatusError) as err:
        apply(deploys, scaled, deployment(replicas=3), "me", force=False, now=NOW)
    assert err.value.code == 409 and err.value.reason == "Conflict"
    assert (
        err.value.message == 'Apply failed with 1 conflict: conflict with "hpa" using apps/v1: .spec.replicas'
    )
    assert err.value.details == {
        "causes": [
            {
                "reason": "FieldManagerConflict",
                "message": 'conflict with "hpa" using apps/v1',
                "field": ".spec.replicas",
            }
        ]
    }
    # The same value is shared ownership, not a conflict; force moves the field.
    assert apply(deploys, scaled, deployment(replicas=5), "me", force=False, now=NOW)["spec"]["replicas"] == 5
    forced = apply(deploys, scaled, deployment(replicas=3), "me", force=True, now=NOW)
    assert forced["spec"]["replicas"] == 3
    assert [e["manager"] for e in forced["metadata"]["managedFields"]] == ["me"]


async def test_server_side_apply_over_http(api: Any) -> None:
    params = {"fieldManager": "tester"}
    status, created = await api.call(
        "PATCH", f"{DEPLOYS}/web", deployment(), params=params, content_type=APPLY
    )
    assert status == 201 and created["metadata"]["generation"] == 1
    (entry,) = created["metadata"]["managedFields"]
    assert {k: entry[k] for k in ("manager", "operation", "apiVersion", "fieldsType")} == {
        "manager": "tester",
        "operation": "Apply",
        "apiVersion": "apps/v1",
        "fieldsType": "FieldsV1",
    }
    assert created["spec"]["strategy"]["type"] == "RollingUpdate"  # defaulted, owned by no one
    assert "f:strategy" not in entry["fieldsV1"]["f:spec"]

    await api.ok(
        "PATCH",
        f"{DEPLOYS}/web/scale",
        {"spec": {"replicas": 4}},
        params={"fieldManager": "scaler"},
        content_type="application/merge-patch+json",
    )
    status, body = await api.call(
        "PATCH", f"{DEPLOYS}/web", deployment(image="nginx:2"), params=params, content_type=APPLY
    )
    assert status == 409 and body["message"].endswith(
        'conflict with "scaler" with subresource "scale" using apps/v1: .spec.replicas'
    )
    assert (await api.ok("GET", f"{DEPLOYS}/web"))["spec"]["template"]["spec"]["containers"][0][
        "image"
    ] == "nginx:1"

    dry = await api.ok(
        "PATCH",
        f"{DEPLOYS}/web",
        deployment(image="nginx:2"),
        params={**params, "force": "true", "dryRun": "All"},
        content_type=APPLY,
    )
    assert dry["spec"]["replicas"] == 2
    assert (await api.ok("GET", f"{DEPLOYS}/web"))["spec"]["replicas"] == 4
    forced = await api.ok(
        "PATCH",
        f"{DEPLOYS}/web",
        deployment(image="nginx:2"),
        params={**params, "force": "true"},
        content_type=APPLY,
    )
    assert (forced["spec"]["replicas"], forced["metadata"]["generation"]) == (2, 3)


async def test_apply_needs_a_field_manager_and_a_whole_object(api: Any) -> None:
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "b"}}
    status, out = await api.call("PATCH", f"{CMS}/c", body, content_type=APPLY)
    assert status == 422 and "fieldManager: Required value: is required for apply patch" in out["message"]
    status, out = await api.call(
        "PATCH", f"{CMS}/other", body, params={"fieldManager": "m"}, content_type=APPLY
    )
    assert status == 400 and "does not match the name on the URL" in out["message"]
    status, out = await api.call(
        "PATCH", f"{CMS}/c", {**body, "bogus": 1}, params={"fieldManager": "m"}, content_type=APPLY
    )
    assert status == 400 and 'unknown field "bogus"' in out["message"]
    status, _ = await api.call(
        "PATCH",
        "/api/v1/namespaces/default/pods/p/status",
        {},
        params={"fieldManager": "m"},
        content_type=APPLY,
    )
    assert status == 415


async def test_plain_objects_carry_no_managed_fields(api: Any, make: Any) -> None:
    created = await api.ok("POST", CMS, make.configmap("plain", a="1"))
    updated = await api.ok("PUT", f"{CMS}/plain", {**created, "data": {"a": "2"}})
    assert "managedFields" not in created["metadata"] and "managedFields" not in updated["metadata"]


async def test_custom_resources_apply_with_their_schema(api: Any, make: Any) -> None:
    await api.ok("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", make.widget_crd())
    url = "/apis/example.com/v1/namespaces/default/widgets/w"
    params = {"fieldManager": "m"}
    first = await api.ok(
        "PATCH",
        url,
        make.widget("w", size="small", extra={"a": 1, "b": 2}),
        params=params,
        content_type=APPLY,
    )
    assert first["spec"] == {"size": "small", "replicas": 1, "extra": {"a": 1, "b": 2}}
    second = await api.ok("PATCH", url, make.widget("w", extra={"a": 1}), params=params, content_type=APPLY)
    assert second["spec"] == {"replicas": 1, "extra": {"a": 1}}


async def test_keyed_items_without_their_defaulted_key_field_match_the_live_ones(api: Any) -> None:
    svc = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
    }
    url = "/api/v1/namespaces/default/services/web"
    first = await api.ok("PATCH", url, svc, params={"fieldManager": "m"}, content_type=APPLY)
    assert first["spec"]["ports"][0]["protocol"] == "TCP"
    svc["spec"]["ports"][0]["targetPort"] = 9090
    again = await api.ok("PATCH", url, svc, params={"fieldManager": "m"}, content_type=APPLY)
    assert [(p["port"], p["protocol"], p["targetPort"]) for p in again["spec"]["ports"]] == [
        (80, "TCP", 9090)
    ]
    assert again["spec"]["clusterIP"] == first["spec"]["clusterIP"]
    fields = again["metadata"]["managedFields"][0]["fieldsV1"]["f:spec"]["f:ports"]
    assert list(fields) == ['k:{"port":80,"protocol":"TCP"}']


async def test_dropping_a_whole_map_leaves_the_stored_history_intact(api: Any, sandbox: Any) -> None:
    body = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c", "labels": {"a": "1"}},
        "data": {"k": "v"},
    }
    first = await api.ok("PATCH", f"{CMS}/c", body, params={"fieldManager": "m"}, content_type=APPLY)
    events = sandbox.storage.watch_from(None, int(first["metadata"]["resourceVersion"]) - 1)
    del body["metadata"]["labels"]
    second = await api.ok("PATCH", f"{CMS}/c", body, params={"fieldManager": "m"}, content_type=APPLY)
    assert "labels" not in second["metadata"]
    added = await events.next(0)
    assert added is not None and added.obj["metadata"]["labels"] == {"a": "1"}
    events.close()
