"""OpenAPI documents of the sandbox, and the built-in kinds' schemas the other modules share.

kubectl 1.37 reads `/openapi/v3` first: it decides on server-side field validation by finding, in
the group-version document, a PATCH operation tagged with the kind's `x-kubernetes-group-version-kind`
that lists a `fieldValidation` parameter (cli-runtime `query_param_verifier_v3.go`); `kubectl
explain` and client-side `kubectl apply` read the component schemas (the latter needs the
`x-kubernetes-patch-merge-key`/`-strategy` extensions). `/openapi/v2` is the fallback for older
clients. The built-in schemas come from `data/builtin-schemas.json.gz`, generated from
kubernetes-validate by `scripts/gen_builtin_schemas.py` and loaded once, lazily.
"""

from __future__ import annotations

import copy
import functools
import gzip
import hashlib
import struct
from collections.abc import Iterable
from importlib import resources
from typing import Any

import orjson
import yaml

from servicegroup.sandbox.resources import ResourceType

Schema = dict[str, Any]

V3_PREFIX = "#/components/schemas/"
V2_PREFIX = "#/definitions/"
_META = "io.k8s.apimachinery.pkg.apis.meta.v1."
_OBJECT_META = f"{V3_PREFIX}{_META}ObjectMeta"


@functools.cache
def builtin_schemas() -> dict[str, Schema]:
    """Every built-in component schema by its definition name (OpenAPI v3 shape); read-only."""
    raw = resources.files("servicegroup.sandbox").joinpath("data/builtin-schemas.json.gz").read_bytes()
    schemas: dict[str, Schema] = orjson.loads(gzip.decompress(raw))["schemas"]
    return schemas


@functools.cache
def _gvk_index() -> dict[tuple[str, str, str], str]:
    index: dict[tuple[str, str, str], str] = {}
    for name, schema in builtin_schemas().items():
        for gvk in schema.get("x-kubernetes-group-version-kind", ()):
            index[(gvk["group"], gvk["version"], gvk["kind"])] = name
    return index


def definition_name(group: str, kind: str, version: str | None = None) -> str | None:
    """The schema name of a built-in kind (any served version when `version` is None)."""
    for (g, v, k), name in _gvk_index().items():
        if g == group and k == kind and version in (None, v):
            return name
    return None


def resolve(schema: Schema | None) -> Schema | None:
    """`schema` with a `$ref` to a built-in component followed (also inside a one-element allOf)."""
    if schema is None:
        return None
    ref = schema.get("$ref")
    if ref is None and len(schema.get("allOf", ())) == 1:
        ref = schema["allOf"][0].get("$ref")
    if isinstance(ref, str) and ref.startswith(V3_PREFIX):
        return builtin_schemas().get(ref[len(V3_PREFIX) :])
    return schema


def child(schema: Schema | None, key: str) -> Schema | None:
    """The schema of property `key` of an object schema (or of its map values), refs unresolved.

    Unresolved because the patch extensions sit beside the `$ref`, on the property itself.
    """
    node = resolve(schema)
    if node is None:
        return None
    props = node.get("properties")
    if isinstance(props, dict) and key in props:
        prop: Schema = props[key]
        return prop
    extra = node.get("additionalProperties")
    return extra if isinstance(extra, dict) else None


def items(schema: Schema | None) -> Schema | None:
    """The item schema of an array schema, refs unresolved."""
    node = resolve(schema)
    found = node.get("items") if node is not None else None
    return found if isinstance(found, dict) else None


# ---------------------------------------------------------------------------------------------
# documents

_K8S_VERSION = "v1.37.0"
_PATCH_TYPES = (
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
)
_WRITE_PARAMS = ("dryRun", "fieldManager", "fieldValidation")
_PARAM_DOCS = {
    "dryRun": "When present, indicates that modifications should not be persisted.",
    "fieldManager": "fieldManager is a name associated with the actor or entity making these changes.",
    "fieldValidation": (
        "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) "
        "containing unknown or duplicate fields. Valid values are: - Ignore - Warn - Strict"
    ),
    "force": 'Force is going to "force" Apply requests. It must be false for non-apply patch requests.',
    "pretty": "If 'true', then the output is pretty printed.",
}


def references(node: Any, prefix: str = V3_PREFIX) -> set[str]:
    """The names of the schemas `node` references (`$ref`s starting with `prefix`), at any depth."""
    found: set[str] = set()
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            ref = item.get("$ref")
            if isinstance(ref, str) and ref.startswith(prefix):
                found.add(ref[len(prefix) :])
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


