"""The children a grid should have, as full objects. Pure: no client, no clock, stable order.

`desired_children` is the single code path for the controller and for `servicegroup render`.
A unit whose child cannot be built (bad name, unknown template, an override rule or placeholder
that fails, a config grid without data for it) becomes a `Problem` and its name is *held*: the plan
neither creates, updates nor deletes it, so a typo never removes a running child and the other
units carry on.

Per unit, a workload child is: the canary template, then the matching `overrides` in order
(overrides.py), then placeholders (placeholders.py), then references to config grids rewritten to
the unit's copy with a `servicegroup.io/config-hash` pod annotation (configs.py). A child that
differs from its template gets a per-unit hash label, so any change to what the unit gets (and
only to it) updates that unit's child. A config grid's child is its per-unit data (configs.py).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import orjson

from servicegroup.api.grid_crds import LABEL_MAX, STATEFULSET_NAME_MAX, SUBDOMAIN_MAX
from servicegroup.api.labels import (
    CONFIG_HASH,
    DEFAULT_TEMPLATE_NAME,
    GRID_SELECTOR,
    GRID_UNIQ_KEY,
    TEMPLATE_HASH_KEY,
    TOPOLOGY_KEYS,
)
from servicegroup.grid import reasons
from servicegroup.grid.configs import ConfigError, ConfigGrids, config_body, rewrite_references
from servicegroup.grid.kinds import GridKind
from servicegroup.grid.overrides import OverrideError, Rule, apply_rules, matching, rules_of
from servicegroup.grid.placeholders import MARKER, PlaceholderError, UnitInfo, substitute
from servicegroup.grid.templates import Template, TemplateNotFound, Templates, digest, unit_hash
from servicegroup.grid.units import label_key_problem
from servicegroup.kube.objects import meta, owner_reference

Obj = dict[str, Any]

GRID_WIDE: Final = ""  # the `problems` key of a problem that stops the whole grid
LAST_APPLIED: Final = "kubectl.kubernetes.io/last-applied-configuration"

_DNS1123_LABEL: Final = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_SUBDOMAIN_RE: Final = re.compile(rf"^{_DNS1123_LABEL}(\.{_DNS1123_LABEL})*$")
_LABEL_RE: Final = re.compile(rf"^{_DNS1123_LABEL}$")
_DNS1035_RE: Final = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_LABEL_VALUE_RE: Final = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


@dataclass(frozen=True)
class Problem:
    """Why a unit (or, under GRID_WIDE, the whole grid) gets no child; reason is a CamelCase constant."""

    reason: str
    message: str


@dataclass(frozen=True)
class Desired:
    """The wanted children of one grid and what stopped the others."""

    children: dict[str, Obj] = field(default_factory=dict)  # child name -> object to create
    unit_of: dict[str, str] = field(default_factory=dict)  # child name -> unit ("" for the SG Service)
    problems: dict[str, Problem] = field(default_factory=dict)  # unit -> problem
    held: frozenset[str] = frozenset()  # child names of problem units: leave them exactly as they are
    units: tuple[str, ...] = ()
    # unit -> {template, overrides, configHash, configs}; units using spec.template as is are absent
    rendered: dict[str, Obj] = field(default_factory=dict)

    @property
    def blocked(self) -> bool:
        """A grid-wide problem: nothing is created and, above all, nothing is deleted."""
        return GRID_WIDE in self.problems


def child_name_problem(child_kind: str, name: str) -> str | None:
    """Why `name` cannot be the name of a `child_kind` object, or None.

    Deployments: DNS-1123 subdomain (253). StatefulSets: pods are named `<name>-<ordinal>` and
    that is their hostname (a DNS-1123 label, 63), and they carry the label
    `controller-revision-hash: <name>-<10-char hash>`, so the name must be a label of at most 52.
    Services: DNS-1035 label (63, starts with a letter).
    """
    if child_kind == "StatefulSet":
        limit, pattern, form = STATEFULSET_NAME_MAX, _LABEL_RE, "DNS-1123 label"
    elif child_kind == "Service":
        limit, pattern, form = LABEL_MAX, _DNS1035_RE, "DNS-1035 label"
    else:
        limit, pattern, form = SUBDOMAIN_MAX, _SUBDOMAIN_RE, "DNS-1123 subdomain"
    if len(name) > limit:
        return f"{child_kind} name {name!r} is {len(name)} characters, more than {limit}"
    if not pattern.match(name):
        return f"{child_kind} name {name!r} is not a {form} (lower-case alphanumerics and '-')"
    return None


def is_label_value(value: str) -> bool:
    """A valid label value: at most 63 characters [A-Za-z0-9-_.], alphanumeric at both ends."""
    return len(value) <= LABEL_MAX and bool(_LABEL_VALUE_RE.match(value))


@dataclass(frozen=True)
class UnitContext:
    """What a unit's child depends on besides the grid: NodeUnit labels and the namespace's config
    grids. The default (no NodeUnits, no config grids) reproduces SuperEdge's children."""

    nodeunit_labels: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # unit -> labels
    configs: ConfigGrids = field(default_factory=ConfigGrids)

    def info(self, unit: str) -> UnitInfo:
        """The unit as placeholders and override selectors see it."""
        return UnitInfo(unit, self.nodeunit_labels.get(unit))


