"""Server-side defaulting of the built-in kinds, as kube-apiserver v1.3x returns them.

Controllers compare what they want with what the server hands back, so the sandbox must fill in
exactly the fields a real cluster fills in, no more. The rules are copied from kubernetes/kubernetes
`pkg/apis/core/v1/defaults.go`, `pkg/apis/apps/v1/defaults.go`, `pkg/apis/discovery/v1/defaults.go`,
`pkg/apis/rbac/v1/defaults.go`, `pkg/apis/scheduling/v1/defaults.go`,
apiextensions-apiserver `pkg/apis/apiextensions/v1/defaults.go`,
the `+default=` markers of `staging/src/k8s.io/api/core/v1/types.go` (port protocols), the
namespace and service registry strategies (namespace finalizer and phase, IP family fields) and the
default-on admission plugins `Priority` and `DefaultTolerationSeconds`. Go serialises empty
non-pointer structs, so `resources: {}` on containers and `status.loadBalancer: {}` on Services
appear here too, and so do status counters without `omitempty` (DaemonSet, PodDisruptionBudget).
Lease, Event, Role and ClusterRole have no defaults. Everything is pure and works in place.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from servicegroup.sandbox.resources import RBAC_GROUP

Obj = dict[str, Any]

_DEFAULT_MODE = 0o644  # Secret, ConfigMap, DownwardAPI and Projected volume sources
_PROBE_DEFAULTS = (
    ("timeoutSeconds", 1),
    ("periodSeconds", 10),
    ("successThreshold", 1),
    ("failureThreshold", 3),
)
_DAEMONSET_COUNTERS = (
    "currentNumberScheduled",
    "numberMisscheduled",
    "desiredNumberScheduled",
    "numberReady",
)
_PDB_COUNTERS = ("disruptionsAllowed", "currentHealthy", "desiredHealthy", "expectedPods")
_POD_TOLERATIONS = (
    ("node.kubernetes.io/not-ready", 300),
    ("node.kubernetes.io/unreachable", 300),
)


def _sub(obj: Obj, key: str) -> Obj:
    """The dict at `obj[key]`, created empty when absent (a Go struct that is always present)."""
    value = obj.get(key)
    if not isinstance(value, dict):
        value = obj[key] = {}
    return value


def _items(obj: Obj | None, key: str) -> list[Obj]:
    """The dict elements of the list at `obj[key]`; malformed input is left to validation."""
    if not isinstance(obj, dict):
        return []
    value = obj.get(key)
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _dict(obj: Obj | None, key: str) -> Obj | None:
    value = obj.get(key) if isinstance(obj, dict) else None
    return value if isinstance(value, dict) else None


def image_tag(image: str) -> str:
    """The tag `parsers.ParseImageName` reports: "latest" when neither tag nor digest is given."""
    name, _, digest = image.partition("@")
    last = name.rsplit("/", 1)[-1]
    tag = last.rpartition(":")[2] if ":" in last else ""
    if not tag and not digest:
        return "latest"
    return tag


def _field_ref(holder: Obj | None) -> None:
    ref = _dict(holder, "fieldRef")
    if ref is not None:
        ref.setdefault("apiVersion", "v1")


def _probe(probe: Obj | None) -> None:
    if probe is None:
        return
    for key, value in _PROBE_DEFAULTS:
        if not probe.get(key):
            probe[key] = value
    _http_get(probe)


def _http_get(handler: Obj | None) -> None:
    action = _dict(handler, "httpGet")
    if action is not None:
        action.setdefault("path", "/")
        action.setdefault("scheme", "HTTP")


def _container(container: Obj) -> None:
    if not container.get("imagePullPolicy"):
        tag = image_tag(str(container.get("image", "")))
        container["imagePullPolicy"] = "Always" if tag == "latest" else "IfNotPresent"
    container.setdefault("terminationMessagePath", "/dev/termination-log")
    container.setdefault("terminationMessagePolicy", "File")
    _sub(container, "resources")
    for port in _items(container, "ports"):
        port.setdefault("protocol", "TCP")
    for env in _items(container, "env"):
        _field_ref(_dict(env, "valueFrom"))
    for key in ("livenessProbe", "readinessProbe", "startupProbe"):
        _probe(_dict(container, key))
    lifecycle = _dict(container, "lifecycle")
    for key in ("postStart", "preStop"):
        _http_get(_dict(lifecycle, key))


def _volume(volume: Obj) -> None:
    sources = [key for key in volume if key != "name"]
    if not sources:
        volume["emptyDir"] = {}
    for key in ("secret", "configMap", "downwardAPI", "projected"):
        source = _dict(volume, key)
        if source is not None:
            source.setdefault("defaultMode", _DEFAULT_MODE)
    for item in _items(_dict(volume, "downwardAPI"), "items"):
        _field_ref(item)
    for projection in _items(_dict(volume, "projected"), "sources"):
        for item in _items(_dict(projection, "downwardAPI"), "items"):
            _field_ref(item)
        token = _dict(projection, "serviceAccountToken")
        if token is not None:
            token.setdefault("expirationSeconds", 3600)
    host_path = _dict(volume, "hostPath")
    if host_path is not None:
        host_path.setdefault("type", "")


def pod_spec(spec: Obj) -> None:
    """`SetDefaults_PodSpec` plus the container and volume defaults every pod template gets."""
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("restartPolicy", "Always")
    _sub(spec, "securityContext")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("schedulerName", "default-scheduler")
    for key in ("initContainers", "containers", "ephemeralContainers"):
        for container in _items(spec, key):
            _container(container)
    for volume in _items(spec, "volumes"):
        _volume(volume)


def _pod_template(holder: Obj) -> None:
    template = _dict(holder, "template")
    spec = _dict(template, "spec")
    if spec is not None:
        pod_spec(spec)


def _requests_from_limits(container: Obj) -> None:
    resources = _dict(container, "resources")
    limits = _dict(resources, "limits")
    if resources is None or limits is None:
        return
    requests = _sub(resources, "requests")
    for name, quantity in limits.items():
        requests.setdefault(name, quantity)


def _pod(obj: Obj) -> None:
    spec = _sub(obj, "spec")
    pod_spec(spec)
    for key in ("containers", "initContainers"):
        for container in _items(spec, key):
            _requests_from_limits(container)
    spec.setdefault("enableServiceLinks", True)
    if "priorityClassName" not in spec:
        spec.setdefault("priority", 0)
    spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
    _default_tolerations(spec)


def _default_tolerations(spec: Obj) -> None:
    """The `DefaultTolerationSeconds` admission plugin: tolerate NotReady/Unreachable for 300 s."""
    tolerations = spec.get("tolerations")
    if not isinstance(tolerations, list):
        tolerations = []
    for key, seconds in _POD_TOLERATIONS:
        if any(isinstance(t, dict) and _tolerates(t, key) for t in tolerations):
            continue
        tolerations.append(
            {"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": seconds}
        )
    spec["tolerations"] = tolerations


def _tolerates(toleration: Obj, key: str) -> bool:
    """An empty key or effect matches everything, as in the admission plugin."""
    return toleration.get("key") in (key, None, "") and toleration.get("effect") in (None, "", "NoExecute")


def _deployment(obj: Obj) -> None:
    spec = _sub(obj, "spec")
    spec.setdefault("replicas", 1)
    strategy = _sub(spec, "strategy")
    strategy.setdefault("type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        rolling = _sub(strategy, "rollingUpdate")
        rolling.setdefault("maxUnavailable", "25%")
        rolling.setdefault("maxSurge", "25%")
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    _pod_template(spec)


def _zero_counters(status: Obj, fields: tuple[str, ...]) -> None:
    """Status counters without `omitempty`: Go always serialises them, as 0 before any controller ran."""
    for key in fields:
        status.setdefault(key, 0)


def _daemonset(obj: Obj) -> None:
    """`SetDefaults_DaemonSet`: a RollingUpdate strategy replacing one node's pod at a time.

    The status counters start at 0, as the API server returns them; `--simulate` fills them in.
    """
    spec = _sub(obj, "spec")
    strategy = _sub(spec, "updateStrategy")
    if not strategy.get("type"):
        strategy["type"] = "RollingUpdate"
    if strategy["type"] == "RollingUpdate":
        rolling = _sub(strategy, "rollingUpdate")
        rolling.setdefault("maxUnavailable", 1)
        rolling.setdefault("maxSurge", 0)
    spec.setdefault("revisionHistoryLimit", 10)
    _pod_template(spec)
    _zero_counters(_sub(obj, "status"), _DAEMONSET_COUNTERS)


def _pdb(obj: Obj) -> None:
    """policy/v1 has no spec defaults; the status counters are always serialised."""
    _zero_counters(_sub(obj, "status"), _PDB_COUNTERS)


def _role_binding(obj: Obj) -> None:
    """`SetDefaults_(Cluster)RoleBinding` and `SetDefaults_Subject`: the rbac group where implied."""
    _sub(obj, "roleRef").setdefault("apiGroup", RBAC_GROUP)
    for subject in _items(obj, "subjects"):
        if not subject.get("apiGroup") and subject.get("kind") in ("User", "Group"):
            subject["apiGroup"] = RBAC_GROUP


def _priority_class(obj: Obj) -> None:
    """`SetDefaults_PriorityClass`; `value` has no omitempty, so an absent one reads back as 0."""
    obj.setdefault("value", 0)
    obj.setdefault("preemptionPolicy", "PreemptLowerPriority")


def _pvc(claim: Obj) -> None:
    claim.setdefault("apiVersion", "v1")
    claim.setdefault("kind", "PersistentVolumeClaim")
    _sub(claim, "spec").setdefault("volumeMode", "Filesystem")
    _sub(claim, "status").setdefault("phase", "Pending")


def _statefulset(obj: Obj) -> None:
    spec = _sub(obj, "spec")
    spec.setdefault("podManagementPolicy", "OrderedReady")
    strategy = _sub(spec, "updateStrategy")
    if not strategy.get("type"):
        strategy["type"] = "RollingUpdate"
        _sub(strategy, "rollingUpdate")
    rolling = _dict(strategy, "rollingUpdate")
    if strategy["type"] == "RollingUpdate" and rolling is not None:
        rolling.setdefault("partition", 0)
    retention = _sub(spec, "persistentVolumeClaimRetentionPolicy")
    retention.setdefault("whenDeleted", "Retain")
    retention.setdefault("whenScaled", "Retain")
    spec.setdefault("replicas", 1)
    spec.setdefault("revisionHistoryLimit", 10)
    _pod_template(spec)
    for claim in _items(spec, "volumeClaimTemplates"):
        _pvc(claim)


def _replicaset(obj: Obj) -> None:
    spec = _sub(obj, "spec")
    spec.setdefault("replicas", 1)
    _pod_template(spec)


def _service(obj: Obj) -> None:
    spec = _sub(obj, "spec")
    spec.setdefault("sessionAffinity", "None")
    if spec["sessionAffinity"] == "None":
        spec.pop("sessionAffinityConfig", None)
    elif spec["sessionAffinity"] == "ClientIP":
        client_ip = _sub(_sub(spec, "sessionAffinityConfig"), "clientIP")
        client_ip.setdefault("timeoutSeconds", 10800)
    spec.setdefault("type", "ClusterIP")
    for port in _items(spec, "ports"):
        port.setdefault("protocol", "TCP")
        if port.get("targetPort") in (None, 0, ""):
            port["targetPort"] = port.get("port")
    kind = spec["type"]
    if kind in ("NodePort", "LoadBalancer"):
        spec.setdefault("externalTrafficPolicy", "Cluster")
    if kind in ("NodePort", "LoadBalancer", "ClusterIP"):
        spec.setdefault("internalTrafficPolicy", "Cluster")
    if kind == "LoadBalancer":
        spec.setdefault("allocateLoadBalancerNodePorts", True)
    if kind != "ExternalName":
        _ip_families(spec)
    _sub(_sub(obj, "status"), "loadBalancer")


def _ip_families(spec: Obj) -> None:
    """The service registry's single-stack (IPv4) family fields; headless selectorless → dual."""
    headless_without_selector = spec.get("clusterIP") == "None" and not spec.get("selector")
    spec.setdefault("ipFamilyPolicy", "RequireDualStack" if headless_without_selector else "SingleStack")
    spec.setdefault("ipFamilies", ["IPv4"])


