"""Shared machinery of tests/reliability and bench/reliability_bench.py.

* `Tap`: an HTTP forwarder put between one component and the sandbox. The sandbox has no audit
  log, no per-user-agent counters and strips managedFields, so "who wrote what, when" is observed
  here: every request is recorded with its identity, verb, path, status and monotonic times. The
  tap also cuts the link (upstream outage for one component only) and answers 403 for chosen
  requests (the sandbox has no authorization and its fault table cannot inject 403).
* `FaultCounter`: counts the sandbox's injected faults by kind (its own counter is one total).
* `Report`: what every scenario hands back: trials, faults by kind, what was lost, timings.
* `retrying`: the test's own writes under injected faults (a faulted request changed nothing).

Kept out of a conftest, and named uniquely, so the bench can import it (tests/ has no packages).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import orjson
from aiohttp import web

from servicegroup.kube.errors import (
    AlreadyExists,
    ApiError,
    Conflict,
    ServerError,
    TooManyRequests,
    Unreachable,
)
from servicegroup.sandbox import Sandbox
from servicegroup.sandbox.errors import StatusError

Obj = dict[str, Any]
T = TypeVar("T")

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


# -- reports ------------------------------------------------------------------------------------


@dataclass
class Report:
    """One scenario's outcome; `lost` lists every discrepancy with the desired state (goal: none)."""

    scenario: str
    trials: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    lost: list[str] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def line(self) -> str:
        """One printable summary line."""
        faults = ", ".join(f"{k}={v}" for k, v in sorted(self.faults.items())) or "none"
        times = (
            f"converged in {min(self.seconds):.2f}..{max(self.seconds):.2f}s (n={len(self.seconds)})"
            if self.seconds
            else "no timing"
        )
        extra = "".join(f", {k}={v}" for k, v in self.extra.items())
        return (
            f"{self.scenario}: trials={self.trials}, faults: {faults}, lost={len(self.lost)}"
            f"{' ' + str(self.lost[:5]) if self.lost else ''}, {times}{extra}"
        )


# -- fault counting -----------------------------------------------------------------------------


