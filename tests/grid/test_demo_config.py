"""grid/demo_config.py against the sandbox: two malls with their own config, then a new one that
comes up with the base config."""

from __future__ import annotations

from grid.conftest import Cluster
from servicegroup.grid.demo_config import demo
from servicegroup.kube.resources import CONFIGMAPS


async def test_demo_shows_two_sites_then_a_new_one_with_the_base_config(cluster: Cluster) -> None:
    lines = await demo(cluster.client, wait_seconds=30)
    text = "\n".join(lines)
    assert "beijing: ConfigMap mall-config-beijing {checkout-lanes=12, currency=CNY, mall=beijing" in text
    assert (
        "guangzhou: ConfigMap mall-config-guangzhou {checkout-lanes=6, currency=CNY, mall=guangzhou}" in text
    )
    assert "shanghai: ConfigMap mall-config-shanghai {checkout-lanes=4, currency=CNY, mall=shanghai}" in text
    assert "Deployment mall-app-beijing replicas=2" in text and "mall-app-shanghai replicas=1" in text
    new = await cluster.client.get(CONFIGMAPS, "mall-config-shanghai", "site-config")
    assert new["data"] == {"mall": "shanghai", "currency": "CNY", "checkout-lanes": "4"}
