"""`servicegroup sandbox`: serve the embedded API server until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sqlite3
from typing import Any

from servicegroup.sandbox.server import Sandbox


def parse_listen(value: str) -> tuple[str, int]:
    """`HOST:PORT` (PORT 0 = any free port) → (host, port)."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {value!r}")
    return host, int(port)


def register(subparsers: Any) -> None:
    """Add the `sandbox` sub-command."""
    parser = subparsers.add_parser(
        "sandbox",
        help="run an embedded Kubernetes API server (tests, demos)",
        description="Serve a Kubernetes API (kube-apiserver v1.3x semantics) until SIGINT/SIGTERM.",
    )
    parser.add_argument(
        "--listen",
        type=parse_listen,
        default=("127.0.0.1", 0),
        metavar="HOST:PORT",
        help="PORT 0 = free port",
    )
    parser.add_argument("--kubeconfig", required=True, metavar="PATH", help="kubeconfig to write for clients")
    parser.add_argument(
        "--simulate", action="store_true", help="schedule pods and maintain endpoints (KWOK-like)"
    )
    parser.add_argument("--data-dir", metavar="DIR", help="keep state in DIR across restarts (SQLite)")
    parser.set_defaults(func=run)


async def serve(args: argparse.Namespace) -> int:
    """Start, announce, wait for a stop signal, stop cleanly."""
    host, port = args.listen
    try:
        sandbox = Sandbox(data_dir=args.data_dir, simulate=args.simulate)
    except (OSError, sqlite3.Error) as err:
        raise SystemExit(
            f"servicegroup sandbox: error: cannot use --data-dir {args.data_dir}: {err}"
        ) from None
    try:
        url = await sandbox.start(host, port)
    except OSError as err:
        raise SystemExit(
            f"servicegroup sandbox: error: cannot listen on {host}:{port}: {err.strerror}"
        ) from None
    path = sandbox.write_kubeconfig(args.kubeconfig)
    print(f"sandbox API server listening on {url}", flush=True)
    print(f"export KUBECONFIG={path.resolve()}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await sandbox.stop()
    return 0


def run(args: argparse.Namespace) -> int:
    """Entry point of `servicegroup sandbox`."""
    return asyncio.run(serve(args))
