"""Discovery (legacy and aggregated), /version, OpenAPI routes and content negotiation."""

from __future__ import annotations

from typing import Any

AGGREGATED = (
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
    "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json"
)


async def test_version_and_legacy_discovery(api: Any) -> None:
    for probe in ("/healthz", "/livez", "/readyz"):
        assert await api.call("GET", probe) == (200, "ok")
    version = await api.ok("GET", "/version")
    assert version["major"] == "1" and version["gitVersion"].startswith("v1.3")
    assert (await api.ok("GET", "/api"))["versions"] == ["v1"]
    core = await api.ok("GET", "/api/v1")
    by_name = {r["name"]: r for r in core["resources"]}
    assert by_name["pods"]["shortNames"] == ["po"] and by_name["pods"]["categories"] == ["all"]
    assert by_name["pods"]["namespaced"] and not by_name["nodes"]["namespaced"]
    assert by_name["pods/status"]["verbs"] == ["get", "patch", "update"]
    assert set(by_name["services"]["verbs"]) >= {"create", "get", "list", "watch", "patch", "delete"}
    for name in ("namespaces", "nodes", "pods", "services", "endpoints", "configmaps", "secrets", "events"):
        assert name in by_name
    apps = await api.ok("GET", "/apis/apps/v1")
    by_name = {r["name"]: r for r in apps["resources"]}
    assert (
        by_name["deployments/scale"]["kind"] == "Scale"
        and by_name["deployments/scale"]["group"] == "autoscaling"
    )
    assert by_name["statefulsets"]["shortNames"] == ["sts"]
    groups = {g["name"]: g for g in (await api.ok("GET", "/apis"))["groups"]}
    for group in ("apps", "discovery.k8s.io", "events.k8s.io", "coordination.k8s.io", "apiextensions.k8s.io"):
        assert groups[group]["preferredVersion"]["groupVersion"] == f"{group}/v1"
    assert (await api.ok("GET", "/apis/apps"))["kind"] == "APIGroup"
    status, body = await api.call("GET", "/apis/nothing.example.com/v1")
    assert status == 404 and body["kind"] == "Status"


async def test_aggregated_discovery(api: Any) -> None:
    async with api.session.get(api.url + "/apis", headers={"Accept": AGGREGATED}) as resp:
        assert resp.headers["Content-Type"].startswith("application/json;g=apidiscovery.k8s.io;v=v2")
        doc = await resp.json(content_type=None)
    assert doc["kind"] == "APIGroupDiscoveryList"
    apps = next(i for i in doc["items"] if i["metadata"]["name"] == "apps")
    deploy = next(r for r in apps["versions"][0]["resources"] if r["resource"] == "deployments")
    assert deploy["scope"] == "Namespaced" and deploy["responseKind"]["kind"] == "Deployment"
    assert {s["subresource"] for s in deploy["subresources"]} == {"status", "scale"}
    async with api.session.get(api.url + "/api", headers={"Accept": AGGREGATED}) as resp:
        core = await resp.json(content_type=None)
    assert any(r["resource"] == "pods" for r in core["items"][0]["versions"][0]["resources"])


async def test_openapi_routes(api: Any, make: Any) -> None:
    await api.ok("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", make.widget_crd())
    paths = (await api.ok("GET", "/openapi/v3"))["paths"]
    assert "apis/apps/v1" in paths and "api/v1" in paths and "apis/example.com/v1" in paths
    doc = await api.ok("GET", "/openapi/v3/apis/example.com/v1")
    assert any("Widget" in name for name in doc["components"]["schemas"])
    assert "definitions" in await api.ok("GET", "/openapi/v2")
    status, _ = await api.call("GET", "/openapi/v3/apis/nothing/v1")
    assert status == 404


async def test_protobuf_only_clients_get_406_and_mixed_accept_gets_json(api: Any) -> None:
    status, body = await api.call(
        "GET", "/api/v1/pods", headers={"Accept": "application/vnd.kubernetes.protobuf"}
    )
    assert status == 406 and body["reason"] == "NotAcceptable"
    accept = "application/vnd.kubernetes.protobuf,application/json"
    status, body = await api.call("GET", "/api/v1/pods", headers={"Accept": accept})
    assert status == 200 and body["kind"] == "PodList"


async def test_unknown_paths_and_verbs(api: Any) -> None:
    status, body = await api.call("GET", "/api/v1/nope")
    assert status == 404 and body["message"] == "the server could not find the requested resource"
    status, body = await api.call("PUT", "/api/v1/namespaces/default/configmaps")
    assert status == 405 and body["reason"] == "MethodNotAllowed"
