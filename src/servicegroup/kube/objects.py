"""Object metadata helpers: keys, owner references, label selectors, copying and containment.

Objects are plain JSON dicts as the API server sends them. Nothing here does I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson

Obj = dict[str, Any]
T = TypeVar("T")


@dataclass(frozen=True, order=True)
class ObjectKey:
    """What goes on a work queue: `namespace` is `""` for cluster-scoped objects."""

    namespace: str
    name: str

    @classmethod
    def from_object(cls, obj: Mapping[str, Any]) -> ObjectKey:
        """Key of an object from its metadata."""
        meta = obj.get("metadata") or {}
        return cls(meta.get("namespace") or "", meta.get("name") or "")

    @classmethod
    def parse(cls, key: str) -> ObjectKey:
        """Inverse of `str(key)`: `"ns/name"` or `"name"`."""
        namespace, _, name = key.rpartition("/")
        return cls(namespace, name)

    def __str__(self) -> str:
        """The store key: `ns/name`, or `name` when cluster-scoped (client-go's MetaNamespaceKey)."""
        return f"{self.namespace}/{self.name}" if self.namespace else self.name


def meta(obj: Mapping[str, Any]) -> dict[str, Any]:
    """`metadata` of an object, `{}` when absent (read-only use)."""
    value = obj.get("metadata")
    return value if isinstance(value, dict) else {}


def labels_of(obj: Mapping[str, Any]) -> dict[str, str]:
    """The object's labels (`{}` when none)."""
    return meta(obj).get("labels") or {}


def deep_copy(obj: T) -> T:
    """A fully independent copy of a JSON value (orjson round trip: faster than copy.deepcopy)."""
    result: T = orjson.loads(orjson.dumps(obj))
    return result


# -- owner references -----------------------------------------------------------------------------


def owner_reference(
    owner: Mapping[str, Any], controller: bool = True, block_owner_deletion: bool = True
) -> Obj:
    """An ownerReference pointing at `owner` (which must carry apiVersion, kind, name and uid)."""
    owner_meta = meta(owner)
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner_meta["name"],
        "uid": owner_meta["uid"],
        "controller": controller,
        "blockOwnerDeletion": block_owner_deletion,
    }


def controller_of(obj: Mapping[str, Any]) -> Obj | None:
    """The ownerReference with `controller: true`, if any (there is at most one)."""
    for ref in meta(obj).get("ownerReferences") or []:
        if ref.get("controller"):
            return dict(ref)
    return None


def is_controlled_by(obj: Mapping[str, Any], owner: Mapping[str, Any]) -> bool:
    """True when `obj`'s controller reference names `owner` by uid (names can be reused, uids not)."""
    ref = controller_of(obj)
    uid = meta(owner).get("uid")
    return ref is not None and uid is not None and ref.get("uid") == uid


# -- label selectors ------------------------------------------------------------------------------

_OPERATORS = {"In", "NotIn", "Exists", "DoesNotExist"}
_REQUIREMENT = re.compile(
    r"""^\s*(?:
        !\s*(?P<absent>[^\s=!(),]+)
      | (?P<skey>[^\s=!(),]+)\s+(?P<setop>in|notin)\s*\((?P<values>[^()]*)\)
      | (?P<ekey>[^\s=!(),]+)\s*(?P<eqop>==|=|!=)\s*(?P<value>[^\s=!(),]*)
      | (?P<exists>[^\s=!(),]+)
    )\s*$""",
    re.VERBOSE,
)


