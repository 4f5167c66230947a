"""CustomResourceDefinitions of ConfigMapGrid and SecretGrid (`servicegroup.io/v1alpha1`).

One ConfigMap/Secret `<grid>-<unit>` per unit of `gridUniqKey`: base data, then matching
`overrides` rules in order, then `units[<unit>]` (docs/site-config.md). Our own group, so the
SuperEdge API stays exactly SuperEdge's.
"""

from __future__ import annotations

import json
from typing import Any, Final

from servicegroup.api.grid_crds import (
    MAX_RULES,
    SELECTION_RULE,
    SUBDOMAIN_MAX,
    child_name_rules,
    conditions_schema,
    crd_manifest,
    grid_key_schema,
    object_schema,
    unit_selection,
)
from servicegroup.api.labels import OWN_GROUP, OWN_VERSION

Schema = dict[str, Any]

MAX_UNITS: Final = 10_000
_STR: Final[Schema] = {"type": "string"}
_STR_MAP: Final[Schema] = {"type": "object", "additionalProperties": _STR}
_BYTES_MAP: Final[Schema] = {"type": "object", "additionalProperties": {"type": "string", "format": "byte"}}
_INT32: Final[Schema] = {"type": "integer", "format": "int32"}
_INT64: Final[Schema] = {"type": "integer", "format": "int64"}


_CLUSTERS: Schema = {
    "type": "object",
    "additionalProperties": {"type": "string"},
    "description": "Fed grids: the member cluster that holds each unit (written by the fed controller).",
}


def _layer(secret: bool) -> dict[str, Schema]:
    """The data fields of one layer (base, rule or unit)."""
    if secret:
        return {"data": _BYTES_MAP, "stringData": _STR_MAP}
    return {"data": _STR_MAP, "binaryData": _BYTES_MAP}


def _spec(secret: bool) -> Schema:
    rule = object_schema(
        {**unit_selection(), **_layer(secret)}, extra={"x-kubernetes-validations": [SELECTION_RULE]}
    )
    properties: dict[str, Schema] = {
        "gridUniqKey": grid_key_schema(),
        **_layer(secret),
        "units": {
            "type": "object",
            "additionalProperties": object_schema(_layer(secret)),
            "maxProperties": MAX_UNITS,
            "description": "Unit -> data merged over the base and the rules (most specific wins).",
        },
        "overrides": {
            "type": "array",
            "items": rule,
            "maxItems": MAX_RULES,
            "description": "Rules selecting units by name, pattern or NodeUnit labels; applied in order.",
        },
    }
    if secret:
        properties["type"] = {
            "type": "string",
            "default": "Opaque",
            "description": "Secret type of every child (immutable on a Secret).",
        }
    return object_schema(properties, required=["gridUniqKey"])


def _status() -> Schema:
    state = object_schema({"dataHash": {**_STR, "description": "Hash of the unit's data."}})
    return object_schema(
        {
            "states": {"type": "object", "additionalProperties": state},
            "observedGeneration": _INT64,
            "units": _INT32,
            "readyUnits": _INT32,
            "clusters": _CLUSTERS,
            "conditions": conditions_schema(),
        }
    )


def crds() -> list[dict[str, Any]]:
    """ConfigMapGrid and SecretGrid CRDs (fresh, independent dicts)."""
    manifests = [
        crd_manifest(
            kind,
            plural,
            short,
            spec=_spec(secret),
            status=_status(),
            rules=child_name_rules(kind, SUBDOMAIN_MAX),
            group=OWN_GROUP,
            version=OWN_VERSION,
        )
        for kind, plural, short, secret in (
            ("ConfigMapGrid", "configmapgrids", "cmg", False),
            ("SecretGrid", "secretgrids", "secg", True),
        )
    ]
    copied: list[dict[str, Any]] = json.loads(json.dumps(manifests))
    return copied
