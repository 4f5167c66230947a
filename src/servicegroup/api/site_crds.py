"""NodeUnit and NodeGroup CRDs (`site.superedge.io`), field names exactly as SuperEdge v1alpha2.

Only v1alpha2 is served. SuperEdge also serves v1alpha1, whose JSON names are all lower-case
(`setnode`, `readyrate`, `nodeunits`, ...); converting between the two needs a conversion webhook,
because the `None` strategy only rewrites `apiVersion` and would store `setnode` under a v1alpha2
object where the schema prunes it. We run no webhook, so v1alpha1 is not served.

Additions to SuperEdge's schema (all optional, all under `status`): `conditions` on both kinds and
`type` in a NodeGroup's `workloadStatus` items.
"""

from __future__ import annotations

import copy
from typing import Any

from servicegroup.api.labels import SITE_GROUP, SITE_VERSION

_STRING: dict[str, Any] = {"type": "string"}
_STRING_LIST: dict[str, Any] = {"type": "array", "items": _STRING}
_STRING_MAP: dict[str, Any] = {"type": "object", "additionalProperties": _STRING}

_SELECTOR: dict[str, Any] = {
    "type": "object",
    "description": "A label selector; `annotations` is accepted for SuperEdge compatibility and ignored.",
    "properties": {
        "matchLabels": _STRING_MAP,
        "matchExpressions": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["key", "operator"],
                "properties": {
                    "key": _STRING,
                    "operator": {"type": "string", "enum": ["In", "NotIn", "Exists", "DoesNotExist"]},
                    "values": _STRING_LIST,
                },
            },
        },
        "annotations": _STRING_MAP,
    },
}

_TAINT: dict[str, Any] = {
    "type": "object",
    "required": ["key", "effect"],
    "properties": {
        "key": _STRING,
        "value": _STRING,
        "effect": {"type": "string", "enum": ["NoSchedule", "PreferNoSchedule", "NoExecute"]},
        "timeAdded": {"type": "string", "format": "date-time"},
    },
}

_CONDITIONS: dict[str, Any] = {
    "type": "array",
    "items": {
        "type": "object",
        "required": ["type", "status"],
        "properties": {
            "type": _STRING,
            "status": {"type": "string", "enum": ["True", "False", "Unknown"]},
            "reason": _STRING,
            "message": _STRING,
            "observedGeneration": {"type": "integer", "format": "int64"},
            "lastTransitionTime": {"type": "string", "format": "date-time"},
        },
    },
    "x-kubernetes-list-type": "map",
    "x-kubernetes-list-map-keys": ["type"],
}

_OBJECT_REFERENCE: dict[str, Any] = {
    "type": "object",
    "properties": dict.fromkeys(
        ("apiVersion", "fieldPath", "kind", "name", "namespace", "resourceVersion", "uid"), _STRING
    ),
}


def _root(spec: dict[str, Any], status: dict[str, Any]) -> dict[str, Any]:
    """An object schema with these `spec` and `status` properties."""
    return {
        "type": "object",
        "properties": {
            "apiVersion": _STRING,
            "kind": _STRING,
            "metadata": {"type": "object"},
            "spec": {"type": "object", "properties": spec},
            "status": {"type": "object", "properties": status},
        },
    }


NODEUNIT_SCHEMA = _root(
    {
        "type": {
            "type": "string",
            "default": "edge",
            "description": "edge, cloud, master or other (not validated, as in SuperEdge).",
        },
        "unschedulable": {"type": "boolean", "default": False},
        "nodes": _STRING_LIST,
        "selector": _SELECTOR,
        "setNode": {
            "type": "object",
            "properties": {
                "labels": _STRING_MAP,
                "annotations": _STRING_MAP,
                "taints": {"type": "array", "items": _TAINT},
            },
        },
        "autonomyLevel": {"type": "string", "enum": ["L3", "L4", "L5"], "default": "L3"},
        "unitCredentialConfigMapRef": _OBJECT_REFERENCE,
        "unitClusterInfo": {
            "type": "object",
            "properties": {"storageType": _STRING, "parameters": _STRING_MAP},
        },
    },
    {
        "readyRate": _STRING,
        "readyNodes": _STRING_LIST,
        "notReadyNodes": _STRING_LIST,
        "unitClusterStatus": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        "conditions": _CONDITIONS,
    },
)

NODEGROUP_SCHEMA = _root(
    {
        "nodeUnits": _STRING_LIST,
        "selector": _SELECTOR,
        "autoFindNodeKeys": _STRING_LIST,
        "workload": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"name": _STRING, "type": _STRING, "selector": _SELECTOR},
            },
        },
    },
    {
        "unitNumber": {"type": "integer", "default": 0},
        "nodeUnits": _STRING_LIST,
        "workloadStatus": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "workloadName": _STRING,
                    "type": _STRING,
                    "readyUnit": _STRING_LIST,
                    "notReadyUnit": _STRING_LIST,
                },
            },
        },
        "conditions": _CONDITIONS,
    },
)

_AGE = {"name": "AGE", "type": "date", "jsonPath": ".metadata.creationTimestamp"}


def _crd(
    *,
    kind: str,
    plural: str,
    short_name: str,
    categories: list[str],
    schema: dict[str, Any],
    columns: list[dict[str, Any]],
) -> dict[str, Any]:
    """One cluster-scoped CRD with a status subresource, serving only v1alpha2."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{SITE_GROUP}"},
        "spec": {
            "group": SITE_GROUP,
            "scope": "Cluster",
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": kind.lower(),
                "shortNames": [short_name],
                **({"categories": categories} if categories else {}),
            },
            "versions": [
                {
                    "name": SITE_VERSION,
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": copy.deepcopy(schema)},
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": copy.deepcopy(columns),
                }
            ],
        },
    }


def crds() -> list[dict[str, Any]]:
    """The NodeUnit and NodeGroup CRDs, in apply order (fresh, independent dicts on every call)."""
    return [
        _crd(
            kind="NodeUnit",
            plural="nodeunits",
            short_name="nu",
            categories=[],
            schema=NODEUNIT_SCHEMA,
            columns=[
                {"name": "TYPE", "type": "string", "jsonPath": ".spec.type"},
                {"name": "READY", "type": "string", "jsonPath": ".status.readyRate"},
                _AGE,
                {"name": "DELETING", "type": "date", "jsonPath": ".metadata.deletionTimestamp"},
            ],
        ),
        _crd(
            kind="NodeGroup",
            plural="nodegroups",
            short_name="ng",
            categories=["all"],
            schema=NODEGROUP_SCHEMA,
            columns=[
                {"name": "UNITS", "type": "integer", "jsonPath": ".status.unitNumber"},
                _AGE,
            ],
        ),
    ]
