"""The `servicegroup` command: a thin table of sub-commands.

Each capability owns its sub-commands in its own `command.py` with a `register(subparsers)`
function that sets `func` (args -> exit code), so adding a capability never means editing another
one's argument parsing. A user error is `raise SystemExit("servicegroup X: error: ...")`: one line
on stderr, exit code 1, no traceback.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Sequence

from servicegroup import __version__

COMMAND_MODULES = (
    "servicegroup.demo",
    "servicegroup.sandbox.command",
    "servicegroup.manager",
    "servicegroup.grid.command",
    "servicegroup.traffic.command",
    "servicegroup.dns.command",
)

DESCRIPTION = """\
Run SuperEdge ServiceGroup on any Kubernetes cluster.

  servicegroup demo                     the sandbox with the docs' five-node cluster, every capability
  servicegroup sandbox --listen ...     an embedded Kubernetes API server for tests and demos
  servicegroup manager --kubeconfig ... the cloud-side controllers (grid, site, fed)
  servicegroup proxy --node ...         the per-node topology proxy for kube-proxy and CoreDNS
  servicegroup dns --node ...           the per-node hosts file for per-unit StatefulSet DNS
  servicegroup render -f GRID.yaml      print, offline, the children a grid gets per unit
  servicegroup crds                     print the CustomResourceDefinitions
"""


def build_parser() -> argparse.ArgumentParser:
    """Assemble the parser from every capability that is installed."""
    parser = argparse.ArgumentParser(
        prog="servicegroup",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"servicegroup {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as err:
            if err.name != module_name:
                raise
            continue
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line and run the chosen sub-command; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        result = args.func(args)
    except KeyboardInterrupt:
        return 130
    return int(result or 0)