def match_label_selector(selector: Mapping[str, Any] | None, labels: Mapping[str, str] | None) -> bool:
    """Does a `metav1.LabelSelector` (matchLabels + matchExpressions) select these labels?

    As in Kubernetes, a `None` selector selects nothing and an empty one (`{}`) selects everything.
    Raises ValueError on an unknown operator, so bad user input surfaces instead of matching nothing.
    """
    if selector is None:
        return False
    labels = labels or {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    return all(_match_expression(expr, labels) for expr in selector.get("matchExpressions") or [])


def _match_expression(expr: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    key, operator, values = expr.get("key", ""), expr.get("operator", ""), expr.get("values") or []
    if operator not in _OPERATORS:
        raise ValueError(f"label selector: unknown operator {operator!r} for key {key!r}")
    if operator == "Exists":
        return key in labels
    if operator == "DoesNotExist":
        return key not in labels
    if operator == "In":
        return key in labels and labels[key] in values
    return labels.get(key) not in values if key in labels else True


def parse_selector_string(selector: str) -> Obj:
    """Parse a label selector string (`a=b,c!=d,e in (f,g),!h,i`) into LabelSelector form.

    `=`/`==` become matchLabels; `!=` becomes NotIn (absent keys match, as in Kubernetes).
    Raises ValueError naming the bad requirement.
    """
    match_labels: dict[str, str] = {}
    expressions: list[Obj] = []
    for requirement in _split_requirements(selector):
        found = _REQUIREMENT.match(requirement)
        if not found:
            raise ValueError(f"invalid label selector requirement {requirement.strip()!r}")
        groups = found.groupdict()
        if groups["absent"]:
            expressions.append({"key": groups["absent"], "operator": "DoesNotExist"})
        elif groups["skey"]:
            values = [v.strip() for v in groups["values"].split(",") if v.strip()]
            operator = "In" if groups["setop"] == "in" else "NotIn"
            expressions.append({"key": groups["skey"], "operator": operator, "values": values})
        elif groups["ekey"]:
            if groups["eqop"] == "!=":
                expressions.append({"key": groups["ekey"], "operator": "NotIn", "values": [groups["value"]]})
            else:
                match_labels[groups["ekey"]] = groups["value"]
        else:
            expressions.append({"key": groups["exists"], "operator": "Exists"})
    result: Obj = {}
    if match_labels:
        result["matchLabels"] = match_labels
    if expressions:
        result["matchExpressions"] = expressions
    return result


def _split_requirements(selector: str) -> list[str]:
    """Split on commas outside parentheses."""
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for char in selector:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [part for part in parts if part.strip()]


def selector_to_string(selector: Mapping[str, Any]) -> str:
    """Render a LabelSelector as the `labelSelector` query string the API server accepts."""
    parts = [f"{key}={value}" for key, value in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or []:
        key, operator = expr["key"], expr["operator"]
        if operator == "Exists":
            parts.append(key)
        elif operator == "DoesNotExist":
            parts.append(f"!{key}")
        elif operator in ("In", "NotIn"):
            parts.append(f"{key} {operator.lower()} ({','.join(expr.get('values') or [])})")
        else:
            raise ValueError(f"label selector: unknown operator {operator!r} for key {key!r}")
    return ",".join(parts)


def match_selector_string(selector: str, labels: Mapping[str, str] | None) -> bool:
    """Does a selector string select these labels? (`""` selects everything.)"""
    return match_label_selector(parse_selector_string(selector), labels)


# -- DeepContains ---------------------------------------------------------------------------------


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


def _is_zero(value: Any) -> bool:
    return value is None or (not isinstance(value, dict | list) and not value)


def deep_contains(actual: Any, desired: Any) -> bool:
    """SuperEdge's DeepContains over JSON: does `actual` already hold everything `desired` sets?

    Zero values in `desired` (`None`, `""`, `0`, `false`) and absent keys count as contained, so
    server-side defaulting never looks like drift (and, as in SuperEdge, a field can never be forced
    back to its zero value). Dicts: every non-zero key of `desired` must be in `actual` and contained.
    Lists: `desired` must be a pairwise-contained prefix of `actual` (`[]` is always contained).
    Different JSON types are not contained; numbers compare by value (`1 == 1.0`).
    """
    if _is_zero(desired) or actual is None:
        return True
    if _kind(actual) != _kind(desired):
        return False
    if isinstance(desired, dict):
        return all(
            _is_zero(value) or (key in actual and deep_contains(actual[key], value))
            for key, value in desired.items()
        )
    if isinstance(desired, list):
        return len(actual) >= len(desired) and all(
            deep_contains(a, d) for a, d in zip(actual, desired, strict=False)
        )
    return bool(actual == desired)
