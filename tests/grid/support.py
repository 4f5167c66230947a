"""Builders and example loaders shared by the grid tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from servicegroup.kube.objects import deep_copy

EXAMPLES = Path(__file__).resolve().parents[2] / "src" / "servicegroup" / "examples"
Obj = dict[str, Any]


def example(name: str) -> Obj:
    """The first object of examples/<name>.yaml (a fresh copy)."""
    with open(EXAMPLES / f"{name}.yaml", encoding="utf-8") as stream:
        obj: Obj = next(doc for doc in yaml.safe_load_all(stream) if doc)
    return obj


def example_nodes() -> list[Obj]:
    """The docs' five nodes (location=beijing x2, location=guangzhou x3)."""
    with open(EXAMPLES / "00-nodes.yaml", encoding="utf-8") as stream:
        return [doc for doc in yaml.safe_load_all(stream) if doc]


def node(name: str, **labels: str) -> Obj:
    """A Node with these labels."""
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": dict(labels)}}


def with_identity(grid: Obj, uid: str = "uid-1", generation: int = 1) -> Obj:
    """A grid as the API server returns it: namespace, uid, generation, resourceVersion."""
    grid = deep_copy(grid)
    meta = grid["metadata"]
    meta.setdefault("namespace", "default")
    meta.update(uid=uid, generation=generation, resourceVersion="1")
    return grid
