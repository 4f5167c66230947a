"""Canary template choice per unit and the template hash. Pure.

Choice (SuperEdge §2.6): `templates[unit]` if the unit is listed there, else `defaultTemplateName`;
the name `default` (or empty) means `spec.template`, any other name a `templatePool` entry.
Hash (§2.5): FNV-1 64 (not 1a) over canonical JSON (sorted keys, compact) of the template without
`replicas` and without the hash label itself, in decimal. The values differ from Go's spew-based
ones, but are deterministic and cover everything else, which is all the hash is used for.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import orjson

from servicegroup.api.labels import DEFAULT_TEMPLATE_NAME, TEMPLATE_HASH_KEY

Obj = dict[str, Any]

_FNV64_OFFSET: Final = 14695981039346656037
_FNV64_PRIME: Final = 1099511628211
_MASK64: Final = (1 << 64) - 1


def fnv1_64(data: bytes) -> int:
    """FNV-1 64-bit (Go's `hash/fnv.New64`): multiply, then xor each byte."""
    value = _FNV64_OFFSET
    for byte in data:
        value = ((value * _FNV64_PRIME) & _MASK64) ^ byte
    return value


def template_hash(template: Mapping[str, Any]) -> str:
    """Decimal FNV-1 64 of the template without `replicas` and the hash label."""
    copy = {key: value for key, value in template.items() if key != "replicas"}
    pod = copy.get("template")
    metadata = pod.get("metadata") if isinstance(pod, dict) else None
    labels = metadata.get("labels") if isinstance(metadata, dict) else None
    if (
        isinstance(pod, dict)
        and isinstance(metadata, dict)
        and isinstance(labels, dict)
        and TEMPLATE_HASH_KEY in labels
    ):
        kept = {k: v for k, v in labels.items() if k != TEMPLATE_HASH_KEY}
        copy["template"] = {**pod, "metadata": {**metadata, "labels": kept}}
    return str(fnv1_64(orjson.dumps(copy, option=orjson.OPT_SORT_KEYS)))


def digest(value: Any) -> str:
    """Short stable hash of a JSON value: 16 hex digits of BLAKE2b over canonical JSON (C speed,
    for what is hashed once per unit rather than once per template)."""
    return hashlib.blake2b(orjson.dumps(value, option=orjson.OPT_SORT_KEYS), digest_size=8).hexdigest()


def unit_hash(spec: Mapping[str, Any]) -> str:
    """Hash of one unit's final workload spec without replicas, for units whose child differs from
    the template (overrides, placeholders, per-unit config)."""
    return digest({key: value for key, value in spec.items() if key != "replicas"})


class TemplateNotFound(LookupError):
    """A unit names a template that is not in `templatePool` (a spec error, not a transient one)."""

    def __init__(self, name: str) -> None:
        super().__init__(f"template {name!r} not found in templatePool")
        self.name = name


@dataclass(frozen=True)
class Template:
    """One chosen template: its name, its hash, and its JSON with the hash label already set."""

    name: str
    hash: str
    spec_json: bytes

    def fresh_spec(self) -> Obj:
        """An independent copy of the template (one orjson parse, no deepcopy walk)."""
        spec: Obj = orjson.loads(self.spec_json)
        return spec


def template_name(grid_spec: Mapping[str, Any], unit: str) -> str:
    """Name of the template `unit` uses; `default` means `spec.template`."""
    templates = grid_spec.get("templates") or {}
    name = templates[unit] if unit in templates else grid_spec.get("defaultTemplateName")
    return name or DEFAULT_TEMPLATE_NAME


def unused_pool_entries(grid_spec: Mapping[str, Any]) -> list[str]:
    """Pool entries `autoDeleteUnusedTemplate` removes: used neither by `templates` nor as default."""
    used = set((grid_spec.get("templates") or {}).values())
    used.add(grid_spec.get("defaultTemplateName") or DEFAULT_TEMPLATE_NAME)
    return sorted(name for name in grid_spec.get("templatePool") or {} if name not in used)


class Templates:
    """Template lookup for one grid spec; each template is hashed and serialised at most once."""

    def __init__(self, grid_spec: Mapping[str, Any]) -> None:
        self._spec = grid_spec
        self._cache: dict[str, Template] = {}

    def for_unit(self, unit: str) -> Template:
        """The template `unit` runs (raises TemplateNotFound)."""
        return self.named(template_name(self._spec, unit))

    def named(self, name: str) -> Template:
        """The template called `name` (`default` = spec.template), hashed once."""
        cached = self._cache.get(name)
        if cached is None:
            cached = self._cache[name] = _stamp(name, self._source(name))
        return cached

    def _source(self, name: str) -> Mapping[str, Any]:
        if name == DEFAULT_TEMPLATE_NAME:
            return self._spec.get("template") or {}
        pool = self._spec.get("templatePool") or {}
        if name not in pool:
            raise TemplateNotFound(name)
        source: Mapping[str, Any] = pool[name] or {}
        return source


def _stamp(name: str, source: Mapping[str, Any]) -> Template:
    """Hash `source` and serialise a copy whose pod template carries the hash label."""
    digest = template_hash(source)
    spec: Obj = orjson.loads(orjson.dumps(source))
    pod = spec.get("template")
    if isinstance(pod, dict):
        metadata = pod.get("metadata") or {}
        metadata["labels"] = {**(metadata.get("labels") or {}), TEMPLATE_HASH_KEY: digest}
        pod["metadata"] = metadata
    return Template(name, digest, orjson.dumps(spec))
