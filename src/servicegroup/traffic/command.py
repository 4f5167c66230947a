"""`servicegroup proxy`: the per-node topology proxy (a DaemonSet, one per node)."""

from __future__ import annotations

import argparse
import asyncio
import signal
from pathlib import Path
from typing import Any

from servicegroup.kube.cmdline import add_cluster_arguments, check_cluster_arguments, connect, serve_health
from servicegroup.kube.logs import setup_logging_from_args
from servicegroup.kube.serve import parse_listen

DESCRIPTION = """\
Serve kube-proxy and CoreDNS a read-only view of Services, Endpoints, EndpointSlices, Nodes and
Namespaces in which a Service annotated topologyKeys='["<label key>"]' has only the endpoints of
this node's unit. Point kube-proxy (contentType: application/json) and CoreDNS's kubernetes
plugin at --listen; see docs/traffic.md and deploy/base/proxy/.
"""


def register(subparsers: Any) -> None:
    """Add the `proxy` sub-command."""
    parser = subparsers.add_parser(
        "proxy",
        help="per-node topology proxy for kube-proxy and CoreDNS",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_cluster_arguments(parser, node=True)
    parser.add_argument(
        "--listen",
        default="127.0.0.1:51006",
        metavar="HOST:PORT",
        help="serve here (default: 127.0.0.1:51006)",
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help="persist the served view here, to serve it after an offline restart",
    )
    parser.add_argument(
        "--max-backlog",
        type=int,
        default=100_000,
        help="events a watch client may fall behind before it is disconnected (default: 100000)",
    )
    parser.set_defaults(func=run_command)


def run_command(args: argparse.Namespace) -> int:
    """Validate the flags (one-line errors), then serve until SIGTERM/SIGINT."""
    check_cluster_arguments(args, "proxy")
    try:
        host, port = parse_listen(args.listen)
    except ValueError as err:
        raise SystemExit(f"servicegroup proxy: error: {err}") from None
    if args.max_backlog < 1:
        raise SystemExit("servicegroup proxy: error: --max-backlog must be at least 1")
    if args.cache_dir is not None and args.cache_dir.exists() and not args.cache_dir.is_dir():
        raise SystemExit(f"servicegroup proxy: error: --cache-dir {args.cache_dir} is not a directory")
    setup_logging_from_args(args)
    return asyncio.run(_main(args, host, port))


async def _main(args: argparse.Namespace, host: str, port: int) -> int:
    from servicegroup.traffic.proxy import Proxy
    from servicegroup.traffic.server import ServerOptions

    client = await connect(args.kubeconfig, "proxy")
    options = ServerOptions(max_backlog=args.max_backlog)
    proxy = Proxy(client, args.node, cache_dir=args.cache_dir, options=options, tune_gc=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with client:
        try:
            await proxy.start(host, port)
        except OSError as err:
            raise SystemExit(f"servicegroup proxy: error: cannot listen on {args.listen}: {err}") from None
        try:
            async with serve_health(args.health_listen, {"view": proxy.ready.is_set}):
                await stop.wait()
        finally:
            await proxy.stop()
    return 0