def _closure(roots: Iterable[Schema]) -> dict[str, Schema]:
    """The built-in component schemas the given schemas reference, transitively."""
    todo = references(list(roots))
    out: dict[str, Schema] = {}
    schemas = builtin_schemas()
    while todo:
        name = todo.pop()
        if name in out or name not in schemas:
            continue
        out[name] = schemas[name]
        todo |= references(schemas[name]) - out.keys()
    return out


def _custom_name(group: str, version: str, kind: str) -> str:
    """`io.superedge.v1.DeploymentGrid`: the apiserver's component name for a CRD kind."""
    return ".".join([*reversed(group.split(".")), version, kind])


def _crd_version_schema(crds: list[dict[str, Any]], rt: ResourceType) -> Schema:
    for crd in crds:
        spec = crd.get("spec") or {}
        if spec.get("group") != rt.group or (spec.get("names") or {}).get("kind") != rt.kind:
            continue
        for ver in spec.get("versions") or []:
            if ver.get("name") == rt.version:
                found = (ver.get("schema") or {}).get("openAPIV3Schema")
                if isinstance(found, dict):
                    return found
    return {"type": "object", "x-kubernetes-preserve-unknown-fields": True}


def _custom_schema(crds: list[dict[str, Any]], rt: ResourceType) -> Schema:
    """A CRD version's schema as the apiserver publishes it: typed apiVersion/kind/metadata, GVK."""
    schema = copy.deepcopy(_crd_version_schema(crds, rt))
    schema.setdefault("type", "object")
    props = schema.setdefault("properties", {})
    props["apiVersion"] = {"type": "string", "description": _API_VERSION_DOC}
    props["kind"] = {"type": "string", "description": _KIND_DOC}
    props["metadata"] = {"$ref": _OBJECT_META, "description": "Standard object's metadata."}
    schema["x-kubernetes-group-version-kind"] = [{"group": rt.group, "version": rt.version, "kind": rt.kind}]
    return schema


_API_VERSION_DOC = "APIVersion defines the versioned schema of this representation of an object."
_KIND_DOC = "Kind is a string value representing the REST resource this object represents."


def _kind_schemas(types: Iterable[ResourceType], crds: list[dict[str, Any]]) -> dict[str, Schema]:
    """Component schemas of the given types and everything they reference."""
    own: dict[str, Schema] = {}
    for rt in types:
        if rt.custom:
            own[_custom_name(rt.group, rt.version, rt.kind)] = _custom_schema(crds, rt)
            continue
        name = definition_name(rt.group, rt.kind, rt.version)
        if name is not None:
            own[name] = builtin_schemas()[name]
    if any(rt.subresources & {"scale"} for rt in types):
        own["io.k8s.api.autoscaling.v1.Scale"] = builtin_schemas()["io.k8s.api.autoscaling.v1.Scale"]
    return {**_closure(own.values()), **own}


def _schema_ref(rt: ResourceType) -> str:
    name = (
        _custom_name(rt.group, rt.version, rt.kind)
        if rt.custom
        else definition_name(rt.group, rt.kind, rt.version)
    )
    return V3_PREFIX + (name or _OBJECT_META[len(V3_PREFIX) :])


def _param(name: str) -> Schema:
    kind = "boolean" if name == "force" else "string"
    return {
        "name": name,
        "in": "query",
        "description": _PARAM_DOCS[name],
        "schema": {"type": kind, "uniqueItems": True},
    }


def _patch_types(rt: ResourceType, subresource: str) -> tuple[str, ...]:
    """kubectl apply sends a strategic merge patch only where the PATCH body lists it: not for CRs."""
    if rt.custom and subresource != "scale":
        return tuple(t for t in _PATCH_TYPES if "strategic" not in t)
    return _PATCH_TYPES


def _operation(rt: ResourceType, action: str, verb: str, *, subresource: str = "") -> Schema:
    gvk_source = ("autoscaling", "v1", "Scale") if subresource == "scale" else (rt.group, rt.version, rt.kind)
    ref = V3_PREFIX + "io.k8s.api.autoscaling.v1.Scale" if subresource == "scale" else _schema_ref(rt)
    body = {"$ref": ref}
    op: Schema = {
        "operationId": f"{action}{rt.kind}{subresource.capitalize()}",
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": dict(zip(("group", "version", "kind"), gvk_source, strict=True)),
        "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": body}}}},
    }
    params = [_param("pretty")]
    if verb in ("post", "put", "patch"):
        params += [_param(p) for p in _WRITE_PARAMS]
        types = _patch_types(rt, subresource) if verb == "patch" else ("*/*",)
        schema = {"type": "object"} if verb == "patch" else body
        op["requestBody"] = {"content": {t: {"schema": schema} for t in types}, "required": True}
    if verb == "patch":
        params.append(_param("force"))
    op["parameters"] = params
    return op