def _endpoints(obj: Obj) -> None:
    for subset in _items(obj, "subsets"):
        for port in _items(subset, "ports"):
            port.setdefault("protocol", "TCP")


def _endpointslice(obj: Obj) -> None:
    for port in _items(obj, "ports"):
        port.setdefault("name", "")
        port.setdefault("protocol", "TCP")


def _secret(obj: Obj) -> None:
    if not obj.get("type"):
        obj["type"] = "Opaque"


def _namespace(obj: Obj) -> None:
    name = _sub(obj, "metadata").get("name")
    if name:
        _sub(obj["metadata"], "labels")["kubernetes.io/metadata.name"] = name
    if "deletionTimestamp" not in obj["metadata"]:
        # The namespace controller drops the finalizer once deletion started; never re-add it then.
        finalizers = _sub(obj, "spec").setdefault("finalizers", [])
        if "kubernetes" not in finalizers:
            finalizers.append("kubernetes")
    status = _sub(obj, "status")
    if not status.get("phase"):
        status["phase"] = "Active"


def _node(obj: Obj) -> None:
    status = _dict(obj, "status")
    capacity = _dict(status, "capacity")
    if status is not None and capacity is not None and status.get("allocatable") is None:
        status["allocatable"] = dict(capacity)


def _crd(obj: Obj) -> None:
    """`SetDefaults_CustomResourceDefinitionSpec` (apiextensions v1)."""
    spec = _sub(obj, "spec")
    names = _sub(spec, "names")
    kind = names.get("kind")
    if kind:
        names.setdefault("singular", str(kind).lower())
        names.setdefault("listKind", f"{kind}List")
    if not isinstance(spec.get("conversion"), dict):
        spec["conversion"] = {"strategy": "None"}


_DEFAULTERS: dict[tuple[str, str], Callable[[Obj], None]] = {
    ("", "Pod"): _pod,
    ("", "Service"): _service,
    ("", "Endpoints"): _endpoints,
    ("", "Secret"): _secret,
    ("", "Namespace"): _namespace,
    ("", "Node"): _node,
    ("apps", "Deployment"): _deployment,
    ("apps", "StatefulSet"): _statefulset,
    ("apps", "ReplicaSet"): _replicaset,
    ("apps", "DaemonSet"): _daemonset,
    ("policy", "PodDisruptionBudget"): _pdb,
    (RBAC_GROUP, "RoleBinding"): _role_binding,
    (RBAC_GROUP, "ClusterRoleBinding"): _role_binding,
    ("scheduling.k8s.io", "PriorityClass"): _priority_class,
    ("discovery.k8s.io", "EndpointSlice"): _endpointslice,
    ("apiextensions.k8s.io", "CustomResourceDefinition"): _crd,
}


def apply_defaults(group: str, kind: str, obj: dict[str, Any]) -> None:
    """Fill in the server-side defaults of a built-in kind in place; other kinds are untouched."""
    defaulter = _DEFAULTERS.get((group, kind))
    if defaulter is not None:
        defaulter(obj)
