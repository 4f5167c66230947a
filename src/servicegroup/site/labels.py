"""A node's desired labels, annotations, taints and cordon, from ALL its units at once; the patch. Pure.

SuperEdge lets every NodeUnit write its `setNode` items onto its nodes on its own, so two units
touching one node overwrite each other and removal can take away what another unit still wants.
Here the whole desired state of a node is computed from every unit it belongs to, with fixed
precedence, and the controller writes only the difference:

1. membership label `<nu>: nodeunits.superedge.io` for each unit (§5.1);
2. group label `<ng>: <nu>` for each NodeGroup the node is in through a unit (first unit wins);
3. `setNode.labels` / `annotations` / `taints` of the units in name order: for one key (or taint
   key+effect) the alphabetically first unit wins; a taint is never duplicated;
4. `unschedulable: true` on any unit cordons the node.

Only what we did is ever undone. The node annotation `servicegroup.io/site-owned` records the label
keys, annotation keys and taints we *set* (a key that already had the wanted value is not ours) and
whether we cordoned the node. A key we own that is no longer wanted is removed; anything else on
the node is never touched. The record is written in the same patch as the change it describes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import orjson

from servicegroup.api.labels import NODEUNIT_MEMBER_VALUE, SITE_OWNED_ANNOTATION
from servicegroup.kube.objects import labels_of, meta
from servicegroup.site.membership import name_of

Obj = dict[str, Any]
TaintSlot = tuple[str, str]

OWNED_ANNOTATION: Final = SITE_OWNED_ANNOTATION

_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def key_error(key: str) -> str | None:
    """Why `key` is not a valid label/annotation key (`[prefix/]name`), or None."""
    prefix, _, name = key.rpartition("/")
    if prefix and (len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix)):
        return f"key {key!r}: prefix must be a DNS subdomain"
    if len(name) > 63 or not _NAME.match(name):
        return f"key {key!r}: name must be 1-63 alphanumerics, '-', '_' or '.', alphanumeric at both ends"
    return None


def value_error(value: str) -> str | None:
    """Why `value` is not a valid label value, or None."""
    if value and (len(value) > 63 or not _NAME.match(value)):
        return f"value {value!r}: must be empty or 1-63 alphanumerics, '-', '_' or '.', alphanumeric ends"
    return None


def name_error(name: str) -> str | None:
    """Why `name` cannot name a NodeUnit that is also a node label key, or None.

    SuperEdge does not check auto-found names, and its create then fails forever; we report.
    """
    if len(name) > 63 or not _DNS_SUBDOMAIN.match(name):
        return f"NodeUnit name {name!r} is not a lower-case DNS name of at most 63 characters"
    return None


@dataclass(frozen=True)
class UnitEffect:
    """What one NodeUnit wants on each of its nodes, validated once: invalid items are dropped."""

    name: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    taints: Mapping[TaintSlot, Obj]
    unschedulable: bool
    errors: tuple[str, ...] = ()


def unit_effect(unit: Mapping[str, Any]) -> UnitEffect:
    """Read and validate a NodeUnit's `setNode` and `unschedulable`."""
    spec = unit.get("spec") or {}
    set_node = spec.get("setNode") or {}
    errors: list[str] = []
    name = name_of(unit)
    if err := key_error(name) or value_error(name):
        errors.append(f"NodeUnit name cannot be a node label: {err}")
    labels = {}
    for key, value in (set_node.get("labels") or {}).items():
        if err := key_error(key) or value_error(str(value)):
            errors.append(f"spec.setNode.labels: {err}")
        else:
            labels[key] = str(value)
    annotations = {}
    for key, value in (set_node.get("annotations") or {}).items():
        if err := key_error(key):
            errors.append(f"spec.setNode.annotations: {err}")
        else:
            annotations[key] = str(value)
    taints: dict[TaintSlot, Obj] = {}
    for taint in set_node.get("taints") or []:
        if err := key_error(str(taint.get("key", ""))) or value_error(str(taint.get("value", ""))):
            errors.append(f"spec.setNode.taints: {err}")
        else:
            taints.setdefault(_slot(taint), _clean_taint(taint))
    return UnitEffect(name, labels, annotations, taints, bool(spec.get("unschedulable")), tuple(errors))


def _slot(taint: Mapping[str, Any]) -> TaintSlot:
    """Kubernetes allows one taint per key+effect on a node."""
    return (str(taint.get("key", "")), str(taint.get("effect", "")))


def _clean_taint(taint: Mapping[str, Any]) -> Obj:
    result = {"key": str(taint["key"]), "effect": str(taint["effect"])}
    if taint.get("value"):
        result["value"] = str(taint["value"])
    return result