def _base(rt: ResourceType) -> str:
    return f"/apis/{rt.group}/{rt.version}" if rt.group else f"/api/{rt.version}"


def _paths(rt: ResourceType) -> dict[str, Schema]:
    scope = "/namespaces/{namespace}" if rt.namespaced else ""
    collection = f"{_base(rt)}{scope}/{rt.plural}"
    item = collection + "/{name}"
    paths: dict[str, Schema] = {
        collection: {"get": _operation(rt, "list", "get"), "post": _operation(rt, "post", "post")},
        item: {
            verb: _operation(rt, action, verb)
            for verb, action in (("get", "get"), ("put", "put"), ("patch", "patch"), ("delete", "delete"))
        },
    }
    for sub in sorted(rt.subresources & {"status", "scale"}):
        paths[f"{item}/{sub}"] = {
            verb: _operation(rt, verb, verb, subresource=sub) for verb in ("get", "put", "patch")
        }
    return paths


def _group_types(types: Iterable[ResourceType], group: str, version: str) -> list[ResourceType]:
    return sorted(
        (rt for rt in types if rt.group == group and rt.version == version), key=lambda rt: rt.plural
    )


def openapi_v3_group(
    group: str, version: str, types: Iterable[ResourceType], crds: list[dict[str, Any]]
) -> dict[str, Any] | None:
    """`/openapi/v3/apis/<group>/<version>` (or `/api/v1`); None when the group-version is not served."""
    served = _group_types(types, group, version)
    if not served:
        return None
    paths: dict[str, Schema] = {}
    for rt in served:
        paths.update(_paths(rt))
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": _K8S_VERSION},
        "paths": paths,
        "components": {"schemas": _kind_schemas(served, crds)},
    }


