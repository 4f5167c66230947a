"""The site manager: NodeUnit / NodeGroup controllers and the node labeller, wired to the manager.

Three work queues over shared informers:

* `site-node` (key: node name) is the only writer of nodes. It computes the node's whole desired
  state from ALL NodeUnits and NodeGroups at once (`labels.desired_node_state`) and PATCHes only
  the difference (`labels.node_patch`), so units sharing a node never fight and a converged node
  costs no write. A unit or group change enqueues only the nodes it can affect: the nodes labelled
  its members plus those its rule selects (found through a node index of label pairs).
* `site-nodeunit` (key: unit name): finalizer, status (from the nodes labelled members), the
  `Valid` / `Conflict` conditions, and one NodeJoined / NodeLeft Event per status change. A
  deleted unit keeps its finalizer until no node is labelled its member any more; the node
  labeller does the cleanup because a deleting unit wants nothing.
* `site-nodegroup` (key: group name): finalizer, `autoFindNodeKeys` unit creation, the
  `<group>: nodegroups.superedge.io` label on member units, and status with `workloadStatus`.
  Node events enqueue the groups that auto-find (SuperEdge waited for a 30 s resync).

SuperEdge bugs fixed: selector-only units get cleanup, annotations are compared to annotations,
taints are not duplicated, auto-found units are `type: edge`, node events trigger auto-find.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from servicegroup.api.labels import (
    FIELD_MANAGER_SITE,
    GRID_GROUP,
    GRID_VERSION,
    NODEGROUP_FINALIZER,
    NODEGROUP_MEMBER_VALUE,
    NODEUNIT_FINALIZER,
    SITE_GROUP,
    SITE_VERSION,
)
from servicegroup.kube.client import Client
from servicegroup.kube.clock import Clock
from servicegroup.kube.conditions import FALSE, TRUE, format_time
from servicegroup.kube.controller import Controller, Result
from servicegroup.kube.errors import AlreadyExists, Forbidden, Invalid, NotFound
from servicegroup.kube.events import NORMAL, WARNING, EventRecorder
from servicegroup.kube.informer import InformerFactory
from servicegroup.kube.objects import labels_of, meta
from servicegroup.kube.resources import NODES, Resource, crd_resource
from servicegroup.kube.setup import ManagerLike
from servicegroup.site import autofind, membership, status
from servicegroup.site.labels import (
    Owned,
    UnitEffect,
    desired_node_state,
    key_error,
    name_error,
    node_patch,
    unit_effect,
)
from servicegroup.site.membership import (
    Conflict,
    UnitIndex,
    UnitRule,
    is_deleting,
    name_of,
    units_from_labels,
)

log = logging.getLogger(__name__)

Obj = dict[str, Any]

NODEUNITS: Final = crd_resource(SITE_GROUP, SITE_VERSION, "nodeunits", "NodeUnit", namespaced=False)
NODEGROUPS: Final = crd_resource(SITE_GROUP, SITE_VERSION, "nodegroups", "NodeGroup", namespaced=False)
DEPLOYMENTGRIDS: Final = crd_resource(GRID_GROUP, GRID_VERSION, "deploymentgrids", "DeploymentGrid")
STATEFULSETGRIDS: Final = crd_resource(GRID_GROUP, GRID_VERSION, "statefulsetgrids", "StatefulSetGrid")

COMPONENT: Final = "servicegroup-site"
EVENT_INTERVAL: Final = 5.0  # seconds between two membership Events of one unit
STATUS_DELAY: Final = 1.0  # seconds: status reconciles caused by other objects are batched
MEMBER_INDEX: Final = "site-nodeunits"  # node -> units it is labelled a member of
LABEL_INDEX: Final = "site-label-pairs"  # node -> "key=value" for each label (selector candidates)


Compiled = tuple[UnitRule, UnitEffect]


@dataclass(frozen=True)
class Model:
    """Every live unit's compiled rule and effect, and group membership: rebuilt when they change.

    `compiled` is keyed by (name, resourceVersion): a rebuild after one unit changed recompiles
    only that unit, so 500 units joining a group one by one stay linear.
    """

    index: UnitIndex
    effects: Mapping[str, UnitEffect]
    group_members: Mapping[str, list[str]]
    unit_groups: Mapping[str, list[str]]
    compiled: Mapping[tuple[str, str], Compiled]


def _compile(unit: Obj, previous: Mapping[tuple[str, str], Compiled]) -> tuple[tuple[str, str], Compiled]:
    key = (name_of(unit), str(meta(unit).get("resourceVersion") or ""))
    found = previous.get(key)
    return key, found if found is not None else (membership.unit_rule(unit), unit_effect(unit))


def build_model(units: Iterable[Obj], groups: Iterable[Obj], previous: Model | None = None) -> Model:
    """Compile the model from the unit and group caches (deleting objects contribute nothing)."""
    live_units = [unit for unit in units if not is_deleting(unit)]
    compiled = dict(_compile(unit, previous.compiled if previous else {}) for unit in live_units)
    index = UnitIndex(rule for rule, _ in compiled.values())
    effects = {effect.name: effect for _, effect in compiled.values()}
    group_members = {
        name_of(group): membership.group_units(group, live_units)
        for group in groups
        if not is_deleting(group)
    }
    return Model(index, effects, group_members, membership.groups_by_unit(group_members), compiled)


class SiteController:
    """The three site controllers over one set of informers."""

    def __init__(
        self,
        client: Client,
        informers: InformerFactory,
        recorder: EventRecorder,
        workers: int = 2,
        clock: Clock | None = None,
    ) -> None:
        self.client = client
        self.recorder = recorder
        self.nodes = informers.informer(NODES)
        self.units = informers.informer(NODEUNITS)
        self.groups = informers.informer(NODEGROUPS)
        self.grids = [
            ("DeploymentGrid", informers.informer(DEPLOYMENTGRIDS)),
            ("StatefulSetGrid", informers.informer(STATEFULSETGRIDS)),
        ]
        self.nodes.add_index(MEMBER_INDEX, lambda node: units_from_labels(labels_of(node)))
        self.nodes.add_index(LABEL_INDEX, lambda node: [f"{k}={v}" for k, v in labels_of(node).items()])
        synced = [self.nodes, self.units, self.groups]
        self.node_ctl: Controller[str] = Controller(
            "site-node", self.reconcile_node, workers, informers=synced
        )
        self.unit_ctl: Controller[str] = Controller(
            "site-nodeunit", self.reconcile_unit, workers, informers=synced
        )
        self.group_ctl: Controller[str] = Controller(
            "site-nodegroup", self.reconcile_group, workers, informers=synced
        )
        self._model: Model | None = None
        self._last_model: Model | None = None
        self._announced: dict[str, tuple[set[str], float]] = {}  # unit -> (members told, when)
        self._clock = clock or Clock()
        self._wire()

    @property
    def controllers(self) -> list[Controller[str]]:
        """What the manager runs."""
        return [self.node_ctl, self.unit_ctl, self.group_ctl]

    def model(self) -> Model:
        """The current model (rebuilt lazily after a unit or group event)."""
        if self._model is None:
            self._model = build_model(self.units.store.list(), self.groups.store.list(), self._last_model)
            self._last_model = self._model
        return self._model

    # -- event handlers: enqueue only ------------------------------------------------------------

    def _wire(self) -> None:
        self.nodes.add_handler(self._node_added, self._node_updated, self._node_added)
        self.units.add_handler(self._unit_added, self._unit_updated, self._unit_added)
        self.groups.add_handler(self._group_added, self._group_updated, self._group_added)
        for _, informer in self.grids:
            # Grids are optional: never wait for their sync, so a cluster without grid CRDs works.
            informer.add_handler(self._grid_event, self._grid_event, self._grid_event)

    def _node_added(self, node: Obj) -> None:
        self.node_ctl.enqueue(name_of(node))
        self._node_units_changed(node)
        self._enqueue_auto_find_groups([node])

    def _node_updated(self, old: Obj, new: Obj) -> None:
        resync = old is new
        if resync or meta(old).get("labels") != meta(new).get("labels") or _node_spec_changed(old, new):
            self.node_ctl.enqueue(name_of(new))
        if resync or units_from_labels(labels_of(old)) != units_from_labels(labels_of(new)):
            self._node_units_changed(old)
            self._node_units_changed(new)
        elif status.node_ready(old) != status.node_ready(new):
            for unit in units_from_labels(labels_of(new)):
                self.unit_ctl.enqueue_after(unit, STATUS_DELAY)
        if resync or labels_of(old) != labels_of(new):
            self._enqueue_auto_find_groups([old, new])

    def _node_units_changed(self, node: Obj) -> None:
        """Membership moved: the units' status and their groups' conflicts change."""
        model = self.model()
        for unit in units_from_labels(labels_of(node)):
            self.unit_ctl.enqueue_after(unit, STATUS_DELAY)
            for group in model.unit_groups.get(unit, ()):
                self.group_ctl.enqueue_after(group, STATUS_DELAY)

    def _enqueue_auto_find_groups(self, nodes: list[Obj]) -> None:
        for group in self.groups.store.list():
            keys = (group.get("spec") or {}).get("autoFindNodeKeys") or []
            if keys and any(all(k in labels_of(node) for k in keys) for node in nodes):
                self.group_ctl.enqueue_after(name_of(group), STATUS_DELAY)

    def _unit_added(self, unit: Obj) -> None:
        self._model = None
        self.unit_ctl.enqueue(name_of(unit))
        self._enqueue_nodes_of([unit])
        self._enqueue_groups_later()

    def _unit_updated(self, old: Obj, new: Obj) -> None:
        if old is new or _shape_changed(old, new):
            self.unit_ctl.enqueue(name_of(new))
            self._model = None
            self._enqueue_nodes_of([old, new])
            self._enqueue_groups_later()
        else:  # status or finalizers, mostly our own writes: re-check, but batched
            self.unit_ctl.enqueue_after(name_of(new), STATUS_DELAY)

    def _group_added(self, group: Obj) -> None:
        self._group_changed(group, group)

    def _group_updated(self, old: Obj, new: Obj) -> None:
        if old is new or _shape_changed(old, new):
            self._group_changed(old, new)
        else:
            self.group_ctl.enqueue(name_of(new))

    def _group_changed(self, old: Obj, new: Obj) -> None:
        """The group's units (before and after) get new group labels and conflict conditions."""
        self.group_ctl.enqueue(name_of(new))
        self._model = None
        units = self.units.store
        names = {*membership.group_units(old, units.list()), *membership.group_units(new, units.list())}
        self._enqueue_nodes_of([unit for name in sorted(names) if (unit := units.get(name)) is not None])
        for name in sorted(names):
            self.unit_ctl.enqueue(name)

    def _enqueue_nodes_of(self, units: Iterable[Obj]) -> None:
        """Enqueue the nodes a unit change can affect: members now, and members by its rule."""
        store = self.nodes.store
        for unit in units:
            for key in store.index_keys(MEMBER_INDEX, name_of(unit)):
                self.node_ctl.enqueue(key)
            rule = membership.unit_rule(unit)
            candidates: Iterable[str] = [n for n in rule.nodes if n in store]
            if rule.selector is not None:
                match_labels = rule.selector.get("matchLabels") or {}
                if match_labels:
                    key, value = min(match_labels.items())
                    candidates = [*candidates, *store.index_keys(LABEL_INDEX, f"{key}={value}")]
                else:
                    candidates = store.keys()
            for name in candidates:
                node = store.get(name)
                if node is not None and membership.rule_selects(rule, name, labels_of(node)):
                    self.node_ctl.enqueue(name)

    def _grid_event(self, *grids: Obj) -> None:
        for grid in grids:
            key = (grid.get("spec") or {}).get("gridUniqKey")
            if key and key in self.groups.store:
                self.group_ctl.enqueue_after(key, STATUS_DELAY)

    def _enqueue_groups_later(self) -> None:
        """Any unit change may move it in or out of a group (selectors over unit labels)."""
        for key in self.groups.store:
            self.group_ctl.enqueue_after(key, STATUS_DELAY)

    # -- nodes -----------------------------------------------------------------------------------

    async def reconcile_node(self, name: str) -> Result | None:
        """Bring one node's labels, annotations, taints and cordon to what all units want."""
        node = self.nodes.store.get(name)
        if node is None:
            return None
        model = self.model()
        units = model.index.units_of(name, labels_of(node))
        assignment, _ = membership.group_assignment(name, units, model.unit_groups)
        desired = desired_node_state([model.effects[u] for u in units], assignment)
        patch = node_patch(node, desired)
        if patch is None:
            return None
        try:
            await self.client.patch(NODES, name, patch)
        except Invalid as err:
            self.recorder.event(node, WARNING, "SiteLabelsRejected", f"node patch rejected: {err.message}")
            raise
        except Forbidden as err:
            # RBAC denial will not heal by retrying alone: name it where operators look, on the
            # node and on every unit that wants the change; the queue keeps backing off.
            message = f"node {name} patch forbidden (403), check the manager's RBAC: {err.message}"
            for target in [node, *(self.units.store.get(u) for u in units)]:
                if target is not None:
                    self.recorder.event(target, WARNING, "SiteLabelsForbidden", message)
            raise
        log.debug("node %s patched", name)
        return None

    # -- NodeUnits -------------------------------------------------------------------------------

    async def reconcile_unit(self, name: str) -> Result | None:
        """Finalizer, then status and conditions of one NodeUnit."""
        unit = self.units.store.get(name)
        if unit is None:
            self._announced.pop(name, None)
            return None
        if is_deleting(unit):
            # Wait for the labeller to take our membership label off every node (a label someone
            # else set is not ours to remove, so it does not hold the unit).
            nodes = self.nodes.store.by_index(MEMBER_INDEX, name)
            if not any(name in Owned.of(node).labels for node in nodes):
                await self._remove_finalizer(NODEUNITS, unit, NODEUNIT_FINALIZER)
            return None
        await self._ensure_finalizer(NODEUNITS, unit, NODEUNIT_FINALIZER)
        members = self.nodes.store.by_index(MEMBER_INDEX, name)
        model = self.model()
        rule, effect = model.index.rules.get(name), model.effects.get(name)
        errors = [*([rule.error] if rule and rule.error else []), *(effect.errors if effect else ())]
        conflicts = self._conflicts(members, model)
        conditions = status.common_conditions(
            unit, errors, status.lost_message(name, conflicts), format_time()
        )
        desired = status.unit_status(members, conditions)
        await self._write_status(NODEUNITS, unit, desired, status.UNIT_FIELDS)
        return self._announce(unit, status.status_members(desired))

    def _announce(self, unit: Obj, members: set[str]) -> Result | None:
        """NodeJoined / NodeLeft Events, at most one of each per unit per EVENT_INTERVAL.

        Bulk labelling makes a unit's membership grow in many small steps; an Event per step
        would flood the recorder. Changes inside the interval are summed up in the next Event.
        The baseline after a restart is the recorded status, so nothing is announced twice.
        """
        name = name_of(unit)
        announced = self._announced.get(name)
        if announced is None:
            announced = self._announced[name] = (
                status.status_members(unit.get("status") or {}),
                -EVENT_INTERVAL,
            )
        before, last = announced
        if members == before:
            return None
        wait = last + EVENT_INTERVAL - self._clock.now()
        if wait > 0:
            return Result(requeue_after=wait)
        self._announced[name] = (members, self._clock.now())
        if joined := sorted(members - before):
            self.recorder.event(unit, NORMAL, "NodeJoined", status.nodes_message("joined", name, joined))
        if left := sorted(before - members):
            self.recorder.event(unit, NORMAL, "NodeLeft", status.nodes_message("left", name, left))
        return None

    def _conflicts(self, nodes: Iterable[Obj], model: Model) -> list[Conflict]:
        """Group conflicts on these nodes, from their membership labels."""
        found: set[Conflict] = set()
        for node in nodes:
            units = units_from_labels(labels_of(node))
            found.update(membership.group_assignment(name_of(node), units, model.unit_groups)[1])
        return sorted(found)

    # -- NodeGroups ------------------------------------------------------------------------------

    async def reconcile_group(self, name: str) -> Result | None:
        """Finalizer, auto-found units, member-unit labels and status of one NodeGroup."""
        group = self.groups.store.get(name)
        if group is None:
            return None
        if is_deleting(group):
            for unit in self.units.store.list():
                if labels_of(unit).get(name) == NODEGROUP_MEMBER_VALUE:
                    await self._label_unit(unit, name, None)
            await self._remove_finalizer(NODEGROUPS, group, NODEGROUP_FINALIZER)
            return None
        await self._ensure_finalizer(NODEGROUPS, group, NODEGROUP_FINALIZER)
        errors = [e for e in (membership.group_selector_error(group), key_error(name)) if e]
        errors += await self._auto_find(group)
        members = membership.group_units(group, self.units.store.list())
        for unit in self.units.store.list():
            labelled = labels_of(unit).get(name) == NODEGROUP_MEMBER_VALUE
            wanted = name_of(unit) in members
            if wanted != labelled:
                await self._label_unit(unit, name, NODEGROUP_MEMBER_VALUE if wanted else None)
        unit_nodes = {unit: self.nodes.store.index_keys(MEMBER_INDEX, unit) for unit in members}
        conflicts = membership.group_conflicts(name, unit_nodes)
        conditions = status.common_conditions(
            group, errors, status.group_conflict_message(conflicts), format_time()
        )
        grids = [(kind, grid) for kind, informer in self.grids for grid in informer.store.list()]
        desired = status.group_status(members, status.workload_status(name, members, grids), conditions)
        await self._write_status(NODEGROUPS, group, desired, status.GROUP_FIELDS)
        return None

    async def _auto_find(self, group: Obj) -> list[str]:
        """Create or correct the group's auto-found units; returns the names that cannot be units."""
        keys = (group.get("spec") or {}).get("autoFindNodeKeys") or []
        if not keys:
            return []
        errors = []
        for unit_name, selector in sorted(autofind.auto_selectors(keys, self.nodes.store.list()).items()):
            if err := name_error(unit_name):
                errors.append(f"autoFindNodeKeys: {err}")
                continue
            desired = autofind.auto_unit(name_of(group), keys, unit_name, selector)
            live = self.units.store.get(unit_name)
            if live is None:
                try:
                    await self.client.create(NODEUNITS, desired)
                except AlreadyExists:
                    continue  # our cache is behind; its add event brings us back
                self.recorder.event(
                    group, NORMAL, "NodeUnitCreated", f"created NodeUnit {unit_name} for {selector}"
                )
            elif patch := autofind.auto_unit_patch(live, desired):
                await self.client.patch(NODEUNITS, unit_name, patch)
        return errors

    async def _label_unit(self, unit: Obj, key: str, value: str | None) -> None:
        with contextlib.suppress(NotFound):  # gone meanwhile: nothing left to label
            await self.client.patch(NODEUNITS, name_of(unit), {"metadata": {"labels": {key: value}}})

    # -- shared writes ---------------------------------------------------------------------------

    async def _ensure_finalizer(self, res: Resource, obj: Obj, finalizer: str) -> None:
        finalizers = list(meta(obj).get("finalizers") or [])
        if finalizer not in finalizers:
            patch = {"metadata": {"finalizers": [*finalizers, finalizer], "resourceVersion": _rv(obj)}}
            await self.client.patch(res, name_of(obj), patch)

    async def _remove_finalizer(self, res: Resource, obj: Obj, finalizer: str) -> None:
        finalizers = list(meta(obj).get("finalizers") or [])
        if finalizer in finalizers:
            rest = [f for f in finalizers if f != finalizer]
            with contextlib.suppress(NotFound):
                await self.client.patch(
                    res, name_of(obj), {"metadata": {"finalizers": rest, "resourceVersion": _rv(obj)}}
                )

    async def _write_status(self, res: Resource, obj: Obj, desired: Obj, fields: tuple[str, ...]) -> None:
        patch = status.status_patch(obj, desired, fields)
        if patch is None:
            return
        await self.client.patch(res, name_of(obj), patch, subresource="status")
        kind = obj.get("kind", "")
        if status.condition_turned(obj, desired, status.CONFLICT, TRUE):
            message = next(c["message"] for c in desired["conditions"] if c["type"] == status.CONFLICT)
            self.recorder.event(obj, WARNING, "NodeConflict", message)
        if status.condition_turned(obj, desired, status.VALID, FALSE):
            message = next(c["message"] for c in desired["conditions"] if c["type"] == status.VALID)
            self.recorder.event(obj, WARNING, "InvalidSpec", f"{kind} {name_of(obj)}: {message}")


def _rv(obj: Obj) -> str:
    return str(meta(obj).get("resourceVersion") or "")


def _node_spec_changed(old: Obj, new: Obj) -> bool:
    """Changes the labeller cares about besides labels: annotations, taints, cordon."""
    return (
        meta(old).get("annotations") != meta(new).get("annotations")
        or (old.get("spec") or {}).get("taints") != (new.get("spec") or {}).get("taints")
        or (old.get("spec") or {}).get("unschedulable") != (new.get("spec") or {}).get("unschedulable")
    )


def _shape_changed(old: Obj, new: Obj) -> bool:
    """A unit or group change that can move labels: spec, labels or deletion (not status)."""
    return (
        old.get("spec") != new.get("spec")
        or labels_of(old) != labels_of(new)
        or meta(old).get("deletionTimestamp") != meta(new).get("deletionTimestamp")
    )


def setup(mgr: ManagerLike) -> None:
    """Register the site controllers with the manager (`servicegroup manager --controllers site`)."""
    site = SiteController(
        mgr.client.with_field_manager(FIELD_MANAGER_SITE), mgr.informers, mgr.recorder(COMPONENT), mgr.workers
    )
    for controller in site.controllers:
        mgr.add_controller(controller)
