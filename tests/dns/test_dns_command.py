"""`servicegroup dns` as a process: flags, one-line errors, health endpoints, clean SIGTERM."""

from __future__ import annotations

import asyncio
import signal
import socket
import sys
from pathlib import Path

import aiohttp
import pytest
from dns_support import create_grid_world, create_pod, fqdn

from servicegroup.kube.client import Client
from servicegroup.sandbox import Sandbox
from waits import eventually


async def run_cli(*args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "servicegroup",
        "dns",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, stderr.decode()


BAD_FLAGS = {
    "bad-domain": (["--node", "n", "--cluster-domain", "bad_domain!"], "hosts", "is not a DNS name"),
    "missing-dir": (["--node", "n"], "absent/hosts", "does not exist"),
    "bad-listen": (["--node", "n", "--health-listen", "nowhere"], "hosts", "--health-listen"),
    "no-node": ([], "hosts", "--node is required"),
}


@pytest.mark.parametrize(("args", "hosts_path", "message"), BAD_FLAGS.values(), ids=BAD_FLAGS.keys())
async def test_bad_flags_give_a_one_line_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], hosts_path: str, message: str
) -> None:
    monkeypatch.delenv("NODE_NAME", raising=False)
    hosts = tmp_path / hosts_path
    code, stderr = await run_cli("--hosts-file", str(hosts), *args)
    assert code == 1
    assert stderr.strip().count("\n") == 0, stderr
    assert stderr.startswith("servicegroup dns: error: ")
    assert message in stderr
    assert not hosts.exists()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def test_daemon_process_writes_file_serves_health_and_stops_on_sigterm(tmp_path: Path) -> None:
    sandbox = Sandbox()
    client = Client(await sandbox.start("127.0.0.1", 0))
    kubeconfig = sandbox.write_kubeconfig(tmp_path / "kubeconfig")
    try:
        world = await create_grid_world(client, {"bj-1": "beijing"}, ["beijing"])
        await create_pod(client, world.sets["beijing"], 0, "10.244.1.5")
        hosts = tmp_path / "hosts"
        port = _free_port()
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "servicegroup",
            "dns",
            "--kubeconfig",
            str(kubeconfig),
            "--node",
            "bj-1",
            "--hosts-file",
            str(hosts),
            "--health-listen",
            f"127.0.0.1:{port}",
            "--log-format",
            "json",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        try:

            async def file_written() -> bool:
                assert hosts.exists() and f"10.244.1.5 {fqdn(0)}\n" in hosts.read_text()
                return True

            await eventually(file_written, timeout=30)

            async def ready() -> bool:
                async with (
                    aiohttp.ClientSession() as http,
                    http.get(f"http://127.0.0.1:{port}/readyz") as resp,
                ):
                    assert resp.status == 200
                async with (
                    aiohttp.ClientSession() as http,
                    http.get(f"http://127.0.0.1:{port}/metrics") as resp,
                ):
                    assert 'servicegroup_dns_hosts_entries{node="bj-1"} 1.0' in await resp.text()
                return True

            await eventually(ready, timeout=30)
        finally:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
            _, stderr = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode == 0, stderr.decode()[-2000:]
        assert b"Traceback" not in stderr
    finally:
        await client.close()
        await sandbox.stop()
