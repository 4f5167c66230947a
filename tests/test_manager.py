"""servicegroup manager: controller loading, in-process Manager against the sandbox (health,
leader election between two managers, stepping down when the lease is lost) and the CLI
(one-line errors, SIGTERM releases the lease).

A tiny controller defined in this module is registered as `demo` in CONTROLLERS, so the tests do
not depend on the grid/site/fed controllers.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from servicegroup.cli import build_parser, main
from servicegroup.kube.client import Client
from servicegroup.kube.controller import Controller
from servicegroup.kube.objects import ObjectKey
from servicegroup.kube.resources import CONFIGMAPS, LEASES
from servicegroup.manager import (
    CONTROLLERS,
    MANAGER_DESCRIPTION,
    ControllerUnavailable,
    Manager,
    load_controller_modules,
    selected_controllers,
)
from servicegroup.sandbox import Sandbox
from waits import eventually

FAST = {"lease_duration": 1.0, "renew_deadline": 0.6, "retry_period": 0.1}  # for losing on purpose
STEADY = {"lease_duration": 10.0, "renew_deadline": 5.0, "retry_period": 0.1}  # a loaded machine keeps it
RECONCILED: dict[int, list[ObjectKey]] = {}


def setup(mgr: Manager) -> None:
    """The `demo` controller: reconciles ConfigMaps in `default` by recording their keys."""
    informer = mgr.informers.informer(CONFIGMAPS, "default")
    calls = RECONCILED.setdefault(id(mgr), [])

    async def reconcile(key: ObjectKey) -> None:
        calls.append(key)

    controller: Controller[ObjectKey] = Controller("demo", reconcile, workers=mgr.workers)
    controller.watch(informer)
    mgr.add_controller(controller)


@pytest.fixture(autouse=True)
def demo_controller(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(CONTROLLERS, "demo", __name__)


@pytest.fixture
async def client(sandbox: Sandbox) -> AsyncIterator[Client]:
    c = Client(sandbox.url)
    yield c
    await c.close()


def calls(mgr: Manager) -> list[ObjectKey]:
    return RECONCILED.get(id(mgr), [])


def configmap(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "default"}}


async def get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.text()


class TestLoading:
    def test_unknown_controller_is_a_one_line_cli_error(self) -> None:
        with pytest.raises(SystemExit) as caught:
            main(["manager", "--controllers", "grid,nope"])
        message = str(caught.value)
        assert message.startswith(
            "servicegroup manager: error: unknown controller(s) nope; valid: grid, site, fed, secretgrid"
        )
        assert "\n" not in message

    def test_missing_module_is_a_clear_error(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setitem(CONTROLLERS, "ghost", "servicegroup.ghost.controller")
        with pytest.raises(
            ControllerUnavailable, match=r"'ghost' is not available: module servicegroup\.ghost"
        ):
            load_controller_modules(["ghost"])
        with pytest.raises(SystemExit, match="not available"):
            main(["manager", "--controllers", "ghost"])

    async def test_start_with_unknown_controller_fails_before_starting_anything(self) -> None:
        mgr = Manager(Client("http://127.0.0.1:9"), ["nope"], health_listen="127.0.0.1:0")
        with pytest.raises(ControllerUnavailable, match="valid: grid, site, fed, secretgrid"):
            await mgr.start()
        assert mgr.informers.informers == []
        assert not mgr.is_leader
        await mgr.client.close()

    def test_real_controllers_are_registered(self) -> None:
        assert {"grid", "site", "fed", "secretgrid"} <= set(CONTROLLERS)

    def test_help_examples_parse_and_name_real_controllers(self) -> None:
        examples = [line.split("#")[0].split() for line in MANAGER_DESCRIPTION.splitlines()]
        commands = [words[1:] for words in examples if words[:2] == ["servicegroup", "manager"]]
        assert len(commands) >= 3
        for words in commands:
            args = build_parser().parse_args(words)
            assert load_controller_modules(selected_controllers(args.controllers))
        section = MANAGER_DESCRIPTION.split("\ncontrollers:\n")[1].split("\n\n")[0]
        documented = {line.split()[0] for line in section.splitlines()}
        assert documented == set(CONTROLLERS) - {"demo"}  # "demo": this module's test controller

    def test_default_is_one_cluster_s_controllers_and_flags_add_up(self) -> None:
        assert selected_controllers(None) == ["grid", "site"]  # fed and secretgrid are opt-in
        assert selected_controllers(["grid,site", "fed", " secretgrid ,grid"]) == [
            "grid",
            "site",
            "fed",
            "secretgrid",
        ]


class TestManager:
    async def test_runs_controllers_and_serves_health(self, client: Client) -> None:
        await client.create(CONFIGMAPS, configmap("before"))
        mgr = Manager(client, ["demo"], health_listen="127.0.0.1:0", workers=1)
        await mgr.start()
        try:
            await eventually(lambda: _reconciled(mgr, "before"))
            await client.create(CONFIGMAPS, configmap("after"))
            await eventually(lambda: _reconciled(mgr, "after"))
            assert mgr.health is not None
            assert await get(mgr.health.url + "/readyz") == (200, "ok\n")
            _, metrics = await get(mgr.health.url + "/metrics")
            assert 'servicegroup_reconcile_total{controller="demo",result="success"}' in metrics
            assert mgr.recorder("x") is mgr.recorder("x")
        finally:
            await mgr.stop()
        assert all(c.queue.shutting_down for c in mgr.controllers)

    async def test_readiness_checks_gate_readyz(self, client: Client) -> None:
        state = {"ok": False}
        mgr = Manager(client, [], health_listen="127.0.0.1:0")
        mgr.add_readiness_check("custom", lambda: state["ok"])
        await mgr.start()
        try:
            assert mgr.health is not None
            assert await get(mgr.health.url + "/readyz") == (503, "[-] custom failed\n")
            state["ok"] = True
            assert (await get(mgr.health.url + "/readyz"))[0] == 200
        finally:
            await mgr.stop()

    async def test_only_the_leader_reconciles_and_the_other_takes_over(self, client: Client) -> None:
        a = Manager(
            client, ["demo"], leader_elect=True, identity="a", leader_elect_namespace="kube-system", **STEADY
        )
        b = Manager(
            client, ["demo"], leader_elect=True, identity="b", leader_elect_namespace="kube-system", **STEADY
        )
        await a.start()
        await eventually(lambda: _leads(a))
        await b.start()
        await client.create(CONFIGMAPS, configmap("x"))
        try:
            await eventually(lambda: _reconciled(a, "x"))
            await eventually(lambda: _synced(b))  # informers run before leadership
            assert not b.is_leader and calls(b) == []
            await a.stop()  # graceful: drains and releases the lease
            await eventually(lambda: _leads(b))
            await eventually(lambda: _reconciled(b, "x"))  # keys queued while standing by
            assert not a.lost_leadership
        finally:
            await b.stop()

    async def test_losing_the_lease_stops_controllers_at_once(self, client: Client, sandbox: Sandbox) -> None:
        mgr = Manager(client, ["demo"], leader_elect=True, identity="a", **FAST)
        await mgr.start()
        try:
            await eventually(lambda: _leads(mgr))
            sandbox.faults.set(errors=[{"code": 500, "resource": "leases"}])
            await asyncio.wait_for(mgr.wait(), 5)
            assert mgr.lost_leadership and not mgr.is_leader
            assert all(c.queue.shutting_down for c in mgr.controllers)
        finally:
            sandbox.faults.clear()
            await mgr.stop()


async def _reconciled(mgr: Manager, name: str) -> bool:
    return ObjectKey("default", name) in calls(mgr)


async def _leads(mgr: Manager) -> bool:
    return mgr.is_leader


async def _synced(mgr: Manager) -> bool:
    return mgr.informers.has_synced


async def test_cli_sigterm_releases_the_lease(sandbox: Sandbox, client: Client, tmp_path: Path) -> None:
    kubeconfig = sandbox.write_kubeconfig(tmp_path / "kubeconfig")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent)}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "import sys, servicegroup.manager as m; m.CONTROLLERS['demo'] = 'test_manager'; "
        "from servicegroup.cli import main; sys.exit(main(sys.argv[1:]))",
        "manager",
        "--kubeconfig",
        str(kubeconfig),
        "--controllers",
        "demo",
        "--leader-elect",
        "--identity",
        "cli",
        "--health-listen",
        "127.0.0.1:0",
        "--log-format",
        "json",
        env=env,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        await eventually(lambda: _held_by(client, "cli"), timeout=30)
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), 30)
        assert process.returncode == 0, stderr.decode()
        lease = await client.get(LEASES, "servicegroup-manager", "kube-system")
        assert lease["spec"]["holderIdentity"] == ""
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def _held_by(client: Client, identity: str) -> bool:
    try:
        lease = await client.get(LEASES, "servicegroup-manager", "kube-system")
    except Exception:
        return False
    return bool(lease["spec"].get("holderIdentity") == identity)
