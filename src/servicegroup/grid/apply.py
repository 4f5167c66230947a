"""Execute a Plan: the grid controller's only writes to children.

Writes run concurrently (bounded), each with the precondition that keeps it safe: an update carries
the live resourceVersion, a delete the live uid. Outcomes are sorted by what the caller does next:
`raced` (409, or the object vanished: the cache is behind, requeue), `rejected` (400/422: the same
object can never succeed, report it and wait for a spec change), `failed` (anything else: retry
with backoff). `Expectations` remembers each write until the informer shows its echo (or
anything newer: another writer, e.g. the Deployment controller's status, may come first), so a
reconcile that runs before the cache catches up never repeats a create.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from servicegroup.grid.plan import Plan
from servicegroup.kube.client import Client
from servicegroup.kube.errors import AlreadyExists, ApiError, BadRequest, Conflict, Invalid, NotFound
from servicegroup.kube.objects import ObjectKey, meta
from servicegroup.kube.resources import Resource

Obj = dict[str, Any]

DEFAULT_CONCURRENCY: Final = 16
EXPECTATION_TTL: Final = 30.0  # seconds to wait for a write's watch echo before acting again


@dataclass(frozen=True)
class Written:
    """One successful write, as its echo will show it. Resource versions are opaque, so "the echo
    or newer" is recognised without ordering them: same uid and a version other than the one the
    write replaced (creates replace none); a delete by the object's absence or another uid."""

    uid: str
    resource_version: str | None  # ours; None for a delete
    previous: str | None = None  # the version an update replaced; None for a create or delete

    def shown_by(self, obj: Mapping[str, Any] | None, *, deleted: bool = False) -> bool:
        """Does this object state (cached, or an event's; `deleted` for a delete event) reflect
        the write?"""
        same = obj is not None and meta(obj).get("uid") == self.uid
        if self.resource_version is None:
            return obj is None or deleted or not same
        return same and (deleted or meta(obj or {}).get("resourceVersion") != self.previous)


