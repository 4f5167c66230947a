"""What each member cluster should hold for one control grid, and the writes to get there. Pure.

A member that holds at least one unit of the grid (one of its Nodes carries a non-empty
`gridUniqKey` label) gets a *copy* of the grid: same namespace and name, the full spec (so canary
templates and per-unit choices behave exactly as in one cluster), the control grid's labels plus
`superedge.io/dis: "yes"`, and the annotation `servicegroup.io/control-cluster` naming the control
cluster. The member's own grid controller then stamps out children for the member's own units only.
Copies carry no ownerReference (SuperEdge's cross-namespace one is invalid, and a member must keep
running when it cannot see the control cluster) and no status; a copy whose member no longer holds
a unit is deleted. Every kind in `FED_KINDS` (SuperEdge's three grids and our ConfigMapGrid and
SecretGrid) is distributed the same way: that table is the extension point.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from servicegroup.api.labels import DIS_LABEL
from servicegroup.fed.members import CONTROL_ANNOTATION
from servicegroup.grid.desired import LAST_APPLIED
from servicegroup.grid.kinds import CONFIG_KINDS, KINDS
from servicegroup.grid.units import label_key_problem, unit_values
from servicegroup.kube.objects import meta
from servicegroup.kube.resources import Resource

Obj = dict[str, Any]

DIS_VALUE: Final = "yes"


@dataclass(frozen=True)
class FedKind:
    """A kind the fed controller distributes; `per_unit` kinds report `status.states` per unit.

    `optional` kinds (our own per-site config grids) may lack a CRD in a SuperEdge cluster: the
    controller never waits for them, and a member without the CRD is reported, not blocked on.
    """

    resource: Resource
    per_unit: bool
    optional: bool = False

    @property
    def kind(self) -> str:
        """`DeploymentGrid` etc."""
        return self.resource.kind


# The extension point: SuperEdge's grids, then our per-site config grids (ConfigMapGrid, SecretGrid).
FED_KINDS: Final = (
    *(FedKind(k.grid, k.per_unit) for k in KINDS),
    *(FedKind(k.grid, k.per_unit, optional=True) for k in CONFIG_KINDS),
)
FED_BY_KIND: Final = {k.kind: k for k in FED_KINDS}


def is_copy_of(obj: Mapping[str, Any], control: str) -> bool:
    """A member grid this control cluster distributed (never touch anyone else's)."""
    object_meta = meta(obj)
    return (object_meta.get("labels") or {}).get(DIS_LABEL) == DIS_VALUE and (
        object_meta.get("annotations") or {}
    ).get(CONTROL_ANNOTATION) == control


def grid_key(grid: Mapping[str, Any]) -> str:
    """The grid's gridUniqKey, or "" when it has none or it is not a valid label key."""
    key = str((grid.get("spec") or {}).get("gridUniqKey") or "")
    return "" if label_key_problem(key) else key


def held_units(nodes: Iterable[Mapping[str, Any]], key: str) -> list[str]:
    """The units (sorted distinct values of node label `key`) a member's nodes hold."""
    return unit_values(nodes, key) if key else []


def member_copy(grid: Mapping[str, Any], control: str) -> Obj:
    """The copy of `grid` every member holding one of its units gets."""
    grid_meta = meta(grid)
    annotations = {k: v for k, v in (grid_meta.get("annotations") or {}).items() if k != LAST_APPLIED}
    annotations[CONTROL_ANNOTATION] = control
    return {
        "apiVersion": grid["apiVersion"],
        "kind": grid["kind"],
        "metadata": {
            "name": grid_meta["name"],
            "namespace": grid_meta.get("namespace") or "default",
            "labels": {**(grid_meta.get("labels") or {}), DIS_LABEL: DIS_VALUE},
            "annotations": annotations,
        },
        "spec": grid.get("spec") or {},
    }


def desired_copies(
    grid: Mapping[str, Any], holdings: Mapping[str, Sequence[str]], control: str
) -> dict[str, Obj]:
    """member -> copy, for every member holding at least one unit."""
    copy = member_copy(grid, control)
    return {member: copy for member, units in sorted(holdings.items()) if units}


def split_units(holdings: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    """Units held by more than one member (each would run the unit's full replica count)."""
    seen: dict[str, list[str]] = {}
    for member in sorted(holdings):
        for unit in holdings[member]:
            seen.setdefault(unit, []).append(member)
    return {unit: members for unit, members in seen.items() if len(members) > 1}


def copy_in_sync(live: Mapping[str, Any], desired: Mapping[str, Any]) -> bool:
    """The live copy has exactly the desired labels, annotations and spec (a hand edit is drift)."""
    live_meta, want_meta = meta(live), meta(desired)
    return bool(
        (live_meta.get("labels") or {}) == want_meta["labels"]
        and (live_meta.get("annotations") or {}) == want_meta["annotations"]
        and (live.get("spec") or {}) == desired["spec"]
    )


@dataclass(frozen=True)
class CopyPlan:
    """Writes per member: objects to create, to PUT (with the live resourceVersion), names to delete."""

    create: dict[str, Obj] = field(default_factory=dict)
    update: dict[str, Obj] = field(default_factory=dict)
    delete: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        """Nothing to write."""
        return not (self.create or self.update or self.delete)

    @property
    def members(self) -> list[str]:
        """Every member this plan writes to."""
        return sorted({*self.create, *self.update, *self.delete})


def plan_copies(
    desired: Mapping[str, Obj],
    live: Mapping[str, Obj],
    *,
    reachable: Iterable[str],
    in_sync: Iterable[str] = (),
) -> CopyPlan:
    """The writes turning `live` (member -> this control's copy) into `desired`, on reachable members.

    `in_sync` names members whose copy is known equal to desired (skips the comparison). An
    unreachable member is never written to: it catches up when it returns.
    """
    ok = set(reachable)
    known_equal = set(in_sync)
    create: dict[str, Obj] = {}
    update: dict[str, Obj] = {}
    for member in sorted(desired):
        want, have = desired[member], live.get(member)
        if member not in ok:
            continue
        if have is None:
            create[member] = want
        elif member not in known_equal and not copy_in_sync(have, want):
            update[member] = _replacement(want, have)
    delete = sorted(member for member in live if member not in desired and member in ok)
    return CopyPlan(create, update, delete)


def _replacement(desired: Mapping[str, Any], live: Mapping[str, Any]) -> Obj:
    """The PUT body: desired content over the live identity (resourceVersion is the precondition)."""
    live_meta = meta(live)
    metadata = dict(desired["metadata"])
    for key in ("resourceVersion", "uid", "finalizers"):
        if live_meta.get(key):
            metadata[key] = live_meta[key]
    return {**desired, "metadata": metadata}
