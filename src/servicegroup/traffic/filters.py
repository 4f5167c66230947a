"""The filter rule, object in, object out (OpenYurt's habit: filters know nothing about HTTP).

For a Service with a topology policy, an endpoint survives only when its node is in this node's
unit (`NodeView.unit`: nodes sharing a value for one of the keys); endpoints without nodeName
are dropped. Services without a policy,
and slices/Endpoints whose Service is unknown, pass untouched (the same object is returned, so the
caller can tell nothing changed without comparing). Inputs are never mutated.

The unit of filtering is one Service: all its EndpointSlices are filtered together, because the
fallback policy ("anywhere" when the local unit has no ready endpoint) is a property of the
Service, not of one slice.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from servicegroup.kube.objects import labels_of, meta
from servicegroup.traffic.view import Fallback, NodeView, Topology

Obj = dict[str, Any]

# The EndpointSlice label naming its Service (set by the EndpointSlice controller and mirroring).
SERVICE_NAME_LABEL: Final = "kubernetes.io/service-name"


def slice_service_key(endpoint_slice: Mapping[str, Any]) -> str | None:
    """`ns/name` of the Service a slice belongs to, from its label (never from the slice name:
    SuperEdge strips the last `-` segment of the name, which breaks for generated names)."""
    service = labels_of(endpoint_slice).get(SERVICE_NAME_LABEL)
    if not service:
        return None
    return f"{meta(endpoint_slice).get('namespace') or ''}/{service}"


def filter_slices(slices: Sequence[Obj], topology: Topology | None, view: NodeView) -> list[Obj]:
    """The slices of one Service as this node may see them (same order)."""
    if topology is None:
        return list(slices)
    unit = view.unit(topology.keys)
    kept = [[ep for ep in s.get("endpoints") or [] if ep.get("nodeName") in unit] for s in slices]
    if topology.fallback is Fallback.ANYWHERE and not any(
        _slice_endpoint_ready(ep) for eps in kept for ep in eps
    ):
        return list(slices)
    return [{**s, "endpoints": eps} for s, eps in zip(slices, kept, strict=True)]


def _slice_endpoint_ready(endpoint: Mapping[str, Any]) -> bool:
    """`conditions.ready`; the API says a missing value means ready."""
    return (endpoint.get("conditions") or {}).get("ready") is not False


def filter_endpoints(endpoints: Obj, topology: Topology | None, view: NodeView) -> Obj:
    """A core/v1 Endpoints as this node may see it: `addresses` and `notReadyAddresses` of every
    subset filtered by `nodeName`; subsets are kept even when emptied (as SuperEdge does)."""
    if topology is None:
        return endpoints
    if not endpoints.get("subsets"):
        return endpoints
    unit = view.unit(topology.keys)
    subsets = [_filter_subset(subset, unit) for subset in endpoints["subsets"]]
    if topology.fallback is Fallback.ANYWHERE and not any(s.get("addresses") for s in subsets):
        return endpoints
    return {**endpoints, "subsets": subsets}


def _filter_subset(subset: Obj, unit: frozenset[str]) -> Obj:
    result = {k: v for k, v in subset.items() if k not in ("addresses", "notReadyAddresses")}
    for field in ("addresses", "notReadyAddresses"):
        kept = [a for a in subset.get(field) or [] if a.get("nodeName") in unit]
        if kept:
            result[field] = kept
    return result


def endpoint_nodes(obj: Mapping[str, Any]) -> set[str]:
    """Node names an EndpointSlice or Endpoints refers to (to find what a node relabel affects)."""
    if "addressType" in obj:  # required on every EndpointSlice, absent from Endpoints
        return {ep["nodeName"] for ep in obj.get("endpoints") or [] if ep.get("nodeName")}
    return {
        address["nodeName"]
        for subset in obj.get("subsets") or []
        for field in ("addresses", "notReadyAddresses")
        for address in subset.get(field) or []
        if address.get("nodeName")
    }


def endpoint_count(obj: Mapping[str, Any]) -> int:
    """How many endpoints an EndpointSlice or Endpoints holds (ready or not), to count what the
    filter hides."""
    if "addressType" in obj:
        return len(obj.get("endpoints") or [])
    return sum(
        len(subset.get(field) or [])
        for subset in obj.get("subsets") or []
        for field in ("addresses", "notReadyAddresses")
    )
