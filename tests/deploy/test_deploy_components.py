"""Every long-running component, as the real command against the sandbox: JSON logs, /healthz,
/readyz, /metrics parsed with prometheus_client's parser and holding the families operators alert
on, and a clean exit soon after SIGTERM (the pods' terminationGracePeriodSeconds is 30 s)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from deploy_support import (
    MANAGER_NAMESPACE,
    Component,
    component,
    create,
    example,
    installed_sandbox,
    scrape,
    status_of,
)
from prometheus_client.metrics_core import Metric

from servicegroup.kube.client import Client
from servicegroup.kube.resources import ENDPOINTS, SERVICES
from servicegroup.sandbox import Sandbox
from waits import eventually

pytestmark = pytest.mark.slow

SIGTERM_BOUND = 20.0  # well inside the 30 s grace period of the manifests
SHARED = {
    "servicegroup_api_requests": "counter",  # API requests and errors (by code)
    "servicegroup_api_retries": "counter",  # read retries after 429/5xx/no answer
    "servicegroup_watch_restarts": "counter",
    "servicegroup_informer_relists": "counter",
}
EXPECTED = {
    "manager": {
        **SHARED,
        "servicegroup_reconcile": "counter",
        "servicegroup_reconcile_seconds": "histogram",
        "servicegroup_workqueue_depth": "gauge",
        "servicegroup_workqueue_adds": "counter",
        "servicegroup_workqueue_retries": "counter",
        "servicegroup_leader": "gauge",
        "servicegroup_events_dropped": "counter",
    },
    "proxy": {
        **SHARED,
        "servicegroup_proxy_watchers": "gauge",
        "servicegroup_proxy_watch_events": "counter",
        "servicegroup_proxy_slow_watchers_closed": "counter",
        "servicegroup_proxy_watch_backlog_max": "gauge",
        "servicegroup_proxy_filtered_endpoints": "gauge",  # endpoints hidden by topology
    },
    "dns": {
        **SHARED,
        "servicegroup_dns_hosts_entries": "gauge",
        "servicegroup_dns_hosts_writes": "counter",
    },
}


@pytest.fixture
async def cluster() -> AsyncIterator[tuple[Sandbox, Client]]:
    async with installed_sandbox() as installed:
        yield installed


def command(name: str, sandbox: Sandbox, tmp_path: Path) -> list[str]:
    kubeconfig = sandbox.write_kubeconfig(tmp_path / "kubeconfig")
    common = [f"--kubeconfig={kubeconfig}", "--health-listen=127.0.0.1:0"]
    return {
        "manager": [
            "manager",
            *common,
            "--controllers=grid,site",
            "--leader-elect",
            f"--leader-elect-namespace={MANAGER_NAMESPACE}",
        ],
        "proxy": ["proxy", *common, "--node=bj-1", "--listen=127.0.0.1:0"],
        "dns": ["dns", *common, "--node=bj-1", f"--hosts-file={tmp_path / 'hosts'}"],
    }[name]


async def ready(health: str) -> bool:
    return await status_of(f"{health}/readyz") == 200


async def exercise(name: str, running: Component, client: Client) -> None:
    """Give each component work, so its metrics carry samples and not only their declarations."""
    if name == "manager":
        await create(client, *example("01-deploymentgrid.yaml"))
    elif name == "proxy":
        await exercise_proxy(running, client)


async def exercise_proxy(running: Component, client: Client) -> None:
    """One watching client, and a topology Service with an endpoint on bj-1's unit and two in
    guangzhou: the proxy for bj-1 counts its client and the two endpoints it hides."""
    health = await running.address("health server listening on")
    await client.create(SERVICES, HIDING_SERVICE, namespace="default")
    await client.create(ENDPOINTS, HIDING_ENDPOINTS, namespace="default")
    await eventually(lambda: _hidden(health, 2), timeout=20, message="proxy counts hidden endpoints")
    proxy = await running.address("topology proxy for node")
    async with aiohttp.ClientSession() as session:
        response = await session.get(f"{proxy}/api/v1/services?watch=true")
        try:
            await eventually(lambda: _watchers(health), timeout=20, message="proxy counts its client")
        finally:
            response.close()


HIDING_SERVICE = {
    "metadata": {"name": "hiding", "annotations": {"topologyKeys": '["location"]'}},
    "spec": {"ports": [{"port": 80}]},
}
HIDING_ENDPOINTS = {
    "metadata": {"name": "hiding"},
    "subsets": [
        {
            "addresses": [
                {"ip": f"10.0.0.{i}", "nodeName": node} for i, node in enumerate(("bj-2", "gz-1", "gz-2"))
            ],
            "ports": [{"port": 80}],
        }
    ],
}


async def _hidden(health: str, count: int) -> bool:
    family = (await scrape(health))["servicegroup_proxy_filtered_endpoints"]
    return any(s.labels.get("resource") == "endpoints" and s.value == count for s in family.samples)


async def _watchers(health: str) -> bool:
    family = (await scrape(health))["servicegroup_proxy_watchers"]
    return any(s.labels.get("resource") == "services" and s.value == 1 for s in family.samples)


def sample_labels(family: Metric) -> list[dict[str, str]]:
    return [s.labels for s in family.samples]


@pytest.mark.parametrize("name", ["manager", "proxy", "dns"])
async def test_component_serves_health_metrics_and_stops_on_sigterm(
    cluster: tuple[Sandbox, Client], tmp_path: Path, name: str
) -> None:
    sandbox, client = cluster
    async with component(command(name, sandbox, tmp_path), tmp_path / f"{name}.log") as running:
        health = await running.address("health server listening on")
        assert await status_of(f"{health}/healthz") == 200
        await eventually(lambda: ready(health), timeout=30, message=f"{name} ready")
        await exercise(name, running, client)
        families = await scrape(health)
        for family, kind in EXPECTED[name].items():
            assert family in families, f"{name} does not export {family}"
            assert families[family].type == kind, family
        requests = sample_labels(families["servicegroup_api_requests"])
        assert {"verb": "list", "resource": "nodes", "code": "200"} in requests
        if name == "manager":
            await eventually(lambda: _reconciled(health), timeout=30, message="reconcile counted")
        code = await asyncio.wait_for(running.terminate(), SIGTERM_BOUND + 5)
        assert code == 0, running.lines()[-20:]
        records = running.json_lines()  # --log-format json: every line is one JSON object
        assert records and all({"ts", "level", "logger", "msg"} <= set(r) for r in records)


async def _reconciled(health: str) -> bool:
    families = await scrape(health)
    counted = {
        s.labels["controller"]
        for s in families["servicegroup_reconcile"].samples
        if s.name == "servicegroup_reconcile_total" and s.value > 0
    }
    timed = {
        s.labels["controller"]
        for s in families["servicegroup_reconcile_seconds"].samples
        if s.name == "servicegroup_reconcile_seconds_count" and s.value > 0
    }
    return "deployment-grid-controller" in counted & timed
