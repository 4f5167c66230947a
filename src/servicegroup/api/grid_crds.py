"""CustomResourceDefinitions of DeploymentGrid, StatefulSetGrid and ServiceGrid (`superedge.io/v1`).

Names, kinds and JSON field names are SuperEdge's, so existing manifests apply unchanged. What we add
(see docs/superedge-compat.md): a status subresource (SuperEdge's v1 manifests lack it, so its status
writes fail), printer columns, a typed embedded Deployment/StatefulSet/Service spec, and validation
that turns the mistakes SuperEdge only discovers at sync time (bad label key, unknown template name,
over-long child names) into a 422 at apply time; and, additive to SuperEdge's schema,
`spec.overrides` (per-unit rules, docs/site-config.md) and `status.rendered`. The pod template keeps
`x-kubernetes-preserve-unknown-fields` below its typed top level: a full PodSpec schema would be
thousands of lines and the child's own API validation checks it anyway.
"""

from __future__ import annotations

import json
from typing import Any, Final

from servicegroup.api.labels import DEFAULT_TEMPLATE_NAME, GRID_GROUP, GRID_VERSION

Schema = dict[str, Any]

CATEGORIES: Final = ["servicegroup"]

# Child name limits (also enforced by the controller, which cannot rely on the CRD being ours).
SUBDOMAIN_MAX: Final = 253  # Deployment / StatefulSet names: DNS-1123 subdomain
LABEL_MAX: Final = 63  # Service names, pod hostnames, label values: DNS-1123 label
# A StatefulSet's pods carry `controller-revision-hash: <name>-<hash of up to 10 chars>`, a label
# value (<= 63), so the apiserver accepts longer names whose pods can never be created.
STATEFULSET_NAME_MAX: Final = LABEL_MAX - 11
SERVICE_SUFFIX: Final = "-svc"
_SG_NAME_MAX: Final = LABEL_MAX - len(SERVICE_SUFFIX)

# A qualified label key: optional DNS-subdomain prefix and "/", then a name of <= 63 characters.
LABEL_KEY_PATTERN: Final = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
LABEL_KEY_MAX: Final = SUBDOMAIN_MAX + 1 + LABEL_MAX
# Bounds that keep the CEL rules' estimated cost within a real API server's budget.
MAX_TEMPLATES: Final = 10_000
MAX_POOL: Final = 1_000
MAX_RULES: Final = 200
MAX_RULE_UNITS: Final = 10_000

_STR: Final[Schema] = {"type": "string"}
_BOOL: Final[Schema] = {"type": "boolean"}
_INT32: Final[Schema] = {"type": "integer", "format": "int32"}
_INT64: Final[Schema] = {"type": "integer", "format": "int64"}
_INT_OR_STRING: Final[Schema] = {"x-kubernetes-int-or-string": True}
_STR_MAP: Final[Schema] = {"type": "object", "additionalProperties": {"type": "string"}}
_STR_LIST: Final[Schema] = {"type": "array", "items": {"type": "string"}}
_OPEN_OBJECT: Final[Schema] = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
_ANY: Final[Schema] = {"x-kubernetes-preserve-unknown-fields": True}
_QUANTITIES: Final[Schema] = {"type": "object", "additionalProperties": _INT_OR_STRING}


_CLUSTERS: Schema = {
    "type": "object",
    "additionalProperties": {"type": "string"},
    "description": "Fed grids: the member cluster that holds each unit (written by the fed controller).",
}


def object_schema(
    properties: dict[str, Schema], required: list[str] | None = None, *, extra: Schema | None = None
) -> Schema:
    schema: Schema = {"type": "object", "properties": properties, **(extra or {})}
    if required:
        schema["required"] = required
    return schema


def _enum(*values: str) -> Schema:
    return {"type": "string", "enum": list(values)}


def _list_of(items: Schema) -> Schema:
    return {"type": "array", "items": items}


def label_selector() -> Schema:
    expression = object_schema(
        {"key": _STR, "operator": _enum("In", "NotIn", "Exists", "DoesNotExist"), "values": _STR_LIST},
        required=["key", "operator"],
    )
    return object_schema(
        {"matchLabels": _STR_MAP, "matchExpressions": _list_of(expression)},
        extra={"x-kubernetes-map-type": "atomic"},
    )


