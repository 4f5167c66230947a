"""Wiring of the three grid controllers: informers and handlers → keys, reconcile(key) → Result.

One `GridController` class serves DeploymentGrid, StatefulSetGrid and ServiceGrid (the kind table
in `kinds.py`). Handlers only enqueue grid keys: a grid's own changes (status-only writes are
skipped), its children's events through their controller ownerReference, and node label changes
through an index of grids by gridUniqKey, only for keys whose value actually changed. Each
reconcile follows docs/architecture.md: read → desired → plan → apply → status.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Final, Protocol

import orjson

from servicegroup.api.labels import FIELD_MANAGER_GRID, GRID_GROUP
from servicegroup.grid import reasons
from servicegroup.grid.apply import Expectations, Outcome, apply_plan
from servicegroup.grid.desired import GRID_WIDE, Desired, Problem, desired_children
from servicegroup.grid.kinds import KINDS, GridKind
from servicegroup.grid.plan import Plan, plan_children
from servicegroup.grid.status import MAX_LISTED, collect_problems, describe, grid_status, listing
from servicegroup.grid.templates import unused_pool_entries
from servicegroup.grid.units import label_key_problem, unit_values
from servicegroup.kube.client import Client
from servicegroup.kube.conditions import TRUE, format_time, get_condition
from servicegroup.kube.controller import Controller, Result, controller_owner_keys
from servicegroup.kube.events import NORMAL, WARNING, EventRecorder
from servicegroup.kube.informer import Informer, InformerFactory
from servicegroup.kube.objects import ObjectKey, labels_of, meta
from servicegroup.kube.resources import NODES
from servicegroup.kube.store import controller_uid_index, label_keys_index

log = logging.getLogger(__name__)

Obj = dict[str, Any]

GRID_KEY_INDEX: Final = "servicegroup.grid/grid-uniq-key"  # grids by spec.gridUniqKey
CONTROLLER_UID_INDEX: Final = "servicegroup.grid/controller-uid"  # children by controller owner uid
NODE_LABEL_KEYS_INDEX: Final = "servicegroup.grid/label-keys"  # nodes by every label key they carry


class ManagerLike(Protocol):
    """What `setup` needs from `servicegroup.manager.Manager` (kept structural: no upward import)."""

    client: Client
    informers: InformerFactory
    workers: int

    def recorder(self, component: str) -> EventRecorder: ...

    def add_controller(self, controller: Controller[Any]) -> None: ...


class ApplyFailed(Exception):
    """Some child writes failed transiently; the runner retries the grid with backoff."""


def setup(mgr: ManagerLike) -> None:
    """Register the DeploymentGrid, StatefulSetGrid and ServiceGrid controllers with the manager."""
    client = mgr.client.with_field_manager(FIELD_MANAGER_GRID)
    nodes = mgr.informers.informer(NODES)
    nodes.add_index(NODE_LABEL_KEYS_INDEX, label_keys_index)
    for kind in KINDS:
        grid_controller = GridController(
            kind,
            client=client,
            grids=mgr.informers.informer(kind.grid),
            children=mgr.informers.informer(kind.child),
            nodes=nodes if kind.per_unit else None,
            recorder=mgr.recorder(kind.controller_name),
            workers=mgr.workers,
        )
        mgr.add_controller(grid_controller.controller)


def grid_key_index(grid: Obj) -> list[str]:
    """Index function: the grid's gridUniqKey (grids without one are not indexed)."""
    key = (grid.get("spec") or {}).get("gridUniqKey")
    return [key] if key else []


def grid_changed(old: Obj | None, new: Obj) -> bool:
    """Predicate: adds, resyncs and real changes pass; our own status-only writes do not."""
    if old is None or meta(old).get("resourceVersion") == meta(new).get("resourceVersion"):
        return True
    old_meta, new_meta = meta(old), meta(new)
    return any(
        old_meta.get(field) != new_meta.get(field)
        for field in ("generation", "labels", "annotations", "deletionTimestamp", "uid")
    ) or old.get("spec") != new.get("spec")


