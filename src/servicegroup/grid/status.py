"""The grid's status from live children: per-unit states, counts and conditions. Pure.

`status.states[unit]` is SuperEdge's: for a Deployment only replicas, readyReplicas and the
Available condition (FiltDgStatus); for a StatefulSet the whole StatefulSetStatus; for a config
grid's ConfigMap/Secret `{dataHash}` (the live child's). `status.rendered[unit]` says what each
customised workload unit gets: `{template, overrides, configHash, configs}`. On top of that:
`units` / `readyUnits` for the printer columns, `observedGeneration`, and the conditions Ready,
Progressing, Degraded and ChildConflict. Messages are built in sorted unit order and conditions
keep their lastTransitionTime while their status holds, so an unchanged world gives an equal status
and the controller writes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from servicegroup.api.labels import CONFIG_HASH
from servicegroup.grid import reasons
from servicegroup.grid.desired import GRID_WIDE, Desired, Problem
from servicegroup.grid.kinds import GridKind
from servicegroup.kube.conditions import FALSE, TRUE, set_condition
from servicegroup.kube.objects import controller_of, meta

Obj = dict[str, Any]

MAX_LISTED: Final = 10  # units named in one condition message; the rest are counted


def grid_status(
    kind: GridKind,
    grid: Obj,
    desired: Desired,
    live: Mapping[str, Obj],
    *,
    problems: Mapping[str, Problem],
    conflicts: Sequence[str] = (),
    now: str,
) -> Obj:
    """The complete new `status` of `grid` (unknown keys of the old status are kept).

    `problems` is `collect_problems(...)`: unit -> what keeps it from converging.
    """
    old: Obj = grid.get("status") or {}
    grid_meta = meta(grid)
    generation = grid_meta.get("generation")
    uid = grid_meta.get("uid") or ""
    name = grid_meta.get("name") or ""
    units = desired.units if kind.per_unit else (GRID_WIDE,)
    states: dict[str, Obj] = {}
    not_ready: list[str] = []
    for unit in units:
        child = live.get(kind.child_name(name, unit))
        if child is None or (controller_of(child) or {}).get("uid") != uid:
            not_ready.append(unit)
            continue
        if kind.per_unit:
            states[unit] = unit_state(kind, child)
        if not child_ready(child):
            not_ready.append(unit)
    conditions = _conditions(
        kind, grid, desired, not_ready=not_ready, problems=problems, conflicts=conflicts, now=now
    )
    status: Obj = {**old, "observedGeneration": generation, "conditions": conditions}
    if generation is None:
        del status["observedGeneration"]
    if kind.per_unit:
        status.update(states=states, units=len(units), readyUnits=len(units) - len(not_ready))
    if kind.role == "workload":
        status["rendered"] = dict(desired.rendered)
    return status


def unit_state(kind: GridKind, child: Mapping[str, Any]) -> Obj:
    """`status.states[unit]`: FiltDgStatus for a Deployment, the full status of a StatefulSet."""
    if kind.role == "config":
        return {"dataHash": (meta(child).get("annotations") or {}).get(CONFIG_HASH) or ""}
    status = dict(child.get("status") or {})
    if kind.child.kind != "Deployment":
        return status
    state: Obj = {key: status[key] for key in ("replicas", "readyReplicas") if status.get(key)}
    available = [c for c in status.get("conditions") or [] if c.get("type") == "Available"]
    if available:
        state["conditions"] = available[:1]
    return state


def child_ready(child: Mapping[str, Any]) -> bool:
    """Rolled out (Kubernetes' DeploymentComplete): observed at its generation, every replica
    updated, ready and available, no old replica left, one revision. A Service: it exists."""
    spec, status = child.get("spec") or {}, child.get("status") or {}
    if "template" not in spec:
        return True
    if (status.get("observedGeneration") or 0) < (meta(child).get("generation") or 0):
        return False
    wanted = spec.get("replicas", 1)
    counts = [status.get("readyReplicas") or 0]
    counts += [status[key] for key in ("replicas", "updatedReplicas", "availableReplicas") if key in status]
    revisions = {status[key] for key in ("currentRevision", "updateRevision") if status.get(key)}
    return all(count == wanted for count in counts) and len(revisions) <= 1


def collect_problems(
    kind: GridKind,
    grid_name: str,
    desired: Desired,
    conflicts: Sequence[str] = (),
    failures: Mapping[str, Problem] | None = None,
) -> dict[str, Problem]:
    """Every unit that cannot converge: spec problems, apply failures, children not ours."""
    problems = dict(desired.problems)
    problems.update(failures or {})
    prefix = f"{grid_name}-"
    for child in conflicts:
        unit = child.removeprefix(prefix) if kind.per_unit else GRID_WIDE
        problems.setdefault(
            unit,
            Problem(
                reasons.CHILD_NOT_OWNED,
                f"{kind.child.kind} {child} exists and is not controlled by this {kind.kind}; left alone",
            ),
        )
    return problems


def listing(items: Iterable[str], separator: str = ", ") -> str:
    """`a, b, c` with at most MAX_LISTED entries, then `(and N more)`."""
    entries = list(items)
    shown = separator.join(entries[:MAX_LISTED])
    more = len(entries) - MAX_LISTED
    return f"{shown} (and {more} more)" if more > 0 else shown


def describe(unit: str, problem: Problem) -> str:
    """One problem for humans, naming the unit."""
    return problem.message if unit == GRID_WIDE else f"unit {unit}: {problem.message}"


Verdict = tuple[str, bool, str, str]  # condition type, holds?, reason, message


def _conditions(
    kind: GridKind,
    grid: Obj,
    desired: Desired,
    *,
    not_ready: list[str],
    problems: Mapping[str, Problem],
    conflicts: Sequence[str],
    now: str,
) -> list[Obj]:
    generation = meta(grid).get("generation")
    conditions: list[Obj] = list((grid.get("status") or {}).get("conditions") or [])
    verdicts = [
        *_readiness(kind, grid, desired, not_ready, problems),
        _degraded(problems),
        _conflict(kind, conflicts),
    ]
    for type_, holds, reason, message in verdicts:
        status = TRUE if holds else FALSE
        conditions = set_condition(conditions, type_, status, reason, message, generation, now)
    return conditions


def _readiness(
    kind: GridKind, grid: Obj, desired: Desired, not_ready: list[str], problems: Mapping[str, Problem]
) -> list[Verdict]:
    """Ready and Progressing."""
    if desired.blocked:
        problem = problems[GRID_WIDE]
        return [
            (reasons.READY, False, problem.reason, problem.message),
            (reasons.PROGRESSING, False, problem.reason, problem.message),
        ]
    if not kind.per_unit:
        service = kind.child_name(meta(grid).get("name") or "", GRID_WIDE)
        ok = not not_ready and not problems
        return [
            (
                reasons.READY,
                ok,
                reasons.SERVICE_READY if ok else reasons.SERVICE_PENDING,
                f"Service {service}",
            ),
            (
                reasons.PROGRESSING,
                bool(not_ready),
                reasons.SERVICE_PENDING if not_ready else reasons.SERVICE_READY,
                f"Service {service}",
            ),
        ]
    if not desired.units:
        message = f"no node has a non-empty label {(grid.get('spec') or {}).get('gridUniqKey')}"
        return [
            (reasons.READY, False, reasons.NO_UNITS, message),
            (reasons.PROGRESSING, False, reasons.NO_UNITS, message),
        ]
    summary = f"{len(desired.units) - len(not_ready)}/{len(desired.units)} units ready"
    if not_ready:
        summary += f"; not ready: {listing(not_ready)}"
    ok = not not_ready and not problems
    progress_reason = reasons.UNITS_NOT_READY if not_ready else reasons.UNITS_READY
    return [
        (reasons.READY, ok, reasons.UNITS_READY if ok else reasons.UNITS_NOT_READY, summary),
        (reasons.PROGRESSING, bool(not_ready), progress_reason, summary),
    ]


def _degraded(problems: Mapping[str, Problem]) -> Verdict:
    if not problems:
        return (reasons.DEGRADED, False, reasons.AS_EXPECTED, "")
    ordered = sorted(problems)
    message = listing((describe(unit, problems[unit]) for unit in ordered), "; ")
    return (reasons.DEGRADED, True, problems[ordered[0]].reason, message)


def _conflict(kind: GridKind, conflicts: Sequence[str]) -> Verdict:
    if not conflicts:
        return (reasons.CHILD_CONFLICT, False, reasons.NO_CONFLICT, "")
    message = f"not controlled by this {kind.kind}, left alone: {listing(conflicts)}"
    return (reasons.CHILD_CONFLICT, True, reasons.CHILD_NOT_OWNED, message)
