"""The garbage collector and the namespace/CRD cleanup controllers, driven by storage events.

Like kube-controller-manager's: dependents whose owners are all gone are deleted (background);
an owner carrying `foregroundDeletion` has its dependents deleted and keeps its finalizer until no
dependent with `blockOwnerDeletion` is left; `orphan` strips the owner's references from its
dependents before the owner goes. A terminating namespace is emptied, then finalized; a deleted
CRD has its custom resources removed, then its cleanup finalizer dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from servicegroup.sandbox.errors import StatusError
from servicegroup.sandbox.resources import CRDS, NAMESPACES, ResourceType
from servicegroup.sandbox.storage import (
    CRD_CLEANUP_FINALIZER,
    FOREGROUND_FINALIZER,
    ORPHAN_FINALIZER,
    Storage,
    StorageEvent,
    Subscription,
    deep_copy,
)

Obj = dict[str, Any]
log = logging.getLogger(__name__)


def _meta(obj: Obj) -> Obj:
    meta: Obj = obj.get("metadata") or {}
    return meta


class GarbageCollector:
    """Runs as one task beside the server; every write goes through the storage like a client's."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self._sub: Subscription | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Process the current state, then follow events in a background task."""
        sub = self._sub = self.storage.subscribe()
        for rt in self._all_types():
            for obj in list(self.storage.iter_objects(rt)):
                self._guarded(self._reconcile, rt, obj)
        self._task = asyncio.create_task(self._run(sub), name="sandbox-gc")

    async def stop(self) -> None:
        """Stop following events."""
        if self._sub is not None:
            self._sub.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self, sub: Subscription) -> None:
        async for event in sub:
            self._guarded(self.handle, event)

    def _guarded(self, fn: Any, *args: Any) -> None:
        try:
            fn(*args)
        except StatusError as err:
            # Another writer got there first (404/409): the next event brings us back here.
            log.debug("gc: %s", err.message)

    def _all_types(self) -> list[ResourceType]:
        """One type per stored resource (versions share a store)."""
        seen: dict[tuple[str, str], ResourceType] = {}
        for rt in self.storage.types():
            seen.setdefault(rt.key, rt)
        return list(seen.values())

    def handle(self, event: StorageEvent) -> None:
        """React to one committed change."""
        if event.type == "DELETED":
            self._on_gone(event.rt, event.obj)
        else:
            self._reconcile(event.rt, event.obj)

    # -- owners and dependents -------------------------------------------------------------

    def _reconcile(self, rt: ResourceType, obj: Obj) -> None:
        if not self.storage.exists(rt, _meta(obj).get("namespace"), _meta(obj).get("name", "")):
            return
        meta = _meta(obj)
        if meta.get("ownerReferences"):
            self._collect_dangling(rt, obj)
        if not meta.get("deletionTimestamp"):
            return
        finalizers = meta.get("finalizers") or []
        if ORPHAN_FINALIZER in finalizers:
            self._orphan(rt, obj)
        elif FOREGROUND_FINALIZER in finalizers:
            self._delete_dependents(obj)
            self._release_foreground(rt, obj)
        if rt == NAMESPACES:
            self._empty_namespace(obj)
        elif rt == CRDS and CRD_CLEANUP_FINALIZER in finalizers:
            self._clean_crd(obj)

    def _on_gone(self, rt: ResourceType, obj: Obj) -> None:
        uid = _meta(obj).get("uid", "")
        for dep_rt, dep in self.storage.dependents(uid):
            self._guarded(self._collect_dangling, dep_rt, dep)
        for ref in _meta(obj).get("ownerReferences") or []:
            owner = self.storage.owner_of(ref.get("uid", ""))
            if owner is not None:
                owner_rt, owner_ns, owner_name = owner
                owner_obj = self.storage.get(owner_rt, owner_ns, owner_name)
                self._guarded(self._release_foreground, owner_rt, owner_obj)
        namespace_name = _meta(obj).get("namespace")
        if rt.namespaced and namespace_name and self.storage.exists(NAMESPACES, None, namespace_name):
            namespace = self.storage.get(NAMESPACES, None, namespace_name, copy=False)
            if _meta(namespace).get("deletionTimestamp"):
                self._guarded(self._empty_namespace, namespace)
        if rt.custom:
            crd_name = f"{rt.plural}.{rt.group}"
            if self.storage.exists(CRDS, None, crd_name):
                crd = self.storage.get(CRDS, None, crd_name, copy=False)
                if _meta(crd).get("deletionTimestamp"):
                    self._guarded(self._clean_crd, crd)

    def _collect_dangling(self, rt: ResourceType, obj: Obj) -> None:
        """Drop references to owners that no longer exist; delete the object when none is left."""
        refs = _meta(obj).get("ownerReferences") or []
        live = [r for r in refs if self.storage.owner_of(r.get("uid", "")) is not None]
        if len(live) == len(refs):
            return
        ns, name = _meta(obj).get("namespace"), _meta(obj).get("name", "")
        if not live:
            if not _meta(obj).get("deletionTimestamp"):
                policy = "Foreground" if self.storage.dependents(_meta(obj).get("uid", "")) else "Background"
                self.storage.delete(rt, ns, name, propagation_policy=policy)
            return
        self._set_owner_refs(rt, obj, live)

    def _set_owner_refs(self, rt: ResourceType, obj: Obj, refs: list[Obj]) -> None:
        new = deep_copy(self.storage.get(rt, _meta(obj).get("namespace"), _meta(obj).get("name", "")))
        if refs:
            new["metadata"]["ownerReferences"] = refs
        else:
            new["metadata"].pop("ownerReferences", None)
        self.storage.update(rt, new, field_validation="Ignore")

    def _orphan(self, rt: ResourceType, owner: Obj) -> None:
        uid = _meta(owner).get("uid", "")
        for dep_rt, dep in self.storage.dependents(uid):
            refs = [r for r in _meta(dep).get("ownerReferences") or [] if r.get("uid") != uid]
            self._set_owner_refs(dep_rt, dep, refs)
        self._drop_finalizer(rt, owner, ORPHAN_FINALIZER)

    def _delete_dependents(self, owner: Obj) -> None:
        for dep_rt, dep in self.storage.dependents(_meta(owner).get("uid", "")):
            if _meta(dep).get("deletionTimestamp"):
                continue
            policy = "Foreground" if self.storage.dependents(_meta(dep).get("uid", "")) else "Background"
            self.storage.delete(
                dep_rt, _meta(dep).get("namespace"), _meta(dep)["name"], propagation_policy=policy
            )

    def _release_foreground(self, rt: ResourceType, owner: Obj) -> None:
        """Drop `foregroundDeletion` once no blocking dependent remains."""
        meta = _meta(owner)
        if not meta.get("deletionTimestamp") or FOREGROUND_FINALIZER not in (meta.get("finalizers") or []):
            return
        uid = meta.get("uid", "")
        for _, dep in self.storage.dependents(uid):
            for ref in _meta(dep).get("ownerReferences") or []:
                if ref.get("uid") == uid and ref.get("blockOwnerDeletion"):
                    return
        self._drop_finalizer(rt, owner, FOREGROUND_FINALIZER)

    def _drop_finalizer(self, rt: ResourceType, obj: Obj, finalizer: str) -> None:
        new = self.storage.get(rt, _meta(obj).get("namespace"), _meta(obj).get("name", ""))
        new["metadata"]["finalizers"] = [f for f in new["metadata"].get("finalizers") or [] if f != finalizer]
        self.storage.update(rt, new, field_validation="Ignore")

    # -- namespaces and CRDs ---------------------------------------------------------------

    def _empty_namespace(self, namespace: Obj) -> None:
        """Delete everything in a terminating namespace; finalize it once nothing is left."""
        ns = _meta(namespace).get("name", "")
        remaining = 0
        for rt in self._all_types():
            if not rt.namespaced:
                continue
            for obj in list(self.storage.iter_objects(rt, ns)):
                remaining += 1
                if not _meta(obj).get("deletionTimestamp"):
                    self._guarded(self.storage.delete, rt, ns, _meta(obj).get("name", ""))
        if remaining:
            return
        current = self.storage.get(NAMESPACES, None, ns)
        if (current.get("spec") or {}).get("finalizers"):
            current["spec"]["finalizers"] = []
            self.storage.update(NAMESPACES, current, subresource="finalize")

    def _clean_crd(self, crd: Obj) -> None:
        """Delete every custom resource of a deleted CRD, then release the CRD."""
        spec = crd.get("spec") or {}
        plural, group = (spec.get("names") or {}).get("plural", ""), spec.get("group", "")
        types = [t for t in self.storage.types() if t.key == (group, plural)]
        if types:
            rt = types[0]
            objs = list(self.storage.iter_objects(rt))
            for obj in objs:
                if not _meta(obj).get("deletionTimestamp"):
                    self._guarded(
                        self.storage.delete, rt, _meta(obj).get("namespace"), _meta(obj).get("name", "")
                    )
            if objs:
                return
        self._drop_finalizer(CRDS, crd, CRD_CLEANUP_FINALIZER)
