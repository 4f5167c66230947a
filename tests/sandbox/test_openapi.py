"""OpenAPI documents: shape kubectl relies on, and real kubectl 1.37 validating/explaining/applying."""

from __future__ import annotations

import asyncio
import copy
import importlib.util
import json
import struct
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from servicegroup.sandbox import Sandbox
from servicegroup.sandbox.openapi import (
    builtin_schemas,
    definition_name,
    openapi_v2,
    openapi_v2_protobuf,
    openapi_v3_group,
    openapi_v3_paths,
    references,
)
from servicegroup.sandbox.resources import BUILTIN_TYPES, crd_types
from servicegroup.sandbox.validation import CrdSchema

ROOT = Path(__file__).resolve().parents[2]
KUBECTL = Path(sys.executable).parent / "kubectl"
SERVED_KINDS = [
    ("", "v1", "Namespace"),
    ("", "v1", "Node"),
    ("", "v1", "Pod"),
    ("", "v1", "Service"),
    ("", "v1", "Endpoints"),
    ("", "v1", "ConfigMap"),
    ("", "v1", "Secret"),
    ("", "v1", "Event"),
    ("events.k8s.io", "v1", "Event"),
    ("discovery.k8s.io", "v1", "EndpointSlice"),
    ("coordination.k8s.io", "v1", "Lease"),
    ("apps", "v1", "Deployment"),
    ("apps", "v1", "StatefulSet"),
    ("apps", "v1", "ReplicaSet"),
    ("apps", "v1", "ControllerRevision"),
    ("apiextensions.k8s.io", "v1", "CustomResourceDefinition"),
]


def _widget_crd(replicas_type: str = "integer") -> dict[str, Any]:
    schema = {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "description": "Desired widget.",
                "properties": {"replicas": {"type": replicas_type, "description": "How many."}},
            }
        },
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": schema},
                    "subresources": {
                        "status": {},
                        "scale": {
                            "specReplicasPath": ".spec.replicas",
                            "statusReplicasPath": ".status.replicas",
                        },
                    },
                }
            ],
        },
    }


def _keys(node: Any, key: str) -> bool:
    if isinstance(node, dict):
        return key in node or any(_keys(v, key) for v in node.values())
    if isinstance(node, list):
        return any(_keys(v, key) for v in node)
    return False


@pytest.mark.parametrize(("group", "version", "kind"), SERVED_KINDS)
def test_every_served_kind_has_a_schema(group: str, version: str, kind: str) -> None:
    name = definition_name(group, kind, version)
    assert name is not None
    assert builtin_schemas()[name]["x-kubernetes-group-version-kind"] == [
        {"group": group, "version": version, "kind": kind}
    ]


def test_data_file_is_small_and_self_contained() -> None:
    data = ROOT / "src/servicegroup/sandbox/data/builtin-schemas.json.gz"
    assert data.stat().st_size < 2_000_000
    schemas = builtin_schemas()
    assert references(schemas) <= set(schemas)
    assert not _keys(schemas, "$defs")


