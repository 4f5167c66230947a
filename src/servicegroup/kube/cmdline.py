"""Command-line plumbing shared by every long-running component (manager, proxy, dns).

Each component has the same flags for reaching the cluster and serving health, and must fail with
one line (not a traceback) when they are wrong; keeping that here means the rules and wording are
the same everywhere.
"""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import AsyncIterator, Mapping

from servicegroup.kube.client import Client
from servicegroup.kube.logs import add_logging_arguments
from servicegroup.kube.serve import Check, HealthServer, parse_listen


def add_cluster_arguments(parser: argparse.ArgumentParser, *, node: bool) -> None:
    """--kubeconfig (and --node for per-node daemons), --health-listen and the logging flags."""
    parser.add_argument(
        "--kubeconfig", default=None, help="kubeconfig file (default: in-cluster service account)"
    )
    if node:
        parser.add_argument(
            "--node", default=os.environ.get("NODE_NAME"), help="this node's name (default: $NODE_NAME)"
        )
    parser.add_argument(
        "--health-listen",
        default=None,
        metavar="HOST:PORT",
        help="serve /healthz, /readyz and /metrics here (default: off)",
    )
    add_logging_arguments(parser)


def check_cluster_arguments(args: argparse.Namespace, command: str) -> None:
    """One-line errors for a missing --node or a malformed --health-listen."""
    if hasattr(args, "node") and not args.node:
        raise SystemExit(f"servicegroup {command}: error: --node is required (or set NODE_NAME)")
    if args.health_listen:
        try:
            parse_listen(args.health_listen)
        except ValueError as err:
            raise SystemExit(f"servicegroup {command}: error: --health-listen: {err}") from None


async def connect(kubeconfig: str | None, command: str, *, context: str | None = None) -> Client:
    """A Client from the kubeconfig (in-cluster when None); a one-line error when it cannot load."""
    try:
        return await Client.from_kubeconfig(kubeconfig, context=context)
    except Exception as err:  # the config library raises several unrelated types
        raise SystemExit(f"servicegroup {command}: error: cannot load cluster configuration: {err}") from None


@contextlib.asynccontextmanager
async def serve_health(listen: str | None, checks: Mapping[str, Check]) -> AsyncIterator[None]:
    """Serve /healthz, /readyz (all `checks` true) and /metrics for the block, when asked to."""
    if not listen:
        yield
        return
    server = HealthServer(listen)
    for name, check in checks.items():
        server.add_readiness_check(name, check)
    await server.start()
    try:
        yield
    finally:
        await server.stop()
