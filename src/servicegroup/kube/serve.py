"""Health and metrics endpoint: `/healthz`, `/readyz`, `/metrics` on one aiohttp server.

`/healthz` answers 200 while the process is alive (plus any registered liveness checks);
`/readyz` answers 200 only when every readiness check passes (e.g. informers synced), else 503
with the failing names, as kube-apiserver's own `/readyz` does. `/metrics` is prometheus_client's
text exposition of the registry.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

log = logging.getLogger(__name__)

Check = Callable[[], bool | Awaitable[bool]]


def parse_listen(listen: str) -> tuple[str, int]:
    """`host:port` (or `[v6]:port`, or `:port` for all interfaces) → (host, port); ValueError if bad."""
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"listen address must be HOST:PORT, not {listen!r}")
    return host.strip("[]") or "0.0.0.0", int(port)


class HealthServer:
    """Serves health, readiness and metrics on `listen` (`host:port`; port 0 picks a free one)."""

    def __init__(self, listen: str = "127.0.0.1:8081", registry: CollectorRegistry = REGISTRY) -> None:
        self.host, self.port = parse_listen(listen)
        self.registry = registry
        self._ready_checks: dict[str, Check] = {}
        self._health_checks: dict[str, Check] = {}
        self._runner: web.AppRunner | None = None

    def add_readiness_check(self, name: str, check: Check) -> None:
        """`/readyz` fails while `check()` is false (sync or async; an exception counts as false)."""
        self._ready_checks[name] = check

    def add_health_check(self, name: str, check: Check) -> None:
        """`/healthz` fails while `check()` is false."""
        self._health_checks[name] = check

    @property
    def url(self) -> str:
        """Base URL once started."""
        return f"http://{self.host}:{self.port}"

    async def start(self) -> str:
        """Bind and serve; returns the base URL (with the real port)."""
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/metrics", self._metrics)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        if self.port == 0:
            self.port = int(self._runner.addresses[0][1])
        log.info("health server listening on %s", self.url)
        return self.url

    async def stop(self) -> None:
        """Stop serving."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _healthz(self, _request: web.Request) -> web.Response:
        return await _answer(self._health_checks)

    async def _readyz(self, _request: web.Request) -> web.Response:
        return await _answer(self._ready_checks)

    async def _metrics(self, _request: web.Request) -> web.Response:
        body = generate_latest(self.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def run_check(check: Check) -> bool:
    """Evaluate a sync or async check; an exception means "not ok"."""
    try:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        return bool(result)
    except Exception:
        log.exception("health check failed")
        return False


async def _answer(checks: dict[str, Check]) -> web.Response:
    failing = [name for name, check in checks.items() if not await run_check(check)]
    if failing:
        return web.Response(status=503, text="".join(f"[-] {name} failed\n" for name in failing))
    return web.Response(text="ok\n")
