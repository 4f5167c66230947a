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


def app_grid(name: str = "app", key: str = "location", **spec: Any) -> Obj:
    """A DeploymentGrid whose pods read ConfigMap `app-config` (volume, envFrom, env) and Secret
    `app-secret` (projected volume), with `spec` merged in."""
    container = {
        "name": "app",
        "image": "app:1",
        "envFrom": [{"configMapRef": {"name": "app-config"}}],
        "env": [
            {"name": "PLAIN", "valueFrom": {"configMapKeyRef": {"name": "unmanaged", "key": "k"}}},
            {"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "app-config", "key": "mode"}}},
        ],
    }
    volumes = [
        {"name": "cfg", "configMap": {"name": "app-config"}},
        {"name": "sec", "projected": {"sources": [{"secret": {"name": "app-secret"}}]}},
    ]
    return {
        "apiVersion": "superedge.io/v1",
        "kind": "DeploymentGrid",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "gridUniqKey": key,
            "template": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": {"labels": {"app": name}},
                    "spec": {"containers": [container], "volumes": volumes},
                },
            },
            **spec,
        },
    }


def config_grid(kind: str, name: str, key: str = "location", **spec: Any) -> Obj:
    """A ConfigMapGrid or SecretGrid (`kind`) with `spec` merged in."""
    return {
        "apiVersion": "servicegroup.io/v1alpha1",
        "kind": kind,
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"gridUniqKey": key, **spec},
    }
