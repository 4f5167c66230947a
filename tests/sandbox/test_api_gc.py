"""Garbage collection through ownerReferences, and namespace deletion."""

from __future__ import annotations

from typing import Any

from waits import eventually

DEPLOYS = "/apis/apps/v1/namespaces/default/deployments"
CMS = "/api/v1/namespaces/default/configmaps"


def owned(name: str, owner: dict[str, Any], block: bool = False) -> dict[str, Any]:
    ref = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": block,
    }
    return {"metadata": {"name": name, "ownerReferences": [ref]}, "data": {}}


async def exists(api: Any, path: str) -> bool:
    status, _ = await api.call("GET", path)
    return bool(status == 200)


async def test_background_deletion_collects_dependents(api: Any, make: Any) -> None:
    owner = await api.ok("POST", DEPLOYS, make.deployment("web"))
    await api.ok("POST", CMS, owned("child", owner))
    await api.ok("DELETE", f"{DEPLOYS}/web", {"propagationPolicy": "Background"})

    async def collected() -> bool:
        return not await exists(api, f"{CMS}/child")

    await eventually(collected)


async def test_foreground_deletion_waits_for_blocking_dependents(api: Any, make: Any) -> None:
    owner = await api.ok("POST", DEPLOYS, make.deployment("web"))
    child = owned("child", owner, block=True)
    child["metadata"]["finalizers"] = ["example.com/hold"]
    await api.ok("POST", CMS, child)
    pending = await api.ok("DELETE", f"{DEPLOYS}/web", {"propagationPolicy": "Foreground"})
    assert "foregroundDeletion" in pending["metadata"]["finalizers"]

    async def child_deleting() -> bool:
        return bool((await api.ok("GET", f"{CMS}/child"))["metadata"].get("deletionTimestamp"))

    await eventually(child_deleting)
    assert await exists(api, f"{DEPLOYS}/web")  # the owner waits for its blocking dependent
    held = await api.ok("GET", f"{CMS}/child")
    held["metadata"]["finalizers"] = []
    await api.ok("PUT", f"{CMS}/child", held)

    async def owner_gone() -> bool:
        return not await exists(api, f"{DEPLOYS}/web")

    await eventually(owner_gone)


async def test_orphan_strips_owner_references(api: Any, make: Any) -> None:
    owner = await api.ok("POST", DEPLOYS, make.deployment("web"))
    await api.ok("POST", CMS, owned("child", owner))
    await api.ok("DELETE", f"{DEPLOYS}/web", params={"propagationPolicy": "Orphan"})

    async def orphaned() -> bool:
        child = await api.ok("GET", f"{CMS}/child")
        return "ownerReferences" not in child["metadata"] and not await exists(api, f"{DEPLOYS}/web")

    await eventually(orphaned)


async def test_reference_to_missing_owner_is_collected(api: Any) -> None:
    ghost = {"metadata": {"name": "ghost", "uid": "00000000-0000-0000-0000-000000000000"}}
    await api.ok("POST", CMS, owned("stray", ghost))

    async def collected() -> bool:
        return not await exists(api, f"{CMS}/stray")

    await eventually(collected)


async def test_deleting_a_namespace_deletes_its_content(api: Any, make: Any) -> None:
    await api.ok("POST", "/api/v1/namespaces", {"metadata": {"name": "team"}})
    await api.ok("POST", "/api/v1/namespaces/team/configmaps", make.configmap("a"))
    ns = await api.ok("DELETE", "/api/v1/namespaces/team")
    assert ns["status"]["phase"] == "Terminating" and ns["metadata"]["deletionTimestamp"]
    status, body = await api.call("POST", "/api/v1/namespaces/team/configmaps", make.configmap("b"))
    assert (status, body["reason"]) in ((403, "Forbidden"), (404, "NotFound"))

    async def gone() -> bool:
        return not await exists(api, "/api/v1/namespaces/team")

    await eventually(gone)
    assert not await exists(api, "/api/v1/namespaces/team/configmaps/a")


async def test_system_namespaces_cannot_be_deleted(api: Any) -> None:
    status, body = await api.call("DELETE", "/api/v1/namespaces/default")
    assert (status, body["message"]) == (
        403,
        'namespaces "default" is forbidden: this namespace may not be deleted',
    )