def _pod_template() -> Schema:
    """PodTemplateSpec: typed where the controller writes (labels, nodeSelector), open below."""
    metadata = object_schema(
        {"labels": _STR_MAP, "annotations": _STR_MAP},
        extra={"x-kubernetes-preserve-unknown-fields": True},
    )
    container = object_schema(
        {"name": _STR, "image": _STR},
        required=["name"],
        extra={"x-kubernetes-preserve-unknown-fields": True},
    )
    spec = object_schema(
        {"containers": _list_of(container), "nodeSelector": _STR_MAP},
        required=["containers"],
        extra={"x-kubernetes-preserve-unknown-fields": True},
    )
    return object_schema({"metadata": metadata, "spec": spec})


def deployment_spec() -> Schema:
    """apps/v1 DeploymentSpec (SuperEdge requires selector and template)."""
    rolling = object_schema({"maxUnavailable": _INT_OR_STRING, "maxSurge": _INT_OR_STRING})
    return object_schema(
        {
            "replicas": {**_INT32, "minimum": 0},
            "selector": label_selector(),
            "template": _pod_template(),
            "strategy": object_schema({"type": _enum("Recreate", "RollingUpdate"), "rollingUpdate": rolling}),
            "minReadySeconds": {**_INT32, "minimum": 0},
            "revisionHistoryLimit": {**_INT32, "minimum": 0},
            "paused": _BOOL,
            "progressDeadlineSeconds": {**_INT32, "minimum": 0},
        },
        required=["selector", "template"],
    )


def statefulset_spec() -> Schema:
    """apps/v1 StatefulSetSpec (`serviceName` optional, as in Kubernetes >= 1.30)."""
    claim = object_schema(
        {"metadata": _OPEN_OBJECT, "spec": _OPEN_OBJECT},
        extra={"x-kubernetes-preserve-unknown-fields": True},
    )
    rolling = object_schema({"partition": {**_INT32, "minimum": 0}, "maxUnavailable": _INT_OR_STRING})
    retention = object_schema(
        {"whenDeleted": _enum("Retain", "Delete"), "whenScaled": _enum("Retain", "Delete")}
    )
    return object_schema(
        {
            "replicas": {**_INT32, "minimum": 0},
            "selector": label_selector(),
            "template": _pod_template(),
            "volumeClaimTemplates": _list_of(claim),
            "serviceName": _STR,
            "podManagementPolicy": _enum("OrderedReady", "Parallel"),
            "updateStrategy": object_schema(
                {"type": _enum("RollingUpdate", "OnDelete"), "rollingUpdate": rolling}
            ),
            "revisionHistoryLimit": {**_INT32, "minimum": 0},
            "minReadySeconds": {**_INT32, "minimum": 0},
            "persistentVolumeClaimRetentionPolicy": retention,
            "ordinals": object_schema({"start": {**_INT32, "minimum": 0}}),
        },
        required=["selector", "template"],
    )


def service_spec() -> Schema:
    """core/v1 ServiceSpec, every field typed."""
    port = object_schema(
        {
            "name": _STR,
            "protocol": _enum("TCP", "UDP", "SCTP"),
            "appProtocol": _STR,
            "port": {**_INT32, "minimum": 1, "maximum": 65535},
            "targetPort": _INT_OR_STRING,
            "nodePort": _INT32,
        },
        required=["port"],
    )
    affinity = object_schema({"clientIP": object_schema({"timeoutSeconds": _INT32})})
    return object_schema(
        {
            "ports": _list_of(port),
            "selector": {**_STR_MAP, "x-kubernetes-map-type": "atomic"},
            "clusterIP": _STR,
            "clusterIPs": _STR_LIST,
            "type": _enum("ClusterIP", "NodePort", "LoadBalancer", "ExternalName"),
            "externalIPs": _STR_LIST,
            "sessionAffinity": _enum("ClientIP", "None"),
            "loadBalancerIP": _STR,
            "loadBalancerSourceRanges": _STR_LIST,
            "externalName": _STR,
            "externalTrafficPolicy": _enum("Cluster", "Local"),
            "healthCheckNodePort": _INT32,
            "publishNotReadyAddresses": _BOOL,
            "sessionAffinityConfig": affinity,
            "ipFamilies": _list_of(_enum("IPv4", "IPv6")),
            "ipFamilyPolicy": _enum("SingleStack", "PreferDualStack", "RequireDualStack"),
            "allocateLoadBalancerNodePorts": _BOOL,
            "loadBalancerClass": _STR,
            "internalTrafficPolicy": _enum("Cluster", "Local"),
            "trafficDistribution": _STR,
        }
    )


