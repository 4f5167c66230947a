"""Per-site configuration walk-through: two sites with different config, then a new site that comes
up by itself with the base config (the field report: one code, one config per shopping mall).

`await demo(client)` needs a cluster with our CRDs, the grid controllers running, and the docs'
nodes (`location=beijing` on bj-1/bj-2, `location=guangzhou` on gz-1..3). It creates, in namespace
`site-config`, ConfigMapGrid `mall-config` and DeploymentGrid `mall-app` (whose pods mount and read
ConfigMap `mall-config`), then brings node gz-3 into a new site `shanghai` (by default by labelling it
`location=shanghai`), and returns the lines to print.
It leaves everything in place for kubectl; waits are bounded (`wait_seconds` per step).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final, TypeVar

from servicegroup.api.labels import CONFIG_HASH
from servicegroup.grid.kinds import CONFIGMAP_GRIDS, DEPLOYMENT_GRIDS
from servicegroup.kube.client import Client
from servicegroup.kube.errors import AlreadyExists, NotFound
from servicegroup.kube.resources import CONFIGMAPS, DEPLOYMENTS, NAMESPACES, NODES, Resource

Obj = dict[str, Any]
T = TypeVar("T")

NAMESPACE: Final = "site-config"
NEW_SITE_NODE: Final = "gz-3"
NEW_SITE: Final = "shanghai"

CONFIG_GRID: Final[Obj] = {
    "apiVersion": "servicegroup.io/v1alpha1",
    "kind": "ConfigMapGrid",
    "metadata": {"name": "mall-config", "namespace": NAMESPACE},
    "spec": {
        "gridUniqKey": "location",
        "data": {"mall": "((unit))", "currency": "CNY", "checkout-lanes": "4"},
        "units": {
            "beijing": {"data": {"checkout-lanes": "12", "promo": "spring-festival"}},
            "guangzhou": {"data": {"checkout-lanes": "6"}},
        },
    },
}

APP_GRID: Final[Obj] = {
    "apiVersion": "superedge.io/v1",
    "kind": "DeploymentGrid",
    "metadata": {"name": "mall-app", "namespace": NAMESPACE},
    "spec": {
        "gridUniqKey": "location",
        "template": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "mall-app"}},
            "template": {
                "metadata": {"labels": {"app": "mall-app"}},
                "spec": {
                    "containers": [
                        {
                            "name": "app",
                            "image": "superedge/echoserver:2.2",
                            "envFrom": [{"configMapRef": {"name": "mall-config"}}],
                            "volumeMounts": [{"name": "config", "mountPath": "/etc/mall"}],
                        }
                    ],
                    "volumes": [{"name": "config", "configMap": {"name": "mall-config"}}],
                },
            },
        },
        "overrides": [{"name": "big-mall", "units": ["beijing"], "replicas": 2}],
    },
}


async def label_new_site(client: Client) -> str:
    """The new site the plain way: one node labelled with the grid key's new value."""
    await client.patch(NODES, NEW_SITE_NODE, {"metadata": {"labels": {"location": NEW_SITE}}})
    return f"A new mall: node {NEW_SITE_NODE} labelled location={NEW_SITE} (no config written for it)"


async def demo(
    client: Client, wait_seconds: float = 60.0, add_site: Callable[[Client], Awaitable[str]] = label_new_site
) -> list[str]:
    """Run the walk-through against `client`'s cluster; the returned lines say what each site got.
    `add_site` brings node gz-3 into site shanghai and says how (a cluster whose NodeGroup owns the
    `location` label does it through a NodeUnit instead)."""
    lines = ["Per-site configuration: ConfigMapGrid mall-config + DeploymentGrid mall-app"]
    await _create(
        client, NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}
    )
    await _create(client, CONFIGMAP_GRIDS, CONFIG_GRID)
    await _create(client, DEPLOYMENT_GRIDS, APP_GRID)
    for site in ("beijing", "guangzhou"):
        lines.append(await _site(client, site, wait_seconds))
    lines.append(await add_site(client))
    lines.append(await _site(client, NEW_SITE, wait_seconds))
    return lines


async def _site(client: Client, site: str, wait_seconds: float) -> str:
    """Wait until the site's ConfigMap and its Deployment (pointing at it) exist; describe them."""
    config = await _until(
        lambda: _get(client, CONFIGMAPS, f"mall-config-{site}"), wait_seconds, f"{site} config"
    )

    async def app_ready() -> Obj | None:
        app = await _get(client, DEPLOYMENTS, f"mall-app-{site}")
        pod = (app or {}).get("spec", {}).get("template", {})
        volumes = pod.get("spec", {}).get("volumes") or [{}]
        uses = (volumes[0].get("configMap") or {}).get("name") == f"mall-config-{site}"
        return app if uses else None

    app = await _until(app_ready, wait_seconds, f"{site} Deployment")
    data = ", ".join(f"{key}={value}" for key, value in sorted((config.get("data") or {}).items()))
    pod_meta = app["spec"]["template"].get("metadata") or {}
    config_hash = (pod_meta.get("annotations") or {}).get(CONFIG_HASH)
    return (
        f"  {site}: ConfigMap mall-config-{site} {{{data}}}; Deployment mall-app-{site} "
        f"replicas={app['spec']['replicas']} mounts it (config-hash {config_hash})"
    )


async def _create(client: Client, res: Resource, obj: Obj) -> None:
    with contextlib.suppress(AlreadyExists):
        await client.create(res, obj)


async def _get(client: Client, res: Resource, name: str) -> Obj | None:
    try:
        return await client.get(res, name, NAMESPACE)
    except NotFound:
        return None


async def _until(probe: Callable[[], Awaitable[T | None]], wait_seconds: float, what: str) -> T:
    """Poll `probe` until it returns something, for at most `wait_seconds` seconds."""
    deadline = time.monotonic() + wait_seconds
    while True:
        found = await probe()
        if found is not None:
            return found
        if time.monotonic() > deadline:
            raise TimeoutError(f"demo: {what} did not appear within {wait_seconds:.0f}s")
        await asyncio.sleep(0.1)
