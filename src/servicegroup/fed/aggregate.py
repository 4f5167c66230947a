"""The control grid's status from its member copies' statuses. Pure.

`status.states[unit]` is the member copy's own state for that unit (taken only from the member that
holds the unit now), and `status.clusters[unit]` names that member (additive; see docs/fed.md).
`units` / `readyUnits` add up over members. Conditions: Ready (every unit ready in an up-to-date
copy), Distributed (every member holding units has the current copy), MembersReachable (names
the unreachable members, whose last known state is kept) and Degraded (units split between members,
copies we may not touch, rejected writes). Messages are built in sorted order and conditions keep
their lastTransitionTime while they hold, so an unchanged federation gives an equal status.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from servicegroup.fed import reasons
from servicegroup.fed.distribute import FedKind, split_units
from servicegroup.grid import reasons as grid_reasons
from servicegroup.grid.desired import Problem
from servicegroup.grid.status import listing
from servicegroup.kube.conditions import FALSE, TRUE, is_condition_true, set_condition
from servicegroup.kube.objects import meta

Obj = dict[str, Any]


@dataclass(frozen=True)
class Federation:
    """What the controller knows about one control grid across members.

    `holdings`: member -> units it holds (last known for unreachable members); `copies`: member ->
    its live copy; `pending`: members whose copy is not (yet) the current one; `problems`: member ->
    why its copy cannot be written.
    """

    holdings: Mapping[str, Sequence[str]]
    copies: Mapping[str, Obj]
    unreachable: Sequence[str] = ()
    pending: Sequence[str] = ()
    problems: Mapping[str, Problem] = field(default_factory=dict)


def aggregate_status(kind: FedKind, grid: Mapping[str, Any], fed: Federation, *, now: str) -> Obj:
    """The complete new `status` of the control grid (unknown keys of the old status are kept)."""
    old: Obj = dict(grid.get("status") or {})
    generation = meta(grid).get("generation")
    holders = sorted(member for member, units in fed.holdings.items() if units)
    units = sorted({unit for member in holders for unit in fed.holdings[member]})
    ready_members = [member for member in holders if _copy_ready(fed, member)]
    ready_units = sum(_ready_units(fed, member) for member in holders)
    status: Obj = {**old, "observedGeneration": generation}
    if generation is None:
        del status["observedGeneration"]
    if kind.per_unit:
        states, clusters = _states(fed, holders)
        status.update(states=states, clusters=clusters, units=len(units), readyUnits=ready_units)
    conditions: list[Obj] = list(old.get("conditions") or [])
    for type_, holds, reason, message in (
        _ready(
            kind, grid, holders=holders, ready_members=ready_members, units=units, ready_units=ready_units
        ),
        _reachable(fed),
        _distributed(fed, holders),
        _degraded(fed),
    ):
        conditions = set_condition(
            conditions, type_, TRUE if holds else FALSE, reason, message, generation, now
        )
    status["conditions"] = conditions
    return status


def _states(fed: Federation, holders: Sequence[str]) -> tuple[dict[str, Obj], dict[str, str]]:
    """Per unit: the holding member's state for it, and that member (first by name if split)."""
    states: dict[str, Obj] = {}
    clusters: dict[str, str] = {}
    for member in holders:
        copy = fed.copies.get(member) or {}
        member_states = (copy.get("status") or {}).get("states") or {}
        for unit in fed.holdings[member]:
            clusters.setdefault(unit, member)
            if unit in member_states and unit not in states:
                states[unit] = member_states[unit]
    return states, clusters


def _observed(copy: Mapping[str, Any]) -> bool:
    """The member's grid controller has reconciled the copy's current spec."""
    observed = (copy.get("status") or {}).get("observedGeneration")
    return observed is not None and observed == meta(copy).get("generation")


def _copy_ready(fed: Federation, member: str) -> bool:
    copy = fed.copies.get(member)
    return (
        copy is not None
        and member not in fed.pending
        and _observed(copy)
        and is_condition_true((copy.get("status") or {}).get("conditions"), grid_reasons.READY)
    )


def _ready_units(fed: Federation, member: str) -> int:
    copy = fed.copies.get(member)
    if copy is None or member in fed.pending or not _observed(copy):
        return 0
    ready = (copy.get("status") or {}).get("readyUnits") or 0
    return min(int(ready), len(fed.holdings[member]))


Verdict = tuple[str, bool, str, str]  # condition type, holds?, reason, message


def _ready(
    kind: FedKind,
    grid: Mapping[str, Any],
    *,
    holders: Sequence[str],
    ready_members: Sequence[str],
    units: Sequence[str],
    ready_units: int,
) -> Verdict:
    if not holders:
        key = (grid.get("spec") or {}).get("gridUniqKey")
        return (
            grid_reasons.READY,
            False,
            grid_reasons.NO_UNITS,
            f"no member cluster has a node with a non-empty label {key}",
        )
    waiting = [member for member in holders if member not in ready_members]
    if kind.per_unit:
        message = f"{ready_units}/{len(units)} units ready in {len(holders)} member clusters"
        ok = not waiting and ready_units == len(units)
    else:
        message = f"ready in {len(ready_members)}/{len(holders)} member clusters"
        ok = not waiting
    if waiting:
        message += f"; waiting for: {listing(waiting)}"
    return (
        grid_reasons.READY,
        ok,
        grid_reasons.UNITS_READY if ok else grid_reasons.UNITS_NOT_READY,
        message,
    )


def _reachable(fed: Federation) -> Verdict:
    if fed.unreachable:
        message = f"unreachable (last known state kept): {listing(sorted(fed.unreachable))}"
        return (reasons.MEMBERS_REACHABLE, False, reasons.MEMBERS_UNREACHABLE, message)
    return (reasons.MEMBERS_REACHABLE, True, reasons.ALL_REACHABLE, f"{len(fed.holdings)} members reachable")


def _distributed(fed: Federation, holders: Sequence[str]) -> Verdict:
    if not holders:
        return (reasons.DISTRIBUTED, False, reasons.NO_MEMBERS, "no member cluster holds a unit")
    behind = sorted({*fed.pending, *fed.problems} & set(holders))
    placement = listing((f"{m}: {','.join(fed.holdings[m])}" for m in holders), "; ")
    if behind:
        return (reasons.DISTRIBUTED, False, reasons.COPIES_PENDING, f"not current in: {listing(behind)}")
    return (reasons.DISTRIBUTED, True, reasons.COPIES_IN_SYNC, placement)


def _degraded(fed: Federation) -> Verdict:
    issues = [f"{member}: {fed.problems[member].message}" for member in sorted(fed.problems)]
    split = split_units(fed.holdings)
    issues += [f"unit {unit} is held by {', '.join(members)}" for unit, members in sorted(split.items())]
    if not issues:
        return (grid_reasons.DEGRADED, False, grid_reasons.AS_EXPECTED, "")
    reason = fed.problems[min(fed.problems)].reason if fed.problems else reasons.UNITS_SPLIT
    return (grid_reasons.DEGRADED, True, reason, listing(issues, "; "))