@dataclass
class Outcome:
    """What happened to each write of a plan, by child name."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    written: dict[str, Written] = field(default_factory=dict)
    raced: list[str] = field(default_factory=list)
    taken: list[str] = field(default_factory=list)  # create found an object of that name (also raced)
    rejected: dict[str, str] = field(default_factory=dict)  # name -> error message
    failed: dict[str, str] = field(default_factory=dict)  # name -> error message


async def apply_plan(
    client: Client, res: Resource, plan: Plan, *, concurrency: int = DEFAULT_CONCURRENCY
) -> Outcome:
    """Run every write of `plan` (an empty plan makes no call)."""
    outcome = Outcome()
    limit = asyncio.Semaphore(concurrency)

    async def run(verb: str, obj: Obj, call: Callable[[], Awaitable[Obj]]) -> None:
        name = meta(obj).get("name") or ""
        async with limit:
            try:
                result = await call()
            except (AlreadyExists, Conflict) as err:
                outcome.raced.append(name)
                if verb == "create" and isinstance(err, AlreadyExists):
                    outcome.taken.append(name)
            except NotFound:
                _not_found(outcome, verb, name)
            except (Invalid, BadRequest) as err:
                outcome.rejected[name] = f"{verb} {res.kind} {name} rejected: {err.message}"
            except (ApiError, OSError, TimeoutError) as err:
                outcome.failed[name] = f"{verb} {res.kind} {name} failed: {err}"
            else:
                _record(outcome, verb, obj, result)

    calls = [run("create", obj, _bind(client.create, res, obj)) for obj in plan.create]
    calls += [run("update", obj, _bind(client.replace, res, obj)) for obj in plan.update]
    calls += [run("delete", obj, _deleter(client, res, obj)) for obj in plan.delete]
    await asyncio.gather(*calls)
    for names in (outcome.created, outcome.updated, outcome.deleted, outcome.raced, outcome.taken):
        names.sort()
    return outcome


def _bind(
    fn: Callable[[Resource, Obj], Awaitable[Obj]], res: Resource, obj: Obj
) -> Callable[[], Awaitable[Obj]]:
    return lambda: fn(res, obj)


def _deleter(client: Client, res: Resource, obj: Obj) -> Callable[[], Awaitable[Obj]]:
    object_meta = meta(obj)
    return lambda: client.delete(
        res,
        object_meta["name"],
        object_meta.get("namespace"),
        propagation_policy="Background",
        preconditions={"uid": object_meta["uid"]},
    )


def _record(outcome: Outcome, verb: str, sent: Obj, result: Obj) -> None:
    sent_meta = meta(sent)
    name = sent_meta.get("name") or ""
    if verb == "delete":
        outcome.deleted.append(name)
        outcome.written[name] = Written(sent_meta.get("uid") or "", None)
        return
    (outcome.created if verb == "create" else outcome.updated).append(name)
    result_meta = meta(result)
    previous = sent_meta.get("resourceVersion") if verb == "update" else None
    outcome.written[name] = Written(
        result_meta.get("uid") or "", result_meta.get("resourceVersion") or "", previous
    )


def _not_found(outcome: Outcome, verb: str, name: str) -> None:
    """A delete of something already gone is done; an update of it means the cache is behind."""
    if verb == "delete":
        outcome.deleted.append(name)
    else:
        outcome.raced.append(name)


@dataclass
class _Expected:
    write: Written
    deadline: float


class Expectations:
    """Per grid, the child writes whose watch echo has not arrived (client-go's expectations).

    `observe` is called from the child informer's handlers; an entry also expires after `ttl`, so a
    missed echo (e.g. folded into a relist) delays the grid by at most `ttl`, never forever.
    """

    def __init__(self, ttl: float = EXPECTATION_TTL, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self._clock = clock
        self._by_grid: dict[ObjectKey, dict[str, _Expected]] = {}
        self._grid_of: dict[ObjectKey, ObjectKey] = {}  # child key -> grid key

    def expect(self, grid: ObjectKey, written: Mapping[str, Written]) -> None:
        """Remember the writes just made for `grid`'s children (same namespace as the grid)."""
        if not written:
            return
        deadline = self._clock() + self.ttl
        entries = self._by_grid.setdefault(grid, {})
        for name, write in written.items():
            entries[name] = _Expected(write, deadline)
            self._grid_of[ObjectKey(grid.namespace, name)] = grid

    def observe(self, obj: Obj, *, deleted: bool) -> None:
        """An informer event for a child: settle the expectation it echoes."""
        child = ObjectKey.from_object(obj)
        grid = self._grid_of.get(child)
        entry = self._by_grid.get(grid, {}).get(child.name) if grid is not None else None
        if grid is None or entry is None:
            return
        if entry.write.shown_by(obj, deleted=deleted):
            self._settle(grid, child)

    def pending(self, grid: ObjectKey) -> dict[str, float]:
        """Child names of `grid` still waiting for their echo -> seconds left."""
        entries = self._by_grid.get(grid)
        if not entries:
            return {}
        now = self._clock()
        for name in [n for n, e in entries.items() if e.deadline <= now]:
            self._settle(grid, ObjectKey(grid.namespace, name))
        return {name: entry.deadline - now for name, entry in entries.items()}

    def forget(self, grid: ObjectKey) -> None:
        """Drop everything about a grid that is gone."""
        for name in self._by_grid.pop(grid, {}):
            self._grid_of.pop(ObjectKey(grid.namespace, name), None)

    def _settle(self, grid: ObjectKey, child: ObjectKey) -> None:
        entries = self._by_grid.get(grid)
        if entries is not None:
            entries.pop(child.name, None)
            if not entries:
                del self._by_grid[grid]
        self._grid_of.pop(child, None)
