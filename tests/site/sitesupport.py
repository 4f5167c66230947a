"""Builders shared by the site tests."""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]


def node(name: str, ready: bool = True, **labels: str) -> Obj:
    """A Node with these labels and a Ready condition."""
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": dict(labels)},
        "spec": {},
        "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]},
    }


def unit(name: str, *, labels: dict[str, str] | None = None, **spec: Any) -> Obj:
    """A v1alpha2 NodeUnit; keyword arguments are its spec (setNode=..., nodes=..., selector=...)."""
    return {
        "apiVersion": "site.superedge.io/v1alpha2",
        "kind": "NodeUnit",
        "metadata": {"name": name, "labels": dict(labels or {})},
        "spec": spec,
    }


def group(name: str, **spec: Any) -> Obj:
    """A v1alpha2 NodeGroup."""
    return {
        "apiVersion": "site.superedge.io/v1alpha2",
        "kind": "NodeGroup",
        "metadata": {"name": name},
        "spec": spec,
    }
