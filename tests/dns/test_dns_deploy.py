"""deploy/base/dns/ and deploy/coredns/ stay in step with the code and with each other: the
DaemonSet's args parse with today's CLI, probes hit the health port, RBAC grants exactly what the
daemon watches, the edge Corefile and the snippet read the file the daemon writes, and the volume
patch merges into a CoreDNS workload."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from servicegroup.cli import build_parser
from servicegroup.dns.daemon import HostsDaemon
from servicegroup.kube.client import Client
from servicegroup.kube.informer import InformerFactory
from servicegroup.kube.resources import DEPLOYMENTS
from servicegroup.kube.serve import parse_listen
from servicegroup.sandbox import Sandbox

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy" / "base" / "dns"
COREDNS = ROOT / "deploy" / "coredns"
Obj = dict[str, Any]


def documents(name: str) -> dict[str, Obj]:
    return {doc["kind"]: doc for doc in yaml.safe_load_all((DEPLOY / name).read_text())}


def pod_spec() -> Obj:
    spec: Obj = documents("daemonset.yaml")["DaemonSet"]["spec"]["template"]["spec"]
    return spec


def daemon_args() -> Any:
    return build_parser().parse_args(pod_spec()["containers"][0]["args"])


def hosts_block(corefile: str) -> str:
    """The `hosts ... { ... }` block of a Corefile, dedented."""
    found = re.search(r"^([ \t]*)hosts .*?^\1\}$", corefile, re.MULTILINE | re.DOTALL)
    assert found, corefile
    return textwrap.dedent(found.group(0))


def test_manifests_are_valid_kubernetes_objects() -> None:
    version = kubernetes_validate.utils.latest_version()
    for name in ("daemonset.yaml", "rbac.yaml", "coredns-config.yaml"):
        for doc in yaml.safe_load_all((DEPLOY / name).read_text()):
            kubernetes_validate.validate(doc, version, strict=True)


def test_daemonset_args_parse_and_probes_hit_the_health_port() -> None:
    args = daemon_args()
    assert args.func.__module__ == "servicegroup.dns.command"
    host, port = parse_listen(args.health_listen)
    container = pod_spec()["containers"][0]
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        assert container[probe]["httpGet"] == {"host": host, "path": path, "port": port}


def test_hosts_directory_is_the_mounted_host_path() -> None:
    spec = pod_spec()
    directory = str(daemon_args().hosts_file.parent)
    mounts = {m["name"]: m["mountPath"] for m in spec["containers"][0]["volumeMounts"]}
    volumes = {v["name"]: v["hostPath"]["path"] for v in spec["volumes"] if "hostPath" in v}
    assert [name for name, path in mounts.items() if path == directory] == ["hosts-dir"]
    assert volumes["hosts-dir"] == directory
    init = spec["initContainers"][0]
    assert directory in " ".join(init["command"])
    assert init["securityContext"]["capabilities"] == {"drop": ["ALL"], "add": ["CHOWN"]}


def test_daemon_runs_unprivileged_on_the_host_network() -> None:
    spec = pod_spec()
    assert spec["hostNetwork"] is True
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] != 0
    context = spec["containers"][0]["securityContext"]
    assert context == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert spec["containers"][0]["resources"]["limits"].keys() == {"cpu", "memory"}


def test_rbac_grants_read_only_access_to_what_the_daemon_watches() -> None:
    rules = documents("rbac.yaml")["ClusterRole"]["rules"]
    granted = {
        (group, resource) for rule in rules for group in rule["apiGroups"] for resource in rule["resources"]
    }
    daemon = HostsDaemon(InformerFactory(Client("http://127.0.0.1:1")), node="n", hosts_file="/tmp/hosts")
    assert granted == {(informer.res.group, informer.res.plural) for informer in daemon.informers}
    assert all(rule["verbs"] == ["list", "watch"] for rule in rules)


def test_corefile_snippet_serves_the_daemons_file_with_reload_and_fallthrough() -> None:
    args = daemon_args()
    snippet = (COREDNS / "Corefile.snippet").read_text()
    block = hosts_block(snippet)
    assert block.splitlines()[0] == f"hosts {args.hosts_file} {args.cluster_domain} {{"
    options = [line.strip() for line in block.splitlines()[1:-1]]
    assert "fallthrough" in options
    assert any(option.startswith("reload ") for option in options)
    assert any(option.startswith("ttl ") for option in options)  # the plugin's default is 3600 s


def test_edge_corefile_is_the_proxy_reading_corefile_plus_the_snippet() -> None:
    corefile = documents("coredns-config.yaml")["ConfigMap"]["data"]["Corefile"]
    assert hosts_block(corefile) == hosts_block((COREDNS / "Corefile.snippet").read_text())
    assert "endpoint http://127.0.0.1:51006" in corefile
    assert corefile.index("hosts ") < corefile.index("kubernetes "), "hosts answers before kubernetes"


@pytest.fixture
async def sandbox_client() -> Any:
    sandbox = Sandbox()
    client = Client(await sandbox.start("127.0.0.1", 0))
    try:
        yield client
    finally:
        await client.close()
        await sandbox.stop()


async def test_volume_patch_merges_into_a_coredns_workload(sandbox_client: Client) -> None:
    labels = {"k8s-app": "edge-coredns"}
    coredns = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "edge-coredns", "namespace": "kube-system"},
        "spec": {
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [
                        {
                            "name": "coredns",
                            "image": "registry.k8s.io/coredns/coredns:v1.11.3",
                            "volumeMounts": [{"name": "config-volume", "mountPath": "/etc/coredns"}],
                        }
                    ],
                    "volumes": [{"name": "config-volume", "configMap": {"name": "edge-coredns"}}],
                },
            },
        },
    }
    await sandbox_client.create(DEPLOYMENTS, coredns)
    patch = yaml.safe_load((COREDNS / "coredns-volume-patch.yaml").read_text())
    merged = await sandbox_client.patch(
        DEPLOYMENTS, "edge-coredns", patch, namespace="kube-system", patch_type="strategic"
    )
    spec = merged["spec"]["template"]["spec"]
    directory = str(daemon_args().hosts_file.parent)
    assert [v["name"] for v in spec["volumes"]] == ["config-volume", "servicegroup-dns"]
    assert spec["volumes"][1]["hostPath"]["path"] == directory
    mounts = spec["containers"][0]["volumeMounts"]
    assert {"name": "servicegroup-dns", "mountPath": directory, "readOnly": True} in mounts
    assert {"name": "config-volume", "mountPath": "/etc/coredns"} in mounts
