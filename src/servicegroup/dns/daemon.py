"""The per-node DNS daemon: watches, then keeps the hosts file equal to `render_hosts(...)`.

Level-triggered like a controller with a single key: every relevant watch event schedules one
recompute of the whole file `debounce` seconds later, and events arriving meanwhile ride along
(the work queue keeps one pending key), so a burst of pod changes costs one render and one write.
Nothing polls: SuperEdge's 30-second full rewrite is replaced by the informers' watches.

Until every informer has synced nothing is written, so a restarting daemon never blanks the file
that CoreDNS is serving. A failed write (read-only directory, full disk) leaves the old file whole
(see writer.py), is logged and counted, marks the daemon unready and is retried with backoff.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from prometheus_client import Counter, Gauge

from servicegroup.api.labels import GRID_GROUP, GRID_UNIQ_KEY, GRID_VERSION
from servicegroup.dns.hosts import HostEntry, format_hosts, render_hosts
from servicegroup.dns.writer import HostsWriter
from servicegroup.kube.clock import Clock
from servicegroup.kube.informer import Informer, InformerFactory
from servicegroup.kube.objects import labels_of, meta
from servicegroup.kube.resources import NODES, PODS, SERVICES, STATEFULSETS, crd_resource
from servicegroup.kube.store import controller_uid_index, label_index
from servicegroup.kube.workqueue import ItemExponentialFailureRateLimiter, ShutDown, WorkQueue

log = logging.getLogger(__name__)

Obj = dict[str, Any]

STATEFULSETGRIDS: Final = crd_resource(GRID_GROUP, GRID_VERSION, "statefulsetgrids", "StatefulSetGrid")
# The StatefulSet controller labels every pod it creates with its own name; selecting on it keeps
# Deployment and bare pods out of the cache.
STATEFULSET_POD_LABEL: Final = "statefulset.kubernetes.io/pod-name"
BY_CONTROLLER: Final = "controller-uid"
BY_GRID_KEY: Final = "grid-uniq-key"
_KEY: Final = "hosts"

HOSTS_WRITES = Counter(
    "servicegroup_dns_hosts_writes_total",
    "Hosts file syncs by node and result (written, unchanged, error).",
    ["node", "result"],
)
HOSTS_ENTRIES = Gauge("servicegroup_dns_hosts_entries", "Entries in the node's hosts file.", ["node"])


class HostsDaemon:
    """Keeps one node's hosts file in step with the cluster; `run()` until cancelled."""

    def __init__(
        self,
        factory: InformerFactory,
        *,
        node: str,
        hosts_file: str | Path,
        cluster_domain: str = "cluster.local",
        debounce: float = 0.1,
        retry_base: float = 0.5,
        retry_cap: float = 30.0,
        clock: Clock | None = None,
    ) -> None:
        self.node = node
        self.cluster_domain = cluster_domain
        self.debounce = debounce
        self.writer = HostsWriter(hosts_file)
        self.nodes = factory.informer(NODES, field_selector=f"metadata.name={node}")
        self.statefulsets = factory.informer(STATEFULSETS, label_selector=GRID_UNIQ_KEY)
        self.pods = factory.informer(PODS, label_selector=STATEFULSET_POD_LABEL)
        self.services = factory.informer(SERVICES, label_selector=GRID_UNIQ_KEY)
        self.grids = factory.informer(STATEFULSETGRIDS)
        self.statefulsets.add_index(BY_GRID_KEY, label_index(GRID_UNIQ_KEY))
        self.pods.add_index(BY_CONTROLLER, controller_uid_index)
        self.queue: WorkQueue[str] = WorkQueue(
            f"dns-hosts-{node}",
            rate_limiter=ItemExponentialFailureRateLimiter(retry_base, retry_cap),
            clock=clock,
        )
        self.entries: list[HostEntry] = []
        self.last_error: OSError | None = None
        self._synced_once = False
        self._changed = asyncio.Condition()
        for informer in self.informers:
            informer.add_handler(self._on_add, self._on_update, self._on_delete)

    @property
    def informers(self) -> list[Informer]:
        """The informers this daemon reads."""
        return [self.nodes, self.statefulsets, self.pods, self.services, self.grids]

    @property
    def ready(self) -> bool:
        """Synced, written at least once, and the last write succeeded (for `/readyz`)."""
        return self._synced_once and self.last_error is None

    async def run(self) -> None:
        """Start the informers, wait for their first lists, then sync on every change."""
        for informer in self.informers:
            informer.start()
        await asyncio.gather(*(informer.wait_synced() for informer in self.informers))
        self.queue.add(_KEY)
        try:
            while True:
                key = await self.queue.get()
                try:
                    await self._sync_and_record()
                finally:
                    self.queue.done(key)
        except ShutDown:
            return
        finally:
            self.queue.shutdown()

    def render(self) -> list[HostEntry]:
        """The entries the file must hold now, from the informer caches."""
        node = self.nodes.store.get(self.node)
        if node is None:
            log.warning("node %s not found: the hosts file will be empty", self.node)
            return []
        node_labels = labels_of(node)
        statefulsets = [
            sts for key in node_labels for sts in self.statefulsets.store.by_index(BY_GRID_KEY, key)
        ]
        pods = [
            pod
            for sts in statefulsets
            for pod in self.pods.store.by_index(BY_CONTROLLER, meta(sts).get("uid") or "")
        ]
        return render_hosts(
            node_labels=node_labels,
            statefulsets=statefulsets,
            pods=pods,
            services=self.services.store.list(),
            grids=self.grids.store.list(),
            cluster_domain=self.cluster_domain,
        )

    async def sync(self) -> bool:
        """Render and write the file; returns whether it changed. Raises OSError on a failed write."""
        entries = self.render()
        changed = await asyncio.to_thread(self.writer.write, format_hosts(entries, node=self.node))
        if changed:
            log.info("hosts file %s rewritten: %d entries", self.writer.path, len(entries))
        self.entries = entries
        HOSTS_ENTRIES.labels(self.node).set(len(entries))
        return changed

    async def wait_for(self, predicate: Callable[[list[HostEntry]], bool]) -> None:
        """Wait until a successful sync leaves entries satisfying `predicate` (bound with asyncio.timeout)."""
        async with self._changed:
            await self._changed.wait_for(lambda: self._synced_once and predicate(self.entries))

    async def _sync_and_record(self) -> None:
        try:
            changed = await self.sync()
        except OSError as err:
            self.last_error = err
            HOSTS_WRITES.labels(self.node, "error").inc()
            log.error(
                "cannot write hosts file %s (the old file is intact; retry %d): %s",
                self.writer.path,
                self.queue.num_requeues(_KEY) + 1,
                err,
            )
            self.queue.add_rate_limited(_KEY)
            return
        self.last_error = None
        self._synced_once = True
        self.queue.forget(_KEY)
        HOSTS_WRITES.labels(self.node, "written" if changed else "unchanged").inc()
        async with self._changed:
            self._changed.notify_all()

    # -- event handlers: only schedule a recompute ------------------------------------------------

    def _schedule(self) -> None:
        self.queue.add_after(_KEY, self.debounce)

    def _on_add(self, obj: Obj) -> None:
        self._schedule()

    def _on_update(self, old: Obj, new: Obj) -> None:
        if meta(old).get("resourceVersion") != meta(new).get("resourceVersion"):
            self._schedule()

    def _on_delete(self, obj: Obj) -> None:
        self._schedule()
