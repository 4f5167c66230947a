"""api/grid_crds.py: SuperEdge's names, our status subresource and columns, a schema that accepts
every example manifest and rejects what would fail later, and deploy/crds/ kept in sync."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from grid.support import EXAMPLES, example
from servicegroup.api import config_crds
from servicegroup.api.grid_crds import crds
from servicegroup.kube.objects import deep_copy
from servicegroup.sandbox.validation import CrdSchema

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "crds"
BY_KIND = {crd["spec"]["names"]["kind"]: crd for crd in [*crds(), *config_crds.crds()]}


def schema(kind: str) -> CrdSchema:
    return CrdSchema(BY_KIND[kind]["spec"]["versions"][0]["schema"]["openAPIV3Schema"])


def causes(obj: dict[str, Any]) -> list[str]:
    obj = deep_copy(obj)
    checker = schema(obj["kind"])
    checker.prune(obj)
    checker.default(obj)
    return [f"{c.field}: {c.message}" for c in checker.validate(obj)]


def test_names_match_superedge() -> None:
    expected = {
        "DeploymentGrid": ("deploymentgrids", "dg"),
        "StatefulSetGrid": ("statefulsetgrids", "ssg"),
        "ServiceGrid": ("servicegrids", "sg"),
    }
    for kind, (plural, short) in expected.items():
        crd = BY_KIND[kind]
        names = crd["spec"]["names"]
        assert crd["metadata"]["name"] == f"{plural}.superedge.io"
        assert (names["plural"], names["singular"], names["shortNames"], names["listKind"]) == (
            plural,
            kind.lower(),
            [short],
            f"{kind}List",
        )
        assert "servicegroup" in names["categories"] and crd["spec"]["scope"] == "Namespaced"
        [version] = crd["spec"]["versions"]
        assert version["name"] == "v1" and version["served"] and version["storage"]
        assert version["subresources"] == {"status": {}}


def test_printer_columns_show_units_and_ready_units() -> None:
    columns = BY_KIND["DeploymentGrid"]["spec"]["versions"][0]["additionalPrinterColumns"]
    assert [(c["name"], c["jsonPath"]) for c in columns] == [
        ("Key", ".spec.gridUniqKey"),
        ("Units", ".status.units"),
        ("Ready", ".status.readyUnits"),
        ("Age", ".metadata.creationTimestamp"),
    ]


EXAMPLE_FILES = [
    "01-deploymentgrid",
    "02-servicegrid",
    "03-statefulsetgrid",
    "04-servicegrid-headless",
    "05-deploymentgrid-canary",
    "06-deploymentgrid-fed",
]


@pytest.mark.parametrize("name", EXAMPLE_FILES)
def test_every_example_is_accepted_unchanged(name: str) -> None:
    obj = example(name)
    assert causes(obj) == []
    checked = deep_copy(obj)
    schema(obj["kind"]).prune(checked)
    assert checked == obj, "the schema must not prune anything a SuperEdge manifest uses"


def test_default_template_name_defaults_to_default() -> None:
    obj = example("01-deploymentgrid")
    schema("DeploymentGrid").default(obj)
    assert obj["spec"]["defaultTemplateName"] == "default"


def mutated(name: str, change: Any) -> dict[str, Any]:
    obj = example(name)
    change(obj)
    return obj


BAD = [
    (
        "missing gridUniqKey",
        mutated("01-deploymentgrid", lambda o: o["spec"].pop("gridUniqKey")),
        "gridUniqKey",
    ),
    (
        "gridUniqKey not a label key",
        mutated("01-deploymentgrid", lambda o: o["spec"].update(gridUniqKey="bad key")),
        "gridUniqKey",
    ),
    (
        "gridUniqKey prefix too long",
        mutated("01-deploymentgrid", lambda o: o["spec"].update(gridUniqKey="a" * 254 + "/b")),
        "gridUniqKey",
    ),
    (
        "templates names a missing pool entry",
        mutated("05-deploymentgrid-canary", lambda o: o["spec"]["templates"].update(zone3="typo")),
        "templates",
    ),
    (
        "defaultTemplateName typo",
        mutated("05-deploymentgrid-canary", lambda o: o["spec"].update(defaultTemplateName="tset1")),
        "defaultTemplateName",
    ),
    (
        "templates without a pool",
        mutated("01-deploymentgrid", lambda o: o["spec"].update(templates={"z": "t1"})),
        "templates",
    ),
    (
        "grid name too long for the selector label",
        mutated("01-deploymentgrid", lambda o: o["metadata"].update(name="d" * 64)),
        "63",
    ),
    (
        "statefulset grid name too long",
        mutated("03-statefulsetgrid", lambda o: o["metadata"].update(name="s" * 51)),
        "50",
    ),
    (
        "statefulset unit in templates too long",
        mutated("03-statefulsetgrid", lambda o: o["spec"].update(templates={"u" * 40: "default"})),
        "52",
    ),
    (
        "service grid name too long",
        mutated("02-servicegrid", lambda o: o["metadata"].update(name="s" * 60)),
        "59",
    ),
    (
        "replicas negative",
        mutated("01-deploymentgrid", lambda o: o["spec"]["template"].update(replicas=-1)),
        "replicas",
    ),
    (
        "service port out of range",
        mutated("02-servicegrid", lambda o: o["spec"]["template"]["ports"][0].update(port=70000)),
        "port",
    ),
    (
        "deployment template without selector",
        mutated("01-deploymentgrid", lambda o: o["spec"]["template"].pop("selector")),
        "selector",
    ),
]


@pytest.mark.parametrize(("obj", "text"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_input_is_rejected_by_the_schema(obj: dict[str, Any], text: str) -> None:
    found = causes(obj)
    assert found and any(text in cause for cause in found), found


def test_default_and_empty_template_names_are_accepted() -> None:
    obj = mutated(
        "05-deploymentgrid-canary", lambda o: o["spec"]["templates"].update(zone3="default", zone4="")
    )
    assert causes(obj) == []


@pytest.mark.parametrize(
    ("manifests", "source"), [(crds(), "grid_crds.py"), (config_crds.crds(), "config_crds.py")]
)
def test_deploy_crds_are_in_sync(manifests: list[dict[str, Any]], source: str) -> None:
    """deploy/crds/<group>_<plural>.yaml are generated; UPDATE_CRDS=1 rewrites them."""
    for crd in manifests:
        path = DEPLOY / f"{crd['spec']['group']}_{crd['spec']['names']['plural']}.yaml"
        text = f"# Generated from src/servicegroup/api/{source}; do not edit.\n" + yaml.safe_dump(
            crd, sort_keys=False
        )
        if os.environ.get("UPDATE_CRDS"):
            DEPLOY.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        assert path.exists() and path.read_text() == text, (
            f"{path} is stale: run UPDATE_CRDS=1 pytest {__file__}"
        )


def test_examples_dir_is_the_shipped_one() -> None:
    assert (EXAMPLES / "05-deploymentgrid-canary.yaml").exists()
