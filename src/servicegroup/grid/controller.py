"""Wiring of the three grid controllers: informers and handlers → keys, reconcile(key) → Result.

One `GridController` class serves every grid kind (the kind table in `kinds.py`): DeploymentGrid,
StatefulSetGrid, ServiceGrid, ConfigMapGrid and SecretGrid. Handlers only enqueue grid keys: a
grid's own changes (status-only writes are skipped), its children's events through their
controller ownerReference, node label changes through an index of grids by gridUniqKey (only for
keys whose value actually changed), NodeUnit label changes for grids whose rules or placeholders
read them, and config grid changes for the workload grids that reference them (an index of grids
by referenced ConfigMap/Secret name). Each reconcile follows docs/architecture.md:
read → desired → plan → apply → status.

SecretGrid is the opt-in `secretgrid` controller (grid/secretgrid.py); only with it do workload
grids resolve SecretGrid references. With `fed` in the same manager, fed grids (label
`superedge.io/fed`) are left to fed: their units run in member clusters, and their status is the
fed aggregate.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, Final

import orjson

from servicegroup.api.labels import FIELD_MANAGER_GRID, is_fed
from servicegroup.grid import reasons
from servicegroup.grid.apply import Expectations, Outcome, Written, apply_plan
from servicegroup.grid.configs import CONFIGMAP, SECRET, ConfigGrids, config_uses_labels, referenced_names
from servicegroup.grid.desired import GRID_WIDE, Desired, Problem, UnitContext, desired_children
from servicegroup.grid.kinds import ALL_KINDS, CONFIGMAP_GRIDS, NODEUNITS, SECRET_GRID, SECRET_GRIDS, GridKind
from servicegroup.grid.overrides import rules_of, uses_selector
from servicegroup.grid.placeholders import uses_labels
from servicegroup.grid.plan import Plan, plan_children, template_hash_of
from servicegroup.grid.status import MAX_LISTED, collect_problems, describe, grid_status, listing
from servicegroup.grid.templates import unused_pool_entries
from servicegroup.grid.units import label_key_problem, unit_values
from servicegroup.kube.client import Client
from servicegroup.kube.conditions import TRUE, format_time, get_condition
from servicegroup.kube.controller import Controller, Result, controller_owner_keys
from servicegroup.kube.errors import NotFound
from servicegroup.kube.events import NORMAL, WARNING, EventRecorder
from servicegroup.kube.informer import Informer
from servicegroup.kube.objects import ObjectKey, labels_of, meta
from servicegroup.kube.resources import NODES, Resource
from servicegroup.kube.setup import ManagerLike
from servicegroup.kube.store import controller_uid_index, label_keys_index

log = logging.getLogger(__name__)

Obj = dict[str, Any]

GRID_KEY_INDEX: Final = "servicegroup.grid/grid-uniq-key"  # grids by spec.gridUniqKey
CONTROLLER_UID_INDEX: Final = "servicegroup.grid/controller-uid"  # children by controller owner uid
NODE_LABEL_KEYS_INDEX: Final = "servicegroup.grid/label-keys"  # nodes by every label key they carry
CONFIG_REFS_INDEX: Final = "servicegroup.grid/config-refs"  # grids by `<Kind>/<ns>/<name>` they reference
NODEUNIT_USERS_INDEX: Final = "servicegroup.grid/nodeunit-users"  # grids whose children read NodeUnits
USES_NODEUNITS: Final = "yes"
ABSENT_RECHECK: Final = 10.0  # seconds before asking again whether an optional CRD is installed
UNSYNCED_RETRY: Final = 1.0  # seconds before retrying a grid that waits for an optional informer
TAKEN_RETRY: Final = 10.0  # seconds before retrying a create that found a foreign object
SECRET_GRID_CONTROLLER: Final = "secretgrid"  # the manager's name for the opt-in SecretGrid controller
FED_CONTROLLER: Final = "fed"


class ApplyFailed(Exception):
    """Some child writes failed transiently; the runner retries the grid with backoff."""


def setup(mgr: ManagerLike) -> None:
    """Register one controller per grid kind: DG, SSG, SG and ConfigMapGrid."""
    register_grid_controllers(mgr, tuple(kind for kind in ALL_KINDS if kind is not SECRET_GRID))


def register_grid_controllers(mgr: ManagerLike, kinds: tuple[GridKind, ...]) -> None:
    """One GridController per kind, over the manager's shared informers."""
    client = mgr.client.with_field_manager(FIELD_MANAGER_GRID)
    nodes = mgr.informers.informer(NODES)
    nodes.add_index(NODE_LABEL_KEYS_INDEX, label_keys_index)
    optional = OptionalInformers(
        client,
        nodeunits=mgr.informers.informer(NODEUNITS),
        configmap_grids=mgr.informers.informer(CONFIGMAP_GRIDS),
        secret_grids=(
            mgr.informers.informer(SECRET_GRIDS) if SECRET_GRID_CONTROLLER in mgr.controller_names else None
        ),
    )
    leave_to_fed = is_fed if FED_CONTROLLER in mgr.controller_names else None
    for kind in kinds:
        grid_controller = GridController(
            kind,
            client=client,
            grids=mgr.informers.informer(kind.grid),
            children=mgr.informers.informer(kind.child, label_selector=kind.child_selector),
            nodes=nodes if kind.per_unit else None,
            recorder=mgr.recorder(kind.controller_name),
            workers=mgr.workers,
            optional=optional if kind.per_unit else None,
            skip=leave_to_fed,
        )
        mgr.add_controller(grid_controller.controller)


