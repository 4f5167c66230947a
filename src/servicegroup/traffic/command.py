"""`servicegroup proxy`: the per-node topology proxy (a DaemonSet, one per node)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from servicegroup.kube.logs import add_logging_arguments, setup_logging_from_args
from servicegroup.kube.serve import parse_listen

DESCRIPTION = """\
Serve kube-proxy and CoreDNS a read-only view of Services, Endpoints, EndpointSlices, Nodes and
Namespaces in which a Service annotated topologyKeys='["<label key>"]' has only the endpoints of
this node's unit. Point kube-proxy (contentType: application/json) and CoreDNS's kubernetes
plugin at --listen; see docs/traffic.md and deploy/traffic/.
"""


def register(subparsers: Any) -> None:
    """Add the `proxy` sub-command."""
    parser = subparsers.add_parser(
        "proxy",
        help="per-node topology proxy for kube-proxy and CoreDNS",
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
        "--health-listen", default=None, metavar="HOST:PORT", help="serve /healthz, /readyz and /metrics here"
    )
    parser.add_argument(
        "--max-backlog",
        type=int,
        default=100_000,
        help="events a watch client may fall behind before it is disconnected (default: 100000)",
    )
    add_logging_arguments(parser)
    parser.set_defaults(func=run_command)


def run_command(args: argparse.Namespace) -> int:
    """Validate the flags (one-line errors), then serve until SIGTERM/SIGINT."""
    if not args.node:
        raise SystemExit("servicegroup proxy: error: --node is required (or set NODE_NAME)")
    try:
        host, port = parse_listen(args.listen)
        if args.health_listen:
            parse_listen(args.health_listen)
    except ValueError as err:
        raise SystemExit(f"servicegroup proxy: error: {err}") from None
    if args.max_backlog < 1:
        raise SystemExit("servicegroup proxy: error: --max-backlog must be at least 1")
    if args.cache_dir is not None and args.cache_dir.exists() and not args.cache_dir.is_dir():
        raise SystemExit(f"servicegroup proxy: error: --cache-dir {args.cache_dir} is not a directory")
    setup_logging_from_args(args)
    return asyncio.run(_main(args, host, port))


async def _main(args: argparse.Namespace, host: str, port: int) -> int:
    from servicegroup.kube.client import Client
    from servicegroup.traffic.proxy import Proxy
    from servicegroup.traffic.server import ServerOptions

    try:
        client = await Client.from_kubeconfig(args.kubeconfig)
    except Exception as err:  # the config library raises several unrelated types
        raise SystemExit(f"servicegroup proxy: error: cannot load cluster configuration: {err}") from err
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
            async with _health(args.health_listen, proxy):
                await stop.wait()
        finally:
            await proxy.stop()
    return 0


@contextlib.asynccontextmanager
async def _health(listen: str | None, proxy: Any) -> AsyncIterator[None]:
    """Serve health and metrics while the proxy runs, when asked to."""
    if not listen:
        yield
        return
    from servicegroup.kube.serve import HealthServer

    server = HealthServer(listen)
    server.add_readiness_check("view", proxy.ready.is_set)
    await server.start()
    try:
        yield
    finally:
        await server.stop()
