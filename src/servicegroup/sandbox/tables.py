"""`meta.k8s.io/v1` Table rendering, as kube-apiserver answers `Accept: ...;as=Table`.

kubectl prints whatever columns and cells the server sends, so these follow the server side
exactly: built-in kinds copy `pkg/printers/internalversion/printers.go` (column names, types,
priorities, descriptions and cell formats), custom resources copy apiextensions' `tableconvertor`
(the Name column, then `additionalPrinterColumns` evaluated as JSONPath, or a lone Age column when
the CRD declares none), and every other kind gets the generic Name / Created At table. Ages are
`duration.HumanDuration` against an injectable `now`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson

from servicegroup.sandbox import errors

Obj = dict[str, Any]
Cell = Any
Printer = Callable[[Obj, datetime], list[Cell]]


class Kinded(Protocol):
    """The parts of a ResourceType the renderer needs."""

    @property
    def group(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def custom(self) -> bool: ...
    @property
    def printer_columns(self) -> Sequence[Obj] | None: ...


# ---------------------------------------------------------------------------------------------
# Swagger descriptions the upstream printers copy into their column definitions.

_NAME_DOC = (
    "Name must be unique within a namespace. Is required when creating resources, although some "
    "resources may allow a client to request the generation of an appropriate name automatically. "
    "Name is primarily intended for creation idempotence and configuration definition. Cannot be "
    "updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names"
)
_CREATED_DOC = (
    "CreationTimestamp is a timestamp representing the server time when this object was created. It "
    "is not guaranteed to be set in happens-before order across separate operations. Clients may not "
    "set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. "
    "Read-only. Null for lists. More info: "
    "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata"
)
_CONTAINERS_DOC = "Names of each container in the template."
_IMAGES_DOC = "Images referenced by each container in the template."
_SELECTOR_DOC = {
    "ReplicaSet": (
        "Selector is a label query over pods that should match the replica count. Label keys and "
        "values that must match in order to be controlled by this replica set. It must match the pod "
        "template's labels. More info: "
        "https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors"
    ),
    "Deployment": (
        "Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the ones "
        "affected by this deployment. It must match the pod template's labels."
    ),
    "DaemonSet": (
        "A label query over pods that are managed by the daemon set. Must match in order to be controlled. "
        "It must match the pod template's labels. More info: "
        "https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors"
    ),
    "Service": (
        "Route service traffic to pods with label keys and values matching this selector. If empty or "
        "not present, the service is assumed to have an external process managing its endpoints, which "
        "Kubernetes will not modify. Only applies to types ClusterIP, NodePort, and LoadBalancer. "
        "Ignored if type is ExternalName. More info: "
        "https://kubernetes.io/docs/concepts/services-networking/service/"
    ),
}
_NODE_ADDRESSES_DOC = (
    "List of addresses reachable to the node. Queried from cloud provider, if available. More info: "
    "https://kubernetes.io/docs/reference/node/node-status/#addresses Note: This field is declared as "
    "mergeable, but the merge key is not sufficiently unique, which can cause data corruption when it "
    "is merged. Callers should instead use a full-replacement patch. See https://pr.k8s.io/79391 for "
    "an example. Consumers should assume that addresses can change during the lifetime of a Node. "
    "However, there are some exceptions where this may not be possible, such as Pods that inherit a "
    "Node's address in its own status or consumers of the downward API (status.hostIP)."
)


def _col(name: str, type_: str, description: str, priority: int = 0, fmt: str = "") -> Obj:
    return {"name": name, "type": type_, "format": fmt, "description": description, "priority": priority}


_NAME = _col("Name", "string", _NAME_DOC, fmt="name")
_AGE = _col("Age", "string", _CREATED_DOC)
_CONTAINERS = _col("Containers", "string", _CONTAINERS_DOC, 1)
_IMAGES = _col("Images", "string", _IMAGES_DOC, 1)

# ---------------------------------------------------------------------------------------------
# Small formatters shared by the printers.


def human_duration(seconds: float) -> str:
    """apimachinery `duration.HumanDuration`: ~2-3 significant figures."""
    whole = int(seconds)
    if whole < -1:
        return "<invalid>"
    if whole < 0:
        return "0s"
    if whole < 120:
        return f"{whole}s"
    minutes, hours = whole // 60, whole // 3600
    if minutes < 10:
        return f"{minutes}m{whole % 60}s" if whole % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{hours // 24}d{hours % 24}h" if hours % 24 else f"{hours // 24}d"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        years, days = hours // 24 // 365, (hours // 24) % 365
        return f"{years}y{days}d" if days else f"{years}y"
    return f"{hours // 24 // 365}y"


def parse_time(value: Any) -> datetime | None:
    """An RFC 3339 timestamp (metav1.Time / MicroTime), or None when absent or malformed."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _since(value: Any, now: datetime) -> str:
    """`translateTimestampSince`: "<unknown>" for a zero time."""
    when = parse_time(value)
    return "<unknown>" if when is None else human_duration((now - when).total_seconds())


def _age(obj: Obj, now: datetime) -> str:
    return _since(_meta(obj).get("creationTimestamp"), now)


def _meta(obj: Obj) -> Obj:
    meta = obj.get("metadata")
    return meta if isinstance(meta, dict) else {}


