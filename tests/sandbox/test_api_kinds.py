"""Every built-in kind the issue lists can be created, read, listed and deleted over HTTP."""

from __future__ import annotations

from typing import Any

import pytest

POD_SPEC = {"containers": [{"name": "c", "image": "nginx"}]}
TEMPLATE = {"metadata": {"labels": {"app": "a"}}, "spec": POD_SPEC}
SELECTOR = {"matchLabels": {"app": "a"}}

KINDS: list[tuple[str, dict[str, Any]]] = [
    ("/api/v1/nodes", {"metadata": {"name": "n1"}}),
    ("/api/v1/namespaces/default/pods", {"metadata": {"name": "p"}, "spec": POD_SPEC}),
    ("/api/v1/namespaces/default/services", {"metadata": {"name": "s"}, "spec": {"ports": [{"port": 80}]}}),
    ("/api/v1/namespaces/default/endpoints", {"metadata": {"name": "s"}, "subsets": []}),
    ("/api/v1/namespaces/default/configmaps", {"metadata": {"name": "c"}, "data": {"k": "v"}}),
    ("/api/v1/namespaces/default/secrets", {"metadata": {"name": "s"}, "stringData": {"k": "v"}}),
    ("/api/v1/namespaces/default/serviceaccounts", {"metadata": {"name": "sa"}}),
    (
        "/api/v1/namespaces/default/events",
        {
            "metadata": {"name": "e"},
            "involvedObject": {"kind": "Pod", "name": "p", "namespace": "default"},
            "reason": "Test",
            "message": "hello",
            "type": "Normal",
        },
    ),
    (
        "/apis/events.k8s.io/v1/namespaces/default/events",
        {
            "metadata": {"name": "e2"},
            "eventTime": "2026-01-01T00:00:00.000000Z",
            "reportingController": "example.com/test",
            "reportingInstance": "test-1",
            "action": "Testing",
            "reason": "Test",
            "type": "Normal",
            "regarding": {"kind": "Pod", "name": "p", "namespace": "default"},
        },
    ),
    (
        "/apis/coordination.k8s.io/v1/namespaces/default/leases",
        {"metadata": {"name": "l"}, "spec": {"holderIdentity": "me", "leaseDurationSeconds": 15}},
    ),
    (
        "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices",
        {
            "metadata": {"name": "s-1", "labels": {"kubernetes.io/service-name": "s"}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": ["10.244.0.2"], "conditions": {"ready": True}, "nodeName": "n1"}],
            "ports": [{"port": 80, "protocol": "TCP"}],
        },
    ),
    (
        "/apis/apps/v1/namespaces/default/deployments",
        {"metadata": {"name": "d"}, "spec": {"selector": SELECTOR, "template": TEMPLATE}},
    ),
    (
        "/apis/apps/v1/namespaces/default/statefulsets",
        {
            "metadata": {"name": "ss"},
            "spec": {"serviceName": "s", "selector": SELECTOR, "template": TEMPLATE},
        },
    ),
    (
        "/apis/apps/v1/namespaces/default/replicasets",
        {"metadata": {"name": "rs"}, "spec": {"selector": SELECTOR, "template": TEMPLATE}},
    ),
    (
        "/apis/apps/v1/namespaces/default/controllerrevisions",
        {"metadata": {"name": "cr"}, "data": {"spec": {}}, "revision": 1},
    ),
]


@pytest.mark.parametrize(
    ("path", "body"), KINDS, ids=[p.rsplit("/", 1)[-1] + f"-{i}" for i, (p, _) in enumerate(KINDS)]
)
async def test_kind_round_trip(api: Any, path: str, body: dict[str, Any]) -> None:
    name = body["metadata"]["name"]
    created = await api.ok("POST", path, body)
    assert created["metadata"]["name"] == name and created["metadata"]["uid"]
    assert created == await api.ok("GET", f"{path}/{name}")
    listed = await api.ok("GET", path)
    assert listed["kind"].endswith("List") and [o["metadata"]["name"] for o in listed["items"]] == [name]
    await api.ok("DELETE", f"{path}/{name}")
    status, _ = await api.call("GET", f"{path}/{name}")
    assert status == 404


async def test_event_field_selectors(api: Any) -> None:
    path, body = KINDS[7]
    await api.ok("POST", path, body)
    other = {**body, "metadata": {"name": "e-other"}, "involvedObject": {"kind": "Node", "name": "n1"}}
    await api.ok("POST", path, other)
    selected = await api.ok(
        "GET", path, params={"fieldSelector": "involvedObject.kind=Pod,involvedObject.name=p,type=Normal"}
    )
    assert [e["metadata"]["name"] for e in selected["items"]] == ["e"]
