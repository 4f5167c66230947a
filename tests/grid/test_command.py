"""`servicegroup render` and `servicegroup crds` through the real CLI entry point."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
import yaml

from grid.support import EXAMPLES
from servicegroup.cli import main
from servicegroup.grid.desired import desired_children
from servicegroup.grid.kinds import DEPLOYMENT_GRID
from servicegroup.grid.units import unit_values

NODES = str(EXAMPLES / "00-nodes.yaml")


def render(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert main(["render", *args]) == 0
    return capsys.readouterr().out


def test_render_prints_what_the_controller_would_create(capsys: pytest.CaptureFixture[str]) -> None:
    out = render(capsys, "-f", str(EXAMPLES / "01-deploymentgrid.yaml"), "--nodes", NODES)
    children = list(yaml.safe_load_all(out))
    grid = yaml.safe_load((EXAMPLES / "01-deploymentgrid.yaml").read_text())
    nodes = list(yaml.safe_load_all((EXAMPLES / "00-nodes.yaml").read_text()))
    expected = desired_children(DEPLOYMENT_GRID, grid, unit_values(nodes, "location")).children
    assert children == [expected[name] for name in sorted(expected)]
    assert [c["metadata"]["name"] for c in children] == [
        "deploymentgrid-demo-beijing",
        "deploymentgrid-demo-guangzhou",
    ]


def test_render_json_list_and_servicegrid_without_nodes(capsys: pytest.CaptureFixture[str]) -> None:
    out = render(capsys, "-f", str(EXAMPLES / "02-servicegrid.yaml"), "-o", "json")
    document = orjson.loads(out)
    assert document["kind"] == "List"
    [service] = document["items"]
    assert service["metadata"]["name"] == "servicegrid-demo-svc"
    assert service["metadata"]["annotations"]["topologyKeys"] == '["location"]'


def test_render_errors_are_one_line(tmp_path: Path) -> None:
    grid = yaml.safe_load((EXAMPLES / "05-deploymentgrid-canary.yaml").read_text())
    grid["spec"]["templates"]["beijing"] = "typo"
    grid["spec"]["gridUniqKey"] = "location"
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(grid))
    cases = [
        (["-f", str(path), "--nodes", NODES], "unit beijing: template 'typo' not found in templatePool"),
        (["-f", str(tmp_path / "missing.yaml")], "cannot read"),
        (["-f", NODES], "not a grid: v1/Node"),
        (
            [
                "-f",
                str(EXAMPLES / "01-deploymentgrid.yaml"),
                "--nodes",
                str(EXAMPLES / "02-servicegrid.yaml"),
            ],
            "expected Node objects",
        ),
    ]
    for args, text in cases:
        with pytest.raises(SystemExit) as raised:
            main(["render", *args])
        message = str(raised.value.code)
        assert message.startswith("servicegroup render: error: ") and text in message and "\n" not in message


def test_crds_prints_every_crd(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["crds"]) == 0
    names = [doc["metadata"]["name"] for doc in yaml.safe_load_all(capsys.readouterr().out)]
    assert {
        "deploymentgrids.superedge.io",
        "statefulsetgrids.superedge.io",
        "servicegrids.superedge.io",
    } <= set(names)
