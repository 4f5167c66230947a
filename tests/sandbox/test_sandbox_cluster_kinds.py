"""The cluster-level kinds the deploy manifests use: apps/v1 DaemonSet, rbac.authorization.k8s.io/v1
roles and bindings, policy/v1 PodDisruptionBudget and scheduling.k8s.io/v1 PriorityClass. Each is
served, discovered, defaulted and validated as kube-apiserver does, printed with its upstream
columns, and emptied out of a deleted namespace."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kubectl_support import kubectl_for

from servicegroup.sandbox import Sandbox
from waits import eventually

Obj = dict[str, Any]
DAEMONSETS = "/apis/apps/v1/namespaces/default/daemonsets"
RBAC = "/apis/rbac.authorization.k8s.io/v1"
PDBS = "/apis/policy/v1/namespaces/default/poddisruptionbudgets"
PRIORITY_CLASSES = "/apis/scheduling.k8s.io/v1/priorityclasses"


def daemonset(name: str, template_labels: dict[str, str] | None = None) -> Obj:
    """A minimal DaemonSet selecting `app: name` (its template carries `template_labels`)."""
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": name},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": template_labels or {"app": name}},
                "spec": {"containers": [{"name": "agent", "image": "agent:1.0"}]},
            },
        },
    }


def role_binding(name: str, role: str) -> Obj:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role},
        "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": "default"}],
    }


def pdb(name: str, **budget: Any) -> Obj:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": name},
        "spec": {"selector": {"matchLabels": {"app": name}}, **budget},
    }


def causes(body: Obj) -> dict[str, str]:
    """field -> message of a 422's causes."""
    return {c["field"]: c["message"] for c in body["details"]["causes"]}


# -- DaemonSet ----------------------------------------------------------------------------------


async def test_daemonset_defaults_like_the_apiserver(api: Any) -> None:
    created = await api.ok("POST", DAEMONSETS, daemonset("agent"))
    spec = created["spec"]
    assert spec["updateStrategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0},
    }
    assert spec["revisionHistoryLimit"] == 10
    pod = spec["template"]["spec"]
    assert (pod["restartPolicy"], pod["dnsPolicy"], pod["schedulerName"]) == (
        "Always",
        "ClusterFirst",
        "default-scheduler",
    )
    assert pod["containers"][0]["imagePullPolicy"] == "IfNotPresent"
    assert created["metadata"]["generation"] == 1
    assert created["status"] == {
        "currentNumberScheduled": 0,
        "numberMisscheduled": 0,
        "desiredNumberScheduled": 0,
        "numberReady": 0,
    }


async def test_daemonset_selector_must_match_the_template(api: Any) -> None:
    status, body = await api.call("POST", DAEMONSETS, daemonset("agent", {"app": "other"}))
    assert status == 422 and body["message"].startswith('DaemonSet.apps "agent" is invalid: ')
    assert causes(body)["spec.template.metadata.labels"] == (
        'Invalid value: map[string]string{"app":"other"}: `selector` does not match template `labels`'
    )
    missing = daemonset("agent")
    del missing["spec"]["selector"]
    status, body = await api.call("POST", DAEMONSETS, missing)
    assert status == 422 and causes(body)["spec.selector"] == "Required value"


async def test_daemonset_selector_is_immutable_and_rollouts_move_one_way(api: Any) -> None:
    created = await api.ok("POST", DAEMONSETS, daemonset("agent"))
    created["spec"]["selector"]["matchLabels"]["tier"] = "node"
    created["spec"]["template"]["metadata"]["labels"]["tier"] = "node"
    status, body = await api.call("PUT", f"{DAEMONSETS}/agent", created)
    assert status == 422 and "field is immutable" in causes(body)["spec.selector"]
    both = daemonset("both")
    both["spec"]["updateStrategy"] = {"rollingUpdate": {"maxUnavailable": 1, "maxSurge": "10%"}}
    status, body = await api.call("POST", DAEMONSETS, both)
    assert status == 422
    assert causes(body)["spec.updateStrategy.rollingUpdate.maxSurge"] == (
        'Invalid value: "10%": may not be set when maxUnavailable is non-zero'
    )