def _get(obj: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def _list(obj: Any, *path: str) -> list[Any]:
    value = _get(obj, *path)
    return value if isinstance(value, list) else []


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def format_labels(labels: Any) -> str:
    """`labels.FormatLabels`: sorted `k=v` pairs, "<none>" when empty."""
    if not isinstance(labels, dict) or not labels:
        return "<none>"
    return ",".join(f"{k}={labels[k]}" for k in sorted(labels))


def label_selector_string(selector: Any) -> str | None:
    """`LabelSelectorAsSelector(...).String()` of a LabelSelector dict, or None when it is invalid.

    An absent selector renders as "" (which, parsed back, selects everything).
    """
    if not isinstance(selector, dict):
        return ""
    reqs: list[tuple[str, str]] = [(k, f"{k}={v}") for k, v in (selector.get("matchLabels") or {}).items()]
    for expr in selector.get("matchExpressions") or []:
        key, op = expr.get("key", ""), expr.get("operator")
        values = ",".join(sorted(str(v) for v in expr.get("values") or []))
        rendered = {
            "In": f"{key} in ({values})",
            "NotIn": f"{key} notin ({values})",
            "Exists": key,
            "DoesNotExist": f"!{key}",
        }.get(op or "")
        if rendered is None:
            return None
        reqs.append((key, rendered))
    return ",".join(text for _, text in sorted(reqs, key=lambda r: r[0]))


def format_label_selector(selector: Any) -> str:
    """`metav1.FormatLabelSelector`: "<none>" when empty, "<error>" when invalid."""
    text = label_selector_string(selector)
    if text is None:
        return "<error>"
    return text or "<none>"


def _containers(spec: Any) -> tuple[str, str]:
    """`layoutContainerCells`: comma-joined container names and images."""
    containers = _list(spec, "containers")
    return (
        ",".join(str(c.get("name", "")) for c in containers),
        ",".join(str(c.get("image", "")) for c in containers),
    )


def _with_more(items: list[str], count: int, maximum: int = 3) -> str:
    """`listWithMoreString`: the first `maximum` items, "+ N more...", "<unset>" when empty."""
    text = ",".join(items[:maximum])
    if count > maximum:
        return f"{text} + {count - maximum} more..."
    return text or "<unset>"


# ---------------------------------------------------------------------------------------------
# Pods.

_POD_COLUMNS = [
    _NAME,
    _col("Ready", "string", "The aggregate readiness state of this pod for accepting traffic."),
    _col("Status", "string", "The aggregate status of the containers in this pod."),
    _col(
        "Restarts",
        "string",
        "The number of times the containers in this pod have been restarted and when the last "
        "container in this pod has restarted.",
    ),
    _AGE,
    _col(
        "IP",
        "string",
        "podIP address allocated to the pod. Routable at least within the cluster. Empty if not yet "
        "allocated.",
        1,
    ),
    _col(
        "Node",
        "string",
        "NodeName indicates in which node this pod is scheduled. If empty, this pod is a candidate for "
        "scheduling by the scheduler defined in schedulerName. Once this field is set, the kubelet for "
        "this node becomes responsible for the lifecycle of this pod. This field should not be used to "
        "express a desire for the pod to be scheduled on a specific node. "
        "https://kubernetes.io/docs/concepts/scheduling-eviction/assign-pod-node/#nodename",
        1,
    ),
    _col(
        "Nominated Node",
        "string",
        "nominatedNodeName is set only when this pod preempts other pods on the node, but it cannot be "
        "scheduled right away as preemption victims receive their graceful termination periods. This "
        "field does not guarantee that the pod will be scheduled on this node. Scheduler may decide to "
        "place the pod elsewhere if other nodes become available sooner. Scheduler may also decide to "
        "give the resources on this node to a higher priority pod that is created after preemption. As "
        "a result, this field may be different than PodSpec.nodeName when the pod is scheduled.",
        1,
    ),
    _col(
        "Readiness Gates",
        "string",
        "If specified, all readiness gates will be evaluated for pod readiness. A pod is ready when all "
        "its containers are ready AND all conditions specified in the readiness gates have status equal "
        'to "True" More info: https://git.k8s.io/enhancements/keps/sig-network/580-pod-readiness-gates',
        1,
    ),
]


def _condition_true(conditions: list[Any], type_: str) -> bool:
    return any(c.get("type") == type_ and c.get("status") == "True" for c in conditions)


def _terminated_reason(term: Obj, prefix: str = "") -> str:
    if term.get("reason"):
        return prefix + str(term["reason"])
    if term.get("signal"):
        return f"{prefix}Signal:{term['signal']}"
    return f"{prefix}ExitCode:{_int(term.get('exitCode'))}"


def _pod_init_status(pod: Obj, reason: str) -> tuple[str, bool, int]:
    """Walk init containers like printPod: the reason while initializing, whether it is, restarts."""
    restarts = 0
    statuses = _list(pod, "status", "initContainerStatuses")
    total = len(_list(pod, "spec", "initContainers"))
    for i, cs in enumerate(statuses):
        restarts += _int(cs.get("restartCount"))
        state = cs.get("state") or {}
        term, waiting = state.get("terminated"), state.get("waiting")
        if term and _int(term.get("exitCode")) == 0:
            continue
        if term:
            return _terminated_reason(term, "Init:"), True, restarts
        if waiting and waiting.get("reason") and waiting.get("reason") != "PodInitializing":
            return f"Init:{waiting['reason']}", True, restarts
        return f"Init:{i}/{total}", True, restarts
    return reason, False, restarts


def _containers_state(status: Obj, reason: str) -> tuple[str, int, int]:
    """The regular containers' part of printPod: (reason, ready containers, restarts)."""
    ready, restarts, has_running = 0, 0, False
    for cs in reversed(_list(status, "containerStatuses")):
        restarts += _int(cs.get("restartCount"))
        state = cs.get("state") or {}
        if (state.get("waiting") or {}).get("reason"):
            reason = state["waiting"]["reason"]
        elif state.get("terminated"):
            reason = _terminated_reason(state["terminated"])
        elif cs.get("ready") and state.get("running") is not None:
            has_running = True
            ready += 1
    if reason == "Completed" and has_running:
        reason = "Running" if _condition_true(_list(status, "conditions"), "Ready") else "NotReady"
    return reason, ready, restarts


def _restarts_cell(restarts: int, statuses: list[Any], now: datetime) -> str:
    """`3` or `3 (5m ago)` from the latest lastState.terminated.finishedAt."""
    finished = [parse_time(_get(cs, "lastState", "terminated", "finishedAt")) for cs in statuses]
    last = max((t for t in finished if t is not None), default=None)
    if restarts and last is not None:
        return f"{restarts} ({human_duration((now - last).total_seconds())} ago)"
    return str(restarts)


def _pod_cells(pod: Obj, now: datetime) -> list[Cell]:
    raw_status = pod.get("status")
    status: Obj = raw_status if isinstance(raw_status, dict) else {}
    conditions = _list(status, "conditions")
    reason = str(status.get("reason") or status.get("phase") or "")
    if any(c.get("type") == "PodScheduled" and c.get("reason") == "SchedulingGated" for c in conditions):
        reason = "SchedulingGated"
    reason, initializing, restarts = _pod_init_status(pod, reason)
    ready, counted = 0, _list(status, "initContainerStatuses")
    if not initializing or _condition_true(conditions, "Initialized"):
        reason, ready, restarts = _containers_state(status, reason)
        counted = _list(status, "containerStatuses")
    if _meta(pod).get("deletionTimestamp"):
        if status.get("reason") == "NodeLost":
            reason = "Unknown"
        elif status.get("phase") not in ("Succeeded", "Failed"):
            reason = "Terminating"
    ips = _list(status, "podIPs")
    gates = _list(pod, "spec", "readinessGates")
    gate_cell = "<none>"
    if gates:
        passed = sum(1 for g in gates if _condition_true(conditions, g.get("conditionType", "")))
        gate_cell = f"{passed}/{len(gates)}"
    return [
        _meta(pod).get("name", ""),
        f"{ready}/{len(_list(pod, 'spec', 'containers'))}",
        reason,
        _restarts_cell(restarts, counted, now),
        _age(pod, now),
        (ips[0].get("ip") if ips else "") or "<none>",
        _get(pod, "spec", "nodeName") or "<none>",
        status.get("nominatedNodeName") or "<none>",
        gate_cell,
    ]


def _pod_row_conditions(pod: Obj) -> list[Obj] | None:
    """Completed pods carry a row condition so kubectl can hide them (`--show-all`)."""
    phase = _get(pod, "status", "phase")
    messages = {"Succeeded": "The pod has completed successfully.", "Failed": "The pod failed."}
    if phase not in messages:
        return None
    message = messages[phase]
    return [{"type": "Completed", "status": "True", "reason": phase, "message": message}]


# ---------------------------------------------------------------------------------------------
# Workloads.

_DEPLOYMENT_COLUMNS = [
    _NAME,
    _col("Ready", "string", "Number of the pod with ready state"),
    _col(
        "Up-to-date",
        "string",
        "Total number of non-terminating pods targeted by this deployment that have the desired template "
        "spec.",
    ),
    _col(
        "Available",
        "string",
        "Total number of available non-terminating pods (ready for at least minReadySeconds) targeted by "
        "this deployment.",
    ),
    _AGE,
    _CONTAINERS,
    _IMAGES,
    _col("Selector", "string", _SELECTOR_DOC["Deployment"], 1),
]


def _deployment_cells(obj: Obj, now: datetime) -> list[Cell]:
    status = obj.get("status") or {}
    names, images = _containers(_get(obj, "spec", "template", "spec"))
    selector = label_selector_string(_get(obj, "spec", "selector"))
    return [
        _meta(obj).get("name", ""),
        f"{_int(status.get('readyReplicas'))}/{_int(_get(obj, 'spec', 'replicas'))}",
        _int(status.get("updatedReplicas")),
        _int(status.get("availableReplicas")),
        _age(obj, now),
        names,
        images,
        "<invalid>" if selector is None else selector,
    ]


_STATEFULSET_COLUMNS = [
    _NAME,
    _col("Ready", "string", "Number of the pod with ready state"),
    _AGE,
    _CONTAINERS,
    _IMAGES,
]


def _statefulset_cells(obj: Obj, now: datetime) -> list[Cell]:
    names, images = _containers(_get(obj, "spec", "template", "spec"))
    ready = _int(_get(obj, "status", "readyReplicas"))
    return [
        _meta(obj).get("name", ""),
        f"{ready}/{_int(_get(obj, 'spec', 'replicas'))}",
        _age(obj, now),
        names,
        images,
    ]


_REPLICASET_COLUMNS = [
    _NAME,
    _col(
        "Desired",
        "integer",
        "Replicas is the number of desired pods. This is a pointer to distinguish between explicit zero "
        "and unspecified. Defaults to 1. More info: "
        "https://kubernetes.io/docs/concepts/workloads/controllers/replicaset",
    ),
    _col(
        "Current",
        "integer",
        "Replicas is the most recently observed number of non-terminating pods. More info: "
        "https://kubernetes.io/docs/concepts/workloads/controllers/replicaset",
    ),
    _col(
        "Ready",
        "integer",
        "The number of non-terminating pods targeted by this ReplicaSet with a Ready Condition.",
    ),
    _AGE,
    _CONTAINERS,
    _IMAGES,
    _col("Selector", "string", _SELECTOR_DOC["ReplicaSet"], 1),
]


def _replicaset_cells(obj: Obj, now: datetime) -> list[Cell]:
    status = obj.get("status") or {}
    names, images = _containers(_get(obj, "spec", "template", "spec"))
    return [
        _meta(obj).get("name", ""),
        _int(_get(obj, "spec", "replicas")),
        _int(status.get("replicas")),
        _int(status.get("readyReplicas")),
        _age(obj, now),
        names,
        images,
        format_label_selector(_get(obj, "spec", "selector")),
    ]


_DAEMONSET_COLUMNS = [
    _NAME,
    _col(
        "Desired",
        "integer",
        "The total number of nodes that should be running the daemon pod (including nodes correctly "
        "running the daemon pod). More info: https://kubernetes.io/docs/concepts/workloads/controllers/daemonset/",
    ),
    _col(
        "Current",
        "integer",
        "The number of nodes that are running at least 1 daemon pod and are supposed to run the daemon "
        "pod. More info: https://kubernetes.io/docs/concepts/workloads/controllers/daemonset/",
    ),
    _col(
        "Ready",
        "integer",
        "numberReady is the number of nodes that should be running the daemon pod and have one or more of "
        "the daemon pod running with a Ready Condition.",
    ),
    _col("Up-to-date", "integer", "The total number of nodes that are running updated daemon pod"),
    _col(
        "Available",
        "integer",
        "The number of nodes that should be running the daemon pod and have one or more of the daemon pod "
        "running and available (ready for at least spec.minReadySeconds)",
    ),
    _col(
        "Node Selector",
        "string",
        "NodeSelector is a selector which must be true for the pod to fit on a node. Selector which must "
        "match a node's labels for the pod to be scheduled on that node. More info: "
        "https://kubernetes.io/docs/concepts/configuration/assign-pod-node/",
    ),
    _AGE,
    _CONTAINERS,
    _IMAGES,
    _col("Selector", "string", _SELECTOR_DOC["DaemonSet"], 1),
]
_DAEMONSET_COUNTS = (
    "desiredNumberScheduled",
    "currentNumberScheduled",
    "numberReady",
    "updatedNumberScheduled",
    "numberAvailable",
)


def _daemonset_cells(obj: Obj, now: datetime) -> list[Cell]:
    """`printDaemonSet`: the status counters (empty until a controller fills them) and the node selector."""
    status = obj.get("status") or {}
    pod_spec = _get(obj, "spec", "template", "spec")
    names, images = _containers(pod_spec)
    return [
        _meta(obj).get("name", ""),
        *(_int(status.get(key)) for key in _DAEMONSET_COUNTS),
        format_labels(_get(pod_spec, "nodeSelector")),
        _age(obj, now),
        names,
        images,
        format_label_selector(_get(obj, "spec", "selector")),
    ]


_CONTROLLER_REVISION_COLUMNS = [
    _NAME,
    _col("Controller", "string", "Controller of the object"),
    _col("Revision", "string", "Revision indicates the revision of the state represented by Data."),
    _AGE,
]


def _controller_revision_cells(obj: Obj, now: datetime) -> list[Cell]:
    owner = next((o for o in _list(obj, "metadata", "ownerReferences") if o.get("controller")), None)
    controller = "<none>"
    if owner is not None:
        group = str(owner.get("apiVersion", "")).rpartition("/")[0]
        kind = str(owner.get("kind", "")).lower()
        controller = f"{kind}.{group}/{owner.get('name', '')}" if group else f"{kind}/{owner.get('name', '')}"
    return [_meta(obj).get("name", ""), controller, _int(obj.get("revision")), _age(obj, now)]


# ---------------------------------------------------------------------------------------------
# Networking.

_SERVICE_COLUMNS = [
    _NAME,
    _col(
        "Type",
        "string",
        "type determines how the Service is exposed. Defaults to ClusterIP. Valid options are "
        'ExternalName, ClusterIP, NodePort, and LoadBalancer. "ClusterIP" allocates a cluster-internal IP '
        "address for load-balancing to endpoints. Endpoints are determined by the selector or if that is "
        "not specified, by manual construction of an Endpoints object or EndpointSlice objects. If "
        'clusterIP is "None", no virtual IP is allocated and the endpoints are published as a set of '
        'endpoints rather than a virtual IP. "NodePort" builds on ClusterIP and allocates a port on every '
        'node which routes to the same endpoints as the clusterIP. "LoadBalancer" builds on NodePort and '
        "creates an external load-balancer (if supported in the current cloud) which routes to the same "
        'endpoints as the clusterIP. "ExternalName" aliases this service to the specified externalName. '
        "Several other fields do not apply to ExternalName services. More info: "
        "https://kubernetes.io/docs/concepts/services-networking/service/#publishing-services-service-types",
    ),
    _col(
        "Cluster-IP",
        "string",
        "clusterIP is the IP address of the service and is usually assigned randomly. If an address is "
        "specified manually, is in-range (as per system configuration), and is not in use, it will be "
        "allocated to the service; otherwise creation of the service will fail. This field may not be "
        "changed through updates unless the type field is also being changed to ExternalName (which "
        "requires this field to be blank) or the type field is being changed from ExternalName (in which "
        'case this field may optionally be specified, as describe above).  Valid values are "None", '
        'empty string (""), or a valid IP address. Setting this to "None" makes a "headless service" (no '
        "virtual IP), which is useful when direct endpoint connections are preferred and proxying is not "
        "required.  Only applies to types ClusterIP, NodePort, and LoadBalancer. If this field is "
        "specified when creating a Service of type ExternalName, creation will fail. This field will be "
        "wiped when updating a Service to type ExternalName. More info: "
        "https://kubernetes.io/docs/concepts/services-networking/service/#virtual-ips-and-service-proxies",
    ),
    _col(
        "External-IP",
        "string",
        "externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic "
        "for this service.  These IPs are not managed by Kubernetes.  The user is responsible for "
        "ensuring that traffic arrives at a node with this IP.  A common example is external "
        "load-balancers that are not part of the Kubernetes system.",
    ),
    _col(
        "Port(s)",
        "string",
        "The list of ports that are exposed by this service. More info: "
        "https://kubernetes.io/docs/concepts/services-networking/service/#virtual-ips-and-service-proxies",
    ),
    _AGE,
    _col("Selector", "string", _SELECTOR_DOC["Service"], 1),
]


def _service_external_ip(svc: Obj) -> str:
    """`getServiceExternalIP(svc, wide=true)`."""
    spec = svc.get("spec") or {}
    external = [str(ip) for ip in spec.get("externalIPs") or []]
    kind = spec.get("type") or ""
    if kind in ("ClusterIP", "NodePort"):
        return ",".join(external) or "<none>"
    if kind == "LoadBalancer":
        lb: list[str] = []
        for ing in _list(svc, "status", "loadBalancer", "ingress"):
            value = ing.get("ip") or ing.get("hostname")
            if value and value not in lb:
                lb.append(value)
        return ",".join(lb + external) or "<pending>"
    if kind == "ExternalName":
        return str(spec.get("externalName", ""))
    return "<unknown>"


def _service_cells(svc: Obj, now: datetime) -> list[Cell]:
    spec = svc.get("spec") or {}
    ports = []
    for port in _list(spec, "ports"):
        node_port = _int(port.get("nodePort"))
        middle = f":{node_port}" if node_port > 0 else ""
        ports.append(f"{_int(port.get('port'))}{middle}/{port.get('protocol', '')}")
    ips = spec.get("clusterIPs") or []
    return [
        _meta(svc).get("name", ""),
        spec.get("type", ""),
        ips[0] if ips else "<none>",
        _service_external_ip(svc),
        ",".join(ports) or "<none>",
        _age(svc, now),
        format_labels(spec.get("selector")),
    ]


_ENDPOINTS_COLUMNS = [
    _NAME,
    _col(
        "Endpoints",
        "string",
        "The set of all endpoints is the union of all subsets. Addresses are placed into subsets "
        "according to the IPs they share. A single address with multiple ports, some of which are ready "
        "and some of which are not (because they come from different containers) will result in the "
        "address being displayed in different subsets for the different ports. No address will appear in "
        "both Addresses and NotReadyAddresses in the same subset. Sets of addresses and ports that "
        "comprise a service.",
    ),
    _AGE,
]


def _join_host_port(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def format_endpoints(endpoints: Obj) -> str:
    """`formatEndpoints(ep, nil)`: up to three ready `ip:port`s, then "+ N more..."."""
    subsets = _list(endpoints, "subsets")
    if not subsets:
        return "<none>"
    shown: list[str] = []
    count = 0
    for subset in subsets:
        addresses = [str(a.get("ip", "")) for a in _list(subset, "addresses")]
        ports = _list(subset, "ports")
        if not ports:
            count += len(addresses)
            shown.extend(addresses[: max(0, 3 - len(shown))])
            continue
        for port in ports:
            count += len(addresses)
            for ip in addresses[: max(0, 3 - len(shown))]:
                shown.append(_join_host_port(ip, _int(port.get("port"))))
    text = ",".join(shown)
    return f"{text} + {count - 3} more..." if count > 3 else text


def _endpoints_cells(obj: Obj, now: datetime) -> list[Cell]:
    return [_meta(obj).get("name", ""), format_endpoints(obj), _age(obj, now)]


_ENDPOINTSLICE_COLUMNS = [
    _NAME,
    _col(
        "AddressType",
        "string",
        "addressType specifies the type of address carried by this EndpointSlice. All addresses in this "
        "slice must be the same type. This field is immutable after creation. The following address "
        "types are currently supported: * IPv4: Represents an IPv4 Address. * IPv6: Represents an IPv6 "
        "Address. * FQDN: Represents a Fully Qualified Domain Name. (Deprecated) The EndpointSlice "
        'controller only generates, and kube-proxy only processes, slices of addressType "IPv4" and '
        '"IPv6". No semantics are defined for the "FQDN" type.',
    ),
    _col(
        "Ports",
        "string",
        "ports specifies the list of network ports exposed by each endpoint in this slice. Each port must "
        "have a unique name. Each slice may include a maximum of 100 ports. Services always have at least "
        "1 port, so EndpointSlices generated by the EndpointSlice controller will likewise always have at "
        "least 1 port. EndpointSlices used for other purposes may have an empty ports list.",
    ),
    _col(
        "Endpoints",
        "string",
        "endpoints is a list of unique endpoints in this slice. Each slice may include a maximum of 1000 "
        "endpoints.",
    ),
    _AGE,
]


def _endpointslice_cells(obj: Obj, now: datetime) -> list[Cell]:
    ports = _list(obj, "ports")
    port_names = [
        str(p["port"]) if isinstance(p.get("port"), int) else str(p.get("name") or "*") for p in ports
    ]
    addresses = [str(a) for e in _list(obj, "endpoints") for a in _list(e, "addresses")]
    return [
        _meta(obj).get("name", ""),
        obj.get("addressType", ""),
        _with_more(port_names, len(port_names)),
        _with_more(addresses, len(addresses)),
        _age(obj, now),
    ]


# ---------------------------------------------------------------------------------------------
# Cluster objects.

_NODE_COLUMNS = [
    _NAME,
    _col("Status", "string", "The status of the node"),
    _col("Roles", "string", "The roles of the node"),
    _AGE,
    _col("Version", "string", "Kubelet Version reported by the node."),
    _col("Internal-IP", "string", _NODE_ADDRESSES_DOC, 1),
    _col("External-IP", "string", _NODE_ADDRESSES_DOC, 1),
    _col(
        "OS-Image",
        "string",
        "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).",
        1,
    ),
    _col(
        "Kernel-Version",
        "string",
        "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).",
        1,
    ),
    _col(
        "Container-Runtime",
        "string",
        "ContainerRuntime Version reported by the node through runtime remote API (e.g. containerd://1.4.2).",
        1,
    ),
]


def node_roles(node: Obj) -> list[str]:
    """`findNodeRoles`: `node-role.kubernetes.io/<role>` keys and the `kubernetes.io/role` value."""
    roles: set[str] = set()
    for key, value in (_meta(node).get("labels") or {}).items():
        if key.startswith("node-role.kubernetes.io/") and key != "node-role.kubernetes.io/":
            roles.add(key.removeprefix("node-role.kubernetes.io/"))
        elif key == "kubernetes.io/role" and value:
            roles.add(value)
    return sorted(roles)


def _node_address(node: Obj, type_: str) -> str:
    found = (a.get("address") for a in _list(node, "status", "addresses") if a.get("type") == type_)
    return next(found, None) or "<none>"


def _node_cells(node: Obj, now: datetime) -> list[Cell]:
    ready = next((c for c in _list(node, "status", "conditions") if c.get("type") == "Ready"), None)
    states = ["Unknown" if ready is None else "Ready" if ready.get("status") == "True" else "NotReady"]
    if _get(node, "spec", "unschedulable"):
        states.append("SchedulingDisabled")
    info = _get(node, "status", "nodeInfo") or {}
    return [
        _meta(node).get("name", ""),
        ",".join(states),
        ",".join(node_roles(node)) or "<none>",
        _age(node, now),
        info.get("kubeletVersion", ""),
        _node_address(node, "InternalIP"),
        _node_address(node, "ExternalIP"),
        info.get("osImage") or "<unknown>",
        info.get("kernelVersion") or "<unknown>",
        info.get("containerRuntimeVersion") or "<unknown>",
    ]


_NAMESPACE_COLUMNS = [_NAME, _col("Status", "string", "The status of the namespace"), _AGE]


def _namespace_cells(obj: Obj, now: datetime) -> list[Cell]:
    return [_meta(obj).get("name", ""), _get(obj, "status", "phase") or "", _age(obj, now)]


_CONFIGMAP_COLUMNS = [
    _NAME,
    _col(
        "Data",
        "string",
        "Data contains the configuration data. Each key must consist of alphanumeric characters, '-', '_' "
        "or '.'. Values with non-UTF-8 byte sequences must use the BinaryData field. The keys stored in "
        "Data must not overlap with the keys in the BinaryData field, this is enforced during validation "
        "process.",
    ),
    _AGE,
]


def _configmap_cells(obj: Obj, now: datetime) -> list[Cell]:
    count = len(obj.get("data") or {}) + len(obj.get("binaryData") or {})
    return [_meta(obj).get("name", ""), count, _age(obj, now)]


_SECRET_COLUMNS = [
    _NAME,
    _col(
        "Type",
        "string",
        "Used to facilitate programmatic handling of secret data. More info: "
        "https://kubernetes.io/docs/concepts/configuration/secret/#secret-types",
    ),
    _col(
        "Data",
        "string",
        "Data contains the secret data. Each key must consist of alphanumeric characters, '-', '_' or '.'. "
        "The serialized form of the secret data is a base64 encoded string, representing the arbitrary "
        "(possibly non-string) data value here. Described in https://tools.ietf.org/html/rfc4648#section-4",
    ),
    _AGE,
]


def _secret_cells(obj: Obj, now: datetime) -> list[Cell]:
    return [_meta(obj).get("name", ""), obj.get("type", ""), len(obj.get("data") or {}), _age(obj, now)]


_SERVICEACCOUNT_COLUMNS = [
    _NAME,
    _col(
        "Secrets",
        "string",
        "Secrets is a list of the secrets in the same namespace that pods running using this "
        "ServiceAccount are allowed to use. Pods are only limited to this list if this service account "
        'has a "kubernetes.io/enforce-mountable-secrets" annotation set to "true". The '
        '"kubernetes.io/enforce-mountable-secrets" annotation is deprecated since v1.32. Prefer separate '
        "namespaces to isolate access to mounted secrets. This field should not be used to find "
        "auto-generated service account token secrets for use outside of pods. Instead, tokens can be "
        "requested directly using the TokenRequest API, or service account token secrets can be manually "
        "created. More info: https://kubernetes.io/docs/concepts/configuration/secret",
    ),
    _AGE,
]


def _serviceaccount_cells(obj: Obj, now: datetime) -> list[Cell]:
    return [_meta(obj).get("name", ""), len(obj.get("secrets") or []), _age(obj, now)]


_LEASE_COLUMNS = [
    _NAME,
    _col(
        "Holder",
        "string",
        "holderIdentity contains the identity of the holder of a current lease. If Coordinated Leader "
        "Election is used, the holder identity must be equal to the elected LeaseCandidate.metadata.name "
        "field.",
    ),
    _AGE,
]


def _lease_cells(obj: Obj, now: datetime) -> list[Cell]:
    return [_meta(obj).get("name", ""), _get(obj, "spec", "holderIdentity") or "", _age(obj, now)]


_PDB_COLUMNS = [
    _NAME,
    _col("Min Available", "string", "The minimum number of pods that must be available."),
    _col("Max Unavailable", "string", "The maximum number of pods that may be unavailable."),
    _col("Allowed Disruptions", "integer", "Calculated number of pods that may be disrupted at this time."),
    _AGE,
]
_PDB_BUDGET = ("minAvailable", "maxUnavailable")


def _pdb_cells(obj: Obj, now: datetime) -> list[Cell]:
    """`printPodDisruptionBudget`: the budget as written ("N/A" for the unset one)."""
    spec = obj.get("spec") or {}
    budget = [_print_value(spec[key]) if spec.get(key) is not None else "N/A" for key in _PDB_BUDGET]
    allowed = _int(_get(obj, "status", "disruptionsAllowed"))
    return [_meta(obj).get("name", ""), *budget, allowed, _age(obj, now)]


_ROLE_REF_DOC = "If the RoleRef cannot be resolved, the Authorizer must return an error."


def _binding_columns(holder: str, role_ref_doc: str) -> list[Obj]:
    """Role bindings and cluster role bindings: the same columns, their own descriptions."""
    return [
        _NAME,
        _col("Role", "string", f"{role_ref_doc} {_ROLE_REF_DOC}"),
        _AGE,
        *(
            _col(name, "string", f"{name} in the {holder}", 1)
            for name in ("Users", "Groups", "ServiceAccounts")
        ),
    ]


_ROLE_BINDING_COLUMNS = _binding_columns(
    "roleBinding",
    "RoleRef can reference a Role in the current namespace or a ClusterRole in the global namespace.",
)
_CLUSTER_ROLE_BINDING_COLUMNS = _binding_columns(
    "clusterRoleBinding", "RoleRef can only reference a ClusterRole in the global namespace."
)


def _binding_cells(obj: Obj, now: datetime) -> list[Cell]:
    """`printRoleBinding` / `printClusterRoleBinding`: `Kind/name` of the role, subjects by kind."""
    ref = obj.get("roleRef") or {}
    by_kind: dict[str, list[str]] = {"User": [], "Group": [], "ServiceAccount": []}
    for subject in _list(obj, "subjects"):
        kind, name = subject.get("kind"), str(subject.get("name", ""))
        if kind == "ServiceAccount":
            name = f"{subject.get('namespace', '')}/{name}"
        by_kind.get(str(kind), []).append(name)
    return [
        _meta(obj).get("name", ""),
        f"{ref.get('kind', '')}/{ref.get('name', '')}",
        _age(obj, now),
        *(", ".join(names) for names in by_kind.values()),
    ]


_PRIORITY_CLASS_COLUMNS = [
    _NAME,
    _col(
        "Value",
        "integer",
        "value represents the integer value of this priority class. This is the actual priority that pods "
        "receive when they have the name of this class in their pod spec.",
    ),
    _col(
        "Global-Default",
        "boolean",
        "globalDefault specifies whether this PriorityClass should be considered as the default priority "
        "for pods that do not have any priority class. Only one PriorityClass can be marked as "
        "`globalDefault`. However, if more than one PriorityClasses exists with their `globalDefault` "
        "field set to true, the smallest value of such global default PriorityClasses will be used as the "
        "default priority.",
    ),
    _AGE,
    _col(
        "PreemptionPolicy",
        "string",
        "preemptionPolicy is the Policy for preempting pods with lower priority. One of Never, "
        "PreemptLowerPriority. Defaults to PreemptLowerPriority if unset.",
    ),
]


def _priority_class_cells(obj: Obj, now: datetime) -> list[Cell]:
    return [
        _meta(obj).get("name", ""),
        _int(obj.get("value")),
        obj.get("globalDefault") is True,
        _age(obj, now),
        obj.get("preemptionPolicy") or "",
    ]


_EVENT_COLUMNS = [
    _col("Last Seen", "string", "The time at which the most recent occurrence of this event was recorded."),
    _col("Type", "string", "Type of this event (Normal, Warning), new types could be added in the future"),
    _col(
        "Reason",
        "string",
        "This should be a short, machine understandable string that gives the reason for the transition "
        "into the object's current status.",
    ),
    _col("Object", "string", "The object that this event is about."),
    _col(
        "Subobject",
        "string",
        "If referring to a piece of an object instead of an entire object, this string should contain a "
        "valid JSON/Go field access statement, such as desiredState.manifest.containers[2]. For example, if "
        "the object reference is to a container within a pod, this would take on a value like: "
        '"spec.containers{name}" (where "name" refers to the name of the container that triggered the '
        'event) or if no container name is specified "spec.containers[2]" (container with index 2 in this '
        "pod). This syntax is chosen only to have some well-defined way of referencing a part of an "
        "object.",
        1,
    ),
    _col(
        "Source",
        "string",
        "The component reporting this event. Should be a short machine understandable string.",
        1,
    ),
    _col("Message", "string", "A human-readable description of the status of this operation."),
    _col(
        "First Seen",
        "string",
        "The time at which the event was first recorded. (Time of server receipt is in TypeMeta.)",
        1,
    ),
    _col("Count", "string", "The number of times this event has occurred.", 1),
    {**_NAME, "priority": 1},
]


def _core_event(obj: Obj) -> Obj:
    """An events.k8s.io/v1 Event in core/v1 field names (upstream prints both from one internal type)."""
    if "involvedObject" in obj or "regarding" not in obj:
        return obj
    return {
        "metadata": obj.get("metadata"),
        "involvedObject": obj.get("regarding"),
        "reason": obj.get("reason"),
        "message": obj.get("note"),
        "type": obj.get("type"),
        "source": obj.get("deprecatedSource"),
        "firstTimestamp": obj.get("deprecatedFirstTimestamp"),
        "lastTimestamp": obj.get("deprecatedLastTimestamp"),
        "count": obj.get("deprecatedCount"),
        "eventTime": obj.get("eventTime"),
        "series": obj.get("series"),
        "reportingComponent": obj.get("reportingController"),
        "reportingInstance": obj.get("reportingInstance"),
    }


def _event_cells(raw: Obj, now: datetime) -> list[Cell]:
    obj = _core_event(raw)
    first = (
        _since(obj.get("firstTimestamp"), now)
        if obj.get("firstTimestamp")
        else _since(obj.get("eventTime"), now)
    )
    last = _since(obj.get("lastTimestamp"), now) if obj.get("lastTimestamp") else first
    count = _int(obj.get("count"))
    series = obj.get("series")
    if isinstance(series, dict):
        last = _since(series.get("lastObservedTime"), now)
        count = _int(series.get("count"))
    elif count == 0:
        count = 1
    involved = obj.get("involvedObject") or {}
    kind = str(involved.get("kind", "")).lower()
    target = f"{kind}/{involved['name']}" if involved.get("name") else kind
    source = obj.get("source") or {}
    component = source.get("component") or obj.get("reportingComponent") or ""
    host = source.get("host") or obj.get("reportingInstance") or ""
    return [
        last,
        obj.get("type", ""),
        obj.get("reason", ""),
        target,
        involved.get("fieldPath", ""),
        f"{component}, {host}" if host else component,
        str(obj.get("message") or "").strip(),
        first,
        count,
        _meta(obj).get("name", ""),
    ]


# The generic rest.defaultTableConvertor (CustomResourceDefinitions and kinds without a printer).
_DEFAULT_COLUMNS = [_NAME, _col("Created At", "date", _CREATED_DOC)]


def _default_cells(obj: Obj, now: datetime) -> list[Cell]:
    created = parse_time(_meta(obj).get("creationTimestamp"))
    stamp = (created or datetime(1, 1, 1, tzinfo=UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return [_meta(obj).get("name", ""), stamp]


_PRINTERS: dict[tuple[str, str], tuple[list[Obj], Printer]] = {
    ("", "Pod"): (_POD_COLUMNS, _pod_cells),
    ("apps", "Deployment"): (_DEPLOYMENT_COLUMNS, _deployment_cells),
    ("apps", "StatefulSet"): (_STATEFULSET_COLUMNS, _statefulset_cells),
    ("apps", "ReplicaSet"): (_REPLICASET_COLUMNS, _replicaset_cells),
    ("apps", "ControllerRevision"): (_CONTROLLER_REVISION_COLUMNS, _controller_revision_cells),
    ("", "Service"): (_SERVICE_COLUMNS, _service_cells),
    ("", "Endpoints"): (_ENDPOINTS_COLUMNS, _endpoints_cells),
    ("discovery.k8s.io", "EndpointSlice"): (_ENDPOINTSLICE_COLUMNS, _endpointslice_cells),
    ("", "Node"): (_NODE_COLUMNS, _node_cells),
    ("", "Namespace"): (_NAMESPACE_COLUMNS, _namespace_cells),
    ("", "ConfigMap"): (_CONFIGMAP_COLUMNS, _configmap_cells),
    ("", "Secret"): (_SECRET_COLUMNS, _secret_cells),
    ("", "ServiceAccount"): (_SERVICEACCOUNT_COLUMNS, _serviceaccount_cells),
    ("", "Event"): (_EVENT_COLUMNS, _event_cells),
    ("events.k8s.io", "Event"): (_EVENT_COLUMNS, _event_cells),
    ("coordination.k8s.io", "Lease"): (_LEASE_COLUMNS, _lease_cells),
    ("apps", "DaemonSet"): (_DAEMONSET_COLUMNS, _daemonset_cells),
    ("policy", "PodDisruptionBudget"): (_PDB_COLUMNS, _pdb_cells),
    # printRole / printClusterRole print exactly the generic Name / Created At table.
    ("rbac.authorization.k8s.io", "Role"): (_DEFAULT_COLUMNS, _default_cells),
    ("rbac.authorization.k8s.io", "ClusterRole"): (_DEFAULT_COLUMNS, _default_cells),
    ("rbac.authorization.k8s.io", "RoleBinding"): (_ROLE_BINDING_COLUMNS, _binding_cells),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"): (_CLUSTER_ROLE_BINDING_COLUMNS, _binding_cells),
    ("scheduling.k8s.io", "PriorityClass"): (_PRIORITY_CLASS_COLUMNS, _priority_class_cells),
}


# ---------------------------------------------------------------------------------------------
# Custom resources: additionalPrinterColumns as client-go JSONPath.

_AGE_COLUMN = {
    "name": "Age",
    "type": "date",
    "description": _CREATED_DOC,
    "jsonPath": ".metadata.creationTimestamp",
}
_TOKEN = re.compile(
    r"""\.\.|\.(?P<field>[^.\[\]]+)|\[(?:(?P<star>\*)|(?P<index>-?\d+)|'(?P<sq>[^']*)'|"(?P<dq>[^"]*)"|"""
    r"""\?\((?P<filter>[^)]*)\))\]"""
)
_FILTER = re.compile(r"""\s*@((?:\.[^.\s=!<>]+)*)\s*(?:(==|!=)\s*(?:'([^']*)'|"([^"]*)"|(\S+)))?\s*""")


def _filter_match(item: Any, expr: str) -> bool:
    m = _FILTER.fullmatch(expr)
    if m is None:
        raise ValueError(f"unrecognized filter {expr!r}")
    value: Any = item
    for key in [k for k in m.group(1).split(".") if k]:
        if not isinstance(value, dict) or key not in value:
            return False
        value = value[key]
    if m.group(2) is None:
        return True
    literal = next((g for g in m.group(3, 4) if g is not None), None)
    if literal is None:
        literal_value: Any = orjson.loads(m.group(5))
    else:
        literal_value = literal
    return bool(value == literal_value) == (m.group(2) == "==")


def _step(values: list[Any], m: re.Match[str]) -> list[Any]:
    out: list[Any] = []
    for value in values:
        if m.group(0) == "..":
            raise ValueError("recursive descent is not supported")
        key = m.group("field") or m.group("sq") or m.group("dq")
        if key is not None and key != "*":
            if isinstance(value, dict) and key in value:
                out.append(value[key])
        elif m.group("star") or key == "*":
            out.extend(
                value.values() if isinstance(value, dict) else value if isinstance(value, list) else []
            )
        elif m.group("index") is not None:
            idx = int(m.group("index"))
            if isinstance(value, list) and -len(value) <= idx < len(value):
                out.append(value[idx])
        elif isinstance(value, list):
            out.extend(v for v in value if _filter_match(v, m.group("filter")))
    return out


def jsonpath(expr: str, obj: Any) -> list[Any]:
    """Evaluate a CRD column's JSONPath (`.status.conditions[?(@.type=="Ready")].status`).

    Missing keys yield no result (AllowMissingKeys); a malformed path raises ValueError.
    """
    text = expr.strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1]
    text = text.removeprefix("$")
    values: list[Any] = [obj]
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise ValueError(f"unrecognized column definition {expr!r}")
        values = _step(values, m)
        pos = m.end()
    return values


def _print_value(value: Any) -> str:
    """client-go jsonpath PrintResults for one value: strings raw, everything else like Go's %v/JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        text = repr(value)
        return text.removesuffix(".0") if "e" not in text else text
    if isinstance(value, int):
        return str(value)
    return orjson.dumps(value).decode()


def _custom_cell(type_: str, value: Any, now: datetime) -> Cell:
    """apiextensions `cellForJSONValue` (and the string branch of ConvertToTable)."""
    if value is None:
        return None
    if type_ == "string":
        return _print_value(value)
    if type_ == "integer" and isinstance(value, int | float) and not isinstance(value, bool):
        return int(value)
    if type_ == "number" and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if type_ == "boolean" and isinstance(value, bool):
        return value
    if type_ == "date" and isinstance(value, str):
        when = parse_time(value)
        return "<invalid>" if when is None else human_duration((now - when).total_seconds())
    return None


def _custom_columns(printer_columns: Sequence[Obj] | None) -> list[Obj]:
    columns = list(printer_columns or ()) or [_AGE_COLUMN]
    defs = [_NAME]
    for col in columns:
        path = col.get("jsonPath", "")
        defs.append(
            _col(
                col.get("name", ""),
                col.get("type", ""),
                col.get("description") or f"Custom resource definition column (in JSONPath format): {path}",
                int(col.get("priority") or 0),
                col.get("format") or "",
            )
        )
    return defs


def _custom_printer(printer_columns: Sequence[Obj] | None) -> Printer:
    columns = list(printer_columns or ()) or [_AGE_COLUMN]

    def cells(obj: Obj, now: datetime) -> list[Cell]:
        row: list[Cell] = [_meta(obj).get("name", "")]
        for col in columns:
            try:
                found = jsonpath(col.get("jsonPath", ""), obj)
            except ValueError:
                found = []
            row.append(_custom_cell(col.get("type", ""), found[0], now) if found else None)
        return row

    return cells


# ---------------------------------------------------------------------------------------------


def _row_object(obj: Obj, include_object: str) -> Obj | None:
    if include_object == "Object":
        return obj
    if include_object == "None":
        return None
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": _meta(obj)}


def columns_for(rt: Kinded, printer_columns: Sequence[Obj] | None) -> tuple[list[Obj], Printer]:
    """The column definitions and row printer kube-apiserver uses for `rt`."""
    if rt.custom:
        return _custom_columns(printer_columns), _custom_printer(printer_columns)
    return _PRINTERS.get((rt.group, rt.kind), (_DEFAULT_COLUMNS, _default_cells))


def to_table(
    rt: Kinded,
    objs: Sequence[Obj],
    *,
    printer_columns: Sequence[Obj] | None = None,
    include_object: str = "Metadata",
    list_meta: Obj | None = None,
    no_headers: bool = False,
    now: datetime | None = None,
) -> Obj:
    """The Table for `objs` (one object for a GET, the items for a LIST); `list_meta` is its metadata.

    A custom resource's columns are `printer_columns`, by default its ResourceType's.

    `include_object` is the `includeObject` query parameter: Metadata (default) puts a
    PartialObjectMetadata in each row, Object the whole object, None nothing.
    """
    if include_object not in ("", "Metadata", "Object", "None"):
        raise errors.bad_request(f'unrecognized includeObject value: "{include_object}"')
    columns, printer = columns_for(rt, rt.printer_columns if printer_columns is None else printer_columns)
    now = now or datetime.now(UTC)
    rows = []
    for obj in objs:
        row: Obj = {"cells": printer(obj, now)}
        if (rt.group, rt.kind) == ("", "Pod") and (conditions := _pod_row_conditions(obj)):
            row["conditions"] = conditions
        row["object"] = _row_object(obj, include_object)
        rows.append(row)
    table: Obj = {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": dict(list_meta or {})}
    if not no_headers:
        table["columnDefinitions"] = columns
    table["rows"] = rows
    return table