def _gv_path(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def openapi_v3_paths(types: Iterable[ResourceType]) -> dict[str, Any]:
    """The `/openapi/v3` index; each URL carries a hash that changes with the group's schemas."""
    by_gv: dict[tuple[str, str], list[ResourceType]] = {}
    for rt in types:
        by_gv.setdefault((rt.group, rt.version), []).append(rt)
    paths: dict[str, Any] = {}
    for (group, version), served in sorted(by_gv.items()):
        stamp = [
            (rt.plural, rt.kind, rt.namespaced, sorted(rt.subresources), getattr(rt.schema, "source", None))
            for rt in sorted(served, key=lambda rt: rt.plural)
        ]
        digest = hashlib.sha512(orjson.dumps(stamp, option=orjson.OPT_SORT_KEYS)).hexdigest().upper()
        key = _gv_path(group, version)
        paths[key] = {"serverRelativeURL": f"/openapi/v3/{key}?hash={digest}"}
    return {"paths": paths}


def _to_v2(node: Any) -> Any:
    """OpenAPI v3 schema → Swagger 2.0: v2 refs, one-of-types as strings, no `nullable`."""
    if isinstance(node, list):
        return [_to_v2(v) for v in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "$ref" and isinstance(value, str) and value.startswith(V3_PREFIX):
            out[key] = V2_PREFIX + value[len(V3_PREFIX) :]
        elif key in ("oneOf", "anyOf", "allOf", "not", "nullable"):
            continue
        else:
            out[key] = _to_v2(value)
    if "oneOf" in node and "type" not in node:
        out["type"] = "string"
    return out


def openapi_v2(types: Iterable[ResourceType], crds: list[dict[str, Any]]) -> dict[str, Any]:
    """`/openapi/v2` (Swagger 2.0) covering every served type, for clients without v3."""
    served = sorted(types, key=lambda rt: (rt.group, rt.version, rt.plural))
    paths: dict[str, Schema] = {}
    for rt in served:
        for path, ops in _paths(rt).items():
            paths[path] = {verb: _v2_operation(op) for verb, op in ops.items()}
    return {
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": _K8S_VERSION},
        "paths": paths,
        "definitions": _to_v2(_kind_schemas(served, crds)),
    }


def _v2_operation(op: Schema) -> Schema:
    out: Schema = _to_v2({k: v for k, v in op.items() if k not in ("requestBody", "responses", "parameters")})
    out["parameters"] = [
        {k: v for k, v in p.items() if k != "schema"} | p["schema"] for p in op["parameters"]
    ]
    body = op.get("requestBody")
    if body is not None:
        first = next(iter(body["content"].values()))["schema"]
        out["consumes"] = list(body["content"])
        out["parameters"].append({"name": "body", "in": "body", "required": True, "schema": _to_v2(first)})
    out["produces"] = ["application/json"]
    schema = op["responses"]["200"]["content"]["application/json"]["schema"]
    out["responses"] = {"200": {"description": "OK", "schema": _to_v2(schema)}}
    return out


# ---------------------------------------------------------------------------------------------
# /openapi/v2 as protobuf (gnostic openapi_v2.Document)
#
# kubectl validates `kind: List` manifests, and kinds /openapi/v3 does not know yet, on the client
# with the v2 document, which it only reads as protobuf (`Accept: PROTOBUF_V2_MIME`). Only the parts
# its model parser reads are encoded: swagger, info and the definitions.

PROTOBUF_V2_MIME = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"  # what kubectl asks for
PROTOBUF_V2_CONTENT_TYPE = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"  # what it can parse

_SCHEMA_STRINGS = {"$ref": 1, "format": 2, "title": 3, "description": 4, "pattern": 13, "discriminator": 26}
_SCHEMA_DOUBLES = {"multipleOf": 6, "maximum": 7, "minimum": 9}
_SCHEMA_BOOLS = {"exclusiveMaximum": 8, "exclusiveMinimum": 10, "uniqueItems": 16, "readOnly": 27}
_SCHEMA_INTS = {
    "maxLength": 11,
    "minLength": 12,
    "maxItems": 14,
    "minItems": 15,
    "maxProperties": 17,
    "minProperties": 18,
}


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (string, bytes or embedded message)."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _text(number: int, value: str) -> bytes:
    return _field(number, value.encode()) if value else b""


def _any(value: Any) -> bytes:
    """gnostic `Any`: the value as YAML (field 2), which is what kube-openapi reads back."""
    return _text(2, yaml.safe_dump(value, default_flow_style=False, sort_keys=True))


def _named(number: int, name: str, value: bytes) -> bytes:
    return _field(number, _text(1, name) + _field(2, value))


def _schema_pb(schema: Schema) -> bytes:
    out = bytearray()
    for key, number in _SCHEMA_STRINGS.items():
        if isinstance(schema.get(key), str):
            out += _text(number, schema[key])
    if "default" in schema:
        out += _field(5, _any(schema["default"]))
    for key, number in _SCHEMA_DOUBLES.items():
        if isinstance(schema.get(key), int | float):
            out += _varint(number << 3 | 1) + struct.pack("<d", float(schema[key]))
    for key, number in _SCHEMA_BOOLS.items():
        if schema.get(key) is True:
            out += _varint(number << 3) + b"\x01"
    for key, number in _SCHEMA_INTS.items():
        if isinstance(schema.get(key), int):
            out += _varint(number << 3) + _varint(schema[key])
    for name in schema.get("required") or ():
        out += _text(19, name)
    for value in schema.get("enum") or ():
        out += _field(20, _any(value))
    out += _schema_children(schema)
    for key, value in schema.items():
        if key.startswith("x-"):
            out += _named(31, key, _any(value))
    return bytes(out)


def _schema_children(schema: Schema) -> bytes:
    out = bytearray()
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        out += _field(21, _field(1, _schema_pb(extra)))
    elif isinstance(extra, bool):
        out += _field(21, _varint(2 << 3) + (b"\x01" if extra else b"\x00"))
    kinds = schema.get("type")
    if kinds:
        out += _field(22, b"".join(_text(1, t) for t in ([kinds] if isinstance(kinds, str) else kinds)))
    if isinstance(schema.get("items"), dict):
        out += _field(23, _field(1, _schema_pb(schema["items"])))
    for sub in schema.get("allOf") or ():
        out += _field(24, _schema_pb(sub))
    props = schema.get("properties")
    if isinstance(props, dict):
        out += _field(25, b"".join(_named(1, name, _schema_pb(sub)) for name, sub in props.items()))
    return bytes(out)


def openapi_v2_protobuf(types: Iterable[ResourceType], crds: list[dict[str, Any]]) -> bytes:
    """`/openapi/v2` for `Accept: PROTOBUF_V2_MIME`: the gnostic protobuf kubectl parses."""
    doc = openapi_v2(types, crds)
    info = _text(1, doc["info"]["title"]) + _text(2, doc["info"]["version"])
    definitions = b"".join(_named(1, name, _schema_pb(s)) for name, s in doc["definitions"].items())
    return _text(1, doc["swagger"]) + _field(2, info) + _field(9, definitions)