def test_data_file_matches_generator(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("gen", ROOT / "scripts/gen_builtin_schemas.py")
    assert spec is not None and spec.loader is not None
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    gen.OUT = tmp_path / "out.json.gz"
    gen.main()
    assert (
        gen.OUT.read_bytes() == (ROOT / "src/servicegroup/sandbox/data/builtin-schemas.json.gz").read_bytes()
    )


def test_v3_index_lists_group_versions_with_hashes() -> None:
    paths = openapi_v3_paths(BUILTIN_TYPES)["paths"]
    assert {"api/v1", "apis/apps/v1", "apis/discovery.k8s.io/v1"} <= set(paths)
    url = paths["apis/apps/v1"]["serverRelativeURL"]
    assert url.startswith("/openapi/v3/apis/apps/v1?hash=")
    assert len(url.split("hash=")[1]) == 128


def test_v3_hash_follows_crd_schema_changes() -> None:
    first = crd_types(_widget_crd(), CrdSchema)
    second = crd_types(_widget_crd("string"), CrdSchema)
    url1 = openapi_v3_paths([*BUILTIN_TYPES, *first])["paths"]["apis/example.com/v1"]["serverRelativeURL"]
    url2 = openapi_v3_paths([*BUILTIN_TYPES, *second])["paths"]["apis/example.com/v1"]["serverRelativeURL"]
    assert url1 != url2
    assert openapi_v3_paths(BUILTIN_TYPES) == openapi_v3_paths(list(reversed(BUILTIN_TYPES)))


def test_v3_group_patch_operation_advertises_field_validation() -> None:
    doc = openapi_v3_group("apps", "v1", BUILTIN_TYPES, [])
    assert doc is not None
    patch = doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"]
    assert patch["x-kubernetes-group-version-kind"] == {
        "group": "apps",
        "version": "v1",
        "kind": "Deployment",
    }
    assert "fieldValidation" in [p["name"] for p in patch["parameters"]]
    assert "application/strategic-merge-patch+json" in patch["requestBody"]["content"]
    schemas = doc["components"]["schemas"]
    assert "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta" in schemas
    assert references(doc) <= set(schemas)
    assert "io.k8s.api.core.v1.Service" not in schemas


def test_v3_group_cluster_scoped_paths_and_unknown_group() -> None:
    doc = openapi_v3_group("", "v1", BUILTIN_TYPES, [])
    assert doc is not None
    assert "/api/v1/nodes/{name}" in doc["paths"]
    assert "/api/v1/namespaces/{namespace}/pods/{name}/status" in doc["paths"]
    assert openapi_v3_group("nope.io", "v1", BUILTIN_TYPES, []) is None


def test_v3_group_for_crd_publishes_its_schema() -> None:
    crd = _widget_crd()
    types = [*BUILTIN_TYPES, *crd_types(crd, CrdSchema)]
    doc = openapi_v3_group("example.com", "v1", types, [crd])
    assert doc is not None
    schema = doc["components"]["schemas"]["com.example.v1.Widget"]
    assert schema["x-kubernetes-group-version-kind"] == [
        {"group": "example.com", "version": "v1", "kind": "Widget"}
    ]
    assert (
        schema["properties"]["metadata"]["$ref"]
        == "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
    )
    assert schema["properties"]["spec"]["properties"]["replicas"]["type"] == "integer"
    item = doc["paths"]["/apis/example.com/v1/namespaces/{namespace}/widgets/{name}"]["patch"]
    assert "application/strategic-merge-patch+json" not in item["requestBody"]["content"]  # kubectl: merge
    assert "application/merge-patch+json" in item["requestBody"]["content"]
    scale = doc["paths"]["/apis/example.com/v1/namespaces/{namespace}/widgets/{name}/scale"]["patch"]
    assert scale["x-kubernetes-group-version-kind"]["kind"] == "Scale"
    assert "io.k8s.api.autoscaling.v1.Scale" in doc["components"]["schemas"]
    assert crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"].keys() == {"spec"}


def test_v2_is_swagger_with_v2_refs_and_no_v3_constructs() -> None:
    doc = openapi_v2(BUILTIN_TYPES, [])
    assert doc["swagger"] == "2.0"
    definitions = doc["definitions"]
    assert references(doc, "#/definitions/") <= set(definitions)
    assert references(doc) == set()
    assert not _keys(doc, "oneOf")
    assert definitions["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]["type"] == "string"
    patch = doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"]
    assert {"name": "fieldValidation", "in": "query"}.items() <= next(
        p for p in patch["parameters"] if p["name"] == "fieldValidation"
    ).items()
    body = next(p for p in patch["parameters"] if p["in"] == "body")
    assert body["schema"] == {"type": "object"}
    assert patch["responses"]["200"]["schema"]["$ref"] == "#/definitions/io.k8s.api.apps.v1.Deployment"


# -- real kubectl against the sandbox -----------------------------------------------------------

DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: nginx:1.25
        ports: [{containerPort: 80}]
%s
"""


async def _kubectl(kubeconfig: Path, *args: str, stdin: str | None = None) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        str(KUBECTL),
        f"--kubeconfig={kubeconfig}",
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(stdin.encode() if stdin else None), timeout=60)
    return proc.returncode or 0, out.decode()


@pytest.fixture
def kubeconfig(sandbox: Sandbox, tmp_path: Path) -> Path:
    return sandbox.write_kubeconfig(tmp_path / "kubeconfig")


pytestmark_kubectl = pytest.mark.skipif(not KUBECTL.exists(), reason="kubectl not installed")


@pytest.mark.kubectl
@pytestmark_kubectl
async def test_kubectl_strict_validation_accepts_valid_and_rejects_unknown(kubeconfig: Path) -> None:
    code, out = await _kubectl(kubeconfig, "apply", "-f", "-", stdin=DEPLOYMENT % "")
    assert code == 0, out
    bad = DEPLOYMENT % "        bogus: 1"
    code, out = await _kubectl(kubeconfig, "apply", "-f", "-", stdin=bad)
    assert code != 0
    assert 'unknown field "spec.template.spec.containers[0].bogus"' in out


@pytest.mark.kubectl
@pytestmark_kubectl
async def test_kubectl_client_side_apply_patches_with_merge_keys(kubeconfig: Path) -> None:
    code, out = await _kubectl(kubeconfig, "apply", "-f", "-", stdin=DEPLOYMENT % "")
    assert code == 0, out
    changed = (DEPLOYMENT % "        env: [{name: A, value: '1'}]").replace(
        "ports: [{containerPort: 80}]", ""
    )
    changed = changed.replace("spec:\n  selector", "spec:\n  strategy: {type: Recreate}\n  selector")
    code, out = await _kubectl(kubeconfig, "apply", "-f", "-", stdin=changed)
    assert code == 0, out
    code, out = await _kubectl(kubeconfig, "get", "deployment", "web", "-n", "default", "-o", "json")
    assert code == 0, out
    spec = json.loads(out)["spec"]
    assert spec["strategy"] == {"type": "Recreate"}  # $retainKeys dropped rollingUpdate
    (container,) = spec["template"]["spec"]["containers"]
    assert container["env"] == [{"name": "A", "value": "1"}]
    assert "ports" not in container
    assert container["imagePullPolicy"] == "IfNotPresent"


@pytest.mark.kubectl
@pytestmark_kubectl
async def test_kubectl_explain_builtin_and_crd(kubeconfig: Path) -> None:
    code, out = await _kubectl(kubeconfig, "explain", "deployment.spec.strategy")
    assert code == 0, out
    assert "rollingUpdate\t<RollingUpdateDeployment>" in out
    code, out = await _kubectl(kubeconfig, "apply", "-f", "-", stdin=orjson.dumps(_widget_crd()).decode())
    assert code == 0, out
    code, out = await _kubectl(kubeconfig, "explain", "widgets.spec.replicas")
    assert code == 0, out
    assert "How many." in out
    widget = {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "w", "namespace": "default"},
    }
    bad = copy.deepcopy(widget) | {"spec": {"replicas": 1, "color": "red"}}
    code, out = await _kubectl(kubeconfig, "apply", "-f", "-", stdin=orjson.dumps(bad).decode())
    assert code != 0
    assert 'unknown field "spec.color"' in out


def _decode(data: bytes) -> list[tuple[int, Any]]:
    """A minimal protobuf wire decoder: (field number, bytes | int | float) in order."""
    fields: list[tuple[int, Any]] = []
    pos = 0

    def varint() -> int:
        nonlocal pos
        shift = value = 0
        while True:
            byte = data[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                return value

    while pos < len(data):
        key = varint()
        number, wire = key >> 3, key & 7
        if wire == 0:
            fields.append((number, varint()))
        elif wire == 1:
            fields.append((number, struct.unpack("<d", data[pos : pos + 8])[0]))
            pos += 8
        else:
            length = varint()
            fields.append((number, data[pos : pos + length]))
            pos += length
    return fields


def _named_map(message: bytes) -> dict[str, bytes]:
    """A gnostic `repeated Named*` message → {name: value bytes}."""
    out = {}
    for _, entry in _decode(message):
        parts = dict(_decode(entry))
        out[parts[1].decode()] = parts[2]
    return out


def test_v2_protobuf_encodes_definitions_kubectl_reads() -> None:
    doc = dict(_decode(openapi_v2_protobuf(BUILTIN_TYPES, [])))
    assert doc[1] == b"2.0"
    assert dict(_decode(doc[2])) == {1: b"Kubernetes", 2: b"v1.37.0"}
    definitions = _named_map(doc[9])
    deployment = _decode(definitions["io.k8s.api.apps.v1.Deployment"])
    named_any = [dict(_decode(v)) for n, v in deployment if n == 31]
    extensions = {e[1].decode(): yaml.safe_load(dict(_decode(e[2]))[2]) for e in named_any}
    assert extensions["x-kubernetes-group-version-kind"] == [
        {"group": "apps", "kind": "Deployment", "version": "v1"}
    ]
    assert [dict(_decode(v))[1] for n, v in deployment if n == 22] == [b"object"]
    props = _named_map(next(v for n, v in deployment if n == 25))
    assert set(props) == {"apiVersion", "kind", "metadata", "spec", "status"}
    assert (
        dict(_decode(props["metadata"]))[1]
        == b"#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
    )
    spec = _decode(definitions["io.k8s.api.apps.v1.DeploymentSpec"])
    assert [v for n, v in spec if n == 19] == [b"selector", b"template"]  # required
    replicas = dict(_decode(_named_map(next(v for n, v in spec if n == 25))["replicas"]))
    assert replicas[2] == b"int32"


@pytest.mark.kubectl
@pytestmark_kubectl
async def test_kubectl_reapply_custom_resource_uses_merge_patch(kubeconfig: Path) -> None:
    code, out = await _kubectl(kubeconfig, "apply", "-f", "-", stdin=orjson.dumps(_widget_crd()).decode())
    assert code == 0, out
    widget = {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "w", "namespace": "default"},
    }
    for replicas in (1, 3):
        body = orjson.dumps(widget | {"spec": {"replicas": replicas}}).decode()
        code, out = await _kubectl(kubeconfig, "apply", "-f", "-", stdin=body)
        assert code == 0, out
    code, out = await _kubectl(kubeconfig, "get", "widget", "w", "-n", "default", "-o", "json")
    assert code == 0, out
    assert json.loads(out)["spec"] == {"replicas": 3}