# Spec errors of one unit: the reason each is reported under.
_UNIT_ERRORS: Final = (
    (TemplateNotFound, reasons.TEMPLATE_NOT_FOUND),
    (OverrideError, reasons.OVERRIDE_FAILED),
    (PlaceholderError, reasons.INVALID_PLACEHOLDER),
    (ConfigError, reasons.CONFIG_UNAVAILABLE),
)


def desired_children(
    kind: GridKind, grid: Mapping[str, Any], units: Sequence[str], context: UnitContext | None = None
) -> Desired:
    """Every child `grid` should have for `units` (sorted, distinct label values)."""
    spec = grid.get("spec") or {}
    key = spec.get("gridUniqKey") or ""
    grid_problem = _grid_problem(grid, key)
    if grid_problem is not None:
        return Desired(problems={GRID_WIDE: grid_problem}, units=tuple(units))
    stamp = _Stamp(kind, grid, key, context or UnitContext())
    templates = Templates(spec)
    desired = Desired(units=tuple(units))
    held: set[str] = set()
    for unit in units if kind.per_unit else (GRID_WIDE,):
        name = kind.child_name(stamp.grid_name, unit)
        problem = child_name_problem(kind.child.kind, name)
        if problem is not None:
            desired.problems[unit] = Problem(reasons.INVALID_CHILD_NAME, problem)
        else:
            try:
                desired.children[name] = stamp.child(name, unit, templates, desired.rendered)
                desired.unit_of[name] = unit
            except (TemplateNotFound, ValueError) as err:
                desired.problems[unit] = Problem(_reason(err), str(err))
        if unit in desired.problems:
            held.add(name)
    return Desired(
        desired.children, desired.unit_of, desired.problems, frozenset(held), tuple(units), desired.rendered
    )


def _dict_at(parent: Obj, key: str) -> Obj:
    """`parent[key]`, made an empty map if it is absent or not a map."""
    value = parent.get(key)
    if not isinstance(value, dict):
        value = parent[key] = {}
    return value


def _set_in(pod: Obj, field_name: str, key: str, value: str) -> None:
    """Set one pod template label or annotation (copying the map: it may be shared)."""
    metadata = _dict_at(pod, "metadata")
    metadata[field_name] = {**(metadata.get(field_name) or {}), key: value}


def _reason(err: Exception) -> str:
    for error_type, reason in _UNIT_ERRORS:
        if isinstance(err, error_type):
            return reason
    raise err


def _grid_problem(grid: Mapping[str, Any], key: str) -> Problem | None:
    key_problem = label_key_problem(key)
    if key_problem is not None:
        return Problem(reasons.EMPTY_GRID_KEY if not key else reasons.INVALID_GRID_KEY, key_problem)
    name = meta(grid).get("name") or ""
    if not is_label_value(name):
        return Problem(
            reasons.INVALID_GRID_NAME,
            f"grid name {name!r} cannot be the value of label {GRID_SELECTOR} "
            f"(at most {LABEL_MAX} characters)",
        )
    return None


