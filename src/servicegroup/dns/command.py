"""`servicegroup dns`: run the hosts-file daemon for one node (a DaemonSet, one per node)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from servicegroup.kube.logs import add_logging_arguments, setup_logging_from_args
from servicegroup.kube.serve import HealthServer, parse_listen

if TYPE_CHECKING:
    from servicegroup.dns.daemon import HostsDaemon

_DOMAIN = re.compile(
    r"^(?=.{1,253}$)([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$"
)

DESCRIPTION = """\
Keep a hosts file equal to the per-NodeUnit names of StatefulSetGrid pods, as seen from one node:
inside NodeUnit U, <ssg>-<i>.<svc>.<ns>.svc.<domain> resolves to the pod <ssg>-<U>-<i>. Serve the
file with CoreDNS's `hosts` plugin (see docs/dns.md and deploy/dns/).
"""


def register(subparsers: Any) -> None:
    """Add the `dns` sub-command."""
    parser = subparsers.add_parser(
        "dns",
        help="per-node hosts file for per-unit StatefulSet DNS",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--kubeconfig", default=None, help="kubeconfig file (default: in-cluster service account)"
    )
    parser.add_argument(
        "--node", default=os.environ.get("NODE_NAME"), help="this node's name (default: $NODE_NAME)"
    )
    parser.add_argument(
        "--hosts-file", required=True, type=Path, help="the hosts file to own, e.g. /data/edge/hosts"
    )
    parser.add_argument(
        "--cluster-domain", default="cluster.local", help="cluster DNS domain (default: cluster.local)"
    )
    parser.add_argument(
        "--debounce",
        type=float,
        default=0.1,
        help="seconds to gather a burst of changes into one rewrite (default: 0.1)",
    )
    parser.add_argument(
        "--health-listen",
        default=None,
        metavar="HOST:PORT",
        help="serve /healthz, /readyz and /metrics here (default: off)",
    )
    add_logging_arguments(parser)
    parser.set_defaults(func=run_command)


def run_command(args: argparse.Namespace) -> int:
    """Validate the flags (one-line errors), then run the daemon until SIGTERM/SIGINT."""
    if not args.node:
        raise SystemExit("servicegroup dns: error: --node is required (or set NODE_NAME)")
    domain = args.cluster_domain.strip(".").lower()
    if not _DOMAIN.match(domain):
        raise SystemExit(
            f"servicegroup dns: error: --cluster-domain {args.cluster_domain!r} is not a DNS name"
        )
    if not args.hosts_file.parent.is_dir():
        raise SystemExit(f"servicegroup dns: error: directory {args.hosts_file.parent} does not exist")
    if args.debounce < 0:
        raise SystemExit("servicegroup dns: error: --debounce must be >= 0")
    if args.health_listen:
        try:
            parse_listen(args.health_listen)
        except ValueError as err:
            raise SystemExit(f"servicegroup dns: error: --health-listen: {err}") from err
    setup_logging_from_args(args)
    return asyncio.run(_main(args, domain))


async def _main(args: argparse.Namespace, domain: str) -> int:
    # imported here so that `servicegroup --help` does not load the client stack
    from servicegroup.dns.daemon import HostsDaemon
    from servicegroup.kube.client import Client
    from servicegroup.kube.informer import InformerFactory

    try:
        client = await Client.from_kubeconfig(args.kubeconfig)
    except Exception as err:  # the config library raises several unrelated types
        raise SystemExit(f"servicegroup dns: error: cannot load cluster configuration: {err}") from err
    factory = InformerFactory(client)
    daemon = HostsDaemon(
        factory, node=args.node, hosts_file=args.hosts_file, cluster_domain=domain, debounce=args.debounce
    )
    main = asyncio.current_task()
    assert main is not None
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, main.cancel)
    async with client, _health(args.health_listen, daemon):
        try:
            await daemon.run()
        except asyncio.CancelledError:
            return 0
        finally:
            await factory.stop()
    return 0


@contextlib.asynccontextmanager
async def _health(listen: str | None, daemon: HostsDaemon) -> AsyncIterator[None]:
    """Serve health and metrics while the daemon runs, when asked to."""
    if not listen:
        yield
        return
    server = HealthServer(listen)
    server.add_readiness_check("hosts-file", lambda: daemon.ready)
    await server.start()
    try:
        yield
    finally:
        await server.stop()
