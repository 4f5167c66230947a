"""CustomResourceDefinitions: serving, discovery, pruning, defaulting, validation, tables, scale, cleanup."""

from __future__ import annotations

from typing import Any

from waits import eventually

CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
WIDGETS = "/apis/example.com/v1/namespaces/default/widgets"


async def install(api: Any, make: Any) -> dict[str, Any]:
    crd: dict[str, Any] = await api.ok("POST", CRDS, make.widget_crd())
    return crd


async def test_crd_is_established_and_discoverable(api: Any, make: Any) -> None:
    crd = await install(api, make)
    conditions = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
    assert conditions == {"NamesAccepted": "True", "Established": "True"}
    assert crd["status"]["acceptedNames"]["kind"] == "Widget"
    assert crd["status"]["storedVersions"] == ["v1"]
    res = await api.ok("GET", "/apis/example.com/v1")
    main = next(r for r in res["resources"] if r["name"] == "widgets")
    assert main["kind"] == "Widget" and main["namespaced"] and main["shortNames"] == ["wd"]
    assert {r["name"] for r in res["resources"]} == {"widgets", "widgets/status", "widgets/scale"}
    groups = await api.ok("GET", "/apis")
    assert any(g["name"] == "example.com" for g in groups["groups"])


async def test_custom_resource_pruning_defaulting_and_generation(api: Any, make: Any) -> None:
    await install(api, make)
    obj = make.widget("w", size="small", unknown="drop me", extra={"kept": {"deep": 1}})
    status, body = await api.call("POST", WIDGETS, obj)
    assert status == 400 and 'unknown field "spec.unknown"' in body["message"]
    out = await api.ok("POST", WIDGETS, obj, params={"fieldValidation": "Ignore"})
    assert out["spec"] == {"size": "small", "replicas": 1, "extra": {"kept": {"deep": 1}}}
    assert out["metadata"]["generation"] == 1
    out["metadata"]["labels"] = {"a": "b"}
    relabelled = await api.ok("PUT", f"{WIDGETS}/w", out)
    assert relabelled["metadata"]["generation"] == 1
    relabelled["spec"]["size"] = "large"
    assert (await api.ok("PUT", f"{WIDGETS}/w", relabelled))["metadata"]["generation"] == 2


async def test_custom_resource_validation_is_422(api: Any, make: Any) -> None:
    await install(api, make)
    status, body = await api.call("POST", WIDGETS, make.widget("w", size="huge"))
    assert status == 422 and body["reason"] == "Invalid"
    assert body["message"].startswith('Widget.example.com "w" is invalid: ')
    assert body["details"]["causes"][0]["field"] == "spec.size"
    status, body = await api.call("POST", WIDGETS, make.widget("w", replicas=11))
    assert status == 422 and "too many replicas" in body["message"]


async def test_custom_resource_status_scale_and_patch_types(api: Any, make: Any) -> None:
    await install(api, make)
    created = await api.ok("POST", WIDGETS, {**make.widget("w", replicas=2), "status": {"replicas": 5}})
    assert "status" not in created
    created["status"] = {"replicas": 2, "selector": "app=w"}
    await api.ok("PUT", f"{WIDGETS}/w/status", created)
    scale = await api.ok("GET", f"{WIDGETS}/w/scale")
    assert scale["spec"]["replicas"] == 2 and scale["status"] == {"replicas": 2, "selector": "app=w"}
    await api.ok(
        "PATCH", f"{WIDGETS}/w/scale", {"spec": {"replicas": 3}}, content_type="application/merge-patch+json"
    )
    assert (await api.ok("GET", f"{WIDGETS}/w"))["spec"]["replicas"] == 3
    status, body = await api.call(
        "PATCH", f"{WIDGETS}/w", {"spec": {}}, content_type="application/strategic-merge-patch+json"
    )
    assert status == 415 and body["reason"] == "UnsupportedMediaType"
    current = await api.ok("GET", f"{WIDGETS}/w")
    del current["metadata"]["resourceVersion"]
    status, body = await api.call("PUT", f"{WIDGETS}/w", current)
    assert status == 422 and body["details"]["causes"][0]["field"] == "metadata.resourceVersion"


async def test_printer_columns_in_table_output(api: Any, make: Any) -> None:
    await install(api, make)
    await api.ok("POST", WIDGETS, make.widget("w", size="large", replicas=3))
    headers = {"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"}
    table = await api.ok("GET", WIDGETS, headers=headers)
    assert table["kind"] == "Table"
    assert [c["name"] for c in table["columnDefinitions"]][:3] == ["Name", "Size", "Replicas"]
    assert table["rows"][0]["cells"][:3] == ["w", "large", 3]


async def test_deleting_the_crd_removes_its_resources_and_types(api: Any, make: Any) -> None:
    await install(api, make)
    await api.ok("POST", WIDGETS, make.widget("w"))
    await api.ok("DELETE", f"{CRDS}/widgets.example.com")

    async def gone() -> bool:
        status, _ = await api.call("GET", f"{CRDS}/widgets.example.com")
        return status == 404

    await eventually(gone)
    status, _ = await api.call("GET", WIDGETS)
    assert status == 404
    groups = await api.ok("GET", "/apis")
    assert all(g["name"] != "example.com" for g in groups["groups"])
