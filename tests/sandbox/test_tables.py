"""meta.k8s.io/v1 Table rendering: upstream column sets, cell formats, CRD printer columns, rows' objects."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from servicegroup.sandbox.errors import StatusError
from servicegroup.sandbox.resources import BUILTIN_TYPES, ResourceType, crd_types
from servicegroup.sandbox.tables import (
    format_endpoints,
    format_label_selector,
    human_duration,
    jsonpath,
    to_table,
)

NOW = datetime(2026, 1, 10, 12, 0, 0, tzinfo=UTC)
Obj = dict[str, Any]


def ago(**delta: float) -> str:
    return (NOW - timedelta(**delta)).strftime("%Y-%m-%dT%H:%M:%SZ")


def rt(group: str, kind: str) -> ResourceType:
    return next(t for t in BUILTIN_TYPES if (t.group, t.kind) == (group, kind))


def meta(name: str, **extra: Any) -> Obj:
    return {"name": name, "namespace": "default", "creationTimestamp": ago(seconds=5), **extra}


def cells(group: str, kind: str, obj: Obj) -> list[Any]:
    table = to_table(rt(group, kind), [obj], now=NOW)
    return list(table["rows"][0]["cells"])


# ---------------------------------------------------------------------------------------------

DURATIONS = [
    (-3, "<invalid>"),
    (-1.5, "0s"),
    (0, "0s"),
    (5, "5s"),
    (119, "119s"),
    (120, "2m"),
    (182, "3m2s"),
    (600, "10m"),
    (3 * 3600 - 1, "179m"),
    (3 * 3600, "3h"),
    (3 * 3600 + 30 * 60, "3h30m"),
    (47 * 3600, "47h"),
    (48 * 3600, "2d"),
    (50 * 3600, "2d2h"),
    (8 * 86400, "8d"),
    (2 * 365 * 86400, "2y"),
    (2 * 365 * 86400 + 10 * 86400, "2y10d"),
    (9 * 365 * 86400, "9y"),
]


@pytest.mark.parametrize(("seconds", "text"), DURATIONS, ids=[d[1] + f"@{d[0]}" for d in DURATIONS])
def test_human_duration(seconds: float, text: str) -> None:
    assert human_duration(seconds) == text


# ---------------------------------------------------------------------------------------------
# Pods

RUNNING = {
    "phase": "Running",
    "podIP": "10.244.0.2",
    "podIPs": [{"ip": "10.244.0.2"}],
    "conditions": [{"type": "Ready", "status": "True"}],
    "containerStatuses": [{"name": "c", "ready": True, "restartCount": 0, "state": {"running": {}}}],
}
CRASHING = {
    "phase": "Running",
    "containerStatuses": [
        {
            "name": "c",
            "ready": False,
            "restartCount": 3,
            "state": {"waiting": {"reason": "CrashLoopBackOff"}},
            "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(minutes=5)}},
        }
    ],
}
INIT = {
    "phase": "Pending",
    "initContainerStatuses": [{"name": "i", "ready": False, "restartCount": 0, "state": {"running": {}}}],
}
POD_CASES = [
    ("running", {}, RUNNING, ["1/1", "Running", "0", "5s", "10.244.0.2", "bj-1", "<none>", "<none>"]),
    (
        "pending",
        {},
        {"phase": "Pending"},
        ["0/1", "Pending", "0", "5s", "<none>", "bj-1", "<none>", "<none>"],
    ),
    (
        "crashloop",
        {},
        CRASHING,
        ["0/1", "CrashLoopBackOff", "3 (5m ago)", "5s", "<none>", "bj-1", "<none>", "<none>"],
    ),
    (
        "init",
        {"initContainers": [{"name": "i"}]},
        INIT,
        ["0/1", "Init:0/1", "0", "5s", "<none>", "bj-1", "<none>", "<none>"],
    ),
    (
        "gates",
        {"readinessGates": [{"conditionType": "a"}, {"conditionType": "b"}]},
        {**RUNNING, "conditions": [{"type": "a", "status": "True"}]},
        ["1/1", "Running", "0", "5s", "10.244.0.2", "bj-1", "<none>", "1/2"],
    ),
    (
        "evicted",
        {},
        {"phase": "Failed", "reason": "Evicted"},
        ["0/1", "Evicted", "0", "5s", "<none>", "bj-1", "<none>", "<none>"],
    ),
]


@pytest.mark.parametrize(
    ("spec", "status", "want"), [c[1:] for c in POD_CASES], ids=[c[0] for c in POD_CASES]
)
def test_pod_cells(spec: Obj, status: Obj, want: list[Any]) -> None:
    pod = {
        "metadata": meta("p"),
        "spec": {"nodeName": "bj-1", "containers": [{"name": "c", "image": "nginx"}], **spec},
        "status": status,
    }
    assert cells("", "Pod", pod) == ["p", *want]


def test_pod_columns_and_row_conditions() -> None:
    pod = {
        "metadata": meta("done"),
        "spec": {"containers": [{"name": "c"}]},
        "status": {"phase": "Succeeded"},
    }
    table = to_table(rt("", "Pod"), [pod], now=NOW)
    columns = [(c["name"], c["type"], c["priority"]) for c in table["columnDefinitions"]]
    assert columns == [
        ("Name", "string", 0),
        ("Ready", "string", 0),
        ("Status", "string", 0),
        ("Restarts", "string", 0),
        ("Age", "string", 0),
        ("IP", "string", 1),
        ("Node", "string", 1),
        ("Nominated Node", "string", 1),
        ("Readiness Gates", "string", 1),
    ]
    assert table["columnDefinitions"][0]["format"] == "name"
    assert table["columnDefinitions"][4]["description"].startswith("CreationTimestamp is a timestamp")
    assert table["rows"][0]["conditions"] == [
        {
            "type": "Completed",
            "status": "True",
            "reason": "Succeeded",
            "message": "The pod has completed successfully.",
        }
    ]


def test_terminating_pod() -> None:
    pod = {
        "metadata": meta("p", deletionTimestamp=ago(seconds=1)),
        "spec": {"containers": []},
        "status": RUNNING,
    }
    assert cells("", "Pod", pod)[2] == "Terminating"


# ---------------------------------------------------------------------------------------------
# Workloads


def test_deployment_cells() -> None:
    deploy = {
        "metadata": meta("web"),
        "spec": {
            "replicas": 3,
            "selector": {
                "matchLabels": {"app": "web"},
                "matchExpressions": [{"key": "tier", "operator": "Exists"}],
            },
            "template": {
                "spec": {"containers": [{"name": "a", "image": "x:1"}, {"name": "b", "image": "y:2"}]}
            },
        },
        "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2},
    }
    assert cells("apps", "Deployment", deploy) == ["web", "2/3", 3, 2, "5s", "a,b", "x:1,y:2", "app=web,tier"]


def test_replicaset_and_statefulset_cells() -> None:
    spec = {
        "replicas": 2,
        "selector": {"matchLabels": {"app": "w"}},
        "template": {"spec": {"containers": [{"name": "c", "image": "i"}]}},
    }
    rs = {"metadata": meta("w-1"), "spec": spec, "status": {"replicas": 2, "readyReplicas": 1}}
    assert cells("apps", "ReplicaSet", rs) == ["w-1", 2, 2, 1, "5s", "c", "i", "app=w"]
    sts = {"metadata": meta("db"), "spec": spec, "status": {"readyReplicas": 1}}
    assert cells("apps", "StatefulSet", sts) == ["db", "1/2", "5s", "c", "i"]


def test_controller_revision_cells() -> None:
    owner = {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "db", "uid": "u", "controller": True}
    rev = {"metadata": meta("db-abc", ownerReferences=[owner]), "revision": 2}
    assert cells("apps", "ControllerRevision", rev) == ["db-abc", "statefulset.apps/db", 2, "5s"]


# ---------------------------------------------------------------------------------------------
# Networking

SERVICE_CASES = [
    (
        "cluster-ip",
        {
            "type": "ClusterIP",
            "clusterIPs": ["10.96.0.10"],
            "ports": [{"port": 53, "protocol": "UDP"}],
            "selector": {"k": "v", "a": "b"},
        },
        {},
        ["ClusterIP", "10.96.0.10", "<none>", "53/UDP", "5s", "a=b,k=v"],
    ),
    (
        "headless-no-ports",
        {"type": "ClusterIP", "clusterIP": "None", "clusterIPs": ["None"]},
        {},
        ["ClusterIP", "None", "<none>", "<none>", "5s", "<none>"],
    ),
    (
        "node-port",
        {
            "type": "NodePort",
            "clusterIPs": ["10.96.0.3"],
            "ports": [{"port": 443, "nodePort": 30443, "protocol": "TCP"}],
            "externalIPs": ["1.2.3.4"],
        },
        {},
        ["NodePort", "10.96.0.3", "1.2.3.4", "443:30443/TCP", "5s", "<none>"],
    ),
    (
        "lb-pending",
        {"type": "LoadBalancer", "clusterIPs": ["10.96.0.4"]},
        {},
        ["LoadBalancer", "10.96.0.4", "<pending>", "<none>", "5s", "<none>"],
    ),
    (
        "lb",
        {"type": "LoadBalancer", "clusterIPs": ["10.96.0.4"]},
        {"loadBalancer": {"ingress": [{"ip": "5.6.7.8"}, {"hostname": "lb.example"}]}},
        ["LoadBalancer", "10.96.0.4", "5.6.7.8,lb.example", "<none>", "5s", "<none>"],
    ),
    (
        "external-name",
        {"type": "ExternalName", "externalName": "db.example"},
        {},
        ["ExternalName", "<none>", "db.example", "<none>", "5s", "<none>"],
    ),
]


@pytest.mark.parametrize(
    ("spec", "status", "want"), [c[1:] for c in SERVICE_CASES], ids=[c[0] for c in SERVICE_CASES]
)
def test_service_cells(spec: Obj, status: Obj, want: list[Any]) -> None:
    assert cells("", "Service", {"metadata": meta("s"), "spec": spec, "status": status}) == ["s", *want]


def _address(ip: str) -> Obj:
    return {"ip": ip}


ENDPOINTS_CASES = [
    ("none", [], "<none>"),
    ("one", [{"addresses": [_address("10.0.0.1")], "ports": [{"port": 80}]}], "10.0.0.1:80"),
    (
        "more",
        [{"addresses": [_address(f"10.0.0.{i}") for i in range(1, 5)], "ports": [{"port": 80}]}],
        "10.0.0.1:80,10.0.0.2:80,10.0.0.3:80 + 1 more...",
    ),
    ("headless-no-ports", [{"addresses": [_address("10.0.0.1"), _address("10.0.0.2")]}], "10.0.0.1,10.0.0.2"),
    (
        "two-ports",
        [{"addresses": [_address("10.0.0.1"), _address("10.0.0.2")], "ports": [{"port": 80}, {"port": 443}]}],
        "10.0.0.1:80,10.0.0.2:80,10.0.0.1:443 + 1 more...",
    ),
    ("not-ready-only", [{"notReadyAddresses": [_address("10.0.0.1")], "ports": [{"port": 80}]}], ""),
    ("ipv6", [{"addresses": [_address("fd00::1")], "ports": [{"port": 80}]}], "[fd00::1]:80"),
]


@pytest.mark.parametrize(
    ("subsets", "text"), [c[1:] for c in ENDPOINTS_CASES], ids=[c[0] for c in ENDPOINTS_CASES]
)
def test_format_endpoints(subsets: list[Obj], text: str) -> None:
    assert format_endpoints({"subsets": subsets}) == text


def test_endpointslice_cells() -> None:
    eps = {
        "metadata": meta("web-abcde"),
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 8080}, {"name": "named"}],
        "endpoints": [{"addresses": [f"10.0.0.{i}"]} for i in range(1, 5)],
    }
    assert cells("discovery.k8s.io", "EndpointSlice", eps) == [
        "web-abcde",
        "IPv4",
        "8080,named",
        "10.0.0.1,10.0.0.2,10.0.0.3 + 1 more...",
        "5s",
    ]
    placeholder = {"metadata": meta("web-x"), "addressType": "IPv4", "endpoints": [], "ports": []}
    assert cells("discovery.k8s.io", "EndpointSlice", placeholder)[2:4] == ["<unset>", "<unset>"]


# ---------------------------------------------------------------------------------------------
# Cluster objects

NODE_CASES = [
    ("ready", {}, [{"type": "Ready", "status": "True"}], "Ready"),
    (
        "not-ready-cordoned",
        {"unschedulable": True},
        [{"type": "Ready", "status": "False"}],
        "NotReady,SchedulingDisabled",
    ),
    ("unknown", {}, [], "Unknown"),
]


@pytest.mark.parametrize(
    ("spec", "conditions", "state"), [c[1:] for c in NODE_CASES], ids=[c[0] for c in NODE_CASES]
)
def test_node_status_cell(spec: Obj, conditions: list[Obj], state: str) -> None:
    node = {"metadata": meta("n"), "spec": spec, "status": {"conditions": conditions}}
    assert cells("", "Node", node)[1] == state


def test_node_cells() -> None:
    labels = {"node-role.kubernetes.io/control-plane": "", "kubernetes.io/role": "edge", "x": "y"}
    node = {
        "metadata": {"name": "n1", "labels": labels, "creationTimestamp": ago(days=3)},
        "status": {
            "conditions": [{"type": "Ready", "status": "True"}],
            "addresses": [{"type": "InternalIP", "address": "172.18.0.2"}],
            "nodeInfo": {"kubeletVersion": "v1.33.0", "osImage": "Debian"},
        },
    }
    assert cells("", "Node", node) == [
        "n1",
        "Ready",
        "control-plane,edge",
        "3d",
        "v1.33.0",
        "172.18.0.2",
        "<none>",
        "Debian",
        "<unknown>",
        "<unknown>",
    ]


def test_small_kinds() -> None:
    assert cells("", "Namespace", {"metadata": meta("ns"), "status": {"phase": "Active"}}) == [
        "ns",
        "Active",
        "5s",
    ]
    cm = {"metadata": meta("cm"), "data": {"a": "1"}, "binaryData": {"b": "AA=="}}
    assert cells("", "ConfigMap", cm) == ["cm", 2, "5s"]
    secret = {"metadata": meta("s"), "type": "Opaque", "data": {"a": "MQ=="}}
    assert cells("", "Secret", secret) == ["s", "Opaque", 1, "5s"]
    lease = {"metadata": meta("l"), "spec": {"holderIdentity": "me"}}
    assert cells("coordination.k8s.io", "Lease", lease) == ["l", "me", "5s"]


def test_event_cells() -> None:
    event = {
        "metadata": meta("web.1"),
        "involvedObject": {"kind": "Pod", "name": "web", "fieldPath": "spec.containers{c}"},
        "reason": "Started",
        "message": " Started container c \n",
        "type": "Normal",
        "source": {"component": "kubelet", "host": "bj-1"},
        "firstTimestamp": ago(minutes=10),
        "lastTimestamp": ago(minutes=1),
        "count": 3,
    }
    want = [
        "60s",
        "Normal",
        "Started",
        "pod/web",
        "spec.containers{c}",
        "kubelet, bj-1",
        "Started container c",
        "10m",
        3,
        "web.1",
    ]
    assert cells("", "Event", event) == want
    new_api = {
        "metadata": meta("web.2"),
        "regarding": {"kind": "Deployment", "name": "web"},
        "reason": "ScalingReplicaSet",
        "note": "Scaled up",
        "type": "Normal",
        "eventTime": ago(seconds=30),
        "reportingController": "deployment-controller",
    }
    got = cells("events.k8s.io", "Event", new_api)
    assert got == [
        "30s",
        "Normal",
        "ScalingReplicaSet",
        "deployment/web",
        "",
        "deployment-controller",
        "Scaled up",
        "30s",
        1,
        "web.2",
    ]
    columns = to_table(rt("", "Event"), [], now=NOW)["columnDefinitions"]
    assert [c["name"] for c in columns if c["priority"] == 0] == [
        "Last Seen",
        "Type",
        "Reason",
        "Object",
        "Message",
    ]


def test_kinds_without_a_printer_use_name_and_created_at() -> None:
    crd = {"metadata": {"name": "widgets.example.com", "creationTimestamp": "2026-01-01T00:00:00Z"}}
    table = to_table(rt("apiextensions.k8s.io", "CustomResourceDefinition"), [crd], now=NOW)
    assert [(c["name"], c["type"]) for c in table["columnDefinitions"]] == [
        ("Name", "string"),
        ("Created At", "date"),
    ]
    assert table["rows"][0]["cells"] == ["widgets.example.com", "2026-01-01T00:00:00Z"]


# ---------------------------------------------------------------------------------------------
# Custom resources


def crd(columns: list[Obj] | None) -> ResourceType:
    version: Obj = {"name": "v1", "served": True, "storage": True}
    if columns is not None:
        version["additionalPrinterColumns"] = columns
    spec = {
        "group": "example.com",
        "scope": "Namespaced",
        "names": {"plural": "widgets", "kind": "Widget"},
        "versions": [version],
    }
    (served,) = crd_types({"metadata": {"name": "widgets.example.com"}, "spec": spec})
    return served


WIDGET = {
    "metadata": meta("w1"),
    "spec": {"replicas": 3, "ratio": 1.5, "enabled": True, "tags": ["a", "b"]},
    "status": {"conditions": [{"type": "Synced", "status": "False"}, {"type": "Ready", "status": "True"}]},
}
COLUMN_CASES = [
    ("integer", {"type": "integer", "jsonPath": ".spec.replicas"}, 3),
    ("number", {"type": "number", "jsonPath": ".spec.ratio"}, 1.5),
    ("boolean", {"type": "boolean", "jsonPath": ".spec.enabled"}, True),
    ("string-of-int", {"type": "string", "jsonPath": ".spec.replicas"}, "3"),
    ("string-of-list", {"type": "string", "jsonPath": ".spec.tags"}, '["a","b"]'),
    ("index", {"type": "string", "jsonPath": ".spec.tags[1]"}, "b"),
    ("filter", {"type": "string", "jsonPath": '.status.conditions[?(@.type=="Ready")].status'}, "True"),
    ("missing", {"type": "string", "jsonPath": ".status.nothing"}, None),
    ("wrong-type", {"type": "integer", "jsonPath": ".spec.enabled"}, None),
    ("date", {"type": "date", "jsonPath": ".metadata.creationTimestamp"}, "5s"),
    ("bad-date", {"type": "date", "jsonPath": ".spec.tags[0]"}, "<invalid>"),
]


@pytest.mark.parametrize(("column", "cell"), [c[1:] for c in COLUMN_CASES], ids=[c[0] for c in COLUMN_CASES])
def test_custom_columns(column: Obj, cell: Any) -> None:
    table = to_table(crd([{"name": "C", **column}]), [WIDGET], now=NOW)
    assert table["rows"][0]["cells"] == ["w1", cell]


def test_custom_column_definitions() -> None:
    columns = [
        {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas", "priority": 1},
        {
            "name": "Ready",
            "type": "string",
            "jsonPath": ".status.ready",
            "description": "is it",
            "format": "x",
        },
    ]
    defs = to_table(crd(columns), [], now=NOW)["columnDefinitions"]
    assert defs[0]["name"] == "Name" and defs[0]["format"] == "name"
    assert defs[1:] == [
        {
            "name": "Replicas",
            "type": "integer",
            "format": "",
            "description": "Custom resource definition column (in JSONPath format): .spec.replicas",
            "priority": 1,
        },
        {"name": "Ready", "type": "string", "format": "x", "description": "is it", "priority": 0},
    ]


def test_crd_without_columns_gets_age() -> None:
    table = to_table(crd(None), [WIDGET], now=NOW)
    assert [(c["name"], c["type"]) for c in table["columnDefinitions"]] == [
        ("Name", "string"),
        ("Age", "date"),
    ]
    assert table["columnDefinitions"][1]["description"].startswith("CreationTimestamp is a timestamp")
    assert table["rows"][0]["cells"] == ["w1", "5s"]


JSONPATH_CASES = [
    ("{.a.b}", {"a": {"b": 1}}, [1]),
    (".a[*].n", {"a": [{"n": 1}, {"n": 2}]}, [1, 2]),
    (".a[-1]", {"a": [1, 2]}, [2]),
    (".a['x.y']", {"a": {"x.y": 3}}, [3]),
    (".a[?(@.k!='v')].n", {"a": [{"k": "v", "n": 1}, {"k": "w", "n": 2}]}, [2]),
    (".a[?(@.n==2)].k", {"a": [{"k": "v", "n": 1}, {"k": "w", "n": 2}]}, ["w"]),
    (".a[?(@.k)].n", {"a": [{"n": 1}, {"k": "w", "n": 2}]}, [2]),
    (".missing.deeper", {"a": 1}, []),
]


@pytest.mark.parametrize(("expr", "obj", "found"), JSONPATH_CASES, ids=[c[0] for c in JSONPATH_CASES])
def test_jsonpath(expr: str, obj: Obj, found: list[Any]) -> None:
    assert jsonpath(expr, obj) == found


def test_jsonpath_rejects_malformed_paths() -> None:
    with pytest.raises(ValueError, match="unrecognized"):
        jsonpath(".a[", {})


# ---------------------------------------------------------------------------------------------
# Table envelope


def test_include_object_variants_and_metadata() -> None:
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta("cm"), "data": {"a": "1"}}
    list_meta = {"resourceVersion": "42", "continue": "tok"}
    default = to_table(rt("", "ConfigMap"), [cm], list_meta=list_meta, now=NOW)
    assert default["kind"] == "Table" and default["apiVersion"] == "meta.k8s.io/v1"
    assert default["metadata"] == list_meta
    assert default["rows"][0]["object"] == {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": cm["metadata"],
    }
    assert to_table(rt("", "ConfigMap"), [cm], include_object="Object", now=NOW)["rows"][0]["object"] == cm
    assert to_table(rt("", "ConfigMap"), [cm], include_object="None", now=NOW)["rows"][0]["object"] is None
    assert "columnDefinitions" not in to_table(rt("", "ConfigMap"), [cm], no_headers=True, now=NOW)
    with pytest.raises(StatusError) as err:
        to_table(rt("", "ConfigMap"), [cm], include_object="All")
    assert (err.value.code, err.value.message) == (400, 'unrecognized includeObject value: "All"')


SELECTOR_CASES = [
    (None, "<none>"),
    ({}, "<none>"),
    ({"matchLabels": {"b": "2", "a": "1"}}, "a=1,b=2"),
    ({"matchExpressions": [{"key": "t", "operator": "In", "values": ["y", "x"]}]}, "t in (x,y)"),
    ({"matchExpressions": [{"key": "t", "operator": "NotIn", "values": ["x"]}]}, "t notin (x)"),
    ({"matchExpressions": [{"key": "t", "operator": "DoesNotExist"}]}, "!t"),
    ({"matchExpressions": [{"key": "t", "operator": "Bogus"}]}, "<error>"),
]


@pytest.mark.parametrize(("selector", "text"), SELECTOR_CASES, ids=[c[1] for c in SELECTOR_CASES])
def test_format_label_selector(selector: Any, text: str) -> None:
    assert format_label_selector(selector) == text