def conditions_schema() -> Schema:
    """metav1.Condition list, a map keyed by type (as `kubectl wait --for=condition=` expects)."""
    condition = object_schema(
        {
            "type": _STR,
            "status": _enum("True", "False", "Unknown"),
            "reason": _STR,
            "message": _STR,
            "observedGeneration": _INT64,
            "lastTransitionTime": {"type": "string", "format": "date-time"},
        },
        required=["type", "status"],
    )
    return {**_list_of(condition), "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]}


def _workload_condition() -> Schema:
    """apps/v1 Deployment/StatefulSet condition (its own shape, with lastUpdateTime)."""
    return object_schema(
        {
            "type": _STR,
            "status": _STR,
            "reason": _STR,
            "message": _STR,
            "lastUpdateTime": _STR,
            "lastTransitionTime": _STR,
        },
        required=["type", "status"],
    )


def _deployment_state() -> Schema:
    """SuperEdge's FiltDgStatus: replicas, readyReplicas and the Available condition."""
    return object_schema(
        {"replicas": _INT32, "readyReplicas": _INT32, "conditions": _list_of(_workload_condition())}
    )


def _statefulset_state() -> Schema:
    """apps/v1 StatefulSetStatus, complete (SuperEdge copies it verbatim)."""
    return object_schema(
        {
            "observedGeneration": _INT64,
            "replicas": _INT32,
            "readyReplicas": _INT32,
            "currentReplicas": _INT32,
            "updatedReplicas": _INT32,
            "availableReplicas": _INT32,
            "currentRevision": _STR,
            "updateRevision": _STR,
            "collisionCount": _INT32,
            "conditions": _list_of(_workload_condition()),
        }
    )


def _workload_status(state: Schema) -> Schema:
    return object_schema(
        {
            "states": {"type": "object", "additionalProperties": state},
            "observedGeneration": _INT64,
            "units": {**_INT32, "description": "Units (distinct values of gridUniqKey) the grid runs on."},
            "readyUnits": {**_INT32, "description": "Units whose child is up to date and fully ready."},
            "clusters": _CLUSTERS,
            "rendered": _rendered(),
            "conditions": conditions_schema(),
        }
    )


def _service_status() -> Schema:
    return object_schema(
        {"loadBalancer": _OPEN_OBJECT, "observedGeneration": _INT64, "conditions": conditions_schema()}
    )


def grid_key_schema() -> Schema:
    return {
        "type": "string",
        "minLength": 1,
        "maxLength": LABEL_KEY_MAX,
        "pattern": LABEL_KEY_PATTERN,
        "description": "Node label key; every distinct non-empty value is one unit (NodeUnit).",
        "x-kubernetes-validations": [
            {
                "rule": f"!self.contains('/') || self.matches('^[^/]{{1,{SUBDOMAIN_MAX}}}/')",
                "message": f"the prefix of gridUniqKey must be at most {SUBDOMAIN_MAX} characters",
            }
        ],
    }


def unit_selection() -> dict[str, Schema]:
    """The fields a rule selects units with (shared with ConfigMapGrid/SecretGrid rules)."""
    return {
        "name": {"type": "string", "maxLength": LABEL_MAX, "description": "Reported in status and Events."},
        "units": {**_STR_LIST, "maxItems": MAX_RULE_UNITS, "description": "Unit names."},
        "unitPattern": {"type": "string", "minLength": 1, "description": "Glob over unit names (fnmatch)."},
        "unitSelector": {
            **label_selector(),
            "description": "Labels of the unit's NodeUnit (site.superedge.io, named like the unit).",
        },
    }


SELECTION_RULE: Final[Schema] = {
    "rule": "has(self.units) || has(self.unitPattern) || has(self.unitSelector)",
    "message": "a rule selects units: set units, unitPattern or unitSelector",
}


def _json_patch_op() -> Schema:
    return object_schema(
        {
            "op": _enum("add", "remove", "replace", "move", "copy", "test"),
            "path": {"type": "string", "pattern": "^(/.*)?$"},
            "from": {"type": "string", "pattern": "^(/.*)?$"},
            "value": _ANY,
        },
        required=["op", "path"],
        extra={
            "x-kubernetes-validations": [
                {
                    "rule": "!(self.op in ['move', 'copy']) || has(self.from)",
                    "message": "move and copy need from",
                },
                {
                    "rule": "!(self.op in ['add', 'replace', 'test']) || has(self.value)",
                    "message": "add, replace and test need a value",
                },
            ]
        },
    )


def _overrides() -> Schema:
    """`spec.overrides`: ordered per-unit rules (docs/site-config.md)."""
    env = object_schema({"name": _STR, "value": _STR, "valueFrom": _OPEN_OBJECT}, required=["name"])
    container = object_schema(
        {
            "name": _STR,
            "image": {"type": "string", "minLength": 1},
            "env": _list_of(env),
            "resources": object_schema({"limits": _QUANTITIES, "requests": _QUANTITIES}),
        },
        required=["name"],
    )
    rule = object_schema(
        {
            **unit_selection(),
            "replicas": {**_INT32, "minimum": 0},
            "containers": _list_of(container),
            "strategicMergePatch": _OPEN_OBJECT,
            "jsonPatch": {**_list_of(_json_patch_op()), "minItems": 1},
        },
        extra={
            "x-kubernetes-validations": [
                SELECTION_RULE,
                {
                    "rule": "has(self.replicas) || has(self.containers) || has(self.strategicMergePatch)"
                    " || has(self.jsonPatch)",
                    "message": "a rule changes something: set replicas, containers, strategicMergePatch "
                    "or jsonPatch",
                },
            ]
        },
    )
    return {
        **_list_of(rule),
        "maxItems": MAX_RULES,
        "description": "Per-unit rules applied in order after the template choice.",
    }


def _rendered() -> Schema:
    """`status.rendered[unit]`: what the unit's child was built from."""
    entry = object_schema(
        {"template": _STR, "overrides": _STR_LIST, "configHash": _STR, "configs": _STR_LIST}
    )
    return {
        "type": "object",
        "additionalProperties": entry,
        "description": "Per unit: template, override rules and per-unit config version it gets.",
    }


def _names_template(expr: str) -> str:
    """CEL: `expr` is '' or 'default' (meaning spec.template) or a key of templatePool."""
    pool = f"(has(self.templatePool) && {expr} in self.templatePool)"
    return f"({expr} in ['', '{DEFAULT_TEMPLATE_NAME}'] || {pool})"


def _workload_grid_spec(spec: Schema) -> Schema:
    """DeploymentGrid/StatefulSetGrid spec: one template, a canary pool and the per-unit choice."""
    return object_schema(
        {
            "gridUniqKey": grid_key_schema(),
            "template": spec,
            "templatePool": {"type": "object", "additionalProperties": spec, "maxProperties": MAX_POOL},
            "templates": {
                "type": "object",
                "additionalProperties": {"type": "string", "maxLength": SUBDOMAIN_MAX},
                "maxProperties": MAX_TEMPLATES,
                "description": "Unit (label value) -> templatePool entry name ('default' = spec.template).",
            },
            "defaultTemplateName": {
                "type": "string",
                "maxLength": SUBDOMAIN_MAX,
                "default": DEFAULT_TEMPLATE_NAME,
                "description": "Template of units not in `templates` ('default' = spec.template).",
            },
            "autoDeleteUnusedTemplate": {
                "type": "boolean",
                "description": "Remove templatePool entries neither `templates` nor defaultTemplateName use.",
            },
            "overrides": _overrides(),
        },
        required=["gridUniqKey"],
        extra={
            "x-kubernetes-validations": [
                {
                    "rule": "!has(self.templates) || self.templates.all(k, "
                    + _names_template("self.templates[k]")
                    + ")",
                    "message": "every value of templates must name a templatePool entry or 'default'",
                    "fieldPath": ".templates",
                },
                {
                    "rule": "!has(self.defaultTemplateName) || "
                    + _names_template("self.defaultTemplateName"),
                    "message": "defaultTemplateName must name a templatePool entry or 'default'",
                    "fieldPath": ".defaultTemplateName",
                },
            ]
        },
    )


def _service_grid_spec() -> Schema:
    return object_schema(
        {"gridUniqKey": grid_key_schema(), "template": service_spec()}, required=["gridUniqKey"]
    )


def child_name_rules(kind: str, limit: int) -> list[Schema]:
    """Root rules on the grid name: it is the `grid-selector` label value of every child (<= 63),
    and `<grid>-<unit>` must fit `limit` for the shortest unit and for every unit in templates."""
    longest = min(LABEL_MAX, limit - 2)
    rules: list[Schema] = [
        {
            "rule": f"size(self.metadata.name) <= {longest}",
            "message": f"{kind} names are limited to {longest} characters: the name is the value of "
            f"label superedge.io/grid-selector and children are named <grid>-<unit> (at most {limit})",
        }
    ]
    if limit < 2 * LABEL_MAX + 1:  # a long unit value can overflow: check the units named in templates
        rules.append(
            {
                "rule": "!has(self.spec) || !has(self.spec.templates) || self.spec.templates.all(k, "
                f"size(self.metadata.name) + 1 + size(k) <= {limit})",
                "message": f"the child name <grid>-<unit> of a unit in spec.templates exceeds {limit} "
                "characters",
            }
        )
    return rules


def printer_columns(workload: bool) -> list[Schema]:
    key = {"name": "Key", "type": "string", "jsonPath": ".spec.gridUniqKey"}
    age = {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}
    if not workload:
        ready = {
            "name": "Ready",
            "type": "string",
            "jsonPath": '.status.conditions[?(@.type=="Ready")].status',
        }
        return [key, ready, age]
    return [
        key,
        {"name": "Units", "type": "integer", "jsonPath": ".status.units"},
        {"name": "Ready", "type": "integer", "jsonPath": ".status.readyUnits"},
        age,
    ]


def crd_manifest(
    kind: str,
    plural: str,
    short: str,
    *,
    spec: Schema,
    status: Schema,
    rules: list[Schema],
    group: str = GRID_GROUP,
    version: str = GRID_VERSION,
) -> dict[str, Any]:
    """One namespaced CRD with a status subresource, in category `servicegroup`."""
    root = object_schema(
        {
            "apiVersion": _STR,
            "kind": _STR,
            "metadata": {"type": "object"},
            "spec": spec,
            "status": status,
        },
        extra={"x-kubernetes-validations": rules},
    )
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {
            "group": group,
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": kind.lower(),
                "shortNames": [short],
                "categories": list(CATEGORIES),
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": version,
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": root},
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": printer_columns(kind != "ServiceGrid"),
                }
            ],
        },
    }