def _same_taint(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    return _slot(a) == _slot(b) and (a.get("value") or "") == (b.get("value") or "")


# -- desired state --------------------------------------------------------------------------------


@dataclass(frozen=True)
class NodeState:
    """Everything the site controller wants on one node."""

    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    taints: dict[TaintSlot, Obj] = field(default_factory=dict)
    unschedulable: bool = False


def desired_node_state(units: Iterable[UnitEffect], group_labels: Mapping[str, str]) -> NodeState:
    """The node's state from all its units (any order) and `{group: winning unit}`."""
    ordered = sorted(units, key=lambda u: u.name)
    state = NodeState(unschedulable=any(unit.unschedulable for unit in ordered))
    for unit in ordered:
        for key, value in unit.labels.items():
            state.labels.setdefault(key, value)
        for key, value in unit.annotations.items():
            state.annotations.setdefault(key, value)
        for slot, taint in unit.taints.items():
            state.taints.setdefault(slot, taint)
    state.labels.update({g: u for g, u in group_labels.items() if not key_error(g) and not value_error(u)})
    state.labels.update({u.name: NODEUNIT_MEMBER_VALUE for u in ordered if not key_error(u.name)})
    return state


# -- ownership record -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Owned:
    """What the site controller set on a node (so it may, and will, undo exactly that)."""

    labels: frozenset[str] = frozenset()
    annotations: frozenset[str] = frozenset()
    taints: frozenset[TaintSlot] = frozenset()
    cordoned: bool = False

    @classmethod
    def of(cls, node: Mapping[str, Any]) -> Owned:
        """Read the record; a missing or unreadable one owns nothing (the safe reading)."""
        text = (meta(node).get("annotations") or {}).get(OWNED_ANNOTATION)
        try:
            data = orjson.loads(text) if text else {}
            return cls(
                frozenset(data.get("labels", ())),
                frozenset(data.get("annotations", ())),
                frozenset((str(k), str(e)) for k, e in data.get("taints", ())),
                bool(data.get("cordoned", False)),
            )
        except (orjson.JSONDecodeError, TypeError, ValueError, AttributeError):
            return cls()

    def text(self) -> str | None:
        """Compact, sorted JSON for the annotation; None when nothing is owned."""
        data: dict[str, Any] = {}
        if self.labels:
            data["labels"] = sorted(self.labels)
        if self.annotations:
            data["annotations"] = sorted(self.annotations)
        if self.taints:
            data["taints"] = [list(slot) for slot in sorted(self.taints)]
        if self.cordoned:
            data["cordoned"] = True
        return orjson.dumps(data).decode() if data else None


# -- the patch ------------------------------------------------------------------------------------


def _plan_map(
    live: Mapping[str, str], desired: Mapping[str, str], owned: frozenset[str]
) -> tuple[dict[str, str | None], frozenset[str]]:
    """Merge-patch entries for one string map, and the keys we own afterwards."""
    patch: dict[str, str | None] = {}
    now_owned = set()
    for key, value in desired.items():
        if live.get(key) != value:
            patch[key] = value
            now_owned.add(key)
        elif key in owned:
            now_owned.add(key)
    for key in owned - desired.keys():
        if key in live:
            patch[key] = None
    return patch, frozenset(now_owned)


def _plan_taints(
    live: Sequence[Mapping[str, Any]], desired: Mapping[TaintSlot, Obj], owned: frozenset[TaintSlot]
) -> tuple[list[Obj], frozenset[TaintSlot]]:
    """The node's new taint list (others' taints kept in place) and the slots we own afterwards."""
    result: list[Obj] = []
    seen: set[TaintSlot] = set()
    now_owned: set[TaintSlot] = set()
    for taint in live:
        slot = _slot(taint)
        if slot in desired and slot not in seen:
            seen.add(slot)
            want = desired[slot]
            if _same_taint(taint, want):
                result.append(dict(taint))
                if slot in owned:
                    now_owned.add(slot)
            else:
                result.append(want)
                now_owned.add(slot)
        elif slot not in owned:
            result.append(dict(taint))
    for slot, taint in desired.items():
        if slot not in seen:
            result.append(taint)
            now_owned.add(slot)
    return result, frozenset(now_owned)


def _plan_cordon(live: bool, desired: bool, owned: bool) -> tuple[bool | None, bool]:
    """(new spec.unschedulable or None for no change, whether we own the cordon afterwards)."""
    if desired:
        return (None, owned) if live else (True, True)
    return (False, False) if owned and live else (None, False)


def node_patch(node: Mapping[str, Any], desired: NodeState) -> Obj | None:
    """JSON merge patch taking the node to `desired`, touching only what we own; None when converged.

    The taint list can only be replaced whole, so a patch that changes it carries the node's
    resourceVersion as a precondition: a concurrent writer makes it fail (409) and the retry
    recomputes from the newer node instead of clobbering it.
    """
    owned = Owned.of(node)
    node_meta = meta(node)
    live_annotations = {
        k: v for k, v in (node_meta.get("annotations") or {}).items() if k != OWNED_ANNOTATION
    }
    spec = node.get("spec") or {}
    live_taints = spec.get("taints") or []
    labels, own_labels = _plan_map(labels_of(node), desired.labels, owned.labels)
    annotations, own_annotations = _plan_map(live_annotations, desired.annotations, owned.annotations)
    taints, own_taints = _plan_taints(live_taints, desired.taints, owned.taints)
    cordon, own_cordon = _plan_cordon(bool(spec.get("unschedulable")), desired.unschedulable, owned.cordoned)
    record = Owned(own_labels, own_annotations, own_taints, own_cordon).text()
    if record != (node_meta.get("annotations") or {}).get(OWNED_ANNOTATION):
        annotations[OWNED_ANNOTATION] = record
    patch: Obj = {}
    if labels:
        patch.setdefault("metadata", {})["labels"] = labels
    if annotations:
        patch.setdefault("metadata", {})["annotations"] = annotations
    if taints != [dict(t) for t in live_taints]:
        patch.setdefault("spec", {})["taints"] = taints
        patch.setdefault("metadata", {})["resourceVersion"] = node_meta.get("resourceVersion")
    if cordon is not None:
        patch.setdefault("spec", {})["unschedulable"] = cordon
    return patch or None
