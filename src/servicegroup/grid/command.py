"""`servicegroup render` and `servicegroup crds`: offline views of what the grid controller does.

`render` runs the controller's own `desired_children` over a grid manifest and a node list, so
reviewers and GitOps pipelines see exactly the children the controller would create (without the
ownerReference when the manifest has no uid, which only the live grid has). With `--configs`
(ConfigMapGrids/SecretGrids the workloads reference) and `--nodeunits` (NodeUnits whose labels
override rules and placeholders read), it shows per-unit configuration too; YAML output starts
each grid with a comment saying, per unit, the template, override rules and config version used.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TextIO

import orjson
import yaml

from servicegroup.api.labels import DEFAULT_TEMPLATE_NAME
from servicegroup.grid.configs import ConfigGrids
from servicegroup.grid.desired import Desired, UnitContext, desired_children
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
    render.add_argument(
        "--configs",
        metavar="FILE",
        help="ConfigMapGrid/SecretGrid manifests the workloads reference (those in -f count too)",
    )
    render.add_argument(
        "--nodeunits", metavar="FILE", help="NodeUnit manifests (labels for unitSelector and placeholders)"
    )
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
    nodes = _typed(args.nodes, ("Node",))
    configs = _typed(args.configs, ("ConfigMapGrid", "SecretGrid"))
    nodeunits = _typed(args.nodeunits, ("NodeUnit",))
    context_of = render_context(
        [*configs, *(g for g in grids if g.get("kind") in ("ConfigMapGrid", "SecretGrid"))], nodeunits
    )
    rendered = [(grid, render_desired(grid, nodes, context_of(_namespace(grid)))) for grid in grids]
    children = [desired.children[name] for _, desired in rendered for name in sorted(desired.children)]
    if args.output == "yaml":
        for grid, desired in rendered:
            sys.stdout.write("".join(f"# {line}\n" for line in summary(grid, desired)))
    _print(children, args.output, sys.stdout)
    return 0


def _typed(path: str | None, kinds: tuple[str, ...]) -> list[Obj]:
    """The objects of an optional file, all of one of `kinds` (one-line error otherwise)."""
    objects = list(_objects(_load("render", path))) if path else []
    for obj in objects:
        if obj.get("kind") not in kinds:
            raise _fail("render", f"{path}: expected {' or '.join(kinds)} objects, found {obj.get('kind')!r}")
    return objects


def render_context(config_grids: list[Obj], nodeunits: list[Obj]) -> Callable[[str], UnitContext]:
    """Namespace -> NodeUnit labels and that namespace's config grids, as the controller sees them."""
    by_key = {
        (str(g.get("kind")).removesuffix("Grid"), _namespace(g), (g.get("metadata") or {}).get("name")): g
        for g in config_grids
    }
    labels = {
        str((u.get("metadata") or {}).get("name")): dict((u.get("metadata") or {}).get("labels") or {})
        for u in nodeunits
    }

    def context(namespace: str) -> UnitContext:
        return UnitContext(labels, ConfigGrids(lambda kind, name: by_key.get((kind, namespace, name))))

    return context


def _namespace(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("namespace") or "default")


def render_grid(grid: Obj, nodes: list[Obj], context: UnitContext | None = None) -> list[Obj]:
    """The children of one grid manifest; SystemExit naming the units when any cannot be built."""
    desired = render_desired(grid, nodes, context)
    return [desired.children[name] for name in sorted(desired.children)]


def render_desired(grid: Obj, nodes: list[Obj], context: UnitContext | None = None) -> Desired:
    """`desired_children` of one grid manifest; SystemExit naming the units when any cannot be built."""
    kind = BY_KIND.get(str(grid.get("kind")))
    if kind is None or grid.get("apiVersion") != kind.grid.api_version:
        found = f"{grid.get('apiVersion')}/{grid.get('kind')}"
        expected = ", ".join(f"{k.grid.api_version} {k.kind}" for k in BY_KIND.values())
        raise _fail("render", f"not a grid: {found} (expected {expected})")
    metadata = grid.get("metadata") or {}
    grid = {**grid, "metadata": {**metadata, "namespace": _namespace(grid)}}
    key = (grid.get("spec") or {}).get("gridUniqKey") or ""
    desired = desired_children(kind, grid, unit_values(nodes, key) if kind.per_unit else [], context)
    if desired.problems:
        problems = listing((describe(u, desired.problems[u]) for u in sorted(desired.problems)), "; ")
        raise _fail("render", f"{kind.kind} {metadata.get('name')}: {problems}")
    return desired


def summary(grid: Obj, desired: Desired) -> list[str]:
    """Header lines: the grid, then per unit its template, override rules and config version."""
    name = (grid.get("metadata") or {}).get("name")
    lines = [f"{grid.get('kind')} {name}: {len(desired.children)} children"]
    for unit in sorted(u for u in desired.unit_of.values() if u):
        got = desired.rendered.get(unit) or {"template": DEFAULT_TEMPLATE_NAME}
        parts = [f"template {got['template']}"] if "template" in got else []
        if got.get("overrides"):
            parts.append(f"overrides {', '.join(got['overrides'])}")
        if got.get("configHash"):
            used = f" ({', '.join(got['configs'])})" if got.get("configs") else ""
            parts.append(f"config {got['configHash']}{used}")
        lines.append(f"  {unit}: {'; '.join(parts) or 'base'}")
    return lines


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
