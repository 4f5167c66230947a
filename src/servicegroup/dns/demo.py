"""Demo hook: what a per-unit StatefulSet name resolves to from each node.

Runs one real `HostsDaemon` per node in this process (sharing one informer factory), each
writing its own hosts file in a temporary directory, exactly as the DaemonSet would on each node,
and reports the line each node's file holds for the name.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from servicegroup.dns.daemon import HostsDaemon
from servicegroup.dns.hosts import HostEntry
from servicegroup.kube.client import Client
from servicegroup.kube.informer import InformerFactory

DEMO_NAME: Final = "statefulsetgrid-demo-0.servicegrid-demo-svc.default.svc.cluster.local"


async def demo_lines(
    client: Client,
    node_names: Sequence[str],
    *,
    names: Sequence[str] = (DEMO_NAME,),
    cluster_domain: str = "cluster.local",
    within: float = 30.0,
) -> list[str]:
    """One line per (node, name): `bj-1: <name> -> <ip> (<ns>/<pod>)`, or `-> not resolved`.

    Waits (at most `within` seconds in all) until every node's file holds every name, so it may
    be called while the grid controller and the simulated kubelet are still creating pods.
    """
    factory = InformerFactory(client)
    with tempfile.TemporaryDirectory(prefix="servicegroup-dns-demo-") as tmp:
        daemons = [
            HostsDaemon(
                factory, node=node, hosts_file=Path(tmp) / f"hosts-{node}", cluster_domain=cluster_domain
            )
            for node in node_names
        ]
        tasks = [asyncio.create_task(daemon.run(), name=f"dns demo {daemon.node}") for daemon in daemons]
        try:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(within):
                    await _wait_all(daemons, names)
            return [_line(daemon.node, name, daemon.entries) for daemon in daemons for name in names]
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await factory.stop()


async def _wait_all(daemons: Sequence[HostsDaemon], names: Sequence[str]) -> None:
    """Wait until every daemon serves every name."""

    def complete(entries: list[HostEntry]) -> bool:
        return set(names) <= {entry.fqdn for entry in entries}

    await asyncio.gather(*(daemon.wait_for(complete) for daemon in daemons))


def _line(node: str, name: str, entries: list[HostEntry]) -> str:
    hits = [entry for entry in entries if entry.fqdn == name]
    if not hits:
        return f"{node}: {name} -> not resolved"
    return f"{node}: {name} -> " + ", ".join(f"{entry.ip} ({entry.pod})" for entry in hits)
