"""The uninstall order of docs/install.md, with the real kubectl against the sandbox: the overlay is
applied with kubectl's default validation (every rendered object then exists), custom resources are
deleted while the manager runs (it removes its finalizers after cleaning the nodes), then
`kubectl delete -k` removes every rendered object, the CRDs included, and nothing is left behind."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from deploy_support import (
    CRDS,
    DEPLOY,
    NODEGROUPS,
    NODEUNITS,
    component,
    create,
    example,
    installed_sandbox,
    kubectl,
    render,
)

from servicegroup.kube.client import Client
from servicegroup.kube.resources import NODES
from servicegroup.sandbox import Sandbox
from waits import eventually

pytestmark = [pytest.mark.kubectl, pytest.mark.slow]


@pytest.fixture
async def cluster() -> AsyncIterator[tuple[Sandbox, Client]]:
    async with installed_sandbox() as installed:
        yield installed


async def test_documented_uninstall_order_leaves_nothing(
    cluster: tuple[Sandbox, Client], tmp_path: Path
) -> None:
    sandbox, client = cluster
    kubeconfig = sandbox.write_kubeconfig(tmp_path / "kubeconfig")
    overlay = str(DEPLOY / "overlays" / "cloud-only")
    code, out, err = await kubectl(kubeconfig, "apply", "-k", overlay)
    assert code == 0, out + err
    rendered = len(render(Path(overlay)))
    code, out, err = await kubectl(kubeconfig, "get", "-k", overlay, "-o", "name")
    assert code == 0 and len(out.splitlines()) == rendered, out
    args = ["manager", f"--kubeconfig={kubeconfig}", "--controllers=grid,site", "--health-listen=127.0.0.1:0"]
    async with component(args, tmp_path / "manager.log") as manager:
        await create(client, *example("07-nodeunits.yaml"))

        async def labelled() -> bool:
            node = await client.get(NODES, "bj-1")
            unit = await client.get(NODEUNITS, "beijing")
            return node["metadata"]["labels"].get("site") == "beijing" and bool(
                unit["metadata"].get("finalizers")
            )

        await eventually(labelled, timeout=30, message="units label nodes and hold finalizers")
        # step 1: the custom resources, while the manager runs
        for kind in ("nodegroups", "nodeunits"):
            code, out, err = await kubectl(
                kubeconfig, "delete", kind, "--all", "--wait=true", "--timeout=30s"
            )
            assert code == 0, out + err
        assert not (await client.list(NODEUNITS))["items"]
        assert not (await client.list(NODEGROUPS))["items"]
        labels = (await client.get(NODES, "bj-1"))["metadata"]["labels"]
        assert "site" not in labels, "the manager cleaned the node before releasing the unit"
        assert await manager.terminate() == 0
    # step 3: everything else, CRDs included
    # --ignore-not-found as docs/install.md: the namespace may take its objects first
    code, out, err = await kubectl(
        kubeconfig, "delete", "-k", overlay, "--ignore-not-found", "--wait=true", "--timeout=30s"
    )
    assert code == 0 and all(" deleted" in line for line in out.splitlines()), out
    code, out, err = await kubectl(kubeconfig, "get", "-k", overlay, "--ignore-not-found", "-o", "name")
    assert code == 0 and not out.strip(), f"left behind: {out}"
    names = {crd["metadata"]["name"] for crd in (await client.list(CRDS))["items"]}
    assert not {n for n in names if "superedge.io" in n or "servicegroup.io" in n}, names