class _Stamp:
    """What every child of one grid shares, computed once per reconcile rather than once per unit."""

    def __init__(self, kind: GridKind, grid: Mapping[str, Any], key: str, context: UnitContext) -> None:
        grid_meta = meta(grid)
        self.kind = kind
        self.key = key
        self.context = context
        self.spec: Mapping[str, Any] = grid.get("spec") or {}
        self.rules: list[Rule] = rules_of(self.spec) if kind.role == "workload" else []
        self.grid_name: str = grid_meta.get("name") or ""
        self.namespace: str = grid_meta.get("namespace") or "default"
        self.labels = {**(grid_meta.get("labels") or {}), GRID_SELECTOR: self.grid_name}
        if is_label_value(key):  # a prefixed key (topology.kubernetes.io/zone) cannot be a label value
            self.labels[GRID_UNIQ_KEY] = key
        self.annotations = {
            k: v for k, v in (grid_meta.get("annotations") or {}).items() if k != LAST_APPLIED
        }
        self.annotations[TOPOLOGY_KEYS] = orjson.dumps([key]).decode()
        # Offline (`render`) a grid has no uid yet; the live grid always has one.
        self.owners = [owner_reference(grid)] if grid_meta.get("uid") else []

    def child(self, name: str, unit: str, templates: Templates, rendered: dict[str, Obj]) -> Obj:
        """The complete child object for one unit (or the ServiceGrid's Service); records in
        `rendered[unit]` what the unit got. Raises the `_UNIT_ERRORS`."""
        if self.kind.role == "config":
            return self._config(name, unit, rendered)
        if self.kind.per_unit:
            return self._workload(name, unit, templates.for_unit(unit), rendered)
        return self._service(name, templates.named(DEFAULT_TEMPLATE_NAME))

    def _metadata(self, name: str) -> Obj:
        metadata: Obj = {"name": name, "namespace": self.namespace, "labels": dict(self.labels)}
        if self.owners:
            metadata["ownerReferences"] = [dict(ref) for ref in self.owners]
        return metadata

    def _workload(self, name: str, unit: str, template: Template, rendered: dict[str, Obj]) -> Obj:
        spec = template.fresh_spec()
        if spec.get("replicas") is None:
            spec["replicas"] = 1  # SuperEdge dereferences a nil pointer here (§8 fix 3)
        info = self.context.info(unit)
        rules = matching(self.rules, info)
        child, customised = self._customise(self._object(name, spec), info, rules, template)
        pod = _dict_at(child["spec"], "template")
        pod_spec = _dict_at(pod, "spec")
        pod_spec["nodeSelector"] = {**(pod_spec.get("nodeSelector") or {}), self.key: unit}  # ours wins
        configs = rewrite_references(pod_spec, info, self.context.configs, self.key)
        summary: Obj = {"template": template.name}
        if rules:
            summary["overrides"] = [rule.name for rule in rules]
        if configs:
            summary.update(configHash=digest(configs), configs=sorted(configs))
            _set_in(pod, "annotations", CONFIG_HASH, digest(configs))
        if customised or configs:  # a per-unit hash: a change for this unit rolls this unit only
            _set_in(pod, "labels", TEMPLATE_HASH_KEY, unit_hash(child["spec"]))
        if summary != {"template": DEFAULT_TEMPLATE_NAME}:  # the plain case stays out of status
            rendered[unit] = summary
        return child

    @staticmethod
    def _customise(child: Obj, info: UnitInfo, rules: list[Rule], template: Template) -> tuple[Obj, bool]:
        """Override rules, then placeholders; and whether the child now differs from the template."""
        if rules:
            child = apply_rules(child, rules)
        if not rules and MARKER.encode() not in template.spec_json:
            return child, False
        substituted = substitute(child["spec"], info)
        customised = bool(rules) or substituted != child["spec"]
        return {**child, "spec": substituted}, customised

    def _config(self, name: str, unit: str, rendered: dict[str, Obj]) -> Obj:
        body = config_body(self.kind.child.kind, self.spec, self.context.info(unit))
        child = {
            "apiVersion": self.kind.child.api_version,
            "kind": self.kind.child.kind,
            "metadata": self._metadata(name),
            **body,
        }
        child["metadata"]["annotations"] = {CONFIG_HASH: digest(body)}
        rendered[unit] = {"configHash": digest(body)}
        return child

    def _service(self, name: str, template: Template) -> Obj:
        child = self._object(name, template.fresh_spec())
        child["metadata"]["annotations"] = {**self.annotations, TEMPLATE_HASH_KEY: template.hash}
        return child

    def _object(self, name: str, spec: Obj) -> Obj:
        child = self.kind.child
        return {
            "apiVersion": child.api_version,
            "kind": child.kind,
            "metadata": self._metadata(name),
            "spec": spec,
        }
