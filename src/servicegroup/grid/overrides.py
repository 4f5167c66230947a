"""Per-unit override rules (`spec.overrides`) applied to one child. Pure and deterministic.

A rule selects units by name list (`units`), glob (`unitPattern`, fnmatch, case-sensitive) and/or
the labels of the unit's NodeUnit (`unitSelector`, a metav1.LabelSelector); every selector given
must match, and a rule without any selector matches no unit (the CRD also refuses it). Matching
rules apply in list order after the canary template choice, each in this order: `replicas`,
`containers` (by name, in containers and initContainers: `image`, `env` merged by name,
`resources` merged by `limits`/`requests` key), `strategicMergePatch`, `jsonPatch` (RFC 6902).
Patches address the whole child (`/spec/template/spec/...`); a rule that changes the child's
identity (apiVersion, kind, name, namespace, ownerReferences) or fails is an `OverrideError`
naming the rule, and the caller holds that unit's child as it is.

The same selection serves ConfigMapGrid/SecretGrid rules (`matching`).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any, Final

import jsonpatch
import jsonpointer

from servicegroup.grid.placeholders import UnitInfo
from servicegroup.kube.objects import match_label_selector

Obj = dict[str, Any]

SELECTORS: Final = ("units", "unitPattern", "unitSelector")
# Merge keys of the lists inside a Deployment/StatefulSet (Kubernetes' patchMergeKey); other lists
# are replaced by a strategic merge patch, as the API server does for lists without one.
MERGE_KEYS: Final = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "ports": "containerPort",
    "imagePullSecrets": "name",
    "hostAliases": "ip",
    "topologySpreadConstraints": "topologyKey",
    "resourceClaims": "name",
}
_PATCH: Final = "$patch"
_IDENTITY: Final = ("apiVersion", "kind")
_IDENTITY_META: Final = ("name", "namespace", "ownerReferences")


class OverrideError(ValueError):
    """A rule that cannot be applied to a unit's child; `rule` names it."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(f"override {rule}: {message}")
        self.rule = rule


@dataclass(frozen=True)
class Rule:
    """One rule and the name it is reported under (`name`, or `#<index>` counting from 0)."""

    name: str
    body: Mapping[str, Any]


def rules_of(spec: Mapping[str, Any]) -> list[Rule]:
    """The `overrides` of a grid spec, named."""
    return [
        Rule(str(body.get("name") or f"#{index}"), body)
        for index, body in enumerate(spec.get("overrides") or [])
        if isinstance(body, Mapping)
    ]


def selects(rule: Rule, unit: UnitInfo) -> bool:
    """Does `rule` apply to `unit`? (OverrideError for a malformed selector)"""
    body = rule.body
    if not any(body.get(key) is not None for key in SELECTORS):
        return False
    if body.get("units") is not None and unit.name not in body["units"]:
        return False
    pattern = body.get("unitPattern")
    if pattern is not None and not fnmatchcase(unit.name, str(pattern)):
        return False
    selector = body.get("unitSelector")
    if selector is None:
        return True
    if unit.labels is None:  # no NodeUnit: no labels to select on
        return False
    try:
        return match_label_selector(selector, unit.labels)
    except ValueError as err:
        raise OverrideError(rule.name, str(err)) from None


def matching(rules: Sequence[Rule], unit: UnitInfo) -> list[Rule]:
    """The rules that apply to `unit`, in order."""
    return [rule for rule in rules if selects(rule, unit)]


def uses_selector(rules: Sequence[Rule]) -> bool:
    """Do NodeUnit labels matter to these rules?"""
    return any(rule.body.get("unitSelector") is not None for rule in rules)


def apply_rules(child: Obj, rules: Sequence[Rule]) -> Obj:
    """`child` with `rules` applied in order (a new object; OverrideError on the first failure)."""
    for rule in rules:
        child = _apply(child, rule)
    return child


