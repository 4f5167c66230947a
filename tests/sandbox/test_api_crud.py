"""CRUD fidelity over HTTP: server-set metadata, errors, generation, subresources, patches, selectors."""

from __future__ import annotations

from typing import Any

DEPLOYS = "/apis/apps/v1/namespaces/default/deployments"
CMS = "/api/v1/namespaces/default/configmaps"
PODS = "/api/v1/namespaces/default/pods"


def pod(name: str, node: str = "", labels: dict[str, str] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "c", "image": "nginx"}]}
    if node:
        spec["nodeName"] = node
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels or {}},
        "spec": spec,
    }


async def test_create_sets_server_metadata_and_defaults(api: Any, make: Any) -> None:
    out = await api.ok("POST", DEPLOYS, make.deployment("web"))
    meta = out["metadata"]
    assert meta["uid"] and meta["creationTimestamp"].endswith("Z")
    assert int(meta["resourceVersion"]) > 0 and meta["generation"] == 1
    assert out["spec"]["strategy"]["type"] == "RollingUpdate"
    assert out["spec"]["template"]["spec"]["restartPolicy"] == "Always"
    assert out["status"] == {}
    got = await api.ok("GET", f"{DEPLOYS}/web")
    assert got == out


async def test_generate_name(api: Any) -> None:
    out = await api.ok("POST", CMS, {"metadata": {"generateName": "cfg-"}, "data": {}})
    assert out["metadata"]["name"].startswith("cfg-") and len(out["metadata"]["name"]) == 9


async def test_already_exists_is_a_real_status(api: Any, make: Any) -> None:
    await api.ok("POST", DEPLOYS, make.deployment("web"))
    status, body = await api.call("POST", DEPLOYS, make.deployment("web"))
    assert status == 409
    assert body == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'deployments.apps "web" already exists',
        "reason": "AlreadyExists",
        "details": {"name": "web", "group": "apps", "kind": "deployments"},
        "code": 409,
    }


async def test_not_found_and_namespace_errors(api: Any, make: Any) -> None:
    status, body = await api.call("GET", f"{DEPLOYS}/nope")
    assert (status, body["reason"], body["message"]) == (404, "NotFound", 'deployments.apps "nope" not found')
    cm = make.configmap("a")
    cm["metadata"]["namespace"] = "other"
    status, body = await api.call("POST", CMS, cm)
    assert status == 400 and body["reason"] == "BadRequest"
    assert "does not match the namespace sent on the request" in body["message"]
    status, body = await api.call("POST", "/api/v1/namespaces/missing/configmaps", make.configmap("a"))
    assert (status, body["message"]) == (404, 'namespaces "missing" not found')


