"""What one node is allowed to see: a Service's topology policy and "same unit" between two nodes.

Pure: no I/O, no clock. The proxy keeps one `NodeView` (this node's name plus every node's labels)
and asks `same_unit(topology, endpoint_node)` for each endpoint of a Service that has a policy.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import orjson

from servicegroup.api.labels import TOPOLOGY_FALLBACK, TOPOLOGY_KEYS
from servicegroup.kube.objects import meta

# Our addition (not in SuperEdge): what to do when the local unit has no ready endpoint.
# Kubernetes' well-known node label; as a topology key it means "this node only".
HOSTNAME_LABEL: Final = "kubernetes.io/hostname"

Labels = Mapping[str, str]


class Fallback(enum.Enum):
    """Per-Service fallback policy (annotation `servicegroup.io/topology-fallback`)."""

    NONE = "none"  # strict per-unit: no local endpoint means no endpoint (SuperEdge's behaviour)
    ANYWHERE = "anywhere"  # all endpoints, but only while the local unit has no ready endpoint


@dataclass(frozen=True)
class Topology:
    """A Service's topology policy; `error` is set when the annotation is unusable (fail closed)."""

    keys: tuple[str, ...]
    fallback: Fallback = Fallback.NONE
    error: str | None = None


def topology_of(service: Mapping[str, Any]) -> Topology | None:
    """The Service's policy, or None when it has none (its endpoints pass untouched).

    As in SuperEdge, a missing annotation or an empty list means "no policy". Unlike SuperEdge,
    an annotation that is not a JSON list of strings is *not* ignored: a Service that asked for
    topology must never leak other units' endpoints because of a typo, so it gets a policy with
    no keys, which keeps no endpoint (only the fallback policy can widen it).
    """
    annotations = meta(service).get("annotations") or {}
    raw = annotations.get(TOPOLOGY_KEYS)
    if raw is None:
        return None
    fallback = _fallback_of(annotations.get(TOPOLOGY_FALLBACK))
    try:
        keys = orjson.loads(raw)
    except orjson.JSONDecodeError:
        keys = None
    if not isinstance(keys, list) or not all(isinstance(key, str) for key in keys):
        return Topology(
            (), fallback, error=f"annotation {TOPOLOGY_KEYS} is not a JSON list of strings: {raw!r}"
        )
    if not keys:
        return None
    return Topology(tuple(keys), fallback)


def _fallback_of(value: str | None) -> Fallback:
    """Unknown values mean strict: widening traffic must be asked for explicitly."""
    try:
        return Fallback(value) if value is not None else Fallback.NONE
    except ValueError:
        return Fallback.NONE


class NodeView:
    """This node's name and the labels of every node the proxy knows (a shared, live mapping).

    The set of nodes in this node's unit is memoised per key tuple, so filtering costs one set
    lookup per endpoint; whoever changes `nodes` calls `labels_changed()`.
    """

    def __init__(self, node: str, nodes: Mapping[str, Labels]) -> None:
        self.node = node
        self.nodes = nodes
        self._units: dict[tuple[str, ...], frozenset[str]] = {}

    def labels_changed(self) -> None:
        """Forget the memoised units (a node was added, removed or relabelled)."""
        self._units.clear()

    def same_unit(self, topology: Topology, other: str | None) -> bool:
        """Is node `other` in this node's unit for one of the keys (equal value on both)?

        False when `other` is missing (endpoint without nodeName) or unknown, or when this node
        is unknown: a topology Service must not leak while the proxy cannot tell.
        """
        return other is not None and other in self.unit(topology.keys)

    def unit(self, keys: tuple[str, ...]) -> frozenset[str]:
        """Every known node sharing a value with this node for one of `keys` (this node included)."""
        members = self._units.get(keys)
        if members is None:
            members = self._units[keys] = frozenset(name for name in self.nodes if self._shares(keys, name))
        return members

    def _shares(self, keys: tuple[str, ...], other: str) -> bool:
        local = self.nodes.get(self.node)
        if local is None:
            return False
        remote = self.nodes[other]
        for key in keys:
            mine = _label(local, key, self.node)
            if mine is not None and mine == _label(remote, key, other):
                return True
        return False


def _label(labels: Labels, key: str, node: str) -> str | None:
    """A node's value for a key; `kubernetes.io/hostname` defaults to the node name."""
    value = labels.get(key)
    if value is None and key == HOSTNAME_LABEL:
        return node
    return value
