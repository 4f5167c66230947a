"""`--simulate`: the controllers, scheduler and kubelets a real cluster would run, KWOK-style.

Nothing runs containers. A Deployment gets its ReplicaSets, a ReplicaSet or StatefulSet its pods
(and ControllerRevisions), a DaemonSet one pod per node it fits (created with the daemon tolerations and
a `metadata.name` node affinity, then bound by the scheduler, as the real controller does), old
revisions are trimmed to revisionHistoryLimit, pods are bound to
fitting nodes and reported Running with an IP from their node's pod CIDR, nodes get an address, a
Ready condition and a heartbeat Lease when they have none, and every Service with a selector gets
EndpointSlices and a legacy Endpoints object, so clients that watch workloads and endpoints see what
a cluster would show them. Not simulated: events, minReadySeconds, paused rollouts, surge limits
(a new ReplicaSet is scaled to full size at once; old ones drain as its pods become available;
DaemonSets never surge), DaemonSet ControllerRevisions,
StatefulSet partitions when creating pods, PVCs, evictions after a node stays NotReady.

The shape is a controller's: storage events only enqueue keys `(loop, namespace, name)`; one worker
reconciles each key level-triggered against the storage's current state and writes only what
differs, so a converged object costs a read and no write. Failed reconciles are retried with a
capped exponential backoff. Names with random suffixes come from an injectable `random.Random`, and
condition timestamps from an injectable clock.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import logging
import random
import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

import orjson

from servicegroup.sandbox.errors import StatusError
from servicegroup.sandbox.ipam import KeyedPool, PodCIDRAllocator
from servicegroup.sandbox.resources import ResourceType
from servicegroup.sandbox.storage import (
    Storage,
    StorageEvent,
    Subscription,
    deep_copy,
    parse_label_selector,
    set_condition,
)
from servicegroup.sandbox.tables import label_selector_string

log = logging.getLogger(__name__)

Obj = dict[str, Any]
Key = tuple[str, str, str]  # (loop, namespace, name)
Clock = Callable[[], datetime]

NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"  # apimachinery rand.String / SafeEncodeString alphabet
NODE_NETWORK = "172.18.0.0/16"  # kind's docker network: .1 is the gateway, nodes from .2
MAX_ENDPOINTS_PER_SLICE = 100
MANAGED_BY = "endpointslice-controller.k8s.io"
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
HEADLESS_LABEL = "service.kubernetes.io/headless"
SKIP_MIRROR_LABEL = "endpointslice.kubernetes.io/skip-mirror"
ZONE_LABEL = "topology.kubernetes.io/zone"
POD_TEMPLATE_HASH = "pod-template-hash"
REVISION_HASH = "controller-revision-hash"
STS_POD_NAME = "statefulset.kubernetes.io/pod-name"
STS_POD_INDEX = "apps.kubernetes.io/pod-index"
REVISION_ANNOTATION = "deployment.kubernetes.io/revision"
DESIRED_ANNOTATION = "deployment.kubernetes.io/desired-replicas"
MAX_ANNOTATION = "deployment.kubernetes.io/max-replicas"
TAINT_NOT_READY = "node.kubernetes.io/not-ready"
TAINT_UNSCHEDULABLE = "node.kubernetes.io/unschedulable"
REASON_NODE_SELECTOR = "node(s) didn't match Pod's node affinity/selector"
TEMPLATE_GENERATION_LABEL = "pod-template-generation"
# What the DaemonSet controller adds to every daemon pod (util.AddOrUpdateDaemonPodTolerations).
DAEMON_TOLERATIONS: tuple[Obj, ...] = (
    {"key": TAINT_NOT_READY, "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/disk-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/memory-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/pid-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": TAINT_UNSCHEDULABLE, "operator": "Exists", "effect": "NoSchedule"},
)
HOST_NETWORK_TOLERATION: Obj = {
    "key": "node.kubernetes.io/network-unavailable",
    "operator": "Exists",
    "effect": "NoSchedule",
}
REASON_UNSCHEDULABLE = "node(s) were unschedulable"
MAX_BACKOFF = 5.0
NODE_LEASE_NAMESPACE = "kube-node-lease"
# The kubelet's order of pod conditions.
POD_CONDITION_ORDER = {
    t: i
    for i, t in enumerate(
        ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled")
    )
}

# ---------------------------------------------------------------------------------------------
# Object helpers (pure).


def _meta(obj: Obj) -> Obj:
    meta = obj.get("metadata")
    return meta if isinstance(meta, dict) else {}


def _labels(obj: Obj) -> dict[str, str]:
    return _meta(obj).get("labels") or {}


def _spec(obj: Obj) -> Obj:
    spec = obj.get("spec")
    return spec if isinstance(spec, dict) else {}


def _status(obj: Obj) -> Obj:
    status = obj.get("status")
    return status if isinstance(status, dict) else {}


def _controller_uid(obj: Obj) -> str | None:
    refs = _meta(obj).get("ownerReferences") or []
    return next((r.get("uid") for r in refs if r.get("controller")), None)


def _owner_ref(owner: Obj) -> Obj:
    """A controller ownerReference to `owner` (blocking foreground deletion, like kube's controllers)."""
    return {
        "apiVersion": owner.get("apiVersion", ""),
        "kind": owner.get("kind", ""),
        "name": _meta(owner).get("name", ""),
        "uid": _meta(owner).get("uid", ""),
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _replicas(obj: Obj) -> int:
    value = _spec(obj).get("replicas")
    return value if isinstance(value, int) else 1


def _condition(obj: Obj, type_: str) -> Obj | None:
    return next((c for c in _status(obj).get("conditions") or [] if c.get("type") == type_), None)


def _pod_ready(pod: Obj) -> bool:
    cond = _condition(pod, "Ready")
    return cond is not None and cond.get("status") == "True"


def _node_ready(node: Obj) -> bool:
    cond = _condition(node, "Ready")
    return cond is not None and cond.get("status") == "True"


def _terminal(pod: Obj) -> bool:
    return _status(pod).get("phase") in ("Succeeded", "Failed")


def _deleting(obj: Obj) -> bool:
    return bool(_meta(obj).get("deletionTimestamp"))


def _active(pod: Obj) -> bool:
    return not _deleting(pod) and not _terminal(pod)


def _put(status: Obj, key: str, value: int) -> None:
    """Set an `omitempty` integer the way Go serialises it: zero is left out."""
    if value:
        status[key] = value


def _timestamp(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _selector_matcher(selector: Any) -> Callable[[dict[str, str]], bool]:
    """A matcher for a LabelSelector dict; an invalid selector matches nothing."""
    text = label_selector_string(selector)
    if text is None:
        return lambda _labels: False
    matcher = parse_label_selector(text)
    return matcher if matcher is not None else lambda _labels: True


def fnv32a(data: bytes) -> int:
    """FNV-1a 32-bit, the hash kube's controllers name revisions with."""
    value = 0x811C9DC5
    for byte in data:
        value = ((value ^ byte) * 0x01000193) & 0xFFFFFFFF
    return value


def safe_encode(number: int) -> str:
    """apimachinery `rand.SafeEncodeString(fmt.Sprint(n))`: no vowels, no look-alike digits."""
    return "".join(NAME_CHARS[ord(ch) % len(NAME_CHARS)] for ch in str(number))


def pod_template_hash(template: Obj, collision_count: int = 0) -> str:
    """The `pod-template-hash` of a Deployment's template (kube's ComputeHash over canonical JSON)."""
    data = orjson.dumps(template, option=orjson.OPT_SORT_KEYS)
    if collision_count:
        data += collision_count.to_bytes(4, "little")
    return safe_encode(fnv32a(data))


def revision_data(sts: Obj) -> Obj:
    """The ControllerRevision data of a StatefulSet: its template as a replacing patch."""
    return {"spec": {"template": {**(_spec(sts).get("template") or {}), "$patch": "replace"}}}


def revision_hash(sts: Obj) -> str:
    """`controller-revision-hash` suffix for the StatefulSet's current template."""
    data = orjson.dumps(revision_data(sts), option=orjson.OPT_SORT_KEYS)
    collision = _status(sts).get("collisionCount") or 0
    if collision:
        data += int(collision).to_bytes(4, "little")
    return safe_encode(fnv32a(data))


def int_or_percent(value: Any, total: int, *, round_up: bool) -> int:
    """intstr.GetScaledValueFromIntOrPercent."""
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.endswith("%") and value[:-1].isdigit():
        scaled = int(value[:-1]) * total
        return -(-scaled // 100) if round_up else scaled // 100
    return 0


def surge_and_unavailable(deploy: Obj) -> tuple[int, int]:
    """deploymentutil.ResolveFenceposts: (maxSurge, maxUnavailable); Recreate is (0, 0)."""
    strategy = _spec(deploy).get("strategy") or {}
    if strategy.get("type") == "Recreate":
        return 0, 0
    rolling = strategy.get("rollingUpdate") or {}
    desired = _replicas(deploy)
    surge = int_or_percent(rolling.get("maxSurge", "25%"), desired, round_up=True)
    unavailable = int_or_percent(rolling.get("maxUnavailable", "25%"), desired, round_up=False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, min(unavailable, desired)


# ---------------------------------------------------------------------------------------------
# Scheduling predicates (pure).


def tolerates(tolerations: Iterable[Obj], taint: Obj) -> bool:
    """v1helper.TolerationsTolerateTaint."""
    for tol in tolerations:
        if tol.get("effect") and tol.get("effect") != taint.get("effect"):
            continue
        if tol.get("operator") == "Exists":
            if not tol.get("key") or tol.get("key") == taint.get("key"):
                return True
        elif tol.get("key") == taint.get("key") and (tol.get("value") or "") == (taint.get("value") or ""):
            return True
    return False


def node_taints(node: Obj) -> list[Obj]:
    """The node's taints plus those the node lifecycle controller would add (not-ready, unschedulable)."""
    taints = [t for t in _spec(node).get("taints") or [] if isinstance(t, dict)]
    if not _node_ready(node):
        taints.append({"key": TAINT_NOT_READY, "effect": "NoSchedule"})
    if _spec(node).get("unschedulable"):
        taints.append({"key": TAINT_UNSCHEDULABLE, "effect": "NoSchedule"})
    return taints


def _requirement_matches(req: Obj, value: str | None) -> bool:
    op, values = req.get("operator"), [str(v) for v in req.get("values") or []]
    if op == "In":
        return value is not None and value in values
    if op == "NotIn":
        return value is None or value not in values
    if op == "Exists":
        return value is not None
    if op == "DoesNotExist":
        return value is None
    if op in ("Gt", "Lt") and value is not None and len(values) == 1:
        try:
            have, bound = int(value), int(values[0])
        except ValueError:
            return False
        return have > bound if op == "Gt" else have < bound
    return False


def _term_matches(term: Obj, node: Obj) -> bool:
    exprs, fields = term.get("matchExpressions") or [], term.get("matchFields") or []
    if not exprs and not fields:
        return False
    labels = _labels(node)
    if not all(_requirement_matches(r, labels.get(r.get("key", ""))) for r in exprs):
        return False
    name = _meta(node).get("name")
    return all(r.get("key") == "metadata.name" and _requirement_matches(r, name) for r in fields)


def node_affinity_matches(pod: Obj, node: Obj) -> bool:
    """nodeSelector plus requiredDuringSchedulingIgnoredDuringExecution (terms are ORed)."""
    labels = _labels(node)
    if any(labels.get(k) != v for k, v in (_spec(pod).get("nodeSelector") or {}).items()):
        return False
    affinity = (_spec(pod).get("affinity") or {}).get("nodeAffinity") or {}
    required = affinity.get("requiredDuringSchedulingIgnoredDuringExecution")
    if not required:
        return True
    return any(_term_matches(t, node) for t in required.get("nodeSelectorTerms") or [])


def unfit_reason(pod: Obj, node: Obj) -> str | None:
    """Why `node` cannot take `pod`, in the default filter order, or None when it fits."""
    tolerations = _spec(pod).get("tolerations") or []
    if _spec(node).get("unschedulable") and not tolerates(
        tolerations, {"key": TAINT_UNSCHEDULABLE, "effect": "NoSchedule"}
    ):
        return REASON_UNSCHEDULABLE
    for taint in node_taints(node):
        if taint.get("effect") in ("NoSchedule", "NoExecute") and not tolerates(tolerations, taint):
            return f"node(s) had untolerated taint {{{taint.get('key', '')}: {taint.get('value', '')}}}"
    if not node_affinity_matches(pod, node):
        return REASON_NODE_SELECTOR
    return None


def fit_error(total: int, reasons: list[str]) -> str:
    """The scheduler's FitError message (`0/5 nodes are available: ...`) with the preemption tail."""
    if total == 0:
        return "no nodes available to schedule pods"
    counts: dict[str, int] = {}
    for reason in reasons:
        counts[reason] = counts.get(reason, 0) + 1
    histogram = ", ".join(sorted(f"{n} {r}" for r, n in counts.items()))
    return (
        f"0/{total} nodes are available: {histogram}. preemption: 0/{total} nodes are available: "
        f"{total} Preemption is not helpful for scheduling."
    )


def choose_node(pod: Obj, nodes: list[Obj], load: dict[str, int]) -> tuple[str | None, str]:
    """(node name, "") for the fitting node with the fewest pods (ties by name), or (None, message)."""
    reasons: list[str] = []
    fitting: list[str] = []
    for node in nodes:
        reason = unfit_reason(pod, node)
        if reason is None:
            fitting.append(_meta(node).get("name", ""))
        else:
            reasons.append(reason)
    if not fitting:
        return None, fit_error(len(nodes), reasons)
    return min(fitting, key=lambda n: (load.get(n, 0), n)), ""


# ---------------------------------------------------------------------------------------------
# Endpoints (pure).


def resolve_port(pod: Obj, port: Obj) -> int | None:
    """podutil.FindPort: the service port's targetPort on this pod (named ports via container ports)."""
    target = port.get("targetPort", port.get("port"))
    if isinstance(target, int):
        return target
    if isinstance(target, str) and target.isdigit():
        return int(target)
    protocol = port.get("protocol") or "TCP"
    for container in _spec(pod).get("containers") or []:
        for cport in container.get("ports") or []:
            if cport.get("name") == target and (cport.get("protocol") or "TCP") == protocol:
                return int(cport.get("containerPort", 0))
    return None


def endpoint_ports(svc: Obj, pod: Obj) -> list[Obj]:
    """The EndpointPorts of one pod; ports that do not resolve on it are left out."""
    out = []
    for port in _spec(svc).get("ports") or []:
        number = resolve_port(pod, port)
        if number is None:
            continue
        entry = {"name": port.get("name") or "", "port": number, "protocol": port.get("protocol") or "TCP"}
        if port.get("appProtocol"):
            entry["appProtocol"] = port["appProtocol"]
        out.append(entry)
    return out


def _hostname(svc: Obj, pod: Obj) -> str | None:
    """Headless services publish pods' hostnames when the pod's subdomain is the service."""
    spec = _spec(pod)
    if spec.get("hostname") and spec.get("subdomain") == _meta(svc).get("name"):
        return str(spec["hostname"])
    return None


def _target_ref(pod: Obj) -> Obj:
    meta = _meta(pod)
    return {
        "kind": "Pod",
        "namespace": meta.get("namespace", ""),
        "name": meta.get("name"),
        "uid": meta.get("uid"),
    }


def slice_endpoint(svc: Obj, pod: Obj, zone: str | None) -> Obj:
    """One EndpointSlice endpoint for a pod (conditions as the endpointslice controller sets them)."""
    publish = bool(_spec(svc).get("publishNotReadyAddresses"))
    terminating = _deleting(pod)
    ready = _pod_ready(pod)
    endpoint: Obj = {
        "addresses": [_status(pod).get("podIP")],
        "conditions": {
            "ready": publish or (ready and not terminating),
            "serving": publish or ready,
            "terminating": terminating,
        },
    }
    hostname = _hostname(svc, pod)
    if hostname:
        endpoint["hostname"] = hostname
    endpoint["targetRef"] = _target_ref(pod)
    if _spec(pod).get("nodeName"):
        endpoint["nodeName"] = _spec(pod)["nodeName"]
    if zone:
        endpoint["zone"] = zone
    return endpoint


def service_pods(svc: Obj, pods: Iterable[Obj]) -> list[Obj]:
    """Pods the service selects that can be endpoints: an IP, not finished, sorted by name."""
    selector = _spec(svc).get("selector") or {}
    matches = _selector_matcher({"matchLabels": selector})
    chosen = [p for p in pods if matches(_labels(p)) and _status(p).get("podIP") and not _terminal(p)]
    return sorted(chosen, key=lambda p: str(_meta(p).get("name")))


def desired_slices(svc: Obj, pods: list[Obj], zones: dict[str, str]) -> list[tuple[list[Obj], list[Obj]]]:
    """(ports, endpoints) per slice: endpoints grouped by their resolved ports, at most 100 per slice.

    A service with no endpoints still gets one empty placeholder slice.
    """
    groups: dict[bytes, tuple[list[Obj], list[Obj]]] = {}
    for pod in pods:
        ports = endpoint_ports(svc, pod)
        if _spec(svc).get("ports") and not ports:
            continue
        key = orjson.dumps(ports, option=orjson.OPT_SORT_KEYS)
        zone = zones.get(str(_spec(pod).get("nodeName")))
        groups.setdefault(key, (ports, []))[1].append(slice_endpoint(svc, pod, zone))
    out = []
    for ports, endpoints in groups.values():
        for i in range(0, len(endpoints), MAX_ENDPOINTS_PER_SLICE):
            out.append((ports, endpoints[i : i + MAX_ENDPOINTS_PER_SLICE]))
    return out or [([], [])]


def _headless(svc: Obj) -> bool:
    return _spec(svc).get("clusterIP") == "None"


def service_child_labels(svc: Obj, extra: dict[str, str]) -> dict[str, str]:
    """Service labels copied onto its endpoints objects, plus the headless marker and `extra`."""
    labels = {k: v for k, v in _labels(svc).items() if k not in (SERVICE_NAME_LABEL, MANAGED_BY_LABEL)}
    labels.pop(HEADLESS_LABEL, None)
    if _headless(svc):
        labels[HEADLESS_LABEL] = ""
    labels.update(extra)
    return labels


def endpoints_subsets(svc: Obj, pods: list[Obj]) -> list[Obj]:
    """Legacy Endpoints subsets: ready and not-ready addresses grouped by identical port sets."""
    publish = bool(_spec(svc).get("publishNotReadyAddresses"))
    groups: dict[bytes, Obj] = {}
    for pod in pods:
        if _deleting(pod) and not publish:
            continue
        # EndpointPort.name is omitempty in core/v1 (a pointer, always present, in discovery/v1).
        ports = [{k: v for k, v in p.items() if (k, v) != ("name", "")} for p in endpoint_ports(svc, pod)]
        if _spec(svc).get("ports") and not ports:
            continue
        address: Obj = {"ip": _status(pod).get("podIP")}
        hostname = _hostname(svc, pod)
        if hostname:
            address["hostname"] = hostname
        if _spec(pod).get("nodeName"):
            address["nodeName"] = _spec(pod)["nodeName"]
        address["targetRef"] = _target_ref(pod)
        key = orjson.dumps(ports, option=orjson.OPT_SORT_KEYS)
        subset = groups.setdefault(key, {"addresses": [], "notReadyAddresses": [], "ports": ports})
        subset["addresses" if publish or _pod_ready(pod) else "notReadyAddresses"].append(address)
    out = []
    for subset in groups.values():
        for field in ("addresses", "notReadyAddresses"):
            subset[field].sort(key=lambda a: _ip_order(str(a["ip"])))
            if not subset[field]:
                del subset[field]
        if not subset["ports"]:
            del subset["ports"]
        out.append(subset)
    return out


# ---------------------------------------------------------------------------------------------
# Work queue.


class _KeyQueue:
    """A stingy FIFO of keys (a key waits at most once) with delayed re-adds; one consumer."""

    def __init__(self) -> None:
        self._keys: dict[Key, None] = {}
        self._wake = asyncio.Event()
        self._timers: dict[Key, asyncio.TimerHandle] = {}
        self.closed = False

    def add(self, key: Key) -> None:
        if not self.closed and key not in self._keys:
            self._keys[key] = None
            self._wake.set()

    def add_after(self, key: Key, delay: float) -> None:
        """Re-add `key` after `delay` seconds; an earlier pending re-add wins."""
        if self.closed or key in self._timers:
            return
        loop = asyncio.get_running_loop()

        def fire() -> None:
            self._timers.pop(key, None)
            self.add(key)

        self._timers[key] = loop.call_later(delay, fire)

    async def get(self) -> Key | None:
        """The next key, or None once closed."""
        while not self._keys:
            if self.closed:
                return None
            self._wake.clear()
            await self._wake.wait()
        if self.closed:
            return None
        key = next(iter(self._keys))
        del self._keys[key]
        return key

    def empty(self) -> bool:
        """No key waiting and none scheduled for later."""
        return not self._keys and not self._timers

    def close(self) -> None:
        self.closed = True
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        self._wake.set()


# ---------------------------------------------------------------------------------------------


class Simulator:
    """Scheduler, kubelets and workload/endpoint controllers over one Storage (see module doc)."""

    def __init__(
        self,
        storage: Storage,
        *,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        pod_cidrs: PodCIDRAllocator | None = None,
    ) -> None:
        self._storage = storage
        self._clock = clock or (lambda: datetime.now(UTC))
        self._rng = rng or random.Random()
        self._cidrs = pod_cidrs or PodCIDRAllocator()
        self._node_ips = KeyedPool(ipaddress.IPv4Network(NODE_NETWORK))
        self._queue = _KeyQueue()
        self._failures: dict[Key, int] = {}
        self._subscription: Subscription | None = None
        rt = storage.resource_type
        self.pods = rt("", "v1", "pods")
        self.nodes = rt("", "v1", "nodes")
        self.services = rt("", "v1", "services")
        self.endpoints = rt("", "v1", "endpoints")
        self.slices = rt("discovery.k8s.io", "v1", "endpointslices")
        self.deployments = rt("apps", "v1", "deployments")
        self.replicasets = rt("apps", "v1", "replicasets")
        self.statefulsets = rt("apps", "v1", "statefulsets")
        self.daemonsets = rt("apps", "v1", "daemonsets")
        self.revisions = rt("apps", "v1", "controllerrevisions")
        self.leases = rt("coordination.k8s.io", "v1", "leases")
        self._reconcilers: dict[str, Callable[[str, str], None]] = {
            "node": self.sync_node,
            "schedule": self.schedule_pod,
            "kubelet": self.sync_pod,
            "deployment": self.sync_deployment,
            "replicaset": self.sync_replicaset,
            "statefulset": self.sync_statefulset,
            "daemonset": self.sync_daemonset,
            "endpoints": self.sync_endpoints,
        }
        self._mappers: dict[tuple[str, str], Callable[[Obj], Iterable[Key]]] = {
            ("", "Node"): self._node_keys,
            ("", "Pod"): self._pod_keys,
            ("", "Service"): lambda o: [("endpoints", *self._ns_name(o))],
            ("", "Endpoints"): lambda o: [("endpoints", *self._ns_name(o))],
            ("discovery.k8s.io", "EndpointSlice"): self._slice_keys,
            ("apps", "Deployment"): lambda o: [("deployment", *self._ns_name(o))],
            ("apps", "ReplicaSet"): lambda o: [("replicaset", *self._ns_name(o)), *self._owner_keys(o)],
            ("apps", "StatefulSet"): lambda o: [("statefulset", *self._ns_name(o))],
            ("apps", "DaemonSet"): lambda o: [("daemonset", *self._ns_name(o))],
            ("apps", "ControllerRevision"): self._owner_keys,
        }

    # -- lifecycle ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Restore IPAM from stored objects, resync every object, then follow storage events."""
        subscription = self._subscription = self._storage.subscribe()
        self._restore()
        self._resync()
        pump = asyncio.create_task(self._pump(subscription))
        try:
            while (key := await self._queue.get()) is not None:
                self._process(key)
                await asyncio.sleep(0)
        finally:
            pump.cancel()
            subscription.close()
            self._queue.close()

    def stop(self) -> None:
        """End `run()` after the key being processed."""
        self._queue.close()

    @property
    def idle(self) -> bool:
        """Converged: every storage event read, no key waiting or scheduled for a retry."""
        sub = self._subscription
        return sub is not None and sub.pending() == 0 and self._queue.empty()

    async def _pump(self, subscription: Subscription) -> None:
        async for event in subscription:
            self._on_event(event)

    def _restore(self) -> None:
        """Re-adopt node CIDRs, node IPs and pod IPs after a restart from a data dir."""
        for node in self._storage.iter_objects(self.nodes):
            self._adopt_cidr(node)
            if _internal_ip(node):
                self._node_ips.restore(_meta(node).get("name", ""), _internal_ip(node))
        for pod in self._storage.iter_objects(self.pods):
            node_name, ip = _spec(pod).get("nodeName"), _status(pod).get("podIP")
            if node_name and ip and not _spec(pod).get("hostNetwork"):
                try:
                    self._cidrs.restore_pod(node_name, self._pod_key(pod), ip)
                except ValueError:  # no subnet left for its node: the pod keeps its stored IP
                    continue

    def _resync(self) -> None:
        for rt in (
            self.nodes,
            self.pods,
            self.deployments,
            self.replicasets,
            self.statefulsets,
            self.daemonsets,
            self.services,
        ):
            for obj in list(self._storage.iter_objects(rt)):
                for key in self._mappers[(rt.group, rt.kind)](obj):
                    self._queue.add(key)

    def _process(self, key: Key) -> None:
        loop, ns, name = key
        try:
            self._reconcilers[loop](ns, name)
        except StatusError as err:
            level = logging.DEBUG if err.code in (404, 409) else logging.WARNING
            log.log(level, "simulate %s %s/%s: %s", loop, ns, name, err.message)
            self._retry(key)
            return
        except Exception:
            log.exception("simulate %s %s/%s failed", loop, ns, name)
            self._retry(key)
            return
        self._failures.pop(key, None)

    def _retry(self, key: Key) -> None:
        failures = self._failures[key] = self._failures.get(key, 0) + 1
        self._queue.add_after(key, min(0.005 * 2**failures, MAX_BACKOFF))

    # -- event → keys ------------------------------------------------------------------------

    def _on_event(self, event: StorageEvent) -> None:
        mapper = self._mappers.get((event.rt.group, event.rt.kind))
        if mapper is None:
            return
        for obj in (event.obj, event.old):
            if obj is not None:
                for key in mapper(obj):
                    self._queue.add(key)

    @staticmethod
    def _ns_name(obj: Obj) -> tuple[str, str]:
        return _meta(obj).get("namespace", ""), _meta(obj).get("name", "")

    @staticmethod
    def _pod_key(pod: Obj) -> str:
        return "{}/{}".format(*Simulator._ns_name(pod))

    def _owner_keys(self, obj: Obj) -> list[Key]:
        loops = {
            "Deployment": "deployment",
            "ReplicaSet": "replicaset",
            "StatefulSet": "statefulset",
            "DaemonSet": "daemonset",
        }
        ns = _meta(obj).get("namespace", "")
        return [
            (loops[ref["kind"]], ns, ref.get("name", ""))
            for ref in _meta(obj).get("ownerReferences") or []
            if ref.get("controller") and ref.get("kind") in loops
        ]

    def _pod_keys(self, pod: Obj) -> list[Key]:
        ns, name = self._ns_name(pod)
        keys = [("kubelet" if _spec(pod).get("nodeName") else "schedule", ns, name), *self._owner_keys(pod)]
        labels = _labels(pod)
        for svc in self._storage.iter_objects(self.services, ns):
            selector = _spec(svc).get("selector")
            if selector and _selector_matcher({"matchLabels": selector})(labels):
                keys.append(("endpoints", ns, _meta(svc).get("name", "")))
        return keys

    def _node_keys(self, node: Obj) -> list[Key]:
        name = _meta(node).get("name", "")
        keys: list[Key] = [("node", "", name)]
        keys.extend(("daemonset", *self._ns_name(ds)) for ds in self._storage.iter_objects(self.daemonsets))
        for pod in self._storage.iter_objects(self.pods):
            node_name = _spec(pod).get("nodeName")
            if node_name == name:
                keys.extend(self._pod_keys(pod))
            elif not node_name:
                keys.append(("schedule", *self._ns_name(pod)))
        return keys

    def _slice_keys(self, eps: Obj) -> list[Key]:
        svc = _labels(eps).get(SERVICE_NAME_LABEL)
        return [("endpoints", _meta(eps).get("namespace", ""), svc)] if svc else []

    # -- storage helpers ---------------------------------------------------------------------

    def _find(self, rt: ResourceType, ns: str, name: str) -> Obj | None:
        """A private copy of the object, or None."""
        return self._storage.get(rt, ns, name) if self._storage.exists(rt, ns, name) else None

    def _children(self, rt: ResourceType, owner: Obj) -> list[Obj]:
        """Live objects of `rt` whose controller is `owner` (copies)."""
        uid = _meta(owner).get("uid", "")
        return [
            deep_copy(obj)
            for child_rt, obj in self._storage.dependents(uid)
            if child_rt.key == rt.key and _controller_uid(obj) == uid
        ]

    def _write_status(self, rt: ResourceType, obj: Obj, status: Obj) -> None:
        """PUT /status only when it differs."""
        if _status(obj) != status:
            self._storage.update(rt, {**obj, "status": status}, subresource="status")

    def _now(self) -> str:
        return _timestamp(self._clock())

    def _suffix(self) -> str:
        return "".join(self._rng.choice(NAME_CHARS) for _ in range(5))

    def _create_named(self, rt: ResourceType, obj: Obj, prefix: str) -> Obj:
        """Create with `prefix` + 5 random characters, retrying on a name collision."""
        for _ in range(8):
            obj["metadata"]["name"] = prefix + self._suffix()
            try:
                return self._storage.create(rt, obj)
            except StatusError as err:
                if err.reason != "AlreadyExists":
                    raise
        raise StatusError(409, "AlreadyExists", f"no free name for prefix {prefix!r}")

    # -- nodes -------------------------------------------------------------------------------

    def sync_node(self, _ns: str, name: str) -> None:
        """Give a node a pod CIDR and, when it has none, a Ready kubelet-like status."""
        node = self._find(self.nodes, "", name)
        if node is None:
            self._cidrs.release_node(name)
            self._node_ips.release(name)
            return
        if not self._adopt_cidr(node):
            cidr = self._cidrs.node_cidr(name)
            node["spec"] = {**_spec(node), "podCIDR": cidr, "podCIDRs": [cidr]}
            node = self._storage.update(self.nodes, node)
        self._write_status(self.nodes, node, self._node_status(node))
        self._ensure_node_lease(node)

    def _ensure_node_lease(self, node: Obj) -> None:
        """The kubelet's heartbeat Lease in kube-node-lease (created once; nothing renews it)."""
        name = _meta(node).get("name", "")
        if self._storage.exists(self.leases, NODE_LEASE_NAMESPACE, name):
            return
        owner = {"apiVersion": "v1", "kind": "Node", "name": name, "uid": _meta(node).get("uid", "")}
        now = self._clock().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        lease = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": name, "namespace": NODE_LEASE_NAMESPACE, "ownerReferences": [owner]},
            "spec": {"holderIdentity": name, "leaseDurationSeconds": 40, "renewTime": now},
        }
        self._storage.create(self.leases, lease)

    def _adopt_cidr(self, node: Obj) -> bool:
        """Take over the node's stored spec.podCIDR; False when it has none yet.

        A foreign CIDR (outside the cluster CIDR or taken) is kept on the node, but its pods get IPs
        from a subnet allocated here, as a misconfigured cluster would.
        """
        name, cidr = _meta(node).get("name", ""), _spec(node).get("podCIDR")
        if not cidr:
            return False
        try:
            self._cidrs.restore_node(name, cidr)
        except ValueError as err:
            log.warning("node %s: pod CIDR %s not usable: %s", name, cidr, err)
        return True

    def _node_status(self, node: Obj) -> Obj:
        """The node's status with the parts a kubelet would report filled in where missing."""
        status: Obj = deep_copy(_status(node))
        name = _meta(node).get("name", "")
        now = self._now()
        if not status.get("addresses"):
            status["addresses"] = [
                {"type": "InternalIP", "address": self._node_ips.get(name)},
                {"type": "Hostname", "address": name},
            ]
        if not status.get("conditions"):
            status["conditions"] = [
                {
                    "type": "Ready",
                    "status": "True",
                    "lastHeartbeatTime": now,
                    "lastTransitionTime": now,
                    "reason": "KubeletReady",
                    "message": "kubelet is posting ready status",
                }
            ]
        resources = {"cpu": "8", "memory": "16Gi", "pods": "110", "ephemeral-storage": "100Gi"}
        status.setdefault("capacity", resources)
        status.setdefault("allocatable", resources)
        status.setdefault(
            "nodeInfo",
            {
                "architecture": "amd64",
                "operatingSystem": "linux",
                "osImage": "Sandbox (simulated)",
                "kernelVersion": "simulated",
                "containerRuntimeVersion": "simulated://1.0",
                "kubeletVersion": "v1.33.0",
                "kubeProxyVersion": "",
                "machineID": "",
                "systemUUID": "",
                "bootID": "",
            },
        )
        return status

    # -- scheduler ---------------------------------------------------------------------------

    def schedule_pod(self, ns: str, name: str) -> None:
        """Bind a pending pod to the least loaded fitting node, or mark it Unschedulable.

        Pods with scheduling gates wait, as the scheduler leaves them (binding them would be a 409).
        """
        pod = self._find(self.pods, ns, name)
        if pod is None or _spec(pod).get("nodeName") or _spec(pod).get("schedulingGates") or not _active(pod):
            return
        if (_spec(pod).get("schedulerName") or "default-scheduler") != "default-scheduler":
            return
        nodes = sorted(self._storage.iter_objects(self.nodes), key=lambda n: str(_meta(n).get("name")))
        load: dict[str, int] = {}
        for other in self._storage.iter_objects(self.pods):
            if _spec(other).get("nodeName") and not _terminal(other):
                load[_spec(other)["nodeName"]] = load.get(_spec(other)["nodeName"], 0) + 1
        chosen, message = choose_node(pod, nodes, load)
        if chosen is None:
            conditions = set_condition(
                _status(pod).get("conditions") or [],
                {"type": "PodScheduled", "status": "False", "lastProbeTime": None, "reason": "Unschedulable"},
                self._now(),
            )
            conditions = [
                {**c, "message": message} if c.get("type") == "PodScheduled" else c for c in conditions
            ]
            self._write_status(self.pods, pod, {**_status(pod), "conditions": conditions})
            return
        meta = _meta(pod)
        self._storage.bind(
            ns, name, chosen, uid=meta.get("uid"), resource_version=meta.get("resourceVersion")
        )

    # -- kubelet -----------------------------------------------------------------------------

    def sync_pod(self, ns: str, name: str) -> None:
        """Report a bound pod Running and Ready (not Ready while its node is not), or clean up."""
        pod = self._find(self.pods, ns, name)
        key = f"{ns}/{name}"
        if pod is None:
            self._cidrs.release_pod(key)
            return
        node_name = _spec(pod).get("nodeName")
        if not node_name:
            return
        node = self._find(self.nodes, "", node_name)
        if node is None:
            self._cidrs.release_pod(key)
            self._storage.delete(self.pods, ns, name, preconditions={"uid": _meta(pod).get("uid")})
            return
        if _deleting(pod) or _terminal(pod) or not _internal_ip(node):
            return  # a node without an address yet: its own status write re-queues the pod
        self._write_status(self.pods, pod, self._pod_status(pod, node))

    def _pod_status(self, pod: Obj, node: Obj) -> Obj:
        """What the node's kubelet would report; timestamps of unchanged conditions are kept."""
        old = _status(pod)
        now = self._now()
        node_ready = _node_ready(node)
        host_ip = _internal_ip(node)
        if _spec(pod).get("hostNetwork"):
            pod_ip = host_ip
        else:
            pod_ip = self._cidrs.pod_ip(_spec(pod)["nodeName"], self._pod_key(pod))
        started = old.get("startTime") or now
        gates_ok = all(
            (_condition(pod, g.get("conditionType", "")) or {}).get("status") == "True"
            for g in _spec(pod).get("readinessGates") or []
        )
        wanted = dict.fromkeys(POD_CONDITION_ORDER, True)
        wanted["Ready"] = node_ready and gates_ok
        conditions = old.get("conditions") or []
        for type_, ok in wanted.items():
            cond = {"type": type_, "status": "True" if ok else "False", "lastProbeTime": None}
            conditions = set_condition(conditions, cond, now)
        conditions = sorted(conditions, key=lambda c: POD_CONDITION_ORDER.get(c.get("type"), len(wanted)))
        status = {
            **old,
            "phase": "Running",
            "conditions": conditions,
            "hostIP": host_ip,
            "hostIPs": [{"ip": host_ip}],
            "podIP": pod_ip,
            "podIPs": [{"ip": pod_ip}],
            "startTime": started,
            "containerStatuses": self._container_statuses(pod, "containers", started),
        }
        if _spec(pod).get("initContainers"):
            status["initContainerStatuses"] = self._container_statuses(pod, "initContainers", started)
        return status

    def _container_statuses(self, pod: Obj, field: str, started: str) -> list[Obj]:
        """Containers running since `started`, init containers completed; IDs derived from the uid."""
        uid = str(_meta(pod).get("uid", ""))
        out = []
        for container in _spec(pod).get(field) or []:
            name = container.get("name", "")
            cid = "containerd://" + hashlib.sha256(f"{uid}/{name}".encode()).hexdigest()
            if field == "initContainers":
                state: Obj = {
                    "terminated": {
                        "exitCode": 0,
                        "reason": "Completed",
                        "startedAt": started,
                        "finishedAt": started,
                        "containerID": cid,
                    }
                }
            else:
                state = {"running": {"startedAt": started}}
            out.append(
                {
                    "name": name,
                    "state": state,
                    "lastState": {},
                    "ready": True,
                    "restartCount": 0,
                    "image": container.get("image", ""),
                    "imageID": "",
                    "containerID": cid,
                    "started": field == "containers",
                }
            )
        return out

    # -- ReplicaSets -------------------------------------------------------------------------

    def sync_replicaset(self, ns: str, name: str) -> None:
        """Keep `spec.replicas` active pods owned by the ReplicaSet; report its status."""
        rs = self._find(self.replicasets, ns, name)
        if rs is None or _deleting(rs):
            return
        active = [p for p in self._children(self.pods, rs) if _active(p)]
        diff = _replicas(rs) - len(active)
        template = _spec(rs).get("template") or {}
        for _ in range(max(diff, 0)):
            self._create_named(self.pods, self._pod_from_template(rs, template), f"{name}-")
        for pod in sorted(active, key=_deletion_rank)[: max(-diff, 0)]:
            self._delete_pod(pod)
        pods = [p for p in self._children(self.pods, rs) if _active(p)]
        wanted_labels = (template.get("metadata") or {}).get("labels") or {}
        status: Obj = {"replicas": len(pods)}
        _put(
            status,
            "fullyLabeledReplicas",
            sum(1 for p in pods if all(_labels(p).get(k) == v for k, v in wanted_labels.items())),
        )
        _put(status, "readyReplicas", sum(1 for p in pods if _pod_ready(p)))
        _put(status, "availableReplicas", sum(1 for p in pods if _pod_ready(p)))
        _put(status, "observedGeneration", int(_meta(rs).get("generation") or 0))
        self._write_status(self.replicasets, rs, status)

    def _pod_from_template(self, owner: Obj, template: Obj) -> Obj:
        meta = template.get("metadata") or {}
        pod_meta: Obj = {
            "name": "",
            "generateName": f"{_meta(owner)['name']}-",
            "namespace": _meta(owner).get("namespace", ""),
            "labels": dict(meta.get("labels") or {}),
            "ownerReferences": [_owner_ref(owner)],
        }
        if meta.get("annotations"):
            pod_meta["annotations"] = dict(meta["annotations"])
        return {"apiVersion": "v1", "kind": "Pod", "metadata": pod_meta, "spec": deep_copy(_spec(template))}

    # -- DaemonSets --------------------------------------------------------------------------

    def sync_daemonset(self, ns: str, name: str) -> None:
        """One pod on every node the template fits; pods elsewhere or extra go; outdated pods are
        replaced within `maxUnavailable` (RollingUpdate) or only once deleted (OnDelete)."""
        ds = self._find(self.daemonsets, ns, name)
        if ds is None or _deleting(ds):
            return
        template = _spec(ds).get("template") or {}
        generation = str(_meta(ds).get("generation") or 1)
        probe = {"spec": _daemon_pod_spec(_spec(template), "")}
        nodes = {_meta(n).get("name", ""): n for n in self._storage.iter_objects(self.nodes)}
        eligible = {node for node, obj in nodes.items() if unfit_reason(probe, obj) is None}
        may_stay = eligible | {node for node, obj in nodes.items() if daemon_may_stay(probe, obj)}
        placed: dict[str, Obj] = {}  # node -> its one daemon pod, current or outdated
        for pod in sorted((p for p in self._children(self.pods, ds) if _active(p)), key=_deletion_rank):
            node = _daemon_pod_node(pod)
            if node in may_stay and node not in placed:
                placed[node] = pod
            else:
                self._delete_pod(pod)
        desired = len(eligible | placed.keys())
        for node in self._outdated_to_replace(ds, desired, placed, generation):
            self._delete_pod(placed.pop(node))
        for node in sorted(eligible - placed.keys()):
            pod = self._pod_from_template(ds, template)
            pod["metadata"]["labels"][TEMPLATE_GENERATION_LABEL] = generation
            pod["spec"] = _daemon_pod_spec(pod["spec"], node)
            placed[node] = self._create_named(self.pods, pod, f"{name}-")
        self._write_status(self.daemonsets, ds, _daemonset_status(ds, desired, placed, generation))

    @staticmethod
    def _outdated_to_replace(ds: Obj, desired: int, placed: dict[str, Obj], generation: str) -> list[str]:
        """Nodes whose outdated pod goes now: the unready ones at once, ready ones while fewer than
        `maxUnavailable` nodes lack a ready pod (rolling update); none with OnDelete."""
        strategy = _spec(ds).get("updateStrategy") or {}
        if strategy.get("type") == "OnDelete":
            return []
        outdated = sorted(
            n for n, p in placed.items() if _labels(p).get(TEMPLATE_GENERATION_LABEL) != generation
        )
        unready = [n for n in outdated if not _pod_ready(placed[n])]
        max_unavailable = (strategy.get("rollingUpdate") or {}).get("maxUnavailable", 1)
        budget = max(int_or_percent(max_unavailable, desired, round_up=True), 1)
        unavailable = desired - sum(1 for pod in placed.values() if _pod_ready(pod))
        ready = [n for n in outdated if n not in unready]
        return unready + ready[: max(budget - unavailable, 0)]

    def _delete_pod(self, pod: Obj) -> None:
        """Delete this very pod (a uid precondition: never a newer one of the same name)."""
        self._storage.delete(
            self.pods,
            _meta(pod).get("namespace", ""),
            _meta(pod)["name"],
            preconditions={"uid": _meta(pod)["uid"]},
        )

    # -- Deployments -------------------------------------------------------------------------

    def sync_deployment(self, ns: str, name: str) -> None:
        """One ReplicaSet per template revision; old ones drained as the new one becomes available."""
        deploy = self._find(self.deployments, ns, name)
        if deploy is None or _deleting(deploy):
            return
        collision = int(_status(deploy).get("collisionCount") or 0)
        template_hash = pod_template_hash(_spec(deploy).get("template") or {}, collision)
        new_name = f"{name}-{template_hash}"
        owned = self._children(self.replicasets, deploy)
        new_rs = next((rs for rs in owned if _meta(rs)["name"] == new_name), None)
        olds = [rs for rs in owned if rs is not new_rs]
        created = False
        if new_rs is None:
            if self._storage.exists(self.replicasets, ns, new_name):
                self._write_status(
                    self.deployments, deploy, {**_status(deploy), "collisionCount": collision + 1}
                )
                return
            new_rs = self._storage.create(self.replicasets, self._desired_rs(deploy, template_hash, olds))
            created = True
        else:
            new_rs = self._scale_new_rs(deploy, new_rs, olds)
        olds = self._drain_old(olds, new_rs)
        idle = [o for o in olds if not _replicas(o) and not _status(o).get("replicas")]
        doomed = self._trim_history(self.replicasets, idle, _spec(deploy), _revision)
        olds = [o for o in olds if _meta(o)["name"] not in doomed]
        self._set_revision(deploy, new_rs)
        self._write_status(self.deployments, deploy, self._deployment_status(deploy, new_rs, olds, created))

    def _desired_rs(self, deploy: Obj, template_hash: str, olds: list[Obj]) -> Obj:
        spec = _spec(deploy)
        template = deep_copy(spec.get("template") or {})
        template.setdefault("metadata", {})
        template["metadata"]["labels"] = {
            **(template["metadata"].get("labels") or {}),
            POD_TEMPLATE_HASH: template_hash,
        }
        selector = deep_copy(spec.get("selector") or {})
        selector["matchLabels"] = {**(selector.get("matchLabels") or {}), POD_TEMPLATE_HASH: template_hash}
        rs_spec: Obj = {"replicas": _replicas(deploy), "selector": selector, "template": template}
        if spec.get("minReadySeconds"):
            rs_spec["minReadySeconds"] = spec["minReadySeconds"]
        return {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": f"{_meta(deploy)['name']}-{template_hash}",
                "namespace": _meta(deploy).get("namespace", ""),
                "labels": template["metadata"]["labels"],
                "annotations": self._rs_annotations(deploy, _max_revision(olds) + 1),
                "ownerReferences": [_owner_ref(deploy)],
            },
            "spec": rs_spec,
        }

    @staticmethod
    def _rs_annotations(deploy: Obj, revision: int) -> dict[str, str]:
        surge, _ = surge_and_unavailable(deploy)
        return {
            DESIRED_ANNOTATION: str(_replicas(deploy)),
            MAX_ANNOTATION: str(_replicas(deploy) + surge),
            REVISION_ANNOTATION: str(revision),
        }

    def _scale_new_rs(self, deploy: Obj, rs: Obj, olds: list[Obj]) -> Obj:
        """Bring the current ReplicaSet to the desired size and the newest revision number."""
        revision = _revision(rs)
        if revision <= _max_revision(olds):
            revision = _max_revision(olds) + 1
        annotations = {**(_meta(rs).get("annotations") or {}), **self._rs_annotations(deploy, revision)}
        if _spec(rs).get("replicas") == _replicas(deploy) and annotations == _meta(rs).get("annotations"):
            return rs
        rs["metadata"]["annotations"] = annotations
        rs["spec"]["replicas"] = _replicas(deploy)
        return self._storage.update(self.replicasets, rs)

    def _drain_old(self, olds: list[Obj], new_rs: Obj) -> list[Obj]:
        """Scale old ReplicaSets down as far as the new one's available pods replace them."""
        budget = max(0, _replicas(new_rs) - int(_status(new_rs).get("availableReplicas") or 0))
        out = []
        for old in sorted(olds, key=_revision, reverse=True):
            want = min(_replicas(old), budget)
            budget -= want
            if want == _replicas(old):
                out.append(old)
                continue
            old["spec"]["replicas"] = want
            out.append(self._storage.update(self.replicasets, old))
        return out

    def _trim_history(
        self, rt: ResourceType, idle: list[Obj], spec: Obj, revision_of: Callable[[Obj], int]
    ) -> set[str]:
        """Delete the oldest unused revisions beyond spec.revisionHistoryLimit; returns their names."""
        limit = spec.get("revisionHistoryLimit")
        keep = limit if isinstance(limit, int) else 10
        doomed = sorted(idle, key=revision_of)[: max(0, len(idle) - keep)]
        for old in doomed:
            meta = _meta(old)
            self._storage.delete(rt, meta.get("namespace"), meta["name"], preconditions={"uid": meta["uid"]})
        return {_meta(old)["name"] for old in doomed}

    def _set_revision(self, deploy: Obj, new_rs: Obj) -> None:
        revision = str(_revision(new_rs))
        annotations = _meta(deploy).get("annotations") or {}
        if annotations.get(REVISION_ANNOTATION) != revision:
            deploy["metadata"]["annotations"] = {**annotations, REVISION_ANNOTATION: revision}
            deploy.update(self._storage.update(self.deployments, deploy))

    def _deployment_status(self, deploy: Obj, new_rs: Obj, olds: list[Obj], created: bool) -> Obj:
        every = [new_rs, *olds]
        desired = _replicas(deploy)
        available = sum(int(_status(rs).get("availableReplicas") or 0) for rs in every)
        updated = int(_status(new_rs).get("replicas") or 0)
        total = sum(_replicas(rs) for rs in every)
        status: Obj = {}
        _put(status, "observedGeneration", int(_meta(deploy).get("generation") or 0))
        _put(status, "replicas", sum(int(_status(rs).get("replicas") or 0) for rs in every))
        _put(status, "updatedReplicas", updated)
        _put(status, "readyReplicas", sum(int(_status(rs).get("readyReplicas") or 0) for rs in every))
        _put(status, "availableReplicas", available)
        _put(status, "unavailableReplicas", max(0, total - available))
        now = self._now()
        _, max_unavailable = surge_and_unavailable(deploy)
        conditions = _status(deploy).get("conditions") or []
        if available >= desired - max_unavailable:
            ok = ("True", "MinimumReplicasAvailable", "Deployment has minimum availability.")
        else:
            ok = ("False", "MinimumReplicasUnavailable", "Deployment does not have minimum availability.")
        conditions = set_condition(
            conditions,
            {"type": "Available", "status": ok[0], "reason": ok[1], "message": ok[2]},
            now,
            update_time=True,
        )
        rs_name = _meta(new_rs)["name"]
        complete = updated == desired and available == desired and status.get("replicas", 0) == desired
        current = next((c for c in conditions if c.get("type") == "Progressing"), None)
        if complete:
            progress = ("NewReplicaSetAvailable", f'ReplicaSet "{rs_name}" has successfully progressed.')
        elif created:
            progress = ("NewReplicaSetCreated", f'Created new replica set "{rs_name}"')
        elif current is None:
            progress = ("FoundNewReplicaSet", f'Found new replica set "{rs_name}"')
        elif current.get("reason") == "NewReplicaSetAvailable" or rs_name not in str(current.get("message")):
            progress = ("ReplicaSetUpdated", f'ReplicaSet "{rs_name}" is progressing.')
        else:
            progress = (str(current.get("reason")), str(current.get("message")))
        conditions = set_condition(
            conditions,
            {"type": "Progressing", "status": "True", "reason": progress[0], "message": progress[1]},
            now,
            update_time=True,
        )
        status["conditions"] = conditions
        if "collisionCount" in _status(deploy):
            status["collisionCount"] = _status(deploy)["collisionCount"]
        return status

    # -- StatefulSets ------------------------------------------------------------------------

    def sync_statefulset(self, ns: str, name: str) -> None:
        """Ordinal pods `<sts>-<i>`: created in order (OrderedReady) or at once (Parallel), removed
        highest ordinal first, replaced highest first when the template revision changes."""
        sts = self._find(self.statefulsets, ns, name)
        if sts is None or _deleting(sts):
            return
        update_rev = f"{name}-{revision_hash(sts)}"
        self._ensure_revision(sts, update_rev)
        pods: dict[int, Obj] = {}
        for pod in self._children(self.pods, sts):
            ordinal = _ordinal(pod, name)
            if ordinal is not None:
                pods[ordinal] = pod
        start = int((_spec(sts).get("ordinals") or {}).get("start") or 0)
        wanted = range(start, start + _replicas(sts))
        parallel = _spec(sts).get("podManagementPolicy") == "Parallel"
        self._create_ordinals(sts, update_rev, pods, wanted, parallel)
        self._delete_condemned(sts, pods, wanted, parallel)
        self._roll_ordinals(sts, update_rev, pods, wanted)
        live = [p for p in self._children(self.pods, sts) if _active(p)]
        self._write_status(self.statefulsets, sts, self._statefulset_status(sts, live, update_rev))

    def _ensure_revision(self, sts: Obj, revision_name: str) -> None:
        """The ControllerRevision of the current template, older ones trimmed to the history limit."""
        ns = _meta(sts).get("namespace", "")
        current = _status(sts).get("currentRevision")
        history = [
            r for r in self._children(self.revisions, sts) if _meta(r)["name"] not in (revision_name, current)
        ]
        self._trim_history(self.revisions, history, _spec(sts), _revision_number)
        if self._storage.exists(self.revisions, ns, revision_name):
            return
        number = 1 + max((_revision_number(r) for r in self._children(self.revisions, sts)), default=0)
        self._storage.create(
            self.revisions,
            {
                "apiVersion": "apps/v1",
                "kind": "ControllerRevision",
                "metadata": {
                    "name": revision_name,
                    "namespace": ns,
                    "labels": dict(
                        ((_spec(sts).get("template") or {}).get("metadata") or {}).get("labels") or {}
                    ),
                    "ownerReferences": [_owner_ref(sts)],
                },
                "data": revision_data(sts),
                "revision": number,
            },
        )

    def _create_ordinals(
        self, sts: Obj, revision: str, pods: dict[int, Obj], wanted: range, parallel: bool
    ) -> None:
        for ordinal in wanted:
            pod = pods.get(ordinal)
            if pod is not None:
                if not parallel and not (_active(pod) and _pod_ready(pod)):
                    return
                continue
            created = self._storage.create(self.pods, self._statefulset_pod(sts, ordinal, revision))
            pods[ordinal] = created
            if not parallel:
                return

    def _statefulset_pod(self, sts: Obj, ordinal: int, revision: str) -> Obj:
        name = f"{_meta(sts)['name']}-{ordinal}"
        pod = self._pod_from_template(sts, _spec(sts).get("template") or {})
        pod["metadata"].pop("generateName")
        pod["metadata"]["name"] = name
        pod["metadata"]["labels"].update(
            {REVISION_HASH: revision, STS_POD_NAME: name, STS_POD_INDEX: str(ordinal)}
        )
        pod["spec"]["hostname"] = name
        if _spec(sts).get("serviceName"):
            pod["spec"]["subdomain"] = _spec(sts)["serviceName"]
        return pod

    def _delete_condemned(self, sts: Obj, pods: dict[int, Obj], wanted: range, parallel: bool) -> None:
        condemned = sorted((o for o in pods if o not in wanted), reverse=True)
        for ordinal in condemned[: None if parallel else 1]:
            self._delete_pod(pods.pop(ordinal))

    def _roll_ordinals(self, sts: Obj, revision: str, pods: dict[int, Obj], wanted: range) -> None:
        """RollingUpdate: once every pod is up and ready, replace the highest outdated one."""
        strategy = _spec(sts).get("updateStrategy") or {}
        if strategy.get("type") == "OnDelete" or any(o not in pods for o in wanted):
            return
        if not all(_active(pods[o]) and _pod_ready(pods[o]) for o in wanted):
            return
        partition = int((strategy.get("rollingUpdate") or {}).get("partition") or 0)
        for ordinal in sorted(wanted, reverse=True):
            pod = pods[ordinal]
            if ordinal >= partition and _labels(pod).get(REVISION_HASH) != revision:
                self._delete_pod(pod)
                return

    def _statefulset_status(self, sts: Obj, pods: list[Obj], update_rev: str) -> Obj:
        old = _status(sts)
        current_rev = old.get("currentRevision") or update_rev
        ready = sum(1 for p in pods if _pod_ready(p))
        updated = sum(1 for p in pods if _labels(p).get(REVISION_HASH) == update_rev)
        if updated == len(pods) == _replicas(sts) and ready == updated:
            current_rev = update_rev
        status: Obj = {"replicas": len(pods)}
        _put(status, "observedGeneration", int(_meta(sts).get("generation") or 0))
        _put(status, "readyReplicas", ready)
        _put(status, "currentReplicas", sum(1 for p in pods if _labels(p).get(REVISION_HASH) == current_rev))
        _put(status, "updatedReplicas", updated)
        status["availableReplicas"] = ready
        status["currentRevision"] = current_rev
        status["updateRevision"] = update_rev
        status["collisionCount"] = int(old.get("collisionCount") or 0)
        return status

    # -- Services ----------------------------------------------------------------------------

    def sync_endpoints(self, ns: str, name: str) -> None:
        """EndpointSlices and the legacy Endpoints of a Service with a selector."""
        svc = self._find(self.services, ns, name)
        if svc is None:
            if self._storage.exists(self.endpoints, ns, name):
                self._storage.delete(self.endpoints, ns, name)
            return
        if not _spec(svc).get("selector") or _spec(svc).get("type") == "ExternalName":
            return
        pods = service_pods(svc, self._storage.iter_objects(self.pods, ns))
        zones = {
            _meta(n).get("name", ""): _labels(n)[ZONE_LABEL]
            for n in self._storage.iter_objects(self.nodes)
            if ZONE_LABEL in _labels(n)
        }
        self._sync_slices(svc, desired_slices(svc, pods, zones))
        self._sync_legacy_endpoints(svc, endpoints_subsets(svc, pods))

    def _managed_slices(self, svc: Obj) -> list[Obj]:
        name, uid = _meta(svc).get("name"), _meta(svc).get("uid")
        return sorted(
            (
                deep_copy(s)
                for s in self._storage.iter_objects(self.slices, _meta(svc).get("namespace", ""))
                if _labels(s).get(SERVICE_NAME_LABEL) == name
                and _labels(s).get(MANAGED_BY_LABEL) == MANAGED_BY
                and _controller_uid(s) == uid
            ),
            key=lambda s: str(_meta(s).get("name")),
        )

    def _sync_slices(self, svc: Obj, desired: list[tuple[list[Obj], list[Obj]]]) -> None:
        """Keep identical slices, rewrite the rest in name order, create or delete the difference."""
        labels = service_child_labels(
            svc, {SERVICE_NAME_LABEL: _meta(svc)["name"], MANAGED_BY_LABEL: MANAGED_BY}
        )
        owner = [_owner_ref(svc)]
        existing = self._managed_slices(svc)

        def same(s: Obj, ports: list[Obj], endpoints: list[Obj]) -> bool:
            return (
                s.get("ports") == ports
                and s.get("endpoints") == endpoints
                and s.get("addressType") == "IPv4"
                and _labels(s) == labels
                and _meta(s).get("ownerReferences") == owner
            )

        pending = []
        for ports, endpoints in desired:
            match = next((s for s in existing if same(s, ports, endpoints)), None)
            if match is None:
                pending.append((ports, endpoints))
            else:
                existing.remove(match)
        for ports, endpoints in pending:
            content = {"addressType": "IPv4", "endpoints": endpoints, "ports": ports}
            if existing:
                eps = existing.pop(0)
                eps.update(content)
                eps["metadata"]["labels"] = labels
                eps["metadata"]["ownerReferences"] = owner
                self._storage.update(self.slices, eps)
                continue
            ns = _meta(svc).get("namespace", "")
            meta = {
                "generateName": f"{_meta(svc)['name']}-",
                "namespace": ns,
                "labels": labels,
                "ownerReferences": owner,
            }
            obj = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": meta, **content}
            self._create_named(self.slices, obj, f"{_meta(svc)['name']}-")
        for eps in existing:
            meta = _meta(eps)
            self._storage.delete(
                self.slices, meta.get("namespace"), meta["name"], preconditions={"uid": meta["uid"]}
            )

    def _sync_legacy_endpoints(self, svc: Obj, subsets: list[Obj]) -> None:
        ns, name = self._ns_name(svc)
        labels = service_child_labels(svc, {SKIP_MIRROR_LABEL: "true"})
        current = self._find(self.endpoints, ns, name)
        if current is None:
            obj: Obj = {
                "apiVersion": "v1",
                "kind": "Endpoints",
                "metadata": {"name": name, "namespace": ns, "labels": labels},
            }
            if subsets:
                obj["subsets"] = subsets
            self._storage.create(self.endpoints, obj)
            return
        if (current.get("subsets") or []) == subsets and _labels(current) == labels:
            return
        current["metadata"]["labels"] = labels
        current.pop("subsets", None)
        if subsets:
            current["subsets"] = subsets
        self._storage.update(self.endpoints, current)


# ---------------------------------------------------------------------------------------------
# Small ordering helpers.

_PHASE_RANK = {"Pending": 0, "Unknown": 1, "Running": 2}


def _daemonset_status(ds: Obj, desired: int, placed: dict[str, Obj], generation: str) -> Obj:
    """The counters `kubectl get ds` and `kubectl rollout status` read."""
    ready = sum(1 for pod in placed.values() if _pod_ready(pod))
    updated = sum(1 for pod in placed.values() if _labels(pod).get(TEMPLATE_GENERATION_LABEL) == generation)
    return {
        **_status(ds),
        "desiredNumberScheduled": desired,
        "currentNumberScheduled": len(placed),
        "updatedNumberScheduled": updated,
        "numberMisscheduled": 0,
        "numberReady": ready,
        "numberAvailable": ready,
        "numberUnavailable": desired - ready,
        "observedGeneration": int(_meta(ds).get("generation") or 0),
    }


def _daemon_pod_spec(spec: Obj, node: str) -> Obj:
    """A daemon pod's spec: the daemon tolerations added, and (for a node) required affinity to
    exactly that node, replacing any required node affinity the template had."""
    spec = deep_copy(spec)
    defaults = [*DAEMON_TOLERATIONS, *([HOST_NETWORK_TOLERATION] if spec.get("hostNetwork") else [])]
    tolerations = spec.setdefault("tolerations", [])
    tolerations.extend(t for t in defaults if t not in tolerations)
    if node:
        term = {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}
        affinity = spec.setdefault("affinity", {}).setdefault("nodeAffinity", {})
        affinity["requiredDuringSchedulingIgnoredDuringExecution"] = {"nodeSelectorTerms": [term]}
    return spec


def daemon_may_stay(pod: Obj, node: Obj) -> bool:
    """A running daemon pod stays where only NoSchedule taints would keep a new one away (a node
    that turned NotReady or was cordoned): nodeShouldRunDaemonPod's shouldContinueRunning."""
    tolerations = _spec(pod).get("tolerations") or []
    no_execute = (t for t in node_taints(node) if t.get("effect") == "NoExecute")
    return node_affinity_matches(pod, node) and all(tolerates(tolerations, t) for t in no_execute)


def _daemon_pod_node(pod: Obj) -> str:
    """The node a daemon pod runs on, or is meant for while still pending."""
    if name := _spec(pod).get("nodeName"):
        return str(name)
    required = ((_spec(pod).get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    ) or {}
    for term in required.get("nodeSelectorTerms") or []:
        for field in term.get("matchFields") or []:
            if field.get("key") == "metadata.name" and field.get("values"):
                return str(field["values"][0])
    return ""


def _deletion_rank(pod: Obj) -> tuple[int, int, int, int, float, str]:
    """controller.ActivePods order: the pods a scale-down removes first sort first."""
    restarts = sum(int(c.get("restartCount") or 0) for c in _status(pod).get("containerStatuses") or [])
    created = _meta(pod).get("creationTimestamp") or ""
    try:
        age = datetime.fromisoformat(created).timestamp() if created else float("inf")
    except ValueError:
        age = float("inf")
    return (
        1 if _spec(pod).get("nodeName") else 0,
        _PHASE_RANK.get(str(_status(pod).get("phase")), 0),
        1 if _pod_ready(pod) else 0,
        -restarts,
        -age,
        str(_meta(pod).get("name")),
    )


def _ip_order(ip: str) -> tuple[int, str]:
    """Numeric address order (kube sorts endpoint addresses by IP); junk sorts last, by text."""
    try:
        return int(ipaddress.ip_address(ip)), ip
    except ValueError:
        return 2**128, ip


def _internal_ip(node: Obj) -> str:
    addresses = _status(node).get("addresses") or []
    return str(next((a.get("address") for a in addresses if a.get("type") == "InternalIP"), ""))


def _revision(rs: Obj) -> int:
    value = (_meta(rs).get("annotations") or {}).get(REVISION_ANNOTATION, "0")
    return int(value) if str(value).isdigit() else 0


def _revision_number(revision: Obj) -> int:
    value = revision.get("revision")
    return value if isinstance(value, int) else 0


def _max_revision(rss: list[Obj]) -> int:
    return max((_revision(rs) for rs in rss), default=0)


_ORDINAL = re.compile(r"^(.*)-(\d+)$")


def _ordinal(pod: Obj, sts_name: str) -> int | None:
    m = _ORDINAL.match(str(_meta(pod).get("name", "")))
    return int(m.group(2)) if m and m.group(1) == sts_name else None
