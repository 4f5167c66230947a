"""`kubectl apply -k deploy/overlays/X` against the sandbox with the real kubectl: everything the
sandbox serves is created (the CRDs become Established), a second apply changes nothing, and the
only objects left out are of kinds the sandbox does not serve (its discovery decides, so this test
tightens by itself when the sandbox learns DaemonSets, RBAC or PodDisruptionBudgets)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from deploy_support import DEPLOY, KUBECTL, OVERLAYS, render

from servicegroup.sandbox import Sandbox

pytestmark = pytest.mark.kubectl

Obj = dict[str, Any]


@pytest.fixture
async def sandbox(tmp_path: Path) -> AsyncIterator[tuple[Sandbox, Path]]:
    sb = Sandbox()
    await sb.start("127.0.0.1", 0)
    try:
        yield sb, sb.write_kubeconfig(tmp_path / "kubeconfig")
    finally:
        await sb.stop()


async def kubectl(kubeconfig: Path, *args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        KUBECTL,
        f"--kubeconfig={kubeconfig}",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


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


@pytest.mark.parametrize("name", OVERLAYS)
async def test_apply_k_installs_what_the_sandbox_serves(sandbox: tuple[Sandbox, Path], name: str) -> None:
    sb, kubeconfig = sandbox
    overlay = str(DEPLOY / "overlays" / name)
    # --validate=false: kubectl's client-side schema check fails on the sandbox's OpenAPI answer for
    # groups it does not serve (reported); the server still validates every object it accepts.
    code, _, err = await kubectl(kubeconfig, "apply", "-k", overlay, "--validate=false")
    kinds = await served(sb.url)
    objs = render(Path(overlay))
    unserved = {(o["apiVersion"], o["kind"]) for o in objs if (o["apiVersion"], o["kind"]) not in kinds}
    for line in err.splitlines():
        assert "resource mapping not found" in line or "ensure CRDs are installed first" in line, line
        if found := re.search(r'no matches for kind "(\w+)" in version "([\w./]+)"', line):
            assert (found.group(2), found.group(1)) in unserved, line
    assert code == (1 if unserved else 0), err
    for obj in objs:
        key = (obj["apiVersion"], obj["kind"])
        if key in kinds:
            live = await exists(sb.url, obj, *kinds[key])
            assert live is not None, f"{key} {obj['metadata']['name']} was not created"
            if obj["kind"] == "CustomResourceDefinition":
                conditions = {c["type"]: c["status"] for c in live["status"]["conditions"]}
                assert conditions["Established"] == "True"
    _, again, _ = await kubectl(kubeconfig, "apply", "-k", overlay, "--validate=false")
    assert again.strip() and all(line.endswith(" unchanged") for line in again.splitlines()), again
