"""`servicegroup demo --once` walks through every capability on the docs' cluster."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path


def test_demo_shows_every_capability(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "servicegroup", "demo", "--once", "--kubeconfig", str(tmp_path / "kc")],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    out = done.stdout
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "kc").exists()
    # site: both units ready with their nodes
    assert re.search(r"nodeunit beijing\s+ready 2/2\s+nodes bj-1, bj-2", out)
    assert re.search(r"nodeunit guangzhou\s+ready 3/3", out)
    assert re.search(r"nodegroup location\s+units beijing, guangzhou", out)
    # grid: one Deployment per unit, pinned, and the topology Service
    assert re.search(r"deploymentgrid-demo-beijing\s+2/2 ready\s+nodeSelector=\{'location': 'beijing'\}", out)
    assert re.search(r"deploymentgrid-demo-guangzhou\s+2/2 ready", out)
    assert 'topologyKeys=["location"]' in out
    # traffic: each node sees only its own unit's endpoints
    bj = re.search(r"kube-proxy on bj-1\s+sees servicegrid-demo-svc -> (.*)", out)
    gz = re.search(r"kube-proxy on gz-1\s+sees servicegrid-demo-svc -> (.*)", out)
    assert bj and gz
    assert "@bj-" in bj.group(1) and "@gz-" not in bj.group(1)
    assert "@gz-" in gz.group(1) and "@bj-" not in gz.group(1)
    # canary: per-unit templates
    assert re.search(r"deploymentgrid-demo-zone1\s+replicas 2\s+image superedge/echoserver:2.2", out)
    assert re.search(r"deploymentgrid-demo-zone2\s+replicas 3\s+image superedge/echoserver:2.3", out)
    # DNS: the same name resolves to each unit's own pod
    for node, unit in (("bj-1", "beijing"), ("gz-1", "guangzhou")):
        line = rf"{node}: statefulsetgrid-demo-0\.\S+ -> [\d.]+ \(stateful/statefulsetgrid-demo-{unit}-0\)"
        assert re.search(line, out), node
    # fed: each member runs only its own units; the control cluster aggregates
    assert "member-a got Deployments: deploymentgrid-demo-zone1 2/2" in out
    assert "member-b got Deployments: deploymentgrid-demo-zone2 3/3" in out
    assert re.search(r"control deploymentgrid-demo Ready=True", out)
    # per-site config: each mall its own ConfigMap; a new site gets the base config by itself
    assert "beijing: ConfigMap mall-config-beijing {checkout-lanes=12, currency=CNY, mall=beijing" in out
    assert "shanghai: ConfigMap mall-config-shanghai {checkout-lanes=4, currency=CNY, mall=shanghai}" in out
