"""Server-side defaults must equal what kube-apiserver v1.3x returns for the same input."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from servicegroup.sandbox.defaults import apply_defaults, image_tag

DEFAULTED_CONTAINER = {
    "name": "web",
    "image": "nginx:1.25",
    "imagePullPolicy": "IfNotPresent",
    "terminationMessagePath": "/dev/termination-log",
    "terminationMessagePolicy": "File",
    "resources": {},
    "ports": [{"containerPort": 80, "protocol": "TCP"}],
}
DEFAULTED_POD_SPEC = {
    "containers": [DEFAULTED_CONTAINER],
    "dnsPolicy": "ClusterFirst",
    "restartPolicy": "Always",
    "securityContext": {},
    "terminationGracePeriodSeconds": 30,
    "schedulerName": "default-scheduler",
}


def _template() -> dict[str, Any]:
    return {
        "metadata": {"labels": {"app": "web"}},
        "spec": {"containers": [{"name": "web", "image": "nginx:1.25", "ports": [{"containerPort": 80}]}]},
    }


def _defaulted(group: str, kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    apply_defaults(group, kind, obj)
    return obj


@pytest.mark.parametrize(
    ("image", "tag"),
    [
        ("nginx", "latest"),
        ("nginx:latest", "latest"),
        ("nginx:1.25", "1.25"),
        ("registry:5000/team/app", "latest"),
        ("registry:5000/team/app:v2", "v2"),
        ("nginx@sha256:abcd", ""),
        ("nginx:1.2@sha256:abcd", "1.2"),
    ],
)
def test_image_tag_matches_parse_image_name(image: str, tag: str) -> None:
    assert image_tag(image) == tag


@pytest.mark.parametrize(
    ("image", "policy"),
    [
        ("nginx", "Always"),
        ("nginx:latest", "Always"),
        ("nginx:1", "IfNotPresent"),
        ("a@sha256:1", "IfNotPresent"),
    ],
)
def test_image_pull_policy(image: str, policy: str) -> None:
    pod = _defaulted("", "Pod", {"spec": {"containers": [{"name": "c", "image": image}]}})
    assert pod["spec"]["containers"][0]["imagePullPolicy"] == policy


def test_deployment_defaults() -> None:
    obj = _defaulted("apps", "Deployment", {"spec": {"selector": {}, "template": _template()}})
    spec = obj["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"},
    }
    assert spec["revisionHistoryLimit"] == 10
    assert spec["progressDeadlineSeconds"] == 600
    assert spec["template"]["spec"] == DEFAULTED_POD_SPEC


def test_deployment_recreate_gets_no_rolling_update() -> None:
    obj = _defaulted("apps", "Deployment", {"spec": {"strategy": {"type": "Recreate"}, "replicas": 0}})
    assert obj["spec"]["strategy"] == {"type": "Recreate"}
    assert obj["spec"]["replicas"] == 0


def test_statefulset_defaults() -> None:
    claim = {"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"]}}
    obj = _defaulted(
        "apps", "StatefulSet", {"spec": {"template": _template(), "volumeClaimTemplates": [claim]}}
    )
    spec = obj["spec"]
    assert spec["replicas"] == 1
    assert spec["podManagementPolicy"] == "OrderedReady"
    assert spec["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}
    assert spec["revisionHistoryLimit"] == 10
    assert spec["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Retain", "whenScaled": "Retain"}
    assert spec["template"]["spec"] == DEFAULTED_POD_SPEC
    assert spec["volumeClaimTemplates"][0] == {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "volumeMode": "Filesystem"},
        "status": {"phase": "Pending"},
    }


def test_statefulset_explicit_rolling_update_without_block_gets_no_partition() -> None:
    obj = _defaulted("apps", "StatefulSet", {"spec": {"updateStrategy": {"type": "RollingUpdate"}}})
    assert obj["spec"]["updateStrategy"] == {"type": "RollingUpdate"}
    ondelete = _defaulted("apps", "StatefulSet", {"spec": {"updateStrategy": {"type": "OnDelete"}}})
    assert ondelete["spec"]["updateStrategy"] == {"type": "OnDelete"}


def test_replicaset_defaults() -> None:
    obj = _defaulted("apps", "ReplicaSet", {"spec": {"template": _template()}})
    assert obj["spec"]["replicas"] == 1
    assert obj["spec"]["template"]["spec"] == DEFAULTED_POD_SPEC


def test_pod_only_defaults() -> None:
    pod = _defaulted("", "Pod", {"spec": copy.deepcopy(_template()["spec"])})
    spec = pod["spec"]
    assert spec["enableServiceLinks"] is True
    assert spec["priority"] == 0
    assert spec["preemptionPolicy"] == "PreemptLowerPriority"
    assert spec["tolerations"] == [
        {"key": k, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}
        for k in ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable")
    ]
    template = _defaulted("apps", "ReplicaSet", {"spec": {"template": _template()}})["spec"]["template"][
        "spec"
    ]
    assert "enableServiceLinks" not in template
    assert "tolerations" not in template


def test_pod_keeps_own_toleration_and_copies_limits_to_requests() -> None:
    own = {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"}
    container = {
        "name": "c",
        "image": "x:1",
        "resources": {"limits": {"cpu": "1"}, "requests": {"memory": "1Mi"}},
    }
    pod = _defaulted("", "Pod", {"spec": {"containers": [container], "tolerations": [own]}})
    assert pod["spec"]["tolerations"][0] == own
    assert [t["key"] for t in pod["spec"]["tolerations"]] == [own["key"], "node.kubernetes.io/unreachable"]
    assert pod["spec"]["containers"][0]["resources"]["requests"] == {"memory": "1Mi", "cpu": "1"}


def test_container_nested_defaults() -> None:
    container = {
        "name": "c",
        "image": "x:1",
        "env": [{"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}],
        "livenessProbe": {"httpGet": {"port": 80}},
        "lifecycle": {"preStop": {"httpGet": {"port": 80}}},
    }
    volumes = [
        {"name": "scratch"},
        {"name": "s", "secret": {"secretName": "s"}},
        {"name": "h", "hostPath": {"path": "/x"}},
        {"name": "p", "projected": {"sources": [{"serviceAccountToken": {"path": "t"}}]}},
    ]
    pod = _defaulted("", "Pod", {"spec": {"containers": [container], "volumes": volumes}})
    got = pod["spec"]["containers"][0]
    assert got["env"][0]["valueFrom"]["fieldRef"] == {"fieldPath": "spec.nodeName", "apiVersion": "v1"}
    assert got["livenessProbe"] == {
        "httpGet": {"port": 80, "path": "/", "scheme": "HTTP"},
        "timeoutSeconds": 1,
        "periodSeconds": 10,
        "successThreshold": 1,
        "failureThreshold": 3,
    }
    assert got["lifecycle"]["preStop"]["httpGet"]["scheme"] == "HTTP"
    vols = pod["spec"]["volumes"]
    assert vols[0] == {"name": "scratch", "emptyDir": {}}
    assert vols[1]["secret"]["defaultMode"] == 420
    assert vols[2]["hostPath"]["type"] == ""
    assert vols[3]["projected"]["defaultMode"] == 420
    assert vols[3]["projected"]["sources"][0]["serviceAccountToken"]["expirationSeconds"] == 3600


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (
            {"selector": {"app": "a"}, "ports": [{"port": 80}]},
            {
                "type": "ClusterIP",
                "sessionAffinity": "None",
                "ipFamilies": ["IPv4"],
                "ipFamilyPolicy": "SingleStack",
                "internalTrafficPolicy": "Cluster",
                "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}],
            },
        ),
        (
            {"type": "NodePort", "selector": {"a": "b"}, "ports": [{"port": 80, "targetPort": "http"}]},
            {
                "externalTrafficPolicy": "Cluster",
                "internalTrafficPolicy": "Cluster",
                "ports": [{"port": 80, "protocol": "TCP", "targetPort": "http"}],
            },
        ),
        (
            {"type": "LoadBalancer"},
            {"allocateLoadBalancerNodePorts": True, "externalTrafficPolicy": "Cluster"},
        ),
        ({"clusterIP": "None"}, {"ipFamilyPolicy": "RequireDualStack", "ipFamilies": ["IPv4"]}),
        ({"clusterIP": "None", "selector": {"a": "b"}}, {"ipFamilyPolicy": "SingleStack"}),
        (
            {"sessionAffinity": "ClientIP"},
            {"sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 10800}}},
        ),
    ],
)
def test_service_defaults(spec: dict[str, Any], expected: dict[str, Any]) -> None:
    svc = _defaulted("", "Service", {"spec": spec})
    assert {k: svc["spec"][k] for k in expected} == expected
    assert svc["status"] == {"loadBalancer": {}}


def test_external_name_service_gets_no_ip_fields() -> None:
    svc = _defaulted("", "Service", {"spec": {"type": "ExternalName", "externalName": "x.example"}})
    assert "ipFamilies" not in svc["spec"]
    assert "internalTrafficPolicy" not in svc["spec"]


def test_session_affinity_none_drops_config() -> None:
    svc = _defaulted("", "Service", {"spec": {"sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 5}}}})
    assert "sessionAffinityConfig" not in svc["spec"]


def test_endpoints_and_slices_ports() -> None:
    ep = _defaulted("", "Endpoints", {"subsets": [{"ports": [{"port": 80}]}]})
    assert ep["subsets"][0]["ports"][0]["protocol"] == "TCP"
    slc = _defaulted("discovery.k8s.io", "EndpointSlice", {"ports": [{"port": 80}]})
    assert slc["ports"][0] == {"port": 80, "name": "", "protocol": "TCP"}


def test_secret_namespace_node() -> None:
    assert _defaulted("", "Secret", {})["type"] == "Opaque"
    assert _defaulted("", "Secret", {"type": "kubernetes.io/tls"})["type"] == "kubernetes.io/tls"
    ns = _defaulted("", "Namespace", {"metadata": {"name": "edge"}})
    assert ns["metadata"]["labels"] == {"kubernetes.io/metadata.name": "edge"}
    assert ns["spec"] == {"finalizers": ["kubernetes"]}
    assert ns["status"] == {"phase": "Active"}
    node = _defaulted("", "Node", {"status": {"capacity": {"cpu": "4"}}})
    assert node["status"]["allocatable"] == {"cpu": "4"}


def test_terminating_namespace_does_not_get_finalizer_back() -> None:
    ns = {"metadata": {"name": "x", "deletionTimestamp": "2024-01-01T00:00:00Z"}, "spec": {"finalizers": []}}
    apply_defaults("", "Namespace", ns)
    assert ns["spec"]["finalizers"] == []


@pytest.mark.parametrize(
    ("group", "kind"), [("coordination.k8s.io", "Lease"), ("", "Event"), ("x.io", "Thing")]
)
def test_kinds_without_defaults_are_untouched(group: str, kind: str) -> None:
    obj = {"spec": {"a": 1}}
    apply_defaults(group, kind, obj)
    assert obj == {"spec": {"a": 1}}


def test_defaulting_is_idempotent() -> None:
    obj = _defaulted("apps", "StatefulSet", {"spec": {"template": _template()}})
    again = _defaulted("apps", "StatefulSet", copy.deepcopy(obj))
    assert again == obj


def test_crd_names_and_conversion_defaults() -> None:
    crd = _defaulted(
        "apiextensions.k8s.io", "CustomResourceDefinition", {"spec": {"names": {"kind": "Widget"}}}
    )
    assert crd["spec"]["names"] == {"kind": "Widget", "singular": "widget", "listKind": "WidgetList"}
    assert crd["spec"]["conversion"] == {"strategy": "None"}
    kept = {"spec": {"names": {"kind": "W", "singular": "w1"}, "conversion": {"strategy": "Webhook"}}}
    apply_defaults("apiextensions.k8s.io", "CustomResourceDefinition", kept)
    assert kept["spec"]["names"]["singular"] == "w1"
    assert kept["spec"]["conversion"] == {"strategy": "Webhook"}
