"""Admission validation: object names and labels, the built-in kinds' rules, and CRD schemas.

Messages are apimachinery's (`k8s.io/apimachinery/pkg/util/validation`, `.../api/validation`,
`pkg/apis/{core,apps,policy,rbac,scheduling}/validation`, apiextensions-apiserver's structural
schema, pruning, defaulting and CEL validation), because clients and people read them: a FieldCause
carries the error body (`Required value`, `Invalid value: "x": ...`) and the field path separately.
Complex bad values are rendered as compact JSON where Go would print a Go literal.

`CrdSchema` compiles a CRD version's `openAPIV3Schema` once (regexes, CEL programs, child lookups)
because every custom object written to the sandbox passes through it.
"""

from __future__ import annotations

import base64
import copy
import functools
import ipaddress
import json
import re
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import celpy
from celpy import celtypes
from celpy.adapter import json_to_cel
from celpy.celparser import CELParseError
from celpy.evaluation import CELEvalError

from servicegroup.sandbox.errors import FieldCause, StatusError
from servicegroup.sandbox.openapi import Schema, builtin_schemas, definition_name, items, resolve
from servicegroup.sandbox.resources import RBAC_GROUP, SYSTEM_PRIORITY_CLASSES

Obj = dict[str, Any]
Causes = list[FieldCause]

# ---------------------------------------------------------------------------------------------
# field.Error bodies


class GoLiteral(str):
    """A bad value already spelled the way Go's `%#v` prints it (a typed struct, map or slice)."""


def render(value: Any) -> str:
    """A bad value as `field.Error` prints it: strings quoted, numbers and bools bare."""
    if isinstance(value, GoLiteral):
        return str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)
    if value is None:
        return "null"
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def required(path: str, detail: str = "") -> FieldCause:
    """`Required value[: detail]`."""
    return FieldCause("FieldValueRequired", path, "Required value" + (f": {detail}" if detail else ""))


def invalid(path: str, value: Any, detail: str) -> FieldCause:
    """`Invalid value: <value>: detail`."""
    return FieldCause("FieldValueInvalid", path, f"Invalid value: {render(value)}: {detail}")


def type_invalid(path: str, value: Any, detail: str) -> FieldCause:
    """A wrong JSON type (`field.TypeInvalid`), rendered like Invalid."""
    return FieldCause("FieldValueTypeInvalid", path, f"Invalid value: {render(value)}: {detail}")


def not_supported(path: str, value: Any, supported: Iterable[Any]) -> FieldCause:
    """`Unsupported value: "x": supported values: "a", "b"`."""
    values = ", ".join(render(v) for v in supported)
    return FieldCause(
        "FieldValueNotSupported", path, f"Unsupported value: {render(value)}: supported values: {values}"
    )


def duplicate(path: str, value: Any) -> FieldCause:
    """`Duplicate value: <value>`."""
    return FieldCause("FieldValueDuplicate", path, f"Duplicate value: {render(value)}")


def not_found(path: str, value: Any) -> FieldCause:
    """`Not found: <value>`."""
    return FieldCause("FieldValueNotFound", path, f"Not found: {render(value)}")


def forbidden(path: str, detail: str) -> FieldCause:
    """`Forbidden: detail`."""
    return FieldCause("FieldValueForbidden", path, f"Forbidden: {detail}")


def too_long(path: str, limit: int) -> FieldCause:
    """`Too long: may not be more than N bytes`."""
    return FieldCause("FieldValueTooLong", path, f"Too long: may not be more than {limit} bytes")


def too_many(path: str, actual: int, limit: int) -> FieldCause:
    """`Too many: N: must have at most M items`."""
    return FieldCause("FieldValueTooMany", path, f"Too many: {actual}: must have at most {limit} items")


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _go_quote(value: Any) -> str:
    return json.dumps(str(value), ensure_ascii=False)


def go_string_map(value: Any) -> GoLiteral:
    """`map[string]string{"a":"b"}` (keys sorted, like fmt), `map[string]string(nil)` when absent."""
    if not isinstance(value, dict) or not value:
        return GoLiteral("map[string]string(nil)" if not isinstance(value, dict) else "map[string]string{}")
    inner = ", ".join(f"{_go_quote(k)}:{_go_quote(value[k])}" for k in sorted(value))
    return GoLiteral(f"map[string]string{{{inner}}}")


def go_string_slice(value: list[Any]) -> GoLiteral:
    """`[]string{"a", "b"}`."""
    return GoLiteral("[]string{" + ", ".join(_go_quote(v) for v in value) + "}")


def go_label_selector(selector: Any) -> GoLiteral:
    """A `metav1.LabelSelector` as `%#v` prints it in Deployment/StatefulSet errors."""
    selector = selector if isinstance(selector, dict) else {}
    exprs = selector.get("matchExpressions")
    if isinstance(exprs, list) and exprs:
        rendered = ", ".join(
            f"v1.LabelSelectorRequirement{{Key:{_go_quote(e.get('key', ''))}, "
            f"Operator:{_go_quote(e.get('operator', ''))}, "
            f"Values:{go_string_slice(e['values']) if e.get('values') else '[]string(nil)'}}}"
            for e in exprs
            if isinstance(e, dict)
        )
        expressions = f"[]v1.LabelSelectorRequirement{{{rendered}}}"
    else:
        expressions = "[]v1.LabelSelectorRequirement(nil)"
    labels = go_string_map(selector.get("matchLabels"))
    return GoLiteral(f"v1.LabelSelector{{MatchLabels:{labels}, MatchExpressions:{expressions}}}")


# ---------------------------------------------------------------------------------------------
# apimachinery string rules (util/validation)


def _regex_error(msg: str, fmt: str, *examples: str) -> str:
    if not examples:
        return f"{msg} (regex used for validation is '{fmt}')"
    shown = " or ".join(f"'{e}', " for e in examples)
    return f"{msg} (e.g. {shown}regex used for validation is '{fmt}')"


def _max_len(limit: int) -> str:
    return f"must be no more than {limit} characters"


_DNS1123_LABEL = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN = rf"{_DNS1123_LABEL}(\.{_DNS1123_LABEL})*"
_DNS1035_LABEL = "[a-z]([-a-z0-9]*[a-z0-9])?"
_QUALIFIED_NAME = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_LABEL_VALUE = rf"({_QUALIFIED_NAME})?"
_CONFIG_KEY = "[-._a-zA-Z0-9]+"
_QUALIFIED_MSG = (
    "must consist of alphanumeric characters, '-', '_' or '.', "
    "and must start and end with an alphanumeric character"
)


def _full(pattern: str) -> re.Pattern[str]:
    return re.compile(f"^(?:{pattern})$")


_PATTERNS = {
    "label": _DNS1123_LABEL,
    "subdomain": _DNS1123_SUBDOMAIN,
    "dns1035": _DNS1035_LABEL,
    "qualified": _QUALIFIED_NAME,
    "value": _LABEL_VALUE,
    "configkey": _CONFIG_KEY,
}
_RE = {name: _full(pattern) for name, pattern in _PATTERNS.items()}


_LABEL_RULE_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character"
)
_SUBDOMAIN_RULE_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
    "and must start and end with an alphanumeric character"
)
_DNS1035_RULE_MSG = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', "
    "start with an alphabetic character, and end with an alphanumeric character"
)
_LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
    "and must start and end with an alphanumeric character"
)
_CONFIG_KEY_MSG = "a valid config key must consist of alphanumeric characters, '-', '_' or '.'"


def _pattern_rule(value: str, limit: int, rule: str, msg: str, *examples: str) -> list[str]:
    """The length and regex checks every apimachinery `Is...` string rule shares."""
    errs = [_max_len(limit)] if len(value) > limit else []
    if not _RE[rule].match(value):
        errs.append(_regex_error(msg, _PATTERNS[rule], *examples))
    return errs


def dns1123_label(value: str) -> list[str]:
    """`IsDNS1123Label`."""
    return _pattern_rule(value, 63, "label", _LABEL_RULE_MSG, "my-name", "123-abc")


def dns1123_subdomain(value: str) -> list[str]:
    """`IsDNS1123Subdomain`."""
    return _pattern_rule(value, 253, "subdomain", _SUBDOMAIN_RULE_MSG, "example.com")


def dns1035_label(value: str) -> list[str]:
    """`IsDNS1035Label` (CRD plural/singular and version names)."""
    return _pattern_rule(value, 63, "dns1035", _DNS1035_RULE_MSG, "my-name", "abc-123")