class OptionalInformers:
    """NodeUnits and config grids: read by grids, but their CRDs may not be installed (a SuperEdge
    cluster without site-manager, or without our own CRDs). A grid never waits for them at start;
    `ready(res)` is True once the informer has synced, or while the CRD is known to be absent
    (then there is nothing to see), so a missing CRD never stops a grid that does not need it.
    `secret_grids` is None without the `secretgrid` controller: Secret references stay as written."""

    def __init__(
        self, client: Client, *, nodeunits: Informer, configmap_grids: Informer, secret_grids: Informer | None
    ) -> None:
        self.client = client
        self.nodeunits = nodeunits
        self.configmap_grids = configmap_grids
        self.secret_grids = secret_grids
        self._absent_until: dict[Resource, float] = {}

    async def ready(self, informer: Informer) -> bool:
        """Can this informer's store be trusted as the cluster's state?"""
        if informer.has_synced:
            return True
        if self._absent_until.get(informer.res, 0.0) > time.monotonic():
            return True
        try:
            await self.client.list(informer.res, limit=1)
        except NotFound:  # CRD not installed: no such objects exist
            self._absent_until[informer.res] = time.monotonic() + ABSENT_RECHECK
            return True
        return False  # installed, the informer will sync shortly

    @property
    def informers(self) -> list[Informer]:
        """Every optional informer in use."""
        return [i for i in (self.nodeunits, self.configmap_grids, self.secret_grids) if i is not None]

    def config_grids(self) -> list[tuple[str, Informer]]:
        """(child kind, informer) of the config grid kinds in use."""
        pairs = [(CONFIGMAP, self.configmap_grids), (SECRET, self.secret_grids)]
        return [(kind, informer) for kind, informer in pairs if informer is not None]

    def config_grid(self, namespace: str) -> Callable[[str, str], Obj | None]:
        """Lookup of a config grid by (child kind, name) in `namespace` (being deleted = absent)."""
        by_kind = dict(self.config_grids())

        def lookup(child_kind: str, name: str) -> Obj | None:
            informer = by_kind.get(child_kind)
            if informer is None:
                return None
            grid = informer.store.get(ObjectKey(namespace, name))
            return None if grid is None or meta(grid).get("deletionTimestamp") else grid

        return lookup


def grid_key_index(grid: Obj) -> list[str]:
    """Index function: the grid's gridUniqKey (grids without one are not indexed)."""
    key = (grid.get("spec") or {}).get("gridUniqKey")
    return [key] if key else []


def config_refs_index(grid: Obj) -> list[str]:
    """Index function: `<Kind>/<ns>/<name>` of every ConfigMap/Secret the grid's templates name."""
    spec = grid.get("spec") or {}
    namespace = meta(grid).get("namespace") or ""
    names: set[tuple[str, str]] = set()
    for template in [spec.get("template"), *(spec.get("templatePool") or {}).values()]:
        if isinstance(template, dict):
            names |= referenced_names(template)
    for rule in rules_of(spec):
        patch = rule.body.get("strategicMergePatch")
        if isinstance(patch, dict) and isinstance(patch.get("spec"), dict):
            names |= referenced_names(patch["spec"])
    return sorted(f"{kind}/{namespace}/{name}" for kind, name in names)


