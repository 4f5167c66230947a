"""The official clients work unchanged: `kubernetes` (sync, in a thread) and `kubernetes_asyncio`."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import kubernetes
import kubernetes_asyncio
import pytest

from servicegroup.sandbox import Sandbox


@pytest.fixture
def kubeconfig(sandbox: Sandbox, tmp_path: Path) -> Path:
    return sandbox.write_kubeconfig(tmp_path / "kubeconfig")


def _sync_session(kubeconfig: Path, make: Any) -> dict[str, Any]:
    """CRUD, pagination, conflicts and a watch with the sync client; returns what it saw."""
    api_client = kubernetes.config.new_client_from_config(config_file=str(kubeconfig))
    core = kubernetes.client.CoreV1Api(api_client)
    apps = kubernetes.client.AppsV1Api(api_client)
    seen: dict[str, Any] = {}
    created = apps.create_namespaced_deployment("default", make.deployment("web"))
    seen["generation"] = created.metadata.generation
    seen["strategy"] = created.spec.strategy.type
    for i in range(5):
        core.create_namespaced_config_map("default", make.configmap(f"cm-{i}", {"set": "a"}))
    page = core.list_namespaced_config_map("default", limit=2, label_selector="set=a")
    names = [c.metadata.name for c in page.items]
    while page.metadata._continue:
        page = core.list_namespaced_config_map(
            "default", limit=2, label_selector="set=a", _continue=page.metadata._continue
        )
        names += [c.metadata.name for c in page.items]
    seen["paged"] = names
    stale = core.read_namespaced_config_map("cm-0", "default")
    core.patch_namespaced_config_map("cm-0", "default", {"data": {"k": "v"}})
    stale.data = {"k": "other"}
    try:
        core.replace_namespaced_config_map("cm-0", "default", stale)
    except kubernetes.client.ApiException as err:
        seen["conflict"] = err.status
    try:
        apps.read_namespaced_deployment("missing", "default")
    except kubernetes.client.ApiException as err:
        seen["missing"] = err.status
    rv = core.list_namespaced_config_map("default").metadata.resource_version
    core.delete_namespaced_config_map("cm-1", "default")
    watch = kubernetes.watch.Watch()
    for event in watch.stream(
        core.list_namespaced_config_map, "default", resource_version=rv, timeout_seconds=5
    ):
        seen["watched"] = (event["type"], event["object"].metadata.name)
        watch.stop()
    scale = apps.patch_namespaced_deployment_scale("web", "default", {"spec": {"replicas": 3}})
    seen["scale"] = scale.spec.replicas
    apps.delete_namespaced_deployment("web", "default")
    api_client.close()
    return seen


async def test_official_sync_client(kubeconfig: Path, make: Any) -> None:
    seen = await asyncio.to_thread(_sync_session, kubeconfig, make)
    assert seen == {
        "generation": 1,
        "strategy": "RollingUpdate",
        "paged": [f"cm-{i}" for i in range(5)],
        "conflict": 409,
        "missing": 404,
        "watched": ("DELETED", "cm-1"),
        "scale": 3,
    }


async def test_kubernetes_asyncio_client(kubeconfig: Path, make: Any) -> None:
    api_client = await kubernetes_asyncio.config.new_client_from_config(config_file=str(kubeconfig))
    async with api_client:
        core = kubernetes_asyncio.client.CoreV1Api(api_client)
        node = await core.create_node({"metadata": {"name": "n1", "labels": {"zone": "a"}}})
        assert node.metadata.uid
        for i in range(4):
            await core.create_namespaced_config_map("default", make.configmap(f"c{i}"))
        page = await core.list_namespaced_config_map("default", limit=3)
        assert len(page.items) == 3 and page.metadata._continue
        rest = await core.list_namespaced_config_map("default", limit=3, _continue=page.metadata._continue)
        assert [c.metadata.name for c in rest.items] == ["c3"]
        nodes = await core.list_node(label_selector="zone=a")
        assert [n.metadata.name for n in nodes.items] == ["n1"]
        rv = page.metadata.resource_version
        await core.patch_namespaced_config_map("c0", "default", {"data": {"x": "1"}})
        watch = kubernetes_asyncio.watch.Watch()
        events = []
        async with watch.stream(
            core.list_namespaced_config_map, "default", resource_version=rv, timeout_seconds=5
        ) as stream:
            async for event in stream:
                events.append((event["type"], event["object"].metadata.name, event["object"].data))
                break
        assert events == [("MODIFIED", "c0", {"x": "1"})]
        with pytest.raises(kubernetes_asyncio.client.ApiException) as err:
            await core.create_namespaced_config_map("default", make.configmap("c0"))
        assert err.value.status == 409