def qualified_name(value: str) -> list[str]:
    """`IsQualifiedName`: label and annotation keys (`prefix/name`)."""
    parts = value.split("/")
    errs: list[str] = []
    if len(parts) > 2:
        return [
            "a qualified name "
            + _regex_error(_QUALIFIED_MSG, _QUALIFIED_NAME, "MyName", "my.name", "123-abc")
            + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ]
    name = parts[-1]
    if len(parts) == 2:
        prefix = parts[0]
        if not prefix:
            errs.append("prefix part must be non-empty")
        else:
            errs.extend("prefix part " + m for m in dns1123_subdomain(prefix))
    if not name:
        errs.append("name part must be non-empty")
    elif len(name) > 63:
        errs.append("name part " + _max_len(63))
    if not _RE["qualified"].match(name):
        errs.append(
            "name part " + _regex_error(_QUALIFIED_MSG, _QUALIFIED_NAME, "MyName", "my.name", "123-abc")
        )
    return errs


def label_value(value: str) -> list[str]:
    """`IsValidLabelValue`."""
    return _pattern_rule(value, 63, "value", _LABEL_VALUE_MSG, "MyValue", "my_value", "12345")


def config_key(value: str) -> list[str]:
    """`IsConfigMapKey` (ConfigMap and Secret data keys)."""
    errs = _pattern_rule(value, 253, "configkey", _CONFIG_KEY_MSG, "key.name", "KEY_NAME", "key-name")
    if value in (".", ".."):
        errs.append(f"must not be '{value}'")
    elif value.startswith(".."):
        errs.append("must not start with '..'")
    return errs


def port_name(value: str) -> list[str]:
    """`IsValidPortName`: an IANA_SVC_NAME."""
    errs: list[str] = []
    if len(value) > 15:
        errs.append(_max_len(15))
    if not re.fullmatch("[-a-z0-9]+", value):
        errs.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if not re.search("[a-z]", value):
        errs.append("must contain at least one letter (a-z)")
    if "--" in value:
        errs.append("must not contain consecutive hyphens")
    if value.startswith("-") or value.endswith("-"):
        errs.append("must not begin or end with a hyphen")
    return errs


def path_segment_name(value: str) -> list[str]:
    """`IsValidPathSegmentName`: RBAC names (`system:controller:x` is fine, `a/b` is not)."""
    if value in (".", ".."):
        return [f"may not be '{value}'"]
    return [f"may not contain '{c}'" for c in ("/", "%") if c in value]


_PERCENT = re.compile(r"^[0-9]+%$")
_PERCENT_MSG = "a valid percent string must be a numeric string followed by an ending '%'"


def _percent(value: Any) -> int | None:
    """`getPercentValue`: the number of a valid `N%` string, None for anything else."""
    return int(value[:-1]) if isinstance(value, str) and _PERCENT.match(value) else None


def _int_or_percent_value(value: Any) -> int:
    """`getIntOrPercentValue`: the percentage or the integer (a malformed string counts as 0)."""
    percent = _percent(value)
    if percent is not None:
        return percent
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _int_or_percent(path: str, value: Any) -> Causes:
    """`ValidatePositiveIntOrPercent` plus `IsNotMoreThan100Percent` (rollouts, disruption budgets)."""
    if value is None:
        return []
    if isinstance(value, str):
        if _percent(value) is None:
            return [invalid(path, value, _regex_error(_PERCENT_MSG, "[0-9]+%", "1%", "93%"))]
        return (
            []
            if _int_or_percent_value(value) <= 100
            else [invalid(path, value, "must not be greater than 100%")]
        )
    if isinstance(value, int) and not isinstance(value, bool):
        return _non_negative(path, value)
    return [invalid(path, value, "must be an integer or percentage (e.g '5%')")]


def _each(path: str, value: Any, messages: list[str]) -> Causes:
    return [invalid(path, value, m) for m in messages]


# ---------------------------------------------------------------------------------------------
# metadata

# Kinds whose names are DNS-1123 labels (they become hostnames / pod name prefixes); Services
# were DNS-1035 labels until RelaxedServiceNameValidation, locked on in 1.37. Others: subdomains.
_LABEL_NAMES = {("", "Service"), ("", "Namespace"), ("apps", "StatefulSet")}
_ANNOTATIONS_LIMIT = 256 * (1 << 10)


def _group_kind(obj: Obj) -> tuple[str, str]:
    api_version = str(obj.get("apiVersion", ""))
    group = api_version.rpartition("/")[0]
    return group, str(obj.get("kind", ""))


def _name_rule(group_kind: tuple[str, str]) -> Callable[[str], list[str]]:
    """The kind's `ValidateNameFunc`: a label, a path segment (RBAC) or, mostly, a subdomain."""
    if group_kind in _LABEL_NAMES:
        return dns1123_label
    if group_kind[0] == RBAC_GROUP:
        return path_segment_name
    return dns1123_subdomain


def validate_labels(labels: Any, path: str) -> Causes:
    """`ValidateLabels`: qualified-name keys and label values."""
    if not isinstance(labels, dict):
        return []
    causes: Causes = []
    for key, value in labels.items():
        causes += _each(path, key, qualified_name(key))
        causes += _each(path, value, label_value(str(value)))
    return causes


def validate_annotations(annotations: Any, path: str) -> Causes:
    """`ValidateAnnotations`: qualified-name keys (case-insensitive), 256 KiB in total."""
    if not isinstance(annotations, dict):
        return []
    causes: Causes = []
    total = 0
    for key, value in annotations.items():
        causes += _each(path, key, qualified_name(key.lower()))
        total += len(key) + len(str(value))
    if total > _ANNOTATIONS_LIMIT:
        causes.append(too_long(path, _ANNOTATIONS_LIMIT))
    return causes


def validate_metadata(obj: Obj, *, namespaced: bool) -> list[FieldCause]:
    """`ValidateObjectMeta`: name rule per kind, namespace presence, labels, annotations."""
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        return [required("metadata")]
    causes: Causes = []
    name = meta.get("name")
    if not name:
        if not meta.get("generateName"):
            causes.append(required("metadata.name", "name or generateName is required"))
    else:
        causes += _each("metadata.name", name, _name_rule(_group_kind(obj))(str(name)))
    namespace = meta.get("namespace")
    if namespaced and not namespace:
        causes.append(required("metadata.namespace"))
    elif namespaced:
        causes += _each("metadata.namespace", namespace, dns1123_label(str(namespace)))
    elif namespace:
        causes.append(forbidden("metadata.namespace", "not allowed on this type"))
    causes += validate_labels(meta.get("labels"), "metadata.labels")
    causes += validate_annotations(meta.get("annotations"), "metadata.annotations")
    return causes


# ---------------------------------------------------------------------------------------------
# built-in kinds


