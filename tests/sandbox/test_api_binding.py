"""pods/binding: how a scheduler assigns a pod to a node (HTTP subresource and Storage.bind)."""

from __future__ import annotations

from typing import Any

import pytest

from servicegroup.sandbox.errors import StatusError
from servicegroup.sandbox.resources import PODS
from servicegroup.sandbox.storage import Storage

PODS_URL = "/api/v1/namespaces/default/pods"


def pod(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "c", "image": "nginx"}], **spec},
    }


def binding(name: str, node: str, **meta: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Binding",
        "metadata": {"name": name, **meta},
        "target": {"apiVersion": "v1", "kind": "Node", "name": node},
    }


def scheduled(obj: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in obj["status"]["conditions"] if c["type"] == "PodScheduled")


async def test_binding_assigns_the_node_once(api: Any) -> None:
    created = await api.ok("POST", PODS_URL, pod("p"))
    meta = {"uid": created["metadata"]["uid"], "annotations": {"scheduler/decision": "n1"}}
    status, out = await api.call("POST", f"{PODS_URL}/p/binding", binding("p", "n1", **meta))
    assert (status, out) == (
        201,
        {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201},
    )
    bound = await api.ok("GET", f"{PODS_URL}/p")
    assert bound["spec"]["nodeName"] == "n1"
    assert bound["metadata"]["annotations"] == {"scheduler/decision": "n1"}
    assert scheduled(bound)["status"] == "True" and scheduled(bound)["lastProbeTime"] is None
    assert bound["metadata"]["generation"] == created["metadata"]["generation"]
    assert int(bound["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])

    status, out = await api.call("POST", f"{PODS_URL}/p/binding", binding("p", "n2"))
    assert status == 409 and out["reason"] == "Conflict"
    assert out["message"] == (
        'Operation cannot be fulfilled on pods/binding "p": pod p is already assigned to node "n1"'
    )
    assert out["details"] == {"name": "p", "kind": "pods/binding"}
    assert (await api.ok("GET", f"{PODS_URL}/p"))["spec"]["nodeName"] == "n1"


async def test_a_pending_unschedulable_condition_flips_to_scheduled(sandbox: Any) -> None:
    storage: Storage = sandbox.storage
    created = storage.create(PODS, {**pod("p"), "metadata": {"name": "p", "namespace": "default"}})
    unschedulable = {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "no"}
    storage.update(PODS, {**created, "status": {"conditions": [unschedulable]}}, subresource="status")
    bound = storage.bind("default", "p", "n1")
    condition = scheduled(bound)
    assert (condition["status"], "reason" in condition, "message" in condition) == ("True", False, False)
    assert storage.get(PODS, "default", "p")["spec"]["nodeName"] == "n1"


@pytest.mark.parametrize(
    ("body", "code", "message"),
    [
        (binding("other", "n1"), 400, "name in URL does not match name in Binding object"),
        (binding("p", ""), 422, 'Binding "p" is invalid: target.name: Required value'),
        (
            {**binding("p", "n1"), "target": {"kind": "Pod", "name": "n1"}},
            422,
            'Binding "p" is invalid: target.kind: Unsupported value: "Pod": '
            'supported values: "Node", "<empty>"',
        ),
        (
            {**binding("p", "n1"), "kind": "Pod"},
            400,
            'Pod in version "v1" cannot be handled as a Binding: '
            'no kind "Pod" is registered for version "v1"',
        ),
        (
            binding("p", "n1", namespace="kube-system"),
            400,
            "the namespace of the provided object does not match the namespace sent on the request",
        ),
        (
            binding("p", "n1", annotations={"a": 1}),
            400,
            "Object 'Binding' is invalid: metadata.annotations must map strings to strings",
        ),
        (
            binding("p", "n1", uid="not-the-uid"),
            409,
            'Operation cannot be fulfilled on pods "p": Precondition failed: UID in precondition: '
            "not-the-uid, UID in object meta: ",
        ),
    ],
)
async def test_bad_bindings_are_refused_and_change_nothing(
    api: Any, body: dict[str, Any], code: int, message: str
) -> None:
    await api.ok("POST", PODS_URL, pod("p"))
    status, out = await api.call("POST", f"{PODS_URL}/p/binding", body)
    assert status == code and out["message"].startswith(message), out
    assert "nodeName" not in (await api.ok("GET", f"{PODS_URL}/p"))["spec"]


async def test_stale_resource_version_missing_pod_and_dry_run(api: Any) -> None:
    created = await api.ok("POST", PODS_URL, pod("p"))
    await api.ok(
        "PATCH",
        f"{PODS_URL}/p",
        {"metadata": {"labels": {"a": "b"}}},
        content_type="application/merge-patch+json",
    )
    stale = binding("p", "n1", resourceVersion=created["metadata"]["resourceVersion"])
    status, out = await api.call("POST", f"{PODS_URL}/p/binding", stale)
    assert status == 409 and "Precondition failed: ResourceVersion in precondition" in out["message"]
    status, out = await api.call("POST", f"{PODS_URL}/nope/binding", binding("nope", "n1"))
    assert (status, out["message"]) == (404, 'pods "nope" not found')
    status, _ = await api.call("POST", f"{PODS_URL}/p/binding", binding("p", "n1"), params={"dryRun": "All"})
    assert status == 201
    assert "nodeName" not in (await api.ok("GET", f"{PODS_URL}/p"))["spec"]


async def test_terminating_and_gated_pods_cannot_be_bound(api: Any) -> None:
    held = {**pod("held"), "metadata": {"name": "held", "finalizers": ["example.com/hold"]}}
    await api.ok("POST", PODS_URL, held)
    await api.ok("DELETE", f"{PODS_URL}/held")
    status, out = await api.call("POST", f"{PODS_URL}/held/binding", binding("held", "n1"))
    assert status == 409 and out["message"].endswith(
        "pod held is being deleted, cannot be assigned to a host"
    )
    await api.ok("POST", PODS_URL, pod("gated", schedulingGates=[{"name": "example.com/wait"}]))
    status, out = await api.call("POST", f"{PODS_URL}/gated/binding", binding("gated", "n1"))
    assert status == 409 and out["message"].endswith("pod gated has non-empty .spec.schedulingGates")


async def test_binding_serves_only_create_and_pod_updates_still_cannot_set_the_node(api: Any) -> None:
    created = await api.ok("POST", PODS_URL, pod("p"))
    for method in ("GET", "PUT", "PATCH", "DELETE"):
        status, out = await api.call(method, f"{PODS_URL}/p/binding", binding("p", "n1"))
        assert (status, out["reason"]) == (405, "MethodNotAllowed"), method
    status, _ = await api.call("POST", f"{PODS_URL}/p", binding("p", "n1"))
    assert status == 405
    created["spec"]["nodeName"] = "n1"
    status, out = await api.call("PUT", f"{PODS_URL}/p", created)
    assert status == 422 and out["reason"] == "Invalid"


async def test_discovery_lists_pods_binding(api: Any) -> None:
    core = await api.ok("GET", "/api/v1")
    entry = next(r for r in core["resources"] if r["name"] == "pods/binding")
    assert entry == {
        "name": "pods/binding",
        "singularName": "",
        "namespaced": True,
        "kind": "Binding",
        "verbs": ["create"],
    }
    accept = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
    _, doc = await api.call("GET", "/api", headers={"Accept": accept})
    pods = next(r for r in doc["items"][0]["versions"][0]["resources"] if r["resource"] == "pods")
    assert {
        "subresource": "binding",
        "responseKind": {"group": "", "version": "v1", "kind": "Binding"},
        "verbs": ["create"],
    } in pods["subresources"]


def test_storage_bind_refuses_a_bound_pod_without_writing() -> None:
    storage = Storage()
    storage.create(PODS, {**pod("p"), "metadata": {"name": "p", "namespace": "default"}})
    storage.bind("default", "p", "n1")
    rv = storage.resource_version
    with pytest.raises(StatusError) as err:
        storage.bind("default", "p", "n2")
    assert err.value.code == 409 and storage.resource_version == rv