def _apply(child: Obj, rule: Rule) -> Obj:
    body = rule.body
    result = copy.deepcopy(child)
    spec = result.setdefault("spec", {})
    if body.get("replicas") is not None:
        spec["replicas"] = body["replicas"]
    for change in body.get("containers") or []:
        _change_container(rule.name, spec, change)
    if body.get("strategicMergePatch") is not None:
        patch = body["strategicMergePatch"]
        if not isinstance(patch, dict):
            raise OverrideError(rule.name, "strategicMergePatch must be an object")
        try:
            result = strategic_merge(result, patch)
        except ValueError as err:
            raise OverrideError(rule.name, f"strategicMergePatch does not apply: {err}") from None
    if body.get("jsonPatch") is not None:
        try:
            result = jsonpatch.apply_patch(result, body["jsonPatch"])
        except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException, TypeError) as err:
            raise OverrideError(rule.name, f"jsonPatch does not apply: {err}") from None
    _check_identity(rule.name, child, result)
    return result


def _containers(spec: Mapping[str, Any]) -> Iterator[Obj]:
    pod_spec = ((spec.get("template") or {}).get("spec")) or {}
    for field in ("initContainers", "containers"):
        for container in pod_spec.get(field) or []:
            if isinstance(container, dict):
                yield container


def _change_container(rule: str, spec: Obj, change: Mapping[str, Any]) -> None:
    name = change.get("name")
    found = [c for c in _containers(spec) if c.get("name") == name]
    if not found:
        known = ", ".join(sorted(str(c.get("name")) for c in _containers(spec))) or "none"
        raise OverrideError(rule, f"no container {name!r} in the template (containers: {known})")
    container = found[0]
    if change.get("image") is not None:
        container["image"] = change["image"]
    if change.get("env") is not None:
        container["env"] = _merge_by_key(container.get("env") or [], change["env"], "name")
    resources = change.get("resources")
    if resources is not None:
        merged = dict(container.get("resources") or {})
        for part, values in resources.items():
            merged[part] = {**(merged.get(part) or {}), **values} if isinstance(values, dict) else values
        container["resources"] = merged


def _merge_by_key(base: list[Any], extra: list[Any], key: str) -> list[Any]:
    """Items of `extra` replace the items of `base` with the same key, the others are appended."""
    result = list(base)
    for item in extra:
        index = _index_of(result, key, item.get(key))
        if index is None:
            result.append(item)
        else:
            result[index] = item
    return result


def _index_of(items: list[Any], key: str, value: Any) -> int | None:
    """Position of the first map in `items` whose `key` is `value`."""
    return next((i for i, o in enumerate(items) if isinstance(o, dict) and o.get(key) == value), None)


def strategic_merge(doc: Obj, patch: Mapping[str, Any]) -> Obj:
    """A strategic merge patch over a Deployment/StatefulSet: maps merge, `null` deletes, lists with
    a merge key (`MERGE_KEYS`) merge by it (`$patch: delete` removes an item), other lists replace;
    `$patch: replace` in a map replaces it."""
    if patch.get(_PATCH) == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != _PATCH}
    result = dict(doc)
    for key, value in patch.items():
        if key == _PATCH:
            continue
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict):
            base = result.get(key)
            result[key] = strategic_merge(base if isinstance(base, dict) else {}, value)
        elif isinstance(value, list) and key in MERGE_KEYS:
            base = result.get(key)
            result[key] = _merge_list(base if isinstance(base, list) else [], value, MERGE_KEYS[key])
        else:
            result[key] = copy.deepcopy(value)
    return result


def _merge_list(base: list[Any], patch: list[Any], key: str) -> list[Any]:
    result = list(base)
    for item in patch:
        if not isinstance(item, dict) or key not in item:
            raise ValueError(f"list item {item!r} has no merge key {key!r}")
        index = _index_of(result, key, item[key])
        if item.get(_PATCH) == "delete":
            if index is not None:
                del result[index]
        elif index is None:
            result.append(strategic_merge({}, item))
        else:
            result[index] = strategic_merge(result[index], item)
    return result


def _check_identity(rule: str, before: Mapping[str, Any], after: Any) -> None:
    if not isinstance(after, dict) or not isinstance(after.get("spec"), dict):
        raise OverrideError(rule, "the patched child is not an object with a spec")
    changed = [f for f in _IDENTITY if before.get(f) != after.get(f)]
    old_meta, new_meta = before.get("metadata") or {}, after.get("metadata") or {}
    changed += [f"metadata.{f}" for f in _IDENTITY_META if old_meta.get(f) != new_meta.get(f)]
    if changed:
        raise OverrideError(rule, f"a patch may not change {', '.join(changed)}")
