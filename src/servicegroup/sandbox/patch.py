"""The three PATCH bodies kube-apiserver accepts: JSON merge, JSON patch and strategic merge.

Strategic merge follows apimachinery's `strategicpatch` package as the apiserver calls it
(`StrategicMergeMapPatch`, unmatched nulls ignored): merge keys and strategies come from the
built-in kinds' OpenAPI extensions (`x-kubernetes-patch-merge-key`, `x-kubernetes-patch-strategy`),
so containers merge by name, ports by containerPort, Service ports by port, finalizers as a set and
so on, exactly where the real schema says so. Custom resources have no such metadata; the apiserver
answers 415 for them (`supports_strategic_merge`). Errors are worded like the apiserver's.
"""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch
import jsonpointer

from servicegroup.sandbox.errors import StatusError, bad_request
from servicegroup.sandbox.openapi import Schema, builtin_schemas, child, definition_name, items, resolve

_PATCH = "$patch"
_RETAIN = "$retainKeys"
_DELETE_PRIMITIVE = "$deleteFromPrimitiveList/"
_ORDER = "$setElementOrder/"
_REJECTED = "the server rejected our request due to an error in our request"


def merge_patch(doc: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch; `doc` is not modified."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(doc) if isinstance(doc, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _unprocessable(message: str) -> StatusError:
    """What `NewGenericServerResponse(422, ...)` renders for a patch that cannot be applied."""
    return StatusError(
        422,
        "Invalid",
        _REJECTED,
        {"causes": [{"reason": "UnexpectedServerResponse", "message": message}]},
    )


_APPLY_ERRORS = (jsonpatch.JsonPatchConflict, jsonpatch.JsonPatchTestFailed, jsonpointer.JsonPointerException)
_MISSING = {
    "test": "testing value {path} failed: test failed",
    "replace": "replace operation does not apply: doc is missing key: {path}: missing value",
    "remove": 'remove operation does not apply: doc is missing path: "{path}": missing value',
    "add": 'add operation does not apply: doc is missing path: "{path}": missing value',
}


def json_patch(doc: Any, ops: Any) -> Any:
    """RFC 6902 JSON patch (with `test`); 400 for a malformed patch, 422 when it does not apply.

    The 422 causes carry evanphx/json-patch's wording for the op that failed.
    """
    if not isinstance(ops, list) or not all(isinstance(op, dict) for op in ops):
        raise bad_request("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
    current = copy.deepcopy(doc)
    for op in ops:
        try:
            current = jsonpatch.JsonPatch([op]).apply(current, in_place=True)
        except jsonpatch.InvalidJsonPatch as err:
            raise bad_request(str(err)) from err
        except _APPLY_ERRORS as err:
            template = _MISSING.get(str(op.get("op")))
            message = template.format(path=op.get("path", "")) if template else str(err)
            raise _unprocessable(message) from err
    return current


def supports_strategic_merge(group: str, kind: str) -> bool:
    """Only built-in kinds carry patch metadata; custom resources get 415 for strategic merge."""
    return definition_name(group, kind) is not None


def strategic_merge_patch(doc: dict[str, Any], patch: Any, group: str, kind: str) -> dict[str, Any]:
    """Apply a strategic merge patch (what `kubectl apply/patch` sends) to a built-in kind."""
    name = definition_name(group, kind)
    if not isinstance(patch, dict):
        raise bad_request("invalid JSON document")
    schema = builtin_schemas().get(name) if name else None
    merged: dict[str, Any] = _merge_map(copy.deepcopy(doc), patch, schema)
    return merged


def _strategy(schema: Schema | None) -> tuple[str, str]:
    """(patch strategy, merge key) of a field schema."""
    if schema is None:
        return "", ""
    return str(schema.get("x-kubernetes-patch-strategy", "")), str(
        schema.get("x-kubernetes-patch-merge-key", "")
    )


def _merge_map(original: dict[str, Any], patch: dict[str, Any], schema: Schema | None) -> dict[str, Any]:
    directive = patch.get(_PATCH)
    if directive == "replace":
        replaced: dict[str, Any] = _strip({k: v for k, v in patch.items() if k != _PATCH})
        return replaced
    if directive == "delete":
        return {}
    if directive not in (None, "merge"):
        raise bad_request(f"Unknown patch type: {directive} in map: {patch}")
    if _RETAIN in patch:
        original = _retain(original, patch)
    for key, value in patch.items():
        if key.startswith(_DELETE_PRIMITIVE):
            _delete_from_primitive_list(original, key[len(_DELETE_PRIMITIVE) :], value)
    server_order = {
        k[len(_ORDER) :]: original.get(k[len(_ORDER) :]) or [] for k in patch if k.startswith(_ORDER)
    }
    for key, value in patch.items():
        if key.startswith("$"):
            continue
        if value is None:
            original.pop(key, None)
            continue
        original[key] = _merge_value(original.get(key), value, child(schema, key))
    for key, value in patch.items():
        if key.startswith(_ORDER) and isinstance(original.get(key[len(_ORDER) :]), list):
            field = key[len(_ORDER) :]
            merge_key = _strategy(child(schema, field))[1]
            original[field] = _order(original[field], value, merge_key, server_order[field])
    return original


def _merge_value(original: Any, patch: Any, schema: Schema | None) -> Any:
    if isinstance(patch, dict):
        base = original if isinstance(original, dict) else {}
        return _merge_map(base, patch, resolve(schema))
    if isinstance(patch, list):
        strategy, key = _strategy(schema)
        if "merge" in strategy.split(","):
            return _merge_list(original if isinstance(original, list) else [], patch, key, items(schema))
        return _strip(patch)
    return patch


def _merge_list(original: list[Any], patch: list[Any], key: str, item_schema: Schema | None) -> list[Any]:
    if any(isinstance(p, dict) and p.get(_PATCH) == "replace" and len(p) == 1 for p in patch):
        return [_strip(p) for p in patch if not (isinstance(p, dict) and p.get(_PATCH) == "replace")]
    if not key:
        return original + [p for p in patch if p not in original]
    result = list(original)
    for item in patch:
        if not isinstance(item, dict) or key not in item:
            raise bad_request(f"map: {item} does not contain declared merge key: {key}")
        index = next(
            (i for i, o in enumerate(result) if isinstance(o, dict) and o.get(key) == item[key]), None
        )
        if item.get(_PATCH) == "delete":
            result = [o for o in result if not (isinstance(o, dict) and o.get(key) == item[key])]
        elif index is None:
            result.append(_merge_map({}, item, resolve(item_schema)))
        else:
            result[index] = _merge_map(result[index], item, resolve(item_schema))
    return result


def _retain(original: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """`$retainKeys`: drop the original keys the list does not name (e.g. a switched union)."""
    keep = patch[_RETAIN]
    if not isinstance(keep, list):
        raise bad_request("invalid patch format of retainKeys")
    stray = [k for k, v in patch.items() if v is not None and not k.startswith("$") and k not in keep]
    if stray:
        raise _unprocessable("patch content doesn't match retainKeys list")
    return {k: v for k, v in original.items() if k in keep}


def _delete_from_primitive_list(original: dict[str, Any], field: str, values: Any) -> None:
    if not isinstance(values, list):
        raise bad_request("invalid patch format of primitive list")
    if isinstance(original.get(field), list):
        original[field] = [v for v in original[field] if v not in values]


def _order(merged: list[Any], order: Any, key: str, server: list[Any]) -> list[Any]:
    """`$setElementOrder` like apimachinery's `normalizeElementOrder`.

    The elements the order names come in that order; the server-only ones keep their place,
    interleaved by their position in the list as it was before the patch (`mergeSortedSlice`).
    """
    if not isinstance(order, list):
        raise bad_request("invalid patch format of setElementOrder list")

    def ident(item: Any) -> Any:
        return item.get(key) if key and isinstance(item, dict) else item

    wanted = [ident(o) for o in order]
    before = [ident(s) for s in server]
    named = sorted((m for m in merged if ident(m) in wanted), key=lambda m: wanted.index(ident(m)))
    others = [m for m in merged if ident(m) not in wanted]
    out: list[Any] = []
    while named and others:
        left, right = ident(named[0]), ident(others[0])
        if left in before and right in before and before.index(left) < before.index(right):
            out.append(named.pop(0))
        else:
            out.append(others.pop(0))
    return out + named + others


def _strip(value: Any) -> Any:
    """A patch value taken whole: directives and (unmatched) nulls removed."""
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if not k.startswith("$") and v is not None}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value