class FaultCounter:
    """Wraps `sandbox.faults.before` to count injected errors by kind (the sandbox keeps one total)."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.counts: Counter[str] = Counter()
        faults = sandbox.faults
        original = faults.before

        async def before(verb: str, resource: str, name: str = "") -> None:
            try:
                await original(verb, resource, name)
            except StatusError as err:
                self.counts[f"http{err.code}"] += 1
                raise

        faults.before = before  # type: ignore[method-assign]
        self._faults = faults

    def drop_watches(self) -> None:
        self.counts["dropped_watch_rounds"] += 1
        self.counts["dropped_watches"] += self._faults.drop_watches()

    def compact(self) -> None:
        self.counts["compactions"] += 1
        self._faults.compact()


async def retrying(call: Callable[[], Awaitable[T]], *, attempts: int = 200) -> T | None:
    """Run one of the test's own writes until it gets through the injected faults.

    Injected faults fail a request before the server acts, so repeating it is safe; AlreadyExists
    after a retry means an earlier attempt landed (returns None).
    """
    for _ in range(attempts):
        try:
            return await call()
        except AlreadyExists:
            return None
        except (ServerError, TooManyRequests, Conflict, Unreachable):
            await asyncio.sleep(0.02)
    raise AssertionError(f"write did not get through {attempts} attempts")


async def fault_storm(counter: FaultCounter, stop: asyncio.Event, period: float = 0.4) -> None:
    """Until `stop`: alternately break every watch and force a compaction (410 on resume)."""
    rounds = 0
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), period)
        if stop.is_set():
            return
        if rounds % 2 == 0:
            counter.drop_watches()
        else:
            counter.compact()
            counter.drop_watches()  # watches resume from an old RV: 410, relist
        rounds += 1


# -- the tap ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    """One request that went through a tap."""

    identity: str
    method: str
    path: str
    status: int
    started: float
    ended: float
    body: bytes = b""

    @property
    def is_write(self) -> bool:
        return self.method in WRITE_METHODS


Deny = Callable[[str, str], bool]  # (method, path) -> answer 403


class Tap:
    """Forwards everything to `upstream`, recording requests; `cut()` / `mend()` the link."""

    def __init__(self, upstream: str, identity: str, log: list[Request] | None = None) -> None:
        self.upstream = upstream.rstrip("/")
        self.identity = identity
        self.log: list[Request] = log if log is not None else []
        self.deny: Deny | None = None
        self.response_delay: Callable[[str, str], float] | None = None  # (method, path) -> seconds
        self.denied = 0
        self.url = ""
        self._down = False
        self._streams: set[asyncio.Task[Any]] = set()
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> str:
        app = web.Application(client_max_size=256 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        return self.url

    def write_kubeconfig(self, path: Path) -> Path:
        """A kubeconfig pointing at this tap (same shape as the sandbox's)."""
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "tap", "cluster": {"server": self.url}}],
            "users": [{"name": "tap", "user": {"token": self.identity}}],
            "contexts": [
                {"name": "tap", "context": {"cluster": "tap", "user": "tap", "namespace": "default"}}
            ],
            "current-context": "tap",
        }
        path.write_bytes(orjson.dumps(config))  # JSON is YAML
        return path

    def cut(self) -> None:
        """Upstream outage: refuse new requests with 503-like resets and end every open stream."""
        self._down = True
        for task in list(self._streams):
            task.cancel()
        self._streams.clear()

    def mend(self) -> None:
        self._down = False

    async def stop(self) -> None:
        self.cut()
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    def writes(self) -> list[Request]:
        return [r for r in self.log if r.is_write]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        started = time.monotonic()
        body = await request.read()
        if self._down:  # the peer sees the connection drop, as when the API server is unreachable
            if request.transport is not None:
                request.transport.abort()
            raise web.HTTPServiceUnavailable()
        if self.deny is not None and self.deny(request.method, request.path):
            self.denied += 1
            status = {
                "kind": "Status",
                "apiVersion": "v1",
                "status": "Failure",
                "reason": "Forbidden",
                "code": 403,
                "message": f'{request.method} {request.path} is forbidden: RBAC: access denied for "tap"',
            }
            self._record(request, 403, started, body)
            return web.json_response(status, status=403)
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
        delay = self.response_delay(request.method, request.path) if self.response_delay else 0.0
        async with self._session.request(
            request.method,
            self.upstream + request.rel_url.path_qs,
            data=body or None,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=None),
        ) as upstream:
            if delay:  # network latency on the way back: the change is committed, the reply is late
                await asyncio.sleep(delay)
            response = web.StreamResponse(status=upstream.status)
            content_type = upstream.headers.get("Content-Type")
            if content_type:
                response.headers["Content-Type"] = content_type
            if "Retry-After" in upstream.headers:
                response.headers["Retry-After"] = upstream.headers["Retry-After"]
            await response.prepare(request)
            task = asyncio.current_task()
            assert task is not None
            self._streams.add(task)
            try:
                if request.query.get("watch") in ("1", "true"):
                    self._record(request, upstream.status, started, body)
                async for chunk in upstream.content.iter_any():
                    if self._down:
                        break
                    await response.write(chunk)
            finally:
                self._streams.discard(task)
        if request.query.get("watch") not in ("1", "true"):
            self._record(request, upstream.status, started, body)
        with contextlib.suppress(ConnectionResetError):
            await response.write_eof()
        return response

    def _record(self, request: web.Request, status: int, started: float, body: bytes) -> None:
        self.log.append(
            Request(self.identity, request.method, request.path, status, started, time.monotonic(), body)
        )


def api_error_summary(err: ApiError) -> str:
    """`403 Forbidden: message` for reports."""
    return f"{err.status} {err.reason}: {err.message}"