def changed_label_keys(old: Obj | None, new: Obj | None) -> set[str]:
    """Label keys whose value differs between two versions of a node (all keys on add/delete)."""
    old_labels = labels_of(old) if old is not None else {}
    new_labels = labels_of(new) if new is not None else {}
    return {
        key for key in old_labels.keys() | new_labels.keys() if old_labels.get(key) != new_labels.get(key)
    }


class GridController:
    """Reconciles one grid kind; `controller` is the runner to hand to the manager."""

    def __init__(
        self,
        kind: GridKind,
        *,
        client: Client,
        grids: Informer,
        children: Informer,
        nodes: Informer | None,
        recorder: EventRecorder,
        workers: int = 2,
        expectations: Expectations | None = None,
    ) -> None:
        self.kind = kind
        self.client = client
        self.grids = grids
        self.children = children
        self.nodes = nodes
        self.recorder = recorder
        self.expectations = expectations or Expectations()
        self.controller: Controller[ObjectKey] = Controller(kind.controller_name, self.reconcile, workers)
        # Objects holding a name a grid wants without being its children: their events wake it.
        self._conflict_owner: dict[ObjectKey, ObjectKey] = {}
        self._conflicts_of: dict[ObjectKey, list[ObjectKey]] = {}
        # child key -> (grid fingerprint, child resourceVersion) at which the child matched desired
        self._in_sync: dict[ObjectKey, tuple[Fingerprint, str]] = {}
        self._wire()

    # -- handlers: events → grid keys --------------------------------------------------------------

    def _wire(self) -> None:
        self.grids.add_index(GRID_KEY_INDEX, grid_key_index)
        self.children.add_index(CONTROLLER_UID_INDEX, controller_uid_index)
        self.controller.watch(self.grids, predicate=grid_changed)
        owner_keys = controller_owner_keys(self.kind.kind, GRID_GROUP)

        def on_child(obj: Obj, deleted: bool = False) -> None:
            self.expectations.observe(obj, deleted=deleted)
            if deleted:
                self._in_sync.pop(ObjectKey.from_object(obj), None)
            for key in owner_keys(obj):
                self.controller.enqueue(key)
            watcher = self._conflict_owner.get(ObjectKey.from_object(obj))
            if watcher is not None:
                self.controller.enqueue(watcher)

        def on_child_update(old: Obj, new: Obj) -> None:
            if meta(old).get("resourceVersion") == meta(new).get("resourceVersion"):
                return  # resync: the grid's own resync covers it
            for key in owner_keys(old):  # a changed controller reference wakes the old owner too
                self.controller.enqueue(key)
            on_child(new)

        self.children.add_handler(on_child, on_child_update, lambda obj: on_child(obj, deleted=True))
        self.controller.wait_for(self.children)
        if self.nodes is not None:
            self.nodes.add_handler(
                lambda node: self.node_changed(None, node),
                self.node_changed,
                lambda node: self.node_changed(node, None),
            )
            self.controller.wait_for(self.nodes)

    def node_changed(self, old: Obj | None, new: Obj | None) -> None:
        """Enqueue only the grids keyed on a label whose value changed (index lookup, no scan)."""
        for label in changed_label_keys(old, new):
            for key in self.grids.store.index_keys(GRID_KEY_INDEX, label):
                self.controller.enqueue(ObjectKey.parse(key))

    # -- reconcile ---------------------------------------------------------------------------------

    async def reconcile(self, key: ObjectKey) -> Result | None:
        """read → desired → plan → apply → status for one grid."""
        grid = self.grids.store.get(key)
        if grid is None:  # deleted: the API server's GC removes the children via ownerReferences
            self.expectations.forget(key)
            self._watch_conflicts(key, [])
            return None
        if meta(grid).get("deletionTimestamp"):
            return None
        grid = await self._prune_unused_templates(grid)
        desired = desired_children(self.kind, grid, self._units(grid))
        live = self._live(grid, desired)
        pending = self.expectations.pending(key)
        plan = self._plan(key, grid, desired, live, pending)
        outcome = Outcome() if plan.empty else await apply_plan(self.client, self.kind.child, plan)
        if not plan.empty:
            log.info(
                "%s %s: created %d, updated %d, deleted %d, raced %d, rejected %d, failed %d",
                self.kind.kind, key, len(outcome.created), len(outcome.updated), len(outcome.deleted),
                len(outcome.raced), len(outcome.rejected), len(outcome.failed),
            )  # fmt: skip
        self.expectations.expect(key, outcome.written)
        self._report_writes(grid, outcome)
        await self._update_status(grid, desired, live, plan, outcome)
        if outcome.failed:
            raise ApplyFailed(f"{self.kind.kind} {key}: {listing(sorted(outcome.failed.values()), '; ')}")
        if outcome.raced:
            return Result(requeue=True)
        if pending:  # safety net should an echo never come (it normally wakes the grid first)
            return Result(requeue_after=max(pending.values()))
        return None

    def _plan(
        self,
        key: ObjectKey,
        grid: Obj,
        desired: Desired,
        live: Mapping[str, Obj],
        pending: Mapping[str, float],
    ) -> Plan:
        """plan_children, skipping children already found equal at this grid and child version."""
        fingerprint = _fingerprint(grid)
        in_sync = [
            name
            for name, child in live.items()
            if self._in_sync.get(ObjectKey.from_object(child)) == (fingerprint, rv_of(child))
        ]
        plan = plan_children(desired, live, meta(grid).get("uid") or "", in_flight=pending, in_sync=in_sync)
        self._remember_in_sync(desired, live, plan, fingerprint, pending)
        self._watch_conflicts(key, plan.conflicts)
        return plan

    async def _update_status(
        self, grid: Obj, desired: Desired, live: Mapping[str, Obj], plan: Plan, outcome: Outcome
    ) -> None:
        """Status from the cached children, written once if it changed; Warnings for new problems."""
        failures = {
            _unit_of(self.kind, grid, name): Problem(reason, message)
            for reason, errors in (
                (reasons.CHILD_REJECTED, outcome.rejected),
                (reasons.APPLY_FAILED, outcome.failed),
            )
            for name, message in errors.items()
        }
        name = meta(grid).get("name") or ""
        problems = collect_problems(self.kind, name, desired, plan.conflicts, failures)
        status = grid_status(
            self.kind, grid, desired, live, problems=problems, conflicts=plan.conflicts, now=format_time()
        )
        await self._write_status(grid, status)
        self._report_new_problems(grid, status, {u: p for u, p in problems.items() if u not in failures})

    def _units(self, grid: Obj) -> list[str]:
        key = (grid.get("spec") or {}).get("gridUniqKey") or ""
        if not self.kind.per_unit or self.nodes is None or label_key_problem(key):
            return []
        return unit_values(self.nodes.store.by_index(NODE_LABEL_KEYS_INDEX, key), key)

    def _live(self, grid: Obj, desired: Desired) -> dict[str, Obj]:
        """Children this grid controls, plus whatever holds a name it wants (to detect conflicts)."""
        grid_meta = meta(grid)
        uid = grid_meta.get("uid") or ""
        live = {
            meta(child)["name"]: child for child in self.children.store.by_index(CONTROLLER_UID_INDEX, uid)
        }
        namespace = grid_meta.get("namespace") or ""
        for name in (*desired.children, *desired.held):
            if name not in live:
                found = self.children.store.get(ObjectKey(namespace, name))
                if found is not None:
                    live[name] = found
        return live

    async def _prune_unused_templates(self, grid: Obj) -> Obj:
        """autoDeleteUnusedTemplate: the one edit we make to a user's spec (it is its definition)."""
        spec = grid.get("spec") or {}
        unused = unused_pool_entries(spec) if spec.get("autoDeleteUnusedTemplate") else []
        if not unused:
            return grid
        grid_meta = meta(grid)
        patch = {
            "metadata": {"resourceVersion": grid_meta.get("resourceVersion")},  # precondition
            "spec": {"templatePool": dict.fromkeys(unused)},
        }
        patched = await self.client.patch(
            self.kind.grid, grid_meta["name"], patch, namespace=grid_meta.get("namespace")
        )
        self.recorder.event(
            patched,
            NORMAL,
            reasons.TEMPLATES_PRUNED,
            f"Deleted unused templatePool entries: {listing(unused)}",
        )
        return patched

    async def _write_status(self, grid: Obj, status: Obj) -> None:
        """One PUT of /status, only when something changed (409 → the runner requeues)."""
        if status == (grid.get("status") or {}):
            return
        await self.client.replace_status(self.kind.grid, {**grid, "status": status})

    def _remember_in_sync(
        self,
        desired: Desired,
        live: Mapping[str, Obj],
        plan: Plan,
        fingerprint: Fingerprint,
        pending: Mapping[str, float],
    ) -> None:
        """Children the plan found equal to desired: skip their deep comparison until either moves."""
        touched = {meta(child)["name"] for child in plan.update}
        skipped = touched.union(plan.conflicts, pending)
        for name in desired.children:
            child = live.get(name)
            if child is not None and name not in skipped:
                self._in_sync[ObjectKey.from_object(child)] = (fingerprint, rv_of(child))

    # -- Events ------------------------------------------------------------------------------------

    def _report_writes(self, grid: Obj, outcome: Outcome) -> None:
        """One Event per kind of write per pass, naming the children (aggregated, not one per unit)."""
        child_kind = self.kind.child.kind
        for reason, done, verb in (
            (reasons.CHILD_CREATED, outcome.created, "Created"),
            (reasons.CHILD_UPDATED, outcome.updated, "Updated"),
            (reasons.CHILD_DELETED, outcome.deleted, "Deleted"),
        ):
            if done:
                self.recorder.event(grid, NORMAL, reason, f"{verb} {child_kind} {listing(done)}")
        for reason, errors in (
            (reasons.CHILD_REJECTED, outcome.rejected),
            (reasons.APPLY_FAILED, outcome.failed),
        ):
            for name in sorted(errors):
                unit = _unit_of(self.kind, grid, name)
                self.recorder.event(grid, WARNING, reason, describe(unit, Problem(reason, errors[name])))

    def _report_new_problems(self, grid: Obj, status: Obj, problems: Mapping[str, Problem]) -> None:
        """Warning Events for spec problems and conflicts, once per change of the Degraded message."""
        old = get_condition((grid.get("status") or {}).get("conditions"), reasons.DEGRADED)
        new = get_condition(status.get("conditions"), reasons.DEGRADED)
        if (
            new is None
            or new.get("status") != TRUE
            or (old is not None and old.get("message") == new.get("message"))
        ):
            return
        for unit in sorted(problems)[:MAX_LISTED]:
            self.recorder.event(grid, WARNING, problems[unit].reason, describe(unit, problems[unit]))

    # -- conflict watch ----------------------------------------------------------------------------

    def _watch_conflicts(self, grid: ObjectKey, names: list[str]) -> None:
        for child in self._conflicts_of.pop(grid, ()):
            self._conflict_owner.pop(child, None)
        if names:
            children = [ObjectKey(grid.namespace, name) for name in names]
            self._conflicts_of[grid] = children
            self._conflict_owner.update(dict.fromkeys(children, grid))


Fingerprint = tuple[str, int, bytes]


def _fingerprint(grid: Obj) -> Fingerprint:
    """What desired children depend on besides units: spec (generation), name, labels, annotations."""
    grid_meta = meta(grid)
    extras = orjson.dumps(
        [grid_meta.get("name"), grid_meta.get("labels"), grid_meta.get("annotations")],
        option=orjson.OPT_SORT_KEYS,
    )
    return (grid_meta.get("uid") or "", grid_meta.get("generation") or 0, extras)


def rv_of(obj: Obj) -> str:
    """resourceVersion of an object."""
    return str(meta(obj).get("resourceVersion") or "")


def _unit_of(kind: GridKind, grid: Obj, child_name: str) -> str:
    """The unit a child name belongs to (SuperEdge's TrimPrefix); the SG Service has none."""
    if not kind.per_unit:
        return GRID_WIDE
    return child_name.removeprefix(f"{meta(grid).get('name') or ''}-")
