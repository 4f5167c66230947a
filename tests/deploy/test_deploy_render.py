"""deploy/: every overlay renders with kubectl's kustomize, every object validates against the
Kubernetes schemas, the pods follow the operating rules (non-root, read-only root, limits, probes on
the health port), and what is copied from the component sessions' manifests stays equal to them."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from deploy_support import DEPLOY, OVERLAYS, find, render, with_components

from servicegroup.api.crds import all_crds
from servicegroup.cli import build_parser
from servicegroup.kube.serve import parse_listen
from servicegroup.manager import selected_controllers

Obj = dict[str, Any]
# the oldest supported release (CRD validation rules use fieldPath, new in 1.28), a middle one, the newest
KUBERNETES_VERSIONS = ("1.28", "1.33", "1.37")
CRDS_FILE = DEPLOY / "base" / "crds" / "crds.yaml"
CRDS_HEADER = "# Generated from servicegroup.api.crds.all_crds(); do not edit (see kustomization.yaml).\n"

EXPECTED_KINDS = {
    "default": {
        "CustomResourceDefinition",
        "Namespace",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
        "ConfigMap",
        "Deployment",
        "DaemonSet",
        "PodDisruptionBudget",
    },
    "cloud-only": {
        "CustomResourceDefinition",
        "Namespace",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
        "Deployment",
        "PodDisruptionBudget",
    },
    "edge": {"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "ConfigMap", "DaemonSet"},
}


def overlay(name: str) -> list[Obj]:
    return render(DEPLOY / "overlays" / name)


def pod_specs(objs: list[Obj]) -> list[tuple[str, Obj]]:
    return [
        (o["metadata"]["name"], o["spec"]["template"]["spec"])
        for o in objs
        if "template" in o.get("spec", {})
    ]


@pytest.mark.parametrize("name", OVERLAYS)
def test_overlay_renders_the_expected_kinds(name: str) -> None:
    assert {o["kind"] for o in overlay(name)} == EXPECTED_KINDS[name]


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("name", OVERLAYS)
def test_every_object_validates_against_the_kubernetes_schema(name: str, version: str) -> None:
    for obj in overlay(name):
        kubernetes_validate.validate(obj, version, strict=True)


@pytest.mark.parametrize("components", [("fed",), ("secretgrid",), ("fed", "secretgrid")])
def test_components_render_validate_and_each_adds_its_controller(
    tmp_path: Path, components: tuple[str, ...]
) -> None:
    objs = render(with_components(tmp_path, *components))
    for obj in objs:
        kubernetes_validate.validate(obj, "1.33", strict=True)
    args = find(objs, "Deployment", "servicegroup-manager")["spec"]["template"]["spec"]["containers"][0][
        "args"
    ]
    flags = [a for a in args if a.startswith("--controllers=")]
    assert flags == ["--controllers=grid,site", *(f"--controllers={name}" for name in components)]
    assert selected_controllers([f.split("=", 1)[1] for f in flags]) == ["grid", "site", *components]


def test_base_crds_are_the_code_s() -> None:
    """crds.yaml is generated (as deploy/crds/*.yaml are, by the grid and site tests); UPDATE_CRDS=1
    rewrites it."""
    text = CRDS_HEADER + yaml.safe_dump_all(all_crds(), sort_keys=False)
    if os.environ.get("UPDATE_CRDS") == "1":
        CRDS_FILE.write_text(text)
    assert CRDS_FILE.read_text() == text, f"{CRDS_FILE} is stale: rerun with UPDATE_CRDS=1"


# Who may touch Secrets, and why, only with their opt-in Components: the fed Role reads member
# registrations in its own namespace; the secretgrid controller owns SecretGrid children
# (cluster-wide, as RBAC cannot filter by label). Nothing else; the base manager and the per-node
# daemons never.
SECRET_HOLDERS = {("Role", "servicegroup-fed-clusters"), ("ClusterRole", "servicegroup-secretgrid")}


def test_secret_access_is_limited_to_the_named_holders(tmp_path: Path) -> None:
    for objs in (
        *(overlay(name) for name in OVERLAYS),
        render(with_components(tmp_path, "fed", "secretgrid")),
    ):
        for role in (o for o in objs if o["kind"] in ("Role", "ClusterRole")):
            for rule in role["rules"]:
                assert "*" not in rule["apiGroups"] + rule["resources"] + rule["verbs"], role["metadata"]
                if "secrets" in rule["resources"]:
                    assert (role["kind"], role["metadata"]["name"]) in SECRET_HOLDERS


def test_fed_reads_secrets_only_in_its_namespace(tmp_path: Path) -> None:
    role = find(render(with_components(tmp_path, "fed")), "Role", "servicegroup-fed-clusters")
    assert role["metadata"]["namespace"] == "servicegroup-clusters"
    assert role["rules"] == [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["list", "watch"]}]


@pytest.mark.parametrize("name", ["servicegroup-proxy", "servicegroup-dns"])
def test_per_node_daemons_are_read_only(name: str) -> None:
    rules = find(overlay("default"), "ClusterRole", name)["rules"]
    assert {verb for rule in rules for verb in rule["verbs"]} == {"list", "watch"}


def test_manager_runs_two_replicas_under_leader_election_with_a_pdb() -> None:
    objs = overlay("default")
    manager = find(objs, "Deployment", "servicegroup-manager")
    args = build_parser().parse_args(manager["spec"]["template"]["spec"]["containers"][0]["args"])
    assert manager["spec"]["replicas"] == 2
    assert args.leader_elect
    pdb = find(objs, "PodDisruptionBudget", "servicegroup-manager")
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"] == manager["spec"]["selector"]["matchLabels"]
    lease_role = find(objs, "Role", "servicegroup-manager-leader-election")
    assert lease_role["metadata"]["namespace"] == manager["metadata"]["namespace"]


@pytest.mark.parametrize("name", ["servicegroup-proxy", "servicegroup-dns"])
def test_daemons_listen_on_the_node_loopback_only(name: str) -> None:
    daemon = find(overlay("edge"), "DaemonSet", name)
    spec = daemon["spec"]["template"]["spec"]
    assert spec["hostNetwork"] is True
    args = build_parser().parse_args(spec["containers"][0]["args"])
    listens = [args.health_listen] + ([args.listen] if hasattr(args, "listen") else [])
    assert all(parse_listen(listen)[0] == "127.0.0.1" for listen in listens)


@pytest.mark.parametrize("name", OVERLAYS)
def test_pods_follow_the_operating_rules(name: str) -> None:
    """Non-root, read-only root, no privilege escalation, requests and limits, and probes on the
    /healthz and /readyz of the port the command serves health on."""
    for workload, spec in pod_specs(overlay(name)):
        assert spec["securityContext"]["runAsNonRoot"] is True, workload
        assert spec["securityContext"]["runAsUser"] == 65532, workload
        assert spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", workload
        for container in spec.get("initContainers", []) + spec["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, (workload, container["name"])
            assert context["allowPrivilegeEscalation"] is False, (workload, container["name"])
            assert context["capabilities"]["drop"] == ["ALL"], (workload, container["name"])
            assert set(context["capabilities"].get("add", [])) <= {"CHOWN"}, (workload, container["name"])
            assert {"cpu", "memory"} <= set(container["resources"]["requests"]), (workload, container["name"])
            assert {"cpu", "memory"} <= set(container["resources"]["limits"]), (workload, container["name"])
        for container in spec["containers"]:
            _assert_probes_hit_the_health_port(workload, container)


def _assert_probes_hit_the_health_port(workload: str, container: Obj) -> None:
    args = build_parser().parse_args(container["args"])
    host, port = parse_listen(args.health_listen)
    ports = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        get = container[probe]["httpGet"]
        assert get["path"] == path, (workload, probe)
        assert ports.get(get["port"], get["port"]) == port, (workload, probe)
        if host != "0.0.0.0":
            assert get["host"] == host, (workload, probe)


def test_overlays_pin_one_image_for_every_component() -> None:
    for name in OVERLAYS:
        images = {
            c["image"]
            for _, spec in pod_specs(overlay(name))
            for c in spec.get("initContainers", []) + spec["containers"]
        }
        assert images == {"servicegroup:0.1.0"}, name
