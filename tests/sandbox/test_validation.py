"""Admission validation: apimachinery's exact messages for names/labels, built-in rules, CRD schemas."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from servicegroup.sandbox.errors import FieldCause
from servicegroup.sandbox.validation import (
    CrdSchema,
    config_key,
    dns1035_label,
    dns1123_label,
    dns1123_subdomain,
    go_label_selector,
    label_value,
    port_name,
    qualified_name,
    unknown_fields,
    validate_builtin,
    validate_crd,
    validate_metadata,
)

SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must "
    "start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start "
    "and "
    "end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
DNS1035_MSG = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic "
    "character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for "
    "validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)
NAME_PART_MSG = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
    "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must "
    "start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used "
    "for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)


def _strs(causes: list[FieldCause]) -> list[str]:
    return [str(c) for c in causes]


# -- string rules ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fn", "value", "expected"),
    [
        (dns1123_subdomain, "a.b-c", []),
        (dns1123_subdomain, "Foo", [SUBDOMAIN_MSG]),
        (dns1123_subdomain, "a" * 254, ["must be no more than 253 characters"]),
        (dns1123_label, "a.b", [LABEL_MSG]),
        (dns1123_label, "1abc", []),
        (dns1123_label, "a" * 64, ["must be no more than 63 characters"]),
        (dns1035_label, "1abc", [DNS1035_MSG]),
        (dns1035_label, "abc-1", []),
        (qualified_name, "example.com/My_Name", []),
        (qualified_name, "-x", [NAME_PART_MSG]),
        (qualified_name, "/x", ["prefix part must be non-empty"]),
        (qualified_name, "a/", ["name part must be non-empty", NAME_PART_MSG]),
        (qualified_name, "Example.com/x", ["prefix part " + SUBDOMAIN_MSG]),
        (qualified_name, "a" * 64, ["name part must be no more than 63 characters"]),
        (label_value, "", []),
        (label_value, "v1.2_x", []),
        (label_value, "-v", [LABEL_VALUE_MSG]),
        (label_value, "a" * 64, ["must be no more than 63 characters"]),
        (config_key, "app.conf", []),
        (config_key, "..x", ["must not start with '..'"]),
        (port_name, "http", []),
        (port_name, "80", ["must contain at least one letter (a-z)"]),
        (port_name, "a--b", ["must not contain consecutive hyphens"]),
    ],
)
def test_string_rules(fn: Any, value: str, expected: list[str]) -> None:
    assert fn(value) == expected


def test_qualified_name_with_two_slashes() -> None:
    assert qualified_name("a/b/c")[0].startswith("a qualified name must consist of alphanumeric")
    assert qualified_name("a/b/c")[0].endswith(
        "with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
    )


# -- metadata ----------------------------------------------------------------------------------


def _meta(kind: str = "ConfigMap", api_version: str = "v1", **meta: Any) -> dict[str, Any]:
    return {"apiVersion": api_version, "kind": kind, "metadata": meta}


@pytest.mark.parametrize(
    ("obj", "namespaced", "expected"),
    [
        (_meta(name="ok.name", namespace="ns"), True, []),
        (_meta(namespace="ns"), True, ["metadata.name: Required value: name or generateName is required"]),
        (_meta(generateName="x-", namespace="ns"), True, []),
        (_meta(name="Bad", namespace="ns"), True, [f'metadata.name: Invalid value: "Bad": {SUBDOMAIN_MSG}']),
        (_meta(name="x"), True, ["metadata.namespace: Required value"]),
        (
            _meta("Node", name="n", namespace="ns"),
            False,
            ["metadata.namespace: Forbidden: not allowed on this type"],
        ),
        (
            _meta("Service", name="1svc", namespace="ns"),  # RelaxedServiceNameValidation (1.37)
            True,
            [],
        ),
        (
            _meta("StatefulSet", "apps/v1", name="db.0", namespace="ns"),
            True,
            [f'metadata.name: Invalid value: "db.0": {LABEL_MSG}'],
        ),
        (
            _meta("Service", name="a.b", namespace="ns"),
            True,
            [f'metadata.name: Invalid value: "a.b": {LABEL_MSG}'],
        ),
        (_meta("Namespace", name="a.b"), False, [f'metadata.name: Invalid value: "a.b": {LABEL_MSG}']),
        (_meta("Deployment", "apps/v1", name="a.b", namespace="n"), True, []),
        (
            _meta(name="x", namespace="n", labels={"ok": "-bad"}),
            True,
            [f'metadata.labels: Invalid value: "-bad": {LABEL_VALUE_MSG}'],
        ),
        (
            _meta(name="x", namespace="n", labels={"-k": "v"}),
            True,
            [f'metadata.labels: Invalid value: "-k": {NAME_PART_MSG}'],
        ),
        (
            _meta(name="x", namespace="n", annotations={"-k": "v"}),
            True,
            [f'metadata.annotations: Invalid value: "-k": {NAME_PART_MSG}'],
        ),
        (
            _meta(name="x", namespace="n", annotations={"big": "x" * (256 * 1024)}),
            True,
            ["metadata.annotations: Too long: may not be more than 262144 bytes"],
        ),
    ],
)
def test_validate_metadata(obj: dict[str, Any], namespaced: bool, expected: list[str]) -> None:
    assert _strs(validate_metadata(obj, namespaced=namespaced)) == expected


def test_annotation_keys_are_checked_case_insensitively() -> None:
    assert (
        validate_metadata(_meta(name="x", namespace="n", annotations={"Example.com/K": "v"}), namespaced=True)
        == []
    )


def test_metadata_cause_types() -> None:
    causes = validate_metadata(_meta(name="Bad"), namespaced=True)
    assert [c.type for c in causes] == ["FieldValueInvalid", "FieldValueRequired"]


# -- built-in kinds ----------------------------------------------------------------------------


def _deployment() -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d", "namespace": "n"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "a"}},
            "template": {
                "metadata": {"labels": {"app": "a"}},
                "spec": {"containers": [{"name": "web", "image": "nginx"}]},
            },
        },
    }


def _with(obj: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    node = out
    keys = path.split(".")
    for key in keys[:-1]:
        node = node[int(key)] if isinstance(node, list) else node[key]
    if value is _DELETE:
        del node[keys[-1]]
    else:
        node[keys[-1]] = value
    return out


_DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        ("spec.selector", _DELETE, ["spec.selector: Required value"]),
        (
            "spec.selector",
            {},
            [
                "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), "
                "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: "
                "empty selector is invalid for deployment"
            ],
        ),
        (
            "spec.selector.matchLabels",
            {"app": "b"},
            [
                'spec.template.metadata.labels: Invalid value: map[string]string{"app":"a"}: `selector` does '
                "not match template `labels`"
            ],
        ),
        ("spec.template.spec.containers", [], ["spec.template.spec.containers: Required value"]),
        (
            "spec.template.spec.containers.0.name",
            "",
            ["spec.template.spec.containers[0].name: Required value"],
        ),
        (
            "spec.template.spec.containers.0.image",
            "",
            ["spec.template.spec.containers[0].image: Required value"],
        ),
        (
            "spec.template.spec.containers.0.name",
            "Web",
            [f'spec.template.spec.containers[0].name: Invalid value: "Web": {LABEL_MSG}'],
        ),
        (
            "spec.template.spec.restartPolicy",
            "Never",
            ['spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: "Always"'],
        ),
        ("spec.replicas", -1, ["spec.replicas: Invalid value: -1: must be greater than or equal to 0"]),
        (
            "spec.strategy",
            {"type": "Blue"},
            ['spec.strategy.type: Unsupported value: "Blue": supported values: "Recreate", "RollingUpdate"'],
        ),
        (
            "spec.template.spec.containers",
            [{"name": "a", "image": "x"}, {"name": "a", "image": "y"}],
            ['spec.template.spec.containers[1].name: Duplicate value: "a"'],
        ),
        (
            "spec.template.spec.containers.0.ports",
            [{"containerPort": 0}],
            [
                "spec.template.spec.containers[0].ports[0].containerPort: Invalid value: 0: must be "
                "between 1 and 65535, inclusive"
            ],
        ),
    ],
)
def test_deployment_rules(path: str, value: Any, expected: list[str]) -> None:
    assert _strs(validate_builtin("apps", "Deployment", _with(_deployment(), path, value), None)) == expected


def test_go_literal_of_match_expressions() -> None:
    selector = {"matchExpressions": [{"key": "a", "operator": "In", "values": ["x", "y"]}]}
    assert str(go_label_selector(selector)) == (
        "v1.LabelSelector{MatchLabels:map[string]string(nil), MatchExpressions:[]v1.LabelSelectorRequirement{"
        'v1.LabelSelectorRequirement{Key:"a", Operator:"In", Values:[]string{"x", "y"}}}}'
    )


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"volumes": [{"name": "v", "emptyDir": {}}], "mounts": [{"name": "v", "mountPath": "/v"}]}, []),
        (
            {"volumes": [], "mounts": [{"name": "v", "mountPath": "/v"}]},
            ['containers[0].volumeMounts[0].name: Not found: "v"'],
        ),
        ({"volumes": [], "mounts": [{"name": "data", "mountPath": "/d"}]}, []),  # the claim template
        (
            {"volumes": [{"name": "v"}, {"name": "v"}], "mounts": []},
            ['volumes[1].name: Duplicate value: "v"'],
        ),
        (
            {"volumes": [{"name": "v"}], "mounts": [{"name": "v"}]},
            ["containers[0].volumeMounts[0].mountPath: Required value"],
        ),
    ],
)
def test_volume_rules(spec: dict[str, Any], expected: list[str]) -> None:
    sts = _with(_deployment(), "spec.template.spec.volumes", spec["volumes"])
    sts = _with(sts, "spec.template.spec.containers.0.volumeMounts", spec["mounts"])
    sts["spec"]["volumeClaimTemplates"] = [{"metadata": {"name": "data"}}]
    prefix = "spec.template.spec."
    assert _strs(validate_builtin("apps", "StatefulSet", sts, None)) == [prefix + e for e in expected]
    if expected == [] and spec["mounts"] and spec["mounts"][0]["name"] == "data":
        del sts["spec"]["volumeClaimTemplates"]
        assert _strs(validate_builtin("apps", "Deployment", sts, None)) == [
            prefix + 'containers[0].volumeMounts[0].name: Not found: "data"'
        ]


def test_rolling_update_may_not_be_zero_zero() -> None:
    obj = _with(_deployment(), "spec.strategy", {"rollingUpdate": {"maxUnavailable": 0, "maxSurge": "0%"}})
    assert _strs(validate_builtin("apps", "Deployment", obj, None)) == [
        "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: 0: may not be 0 when `maxSurge` is 0"
    ]


def test_valid_deployment_and_match_expressions() -> None:
    assert validate_builtin("apps", "Deployment", _deployment(), None) == []
    obj = _with(
        _deployment(),
        "spec.selector",
        {"matchExpressions": [{"key": "app", "operator": "In", "values": ["a"]}]},
    )
    assert validate_builtin("apps", "Deployment", obj, None) == []


def test_deployment_selector_is_immutable() -> None:
    old = _deployment()
    new = _with(old, "spec.selector.matchLabels", {"app": "a", "x": "y"})
    new = _with(new, "spec.template.metadata.labels", {"app": "a", "x": "y"})
    assert _strs(validate_builtin("apps", "Deployment", new, old)) == [
        'spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{"app":"a", "x":"y"}, '
        "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable"
    ]
    assert validate_builtin("apps", "Deployment", _with(old, "spec.replicas", 5), old) == []


def _statefulset() -> dict[str, Any]:
    sts = _deployment()
    sts["kind"] = "StatefulSet"
    sts["spec"]["serviceName"] = "svc"
    return sts


def test_statefulset_update_forbids_other_fields() -> None:
    old = _statefulset()
    message = (
        "spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', "
        "'template', "
        "'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"
    )
    assert _strs(validate_builtin("apps", "StatefulSet", _with(old, "spec.serviceName", "other"), old)) == [
        message
    ]
    for path, value in [
        ("spec.replicas", 3),
        ("spec.template.spec.containers.0.image", "nginx:2"),
        ("spec.updateStrategy", {"type": "OnDelete"}),
        ("spec.minReadySeconds", 5),
    ]:
        assert validate_builtin("apps", "StatefulSet", _with(old, path, value), old) == [], path


def test_statefulset_policy_values() -> None:
    obj = _with(_statefulset(), "spec.podManagementPolicy", "Random")
    assert _strs(validate_builtin("apps", "StatefulSet", obj, None)) == [
        'spec.podManagementPolicy: Unsupported value: "Random": supported values: "OrderedReady", "Parallel"'
    ]


def test_replicaset_selector_required() -> None:
    rs = _with(_deployment(), "spec.selector", _DELETE)
    assert _strs(validate_builtin("apps", "ReplicaSet", rs, None)) == ["spec.selector: Required value"]


def test_pod_rules_and_update_restrictions() -> None:
    pod = {
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": "x"}], "restartPolicy": "Never"},
    }
    assert validate_builtin("", "Pod", pod, None) == []
    assert _strs(validate_builtin("", "Pod", {"spec": {}}, None)) == ["spec.containers: Required value"]
    assert validate_builtin("", "Pod", _with(pod, "spec.containers.0.image", "y"), pod) == []
    causes = validate_builtin("", "Pod", _with(pod, "spec.nodeName", "n1"), pod)
    assert [c.type for c in causes] == ["FieldValueForbidden"]
    assert causes[0].message.startswith(
        "Forbidden: pod updates may not change fields other than `spec.containers[*].image`"
    )


def test_pod_scheduling_gates_may_only_be_removed() -> None:
    gated = {
        "metadata": {"name": "p"},
        "spec": {
            "containers": [{"name": "c", "image": "x"}],
            "schedulingGates": [{"name": "a"}, {"name": "b"}],
        },
    }
    assert validate_builtin("", "Pod", _with(gated, "spec.schedulingGates", [{"name": "b"}]), gated) == []
    added = _with(gated, "spec.schedulingGates", [{"name": "a"}, {"name": "c"}])
    assert _strs(validate_builtin("", "Pod", added, gated)) == [
        "spec.schedulingGates[1].name: Forbidden: only deletion is allowed, but found new scheduling gate 'c'"
    ]


def _service(**spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "s"}, "spec": {"ports": [{"port": 80}], **spec}}


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({}, []),
        ({"ports": []}, ["spec.ports: Required value"]),
        ({"ports": [], "clusterIP": "None"}, []),
        (
            {"ports": [{"port": 0}]},
            ["spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive"],
        ),
        (
            {"ports": [{"port": 80}, {"port": 81, "name": "b"}]},
            ["spec.ports[0].name: Required value"],
        ),
        (
            {"ports": [{"port": 80, "name": "a"}, {"port": 81, "name": "a"}]},
            ['spec.ports[1].name: Duplicate value: "a"'],
        ),
        (
            {"ports": [{"port": 80, "protocol": "ICMP"}]},
            ['spec.ports[0].protocol: Unsupported value: "ICMP": supported values: "SCTP", "TCP", "UDP"'],
        ),
        (
            {"ports": [{"port": 80, "targetPort": "HTTP"}]},
            [
                'spec.ports[0].targetPort: Invalid value: "HTTP": must contain only alpha-numeric characters '
                "(a-z, 0-9), and hyphens (-)",
                'spec.ports[0].targetPort: Invalid value: "HTTP": must contain at least one letter (a-z)',
            ],
        ),
        (
            {"type": "Magic"},
            [
                'spec.type: Unsupported value: "Magic": supported values: "ClusterIP", "ExternalName", '
                '"LoadBalancer", "NodePort"'
            ],
        ),
        ({"type": "ExternalName", "ports": []}, ["spec.externalName: Required value"]),
    ],
)
def test_service_rules(spec: dict[str, Any], expected: list[str]) -> None:
    assert _strs(validate_builtin("", "Service", _service(**spec), None)) == expected


def test_service_cluster_ip_may_not_change() -> None:
    old = _service(clusterIP="10.96.0.10")
    assert _strs(validate_builtin("", "Service", _service(clusterIP="10.96.0.11"), old)) == [
        'spec.clusterIPs[0]: Invalid value: []string{"10.96.0.11"}: may not change once set'
    ]
    assert validate_builtin("", "Service", _service(clusterIP="10.96.0.10"), old) == []


def test_configmap_and_secret_rules() -> None:
    assert _strs(validate_builtin("", "ConfigMap", {"data": {"a b": "x"}}, None)) == [
        'data[a b]: Invalid value: "a b": a valid config key must consist of alphanumeric characters, '
        "'-', '_' or "
        "'.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is "
        "'[-._a-zA-Z0-9]+')"
    ]
    old = {"immutable": True, "data": {"a": "1"}}
    assert _strs(validate_builtin("", "ConfigMap", {"immutable": True, "data": {"a": "2"}}, old)) == [
        "data: Forbidden: field is immutable when `immutable` is set"
    ]
    assert _strs(validate_builtin("", "Secret", {"type": "b"}, {"type": "a"})) == [
        'type: Invalid value: "b": field is immutable'
    ]
    assert _strs(
        validate_builtin("", "ConfigMap", {"data": {"a": "x" * (1 << 20)}, "binaryData": {"b": "y"}}, None)
    ) == ["data: Too long: may not be more than 1048576 bytes"]


def test_other_builtin_rules() -> None:
    assert _strs(
        validate_builtin("coordination.k8s.io", "Lease", {"spec": {"leaseDurationSeconds": 0}}, None)
    ) == ["spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0"]
    event = {"metadata": {"namespace": "a"}, "involvedObject": {"namespace": "b"}}
    assert _strs(validate_builtin("", "Event", event, None)) == [
        'involvedObject.namespace: Invalid value: "b": does not match event.namespace'
    ]
    assert _strs(validate_builtin("discovery.k8s.io", "EndpointSlice", {"addressType": "IPX"}, None)) == [
        'addressType: Unsupported value: "IPX": supported values: "FQDN", "IPv4", "IPv6"'
    ]
    endpoints = {"subsets": [{"addresses": [{"ip": "nope"}], "ports": [{"port": 80}]}]}
    assert [c.field for c in validate_builtin("", "Endpoints", endpoints, None)] == [
        "subsets[0].addresses[0].ip"
    ]
    assert "reportingController: Required value" in _strs(
        validate_builtin("events.k8s.io", "Event", {"type": "Normal"}, None)
    )
    assert validate_builtin("x.io", "Thing", {}, None) == []


# -- unknown fields ----------------------------------------------------------------------------


def test_unknown_fields_of_builtins() -> None:
    obj = _deployment()
    obj["spec"]["bogus"] = 1
    obj["spec"]["template"]["spec"]["containers"][0]["imagee"] = "x"
    obj["metadata"]["labels"] = {"any": "key"}
    obj["metadata"]["extra"] = 1
    assert unknown_fields("apps", "Deployment", obj) == [  # document order, like the decoder
        "metadata.extra",
        "spec.template.spec.containers[0].imagee",
        "spec.bogus",
    ]
    assert unknown_fields("apps", "Deployment", _deployment()) == []
    assert unknown_fields("x.io", "Thing", {"a": 1}) == []


def test_unknown_fields_accepts_int_or_string_and_quantities() -> None:
    obj = _deployment()
    obj["spec"]["strategy"] = {"rollingUpdate": {"maxSurge": 1, "maxUnavailable": "25%"}}
    obj["spec"]["template"]["spec"]["containers"][0]["resources"] = {"limits": {"cpu": "1", "memory": 5}}
    assert unknown_fields("apps", "Deployment", obj) == []


# -- CRDs --------------------------------------------------------------------------------------


def _crd(**version: Any) -> dict[str, Any]:
    ver = {
        "name": "v1",
        "served": True,
        "storage": True,
        "schema": {"openAPIV3Schema": {"type": "object"}},
        **version,
    }
    return {
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
            "versions": [ver],
        },
    }


def test_valid_crd() -> None:
    assert validate_crd(_crd()) == []


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (
            lambda c: c["metadata"].update(name="w.example.com"),
            ['metadata.name: Invalid value: "w.example.com": must be spec.names.plural+"."+spec.group'],
        ),
        (
            lambda c: c.update(metadata={"name": "widgets.example"}) or c["spec"].update(group="example"),
            ['spec.group: Invalid value: "example": should be a domain with at least one dot'],
        ),
        (
            lambda c: c["spec"].update(scope="Global"),
            ['spec.scope: Unsupported value: "Global": supported values: "Cluster", "Namespaced"'],
        ),
        (
            lambda c: c["spec"]["versions"][0].update(storage=False),
            ['spec.versions: Invalid value: ["v1"]: must have exactly one version marked as storage version'],
        ),
        (
            lambda c: c["spec"]["versions"][0].pop("schema"),
            ["spec.versions[0].schema.openAPIV3Schema: Required value: schemas are required"],
        ),
        (
            lambda c: c["spec"]["versions"][0]["schema"]["openAPIV3Schema"].update(properties={"spec": {}}),
            [
                "spec.versions[0].schema.openAPIV3Schema.properties[spec].type: Required value: must not "
                "be empty for specified object fields"
            ],
        ),
        (
            lambda c: c["spec"]["versions"][0]["schema"].update(openAPIV3Schema={"type": "string"}),
            [
                'spec.versions[0].schema.openAPIV3Schema.type: Invalid value: "string": must be object at '
                "the root"
            ],
        ),
        (
            lambda c: c["spec"]["versions"].append(copy.deepcopy(c["spec"]["versions"][0])),
            [
                'spec.versions[1].name: Duplicate value: "v1"',
                'spec.versions: Invalid value: ["v1","v1"]: must have exactly one version marked as '
                "storage version",
            ],
        ),
        (lambda c: c["spec"]["names"].pop("kind"), ["spec.names.kind: Required value"]),
    ],
)
def test_crd_rules(mutate: Any, expected: list[str]) -> None:
    crd = _crd()
    mutate(crd)
    assert _strs(validate_crd(crd)) == expected


def test_crd_rejects_uncompilable_cel() -> None:
    schema = {"type": "object", "x-kubernetes-validations": [{"rule": "self.a =="}]}
    causes = validate_crd(_crd(schema={"openAPIV3Schema": schema}))
    assert [c.field for c in causes] == [
        "spec.versions[0].schema.openAPIV3Schema.x-kubernetes-validations[0].rule"
    ]
    assert causes[0].message.startswith('Invalid value: "self.a ==": compilation failed')


# -- CrdSchema ---------------------------------------------------------------------------------

SCHEMA: dict[str, Any] = {
    "type": "object",
    "x-kubernetes-validations": [
        {"rule": "size(self.metadata.name) <= 10", "message": "name too long"},
    ],
    "properties": {
        "spec": {
            "type": "object",
            "required": ["key"],
            "x-kubernetes-validations": [
                {
                    "rule": "!has(self.templates) || self.templates.all(k, self.templates[k] in ['', "
                    "'default'])",
                    "message": "bad template",
                    "fieldPath": ".templates",
                },
                {"rule": "self.replicas >= oldSelf.replicas", "message": "no scale down"},
            ],
            "properties": {
                "key": {"type": "string", "minLength": 1, "maxLength": 5, "pattern": "^[a-z]+$"},
                "replicas": {"type": "integer", "minimum": 0, "maximum": 10, "default": 1},
                "mode": {"type": "string", "enum": ["a", "b"], "default": "a"},
                "port": {"x-kubernetes-int-or-string": True},
                "when": {"type": "string", "format": "date-time"},
                "note": {"type": "string", "nullable": True},
                "tags": {
                    "type": "array",
                    "items": {"type": "string"},
                    "x-kubernetes-list-type": "set",
                    "maxItems": 3,
                },
                "items": {
                    "type": "array",
                    "x-kubernetes-list-type": "map",
                    "x-kubernetes-list-map-keys": ["name"],
                    "items": {
                        "type": "object",
                        "properties": {"name": {"type": "string"}, "size": {"type": "integer", "default": 3}},
                    },
                },
                "templates": {"type": "object", "additionalProperties": {"type": "string"}},
                "template": {
                    "type": "object",
                    "x-kubernetes-preserve-unknown-fields": True,
                    "properties": {"x": {"type": "integer"}},
                },
                "embedded": {
                    "type": "object",
                    "x-kubernetes-embedded-resource": True,
                    "properties": {"spec": {"type": "object", "properties": {"a": {"type": "string"}}}},
                },
                "lower": {
                    "type": "string",
                    "x-kubernetes-validations": [
                        {"rule": "self == self.lowerAscii()", "messageExpression": "'must be lower: ' + self"}
                    ],
                },
            },
        },
        "status": {"type": "object", "properties": {"ready": {"type": "boolean"}}},
    },
}


def _cr(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "w"},
        "spec": {"key": "abc", **spec},
    }


def test_prune_removes_unknown_fields_and_reports_paths() -> None:
    schema = CrdSchema(SCHEMA)
    obj = _cr(
        extra=1,
        items=[{"name": "a", "junk": True}],
        template={"anything": {"goes": 1}, "x": 1},
        embedded={
            "apiVersion": "v1",
            "kind": "X",
            "metadata": {"name": "e", "bogus": 1},
            "spec": {"a": "1", "b": 2},
        },
    )
    obj["metadata"]["weird"] = 1
    obj["top"] = 1
    removed = schema.prune(obj)
    assert sorted(removed) == [
        "metadata.weird",
        "spec.embedded.metadata.bogus",
        "spec.embedded.spec.b",
        "spec.extra",
        "spec.items[0].junk",
        "top",
    ]
    assert obj["spec"]["template"] == {"anything": {"goes": 1}, "x": 1}
    assert obj["spec"]["embedded"]["metadata"] == {"name": "e"}
    assert obj["apiVersion"] == "example.com/v1"


def test_default_applies_top_down_and_into_list_items() -> None:
    obj = _cr(items=[{"name": "a"}, {"name": "b", "size": 9}], mode=None)
    CrdSchema(SCHEMA).default(obj)
    assert obj["spec"]["replicas"] == 1
    assert obj["spec"]["mode"] == "a"
    assert obj["spec"]["items"] == [{"name": "a", "size": 3}, {"name": "b", "size": 9}]


def test_default_drops_non_nullable_nulls_and_keeps_nullable() -> None:
    obj = _cr(key=None, note=None)
    CrdSchema(SCHEMA).default(obj)
    assert "key" not in obj["spec"]
    assert obj["spec"]["note"] is None


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({}, []),
        (
            {"replicas": "x"},
            [
                'spec.replicas: Invalid value: "string": spec.replicas in body must be of type integer: '
                '"string"'
            ],
        ),
        (
            {"replicas": 11},
            ["spec.replicas: Invalid value: 11: spec.replicas in body should be less than or equal to 10"],
        ),
        (
            {"replicas": -1},
            ["spec.replicas: Invalid value: -1: spec.replicas in body should be greater than or equal to 0"],
        ),
        ({"replicas": 2.0}, []),
        ({"mode": "c"}, ['spec.mode: Unsupported value: "c": supported values: "a", "b"']),
        ({"key": "ABC"}, ["spec.key: Invalid value: \"ABC\": spec.key in body should match '^[a-z]+$'"]),
        ({"key": "abcdef"}, ["spec.key: Too long: may not be more than 5 bytes"]),
        (
            {"key": ""},
            [
                'spec.key: Invalid value: "": spec.key in body should be at least 1 chars long',
                "spec.key: Invalid value: \"\": spec.key in body should match '^[a-z]+$'",
            ],
        ),
        ({"port": 80}, []),
        ({"port": "http"}, []),
        (
            {"port": 1.5},
            [
                'spec.port: Invalid value: "number": spec.port in body must be of type integer-or-string: '
                '"number"'
            ],
        ),
        (
            {"when": "yesterday"},
            [
                'spec.when: Invalid value: "yesterday": spec.when in body must be of type date-time: '
                '"yesterday"'
            ],
        ),
        ({"when": "2024-01-02T03:04:05Z"}, []),
        ({"note": None}, []),
        ({"tags": ["a", "a"]}, ['spec.tags[1]: Duplicate value: "a"']),
        ({"tags": ["a", "b", "c", "d"]}, ["spec.tags: Too many: 4: must have at most 3 items"]),
        ({"items": [{"name": "x"}, {"name": "x"}]}, ['spec.items[1]: Duplicate value: {"name":"x"}']),
        ({"templates": {"u1": "other"}}, ['spec.templates: Invalid value: "object": bad template']),
        ({"templates": {"u1": "default"}}, []),
        ({"lower": "ABC"}, ['spec.lower: Invalid value: "string": must be lower: ABC']),
        (
            {"embedded": {"spec": {}}},
            [
                "spec.embedded.apiVersion: Required value: must not be empty",
                "spec.embedded.kind: Required value: must not be empty",
            ],
        ),
    ],
)
def test_crd_schema_validation(spec: dict[str, Any], expected: list[str]) -> None:
    assert _strs(CrdSchema(SCHEMA).validate(_cr(**spec))) == expected


def test_required_fields_and_root_rules() -> None:
    obj = _cr()
    del obj["spec"]["key"]
    obj["metadata"]["name"] = "a-very-long-name"
    assert _strs(CrdSchema(SCHEMA).validate(obj)) == [
        "spec.key: Required value",
        'Invalid value: "object": name too long',
    ]


def test_transition_rules_need_old_object() -> None:
    schema = CrdSchema(SCHEMA)
    assert schema.validate(_cr(replicas=1)) == []
    assert schema.validate(_cr(replicas=3), _cr(replicas=2)) == []
    assert _strs(schema.validate(_cr(replicas=1), _cr(replicas=2))) == [
        'spec: Invalid value: "object": no scale down'
    ]


def test_cel_reason_and_evaluation_errors() -> None:
    schema = CrdSchema(
        {
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "x-kubernetes-validations": [
                        {"rule": "self.a == 1", "reason": "FieldValueForbidden", "message": "a must be 1"},
                    ],
                }
            },
        }
    )
    assert _strs(schema.validate({"spec": {"a": 2}})) == ["spec: Forbidden: a must be 1"]
    causes = schema.validate({"spec": {}})
    assert len(causes) == 1
    assert causes[0].message.startswith('Invalid value: "object": rule evaluation error:')


def test_rule_default_message_quotes_rule() -> None:
    schema = CrdSchema(
        {
            "type": "object",
            "properties": {"spec": {"type": "object", "x-kubernetes-validations": [{"rule": "has(self.a)"}]}},
        }
    )
    assert _strs(schema.validate({"spec": {}})) == ['spec: Invalid value: "object": failed rule: has(self.a)']


def test_combinators() -> None:
    schema = CrdSchema(
        {
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "properties": {"a": {"type": "string"}, "b": {"type": "string"}},
                    "oneOf": [{"required": ["a"]}, {"required": ["b"]}],
                }
            },
        }
    )
    assert schema.validate({"spec": {"a": "x"}}) == []
    assert _strs(schema.validate({"spec": {"a": "x", "b": "y"}})) == [
        'spec: Invalid value: {"a":"x","b":"y"}: spec in body must validate one and only one schema (oneOf)'
    ]


def test_project_crds_compile_and_accept_examples() -> None:
    """Every CRD this project installs is valid and its schema compiles (CEL included)."""
    from servicegroup.api.crds import all_crds
    from servicegroup.sandbox.defaults import apply_defaults

    for original in all_crds():
        crd = copy.deepcopy(original)
        apply_defaults("apiextensions.k8s.io", "CustomResourceDefinition", crd)
        assert validate_crd(crd) == [], crd["metadata"]["name"]
        for version in crd["spec"]["versions"]:
            CrdSchema(version["schema"]["openAPIV3Schema"])


def test_unchanged_fields_are_ratcheted_on_update() -> None:
    schema = CrdSchema(SCHEMA)
    invalid_then = _cr(mode="legacy", replicas=1)
    assert schema.validate(invalid_then)  # invalid on create
    assert schema.validate(_cr(mode="legacy", replicas=2), invalid_then) == []
    assert _strs(schema.validate(_cr(mode="other", replicas=1), invalid_then)) == [
        'spec.mode: Unsupported value: "other": supported values: "a", "b"'
    ]
