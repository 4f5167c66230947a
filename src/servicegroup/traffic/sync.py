"""Keeps the served view equal to filter(upstream) for one node, re-filtering what a change affects.

Upstream changes arrive as informer notifications. Each one updates this module's upstream maps
and re-filters the smallest set of Services whose view can change:

    slice / Endpoints of Service S       -> S (all its slices: the fallback is per Service)
    Service S (annotation changed)       -> S
    this node's labels                   -> every Service with a topology policy
    another node N's labels              -> Services with a policy that have endpoints on N

The results go into the `ResourceCache`s, which emit an event only when the served object
really changed, so re-filtering that changes nothing is invisible to clients.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from prometheus_client import Gauge

from servicegroup.kube.objects import labels_of
from servicegroup.kube.resources import ENDPOINTS, ENDPOINTSLICES, NAMESPACES, NODES, SERVICES, Resource
from servicegroup.kube.store import object_key
from servicegroup.traffic.filters import (
    endpoint_count,
    endpoint_nodes,
    filter_endpoints,
    filter_slices,
    slice_service_key,
)
from servicegroup.traffic.view import NodeView, Topology, topology_of
from servicegroup.traffic.watchcache import ResourceCache, ResourceVersions

log = logging.getLogger(__name__)

Obj = dict[str, Any]

# What kube-proxy and CoreDNS list and watch; everything the proxy serves, read-only.
SERVED: Final[tuple[Resource, ...]] = (SERVICES, ENDPOINTS, ENDPOINTSLICES, NODES, NAMESPACES)

FILTERED_ENDPOINTS = Gauge(
    "servicegroup_proxy_filtered_endpoints",
    "Endpoints of topology-scoped Services hidden from this node now (outside its NodeUnit).",
    ["resource"],
)


class HiddenEndpoints:
    """Endpoints the filter hides, per Service and in total per resource: the total is what
    `servicegroup_proxy_filtered_endpoints` exports, kept by difference so that re-filtering one
    Service costs nothing for the others."""

    def __init__(self) -> None:
        self._by_service: dict[tuple[str, str | None], int] = {}
        self._totals: dict[str, int] = {}
        self.clear()

    def clear(self) -> None:
        """Forget everything (before a full resync recounts)."""
        self._by_service.clear()
        for res in (ENDPOINTS, ENDPOINTSLICES):
            self._set_total(res.plural, 0)

    def record(
        self,
        res: Resource,
        service_key: str | None,
        upstream: Sequence[Obj],
        served: Sequence[Obj],
        topology: Topology | None,
    ) -> None:
        """Note one Service's objects before and after filtering (a Service without a topology
        policy hides nothing, so nothing is counted for it)."""
        hidden = 0
        if topology is not None:
            hidden = sum(map(endpoint_count, upstream)) - sum(map(endpoint_count, served))
        before = self._by_service.pop((res.plural, service_key), 0)
        if hidden:
            self._by_service[(res.plural, service_key)] = hidden
        if hidden != before:
            self._set_total(res.plural, self.total(res) + hidden - before)

    def total(self, res: Resource) -> int:
        """Endpoints of this resource hidden from the node now."""
        return self._totals.get(res.plural, 0)

    def _set_total(self, resource: str, total: int) -> None:
        self._totals[resource] = total
        FILTERED_ENDPOINTS.labels(resource).set(total)


class ServedView:
    """One `ResourceCache` per served resource, all on one resourceVersion counter."""

    def __init__(self, rvs: ResourceVersions, history_limit: int = 10_000) -> None:
        self.rvs = rvs
        self.caches = {
            res.plural: ResourceCache(res.plural, res.kind, res.api_version, rvs, history_limit)
            for res in SERVED
        }

    def cache(self, res: Resource) -> ResourceCache:
        """The cache of one served resource."""
        return self.caches[res.plural]


class TopologySync:
    """The upstream state of one node's proxy and the re-filtering rules (no I/O)."""

    def __init__(self, node: str, view: ServedView) -> None:
        self.node = node
        self.served = view
        self._labels: dict[str, Mapping[str, str]] = {}
        self._view = NodeView(node, self._labels)
        self._topologies: dict[str, Topology] = {}  # only Services that have a policy
        self._slices: dict[str | None, dict[str, Obj]] = {}  # service key -> slice key -> slice
        self._endpoints: dict[str, Obj] = {}
        self._nodes_of: dict[str, set[str]] = {}  # service key -> nodes its endpoints run on
        self._services_on: dict[str, set[str]] = {}  # node -> service keys
        self.hidden = HiddenEndpoints()

    # -- full resync (first sync, or nothing is known yet) ----------------------------------------

    def resync(self, upstream: Mapping[str, Iterable[Obj]]) -> None:
        """Rebuild from complete upstream lists (keyed by resource plural) and serve the result."""
        self._labels.clear()
        self._topologies.clear()
        self._slices.clear()
        self._endpoints.clear()
        self._nodes_of.clear()
        self._services_on.clear()
        self.hidden.clear()
        services = {object_key(s): s for s in upstream.get(SERVICES.plural, ())}
        nodes = {object_key(n): n for n in upstream.get(NODES.plural, ())}
        for name, node in nodes.items():
            self._labels[name] = labels_of(node)
        self._view.labels_changed()
        for key, service in services.items():
            self._set_topology(key, service)
        for eps in upstream.get(ENDPOINTS.plural, ()):
            self._endpoints[object_key(eps)] = eps
        for endpoint_slice in upstream.get(ENDPOINTSLICES.plural, ()):
            self._slices.setdefault(slice_service_key(endpoint_slice), {})[object_key(endpoint_slice)] = (
                endpoint_slice
            )
        for service_key in set(self._slices) | set(self._endpoints):
            if service_key is not None:
                self._index_nodes(service_key)
        self.served.cache(SERVICES).replace(services)
        self.served.cache(NODES).replace(nodes)
        self.served.cache(NAMESPACES).replace({object_key(n): n for n in upstream.get(NAMESPACES.plural, ())})
        self.served.cache(ENDPOINTS).replace(
            {key: self._filtered_endpoints(key, eps) for key, eps in self._endpoints.items()}
        )
        filtered: dict[str, Obj] = {}
        for service_key, group in self._slices.items():
            filtered.update(self._filtered_slices(service_key, group))
        self.served.cache(ENDPOINTSLICES).replace(filtered)

    # -- incremental changes ----------------------------------------------------------------------

    def changed(self, res: Resource, old: Obj | None, new: Obj | None) -> None:
        """One upstream add (old None), update, or delete (new None)."""
        if res == ENDPOINTSLICES:
            self._slice_changed(old, new)
        elif res == ENDPOINTS:
            self._endpoints_changed(old, new)
        elif res == SERVICES:
            self._service_changed(old, new)
        elif res == NODES:
            self._node_changed(old, new)
        else:
            self._passthrough(res, old, new)

    def _passthrough(self, res: Resource, old: Obj | None, new: Obj | None) -> None:
        cache = self.served.cache(res)
        if new is None:
            cache.delete(object_key(old or {}))
        else:
            cache.put(object_key(new), new)

    def _slice_changed(self, old: Obj | None, new: Obj | None) -> None:
        key = object_key(new or old or {})
        old_service = slice_service_key(old) if old is not None else None
        new_service = slice_service_key(new) if new is not None else None
        if old is not None and old_service in self._slices:
            self._slices[old_service].pop(key, None)
            if not self._slices[old_service]:
                del self._slices[old_service]
        if new is None:
            self.served.cache(ENDPOINTSLICES).delete(key)
        else:
            self._slices.setdefault(new_service, {})[key] = new
        moved = old is None or new is None or endpoint_nodes(old) != endpoint_nodes(new)
        for service_key in {old_service, new_service}:
            self._refilter(service_key, endpoints=False, index=moved or old_service != new_service)

    def _endpoints_changed(self, old: Obj | None, new: Obj | None) -> None:
        key = object_key(new or old or {})
        if new is None:
            self._endpoints.pop(key, None)
            self.served.cache(ENDPOINTS).delete(key)
            self.hidden.record(ENDPOINTS, key, (), (), None)
        else:
            self._endpoints[key] = new
        moved = old is None or new is None or endpoint_nodes(old) != endpoint_nodes(new)
        self._refilter(key, slices=False, index=moved)

    def _service_changed(self, old: Obj | None, new: Obj | None) -> None:
        key = object_key(new or old or {})
        before = self._topologies.get(key)
        self._passthrough(SERVICES, old, new)
        if new is None:
            self._topologies.pop(key, None)
        else:
            self._set_topology(key, new)
        if self._topologies.get(key) != before:
            self._refilter(key)

    def _node_changed(self, old: Obj | None, new: Obj | None) -> None:
        name = object_key(new or old or {})
        self._passthrough(NODES, old, new)
        labels = labels_of(new) if new is not None else None
        if labels == self._labels.get(name):
            return
        if labels is None:
            self._labels.pop(name, None)
        else:
            self._labels[name] = labels
        self._view.labels_changed()
        affected = self._topologies.keys() if name == self.node else self._services_on.get(name, set())
        for service_key in [key for key in affected if key in self._topologies]:
            self._refilter(service_key)

    # -- helpers ----------------------------------------------------------------------------------

    def _set_topology(self, key: str, service: Obj) -> None:
        topology = topology_of(service)
        if topology is None:
            self._topologies.pop(key, None)
            return
        if topology.error and self._topologies.get(key) != topology:
            log.warning("service %s: %s; serving no endpoints for it (fail closed)", key, topology.error)
        self._topologies[key] = topology

    def _refilter(
        self, service_key: str | None, *, slices: bool = True, endpoints: bool = True, index: bool = True
    ) -> None:
        """Serve the current filtered form of what belongs to one Service (its slices and/or
        its Endpoints) and, unless told its endpoints did not move, re-index their nodes."""
        if slices:
            cache = self.served.cache(ENDPOINTSLICES)
            for key, obj in self._filtered_slices(service_key, self._slices.get(service_key, {})).items():
                cache.put(key, obj)
        if service_key is None:
            return
        eps = self._endpoints.get(service_key)
        if endpoints and eps is not None:
            self.served.cache(ENDPOINTS).put(service_key, self._filtered_endpoints(service_key, eps))
        if index:
            self._index_nodes(service_key)

    def _filtered_slices(self, service_key: str | None, group: Mapping[str, Obj]) -> dict[str, Obj]:
        """One Service's slices as served, counting what they hide."""
        keys = sorted(group)
        topology = self._topologies.get(service_key) if service_key is not None else None
        upstream = [group[k] for k in keys]
        served = filter_slices(upstream, topology, self._view)
        self.hidden.record(ENDPOINTSLICES, service_key, upstream, served, topology)
        return dict(zip(keys, served, strict=True))

    def _filtered_endpoints(self, service_key: str, eps: Obj) -> Obj:
        """One Service's Endpoints as served, counting what it hides."""
        topology = self._topologies.get(service_key)
        served = filter_endpoints(eps, topology, self._view)
        self.hidden.record(ENDPOINTS, service_key, [eps], [served], topology)
        return served

    def _index_nodes(self, service_key: str) -> None:
        """Remember which nodes a topology Service's endpoints are on, so that relabelling another
        node re-filters only the Services it can affect."""
        nodes: set[str] = set()
        if service_key in self._topologies:  # only their views depend on other nodes' labels
            for obj in self._slices.get(service_key, {}).values():
                nodes |= endpoint_nodes(obj)
            if service_key in self._endpoints:
                nodes |= endpoint_nodes(self._endpoints[service_key])
        for node in self._nodes_of.get(service_key, set()) - nodes:
            self._services_on[node].discard(service_key)
            if not self._services_on[node]:
                del self._services_on[node]
        for node in nodes:
            self._services_on.setdefault(node, set()).add(service_key)
        if nodes:
            self._nodes_of[service_key] = nodes
        else:
            self._nodes_of.pop(service_key, None)
