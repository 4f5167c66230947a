"""Who belongs to what: nodes to NodeUnits, NodeUnits to NodeGroups, and who wins a conflict. Pure.

A NodeUnit selects `spec.nodes` (names) plus the nodes matching `spec.selector`; a selector whose
`matchLabels` and `matchExpressions` are both empty selects nothing (SuperEdge). A NodeGroup holds
`spec.nodeUnits` plus the units matching `spec.selector` (there an empty selector `{}` means every
unit, as in SuperEdge) plus, with `autoFindNodeKeys`, the units it auto-created.

A node may be in any number of units, and so in several groups. Two units *of one group* holding
the same node would give the node two values for the group's label: the alphabetically first unit
wins, always, so the label never flaps and the losers can be told (`Conflict`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from servicegroup.api.labels import NODEGROUP_AUTO_KEYS_HASH, NODEGROUP_MEMBER_VALUE, NODEUNIT_MEMBER_VALUE
from servicegroup.kube.objects import labels_of, match_label_selector, meta
from servicegroup.site.autofind import keys_hash

Obj = dict[str, Any]


def name_of(obj: Mapping[str, Any]) -> str:
    """metadata.name."""
    return str(meta(obj).get("name") or "")


def is_deleting(obj: Mapping[str, Any]) -> bool:
    """The object has a deletionTimestamp: it contributes nothing any more."""
    return bool(meta(obj).get("deletionTimestamp"))


def units_from_labels(labels: Mapping[str, str]) -> list[str]:
    """The NodeUnits a node is labelled a member of (`<nu>: nodeunits.superedge.io`)."""
    return sorted(key for key, value in labels.items() if value == NODEUNIT_MEMBER_VALUE)


def groups_from_labels(labels: Mapping[str, str]) -> list[str]:
    """The NodeGroups a NodeUnit is labelled a member of (`<ng>: nodegroups.superedge.io`)."""
    return sorted(key for key, value in labels.items() if value == NODEGROUP_MEMBER_VALUE)


# -- NodeUnit -> nodes ----------------------------------------------------------------------------


@dataclass(frozen=True)
class UnitRule:
    """A NodeUnit's membership rule, validated once so matching a node is cheap and cannot fail."""

    name: str
    nodes: frozenset[str]
    selector: Mapping[str, Any] | None
    error: str | None = None


def unit_rule(unit: Mapping[str, Any]) -> UnitRule:
    """Compile a NodeUnit's `spec.nodes` and `spec.selector`; a bad selector selects nothing + error."""
    spec = unit.get("spec") or {}
    nodes = frozenset(str(n) for n in spec.get("nodes") or [])
    raw = spec.get("selector") or {}
    selector = {key: raw[key] for key in ("matchLabels", "matchExpressions") if raw.get(key)}
    error = _selector_error(selector)
    if error or not selector:
        return UnitRule(name_of(unit), nodes, None, error)
    return UnitRule(name_of(unit), nodes, selector)


def _selector_error(selector: Mapping[str, Any]) -> str | None:
    """Kubernetes' LabelSelector validation: operators and their value counts."""
    for expr in selector.get("matchExpressions") or []:
        key, operator, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if not key:
            return "spec.selector.matchExpressions: key is required"
        if operator in ("In", "NotIn") and not values:
            return f"spec.selector.matchExpressions[{key}]: operator {operator} needs values"
        if operator in ("Exists", "DoesNotExist") and values:
            return f"spec.selector.matchExpressions[{key}]: operator {operator} takes no values"
        if operator not in ("In", "NotIn", "Exists", "DoesNotExist"):
            return f"spec.selector.matchExpressions[{key}]: unknown operator {operator!r}"
    return None


def rule_selects(rule: UnitRule, node_name: str, labels: Mapping[str, str]) -> bool:
    """Is the node in the unit?"""
    if node_name in rule.nodes:
        return True
    return rule.selector is not None and match_label_selector(rule.selector, labels)