# -- RBAC -----------------------------------------------------------------------------------------


async def test_role_binding_role_ref_cannot_change(api: Any) -> None:
    bindings = f"{RBAC}/namespaces/default/rolebindings"
    created = await api.ok("POST", bindings, role_binding("readers", "reader"))
    created["subjects"].append({"kind": "User", "name": "alice"})
    updated = await api.ok("PUT", f"{bindings}/readers", created)
    assert updated["subjects"][1]["apiGroup"] == "rbac.authorization.k8s.io", "subjects stay mutable"
    updated["roleRef"]["name"] = "writer"
    status, body = await api.call("PUT", f"{bindings}/readers", updated)
    assert status == 422
    assert causes(body)["roleRef"] == (
        'Invalid value: rbac.RoleRef{APIGroup:"rbac.authorization.k8s.io", Kind:"Role", Name:"writer"}: '
        "cannot change roleRef"
    )


async def test_rbac_objects_need_verbs_a_role_ref_and_subject_kinds(api: Any) -> None:
    role = {"metadata": {"name": "system:reader"}, "rules": [{"apiGroups": [""], "resources": ["pods"]}]}
    status, body = await api.call("POST", f"{RBAC}/clusterroles", role)
    assert status == 422
    assert causes(body) == {"rules[0].verbs": "Required value: verbs must contain at least one value"}
    role["rules"][0]["verbs"] = ["get"]
    assert (await api.ok("POST", f"{RBAC}/clusterroles", role))["metadata"]["name"] == "system:reader"
    binding = {"metadata": {"name": "b"}, "subjects": [{"name": "someone"}]}
    status, body = await api.call("POST", f"{RBAC}/clusterrolebindings", binding)
    assert status == 422
    assert causes(body) == {
        "roleRef.kind": 'Unsupported value: "": supported values: "ClusterRole"',
        "roleRef.name": "Required value",
        "subjects[0].kind": 'Unsupported value: "": supported values: "ServiceAccount", "User", "Group"',
    }


# -- PodDisruptionBudget and PriorityClass ---------------------------------------------------------


async def test_pdb_takes_min_available_or_max_unavailable_not_both(api: Any) -> None:
    status, body = await api.call("POST", PDBS, pdb("web", minAvailable=1, maxUnavailable="50%"))
    assert status == 422
    assert causes(body)["spec"].endswith(": minAvailable and maxUnavailable cannot be both set")
    created = await api.ok("POST", PDBS, pdb("web", minAvailable="50%"))
    assert created["metadata"]["generation"] == 1 and created["status"]["disruptionsAllowed"] == 0


async def test_system_priority_classes_exist_and_stay(api: Any) -> None:
    listed = (await api.ok("GET", PRIORITY_CLASSES))["items"]
    assert {c["metadata"]["name"]: c["value"] for c in listed} == {
        "system-cluster-critical": 2_000_000_000,
        "system-node-critical": 2_000_001_000,
    }
    status, body = await api.call("DELETE", f"{PRIORITY_CLASSES}/system-node-critical")
    assert status == 403 and body["message"].endswith("this is a system priority class and cannot be deleted")
    status, body = await api.call("POST", PRIORITY_CLASSES, {"metadata": {"name": "system-x"}, "value": 1})
    assert status == 422 and "reserved for system use only" in causes(body)["metadata.name"]


# -- discovery, tables, namespace deletion -----------------------------------------------------------


