"""The site CRDs: SuperEdge's names and columns, and deploy/crds/ kept in sync with the code."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from servicegroup.api.site_crds import crds

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "crds"


def _file(crd: dict[str, Any]) -> Path:
    return DEPLOY / f"{crd['spec']['group']}_{crd['spec']['names']['plural']}.yaml"


def _by_kind() -> dict[str, dict[str, Any]]:
    return {crd["spec"]["names"]["kind"]: crd for crd in crds()}


@pytest.mark.parametrize("crd", crds(), ids=lambda c: c["metadata"]["name"])
def test_deploy_yaml_matches_code(crd: dict[str, Any]) -> None:
    """deploy/crds/ is what users apply; regenerate with UPDATE_CRDS=1 pytest tests/site/test_site_crds.py."""
    path = _file(crd)
    if os.environ.get("UPDATE_CRDS") == "1":
        path.write_text(yaml.safe_dump(crd, sort_keys=False))
    assert yaml.safe_load(path.read_text()) == crd, f"{path} is stale; rerun with UPDATE_CRDS=1"


def test_names_scope_and_short_names_are_superedge_ones() -> None:
    nu, ng = _by_kind()["NodeUnit"], _by_kind()["NodeGroup"]
    assert nu["metadata"]["name"] == "nodeunits.site.superedge.io"
    assert ng["metadata"]["name"] == "nodegroups.site.superedge.io"
    assert nu["spec"]["names"]["shortNames"] == ["nu"]
    assert ng["spec"]["names"]["shortNames"] == ["ng"]
    assert "categories" not in nu["spec"]["names"]
    assert ng["spec"]["names"]["categories"] == ["all"]
    for crd in (nu, ng):
        assert crd["spec"]["scope"] == "Cluster"
        [version] = crd["spec"]["versions"]
        assert (version["name"], version["served"], version["storage"]) == ("v1alpha2", True, True)
        assert version["subresources"] == {"status": {}}


def test_v1alpha2_field_names_are_camel_case() -> None:
    nu = _by_kind()["NodeUnit"]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]
    ng = _by_kind()["NodeGroup"]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]
    assert {"setNode", "autonomyLevel", "unitCredentialConfigMapRef", "unitClusterInfo"} <= set(
        nu["spec"]["properties"]
    )
    assert {"readyRate", "readyNodes", "notReadyNodes", "unitClusterStatus"} <= set(
        nu["status"]["properties"]
    )
    assert {"nodeUnits", "autoFindNodeKeys", "selector", "workload"} <= set(ng["spec"]["properties"])
    assert {"unitNumber", "nodeUnits", "workloadStatus"} <= set(ng["status"]["properties"])
    item = ng["status"]["properties"]["workloadStatus"]["items"]["properties"]
    assert {"workloadName", "readyUnit", "notReadyUnit"} <= set(item)
    assert nu["spec"]["properties"]["type"]["default"] == "edge"


def test_printer_columns() -> None:
    def columns(kind: str) -> list[tuple[str, str]]:
        version = _by_kind()[kind]["spec"]["versions"][0]
        return [(c["name"], c["jsonPath"]) for c in version["additionalPrinterColumns"]]

    assert columns("NodeUnit") == [
        ("TYPE", ".spec.type"),
        ("READY", ".status.readyRate"),
        ("AGE", ".metadata.creationTimestamp"),
        ("DELETING", ".metadata.deletionTimestamp"),
    ]
    assert columns("NodeGroup") == [("UNITS", ".status.unitNumber"), ("AGE", ".metadata.creationTimestamp")]
