"""`servicegroup dns`: run the hosts-file daemon for one node (a DaemonSet, one per node)."""

from __future__ import annotations

import argparse
import asyncio
import re
import signal
from pathlib import Path
from typing import Any

from servicegroup.kube.cmdline import add_cluster_arguments, check_cluster_arguments, connect, serve_health
from servicegroup.kube.logs import setup_logging_from_args

_DOMAIN = re.compile(
    r"^(?=.{1,253}$)([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$"
)

DESCRIPTION = """\
Keep a hosts file equal to the per-NodeUnit names of StatefulSetGrid pods, as seen from one node:
inside NodeUnit U, <ssg>-<i>.<svc>.<ns>.svc.<domain> resolves to the pod <ssg>-<U>-<i>. Serve the
file with CoreDNS's `hosts` plugin (see docs/dns.md and deploy/base/dns/).
"""


def register(subparsers: Any) -> None:
    """Add the `dns` sub-command."""
    parser = subparsers.add_parser(
        "dns",
        help="per-node hosts file for per-unit StatefulSet DNS",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_cluster_arguments(parser, node=True)
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
    parser.set_defaults(func=run_command)


def run_command(args: argparse.Namespace) -> int:
    """Validate the flags (one-line errors), then run the daemon until SIGTERM/SIGINT."""
    check_cluster_arguments(args, "dns")
    domain = args.cluster_domain.strip(".").lower()
    if not _DOMAIN.match(domain):
        raise SystemExit(
            f"servicegroup dns: error: --cluster-domain {args.cluster_domain!r} is not a DNS name"
        )
    if not args.hosts_file.parent.is_dir():
        raise SystemExit(f"servicegroup dns: error: directory {args.hosts_file.parent} does not exist")
    if args.debounce < 0:
        raise SystemExit("servicegroup dns: error: --debounce must be >= 0")
    setup_logging_from_args(args)
    return asyncio.run(_main(args, domain))


async def _main(args: argparse.Namespace, domain: str) -> int:
    # imported here so that `servicegroup --help` does not load the client stack
    from servicegroup.dns.daemon import HostsDaemon
    from servicegroup.kube.informer import InformerFactory

    client = await connect(args.kubeconfig, "dns")
    factory = InformerFactory(client)
    daemon = HostsDaemon(
        factory, node=args.node, hosts_file=args.hosts_file, cluster_domain=domain, debounce=args.debounce
    )
    main = asyncio.current_task()
    assert main is not None
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, main.cancel)
    async with client, serve_health(args.health_listen, {"hosts-file": lambda: daemon.ready}):
        try:
            await daemon.run()
        except asyncio.CancelledError:
            return 0
        finally:
            await factory.stop()
    return 0
