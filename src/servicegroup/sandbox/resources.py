"""The resource types the sandbox serves: the built-in table and the shape CRDs are turned into."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
SUBRESOURCE_VERBS = ("get", "patch", "update")
# Subresources that are not get/patch/update views of the object (pods/binding takes a Binding).
_SUBRESOURCE_VERBS = {"finalize": ("update",), "binding": ("create",)}
COMMON_FIELDS = ("metadata.name", "metadata.namespace")
RBAC_GROUP = "rbac.authorization.k8s.io"


@dataclass(frozen=True)
class ResourceType:
    """One served group/version/resource and everything discovery, storage and tables need about it.

    Objects of one (group, plural) share a store whatever the version they are read in (`key`).
    """

    group: str
    version: str
    kind: str
    plural: str
    singular: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: frozenset[str] = frozenset()
    verbs: tuple[str, ...] = ALL_VERBS
    list_kind: str = ""
    printer_columns: tuple[dict[str, Any], ...] | None = field(default=None, compare=False)
    # Field labels usable in fieldSelector besides metadata.name/namespace (real per-kind sets).
    field_labels: tuple[str, ...] = ()
    # metadata.generation is tracked (and bumped on spec change) for this kind.
    has_generation: bool = False
    # The create strategy drops any status the client sent (Deployments, Services, CRs ...).
    reset_status_on_create: bool = False
    # A served custom resource (from a CRD): schema pruning/validation instead of built-in rules.
    custom: bool = False
    # CRD-declared scale subresource JSON paths: specReplicasPath, statusReplicasPath, labelSelectorPath.
    scale_paths: dict[str, str] | None = field(default=None, compare=False)
    # The CRD version's structural schema (a validation.CrdSchema) when custom.
    schema: Any = field(default=None, compare=False)

    @cached_property
    def api_version(self) -> str:
        """`apps/v1` or `v1`."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @cached_property
    def key(self) -> tuple[str, str]:
        """Storage identity, shared by every version of one resource."""
        return (self.group, self.plural)

    @cached_property
    def group_resource(self) -> str:
        """`deployments.apps` as used in error messages."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @cached_property
    def list_kind_name(self) -> str:
        """The List kind (`DeploymentList`)."""
        return self.list_kind or f"{self.kind}List"

    def supports_field(self, label: str) -> bool:
        """Whether `label` may appear in a field selector for this resource."""
        return label in COMMON_FIELDS or label in self.field_labels


def _rt(
    group: str,
    version: str,
    kind: str,
    plural: str,
    namespaced: bool = True,
    **kw: Any,
) -> ResourceType:
    return ResourceType(group, version, kind, plural, kind.lower(), namespaced, **kw)


_STATUS = frozenset({"status"})
_STATUS_SCALE = frozenset({"status", "scale"})


def _spec_status(group: str, kind: str, plural: str, short: str, **kw: Any) -> ResourceType:
    """A v1 spec/status kind: a status subresource, a generation, and a create that drops the status."""
    kw.setdefault("subresources", _STATUS)
    return _rt(
        group,
        "v1",
        kind,
        plural,
        short_names=(short,),
        has_generation=True,
        reset_status_on_create=True,
        **kw,
    )


def _workload(kind: str, plural: str, short: str, **kw: Any) -> ResourceType:
    """An apps/v1 controller kind: status and scale subresources, generation, category all."""
    return _spec_status("apps", kind, plural, short, categories=("all",), subresources=_STATUS_SCALE, **kw)


def _rbac(kind: str, plural: str, *, namespaced: bool) -> ResourceType:
    """An rbac.authorization.k8s.io/v1 kind: stored objects only, the sandbox authorizes nothing."""
    return _rt(RBAC_GROUP, "v1", kind, plural, namespaced)


_POD_FIELDS = (
    "spec.nodeName",
    "spec.restartPolicy",
    "spec.schedulerName",
    "spec.serviceAccountName",
    "spec.hostNetwork",
    "status.phase",
    "status.podIP",
    "status.podIPs",
    "status.nominatedNodeName",
)
_EVENT_FIELDS = (
    "involvedObject.kind",
    "involvedObject.namespace",
    "involvedObject.name",
    "involvedObject.uid",
    "involvedObject.apiVersion",
    "involvedObject.resourceVersion",
    "involvedObject.fieldPath",
    "reason",
    "reportingComponent",
    "source",
    "type",
)

BUILTIN_TYPES: tuple[ResourceType, ...] = (
    _rt(
        "",
        "v1",
        "Namespace",
        "namespaces",
        False,
        short_names=("ns",),
        subresources=frozenset({"status", "finalize"}),
        verbs=tuple(v for v in ALL_VERBS if v != "deletecollection"),
        field_labels=("status.phase",),
    ),
    _rt(
        "",
        "v1",
        "Node",
        "nodes",
        False,
        short_names=("no",),
        subresources=_STATUS,
        field_labels=("spec.unschedulable",),
    ),
    _rt(
        "",
        "v1",
        "Pod",
        "pods",
        short_names=("po",),
        categories=("all",),
        subresources=frozenset({"status", "binding"}),
        field_labels=_POD_FIELDS,
        has_generation=True,
        reset_status_on_create=True,
    ),
    _rt(
        "",
        "v1",
        "Service",
        "services",
        short_names=("svc",),
        categories=("all",),
        subresources=_STATUS,
        reset_status_on_create=True,
    ),
    _rt("", "v1", "Endpoints", "endpoints", short_names=("ep",), list_kind="EndpointsList"),
    _rt("", "v1", "ConfigMap", "configmaps", short_names=("cm",)),
    _rt("", "v1", "Secret", "secrets", field_labels=("type",)),
    _rt("", "v1", "ServiceAccount", "serviceaccounts", short_names=("sa",)),
    _rt("", "v1", "Event", "events", short_names=("ev",), field_labels=_EVENT_FIELDS),
    _workload("Deployment", "deployments", "deploy"),
    _workload("StatefulSet", "statefulsets", "sts"),
    _workload("ReplicaSet", "replicasets", "rs", field_labels=("status.replicas",)),
    _rt("apps", "v1", "ControllerRevision", "controllerrevisions"),
    # No controller runs DaemonSet pods, so a DaemonSet's status keeps its zero counters.
    _spec_status("apps", "DaemonSet", "daemonsets", "ds", categories=("all",)),
    _spec_status("policy", "PodDisruptionBudget", "poddisruptionbudgets", "pdb"),
    _rbac("ClusterRole", "clusterroles", namespaced=False),
    _rbac("ClusterRoleBinding", "clusterrolebindings", namespaced=False),
    _rbac("Role", "roles", namespaced=True),
    _rbac("RoleBinding", "rolebindings", namespaced=True),
    _rt("scheduling.k8s.io", "v1", "PriorityClass", "priorityclasses", False, short_names=("pc",)),
    _rt("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices"),
    _rt("events.k8s.io", "v1", "Event", "events", short_names=("ev",)),
    _rt("coordination.k8s.io", "v1", "Lease", "leases"),
    _rt(
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        False,
        short_names=("crd", "crds"),
        categories=("api-extensions",),
        subresources=_STATUS,
        has_generation=True,
        reset_status_on_create=True,
    ),
)

NAMESPACES = BUILTIN_TYPES[0]
PODS = BUILTIN_TYPES[2]
CRDS = BUILTIN_TYPES[-1]
PRIORITY_CLASSES = next(t for t in BUILTIN_TYPES if t.key == ("scheduling.k8s.io", "priorityclasses"))

# The classes kube-apiserver creates at start (`scheduling/bootstrap-system-priority-classes`):
# name -> (value, description). Manifests use them (`priorityClassName: system-node-critical`).
SYSTEM_PRIORITY_CLASSES: dict[str, tuple[int, str]] = {
    "system-node-critical": (
        2_000_001_000,
        "Used for system critical pods that must not be moved from their current node.",
    ),
    "system-cluster-critical": (
        2_000_000_000,
        "Used for system critical pods that must run in the cluster, but can be moved to another node "
        "if necessary.",
    ),
}


def subresource_verbs(sub: str) -> tuple[str, ...]:
    """The verbs a subresource serves (status and scale: get, patch, update)."""
    return _SUBRESOURCE_VERBS.get(sub, SUBRESOURCE_VERBS)


def crd_types(crd: dict[str, Any], schema_factory: Any = None) -> list[ResourceType]:
    """The ResourceTypes a CustomResourceDefinition serves, one per served version.

    `schema_factory(openapi_v3_schema)` builds the version's structural schema (validation.CrdSchema).
    """
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    group = spec.get("group", "")
    out = []
    for ver in spec.get("versions") or []:
        if not ver.get("served", True):
            continue
        subs = ver.get("subresources") or {}
        schema_doc = (ver.get("schema") or {}).get("openAPIV3Schema")
        scale = subs.get("scale")
        out.append(
            ResourceType(
                group=group,
                version=ver["name"],
                kind=names.get("kind", ""),
                plural=names.get("plural", ""),
                singular=names.get("singular") or names.get("kind", "").lower(),
                namespaced=spec.get("scope", "Namespaced") == "Namespaced",
                short_names=tuple(names.get("shortNames") or ()),
                categories=tuple(names.get("categories") or ()),
                subresources=frozenset(k for k in ("status", "scale") if k in subs),
                list_kind=names.get("listKind") or f"{names.get('kind', '')}List",
                printer_columns=tuple(ver.get("additionalPrinterColumns") or ()) or None,
                field_labels=tuple(f["jsonPath"].lstrip(".") for f in ver.get("selectableFields") or ()),
                has_generation=True,
                reset_status_on_create="status" in subs,
                custom=True,
                scale_paths=dict(scale) if scale else None,
                schema=schema_factory(schema_doc) if schema_factory and schema_doc else None,
            )
        )
    return out


def version_priority(version: str) -> tuple[int, int, int, str]:
    """Sort key giving kube-aware version order (v2 > v1 > v1beta2 > v1beta1 > v1alpha1 > other)."""
    m = re.fullmatch(r"v(\d+)(?:(alpha|beta)(\d+))?", version)
    if not m:
        return (3, 0, 0, version)
    major = int(m.group(1))
    stage = {None: 0, "beta": 1, "alpha": 2}[m.group(2)]
    minor = int(m.group(3) or 0)
    return (stage, -major, -minor, version)