async def test_update_with_stale_resource_version_conflicts(api: Any, make: Any) -> None:
    created = await api.ok("POST", CMS, make.configmap("c", a="1"))
    first = dict(created, data={"a": "2"})
    updated = await api.ok("PUT", f"{CMS}/c", first)
    assert int(updated["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])
    stale = dict(created, data={"a": "3"})
    status, body = await api.call("PUT", f"{CMS}/c", stale)
    assert status == 409 and body["reason"] == "Conflict"
    assert body["message"] == (
        'Operation cannot be fulfilled on configmaps "c": the object has been modified; '
        "please apply your changes to the latest version and try again"
    )


async def test_noop_update_keeps_resource_version(api: Any, make: Any) -> None:
    created = await api.ok("POST", CMS, make.configmap("c", a="1"))
    again = await api.ok("PUT", f"{CMS}/c", created)
    assert again["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]


async def test_generation_bumps_only_on_spec_change(api: Any, make: Any) -> None:
    dep = await api.ok("POST", DEPLOYS, make.deployment("web"))
    labelled = await api.ok(
        "PATCH",
        f"{DEPLOYS}/web",
        {"metadata": {"labels": {"x": "y"}}},
        content_type="application/merge-patch+json",
    )
    assert labelled["metadata"]["generation"] == 1
    status = await api.ok("PUT", f"{DEPLOYS}/web/status", dict(labelled, status={"replicas": 3}))
    assert status["metadata"]["generation"] == 1 and status["status"] == {"replicas": 3}
    scaled = await api.ok(
        "PATCH", f"{DEPLOYS}/web", {"spec": {"replicas": 4}}, content_type="application/merge-patch+json"
    )
    assert scaled["metadata"]["generation"] == 2
    assert dep["metadata"]["uid"] == scaled["metadata"]["uid"]


async def test_status_subresource_isolation(api: Any, make: Any) -> None:
    dep = await api.ok("POST", DEPLOYS, make.deployment("web"))
    # The main resource ignores status ...
    dep["status"] = {"replicas": 9}
    after = await api.ok("PUT", f"{DEPLOYS}/web", dep)
    assert after["status"] == {}
    # ... and the status subresource ignores everything else.
    after["spec"]["replicas"] = 7
    after["status"] = {"replicas": 2}
    st = await api.ok("PUT", f"{DEPLOYS}/web/status", after)
    assert st["spec"]["replicas"] == 1 and st["status"] == {"replicas": 2}
    patched = await api.ok(
        "PATCH",
        f"{DEPLOYS}/web/status",
        {"status": {"readyReplicas": 1}},
        content_type="application/merge-patch+json",
    )
    assert patched["status"] == {"replicas": 2, "readyReplicas": 1}


async def test_scale_subresource(api: Any, make: Any) -> None:
    await api.ok("POST", DEPLOYS, make.deployment("web", replicas=2))
    scale = await api.ok("GET", f"{DEPLOYS}/web/scale")
    assert scale["kind"] == "Scale" and scale["apiVersion"] == "autoscaling/v1"
    assert scale["spec"] == {"replicas": 2} and scale["status"]["selector"] == "app=web"
    scale["spec"]["replicas"] = 5
    await api.ok("PUT", f"{DEPLOYS}/web/scale", scale)
    assert (await api.ok("GET", f"{DEPLOYS}/web"))["spec"]["replicas"] == 5
    await api.ok(
        "PATCH",
        f"{DEPLOYS}/web/scale",
        {"spec": {"replicas": 0}},
        content_type="application/merge-patch+json",
    )
    assert (await api.ok("GET", f"{DEPLOYS}/web"))["spec"]["replicas"] == 0
    status, body = await api.call(
        "PATCH",
        f"{DEPLOYS}/web/scale",
        {"spec": {"replicas": -1}},
        content_type="application/merge-patch+json",
    )
    assert status == 422 and body["details"]["causes"][0]["field"] == "spec.replicas"


async def test_patch_types(api: Any, make: Any) -> None:
    await api.ok("POST", DEPLOYS, make.deployment("web"))
    smp = {"spec": {"template": {"spec": {"containers": [{"name": "side", "image": "busybox"}]}}}}
    out = await api.ok("PATCH", f"{DEPLOYS}/web", smp, content_type="application/strategic-merge-patch+json")
    assert {c["name"] for c in out["spec"]["template"]["spec"]["containers"]} == {"side", "c"}
    ops = [
        {"op": "test", "path": "/spec/replicas", "value": 1},
        {"op": "replace", "path": "/spec/replicas", "value": 3},
    ]
    out = await api.ok("PATCH", f"{DEPLOYS}/web", ops, content_type="application/json-patch+json")
    assert out["spec"]["replicas"] == 3
    status, body = await api.call("PATCH", f"{DEPLOYS}/web", ops, content_type="application/json-patch+json")
    assert status == 422 and body["kind"] == "Status"
    status, _ = await api.call("PATCH", f"{DEPLOYS}/missing", {}, content_type="application/merge-patch+json")
    assert status == 404
    status, body = await api.call("PATCH", f"{DEPLOYS}/web", {}, content_type="text/plain")
    assert status == 415 and body["reason"] == "UnsupportedMediaType"


async def test_label_and_field_selectors(api: Any) -> None:
    await api.ok("POST", "/api/v1/nodes", {"metadata": {"name": "n1"}})
    await api.ok("POST", PODS, pod("a", "n1", {"tier": "web", "env": "prod"}))
    await api.ok("POST", PODS, pod("b", "n2", {"tier": "db", "env": "prod"}))
    await api.ok("POST", PODS, pod("c", "", {"tier": "web"}))

    async def names(**params: str) -> list[str]:
        out = await api.ok("GET", PODS, params=params)
        return [p["metadata"]["name"] for p in out["items"]]

    assert await names(labelSelector="tier=web") == ["a", "c"]
    assert await names(labelSelector="tier in (web,db),env") == ["a", "b"]
    assert await names(labelSelector="!env") == ["c"]
    assert await names(labelSelector="tier!=web") == ["b"]
    assert await names(fieldSelector="spec.nodeName=n1") == ["a"]
    assert await names(fieldSelector="spec.nodeName=") == ["c"]
    assert await names(fieldSelector="metadata.name!=a,metadata.namespace=default") == ["b", "c"]
    status, body = await api.call("GET", PODS, params={"fieldSelector": "spec.bogus=1"})
    assert status == 400 and body["message"] == "field label not supported: spec.bogus"
    every = await api.ok("GET", "/api/v1/pods")
    assert len(every["items"]) == 3 and every["kind"] == "PodList"


async def test_pagination_with_limit_and_continue(api: Any, make: Any) -> None:
    for i in range(7):
        await api.ok("POST", CMS, make.configmap(f"cm-{i}"))
    seen: list[str] = []
    token = ""
    pages = 0
    while True:
        params = {"limit": "3"} | ({"continue": token} if token else {})
        page = await api.ok("GET", CMS, params=params)
        seen += [c["metadata"]["name"] for c in page["items"]]
        pages += 1
        token = page["metadata"].get("continue", "")
        if not token:
            break
    assert seen == [f"cm-{i}" for i in range(7)] and pages == 3


async def test_delete_with_finalizer_and_status_body(api: Any, make: Any) -> None:
    await api.ok("POST", DEPLOYS, make.deployment("web"))
    gone = await api.ok("DELETE", f"{DEPLOYS}/web")
    assert gone["kind"] == "Status" and gone["status"] == "Success" and gone["details"]["name"] == "web"
    cm = make.configmap("held")
    cm["metadata"]["finalizers"] = ["example.com/hold"]
    await api.ok("POST", CMS, cm)
    pending = await api.ok("DELETE", f"{CMS}/held")
    assert pending["metadata"]["deletionTimestamp"]
    still = await api.ok("GET", f"{CMS}/held")
    still["metadata"]["finalizers"] = []
    await api.ok("PUT", f"{CMS}/held", still)
    status, _ = await api.call("GET", f"{CMS}/held")
    assert status == 404


async def test_delete_preconditions(api: Any, make: Any) -> None:
    await api.ok("POST", CMS, make.configmap("c"))
    status, body = await api.call("DELETE", f"{CMS}/c", {"preconditions": {"uid": "nope"}})
    assert status == 409 and "Precondition failed: UID in precondition: nope" in body["message"]


async def test_deletecollection(api: Any, make: Any) -> None:
    for name, team in (("a", "x"), ("b", "x"), ("c", "y")):
        await api.ok("POST", CMS, make.configmap(name, {"team": team}))
    await api.ok("DELETE", CMS, params={"labelSelector": "team=x"})
    left = await api.ok("GET", CMS)
    assert [c["metadata"]["name"] for c in left["items"]] == ["c"]


async def test_dry_run_creates_nothing(api: Any, make: Any) -> None:
    out = await api.ok("POST", CMS, make.configmap("ghost"), params={"dryRun": "All"})
    assert out["metadata"]["name"] == "ghost"
    status, _ = await api.call("GET", f"{CMS}/ghost")
    assert status == 404


async def test_services_get_cluster_ips(api: Any) -> None:
    svc = {
        "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]},
    }
    out = await api.ok("POST", "/api/v1/namespaces/default/services", svc)
    spec = out["spec"]
    assert spec["clusterIP"].startswith("10.") and spec["clusterIPs"] == [spec["clusterIP"]]
    assert spec["type"] == "ClusterIP" and spec["ports"][0]["protocol"] == "TCP"
    assert spec["ipFamilies"] == ["IPv4"]
    headless = {
        "metadata": {"name": "hl"},
        "spec": {"clusterIP": "None", "selector": {"a": "b"}, "ports": [{"port": 1}]},
    }
    out = await api.ok("POST", "/api/v1/namespaces/default/services", headless)
    assert out["spec"]["clusterIP"] == "None"
    # A PUT without clusterIP keeps the allocated one.
    web = await api.ok("GET", "/api/v1/namespaces/default/services/web")
    ip = web["spec"]["clusterIP"]
    del web["spec"]["clusterIP"], web["spec"]["clusterIPs"]
    again = await api.ok("PUT", "/api/v1/namespaces/default/services/web", web)
    assert again["spec"]["clusterIP"] == ip


async def test_field_validation_strict_and_warn(api: Any, make: Any) -> None:
    cm = make.configmap("c")
    cm["bogus"] = 1
    status, body = await api.call("POST", CMS, cm)
    assert status == 400 and 'unknown field "bogus"' in body["message"]
    async with api.session.post(api.url + CMS, json=cm, params={"fieldValidation": "Warn"}) as r:
        assert r.status == 201
        assert r.headers["Warning"] == '299 - "unknown field \\"bogus\\""'
    cm["metadata"]["name"] = "d"
    await api.ok("POST", CMS, cm, params={"fieldValidation": "Ignore"})


async def test_invalid_object_is_422_with_causes(api: Any, make: Any) -> None:
    dep = make.deployment("Bad_Name")
    status, body = await api.call("POST", DEPLOYS, dep)
    assert status == 422 and body["reason"] == "Invalid"
    assert body["message"].startswith('Deployment.apps "Bad_Name" is invalid: ')
    assert any(c["field"] == "metadata.name" for c in body["details"]["causes"])


async def test_update_with_a_foreign_uid_is_a_precondition_conflict(api: Any, make: Any) -> None:
    created = await api.ok("POST", CMS, make.configmap("c"))
    created["metadata"]["uid"] = "someone-else"
    status, body = await api.call("PUT", f"{CMS}/c", created)
    assert status == 409
    assert "Precondition failed: UID in precondition: someone-else" in body["message"]


async def test_unknown_propagation_policy_is_invalid(api: Any, make: Any) -> None:
    await api.ok("POST", CMS, make.configmap("c"))
    status, body = await api.call("DELETE", f"{CMS}/c", {"propagationPolicy": "Sideways"})
    assert status == 422 and body["details"]["causes"][0]["field"] == "propagationPolicy"
    assert (await api.call("GET", f"{CMS}/c"))[0] == 200


async def test_pages_of_a_list_show_one_snapshot(api: Any, make: Any) -> None:
    for i in range(5):
        await api.ok("POST", CMS, make.configmap(f"cm-{i}", v="old"))
    first = await api.ok("GET", CMS, params={"limit": "2"})
    token = first["metadata"]["continue"]
    # Changes after the first page: none of them may show on the later pages.
    await api.ok("POST", CMS, make.configmap("cm-2a"))
    await api.ok("DELETE", f"{CMS}/cm-3")
    await api.ok("PATCH", f"{CMS}/cm-4", {"data": {"v": "new"}}, content_type="application/merge-patch+json")
    rest = await api.ok("GET", CMS, params={"limit": "10", "continue": token})
    assert rest["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
    assert [(c["metadata"]["name"], c["data"]["v"]) for c in rest["items"]] == [
        ("cm-2", "old"),
        ("cm-3", "old"),
        ("cm-4", "old"),
    ]
    fresh = await api.ok("GET", CMS)
    assert [c["metadata"]["name"] for c in fresh["items"]] == ["cm-0", "cm-1", "cm-2", "cm-2a", "cm-4"]


async def test_exact_resource_version_list_reads_the_past(api: Any, make: Any) -> None:
    created = await api.ok("POST", CMS, make.configmap("a", v="1"))
    rv = created["metadata"]["resourceVersion"]
    await api.ok("PATCH", f"{CMS}/a", {"data": {"v": "2"}}, content_type="application/merge-patch+json")
    await api.ok("POST", CMS, make.configmap("b"))
    past = await api.ok("GET", CMS, params={"resourceVersion": rv, "resourceVersionMatch": "Exact"})
    assert past["metadata"]["resourceVersion"] == rv
    assert [(c["metadata"]["name"], c["data"]["v"]) for c in past["items"]] == [("a", "1")]
    status, body = await api.call("GET", CMS, params={"resourceVersionMatch": "Exact"})
    assert status == 422 and body["details"]["causes"][0]["field"] == "resourceVersionMatch"


async def test_dry_run_update_patch_and_delete_change_nothing(api: Any, make: Any) -> None:
    created = await api.ok("POST", CMS, make.configmap("kept", a="1"))
    dry = {"dryRun": "All"}
    changed = {**created, "data": {"a": "2"}}
    assert (await api.ok("PUT", f"{CMS}/kept", changed, params=dry))["data"] == {"a": "2"}
    patch = {"data": {"a": "3"}}
    out = await api.ok("PATCH", f"{CMS}/kept", patch, params=dry, content_type="application/merge-patch+json")
    assert out["data"] == {"a": "3"}
    await api.ok("DELETE", f"{CMS}/kept", params=dry)
    assert await api.ok("GET", f"{CMS}/kept") == created


async def test_yaml_request_bodies(api: Any) -> None:
    body = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-yaml\ndata:\n  a: b\n"
    async with api.session.post(
        api.url + CMS, data=body.encode(), headers={"Content-Type": "application/yaml"}
    ) as resp:
        assert resp.status == 201 and (await resp.json())["data"] == {"a": "b"}
