"""Wiring of the fed controller: member Secrets → member connections, control grids → member copies.

Two work queues. `fed-member-controller` (key: Secret name) keeps one `MemberCluster` per valid
member Secret: a client, informers on the member's Nodes and on this control cluster's copies, and
a reachability probe; it is torn down when the Secret goes. `fed-grid-controller` (key: `GridRef`)
reconciles one control grid: read → holdings (units per member, from the member's Nodes) →
desired copies → plan → apply (the only writes to members) → aggregated status (one write, only
when it changed). Everything is level-triggered: a member that returns, a relabelled node, a hand
edit of a copy or a copy's new status simply enqueue the control grid again. Unreachable members
are never written to and their last known state is kept; nothing is deleted because of an outage.

This is the only module of `fed/` that does I/O.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import tempfile
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import orjson
import yaml

from servicegroup.api.labels import DIS_LABEL, FIELD_MANAGER_FED, is_fed
from servicegroup.fed import reasons
from servicegroup.fed.aggregate import Federation, aggregate_status
from servicegroup.fed.distribute import (
    DIS_VALUE,
    FED_BY_KIND,
    FED_KINDS,
    CopyPlan,
    FedKind,
    desired_copies,
    grid_key,
    held_units,
    is_copy_of,
    plan_copies,
)
from servicegroup.fed.members import (
    DEFAULT_CONTROL_NAME,
    DEFAULT_NAMESPACE,
    FED_FINALIZER,
    MEMBER_SELECTOR,
    BadMember,
    Member,
    parse_member,
)
from servicegroup.grid.controller import (
    GRID_KEY_INDEX,
    NODE_LABEL_KEYS_INDEX,
    changed_label_keys,
    grid_changed,
    grid_key_index,
)
from servicegroup.grid.desired import Problem
from servicegroup.grid.status import listing
from servicegroup.kube.client import Client
from servicegroup.kube.conditions import FALSE, format_time, get_condition
from servicegroup.kube.controller import Controller, Result
from servicegroup.kube.errors import AlreadyExists, ApiError, BadRequest, Conflict, Invalid, NotFound
from servicegroup.kube.events import NORMAL, WARNING, EventRecorder
from servicegroup.kube.informer import Informer, InformerFactory
from servicegroup.kube.objects import ObjectKey, meta
from servicegroup.kube.resources import NAMESPACES, NODES, SECRETS
from servicegroup.kube.setup import ManagerLike
from servicegroup.kube.store import label_keys_index

log = logging.getLogger(__name__)

Obj = dict[str, Any]

GRID_CONTROLLER: Final = "fed-grid-controller"
MEMBER_CONTROLLER: Final = "fed-member-controller"
COMPONENT: Final = "servicegroup-fed"
ENV_NAMESPACE: Final = "SERVICEGROUP_FED_NAMESPACE"
ENV_CONTROL_NAME: Final = "SERVICEGROUP_CLUSTER_NAME"
ENV_PROBE_SECONDS: Final = "SERVICEGROUP_FED_PROBE_SECONDS"
DEFAULT_PROBE_SECONDS: Final = 10.0


@dataclass(frozen=True, order=True)
class GridRef:
    """A control grid on the work queue."""

    kind: str
    namespace: str
    name: str

    @property
    def key(self) -> ObjectKey:
        """Its store key."""
        return ObjectKey(self.namespace, self.name)

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"


def setup(mgr: ManagerLike) -> None:
    """Register the fed controllers (settings from SERVICEGROUP_FED_NAMESPACE, _CLUSTER_NAME, ...)."""
    namespace = os.environ.get(ENV_NAMESPACE) or DEFAULT_NAMESPACE
    probe = os.environ.get(ENV_PROBE_SECONDS) or str(DEFAULT_PROBE_SECONDS)
    try:
        probe_interval = float(probe)
    except ValueError:
        probe_interval = 0.0
    if not probe_interval > 0:  # a bad setting is a one-line error, as any bad flag
        raise SystemExit(
            f"servicegroup manager: error: {ENV_PROBE_SECONDS} must be a positive number, not {probe!r}"
        )
    fed = FedController(
        client=mgr.client.with_field_manager(FIELD_MANAGER_FED),
        grids={kind.kind: mgr.informers.informer(kind.resource) for kind in FED_KINDS},
        secrets=mgr.informers.informer(SECRETS, namespace, label_selector=MEMBER_SELECTOR),
        recorder=mgr.recorder(COMPONENT),
        control_name=os.environ.get(ENV_CONTROL_NAME) or DEFAULT_CONTROL_NAME,
        probe_interval=probe_interval,
        workers=mgr.workers,
    )
    mgr.add_controller(fed.members_controller)
    mgr.add_controller(fed.controller)


# -- one member cluster ---------------------------------------------------------------------------


async def connect(member: Member) -> Client:
    """A client for `member` from its kubeconfig (kubernetes_asyncio reads it from a private file)."""
    config = {**member.kubeconfig, "current-context": member.context}
    with tempfile.TemporaryDirectory(prefix="servicegroup-fed-") as directory:
        path = Path(directory) / "kubeconfig"
        path.write_text(yaml.safe_dump(config))
        path.chmod(0o600)
        return await Client.from_kubeconfig(str(path), field_manager=FIELD_MANAGER_FED)


class MemberCluster:
    """A connected member: its client, informers (Nodes, our copies) and reachability."""

    def __init__(self, member: Member, client: Client, *, probe_interval: float) -> None:
        self.member = member
        self.client = client
        self.probe_interval = probe_interval
        self.informers = InformerFactory(client)
        self.nodes = self.informers.informer(NODES)
        self.nodes.add_index(NODE_LABEL_KEYS_INDEX, label_keys_index)
        self.copies: dict[str, Informer] = {
            kind.kind: self.informers.informer(kind.resource, label_selector=f"{DIS_LABEL}={DIS_VALUE}")
            for kind in FED_KINDS
        }
        self.reachable = False
        self._probe_client = client.with_field_manager(FIELD_MANAGER_FED)
        self._probe_client.read_retries = 0
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def name(self) -> str:
        """The member's name (its Secret's name)."""
        return self.member.name

    @property
    def synced(self) -> bool:
        """Nodes and the required kinds' copies listed once: holdings and copies are known (maybe
        stale if unreachable). Optional kinds are checked one by one (`has_kind`)."""
        return self.nodes.has_synced and all(
            self.copies[kind.kind].has_synced for kind in FED_KINDS if not kind.optional
        )

    def has_kind(self, kind: FedKind) -> bool:
        """Copies of `kind` are known here (false while an optional kind's CRD is not installed)."""
        return self.synced and self.copies[kind.kind].has_synced

    @property
    def available(self) -> bool:
        """Known and answering: safe to plan writes for."""
        return self.synced and self.reachable

    def held_units(self, key: str) -> list[str]:
        """Units of gridUniqKey `key` this member's Nodes hold."""
        return held_units(self.nodes.store.by_index(NODE_LABEL_KEYS_INDEX, key), key) if key else []

    def copy_of(self, ref: GridRef) -> Obj | None:
        """The member grid named like `ref` carrying the dis label (ours or another control's)."""
        return self.copies[ref.kind].store.get(ref.key)

    def start(self, on_change: Callable[[], None]) -> None:
        """Start informers and the probe; `on_change()` runs when sync or reachability changes."""
        self.informers.start()
        self._tasks = [
            asyncio.create_task(self._notify_synced(on_change), name=f"fed {self.name} sync"),
            asyncio.create_task(self._probe_loop(on_change), name=f"fed {self.name} probe"),
        ]

    async def stop(self) -> None:
        """Stop everything and close the connection pool (nothing in the member is touched)."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.informers.stop()
        await self.client.close()

    async def _notify_synced(self, on_change: Callable[[], None]) -> None:
        """Wake every grid when the member becomes known, and again as each optional kind syncs."""
        required = [self.nodes, *(self.copies[k.kind] for k in FED_KINDS if not k.optional)]
        await asyncio.gather(*(informer.wait_synced() for informer in required))
        on_change()
        optional = [self.copies[k.kind] for k in FED_KINDS if k.optional]
        for synced in asyncio.as_completed([informer.wait_synced() for informer in optional]):
            await synced
            on_change()

    async def _probe_loop(self, on_change: Callable[[], None]) -> None:
        while True:
            reachable = await self.probe()
            if reachable != self.reachable:
                self.reachable = reachable
                log.log(
                    logging.INFO if reachable else logging.WARNING,
                    "member %s is %s",
                    self.name,
                    "reachable" if reachable else "unreachable",
                )
                on_change()
            await asyncio.sleep(self.probe_interval)

    async def probe(self) -> bool:
        """One cheap read with no retries, bounded by the probe interval."""
        try:
            async with asyncio.timeout(max(self.probe_interval, 1.0)):
                await self._probe_client.list(NODES, limit=1)
        except (ApiError, TimeoutError, OSError):
            return False
        return True


# -- the controller -------------------------------------------------------------------------------


@dataclass
class Applied:
    """What happened to a CopyPlan's writes, by member."""

    created: list[str] = field(default_factory=list)
    updated: dict[str, str] = field(default_factory=dict)  # member -> our resourceVersion
    deleted: list[str] = field(default_factory=list)
    raced: list[str] = field(default_factory=list)
    problems: dict[str, Problem] = field(default_factory=dict)  # never succeeds as is
    failed: dict[str, str] = field(default_factory=dict)  # transient: retry with backoff


class _MemberController(Controller[str]):
    """The member-Secret controller; stopping it also disconnects every member."""

    def __init__(self, fed: FedController, workers: int) -> None:
        super().__init__(MEMBER_CONTROLLER, fed.reconcile_member, workers)
        self._fed = fed
        self._disconnecting: asyncio.Task[None] | None = None

    async def stop(self, drain_timeout: float | None = 10.0) -> None:
        await super().stop(drain_timeout)
        await self._fed.disconnect_all()

    def abort(self) -> None:
        super().abort()
        self._disconnecting = asyncio.get_running_loop().create_task(self._fed.disconnect_all())


class FedController:
    """Distributes fed grids of the control cluster to the member clusters holding their units."""

    def __init__(
        self,
        *,
        client: Client,
        grids: Mapping[str, Informer],
        secrets: Informer,
        recorder: EventRecorder,
        control_name: str = DEFAULT_CONTROL_NAME,
        probe_interval: float = DEFAULT_PROBE_SECONDS,
        workers: int = 2,
    ) -> None:
        self.client = client
        self.grids = dict(grids)
        self.secrets = secrets
        self.recorder = recorder
        self.control_name = control_name
        self.probe_interval = probe_interval
        self.members: dict[str, MemberCluster] = {}
        self.controller: Controller[GridRef] = Controller(GRID_CONTROLLER, self.reconcile, workers)
        self.members_controller = _MemberController(self, 1)
        # (grid, member) -> (grid fingerprint, copy resourceVersion) at which the copy was current
        self._in_sync: dict[tuple[GridRef, str], tuple[bytes, str]] = {}
        # (grid, member) -> (grid fingerprint, why its copy was refused): not retried until either moves
        self._rejected: dict[tuple[GridRef, str], tuple[bytes, Problem]] = {}
        # grid -> (resourceVersion our status write produced, the status we wrote)
        self._status_written: dict[GridRef, tuple[str, Obj]] = {}
        self._wire()

    # -- handlers ----------------------------------------------------------------------------------

    def _wire(self) -> None:
        for kind_name, informer in self.grids.items():
            informer.add_index(GRID_KEY_INDEX, grid_key_index)
            self.controller.watch(
                informer, functools.partial(self._refs_of, kind_name), predicate=grid_changed
            )
            if FED_BY_KIND[kind_name].optional:  # its CRD may be missing: never wait for it
                self.controller.informers.remove(informer)
        self.members_controller.watch(self.secrets, lambda obj: [meta(obj).get("name") or ""])

    def _refs_of(self, kind: str, grid: Obj) -> list[GridRef]:
        """The control grid's ref when it is (or was, by our finalizer) ours to distribute."""
        if not is_fed(grid) and FED_FINALIZER not in (meta(grid).get("finalizers") or []):
            return []
        grid_meta = meta(grid)
        return [GridRef(kind, grid_meta.get("namespace") or "", grid_meta.get("name") or "")]

    def enqueue_all(self) -> None:
        """Every control grid we distribute (members appeared, vanished, synced or changed health)."""
        for kind, informer in self.grids.items():
            for grid in informer.store.list():
                for ref in self._refs_of(kind, grid):
                    self.controller.enqueue(ref)

    def _watch_member(self, cluster: MemberCluster) -> None:
        def node_changed(old: Obj | None, new: Obj | None) -> None:
            for label in changed_label_keys(old, new):
                for kind, informer in self.grids.items():
                    for key in informer.store.index_keys(GRID_KEY_INDEX, label):
                        grid = informer.store.get(key)
                        for ref in self._refs_of(kind, grid) if grid is not None else []:
                            self.controller.enqueue(ref)

        cluster.nodes.add_handler(
            lambda node: node_changed(None, node),
            node_changed,
            lambda node: node_changed(node, None),
        )
        for kind, informer in cluster.copies.items():

            def copy_changed(obj: Obj, kind: str = kind) -> None:
                self.controller.enqueue(GridRef(kind, meta(obj).get("namespace") or "", meta(obj)["name"]))

            def copy_updated(old: Obj, new: Obj, changed: Any = copy_changed) -> None:
                if meta(old).get("resourceVersion") != meta(new).get("resourceVersion"):
                    changed(new)

            informer.add_handler(copy_changed, copy_updated, copy_changed)

    # -- members -----------------------------------------------------------------------------------

    async def reconcile_member(self, name: str) -> Result | None:
        """Connect, reconnect (kubeconfig edited) or disconnect the member a Secret registers."""
        secret = self.secrets.store.get(ObjectKey(self.secrets.namespace or "", name))
        current = self.members.get(name)
        member: Member | None = None
        if secret is not None:
            try:
                member = parse_member(secret)
            except BadMember as err:
                self.recorder.event(secret, WARNING, reasons.INVALID_MEMBER, str(err))
        if current is not None and member is not None and current.member.digest == member.digest:
            return None
        if current is not None:
            await self.disconnect(name)
        if member is not None and secret is not None:
            await self._connect(secret, member)
        return None

    async def _connect(self, secret: Obj, member: Member) -> None:
        try:
            client = await connect(member)
        except Exception as err:  # kubernetes_asyncio raises several types for unusable configs
            message = f"cannot use the kubeconfig: {str(err).strip().splitlines()[0] if str(err) else err!r}"
            self.recorder.event(secret, WARNING, reasons.INVALID_MEMBER, message)
            return
        cluster = MemberCluster(member, client, probe_interval=self.probe_interval)
        self._watch_member(cluster)
        self.members[member.name] = cluster
        cluster.start(self.enqueue_all)
        self.recorder.event(secret, NORMAL, reasons.MEMBER_CONNECTED, f"Watching member {member.server}")
        log.info("member %s registered (%s)", member.name, member.server)

    async def disconnect(self, name: str) -> None:
        """Forget a member: its copies stay and keep running there (edge autonomy)."""
        cluster = self.members.pop(name, None)
        if cluster is None:
            return
        for memo in (self._in_sync, self._rejected):
            for key in [key for key in memo if key[1] == name]:
                del memo[key]
        await cluster.stop()
        self.enqueue_all()
        log.info("member %s disconnected", name)

    async def disconnect_all(self) -> None:
        """Disconnect every member (manager shutdown)."""
        for name in list(self.members):
            await self.disconnect(name)

    # -- reconcile ---------------------------------------------------------------------------------

    async def reconcile(self, ref: GridRef) -> Result | None:
        """holdings → desired copies → plan → apply → aggregated status, for one control grid."""
        kind = FED_BY_KIND[ref.kind]
        grid = self.grids[ref.kind].store.get(ref.key)
        if grid is None:
            self._forget(ref)
            return None
        grid_meta = meta(grid)
        if grid_meta.get("deletionTimestamp") or not is_fed(grid):
            if FED_FINALIZER not in (grid_meta.get("finalizers") or []):
                return None
            return await self._withdraw(kind, ref, grid)
        if FED_FINALIZER not in (grid_meta.get("finalizers") or []):
            grid = await self._set_finalizers(
                kind, grid, [*(grid_meta.get("finalizers") or []), FED_FINALIZER]
            )
        return await self._distribute(kind, ref, grid)

    async def _distribute(self, kind: FedKind, ref: GridRef, grid: Obj) -> Result | None:
        key = grid_key(grid)
        known = [cluster for cluster in self.members.values() if cluster.synced]
        holdings = {cluster.name: cluster.held_units(key) for cluster in known}
        live, foreign = self._live_copies(kind, ref)
        desired = desired_copies(grid, holdings, self.control_name)
        for member in foreign:
            desired.pop(member, None)
        fingerprint = _fingerprint(grid)
        in_sync = [m for m, copy in live.items() if self._in_sync.get((ref, m)) == (fingerprint, _rv(copy))]
        refused = self._refused(ref, fingerprint, desired)
        for cluster in known:
            if cluster.available and not cluster.has_kind(kind) and holdings[cluster.name]:
                message = f"{kind.kind} is not served there (CRD missing?)"
                refused[cluster.name] = Problem(reasons.KIND_NOT_INSTALLED, message)
        available = [
            cluster.name
            for cluster in known
            if cluster.available and cluster.has_kind(kind) and cluster.name not in refused
        ]
        plan = plan_copies(desired, live, reachable=available, in_sync=in_sync)
        applied = await self._apply(kind, ref, plan, live)
        self._remember(ref, fingerprint=fingerprint, desired=desired, live=live, plan=plan, applied=applied)
        for member, problem in applied.problems.items():
            if problem.reason in (reasons.COPY_REJECTED, reasons.KIND_NOT_INSTALLED):
                self._rejected[(ref, member)] = (fingerprint, problem)
        problems = {
            **refused,
            **{m: Problem(reasons.COPY_NOT_OWNED, msg) for m, msg in foreign.items()},
            **applied.problems,
        }
        unreachable = sorted(name for name, cluster in self.members.items() if not cluster.available)
        stale = [m for m in desired if m in unreachable and not self._current(ref, m, fingerprint, live)]
        pending = sorted({*plan.create, *plan.update, *applied.failed, *applied.raced, *stale})
        fed = Federation(holdings, live, unreachable, pending, problems)
        status = aggregate_status(kind, grid, fed, now=format_time())
        self._report(grid, applied, status)
        await self._write_status(kind, ref, grid, status)
        if applied.failed:
            raise ApplyFailed(f"{ref}: {listing([f'{m}: {e}' for m, e in sorted(applied.failed.items())])}")
        if applied.raced:
            return Result(requeue=True)
        return None

    def _refused(self, ref: GridRef, fingerprint: bytes, desired: Mapping[str, Obj]) -> dict[str, Problem]:
        """Members whose copy of this very grid version was refused (422, not served, not ours)."""
        refused: dict[str, Problem] = {}
        for member in desired:
            memo = self._rejected.get((ref, member))
            if memo is not None and memo[0] == fingerprint:
                refused[member] = memo[1]
            elif memo is not None:
                del self._rejected[(ref, member)]
        return refused

    def _live_copies(self, kind: FedKind, ref: GridRef) -> tuple[dict[str, Obj], dict[str, str]]:
        """member -> our copy; member -> why the object holding the name is not ours to touch."""
        live: dict[str, Obj] = {}
        foreign: dict[str, str] = {}
        for name, cluster in sorted(self.members.items()):
            copy = cluster.copy_of(ref) if cluster.has_kind(kind) else None
            if copy is None:
                continue
            if is_copy_of(copy, self.control_name):
                live[name] = copy
            else:
                foreign[name] = (
                    f"{ref.kind} {ref.namespace}/{ref.name} there belongs to another control cluster"
                )
        return live, foreign

    def _current(self, ref: GridRef, member: str, fingerprint: bytes, live: Mapping[str, Obj]) -> bool:
        copy = live.get(member)
        return copy is not None and self._in_sync.get((ref, member)) == (fingerprint, _rv(copy))

    def _remember(
        self,
        ref: GridRef,
        *,
        fingerprint: bytes,
        desired: Mapping[str, Obj],
        live: Mapping[str, Obj],
        plan: CopyPlan,
        applied: Applied,
    ) -> None:
        """Copies found or written equal to desired: skip comparing them until either side moves."""
        for member in desired:
            if member in applied.updated:
                self._in_sync[(ref, member)] = (fingerprint, applied.updated[member])
            elif member in live and member not in plan.update and self.members[member].available:
                self._in_sync[(ref, member)] = (fingerprint, _rv(live[member]))
        for member in [*plan.delete, *(m for m in self.members if m not in desired)]:
            self._in_sync.pop((ref, member), None)

    async def _withdraw(self, kind: FedKind, ref: GridRef, grid: Obj) -> Result | None:
        """The grid is deleted or no longer fed: remove every copy, then our finalizer."""
        live, _ = self._live_copies(kind, ref)
        reachable = [name for name, cluster in self.members.items() if cluster.available]
        plan = plan_copies({}, live, reachable=reachable)
        applied = await self._apply(kind, ref, plan, live)
        self._report(grid, applied, None)
        waiting = sorted(
            {*applied.failed, *applied.raced, *(m for m in self.members if m not in reachable), *plan.delete}
            - set(applied.deleted)
        )
        if waiting:
            message = f"waiting to remove copies from unreachable members: {listing(waiting)}"
            self.recorder.event(grid, WARNING, reasons.MEMBERS_UNREACHABLE, message)
            return Result(requeue_after=self.probe_interval)
        finalizers = [f for f in meta(grid).get("finalizers") or [] if f != FED_FINALIZER]
        await self._set_finalizers(kind, grid, finalizers)
        self._forget(ref)
        return None

    async def _set_finalizers(self, kind: FedKind, grid: Obj, finalizers: Sequence[str]) -> Obj:
        grid_meta = meta(grid)
        patch = {
            "metadata": {"finalizers": list(finalizers), "resourceVersion": grid_meta["resourceVersion"]}
        }
        return await self.client.patch(
            kind.resource, grid_meta["name"], patch, namespace=grid_meta["namespace"]
        )

    def _forget(self, ref: GridRef) -> None:
        self._status_written.pop(ref, None)
        for memo in (self._in_sync, self._rejected):
            for key in [key for key in memo if key[0] == ref]:
                del memo[key]

    # -- apply ---------------------------------------------------------------------------------------

    async def _apply(self, kind: FedKind, ref: GridRef, plan: CopyPlan, live: Mapping[str, Obj]) -> Applied:
        """Every write of the plan, members in parallel (an empty plan makes no call)."""
        applied = Applied()
        if plan.empty:
            return applied
        writes = [self._create(kind, m, obj, applied) for m, obj in plan.create.items()]
        writes += [self._update(kind, m, obj, applied) for m, obj in plan.update.items()]
        writes += [self._delete(kind, ref, m, live[m], applied) for m in plan.delete]
        await asyncio.gather(*writes)
        return applied

    async def _create(self, kind: FedKind, member: str, obj: Obj, applied: Applied) -> None:
        client = self.members[member].client
        async with _outcome(member, applied):
            try:
                await client.create(kind.resource, obj)
            except AlreadyExists:  # our own copy the member cache has not shown yet, or someone else's
                found = await client.get(kind.resource, meta(obj)["name"], meta(obj)["namespace"])
                if is_copy_of(found, self.control_name):
                    applied.raced.append(member)
                else:
                    message = "a grid of that name exists there and is not our copy; left alone"
                    applied.problems[member] = Problem(reasons.COPY_NOT_OWNED, message)
                return
            except NotFound:  # the namespace is missing in the member: create it, then the copy
                namespace = {
                    "apiVersion": "v1",
                    "kind": "Namespace",
                    "metadata": {"name": meta(obj)["namespace"]},
                }
                with contextlib.suppress(AlreadyExists):
                    await client.create(NAMESPACES, namespace)
                try:
                    await client.create(kind.resource, obj)
                except NotFound as err:  # the namespace exists: the kind itself is not served
                    message = f"{kind.kind} is not served there (CRD missing?): {err}"
                    applied.problems[member] = Problem(reasons.KIND_NOT_INSTALLED, message)
                    return
            applied.created.append(member)

    async def _update(self, kind: FedKind, member: str, obj: Obj, applied: Applied) -> None:
        async with _outcome(member, applied):
            written = await self.members[member].client.replace(kind.resource, obj)
            applied.updated[member] = _rv(written)

    async def _delete(self, kind: FedKind, ref: GridRef, member: str, copy: Obj, applied: Applied) -> None:
        async with _outcome(member, applied):
            with contextlib.suppress(NotFound):
                await self.members[member].client.delete(
                    kind.resource, ref.name, ref.namespace, preconditions={"uid": meta(copy)["uid"]}
                )
            applied.deleted.append(member)

    # -- status and Events -------------------------------------------------------------------------

    async def _write_status(self, kind: FedKind, ref: GridRef, grid: Obj, status: Obj) -> None:
        """One PUT of /status when the aggregate changed. Fields the server prunes (an older CRD
        without `status.clusters`) would look changed forever, so what we wrote is remembered."""
        if status == (grid.get("status") or {}):
            return
        written = self._status_written.get(ref)
        if written is not None and written == (_rv(grid), status):
            return
        result = await self.client.replace_status(kind.resource, {**grid, "status": status})
        self._status_written[ref] = (_rv(result), status)

    def _report(self, grid: Obj, applied: Applied, status: Obj | None) -> None:
        """Normal Events for copies written, Warnings for problems and newly unreachable members."""
        for reason, members, verb in (
            (reasons.COPY_CREATED, applied.created, "Created copy in"),
            (reasons.COPY_UPDATED, list(applied.updated), "Updated copy in"),
            (reasons.COPY_DELETED, applied.deleted, "Deleted copy from"),
        ):
            if members:
                self.recorder.event(grid, NORMAL, reason, f"{verb} member {listing(sorted(members))}")
        for member, problem in sorted(applied.problems.items()):
            self.recorder.event(grid, WARNING, problem.reason, f"member {member}: {problem.message}")
        if status is None:
            return
        old = get_condition((grid.get("status") or {}).get("conditions"), reasons.MEMBERS_REACHABLE)
        new = get_condition(status.get("conditions"), reasons.MEMBERS_REACHABLE)
        if (
            new is not None
            and new.get("status") == FALSE
            and (old is None or old.get("message") != new.get("message"))
        ):
            self.recorder.event(grid, WARNING, reasons.MEMBERS_UNREACHABLE, str(new.get("message")))


class ApplyFailed(Exception):
    """Some member writes failed transiently; the runner retries the grid with backoff."""


@contextlib.asynccontextmanager
async def _outcome(member: str, applied: Applied) -> AsyncIterator[None]:
    """Sort one member write's failure: raced (cache behind), problem (this spec never succeeds
    there), failed (transient)."""
    try:
        yield
    except (Conflict, NotFound):
        applied.raced.append(member)
    except (Invalid, BadRequest) as err:
        applied.problems[member] = Problem(reasons.COPY_REJECTED, str(err))
    except ApiError as err:
        applied.failed[member] = str(err)


def _fingerprint(grid: Mapping[str, Any]) -> bytes:
    """What a copy depends on: uid, generation (spec), labels and annotations of the control grid."""
    grid_meta = meta(grid)
    return orjson.dumps(
        [
            grid_meta.get("uid"),
            grid_meta.get("generation"),
            grid_meta.get("labels"),
            grid_meta.get("annotations"),
        ],
        option=orjson.OPT_SORT_KEYS,
    )


def _rv(obj: Mapping[str, Any]) -> str:
    return str(meta(obj).get("resourceVersion") or "")
