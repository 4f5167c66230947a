"""Fixtures for the sandbox API tests: a tiny raw HTTP helper over the root `sandbox` fixture."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest

from servicegroup.sandbox import Sandbox
from waits import eventually


class Api:
    """Raw requests against the sandbox, returning (status, decoded JSON body)."""

    def __init__(self, url: str, session: aiohttp.ClientSession) -> None:
        self.url = url
        self.session = session

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        params: dict[str, str] | None = None,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        data = None if body is None else orjson.dumps(body)
        hdrs = {"Content-Type": content_type, **(headers or {})}
        async with self.session.request(method, self.url + path, data=data, params=params, headers=hdrs) as r:
            raw = await r.read()
            return r.status, orjson.loads(raw) if raw and raw[:1] in b"{[" else raw.decode()

    async def ok(self, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        status, out = await self.call(method, path, body, **kw)
        assert status < 300, (status, out)
        return out


@pytest.fixture
async def api(sandbox: Sandbox) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession() as session:
        yield Api(sandbox.url, session)


def deployment(name: str, labels: dict[str, str] | None = None, replicas: int = 1) -> dict[str, Any]:
    """A minimal valid apps/v1 Deployment."""
    sel = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": sel},
            "template": {
                "metadata": {"labels": sel},
                "spec": {"containers": [{"name": "c", "image": "nginx"}]},
            },
        },
    }


def configmap(name: str, labels: dict[str, str] | None = None, **data: str) -> dict[str, Any]:
    """A ConfigMap."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "labels": labels or {}},
        "data": data,
    }


def widget_crd(group: str = "example.com") -> dict[str, Any]:
    """A small namespaced CRD with status+scale, printer columns, a default, and a CEL rule."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {
                "plural": "widgets",
                "singular": "widget",
                "kind": "Widget",
                "listKind": "WidgetList",
                "shortNames": ["wd"],
                "categories": ["all"],
            },
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "subresources": {
                        "status": {},
                        "scale": {
                            "specReplicasPath": ".spec.replicas",
                            "statusReplicasPath": ".status.replicas",
                            "labelSelectorPath": ".status.selector",
                        },
                    },
                    "additionalPrinterColumns": [
                        {"name": "Size", "type": "string", "jsonPath": ".spec.size"},
                        {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
                    ],
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {
                                    "type": "object",
                                    "x-kubernetes-validations": [
                                        {"rule": "self.replicas <= 10", "message": "too many replicas"}
                                    ],
                                    "properties": {
                                        "size": {"type": "string", "enum": ["small", "large"]},
                                        "replicas": {"type": "integer", "minimum": 0, "default": 1},
                                        "extra": {
                                            "type": "object",
                                            "x-kubernetes-preserve-unknown-fields": True,
                                        },
                                    },
                                },
                                "status": {
                                    "type": "object",
                                    "properties": {
                                        "replicas": {"type": "integer"},
                                        "selector": {"type": "string"},
                                    },
                                },
                            },
                        }
                    },
                }
            ],
        },
    }


def widget(name: str, **spec: Any) -> dict[str, Any]:
    """A Widget custom resource."""
    return {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": name}, "spec": spec}


@pytest.fixture
def make() -> Any:
    """Object builders for the tests (conftest helpers are reachable only through fixtures)."""
    import types

    return types.SimpleNamespace(
        deployment=deployment, configmap=configmap, widget_crd=widget_crd, widget=widget
    )


@pytest.fixture(name="eventually")
def eventually_fixture() -> Any:
    """tests/waits.py's bounded wait as a fixture, for tests that prefer injection."""
    return eventually
