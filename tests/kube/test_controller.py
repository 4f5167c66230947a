"""kube/controller.py: outcome handling per key (via `process`), workers, sync gating, wiring.

Outcome tests call `Controller.process(key)` once (sample-controller style: deterministic, no
workers); the runner tests use real workers with bounded waits.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from prometheus_client import REGISTRY

from servicegroup.kube.client import Client
from servicegroup.kube.clock import FakeClock
from servicegroup.kube.controller import (
    Controller,
    Result,
    TerminalError,
    controller_owner_keys,
    generation_changed,
    keys_from_index,
    resource_version_changed,
)
from servicegroup.kube.errors import Conflict, ServerError
from servicegroup.kube.informer import Informer
from servicegroup.kube.logs import current_context
from servicegroup.kube.objects import ObjectKey, owner_reference
from servicegroup.kube.resources import CONFIGMAPS
from servicegroup.kube.store import label_index
from waits import eventually

KEY = ObjectKey("ns", "a")


class Script:
    """A reconcile function returning/raising scripted outcomes and recording its calls."""

    def __init__(self, *outcomes: Any) -> None:
        self.outcomes = list(outcomes)
        self.calls: list[ObjectKey] = []
        self.contexts: list[dict[str, Any]] = []

    async def __call__(self, key: ObjectKey) -> Result | None:
        self.calls.append(key)
        self.contexts.append(current_context())
        outcome = self.outcomes.pop(0) if self.outcomes else None
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome


def make(script: Script, clock: FakeClock | None = None, **kw: Any) -> Controller[ObjectKey]:
    return Controller("test", script, clock=clock or FakeClock(), **kw)


def reconciles(result: str) -> float:
    return (
        REGISTRY.get_sample_value("servicegroup_reconcile_total", {"controller": "test", "result": result})
        or 0
    )


class TestOutcomes:
    async def test_success_forgets_failures(self) -> None:
        controller = make(Script(None))
        controller.queue.add_rate_limited(KEY)
        before = reconciles("success")
        assert await controller.process(KEY) == "success"
        assert controller.queue.num_requeues(KEY) == 0
        assert reconciles("success") == before + 1

    async def test_error_requeues_with_rate_limit(self) -> None:
        clock = FakeClock()
        controller = make(Script(RuntimeError("boom"), RuntimeError("boom")), clock)
        assert await controller.process(KEY) == "error"
        assert await controller.process(KEY) == "error"
        assert controller.queue.num_requeues(KEY) == 2
        assert controller.queue.waiting == 1
        clock.advance(0.005)
        assert await asyncio.wait_for(controller.queue.get(), 5) == KEY

    async def test_conflict_is_routine(self, caplog: pytest.LogCaptureFixture) -> None:
        controller = make(Script(Conflict(409, "Conflict", "stale")))
        with caplog.at_level(logging.DEBUG, logger="servicegroup.kube.controller"):
            assert await controller.process(KEY) == "error"
        assert [r.levelno for r in caplog.records] == [logging.DEBUG]
        assert controller.queue.num_requeues(KEY) == 1

    async def test_api_errors_log_without_traceback_bugs_with_one(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        controller = make(Script(ServerError(500, "InternalError", "etcd hiccup"), KeyError("bug")))
        with caplog.at_level(logging.WARNING, logger="servicegroup.kube.controller"):
            await controller.process(KEY)
            await controller.process(KEY)
        assert [r.exc_info is not None for r in caplog.records] == [False, True]

    async def test_terminal_error_is_not_retried(self) -> None:
        controller = make(Script(TerminalError("no such template")))
        controller.queue.add_rate_limited(KEY)
        assert await controller.process(KEY) == "terminal"
        assert controller.queue.num_requeues(KEY) == 0
        assert controller.queue.waiting == 1  # only the earlier add; nothing new scheduled

    async def test_requeue_after_forgets_then_adds_after(self) -> None:
        clock = FakeClock()
        controller = make(Script(Result(requeue_after=30)), clock)
        controller.queue.add_rate_limited(KEY)
        clock.advance(1)
        await controller.queue.get()  # the rate-limited add fired
        assert await controller.process(KEY) == "requeue"
        controller.queue.done(KEY)
        assert controller.queue.num_requeues(KEY) == 0
        assert len(controller.queue) == 0
        clock.advance(30)
        assert await asyncio.wait_for(controller.queue.get(), 5) == KEY

    async def test_requeue_true_is_rate_limited(self) -> None:
        controller = make(Script(Result(requeue=True)))
        assert await controller.process(KEY) == "requeue"
        assert controller.queue.num_requeues(KEY) == 1

    async def test_max_retries_drops_the_key(self) -> None:
        controller = make(Script(*[RuntimeError("x")] * 3), max_retries=2)
        for _ in range(3):
            await controller.process(KEY)
        assert controller.queue.num_requeues(KEY) == 0

    async def test_log_context_names_controller_and_key(self) -> None:
        script = Script(None)
        await make(script).process(KEY)
        assert script.contexts[0]["controller"] == "test"
        assert script.contexts[0]["key"] == "ns/a"
        assert "reconcile_id" in script.contexts[0]
        assert current_context() == {}


class TestRunner:
    async def test_workers_process_keys_and_survive_errors(self) -> None:
        script = Script(RuntimeError("first fails"), None, None)
        controller = Controller("runner", script, workers=2)
        controller.enqueue(KEY)
        controller.enqueue(ObjectKey("ns", "b"))
        task = asyncio.create_task(controller.run())
        try:
            await eventually(lambda: _calls_at_least(script, 3))
            assert sorted(set(script.calls)) == [KEY, ObjectKey("ns", "b")]
        finally:
            await controller.stop(1)
            await asyncio.gather(task, return_exceptions=True)
        assert task.done()

    async def test_run_waits_for_informers_sync(self) -> None:
        client = Client("http://127.0.0.1:9", read_retries=0)
        informer = Informer(client, CONFIGMAPS)  # never started: never synced
        script = Script()
        controller = Controller("gated", script, informers=[informer])
        controller.enqueue(KEY)
        task = asyncio.create_task(controller.run())
        for _ in range(20):
            await asyncio.sleep(0)  # let run() proceed as far as it can without a sync
        assert not controller.started and script.calls == []
        informer._synced.set()  # what the first successful list does
        await eventually(lambda: _calls_at_least(script, 1))
        await controller.stop(1)
        await asyncio.gather(task, return_exceptions=True)
        await client.close()

    async def test_abort_cancels_in_flight_reconciles(self) -> None:
        started = asyncio.Event()
        cancelled = asyncio.Event()

        async def slow(_key: ObjectKey) -> None:
            started.set()
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                cancelled.set()
                raise

        controller = Controller("abort", slow)
        controller.enqueue(KEY)
        task = asyncio.create_task(controller.run())
        await asyncio.wait_for(started.wait(), 5)
        controller.abort()
        await asyncio.wait_for(cancelled.wait(), 5)
        await asyncio.gather(task, return_exceptions=True)
        controller.enqueue(KEY)
        assert len(controller.queue) == 0


async def _calls_at_least(script: Script, n: int) -> bool:
    return len(script.calls) >= n


class FakeInformer(Informer):
    """An informer whose handlers are driven by the test (no API)."""

    def __init__(self) -> None:
        super().__init__(Client("http://127.0.0.1:9"), CONFIGMAPS)

    def fire(self, kind: str, *objs: dict[str, Any]) -> None:
        for handler in self._handlers:
            fn = {"add": handler.on_add, "update": handler.on_update, "delete": handler.on_delete}[kind]
            if fn is not None:
                fn(*objs)


def obj(name: str, rv: str = "1", gen: int = 1, **meta: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "ns", "resourceVersion": rv, "generation": gen, **meta}}


class TestWiring:
    async def test_watch_enqueues_own_keys(self) -> None:
        informer = FakeInformer()
        controller = make(Script())
        controller.watch(informer)
        informer.fire("add", obj("a"))
        informer.fire("delete", obj("b"))
        assert [await controller.queue.get() for _ in range(2)] == [KEY, ObjectKey("ns", "b")]
        assert informer in controller.informers

    async def test_update_maps_old_and_new_owner(self) -> None:
        grid_a = {
            "apiVersion": "superedge.io/v1",
            "kind": "DeploymentGrid",
            "metadata": {"name": "ga", "uid": "1"},
        }
        grid_b = {
            "apiVersion": "superedge.io/v1",
            "kind": "DeploymentGrid",
            "metadata": {"name": "gb", "uid": "2"},
        }
        old = obj("child", ownerReferences=[owner_reference(grid_a)])
        new = obj("child", rv="2", ownerReferences=[owner_reference(grid_b)])
        informer = FakeInformer()
        controller = make(Script())
        controller.watch(informer, controller_owner_keys("DeploymentGrid", "superedge.io"))
        informer.fire("update", old, new)
        informer.fire("add", obj("orphan"))
        assert len(controller.queue) == 2
        assert {await controller.queue.get(), await controller.queue.get()} == {
            ObjectKey("ns", "ga"),
            ObjectKey("ns", "gb"),
        }

    async def test_owner_mapper_checks_kind_and_group(self) -> None:
        owner = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "uid": "1"}}
        child = obj("rs", ownerReferences=[owner_reference(owner)])
        assert controller_owner_keys("Deployment")(child) == [ObjectKey("ns", "d")]
        assert controller_owner_keys("Deployment", "superedge.io")(child) == []
        assert controller_owner_keys("DeploymentGrid")(child) == []

    async def test_predicates_filter_resyncs_and_status_only_changes(self) -> None:
        assert not resource_version_changed(obj("a"), obj("a"))
        assert resource_version_changed(obj("a"), obj("a", rv="2"))
        assert not generation_changed(obj("a"), obj("a", rv="2"))
        assert generation_changed(obj("a"), obj("a", rv="2", gen=2))
        informer = FakeInformer()
        controller = make(Script())
        controller.watch(informer, predicate=resource_version_changed)
        same = obj("a")
        informer.fire("update", same, same)
        assert len(controller.queue) == 0

    async def test_keys_from_index(self) -> None:
        grids = FakeInformer()
        grids.add_index("uniq", label_index("gridUniqKey"))
        grids.store.upsert(obj("g1", labels={"gridUniqKey": "zone"}))
        grids.store.upsert(obj("g2", labels={"gridUniqKey": "rack"}))
        mapper = keys_from_index(grids, "uniq", lambda node: node["metadata"]["labels"].keys())
        node = {"metadata": {"name": "n1", "labels": {"zone": "z1", "other": "x"}}}
        assert mapper(node) == [ObjectKey("ns", "g1")]
