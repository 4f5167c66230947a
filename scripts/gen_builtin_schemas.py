"""Generate src/servicegroup/sandbox/data/builtin-schemas.json.gz from kubernetes-validate.

The sandbox serves /openapi/v2 and /openapi/v3, checks unknown fields and computes strategic
merge patches from the real schemas of the built-in kinds. kubernetes-validate (a test extra)
ships those schemas as JSON Schema; this script keeps only the kinds the sandbox serves and the
definitions they reference, turns them back into OpenAPI v3 shape (no `null` types, no
apiVersion/kind enums, `#/components/schemas/` references) and writes one gzip-compressed file,
so the runtime never imports kubernetes-validate.

Run: .venv/bin/python scripts/gen_builtin_schemas.py
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import kubernetes_validate

from servicegroup.sandbox.openapi import references

K8S_VERSION = "1.37.0"
OUT = Path(__file__).resolve().parent.parent / "src/servicegroup/sandbox/data/builtin-schemas.json.gz"
ROOTS = [
    "io.k8s.api.core.v1.Namespace",
    "io.k8s.api.core.v1.Node",
    "io.k8s.api.core.v1.Pod",
    "io.k8s.api.core.v1.Service",
    "io.k8s.api.core.v1.Endpoints",
    "io.k8s.api.core.v1.ConfigMap",
    "io.k8s.api.core.v1.Secret",
    "io.k8s.api.core.v1.Event",
    "io.k8s.api.events.v1.Event",
    "io.k8s.api.discovery.v1.EndpointSlice",
    "io.k8s.api.coordination.v1.Lease",
    "io.k8s.api.apps.v1.Deployment",
    "io.k8s.api.apps.v1.StatefulSet",
    "io.k8s.api.apps.v1.ReplicaSet",
    "io.k8s.api.apps.v1.ControllerRevision",
    "io.k8s.api.apps.v1.DaemonSet",
    "io.k8s.api.policy.v1.PodDisruptionBudget",
    "io.k8s.api.rbac.v1.ClusterRole",
    "io.k8s.api.rbac.v1.ClusterRoleBinding",
    "io.k8s.api.rbac.v1.Role",
    "io.k8s.api.rbac.v1.RoleBinding",
    "io.k8s.api.scheduling.v1.PriorityClass",
    "io.k8s.api.autoscaling.v1.Scale",
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinition",
    "io.k8s.apimachinery.pkg.apis.meta.v1.Status",
    "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions",
]
REF_PREFIX = "#/$defs/"
OUT_PREFIX = "#/components/schemas/"


def _load() -> dict[str, Any]:
    base = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema" / f"v{K8S_VERSION}-local"
    defs: dict[str, Any] = json.loads((base / "_definitions.json").read_text())["$defs"]
    return defs


def _closure(defs: dict[str, Any]) -> list[str]:
    todo, seen = list(ROOTS), set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo.extend(references(defs[name], REF_PREFIX) - seen)
    return sorted(seen)


def _normalize(node: Any, parent_key: str = "") -> Any:
    """JSON Schema (as kubernetes-validate writes it) back to the apiserver's OpenAPI v3 shape."""
    if isinstance(node, list):
        return [_normalize(v) for v in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "type" and isinstance(value, list):
            types = [t for t in value if t != "null"]
            out[key] = types[0] if len(types) == 1 else types
        elif key == "$ref" and isinstance(value, str):
            out[key] = OUT_PREFIX + value[len(REF_PREFIX) :]
        elif key == "properties" and isinstance(value, dict):
            out[key] = {name: _normalize(prop, name) for name, prop in value.items()}
        else:
            out[key] = _normalize(value, key)
    if parent_key in ("apiVersion", "kind"):
        out.pop("enum", None)
    return out


def main() -> None:
    defs = _load()
    schemas = {name: _normalize(defs[name]) for name in _closure(defs)}
    payload = json.dumps({"kubernetesVersion": K8S_VERSION, "schemas": schemas}, sort_keys=True)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_bytes(gzip.compress(payload.encode(), mtime=0))
    print(f"{OUT}: {len(schemas)} schemas, {OUT.stat().st_size} bytes")


if __name__ == "__main__":
    main()
