"""NodeUnit and NodeGroup status from the cache, and the status patch to write. Pure.

NodeUnit: `readyNodes` / `notReadyNodes` (sorted; omitted when empty, as SuperEdge's nil lists),
`readyRate = "ready/total"`, and conditions `Valid` (spec usable) and `Conflict` (some member
nodes get another unit's value for a NodeGroup label). NodeGroup: `nodeUnits`, `unitNumber`,
`workloadStatus` (SuperEdge never filled it) and the same two conditions.

Only the fields above are ours; `unitClusterStatus` and anything else is left to other writers,
so the write is a merge patch of our keys (absent ones as null), made only when something changed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from servicegroup.kube.conditions import FALSE, TRUE, get_condition, set_condition
from servicegroup.site.membership import Conflict, name_of

Obj = dict[str, Any]

VALID: Final = "Valid"
CONFLICT: Final = "Conflict"

UNIT_FIELDS: Final = ("readyRate", "readyNodes", "notReadyNodes", "conditions")
GROUP_FIELDS: Final = ("nodeUnits", "unitNumber", "workloadStatus", "conditions")


def node_ready(node: Mapping[str, Any]) -> bool:
    """The node's `Ready` condition is `True`."""
    condition = get_condition((node.get("status") or {}).get("conditions"), "Ready")
    return condition is not None and condition.get("status") == TRUE


def common_conditions(
    live: Mapping[str, Any], errors: Sequence[str], conflict_message: str | None, now: str
) -> list[Obj]:
    """`Valid` and `Conflict` conditions (lastTransitionTime kept while the status stays)."""
    generation = (live.get("metadata") or {}).get("generation")
    conditions = (live.get("status") or {}).get("conditions")
    if errors:
        conditions = set_condition(
            conditions, VALID, FALSE, "InvalidSpec", "; ".join(errors), generation, now
        )
    else:
        conditions = set_condition(conditions, VALID, TRUE, "Valid", "spec is valid", generation, now)
    if conflict_message:
        return set_condition(
            conditions, CONFLICT, TRUE, "NodeInSeveralUnits", conflict_message, generation, now
        )
    return set_condition(conditions, CONFLICT, FALSE, "NoConflict", "no conflicting units", generation, now)


def unit_status(nodes: Iterable[Mapping[str, Any]], conditions: list[Obj]) -> Obj:
    """The NodeUnit status fields we own, from its member nodes."""
    ready: list[str] = []
    not_ready: list[str] = []
    for node in nodes:
        (ready if node_ready(node) else not_ready).append(name_of(node))
    status: Obj = {"readyRate": f"{len(ready)}/{len(ready) + len(not_ready)}", "conditions": conditions}
    if ready:
        status["readyNodes"] = sorted(ready)
    if not_ready:
        status["notReadyNodes"] = sorted(not_ready)
    return status


def status_members(status_: Mapping[str, Any]) -> set[str]:
    """The nodes a NodeUnit status lists (ready or not)."""
    return {*(status_.get("readyNodes") or ()), *(status_.get("notReadyNodes") or ())}


def nodes_message(verb: str, unit: str, nodes: Sequence[str], limit: int = 20) -> str:
    """One Event per unit and status change, not per node: 5,000 joins must not be 5,000 Events."""
    if len(nodes) == 1:
        return f"node {nodes[0]} {verb} NodeUnit {unit}"
    shown = ", ".join(nodes[:limit]) + (f" and {len(nodes) - limit} more" if len(nodes) > limit else "")
    return f"{len(nodes)} nodes {verb} NodeUnit {unit}: {shown}"


def lost_message(unit: str, conflicts: Iterable[Conflict]) -> str | None:
    """Condition message for a unit that loses nodes to other units of a group, or None."""
    lost: dict[tuple[str, str], list[str]] = {}
    for conflict in conflicts:
        if unit in conflict.losers:
            lost.setdefault((conflict.group, conflict.winner), []).append(conflict.node)
    if not lost:
        return None
    parts = [
        f"NodeGroup {group}: nodes {', '.join(sorted(nodes))} are also in NodeUnit {winner}, which wins "
        f"(the alphabetically first unit gets the {group} label)"
        for (group, winner), nodes in sorted(lost.items())
    ]
    return "; ".join(parts)


def group_conflict_message(conflicts: Iterable[Conflict]) -> str | None:
    """Condition message for a group whose units share nodes, or None."""
    parts = [
        f"node {c.node} is in NodeUnits {', '.join((c.winner, *c.losers))}; {c.winner} wins"
        for c in sorted(conflicts)
    ]
    return "; ".join(parts) if parts else None


def workload_status(
    group: str, units: Sequence[str], grids: Iterable[tuple[str, Mapping[str, Any]]]
) -> list[Obj]:
    """Per grid whose `gridUniqKey` is the group: which of its units are ready.

    `grids` are `(kind, grid)` pairs. A unit is ready when the grid's `status.states[unit]` has
    `readyReplicas == replicas`; a unit without a state is not ready yet.
    """
    result = []
    for kind, grid in grids:
        if (grid.get("spec") or {}).get("gridUniqKey") != group:
            continue
        states = (grid.get("status") or {}).get("states") or {}
        ready = [u for u in units if u in states and _replicas_ready(states[u])]
        item: Obj = {"workloadName": f"{(grid.get('metadata') or {}).get('namespace', '')}/{name_of(grid)}"}
        item["type"] = kind
        if ready:
            item["readyUnit"] = ready
        not_ready = [u for u in units if u not in ready]
        if not_ready:
            item["notReadyUnit"] = not_ready
        result.append(item)
    return sorted(result, key=lambda w: (w["workloadName"], w["type"]))


def _replicas_ready(state: Mapping[str, Any]) -> bool:
    return int(state.get("readyReplicas") or 0) == int(state.get("replicas") or 0)


def group_status(units: Sequence[str], workloads: list[Obj], conditions: list[Obj]) -> Obj:
    """The NodeGroup status fields we own."""
    status: Obj = {"unitNumber": len(units), "conditions": conditions}
    if units:
        status["nodeUnits"] = sorted(units)
    if workloads:
        status["workloadStatus"] = workloads
    return status


def status_patch(live: Mapping[str, Any], desired: Mapping[str, Any], fields: Sequence[str]) -> Obj | None:
    """Merge patch `{"status": ...}` setting our `fields` to `desired` (absent → null); None if equal."""
    current = live.get("status") or {}
    change = {key: desired.get(key) for key in fields if current.get(key) != desired.get(key)}
    return {"status": change} if change else None


def condition_turned(live: Mapping[str, Any], desired: Mapping[str, Any], type_: str, status: str) -> bool:
    """Did condition `type_` just become `status` (or change message while in it)? For Events."""
    old = get_condition((live.get("status") or {}).get("conditions"), type_)
    new = get_condition(desired.get("conditions"), type_)
    if new is None or new.get("status") != status:
        return False
    return old is None or old.get("status") != status or old.get("message") != new.get("message")
