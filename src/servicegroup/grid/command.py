"""`servicegroup render` and `servicegroup crds`: offline views of what the grid controller does.

`render` runs the controller's own `desired_children` over a grid manifest and a node list, so
reviewers and GitOps pipelines see exactly the children the controller would create (without the
ownerReference when the manifest has no uid, which only the live grid has).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Iterator
from typing import Any, TextIO

import orjson
import yaml

from servicegroup.api.labels import GRID_API_VERSION
from servicegroup.grid.desired import desired_children
from servicegroup.grid.kinds import BY_KIND
from servicegroup.grid.status import describe, listing
from servicegroup.grid.units import unit_values

Obj = dict[str, Any]


def register(subparsers: Any) -> None:
    """Add `render` and `crds` to the CLI."""
    render = subparsers.add_parser(
        "render",
        help="print, offline, the children a grid gets per unit",
        description="Print the Deployments/StatefulSets/Service the grid controller would create "
        "for the grids in FILE, given the nodes in NODES (no cluster needed).",
    )
    render.add_argument(
        "-f", "--filename", required=True, metavar="FILE", help="grid manifest(s); '-' = stdin"
    )
    render.add_argument("--nodes", metavar="NODES", help="Node manifest(s) or a List (needed for DG/SSG)")
    render.add_argument("-o", "--output", choices=("yaml", "json"), default="yaml", help="output format")
    render.set_defaults(func=run_render)
    crds = subparsers.add_parser(
        "crds",
        help="print the CustomResourceDefinitions",
        description="Print every CustomResourceDefinition servicegroup installs, in apply order.",
    )
    crds.add_argument("-o", "--output", choices=("yaml", "json"), default="yaml", help="output format")
    crds.set_defaults(func=run_crds)


def _fail(command: str, message: str) -> SystemExit:
    return SystemExit(f"servicegroup {command}: error: {message}")


def run_render(args: argparse.Namespace) -> int:
    """Entry point of `servicegroup render`."""
    grids = list(_objects(_load("render", args.filename)))
    nodes = list(_objects(_load("render", args.nodes))) if args.nodes else []
    for node in nodes:
        if node.get("kind") != "Node":
            raise _fail("render", f"{args.nodes}: expected Node objects, found {node.get('kind')!r}")
    children = [child for grid in grids for child in render_grid(grid, nodes)]
    _print(children, args.output, sys.stdout)
    return 0


def render_grid(grid: Obj, nodes: list[Obj]) -> list[Obj]:
    """The children of one grid manifest; SystemExit naming the units when any cannot be built."""
    kind = BY_KIND.get(str(grid.get("kind")))
    if kind is None or grid.get("apiVersion") != GRID_API_VERSION:
        found = f"{grid.get('apiVersion')}/{grid.get('kind')}"
        raise _fail("render", f"not a grid: {found} (expected {GRID_API_VERSION} {', '.join(BY_KIND)})")
    metadata = grid.get("metadata") or {}
    grid = {**grid, "metadata": {**metadata, "namespace": metadata.get("namespace") or "default"}}
    key = (grid.get("spec") or {}).get("gridUniqKey") or ""
    desired = desired_children(kind, grid, unit_values(nodes, key) if kind.per_unit else [])
    if desired.problems:
        problems = listing((describe(u, desired.problems[u]) for u in sorted(desired.problems)), "; ")
        raise _fail("render", f"{kind.kind} {metadata.get('name')}: {problems}")
    return [desired.children[name] for name in sorted(desired.children)]


def run_crds(args: argparse.Namespace) -> int:
    """Entry point of `servicegroup crds`."""
    from servicegroup.api.crds import all_crds

    _print(all_crds(), args.output, sys.stdout)
    return 0


def _load(command: str, path: str) -> list[Any]:
    try:
        if path == "-":
            return list(yaml.safe_load_all(sys.stdin))
        with open(path, encoding="utf-8") as stream:
            return list(yaml.safe_load_all(stream))
    except OSError as err:
        raise _fail(command, f"cannot read {path}: {err.strerror}") from None
    except yaml.YAMLError as err:
        raise _fail(command, f"{path} is not valid YAML: {' '.join(str(err).split())}") from None


def _objects(documents: Iterable[Any]) -> Iterator[Obj]:
    """Every object in the documents, with `kind: List` flattened and empty documents skipped."""
    for document in documents:
        if document is None:
            continue
        if not isinstance(document, dict):
            raise _fail("render", f"expected Kubernetes objects, found a {type(document).__name__}")
        if str(document.get("kind", "")).endswith("List") and "items" in document:
            yield from _objects(document["items"] or [])
        else:
            yield document


def _print(objects: list[Obj], output: str, stream: TextIO) -> None:
    if output == "json":
        document = {"apiVersion": "v1", "kind": "List", "items": objects}
        stream.write(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        stream.write(yaml.safe_dump_all(objects, sort_keys=False, default_flow_style=False))