def _get(obj: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def _non_negative(path: str, value: Any) -> Causes:
    if isinstance(value, int) and value < 0:
        return [invalid(path, value, "must be greater than or equal to 0")]
    return []


def _port_number(path: str, value: Any) -> Causes:
    if not isinstance(value, int) or not 1 <= value <= 65535:
        return [invalid(path, value, "must be between 1 and 65535, inclusive")]
    return []


def _int_or_port_name(path: str, value: Any) -> Causes:
    if isinstance(value, str):
        return _each(path, value, port_name(value))
    return _port_number(path, value)


_PROTOCOLS = ("SCTP", "TCP", "UDP")


def _containers(containers: Any, path: str, names: set[str]) -> Causes:
    causes: Causes = []
    for i, container in enumerate(containers if isinstance(containers, list) else []):
        where = f"{path}[{i}]"
        name = _get(container, "name")
        if not name:
            causes.append(required(f"{where}.name"))
        elif name in names:
            causes.append(duplicate(f"{where}.name", name))
        else:
            causes += _each(f"{where}.name", name, dns1123_label(str(name)))
            names.add(str(name))
        if not _get(container, "image"):
            causes.append(required(f"{where}.image"))
        causes += _container_ports(_get(container, "ports"), f"{where}.ports")
    return causes


def _container_ports(ports: Any, path: str) -> Causes:
    causes: Causes = []
    for j, port in enumerate(ports if isinstance(ports, list) else []):
        where = f"{path}[{j}]"
        causes += _port_number(f"{where}.containerPort", _get(port, "containerPort"))
        protocol = _get(port, "protocol")
        if protocol is not None and protocol not in _PROTOCOLS:
            causes.append(not_supported(f"{where}.protocol", protocol, _PROTOCOLS))
        if _get(port, "name"):
            causes += _each(f"{where}.name", port["name"], port_name(str(port["name"])))
    return causes


def _volumes(volumes: Any, path: str) -> tuple[Causes, set[str]]:
    causes: Causes = []
    names: set[str] = set()
    for i, volume in enumerate(volumes if isinstance(volumes, list) else []):
        name = _get(volume, "name")
        if not name:
            causes.append(required(f"{path}[{i}].name"))
        elif name in names:
            causes.append(duplicate(f"{path}[{i}].name", name))
        else:
            causes += _each(f"{path}[{i}].name", name, dns1123_label(str(name)))
            names.add(str(name))
    return causes, names


def _volume_mounts(spec: Obj, path: str, volumes: set[str]) -> Causes:
    """Every mount names a volume (or, in a StatefulSet, a claim template) and has a path."""
    causes: Causes = []
    for key in ("initContainers", "containers"):
        containers = spec.get(key)
        for i, container in enumerate(containers if isinstance(containers, list) else []):
            for j, mount in enumerate(_get(container, "volumeMounts") or []):
                where = f"{path}.{key}[{i}].volumeMounts[{j}]"
                name = _get(mount, "name")
                if not name:
                    causes.append(required(f"{where}.name"))
                elif name not in volumes:
                    causes.append(not_found(f"{where}.name", name))
                if not _get(mount, "mountPath"):
                    causes.append(required(f"{where}.mountPath"))
    return causes


def validate_pod_spec(spec: Any, path: str, *, template: bool, claims: Iterable[str] = ()) -> Causes:
    """`ValidatePodSpec` essentials: containers, volumes, policies; templates must restart Always."""
    if not isinstance(spec, dict):
        return [required(path)]
    causes: Causes = []
    names: set[str] = set()
    if not spec.get("containers"):
        causes.append(required(f"{path}.containers"))
    causes += _containers(spec.get("initContainers"), f"{path}.initContainers", names)
    causes += _containers(spec.get("containers"), f"{path}.containers", names)
    volume_causes, volumes = _volumes(spec.get("volumes"), f"{path}.volumes")
    causes += volume_causes + _volume_mounts(spec, path, volumes | set(claims))
    restart = spec.get("restartPolicy")
    allowed = ("Always",) if template else ("Always", "OnFailure", "Never")
    if restart is not None and restart not in allowed:
        causes.append(not_supported(f"{path}.restartPolicy", restart, allowed))
    dns = spec.get("dnsPolicy")
    dns_allowed = ("ClusterFirst", "ClusterFirstWithHostNet", "Default", "None")
    if dns is not None and dns not in dns_allowed:
        causes.append(not_supported(f"{path}.dnsPolicy", dns, dns_allowed))
    return causes


def _selector_matches(selector: Any, labels: Any) -> bool:
    """Whether a LabelSelector selects `labels`, with the server's own selector parser."""
    from servicegroup.sandbox.storage import parse_label_selector
    from servicegroup.sandbox.tables import label_selector_string

    text = label_selector_string(selector)
    try:
        matcher = parse_label_selector(text) if text is not None else None
    except StatusError:
        return False
    if text is None:
        return False
    return matcher is None or matcher(labels if isinstance(labels, dict) else {})


def _workload(spec: Any, kind: str, old_spec: Any, claims: Iterable[str] = ()) -> Causes:
    """Shared Deployment/ReplicaSet/StatefulSet rules: selector, template, replicas."""
    if not isinstance(spec, dict):
        return [required("spec")]
    causes: Causes = []
    selector = spec.get("selector")
    template = spec.get("template")
    if selector is None:
        causes.append(required("spec.selector"))
    elif not _get(selector, "matchLabels") and not _get(selector, "matchExpressions"):
        causes.append(
            invalid("spec.selector", go_label_selector(selector), f"empty selector is invalid for {kind}")
        )
    else:
        causes += validate_labels(_get(selector, "matchLabels"), "spec.selector.matchLabels")
        labels = _get(template, "metadata", "labels")
        if not _selector_matches(selector, labels):
            causes.append(
                invalid(
                    "spec.template.metadata.labels",
                    go_string_map(labels),
                    "`selector` does not match template `labels`",
                )
            )
    if old_spec is not None and selector != _get(old_spec, "selector"):
        causes.append(invalid("spec.selector", go_label_selector(selector), "field is immutable"))
    if template is None:
        causes.append(required("spec.template"))
    else:
        causes += validate_labels(_get(template, "metadata", "labels"), "spec.template.metadata.labels")
        causes += validate_pod_spec(
            _get(template, "spec"), "spec.template.spec", template=True, claims=claims
        )
    causes += _non_negative("spec.replicas", spec.get("replicas"))
    causes += _non_negative("spec.revisionHistoryLimit", spec.get("revisionHistoryLimit"))
    causes += _non_negative("spec.minReadySeconds", spec.get("minReadySeconds"))
    return causes


def _deployment(obj: Obj, old: Obj | None) -> Causes:
    spec = obj.get("spec")
    causes = _workload(spec, "deployment", _get(old, "spec"))
    strategy = _get(spec, "strategy", "type")
    if strategy is not None and strategy not in ("Recreate", "RollingUpdate"):
        causes.append(not_supported("spec.strategy.type", strategy, ("Recreate", "RollingUpdate")))
    rolling = _get(spec, "strategy", "rollingUpdate")
    unavailable, surge = _get(rolling, "maxUnavailable"), _get(rolling, "maxSurge")
    if unavailable in (0, "0%") and surge in (0, "0%"):
        causes.append(
            invalid(
                "spec.strategy.rollingUpdate.maxUnavailable", unavailable, "may not be 0 when `maxSurge` is 0"
            )
        )
    if strategy == "Recreate" and rolling is not None:
        causes.append(
            forbidden(
                "spec.strategy.rollingUpdate", "may not be specified when strategy `type` is 'Recreate'"
            )
        )
    return causes


_STS_MUTABLE = (
    "replicas",
    "ordinals",
    "template",
    "updateStrategy",
    "persistentVolumeClaimRetentionPolicy",
    "minReadySeconds",
)
_STS_FORBIDDEN = (
    "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', "
    "'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"
)


def _statefulset(obj: Obj, old: Obj | None) -> Causes:
    spec = obj.get("spec")
    claims = [str(_get(c, "metadata", "name")) for c in _get(spec, "volumeClaimTemplates") or []]
    causes = _workload(spec, "statefulset", None, claims)
    policy = _get(spec, "podManagementPolicy")
    if policy is not None and policy not in ("OrderedReady", "Parallel"):
        causes.append(not_supported("spec.podManagementPolicy", policy, ("OrderedReady", "Parallel")))
    strategy = _get(spec, "updateStrategy", "type")
    if strategy is not None and strategy not in ("OnDelete", "RollingUpdate"):
        causes.append(not_supported("spec.updateStrategy.type", strategy, ("OnDelete", "RollingUpdate")))
    old_spec = _get(old, "spec")
    if isinstance(old_spec, dict) and isinstance(spec, dict):
        frozen_new = {k: v for k, v in spec.items() if k not in _STS_MUTABLE}
        frozen_old = {k: v for k, v in old_spec.items() if k not in _STS_MUTABLE}
        if frozen_new != frozen_old:
            causes.append(forbidden("spec", _STS_FORBIDDEN))
    return causes


def _replicaset(obj: Obj, old: Obj | None) -> Causes:
    return _workload(obj.get("spec"), "replicaset", _get(old, "spec"))


def _daemonset(obj: Obj, old: Obj | None) -> Causes:
    """`ValidateDaemonSet(Update)`: the workload rules (one shared with Deployments) and the strategy."""
    spec = obj.get("spec")
    causes = _workload(spec, "daemonset", _get(old, "spec"))
    if isinstance(spec, dict):
        causes += _daemonset_strategy(spec.get("updateStrategy"), "spec.updateStrategy")
    return causes


_DAEMONSET_STRATEGIES = ("RollingUpdate", "OnDelete")


def _daemonset_strategy(strategy: Any, path: str) -> Causes:
    """`ValidateDaemonSetUpdateStrategy`: a rolling update goes by surge or by unavailability, not both."""
    kind = _get(strategy, "type")
    if kind == "OnDelete":
        return []
    if kind != "RollingUpdate":
        return [not_supported(path, strategy, _DAEMONSET_STRATEGIES)]
    rolling = _get(strategy, "rollingUpdate")
    if not isinstance(rolling, dict):
        return [required(f"{path}.rollingUpdate")]
    path += ".rollingUpdate"
    unavailable, surge = rolling.get("maxUnavailable"), rolling.get("maxSurge")
    causes = _int_or_percent(f"{path}.maxUnavailable", unavailable) + _int_or_percent(
        f"{path}.maxSurge", surge
    )
    moves_unavailable, moves_surge = (
        _int_or_percent_value(unavailable) != 0,
        _int_or_percent_value(surge) != 0,
    )
    if moves_unavailable and moves_surge:
        causes.append(invalid(f"{path}.maxSurge", surge, "may not be set when maxUnavailable is non-zero"))
    elif not moves_unavailable and not moves_surge:
        causes.append(required(f"{path}.maxUnavailable", "cannot be 0 when maxSurge is 0"))
    return causes


_EVICTION_POLICIES = ("AlwaysAllow", "IfHealthyBudget")


def _pdb(obj: Obj, old: Obj | None) -> Causes:
    """`ValidatePodDisruptionBudgetSpec`: at most one of minAvailable/maxUnavailable, each a count or %."""
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return []
    causes: Causes = []
    if spec.get("minAvailable") is not None and spec.get("maxUnavailable") is not None:
        causes.append(invalid("spec", spec, "minAvailable and maxUnavailable cannot be both set"))
    for key in ("minAvailable", "maxUnavailable"):
        causes += _int_or_percent(f"spec.{key}", spec.get(key))
    causes += validate_labels(_get(spec, "selector", "matchLabels"), "spec.selector.matchLabels")
    policy = spec.get("unhealthyPodEvictionPolicy")
    if policy is not None and policy not in _EVICTION_POLICIES:
        causes.append(not_supported("spec.unhealthyPodEvictionPolicy", policy, _EVICTION_POLICIES))
    return causes


# -- rbac.authorization.k8s.io: stored objects (the sandbox authorizes nothing), validated as upstream


def _policy_rules(rules: Any, *, namespaced: bool) -> Causes:
    """`ValidatePolicyRule` for every rule of a Role (namespaced) or ClusterRole."""
    causes: Causes = []
    for i, rule in enumerate(rules if isinstance(rules, list) else []):
        causes += _policy_rule(rule if isinstance(rule, dict) else {}, f"rules[{i}]", namespaced=namespaced)
    return causes


def _policy_rule(rule: Obj, path: str, *, namespaced: bool) -> Causes:
    """Verbs always; then either groups and resources, or (cluster-wide only) non-resource URLs."""
    causes: Causes = []
    if not rule.get("verbs"):
        causes.append(required(f"{path}.verbs", "verbs must contain at least one value"))
    urls = rule.get("nonResourceURLs")
    if isinstance(urls, list) and urls:
        shown = go_string_slice(urls)
        if namespaced:
            msg = "namespaced rules cannot apply to non-resource URLs"
            causes.append(invalid(f"{path}.nonResourceURLs", shown, msg))
        if rule.get("apiGroups") or rule.get("resources") or rule.get("resourceNames"):
            msg = "rules cannot apply to both regular resources and non-resource URLs"
            causes.append(invalid(f"{path}.nonResourceURLs", shown, msg))
        return causes
    if not rule.get("apiGroups"):
        causes.append(required(f"{path}.apiGroups", "resource rules must supply at least one api group"))
    if not rule.get("resources"):
        causes.append(required(f"{path}.resources", "resource rules must supply at least one resource"))
    return causes


def _role(obj: Obj, old: Obj | None) -> Causes:
    return _policy_rules(obj.get("rules"), namespaced=True)


def _cluster_role(obj: Obj, old: Obj | None) -> Causes:
    causes = _policy_rules(obj.get("rules"), namespaced=False)
    aggregation = obj.get("aggregationRule")
    if aggregation is not None and not _get(aggregation, "clusterRoleSelectors"):
        detail = "at least one clusterRoleSelector required if aggregationRule is non-nil"
        causes.append(required("aggregationRule.clusterRoleSelectors", detail))
    return causes


_SUBJECT_KINDS = ("ServiceAccount", "User", "Group")
_ROLE_REF_FIELDS = (("APIGroup", "apiGroup"), ("Kind", "kind"), ("Name", "name"))


def _go_role_ref(ref: Obj) -> GoLiteral:
    """`rbac.RoleRef{APIGroup:"...", Kind:"...", Name:"..."}` as `%#v` prints it."""
    fields = ", ".join(f"{go}:{_go_quote(ref.get(key) or '')}" for go, key in _ROLE_REF_FIELDS)
    return GoLiteral(f"rbac.RoleRef{{{fields}}}")


def _role_ref(ref: Obj, kinds: tuple[str, ...]) -> Causes:
    """The rbac group, one of `kinds`, and a valid name."""
    causes: Causes = []
    group, kind, name = ref.get("apiGroup") or "", ref.get("kind") or "", ref.get("name")
    if group != RBAC_GROUP:
        causes.append(not_supported("roleRef.apiGroup", group, (RBAC_GROUP,)))
    if kind not in kinds:
        causes.append(not_supported("roleRef.kind", kind, kinds))
    if not name:
        causes.append(required("roleRef.name"))
    else:
        causes += _each("roleRef.name", name, path_segment_name(str(name)))
    return causes


def _subject(subject: Obj, path: str, *, namespaced: bool) -> Causes:
    """`ValidateRoleBindingSubject`: a known kind, its api group; service accounts need a namespace
    in cluster-wide bindings."""
    name, kind, group = subject.get("name"), subject.get("kind") or "", subject.get("apiGroup") or ""
    causes = [] if name else [required(f"{path}.name")]
    if kind not in _SUBJECT_KINDS:
        return [*causes, not_supported(f"{path}.kind", kind, _SUBJECT_KINDS)]
    wanted = "" if kind == "ServiceAccount" else RBAC_GROUP
    if group != wanted:
        causes.append(not_supported(f"{path}.apiGroup", group, (wanted,)))
    if kind == "ServiceAccount" and name:
        causes += _each(f"{path}.name", name, dns1123_subdomain(str(name)))
    if kind == "ServiceAccount" and not namespaced and not subject.get("namespace"):
        causes.append(required(f"{path}.namespace"))
    return causes


def _binding(obj: Obj, old: Obj | None, kinds: tuple[str, ...], *, namespaced: bool) -> Causes:
    """`Validate(Cluster)RoleBinding(Update)`: a roleRef that never changes, well-formed subjects."""
    raw_ref = obj.get("roleRef")
    ref: Obj = raw_ref if isinstance(raw_ref, dict) else {}
    causes = _role_ref(ref, kinds)
    subjects = obj.get("subjects")
    for i, subject in enumerate(subjects if isinstance(subjects, list) else []):
        item = subject if isinstance(subject, dict) else {}
        causes += _subject(item, f"subjects[{i}]", namespaced=namespaced)
    old_ref = _get(old, "roleRef")
    if old is not None and _go_role_ref(old_ref if isinstance(old_ref, dict) else {}) != _go_role_ref(ref):
        causes.append(invalid("roleRef", _go_role_ref(ref), "cannot change roleRef"))
    return causes


def _role_binding(obj: Obj, old: Obj | None) -> Causes:
    return _binding(obj, old, ("Role", "ClusterRole"), namespaced=True)


def _cluster_role_binding(obj: Obj, old: Obj | None) -> Causes:
    return _binding(obj, old, ("ClusterRole",), namespaced=False)


# -- scheduling.k8s.io

_HIGHEST_USER_PRIORITY = 1_000_000_000
_PREEMPTION_POLICIES = ("PreemptLowerPriority", "Never")


def _system_priority_class_problem(name: str, obj: Obj) -> str | None:
    """`IsKnownSystemPriorityClass`'s error: `system-` names are the built-in classes, unchanged."""
    known = SYSTEM_PRIORITY_CLASSES.get(name)
    if known is None:
        return f"{name} is not a known system priority class"
    if obj.get("value") != known[0]:
        return f"value of {name} PriorityClass must be {known[0]}"
    if obj.get("globalDefault"):
        return f"globalDefault of {name} PriorityClass must be false"
    return None


def _priority_class(obj: Obj, old: Obj | None) -> Causes:
    """`ValidatePriorityClass`, or on update only `ValidatePriorityClassUpdate` (value and policy frozen)."""
    if old is not None:
        return _priority_class_update(obj, old)
    causes: Causes = []
    name, value = str(_get(obj, "metadata", "name") or ""), obj.get("value")
    if name.startswith("system-"):
        problem = _system_priority_class_problem(name, obj)
        if problem is not None:
            reserved = "priority class names with 'system-' prefix are reserved for system use only"
            causes.append(forbidden("metadata.name", f"{reserved}. error: {problem}"))
    elif isinstance(value, int) and value > _HIGHEST_USER_PRIORITY:
        detail = f"maximum allowed value of a user defined priority is {_HIGHEST_USER_PRIORITY}"
        causes.append(forbidden("value", detail))
    policy = obj.get("preemptionPolicy")
    if policy is not None and policy not in _PREEMPTION_POLICIES:
        causes.append(not_supported("preemptionPolicy", policy, _PREEMPTION_POLICIES))
    return causes


def _priority_class_update(obj: Obj, old: Obj) -> Causes:
    causes: Causes = []
    if obj.get("value") != old.get("value"):
        causes.append(forbidden("value", "may not be changed in an update."))
    if obj.get("preemptionPolicy") != old.get("preemptionPolicy"):
        causes.append(invalid("preemptionPolicy", obj.get("preemptionPolicy"), "field is immutable"))
    return causes


_POD_MUTABLE_MSG = (
    "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,"
    "`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),"
    "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)"
)


def _pod_frozen(spec: Any) -> Any:
    """The pod spec without the fields an update may change."""
    if not isinstance(spec, dict):
        return spec
    frozen = {
        k: v
        for k, v in spec.items()
        if k
        not in ("activeDeadlineSeconds", "tolerations", "terminationGracePeriodSeconds", "schedulingGates")
    }
    for key in ("containers", "initContainers"):
        if isinstance(frozen.get(key), list):
            frozen[key] = [
                {k: v for k, v in c.items() if k != "image"} for c in frozen[key] if isinstance(c, dict)
            ]
    return frozen


def _added_scheduling_gates(spec: Any, old_spec: Any) -> Causes:
    """Scheduling gates may only be removed after creation (they hold a pod back from the scheduler)."""

    def gates(of: Any) -> list[Any]:
        found = _get(of, "schedulingGates")
        return found if isinstance(found, list) else []

    old_names = {_get(g, "name") for g in gates(old_spec)}
    return [
        forbidden(
            f"spec.schedulingGates[{i}].name",
            f"only deletion is allowed, but found new scheduling gate '{_get(gate, 'name')}'",
        )
        for i, gate in enumerate(gates(spec))
        if _get(gate, "name") not in old_names
    ]


def _pod(obj: Obj, old: Obj | None) -> Causes:
    causes = validate_pod_spec(obj.get("spec"), "spec", template=False)
    if old is not None:
        causes += _added_scheduling_gates(obj.get("spec"), old.get("spec"))
        if _pod_frozen(obj.get("spec")) != _pod_frozen(old.get("spec")):
            causes.append(forbidden("spec", _POD_MUTABLE_MSG))
    return causes


_SERVICE_TYPES = ("ClusterIP", "ExternalName", "LoadBalancer", "NodePort")


def _service_ports(spec: Obj) -> Causes:
    raw_ports = spec.get("ports")
    ports: list[Any] = raw_ports if isinstance(raw_ports, list) else []
    causes: Causes = []
    names: set[str] = set()
    keys: set[tuple[Any, Any]] = set()
    for i, port in enumerate(ports):
        where = f"spec.ports[{i}]"
        name = _get(port, "name")
        if len(ports) > 1 and not name:
            causes.append(required(f"{where}.name"))
        elif name:
            causes += _each(f"{where}.name", name, dns1123_label(str(name)))
            if name in names:
                causes.append(duplicate(f"{where}.name", name))
            names.add(str(name))
        causes += _port_number(f"{where}.port", _get(port, "port"))
        protocol = _get(port, "protocol")
        if protocol is not None and protocol not in _PROTOCOLS:
            causes.append(not_supported(f"{where}.protocol", protocol, _PROTOCOLS))
        target = _get(port, "targetPort")
        if target is not None:
            causes += _int_or_port_name(f"{where}.targetPort", target)
        key = (_get(port, "port"), protocol or "TCP")
        if key in keys:
            causes.append(duplicate(where, {"port": key[0], "protocol": key[1]}))
        keys.add(key)
    return causes


def _service(obj: Obj, old: Obj | None) -> Causes:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return [required("spec")]
    causes: Causes = []
    kind = spec.get("type", "ClusterIP")
    if kind not in _SERVICE_TYPES:
        causes.append(not_supported("spec.type", kind, _SERVICE_TYPES))
    headless = spec.get("clusterIP") == "None"
    if kind == "ExternalName":
        if not spec.get("externalName"):
            causes.append(required("spec.externalName"))
    elif not spec.get("ports") and not headless:
        causes.append(required("spec.ports"))
    causes += _service_ports(spec)
    causes += validate_labels(spec.get("selector"), "spec.selector")
    affinity = spec.get("sessionAffinity")
    if affinity is not None and affinity not in ("ClientIP", "None"):
        causes.append(not_supported("spec.sessionAffinity", affinity, ("ClientIP", "None")))
    old_ip = _get(old, "spec", "clusterIP")
    new_ip = spec.get("clusterIP")
    if old_ip and new_ip and old_ip != new_ip and kind != "ExternalName":
        causes.append(invalid("spec.clusterIPs[0]", go_string_slice([new_ip]), "may not change once set"))
    return causes


_DATA_LIMIT = 1 << 20


def _data_keys(obj: Obj, fields: tuple[str, ...]) -> Causes:
    causes: Causes = []
    seen: set[str] = set()
    size = 0
    for fld in fields:
        data = obj.get(fld)
        for key, value in (data if isinstance(data, dict) else {}).items():
            causes += _each(f"{fld}[{key}]", key, config_key(key))
            if key in seen:
                causes.append(invalid(f"{fld}[{key}]", key, "duplicate of key present in data"))
            seen.add(key)
            size += len(str(value))
    if size > _DATA_LIMIT:
        causes.append(too_long(fields[0], _DATA_LIMIT))
    return causes


def _immutable_data(obj: Obj, old: Obj | None, fields: tuple[str, ...]) -> Causes:
    if not (old and old.get("immutable") is True):
        return []
    causes = [
        forbidden(f, "field is immutable when `immutable` is set") for f in fields if obj.get(f) != old.get(f)
    ]
    if obj.get("immutable") is not True:
        causes.append(forbidden("immutable", "field is immutable when `immutable` is set"))
    return causes


def _configmap(obj: Obj, old: Obj | None) -> Causes:
    fields = ("data", "binaryData")
    return _data_keys(obj, fields) + _immutable_data(obj, old, fields)


def _secret(obj: Obj, old: Obj | None) -> Causes:
    fields = ("data", "stringData")
    causes = _data_keys(obj, fields) + _immutable_data(obj, old, ("data",))
    if old is not None and obj.get("type") != old.get("type"):
        causes.append(invalid("type", obj.get("type"), "field is immutable"))
    return causes


def _lease(obj: Obj, old: Obj | None) -> Causes:
    duration = _get(obj, "spec", "leaseDurationSeconds")
    if isinstance(duration, int) and duration <= 0:
        return [invalid("spec.leaseDurationSeconds", duration, "must be greater than 0")]
    return []


def _core_event(obj: Obj, old: Obj | None) -> Causes:
    involved = _get(obj, "involvedObject", "namespace")
    namespace = _get(obj, "metadata", "namespace")
    if involved and namespace and involved != namespace:
        return [invalid("involvedObject.namespace", involved, "does not match event.namespace")]
    return []


def _events_event(obj: Obj, old: Obj | None) -> Causes:
    causes = [
        required(f)
        for f in ("eventTime", "reportingController", "reportingInstance", "action", "reason")
        if not obj.get(f)
    ]
    kind = obj.get("type")
    if kind not in ("Normal", "Warning"):
        causes.append(not_supported("type", kind, ("Normal", "Warning")))
    return causes


def _endpointslice(obj: Obj, old: Obj | None) -> Causes:
    family = obj.get("addressType")
    allowed = ("FQDN", "IPv4", "IPv6")
    if not family:
        return [required("addressType")]
    causes = [] if family in allowed else [not_supported("addressType", family, allowed)]
    if old is not None and family != old.get("addressType"):
        causes.append(invalid("addressType", family, "field is immutable"))
    for i, endpoint in enumerate(obj.get("endpoints") or []):
        addresses = _get(endpoint, "addresses")
        if not addresses:
            causes.append(required(f"endpoints[{i}].addresses", "must contain at least 1 address"))
    return causes


def _endpoints(obj: Obj, old: Obj | None) -> Causes:
    causes: Causes = []
    for i, subset in enumerate(obj.get("subsets") or []):
        for j, port in enumerate(_get(subset, "ports") or []):
            causes += _port_number(f"subsets[{i}].ports[{j}].port", _get(port, "port"))
        for kind in ("addresses", "notReadyAddresses"):
            for j, address in enumerate(_get(subset, kind) or []):
                causes += _ip(f"subsets[{i}].{kind}[{j}].ip", _get(address, "ip"))
    return causes


def _ip(path: str, value: Any) -> Causes:
    try:
        ipaddress.ip_address(str(value))
    except ValueError:
        return [invalid(path, value, "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)")]
    return []


def _controller_revision(obj: Obj, old: Obj | None) -> Causes:
    causes = _non_negative("revision", obj.get("revision"))
    if old is not None and obj.get("data") != old.get("data"):
        causes.append(invalid("data", "", "field is immutable"))
    return causes


_VALIDATORS: dict[tuple[str, str], Callable[[Obj, Obj | None], Causes]] = {
    ("apps", "Deployment"): _deployment,
    ("apps", "StatefulSet"): _statefulset,
    ("apps", "ReplicaSet"): _replicaset,
    ("apps", "ControllerRevision"): _controller_revision,
    ("apps", "DaemonSet"): _daemonset,
    ("policy", "PodDisruptionBudget"): _pdb,
    (RBAC_GROUP, "Role"): _role,
    (RBAC_GROUP, "ClusterRole"): _cluster_role,
    (RBAC_GROUP, "RoleBinding"): _role_binding,
    (RBAC_GROUP, "ClusterRoleBinding"): _cluster_role_binding,
    ("scheduling.k8s.io", "PriorityClass"): _priority_class,
    ("", "Pod"): _pod,
    ("", "Service"): _service,
    ("", "ConfigMap"): _configmap,
    ("", "Secret"): _secret,
    ("", "Event"): _core_event,
    ("", "Endpoints"): _endpoints,
    ("events.k8s.io", "Event"): _events_event,
    ("coordination.k8s.io", "Lease"): _lease,
    ("discovery.k8s.io", "EndpointSlice"): _endpointslice,
}


def validate_builtin(group: str, kind: str, obj: Obj, old: Obj | None) -> list[FieldCause]:
    """The kind's own create (`old is None`) or update rules; metadata is `validate_metadata`'s."""
    validator = _VALIDATORS.get((group, kind))
    return validator(obj, old) if validator else []


# ---------------------------------------------------------------------------------------------
# unknown fields of built-in kinds (fieldValidation=Strict/Warn)


def unknown_fields(group: str, kind: str, obj: Obj) -> list[str]:
    """The paths (`spec.foo`) of the fields the kind's schema does not declare.

    The caller words them as the apiserver does: `unknown field "spec.foo"`.
    """
    name = definition_name(group, kind)
    if name is None:
        return []
    found: list[str] = []
    _unknown(obj, builtin_schemas()[name], "", found)
    return found


def _unknown(value: Any, schema: Schema | None, path: str, found: list[str]) -> None:
    node = resolve(schema)
    if node is None or node.get("x-kubernetes-preserve-unknown-fields"):
        return
    if isinstance(value, dict):
        props = node.get("properties")
        extra = node.get("additionalProperties")
        for key, sub in value.items():
            if isinstance(props, dict):
                if key not in props:
                    found.append(_join(path, key))
                    continue
                _unknown(sub, props[key], _join(path, key), found)
            elif isinstance(extra, dict):
                _unknown(sub, extra, _join(path, key), found)
    elif isinstance(value, list):
        for i, sub in enumerate(value):
            _unknown(sub, items(node), f"{path}[{i}]", found)


# ---------------------------------------------------------------------------------------------
# CRD definitions


def validate_crd(crd: Obj) -> list[FieldCause]:
    """CustomResourceDefinition rules: names, scope, versions (one storage), structural schemas."""
    spec = crd.get("spec")
    if not isinstance(spec, dict):
        return [required("spec")]
    causes: Causes = []
    group = str(spec.get("group") or "")
    raw_names = spec.get("names")
    names: Obj = raw_names if isinstance(raw_names, dict) else {}
    plural = str(names.get("plural") or "")
    if _get(crd, "metadata", "name") != f"{plural}.{group}":
        causes.append(
            invalid(
                "metadata.name", _get(crd, "metadata", "name"), 'must be spec.names.plural+"."+spec.group'
            )
        )
    if not group:
        causes.append(required("spec.group"))
    elif "." not in group:
        causes.append(invalid("spec.group", group, "should be a domain with at least one dot"))
    else:
        causes += _each("spec.group", group, dns1123_subdomain(group))
    causes += _crd_names(names)
    scope = spec.get("scope")
    if scope not in ("Cluster", "Namespaced"):
        causes.append(
            required("spec.scope")
            if not scope
            else not_supported("spec.scope", scope, ("Cluster", "Namespaced"))
        )
    causes += _crd_versions(spec.get("versions"))
    return causes


def _crd_names(names: Obj) -> Causes:
    causes: Causes = []
    for key in ("plural", "singular"):
        value = names.get(key)
        if not value:
            causes.append(required(f"spec.names.{key}"))
        else:
            errs = dns1035_label(str(value))
            if errs:
                causes.append(invalid(f"spec.names.{key}", value, ",".join(errs)))
    for key in ("kind", "listKind"):
        value = names.get(key)
        if not value:
            causes.append(required(f"spec.names.{key}"))
        elif dns1035_label(str(value).lower()):
            causes.append(
                invalid(
                    f"spec.names.{key}",
                    value,
                    "may have mixed case, but should otherwise match: [a-z]([-a-z0-9]*[a-z0-9])?",
                )
            )
    return causes


def _crd_versions(versions: Any) -> Causes:
    if not isinstance(versions, list) or not versions:
        return [
            invalid(
                "spec.versions", versions or [], "must have exactly one version marked as storage version"
            )
        ]
    causes: Causes = []
    seen: set[str] = set()
    for i, version in enumerate(versions):
        path = f"spec.versions[{i}]"
        name = str(_get(version, "name") or "")
        if name in seen:
            causes.append(duplicate(f"{path}.name", name))
        seen.add(name)
        causes += _each(f"{path}.name", name, dns1035_label(name))
        schema = _get(version, "schema", "openAPIV3Schema")
        if not isinstance(schema, dict):
            causes.append(required(f"{path}.schema.openAPIV3Schema", "schemas are required"))
        else:
            causes += structural_errors(schema, f"{path}.schema.openAPIV3Schema")
    storage = [v for v in versions if _get(v, "storage") is True]
    if len(storage) != 1:
        causes.append(
            invalid(
                "spec.versions",
                [_get(v, "name") for v in versions],
                "must have exactly one version marked as storage version",
            )
        )
    return causes


def structural_errors(schema: Schema, path: str) -> list[FieldCause]:
    """Structural schema rules that matter here: typed nodes, object root, compilable CEL rules."""
    causes: Causes = []
    root_type = schema.get("type")
    if root_type != "object":
        causes.append(invalid(f"{path}.type", root_type or "", "must be object at the root"))
    _structural(schema, path, causes, root=True)
    return causes


def _structural(schema: Schema, path: str, causes: Causes, *, root: bool = False) -> None:
    free = schema.get("x-kubernetes-preserve-unknown-fields") or schema.get("x-kubernetes-int-or-string")
    if not schema.get("type") and not free and not root:
        causes.append(required(f"{path}.type", "must not be empty for specified object fields"))
    for i, rule in enumerate(schema.get("x-kubernetes-validations") or []):
        expr = _get(rule, "rule")
        try:
            _program(str(expr))
        except CELParseError as err:
            causes.append(
                invalid(
                    f"{path}.x-kubernetes-validations[{i}].rule",
                    expr,
                    f"compilation failed: {_first_line(err)}",
                )
            )
    for key, sub in (schema.get("properties") or {}).items():
        if isinstance(sub, dict):
            _structural(sub, f"{path}.properties[{key}]", causes)
    for key in ("items", "additionalProperties"):
        sub = schema.get(key)
        if isinstance(sub, dict):
            _structural(sub, f"{path}.{key}", causes)


def _first_line(err: Exception) -> str:
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__


# ---------------------------------------------------------------------------------------------
# CEL (x-kubernetes-validations)


def _cel_functions() -> dict[str, Callable[..., Any]]:
    """The Kubernetes CEL string/list library functions cel-python lacks."""
    s = celtypes.StringType
    return {
        "lowerAscii": lambda v: s(str(v).lower()),
        "upperAscii": lambda v: s(str(v).upper()),
        "trim": lambda v: s(str(v).strip()),
        "split": lambda v, sep: celtypes.ListType([s(p) for p in str(v).split(str(sep))]),
        "join": lambda v, sep="": s(str(sep).join(str(x) for x in v)),
        "replace": lambda v, old, new: s(str(v).replace(str(old), str(new))),
        "indexOf": lambda v, sub: celtypes.IntType(str(v).find(str(sub))),
        "lastIndexOf": lambda v, sub: celtypes.IntType(str(v).rfind(str(sub))),
    }


_ENV = celpy.Environment()
_FUNCTIONS = _cel_functions()


@functools.lru_cache(maxsize=4096)
def _program(expr: str) -> Any:
    """A compiled CEL program, shared by every schema that uses the same expression."""
    return _ENV.program(_ENV.compile(expr), functions=_FUNCTIONS)


_OLD_SELF = re.compile(r"\boldSelf\b")


@dataclass(frozen=True)
class _Rule:
    rule: str
    message: str
    message_expression: str
    reason: str
    field_path: str
    transition: bool

    @staticmethod
    def of(raw: Obj) -> _Rule:
        rule = str(raw.get("rule", ""))
        return _Rule(
            rule=rule,
            message=str(raw.get("message") or f"failed rule: {rule}"),
            message_expression=str(raw.get("messageExpression") or ""),
            reason=str(raw.get("reason") or "FieldValueInvalid"),
            field_path=str(raw.get("fieldPath") or ""),
            transition=bool(_OLD_SELF.search(rule)),
        )

    def check(self, activation: dict[str, Any], path: str, type_name: str) -> FieldCause | None:
        """None when the rule holds; `activation` has `self` (and `oldSelf` for transition rules)."""
        where = _join(path, self.field_path.lstrip(".")) if self.field_path else path
        try:
            result = _program(self.rule).evaluate(activation)
        except CELEvalError as err:
            return invalid(where, type_name, f"rule evaluation error: {err.args[0] if err.args else err}")
        if isinstance(result, celtypes.BoolType) and bool(result):
            return None
        return self._cause(where, type_name, self._message(activation))

    def _message(self, activation: dict[str, Any]) -> str:
        if self.message_expression:
            try:
                text = _program(self.message_expression).evaluate(activation)
            except CELEvalError:
                return self.message
            if isinstance(text, str) and text.strip():
                return str(text)
        return self.message

    def _cause(self, path: str, type_name: str, message: str) -> FieldCause:
        if self.reason == "FieldValueForbidden":
            return forbidden(path, message)
        if self.reason == "FieldValueRequired":
            return required(path, message)
        if self.reason == "FieldValueDuplicate":
            return FieldCause("FieldValueDuplicate", path, f"Duplicate value: {render(type_name)}: {message}")
        return invalid(path, type_name, message)


# ---------------------------------------------------------------------------------------------
# compiled structural schema

_TYPE_NAMES = {bool: "boolean", str: "string", dict: "object", list: "array", type(None): "null"}


def json_type(value: Any) -> str:
    """The JSON type name of a decoded value; integral floats count as integers, like Go's decoder."""
    if isinstance(value, bool | str | dict | list) or value is None:
        return _TYPE_NAMES[type(value)]
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
        return "integer"
    return "number"


def _hostname(value: str) -> None:
    if dns1123_subdomain(value):
        raise ValueError(value)


def _valid_format(fmt: str, value: str) -> bool:
    """The formats the apiserver checks for CRDs; unknown formats pass."""
    checks: dict[str, Callable[[str], object]] = {
        "date-time": lambda v: datetime.fromisoformat(v.replace("Z", "+00:00")),
        "date": lambda v: datetime.strptime(v, "%Y-%m-%d"),
        "uuid": uuid.UUID,
        "ipv4": ipaddress.IPv4Address,
        "ipv6": ipaddress.IPv6Address,
        "cidr": lambda v: ipaddress.ip_network(v, strict=False),
        "byte": lambda v: base64.b64decode(v, validate=True),
        "hostname": _hostname,
    }
    check = checks.get(fmt)
    if check is None:
        return True
    try:
        check(value)
    except (ValueError, TypeError):
        return False
    return True


@dataclass
class _Node:
    """One compiled schema node; children are compiled on construction."""

    raw: Schema
    type: str
    nullable: bool
    preserve: bool
    embedded: bool
    int_or_string: bool
    properties: dict[str, _Node] = field(default_factory=dict)
    additional: _Node | None = None
    items: _Node | None = None
    required: tuple[str, ...] = ()
    enum: tuple[Any, ...] | None = None
    pattern: re.Pattern[str] | None = None
    list_type: str = ""
    map_keys: tuple[str, ...] = ()
    rules: tuple[_Rule, ...] = ()
    defaults: dict[str, Any] = field(default_factory=dict)
    combinators: dict[str, list[_Node]] = field(default_factory=dict)

    @staticmethod
    def build(raw: Schema) -> _Node:
        node = _Node(
            raw=raw,
            type=str(raw.get("type") or ""),
            nullable=bool(raw.get("nullable")),
            preserve=bool(raw.get("x-kubernetes-preserve-unknown-fields")),
            embedded=bool(raw.get("x-kubernetes-embedded-resource")),
            int_or_string=bool(raw.get("x-kubernetes-int-or-string")),
            required=tuple(raw.get("required") or ()),
            enum=tuple(raw["enum"]) if isinstance(raw.get("enum"), list) else None,
            pattern=re.compile(raw["pattern"]) if isinstance(raw.get("pattern"), str) else None,
            list_type=str(raw.get("x-kubernetes-list-type") or ""),
            map_keys=tuple(raw.get("x-kubernetes-list-map-keys") or ()),
            rules=tuple(
                _Rule.of(r) for r in raw.get("x-kubernetes-validations") or () if isinstance(r, dict)
            ),
        )
        for key, sub in (raw.get("properties") or {}).items():
            node.properties[key] = _Node.build(sub)
            if "default" in sub:
                node.defaults[key] = sub["default"]
        if isinstance(raw.get("additionalProperties"), dict):
            node.additional = _Node.build(raw["additionalProperties"])
        if isinstance(raw.get("items"), dict):
            node.items = _Node.build(raw["items"])
        for key in ("allOf", "anyOf", "oneOf"):
            if isinstance(raw.get(key), list):
                node.combinators[key] = [_Node.build(s) for s in raw[key]]
        if isinstance(raw.get("not"), dict):
            node.combinators["not"] = [_Node.build(raw["not"])]
        return node

    def child(self, key: str) -> _Node | None:
        return self.properties.get(key) or self.additional


_ROOT_KEYS = ("apiVersion", "kind", "metadata")
_OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"


class CrdSchema:
    """A CRD version's `openAPIV3Schema`, compiled once: prune, default and validate objects."""

    def __init__(self, openapi_v3_schema: Schema) -> None:
        self.source = openapi_v3_schema  # published by /openapi and hashed into its URLs
        self.root = _Node.build(openapi_v3_schema)

    # -- pruning -------------------------------------------------------------------------------

    def prune(self, obj: Obj) -> list[str]:
        """Drop fields the schema does not declare (in place); returns their paths."""
        removed: list[str] = []
        _prune_object(obj, self.root, "", removed, root=True)
        return removed

    # -- defaulting ----------------------------------------------------------------------------

    def default(self, obj: Obj) -> None:
        """Apply schema `default`s top-down, as the apiserver does on every read and write."""
        _default(obj, self.root)

    # -- validation ----------------------------------------------------------------------------

    def validate(self, obj: Obj, old: Obj | None = None) -> list[FieldCause]:
        """OpenAPI v3 value validation plus x-kubernetes-validations; `old` enables transition rules."""
        causes: Causes = []
        for key, sub in self.root.properties.items():
            if key in _ROOT_KEYS or key not in obj:
                continue
            old_sub = old.get(key) if isinstance(old, dict) else None
            _validate(obj[key], sub, key, causes, old=old_sub, has_old=isinstance(old, dict) and key in old)
        for key in self.root.required:
            if key not in obj:
                causes.append(required(key))
        cel_self = {k: v for k, v in obj.items() if k != "metadata"}
        cel_self["metadata"] = {
            k: v for k, v in (obj.get("metadata") or {}).items() if k in ("name", "generateName")
        }
        old_self = None
        if old is not None:
            old_self = {k: v for k, v in old.items() if k != "metadata"}
            old_self["metadata"] = {
                k: v for k, v in (old.get("metadata") or {}).items() if k in ("name", "generateName")
            }
        _run_rules(
            self.root.rules,
            cel_self,
            causes,
            old=old_self,
            has_old=old is not None,
            path="",
            type_name="object",
        )
        return causes


def _object_meta_keys() -> frozenset[str]:
    return frozenset(builtin_schemas()[_OBJECT_META]["properties"])


def _prune_meta(meta: Any, path: str, removed: list[str]) -> None:
    if isinstance(meta, dict):
        known = _object_meta_keys()
        for key in [k for k in meta if k not in known]:
            del meta[key]
            removed.append(_join(path, key))


def _prune_object(value: Any, node: _Node, path: str, removed: list[str], *, root: bool = False) -> None:
    if isinstance(value, list):
        for i, sub in enumerate(value):
            if node.items is not None:
                _prune_object(sub, node.items, f"{path}[{i}]", removed)
        return
    if not isinstance(value, dict):
        return
    keep_meta = root or node.embedded
    for key in list(value):
        if keep_meta and key in _ROOT_KEYS:
            if key == "metadata":
                _prune_meta(value[key], _join(path, key), removed)
            continue
        sub = node.child(key)
        if sub is None:
            if not node.preserve:
                del value[key]
                removed.append(_join(path, key))
            continue
        _prune_object(value[key], sub, _join(path, key), removed)


def _default(value: Any, node: _Node) -> None:
    if isinstance(value, list):
        if node.items is not None:
            for sub in value:
                _default(sub, node.items)
        return
    if not isinstance(value, dict):
        return
    for key, default in node.defaults.items():
        prop = node.properties[key]
        if key not in value or (value[key] is None and not prop.nullable):
            value[key] = copy.deepcopy(default)
    for key in [k for k, v in value.items() if v is None]:
        prop_or_none = node.child(key)
        if prop_or_none is not None and not prop_or_none.nullable:
            del value[key]  # PruneNonNullableNullsWithoutDefaults
    for key, sub in value.items():
        child_node = node.child(key)
        if child_node is not None:
            _default(sub, child_node)


def _body(path: str, detail: str) -> str:
    return f"{path} in body {detail}"


def _type_ok(value: Any, node: _Node) -> bool:
    actual = json_type(value)
    if node.int_or_string:
        return actual in ("integer", "string")
    if not node.type:
        return True
    return actual == node.type or (node.type == "number" and actual == "integer")


def _validate(
    value: Any, node: _Node, path: str, causes: Causes, *, old: Any = None, has_old: bool = False
) -> None:
    if value is None and node.nullable:
        return
    if not _type_ok(value, node):
        actual = json_type(value)
        wanted = "integer-or-string" if node.int_or_string else node.type
        causes.append(
            type_invalid(path, actual, _body(path, f"must be of type {wanted}: {json.dumps(actual)}"))
        )
        return
    if has_old and value == old and not any(rule.transition for rule in node.rules):
        return  # validation ratcheting: an unchanged subtree keeps passing
    _scalar_checks(value, node, path, causes)
    _combinators(value, node, path, causes)
    if isinstance(value, dict):
        _validate_object(value, node, path, causes, old if isinstance(old, dict) else None)
    elif isinstance(value, list):
        _validate_array(value, node, path, causes, old if isinstance(old, list) else None)
    _run_rules(
        node.rules,
        value,
        causes,
        old=old,
        has_old=has_old,
        path=path,
        type_name=node.type or json_type(value),
    )


def _run_rules(
    rules: tuple[_Rule, ...],
    value: Any,
    causes: Causes,
    *,
    old: Any,
    has_old: bool,
    path: str,
    type_name: str,
) -> None:
    """Evaluate a node's CEL rules, converting `self`/`oldSelf` once; transition rules need an old value."""
    active = [r for r in rules if has_old or not r.transition]
    if not active:
        return
    activation = {"self": json_to_cel(value)}
    if has_old and any(r.transition for r in active):
        activation["oldSelf"] = json_to_cel(old)
    for rule in active:
        cause = rule.check(activation, path, type_name)
        if cause is not None:
            causes.append(cause)


def _scalar_checks(value: Any, node: _Node, path: str, causes: Causes) -> None:
    raw = node.raw
    if node.enum is not None and value not in node.enum:
        causes.append(not_supported(path, value, node.enum))
    if isinstance(value, str):
        _string_checks(value, node, path, causes)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        _number_checks(value, raw, path, causes)


def _string_checks(value: str, node: _Node, path: str, causes: Causes) -> None:
    raw = node.raw
    if isinstance(raw.get("maxLength"), int) and len(value) > raw["maxLength"]:
        causes.append(too_long(path, raw["maxLength"]))
    if isinstance(raw.get("minLength"), int) and len(value) < raw["minLength"]:
        causes.append(invalid(path, value, _body(path, f"should be at least {raw['minLength']} chars long")))
    if node.pattern is not None and not node.pattern.search(value):
        causes.append(invalid(path, value, _body(path, f"should match '{node.pattern.pattern}'")))
    fmt = raw.get("format")
    if isinstance(fmt, str) and not _valid_format(fmt, value):
        causes.append(invalid(path, value, _body(path, f"must be of type {fmt}: {json.dumps(value)}")))


def _number_checks(value: float, raw: Schema, path: str, causes: Causes) -> None:
    minimum, maximum = raw.get("minimum"), raw.get("maximum")
    if minimum is not None:
        if raw.get("exclusiveMinimum") and value <= minimum:
            causes.append(invalid(path, value, _body(path, f"should be greater than {render(minimum)}")))
        elif value < minimum:
            causes.append(
                invalid(path, value, _body(path, f"should be greater than or equal to {render(minimum)}"))
            )
    if maximum is not None:
        if raw.get("exclusiveMaximum") and value >= maximum:
            causes.append(invalid(path, value, _body(path, f"should be less than {render(maximum)}")))
        elif value > maximum:
            causes.append(
                invalid(path, value, _body(path, f"should be less than or equal to {render(maximum)}"))
            )
    multiple = raw.get("multipleOf")
    if multiple and (value / multiple) != int(value / multiple):
        causes.append(invalid(path, value, _body(path, f"should be a multiple of {render(multiple)}")))


def _combinators(value: Any, node: _Node, path: str, causes: Causes) -> None:
    for sub in node.combinators.get("allOf", ()):
        _validate(value, sub, path, causes)
    any_of = node.combinators.get("anyOf")
    if any_of and not any(_passes(value, sub, path) for sub in any_of):
        causes.append(invalid(path, value, _body(path, "must validate at least one schema (anyOf)")))
    one_of = node.combinators.get("oneOf")
    if one_of and sum(_passes(value, sub, path) for sub in one_of) != 1:
        causes.append(invalid(path, value, _body(path, "must validate one and only one schema (oneOf)")))
    for sub in node.combinators.get("not", ()):
        if _passes(value, sub, path):
            causes.append(invalid(path, value, _body(path, "must not validate the schema (not)")))


def _passes(value: Any, node: _Node, path: str) -> bool:
    scratch: Causes = []
    _validate(value, node, path, scratch)
    return not scratch


def _validate_object(value: Obj, node: _Node, path: str, causes: Causes, old: Obj | None) -> None:
    raw = node.raw
    for key in node.required:
        if key not in value:
            causes.append(required(_join(path, key)))
    if isinstance(raw.get("maxProperties"), int) and len(value) > raw["maxProperties"]:
        causes.append(too_many(path, len(value), raw["maxProperties"]))
    if isinstance(raw.get("minProperties"), int) and len(value) < raw["minProperties"]:
        causes.append(
            invalid(path, len(value), _body(path, f"should have at least {raw['minProperties']} properties"))
        )
    if node.embedded:
        for key in ("apiVersion", "kind"):
            if not value.get(key):
                causes.append(required(_join(path, key), "must not be empty"))
    for key, sub in value.items():
        child_node = node.child(key)
        if child_node is None:
            continue
        has_old = old is not None and key in old
        _validate(
            sub, child_node, _join(path, key), causes, old=old.get(key) if old else None, has_old=has_old
        )


def _map_key(item: Any, keys: tuple[str, ...]) -> tuple[Any, ...]:
    return tuple(json.dumps(item.get(k), sort_keys=True) if isinstance(item, dict) else None for k in keys)


def _validate_array(value: list[Any], node: _Node, path: str, causes: Causes, old: list[Any] | None) -> None:
    raw = node.raw
    if isinstance(raw.get("maxItems"), int) and len(value) > raw["maxItems"]:
        causes.append(too_many(path, len(value), raw["maxItems"]))
    if isinstance(raw.get("minItems"), int) and len(value) < raw["minItems"]:
        causes.append(invalid(path, len(value), _body(path, f"should have at least {raw['minItems']} items")))
    _uniqueness(value, node, path, causes)
    old_by_key: dict[tuple[Any, ...], Any] = {}
    if old is not None and node.list_type == "map":
        old_by_key = {_map_key(o, node.map_keys): o for o in old}
    elif old is not None and node.list_type == "set":
        old_by_key = {(json.dumps(o, sort_keys=True),): o for o in old}
    for i, item in enumerate(value):
        if node.items is None:
            continue
        if node.list_type == "map":
            key = _map_key(item, node.map_keys)
        else:
            key = (json.dumps(item, sort_keys=True),)
        old_item = old_by_key.get(key)
        _validate(item, node.items, f"{path}[{i}]", causes, old=old_item, has_old=key in old_by_key)


def _uniqueness(value: list[Any], node: _Node, path: str, causes: Causes) -> None:
    seen: set[Any] = set()
    unique = node.list_type in ("set", "map") or node.raw.get("uniqueItems")
    if not unique:
        return
    for i, item in enumerate(value):
        if node.list_type == "map":
            key: Any = _map_key(item, node.map_keys)
            shown: Any = {k: item.get(k) for k in node.map_keys} if isinstance(item, dict) else item
        else:
            key, shown = json.dumps(item, sort_keys=True), item
        if key in seen:
            if node.list_type:
                causes.append(duplicate(f"{path}[{i}]", shown))
            else:
                causes.append(invalid(path, value, _body(path, "shouldn't contain duplicates")))
                return
        seen.add(key)
