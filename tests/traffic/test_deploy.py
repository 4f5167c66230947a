"""deploy/base/proxy/ stays in step with the code: the DaemonSet's args parse with today's CLI, the
RBAC grants read-only access to exactly what the proxy serves, and kube-proxy is told to speak JSON
to the proxy's address."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from servicegroup.cli import build_parser
from servicegroup.traffic.sync import SERVED

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "base" / "proxy"


def documents(name: str) -> dict[str, dict[str, Any]]:
    return {doc["kind"]: doc for doc in yaml.safe_load_all((DEPLOY / name).read_text())}


def test_daemonset_args_parse_with_the_cli() -> None:
    container = documents("daemonset.yaml")["DaemonSet"]["spec"]["template"]["spec"]["containers"][0]
    args = build_parser().parse_args(container["args"])
    assert args.func.__module__ == "servicegroup.traffic.command"
    assert args.listen == "127.0.0.1:51006"
    assert args.cache_dir is not None


def test_rbac_grants_read_only_access_to_served_resources() -> None:
    rules = documents("rbac.yaml")["ClusterRole"]["rules"]
    granted = {
        (group, resource) for rule in rules for group in rule["apiGroups"] for resource in rule["resources"]
    }
    assert granted == {(res.group, res.plural) for res in SERVED}
    assert all(rule["verbs"] == ["list", "watch"] for rule in rules)


def test_kube_proxy_speaks_json_to_the_proxy() -> None:
    data = documents("kube-proxy-config.yaml")["ConfigMap"]["data"]
    config = yaml.safe_load(data["config.conf"])
    assert config["clientConnection"]["contentType"] == "application/json"
    kubeconfig = yaml.safe_load(data["kubeconfig.conf"])
    assert kubeconfig["clusters"][0]["cluster"]["server"] == "http://127.0.0.1:51006"
