"""Diff desired children against live ones: what to create, update and delete. Pure.

"Needs update" compares only what we set, tolerant of server-side defaulting (SuperEdge's
DeepContains over JSON, `kube.objects.deep_contains`), plus two explicit checks DeepContains cannot
make: the template hash (a field removed from the template) and replicas (forcing 0). Config
children (ConfigMap, Secret: no `spec`) must hold exactly the desired data, so keys added or
edited by hand are reverted. So a
converged grid plans nothing. A live object with a desired name but another controller (or none)
is a conflict and is never touched; held children (units with a spec problem) are left alone;
only children this grid controls and no longer wants are deleted.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from servicegroup.api.labels import CONFIG_HASH, TEMPLATE_HASH_KEY
from servicegroup.grid.desired import Desired
from servicegroup.kube.objects import controller_of, deep_contains, meta

Obj = dict[str, Any]

# Top-level fields of a config child, compared exactly (the API server defaults none of them).
CONFIG_FIELDS: Final = ("type", "data", "binaryData")
# Service fields the API server allocates; an update that omits them keeps the live values.
_SERVICE_IP_FIELDS: Final = ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy")


@dataclass(frozen=True)
class Plan:
    """Writes to make, in name order; `conflicts` are names of children we must not touch."""

    create: list[Obj] = field(default_factory=list)
    update: list[Obj] = field(default_factory=list)  # full objects carrying the live resourceVersion
    delete: list[Obj] = field(default_factory=list)  # the live objects (uid is the precondition)
    conflicts: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        """No write at all."""
        return not (self.create or self.update or self.delete)


def plan_children(
    desired: Desired,
    live: Mapping[str, Obj],
    owner_uid: str,
    *,
    in_flight: Collection[str] = (),
    in_sync: Collection[str] = (),
) -> Plan:
    """Compare `desired` with `live` (name -> object: every child we control plus any object
    holding a desired name). Names in `in_flight` have a write whose echo the cache has not shown
    yet; they are skipped so a stale cache never causes a duplicate write. Names in `in_sync` were
    found equal to this same desired state at this same live resourceVersion: not compared again."""
    plan = Plan()
    for name in sorted(desired.children):
        want = desired.children[name]
        have = live.get(name)
        if name in in_flight:
            continue
        if have is None:
            plan.create.append(want)
        elif not _controlled_by(have, owner_uid):
            plan.conflicts.append(name)
        elif name not in in_sync and not meta(have).get("deletionTimestamp") and needs_update(have, want):
            plan.update.append(updated_child(have, want))
    if desired.blocked:
        return plan
    for name in sorted(live):
        have = live[name]
        if (
            name not in desired.children
            and name not in desired.held
            and name not in in_flight
            and _controlled_by(have, owner_uid)
            and not meta(have).get("deletionTimestamp")
        ):
            plan.delete.append(have)
    return plan


def _controlled_by(obj: Obj, uid: str) -> bool:
    ref = controller_of(obj)
    return ref is not None and ref.get("uid") == uid


def template_hash_of(obj: Mapping[str, Any]) -> str | None:
    """The template hash a child was stamped with: pod template label, or (Service) annotation, or
    (config child) the data hash annotation."""
    pod = (obj.get("spec") or {}).get("template")
    if isinstance(pod, dict):
        value = ((pod.get("metadata") or {}).get("labels") or {}).get(TEMPLATE_HASH_KEY)
    else:
        annotations = meta(obj).get("annotations") or {}
        value = annotations.get(TEMPLATE_HASH_KEY) if "spec" in obj else annotations.get(CONFIG_HASH)
    return value if isinstance(value, str) else None


def needs_update(live: Obj, desired: Obj) -> bool:
    """Does `live` differ from `desired` in anything we set (hash, replicas, labels, spec)?"""
    if template_hash_of(live) != template_hash_of(desired):
        return True
    if "spec" not in desired and any(live.get(f) != desired.get(f) for f in CONFIG_FIELDS):
        return True
    live_spec, want_spec = live.get("spec") or {}, desired.get("spec") or {}
    if "replicas" in want_spec and live_spec.get("replicas") != want_spec["replicas"]:
        return True
    live_meta, want_meta = meta(live), meta(desired)
    return not (
        deep_contains(live_meta.get("labels") or {}, want_meta.get("labels"))
        and deep_contains(live_meta.get("annotations") or {}, want_meta.get("annotations"))
        and deep_contains(live_spec, want_spec)
    )


def updated_child(live: Obj, desired: Obj) -> Obj:
    """The PUT body: the live object's identity and extra labels, our labels and spec on top."""
    live_meta, want_meta = meta(live), meta(desired)
    metadata = {k: v for k, v in live_meta.items() if k != "managedFields"}
    metadata["labels"] = {**(live_meta.get("labels") or {}), **(want_meta.get("labels") or {})}
    if want_meta.get("annotations"):
        metadata["annotations"] = {**(live_meta.get("annotations") or {}), **want_meta["annotations"]}
    body = {"apiVersion": desired["apiVersion"], "kind": desired["kind"], "metadata": metadata}
    if "spec" not in desired:  # a config child: exactly the desired data
        return {**body, **{f: desired[f] for f in CONFIG_FIELDS if f in desired}}
    spec = dict(desired.get("spec") or {})
    if desired.get("kind") == "Service":
        spec = _keep_allocated(spec, live.get("spec") or {})
    return {**body, "spec": spec}


def _keep_allocated(spec: Obj, live_spec: Mapping[str, Any]) -> Obj:
    """Carry over what the server allocated (cluster IPs, node ports) unless the template sets it."""
    service_type = spec.get("type") or "ClusterIP"
    if service_type != "ExternalName":
        for name in _SERVICE_IP_FIELDS:
            if name not in spec and name in live_spec:
                spec[name] = live_spec[name]
    if service_type in ("NodePort", "LoadBalancer") and spec.get("ports"):
        spec["ports"] = _keep_node_ports(spec["ports"], live_spec.get("ports") or [])
    local = spec.get("externalTrafficPolicy") == "Local"
    health = live_spec.get("healthCheckNodePort")
    if service_type == "LoadBalancer" and local and health and "healthCheckNodePort" not in spec:
        spec["healthCheckNodePort"] = health
    return spec


def _keep_node_ports(ports: list[Obj], live_ports: list[Obj]) -> list[Obj]:
    """Ports without a nodePort get the one allocated to the same (port, protocol)."""

    def ident(port: Mapping[str, Any]) -> tuple[Any, str]:
        return (port.get("port"), port.get("protocol") or "TCP")

    allocated = {ident(p): p["nodePort"] for p in live_ports if p.get("nodePort")}
    return [
        {**p, "nodePort": allocated[ident(p)]} if "nodePort" not in p and ident(p) in allocated else p
        for p in ports
    ]