def nodeunit_users_index(grid: Obj) -> list[str]:
    """Index function: grids whose children depend on NodeUnit labels (selector rules, label
    placeholders, or config grids, whose data may)."""
    spec = grid.get("spec") or {}
    if grid.get("kind") in ("ConfigMapGrid", "SecretGrid"):
        return [USES_NODEUNITS] if config_uses_labels(spec) else []
    if uses_selector(rules_of(spec)) or uses_labels(spec) or config_refs_index(grid):
        return [USES_NODEUNITS]
    return []


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
        optional: OptionalInformers | None = None,
        skip: Callable[[Obj], bool] | None = None,
    ) -> None:
        self.kind = kind
        self.skip = skip  # grids another controller owns (fed grids next to the fed controller)
        self.client = client
        self.grids = grids
        self.children = children
        self.nodes = nodes
        self.optional = optional
        self.recorder = recorder
        self.expectations = expectations or Expectations()
        self.controller: Controller[ObjectKey] = Controller(kind.controller_name, self.reconcile, workers)
        # Objects holding a name a grid wants without being its children: their events wake it.
        self._conflict_owner: dict[ObjectKey, ObjectKey] = {}
        self._conflicts_of: dict[ObjectKey, list[ObjectKey]] = {}
        # child key -> (grid fingerprint, desired signature, child resourceVersion) when they matched
        self._in_sync: dict[ObjectKey, tuple[Fingerprint, str, str]] = {}
        self._wire()

    # -- handlers: events → grid keys --------------------------------------------------------------

    def _wire(self) -> None:
        self.grids.add_index(GRID_KEY_INDEX, grid_key_index)
        self.grids.add_index(CONFIG_REFS_INDEX, config_refs_index)
        self.grids.add_index(NODEUNIT_USERS_INDEX, nodeunit_users_index)
        self.children.add_index(CONTROLLER_UID_INDEX, controller_uid_index)
        self.controller.watch(self.grids, predicate=grid_changed)
        owner_keys = controller_owner_keys(self.kind.kind, self.kind.grid.group)

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
        if self.optional is not None:
            self._wire_optional(self.optional)

    def _wire_optional(self, optional: OptionalInformers) -> None:
        """NodeUnit label changes and config grid changes wake the grids that read them."""

        def nodeunit_changed(old: Obj | None, new: Obj | None) -> None:
            if old is None or new is None or labels_of(old) != labels_of(new):
                for key in self.grids.store.index_keys(NODEUNIT_USERS_INDEX, USES_NODEUNITS):
                    self.controller.enqueue(ObjectKey.parse(key))

        optional.nodeunits.add_handler(
            lambda obj: nodeunit_changed(None, obj), nodeunit_changed, lambda obj: nodeunit_changed(obj, None)
        )
        if self.kind.role != "workload":
            return
        for child_kind, informer in optional.config_grids():
            changed = self._config_grid_changed(child_kind)
            informer.add_handler(*_as_handlers(changed))

    def _config_grid_changed(self, child_kind: str) -> Callable[[Obj | None, Obj], None]:
        """Handler: a config grid changed → the grids referencing `<child_kind>/<ns>/<name>`."""

        def changed(old: Obj | None, new: Obj) -> None:
            if old is not None and not grid_changed(old, new):
                return
            ref = f"{child_kind}/{ObjectKey.from_object(new)}"
            for key in self.grids.store.index_keys(CONFIG_REFS_INDEX, ref):
                self.controller.enqueue(ObjectKey.parse(key))

        return changed

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
        if self.skip is not None and self.skip(grid):
            return await self._hand_over(key, grid)
        grid = await self._prune_unused_templates(grid)
        units = self._units(grid)
        context = await self._context(grid, units)
        if context is None:  # NodeUnits or config grids not cached yet: decide nothing on a guess
            return Result(requeue_after=UNSYNCED_RETRY)
        desired = desired_children(self.kind, grid, units, context)
        live = self._live(grid, desired)
        pending = self.expectations.pending(key)
        plan = self._plan(key, grid, desired, live, pending)
        outcome = await self._apply(key, grid, plan)
        taken = outcome.taken if self.kind.child_selector else []
        await self._update_status(grid, desired, live, plan, outcome, taken=taken)
        self._raise_if_failed(key, outcome)
        if outcome.raced or (outcome.taken and not taken):
            return Result(requeue=True)
        if taken:  # a foreign object outside our (label-filtered) cache: its deletion will not wake us
            return Result(requeue_after=TAKEN_RETRY)
        if pending:  # safety net should an echo never come (it normally wakes the grid first)
            return Result(requeue_after=max(pending.values()))
        return None

    async def _hand_over(self, key: ObjectKey, grid: Obj) -> Result | None:
        """A grid another controller owns (a fed grid next to fed): delete the children this
        cluster ran for it before, and write nothing else (its status is the other owner's)."""
        pending = self.expectations.pending(key)
        nothing = Desired()
        plan = plan_children(
            nothing, self._live(grid, nothing), meta(grid).get("uid") or "", in_flight=pending
        )
        outcome = await self._apply(key, grid, plan)
        self._raise_if_failed(key, outcome)
        if outcome.raced:
            return Result(requeue=True)
        return Result(requeue_after=max(pending.values())) if pending else None

    async def _apply(self, key: ObjectKey, grid: Obj, plan: Plan) -> Outcome:
        """Run the plan's writes (none for an empty plan), expect their echoes, report them."""
        if plan.empty:
            return Outcome()
        outcome = await apply_plan(self.client, self.kind.child, plan)
        log.info(
            "%s %s: created %d, updated %d, deleted %d, raced %d, rejected %d, failed %d",
            self.kind.kind, key, len(outcome.created), len(outcome.updated), len(outcome.deleted),
            len(outcome.raced), len(outcome.rejected), len(outcome.failed),
        )  # fmt: skip
        self.expectations.expect(key, self._unechoed(key, outcome.written))
        self._report_writes(grid, outcome)
        return outcome

    def _raise_if_failed(self, key: ObjectKey, outcome: Outcome) -> None:
        """Transient write failures: the runner retries the grid with backoff."""
        if outcome.failed:
            raise ApplyFailed(f"{self.kind.kind} {key}: {listing(sorted(outcome.failed.values()), '; ')}")

    def _unechoed(self, key: ObjectKey, written: Mapping[str, Written]) -> dict[str, Written]:
        """The writes the cache does not reflect yet (an echo may arrive while the rest of the plan
        is still being written, or be overtaken by a newer version, before it is expected)."""
        return {
            name: write
            for name, write in written.items()
            if not write.shown_by(self.children.store.get(ObjectKey(key.namespace, name)))
        }

    async def _context(self, grid: Obj, units: list[str]) -> UnitContext | None:
        """NodeUnit labels of the units and the namespace's config grids; None while not cached."""
        optional = self.optional
        if optional is None:
            return UnitContext()
        for informer in optional.informers:
            if not await optional.ready(informer):
                return None
        store = optional.nodeunits.store
        labels = {unit: labels_of(found) for unit in units if (found := store.get(unit)) is not None}
        lookup = optional.config_grid(meta(grid).get("namespace") or "")
        return UnitContext(labels, ConfigGrids(lookup))

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
            if name in desired.children
            and self._in_sync.get(ObjectKey.from_object(child))
            == (fingerprint, _signature(desired.children[name]), rv_of(child))
        ]
        plan = plan_children(desired, live, meta(grid).get("uid") or "", in_flight=pending, in_sync=in_sync)
        self._remember_in_sync(desired, live, plan, fingerprint, pending)
        self._watch_conflicts(key, plan.conflicts)
        return plan

    async def _update_status(
        self,
        grid: Obj,
        desired: Desired,
        live: Mapping[str, Obj],
        plan: Plan,
        outcome: Outcome,
        *,
        taken: list[str],
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
        conflicts = sorted({*plan.conflicts, *taken})
        problems = collect_problems(self.kind, name, desired, conflicts, failures)
        status = grid_status(
            self.kind, grid, desired, live, problems=problems, conflicts=conflicts, now=format_time()
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
        for name, want in desired.children.items():
            child = live.get(name)
            if child is not None and name not in skipped:
                self._in_sync[ObjectKey.from_object(child)] = (fingerprint, _signature(want), rv_of(child))

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


def _as_handlers(
    changed: Callable[[Obj | None, Obj], None],
) -> tuple[Callable[[Obj], None], Callable[[Obj, Obj], None], Callable[[Obj], None]]:
    """(on_add, on_update, on_delete) calling `changed(old, new)`; adds and deletes pass old=None."""

    def on_add_or_delete(obj: Obj) -> None:
        changed(None, obj)

    return on_add_or_delete, changed, on_add_or_delete


def _signature(desired_child: Obj) -> str:
    """What a desired child depends on besides its grid: its (per-unit) hash and replicas."""
    return f"{template_hash_of(desired_child)}/{(desired_child.get('spec') or {}).get('replicas')}"


def rv_of(obj: Obj) -> str:
    """resourceVersion of an object."""
    return str(meta(obj).get("resourceVersion") or "")


def _unit_of(kind: GridKind, grid: Obj, child_name: str) -> str:
    """The unit a child name belongs to (SuperEdge's TrimPrefix); the SG Service has none."""
    if not kind.per_unit:
        return GRID_WIDE
    return child_name.removeprefix(f"{meta(grid).get('name') or ''}-")
