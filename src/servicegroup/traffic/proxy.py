"""One node's topology proxy, assembled: informers -> TopologySync -> ServedView -> ProxyServer.

Start-up order gives kube-proxy a view that is never partial:

1. with `--cache-dir`, the persisted view is served at once (the API server may be down);
2. informers list everything; their notifications are ignored until *all* have synced, then one
   full `resync` from their stores replaces the view, emitting only the differences;
3. from then on each notification re-filters what it affects.

While the API server is unreachable the informers retry with backoff and keep their stores, so the
last known view is served and watches stay open; when the link returns, the informers' relist
diff arrives as ordinary notifications.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from pathlib import Path
from typing import Any

from aiohttp import web

from servicegroup.kube.client import Client
from servicegroup.kube.informer import InformerFactory
from servicegroup.kube.resources import Resource
from servicegroup.traffic.persist import CacheDir
from servicegroup.traffic.server import ProxyServer, ServerOptions
from servicegroup.traffic.sync import SERVED, ServedView, TopologySync
from servicegroup.traffic.watchcache import ResourceVersions

log = logging.getLogger(__name__)

Obj = dict[str, Any]


def first_resource_version(reserved: int) -> int:
    """Where this run's counter starts: above every RV a previous run reserved, and above the
    wall clock in microseconds, so even without a cache dir a restarted proxy (issuing fewer than
    a million changes a second) never reuses an RV a client may still hold."""
    return max(reserved + 1, time.time_ns() // 1000)


async def keep_gc_cheap(freeze_every: float = 5.0, full_every: int = 720) -> None:
    """Process-wide GC policy for a proxy process (a task; `Proxy(tune_gc=True)` starts it).

    The view is a large, long-lived, acyclic tree of dicts. CPython's full collections re-scan
    all of it (400-700 ms at 50,000 endpoints: a stall of every watch), so survivors are moved
    to the permanent generation every `freeze_every` seconds; full collections then only scan
    what is younger. Once every `full_every` rounds everything is unfrozen and collected, so
    cyclic garbage that was frozen is still reclaimed.
    """
    rounds = 0
    while True:
        await asyncio.sleep(freeze_every)
        rounds += 1
        if rounds % full_every == 0:
            gc.unfreeze()
            gc.collect()
        else:
            gc.collect(1)
        gc.freeze()


class Proxy:
    """The topology proxy for `node`; `await start(host, port)` returns its URL."""

    def __init__(
        self,
        client: Client,
        node: str,
        *,
        cache_dir: Path | None = None,
        options: ServerOptions | None = None,
        history_limit: int = 10_000,
        persist_interval: float = 5.0,
        tune_gc: bool = False,
    ) -> None:
        self.client = client
        self.node = node
        self.cache_dir = CacheDir(cache_dir, node) if cache_dir is not None else None
        reserved = self.cache_dir.reserved() if self.cache_dir is not None else 0
        reserve = self.cache_dir.reserve if self.cache_dir is not None else None
        self.view = ServedView(ResourceVersions(first_resource_version(reserved), reserve), history_limit)
        self.sync = TopologySync(node, self.view)
        self.ready = asyncio.Event()
        self.server = ProxyServer(self.view, self.ready, options)
        self.factory = InformerFactory(client)
        self.persist_interval = persist_interval
        self.tune_gc = tune_gc
        self._synced = False
        self._persisting = False
        self._tasks: list[asyncio.Task[None]] = []
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self, host: str = "127.0.0.1", port: int = 51006) -> str:
        """Serve the persisted view (if any), start the informers and listen; returns the URL."""
        if self.tune_gc:
            # The initial lists allocate millions of objects: no full scans meanwhile, but never
            # for long if the first sync has to wait out an outage (retries make cyclic garbage).
            gc.disable()
            asyncio.get_running_loop().call_later(60.0, gc.enable)
        if self.cache_dir is not None and self.cache_dir.load(self.view):
            self.ready.set()
            self._keep_saved()
        for res in SERVED:
            self._watch(res)
        self.factory.start()
        self._tasks.append(asyncio.create_task(self._first_sync(), name=f"proxy {self.node} first sync"))
        self._runner = web.AppRunner(
            self.server.app, access_log=None, shutdown_timeout=1.0, handler_cancellation=True
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        bound = self._runner.addresses[0]
        self.url = f"http://{host}:{bound[1]}"
        log.info("topology proxy for node %s listening on %s", self.node, self.url)
        return self.url

    def _keep_saved(self) -> None:
        """Persist the view from now on (once it is worth keeping: loaded or synced; never twice)."""
        if self.cache_dir is not None and not self._persisting:
            self._persisting = True
            task = self.cache_dir.keep_saved(self.view, self.persist_interval)
            self._tasks.append(asyncio.create_task(task, name="proxy persist"))

    @property
    def synced(self) -> bool:
        """True once the view was built from the API server (not only from the cache dir)."""
        return self._synced

    def _watch(self, res: Resource) -> None:
        informer = self.factory.informer(res)
        informer.add_handler(
            lambda obj: self._changed(res, None, obj),
            lambda old, new: self._changed(res, old, new),
            lambda obj: self._changed(res, obj, None),
        )

    def _changed(self, res: Resource, old: Obj | None, new: Obj | None) -> None:
        if self._synced:
            self.sync.changed(res, old, new)

    async def _first_sync(self) -> None:
        await self.factory.wait_synced()
        self.sync.resync({res.plural: self.factory.informer(res).store.list() for res in SERVED})
        self._synced = True
        self.ready.set()
        self._keep_saved()
        if self.tune_gc:
            gc.collect()
            gc.freeze()
            gc.enable()
            self._tasks.append(asyncio.create_task(keep_gc_cheap(), name="proxy gc"))
        log.info(
            "topology proxy for node %s synced (%d slices served)",
            self.node,
            len(self.view.caches["endpointslices"]),
        )

    async def stop(self) -> None:
        """Stop serving and watching; with a cache dir, save the view one last time."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        await self.factory.stop()
        if self.cache_dir is not None and self._persisting:  # never save a view that was never built
            await self.cache_dir.save_logged(self.view)
