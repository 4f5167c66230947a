"""`kubectl apply -k deploy/overlays/X` against the sandbox with the real kubectl and its default
(strict) validation: it exits 0, every rendered object exists afterwards (the CRDs Established), and a
second apply changes nothing. kubectl still reports the PodDisruptionBudget "configured" then, as it
does against a real cluster (its `spec.selector` has patch strategy `replace`, so kubectl's computed
patch is never empty); unchanged resourceVersions show the server wrote nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest
from deploy_support import DEPLOY, OVERLAYS, installed_sandbox, kubectl, render

from servicegroup.sandbox import Sandbox

pytestmark = pytest.mark.kubectl

Obj = dict[str, Any]


async def served(url: str) -> dict[tuple[str, str], tuple[str, bool]]:
    """(apiVersion, kind) -> (plural, namespaced), from the sandbox's discovery."""
    result = {}
    async with aiohttp.ClientSession() as session:

        async def get(path: str) -> Obj:
            async with session.get(url + path) as response:
                body: Obj = await response.json()
                return body

        versions = ["v1"]
        for group in (await get("/apis"))["groups"]:
            versions += [v["groupVersion"] for v in group["versions"]]
        for version in versions:
            listing = await get(f"/api/{version}" if version == "v1" else f"/apis/{version}")
            for res in listing["resources"]:
                if "/" not in res["name"]:
                    result[(version, res["kind"])] = (res["name"], res["namespaced"])
    return result


async def exists(url: str, obj: Obj, plural: str, namespaced: bool) -> Obj | None:
    version = obj["apiVersion"]
    prefix = f"/api/{version}" if version == "v1" else f"/apis/{version}"
    if namespaced:
        prefix += f"/namespaces/{obj['metadata']['namespace']}"
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{url}{prefix}/{plural}/{obj['metadata']['name']}") as response,
    ):
        return await response.json() if response.status == 200 else None


def _ref(obj: Obj) -> str:
    meta = obj["metadata"]
    return f"{obj['kind']}/{meta.get('namespace', '')}/{meta['name']}"


async def live_versions(url: str, objs: list[Obj]) -> dict[str, str]:
    """Every rendered object's live resourceVersion; each must be served and exist (CRDs Established)."""
    kinds = await served(url)
    versions = {}
    for obj in objs:
        key = (obj["apiVersion"], obj["kind"])
        assert key in kinds, f"the sandbox does not serve {key}"
        live = await exists(url, obj, *kinds[key])
        assert live is not None, f"{_ref(obj)} was not created"
        if obj["kind"] == "CustomResourceDefinition":
            conditions = {c["type"]: c["status"] for c in live["status"]["conditions"]}
            assert conditions["Established"] == "True"
        versions[_ref(obj)] = live["metadata"]["resourceVersion"]
    return versions


def _unchanged(line: str) -> bool:
    """kubectl's verdict for one object of a repeated apply (see the module docstring for PDBs)."""
    return line.endswith(" unchanged") or (
        line.startswith("poddisruptionbudget.policy/") and line.endswith(" configured")
    )


@pytest.mark.parametrize("name", OVERLAYS)
async def test_apply_k_installs_every_rendered_object(sandbox: Sandbox, tmp_path: Path, name: str) -> None:
    sb, kubeconfig = sandbox, sandbox.write_kubeconfig(tmp_path / "kubeconfig")
    overlay = str(DEPLOY / "overlays" / name)
    objs = render(Path(overlay))
    code, out, err = await kubectl(kubeconfig, "apply", "-k", overlay)
    assert code == 0, err
    assert len(out.splitlines()) == len(objs), out
    installed = await live_versions(sb.url, objs)
    code, again, err = await kubectl(kubeconfig, "apply", "-k", overlay)
    assert code == 0, err
    assert len(again.splitlines()) == len(objs) and all(map(_unchanged, again.splitlines())), again
    assert await live_versions(sb.url, objs) == installed, "the second apply wrote to the server"


async def test_edge_daemonsets_roll_out_to_every_node(tmp_path: Path) -> None:
    """On the docs' five nodes (pods simulated), the edge overlay's proxy and DNS DaemonSets put one
    pod on every node, and `kubectl rollout status` (docs/dns.md) reports them rolled out."""
    async with installed_sandbox() as (sandbox, _):
        kubeconfig = sandbox.write_kubeconfig(tmp_path / "kubeconfig")
        code, _, err = await kubectl(kubeconfig, "apply", "-k", str(DEPLOY / "overlays" / "edge"))
        assert code == 0, err
        for name in ("servicegroup-proxy", "servicegroup-dns"):
            rollout = ("-n", "kube-system", "rollout", "status", f"daemonset/{name}", "--timeout=30s")
            code, out, err = await kubectl(kubeconfig, *rollout)
            assert code == 0 and "successfully rolled out" in out, out + err
        code, out, err = await kubectl(kubeconfig, "-n", "kube-system", "get", "pods", "-o", "name")
        assert code == 0 and len(out.split()) == 2 * 5, out + err