async def test_discovery_lists_the_new_kinds(api: Any) -> None:
    groups = {g["name"] for g in (await api.ok("GET", "/apis"))["groups"]}
    assert {"policy", "rbac.authorization.k8s.io", "scheduling.k8s.io"} <= groups
    apps = {r["name"]: r for r in (await api.ok("GET", "/apis/apps/v1"))["resources"]}
    assert apps["daemonsets"]["shortNames"] == ["ds"] and apps["daemonsets"]["categories"] == ["all"]
    assert apps["daemonsets/status"]["verbs"] == ["get", "patch", "update"]
    rbac = {r["name"]: r["namespaced"] for r in (await api.ok("GET", RBAC))["resources"]}
    assert rbac == {"clusterroles": False, "clusterrolebindings": False, "roles": True, "rolebindings": True}
    policy = {r["name"]: r for r in (await api.ok("GET", "/apis/policy/v1"))["resources"]}
    assert policy["poddisruptionbudgets"]["shortNames"] == ["pdb"] and "poddisruptionbudgets/status" in policy
    scheduling = (await api.ok("GET", "/apis/scheduling.k8s.io/v1"))["resources"]
    assert [(r["name"], r["namespaced"], r["shortNames"]) for r in scheduling] == [
        ("priorityclasses", False, ["pc"])
    ]
    for group_version in ("apps/v1", "policy/v1", "rbac.authorization.k8s.io/v1", "scheduling.k8s.io/v1"):
        doc = await api.ok("GET", f"/openapi/v3/apis/{group_version}")
        assert any("fieldValidation" in str(op) for op in doc["paths"].values()), group_version


async def test_namespace_deletion_empties_the_new_kinds(api: Any) -> None:
    await api.ok("POST", "/api/v1/namespaces", {"metadata": {"name": "gone"}})
    base = "/apis/{}/namespaces/gone/{}"
    paths = [
        (base.format("apps/v1", "daemonsets"), daemonset("agent")),
        (base.format("policy/v1", "poddisruptionbudgets"), pdb("web", maxUnavailable=1)),
        (base.format("rbac.authorization.k8s.io/v1", "roles"), {"metadata": {"name": "r"}, "rules": []}),
        (base.format("rbac.authorization.k8s.io/v1", "rolebindings"), role_binding("rb", "r")),
    ]
    for path, body in paths:
        await api.ok("POST", path, body)
    await api.ok("DELETE", "/api/v1/namespaces/gone")

    async def emptied() -> bool:
        for path, _ in paths:
            assert (await api.ok("GET", path))["items"] == [], path
        return (await api.call("GET", "/api/v1/namespaces/gone"))[0] == 404

    await eventually(emptied, timeout=20, message="the namespace and its objects are gone")


def _header(block: str) -> list[str]:
    """kubectl's column titles: separated by runs of two or more spaces."""
    return [title.strip() for title in block.splitlines()[0].split("  ") if title.strip()]


@pytest.mark.kubectl
async def test_kubectl_get_prints_the_upstream_columns(api: Any, sandbox: Sandbox, tmp_path: Path) -> None:
    kubectl = kubectl_for(sandbox, tmp_path)
    await api.ok("POST", DAEMONSETS, daemonset("agent"))
    await api.ok("POST", PDBS, pdb("web", minAvailable=1))
    await api.ok("POST", f"{RBAC}/namespaces/default/rolebindings", role_binding("readers", "reader"))
    out = await kubectl.out("get", "ds,pdb,rolebinding", "-n", "default")
    daemonsets, budgets, bindings = out.strip().split("\n\n")
    assert _header(daemonsets) == [
        "NAME",
        "DESIRED",
        "CURRENT",
        "READY",
        "UP-TO-DATE",
        "AVAILABLE",
        "NODE SELECTOR",
        "AGE",
    ]
    row = daemonsets.splitlines()[1].split()
    assert row[:7] == ["daemonset.apps/agent", "0", "0", "0", "0", "0", "<none>"]
    assert _header(budgets) == ["NAME", "MIN AVAILABLE", "MAX UNAVAILABLE", "ALLOWED DISRUPTIONS", "AGE"]
    assert budgets.splitlines()[1].split()[:4] == ["poddisruptionbudget.policy/web", "1", "N/A", "0"]
    assert _header(bindings) == ["NAME", "ROLE", "AGE"]
    assert bindings.splitlines()[1].split()[:2] == [
        "rolebinding.rbac.authorization.k8s.io/readers",
        "Role/reader",
    ]
