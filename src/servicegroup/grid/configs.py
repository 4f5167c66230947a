"""Per-unit configuration: ConfigMapGrid/SecretGrid data for one unit, its hash, and the rewriting
of a workload's references to `<config>-<unit>`. Pure.

Data of a unit = the base (`data`, `binaryData`; Secret: `data`, `stringData`), then every matching
rule of `overrides` in order, then `units[<unit>]`: later layers win key by key. Placeholders are
substituted in `data` values (ConfigMap) and `stringData` values (Secret), never in base64 data.
A Secret's `stringData` is folded into `data` (base64) here, as the API server would, so the live
object compares equal.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from servicegroup.grid.overrides import matching, rules_of
from servicegroup.grid.placeholders import UnitInfo, substitute_text, uses_labels
from servicegroup.grid.templates import digest

Obj = dict[str, Any]

CONFIGMAP: Final = "ConfigMap"
SECRET: Final = "Secret"


class ConfigError(ValueError):
    """A referenced config grid cannot give this unit its data."""


def config_body(child_kind: str, spec: Mapping[str, Any], unit: UnitInfo) -> Obj:
    """The `data`/`binaryData` (ConfigMap) or `type`/`data` (Secret) of `unit`'s child; empty maps are
    omitted, as the API server omits them. PlaceholderError / OverrideError for a bad layer."""
    layers = [spec, *(rule.body for rule in matching(rules_of(spec), unit))]
    own = (spec.get("units") or {}).get(unit.name)
    if isinstance(own, Mapping):
        layers.append(own)
    if child_kind == SECRET:
        return _secret(spec, layers, unit)
    data: dict[str, str] = {}
    binary: dict[str, str] = {}
    for layer in layers:
        data.update((k, substitute_text(str(v), unit)) for k, v in (layer.get("data") or {}).items())
        binary.update(layer.get("binaryData") or {})
    body: Obj = {}
    if data:
        body["data"] = data
    if binary:
        body["binaryData"] = binary
    return body


def _secret(spec: Mapping[str, Any], layers: list[Mapping[str, Any]], unit: UnitInfo) -> Obj:
    data: dict[str, str] = {}
    for layer in layers:
        data.update(layer.get("data") or {})
        for key, value in (layer.get("stringData") or {}).items():
            data[key] = base64.b64encode(substitute_text(str(value), unit).encode()).decode()
    body: Obj = {"type": spec.get("type") or "Opaque"}
    if data:
        body["data"] = data
    return body


def config_uses_labels(spec: Mapping[str, Any]) -> bool:
    """Do NodeUnit labels matter to this config grid (selector rules or label placeholders)?"""
    rules = spec.get("overrides") or []
    return any(isinstance(r, Mapping) and r.get("unitSelector") is not None for r in rules) or uses_labels(
        [spec.get("data"), spec.get("stringData"), spec.get("units"), rules]
    )


Lookup = Callable[[str, str], Mapping[str, Any] | None]  # (child kind, name) -> config grid or None


def _no_config_grids(_child_kind: str, _name: str) -> Mapping[str, Any] | None:
    return None


@dataclass
class ConfigGrids:
    """The ConfigMapGrids and SecretGrids of one namespace as one reconcile sees them (`lookup`);
    per-unit hashes are computed once per (kind, name, unit)."""

    lookup: Lookup = _no_config_grids
    _hashes: dict[tuple[str, str, str], str] = field(default_factory=dict)

    def unit_hash(self, child_kind: str, name: str, unit: UnitInfo, grid_key: str) -> str:
        """Hash of `unit`'s data in config grid `name` (ConfigError if it cannot be built for it)."""
        cache_key = (child_kind, name, unit.name)
        cached = self._hashes.get(cache_key)
        if cached is not None:
            return cached
        spec = (self.lookup(child_kind, name) or {}).get("spec") or {}
        if spec.get("gridUniqKey") != grid_key:
            raise ConfigError(
                f"{child_kind}Grid {name} is keyed on {spec.get('gridUniqKey')!r}, not {grid_key!r}: "
                "its units are not this grid's"
            )
        try:
            value = digest(config_body(child_kind, spec, unit))
        except ValueError as err:
            raise ConfigError(f"{child_kind}Grid {name} has no data for unit {unit.name}: {err}") from None
        self._hashes[cache_key] = value
        return value


RefSlot = tuple[str, Obj, str]  # (child kind, the dict holding the name, the name's key)


def reference_slots(pod_spec: Mapping[str, Any]) -> Iterator[RefSlot]:
    """Every place a pod spec names a ConfigMap or Secret: volumes (also projected), envFrom, env."""
    for volume in pod_spec.get("volumes") or []:
        yield from _slot(CONFIGMAP, volume.get("configMap"), "name")
        yield from _slot(SECRET, volume.get("secret"), "secretName")
        for source in (volume.get("projected") or {}).get("sources") or []:
            yield from _slot(CONFIGMAP, source.get("configMap"), "name")
            yield from _slot(SECRET, source.get("secret"), "name")
    for group in ("initContainers", "containers"):
        for container in pod_spec.get(group) or []:
            for source in container.get("envFrom") or []:
                yield from _slot(CONFIGMAP, source.get("configMapRef"), "name")
                yield from _slot(SECRET, source.get("secretRef"), "name")
            for env in container.get("env") or []:
                value_from = env.get("valueFrom") or {}
                yield from _slot(CONFIGMAP, value_from.get("configMapKeyRef"), "name")
                yield from _slot(SECRET, value_from.get("secretKeyRef"), "name")


def _slot(child_kind: str, holder: Any, key: str) -> Iterator[RefSlot]:
    if isinstance(holder, dict) and isinstance(holder.get(key), str):
        yield (child_kind, holder, key)


def referenced_names(workload_spec: Mapping[str, Any]) -> set[tuple[str, str]]:
    """(child kind, name) of every ConfigMap/Secret a workload spec's pod template names."""
    pod_spec = ((workload_spec.get("template") or {}).get("spec")) or {}
    return {(kind, holder[key]) for kind, holder, key in reference_slots(pod_spec)}


def rewrite_references(pod_spec: Obj, unit: UnitInfo, configs: ConfigGrids, grid_key: str) -> dict[str, str]:
    """Point every reference to a config grid at the unit's copy `<name>-<unit>` (in place); returns
    `<Kind>/<name>` -> that unit's data hash for each config grid used (ConfigError if one cannot)."""
    used: dict[str, str] = {}
    for child_kind, holder, key in list(reference_slots(pod_spec)):
        name = holder[key]
        if configs.lookup(child_kind, name) is not None:
            used[f"{child_kind}/{name}"] = configs.unit_hash(child_kind, name, unit, grid_key)
            holder[key] = f"{name}-{unit.name}"
    return used