class UnitIndex:
    """Every unit's rule, indexed so a node is only tested against units that could select it.

    With 500 units and 5,000 nodes, testing every pair costs 2.5 M selector matches per pass; the
    index looks a node up by name and by each of its labels, and tests only the (rare) units whose
    selector has no `matchLabels` against every node.
    """

    def __init__(self, rules: Iterable[UnitRule]) -> None:
        self.rules = {rule.name: rule for rule in rules}
        self._by_node: dict[str, list[UnitRule]] = {}
        self._by_label: dict[tuple[str, str], list[UnitRule]] = {}
        self._scan: list[UnitRule] = []
        for rule in self.rules.values():
            for node in rule.nodes:
                self._by_node.setdefault(node, []).append(rule)
            if rule.selector is None:
                continue
            match_labels = rule.selector.get("matchLabels") or {}
            if match_labels:
                first = min(match_labels.items())
                self._by_label.setdefault(first, []).append(rule)
            else:
                self._scan.append(rule)

    def units_of(self, node_name: str, labels: Mapping[str, str]) -> list[str]:
        """Sorted names of the units the node belongs to."""
        candidates = list(self._by_node.get(node_name, ()))
        for item in labels.items():
            candidates.extend(self._by_label.get(item, ()))
        candidates.extend(self._scan)
        return sorted({rule.name for rule in candidates if rule_selects(rule, node_name, labels)})


def unit_members(rule: UnitRule, nodes: Iterable[Mapping[str, Any]]) -> list[str]:
    """Sorted names of the existing nodes in the unit (names in `spec.nodes` that don't exist are skipped)."""
    return sorted(name_of(node) for node in nodes if rule_selects(rule, name_of(node), labels_of(node)))


# -- NodeGroup -> NodeUnits -----------------------------------------------------------------------


def group_units(group: Mapping[str, Any], units: Iterable[Mapping[str, Any]]) -> list[str]:
    """Sorted names of the live (not deleting) units in the group."""
    spec = group.get("spec") or {}
    group_name = name_of(group)
    listed = set(spec.get("nodeUnits") or [])
    selector = spec.get("selector")
    auto_keys = spec.get("autoFindNodeKeys") or []
    auto_hash = keys_hash(auto_keys) if auto_keys else None
    members = []
    for unit in units:
        if is_deleting(unit):
            continue
        labels = labels_of(unit)
        if (
            name_of(unit) in listed
            or (selector is not None and _match_unit_selector(selector, labels))
            or (
                auto_hash is not None
                and labels.get(NODEGROUP_AUTO_KEYS_HASH) == auto_hash
                and labels.get(group_name) == NODEGROUP_MEMBER_VALUE
            )
        ):
            members.append(name_of(unit))
    return sorted(members)


def _match_unit_selector(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """A NodeGroup's unit selector; an invalid one selects nothing (the group reports it)."""
    try:
        return match_label_selector(
            {key: selector[key] for key in ("matchLabels", "matchExpressions") if key in selector}, labels
        )
    except ValueError:
        return False


def group_selector_error(group: Mapping[str, Any]) -> str | None:
    """Why a NodeGroup's `spec.selector` is invalid, or None."""
    selector = (group.get("spec") or {}).get("selector")
    return None if selector is None else _selector_error(selector)


def groups_by_unit(groups: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    """Invert `{group: [units]}` into `{unit: sorted [groups]}`."""
    result: dict[str, list[str]] = {}
    for group, units in sorted(groups.items()):
        for unit in units:
            result.setdefault(unit, []).append(group)
    return result


# -- conflicts ------------------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class Conflict:
    """Several units of `group` hold `node`; `winner` (the alphabetically first) names it."""

    group: str
    node: str
    winner: str
    losers: tuple[str, ...]


def group_assignment(
    node: str, units: Sequence[str], unit_groups: Mapping[str, Sequence[str]]
) -> tuple[dict[str, str], list[Conflict]]:
    """For a node in `units`: `{group: unit}` (the group label's value) and the conflicts found."""
    claims: dict[str, list[str]] = {}
    for unit in sorted(units):
        for group in unit_groups.get(unit, ()):
            claims.setdefault(group, []).append(unit)
    assignment = {group: claimants[0] for group, claimants in claims.items()}
    conflicts = [
        Conflict(group, node, claimants[0], tuple(claimants[1:]))
        for group, claimants in sorted(claims.items())
        if len(claimants) > 1
    ]
    return assignment, conflicts


def group_conflicts(group: str, unit_nodes: Mapping[str, Iterable[str]]) -> list[Conflict]:
    """Every node held by more than one unit of `group` (from `{unit: its nodes}`)."""
    claims: dict[str, list[str]] = {}
    for unit in sorted(unit_nodes):
        for node in unit_nodes[unit]:
            claims.setdefault(node, []).append(unit)
    return [
        Conflict(group, node, units[0], tuple(units[1:]))
        for node, units in sorted(claims.items())
        if len(units) > 1
    ]