def crds() -> list[dict[str, Any]]:
    """The three grid CRDs, in apply order (each call returns fresh, independent dicts)."""
    manifests = [
        crd_manifest(
            "DeploymentGrid",
            "deploymentgrids",
            "dg",
            spec=_workload_grid_spec(deployment_spec()),
            status=_workload_status(_deployment_state()),
            rules=child_name_rules("DeploymentGrid", SUBDOMAIN_MAX),
        ),
        crd_manifest(
            "StatefulSetGrid",
            "statefulsetgrids",
            "ssg",
            spec=_workload_grid_spec(statefulset_spec()),
            status=_workload_status(_statefulset_state()),
            rules=child_name_rules("StatefulSetGrid", STATEFULSET_NAME_MAX),
        ),
        crd_manifest(
            "ServiceGrid",
            "servicegrids",
            "sg",
            spec=_service_grid_spec(),
            status=_service_status(),
            rules=[
                {
                    "rule": f"size(self.metadata.name) <= {_SG_NAME_MAX}",
                    "message": f"ServiceGrid names are limited to {_SG_NAME_MAX} characters: the Service "
                    f"<grid>{SERVICE_SUFFIX} must be a DNS label of at most {LABEL_MAX}",
                }
            ],
        ),
    ]
    # The builders share constant sub-schemas; a round trip gives callers objects they may mutate.
    copied: list[dict[str, Any]] = json.loads(json.dumps(manifests))
    return copied
