"""`servicegroup render` and `servicegroup crds` through the real CLI entry point."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
import yaml

from grid.support import EXAMPLES, app_grid, config_grid
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
    assert out.splitlines()[:3] == [
        "# DeploymentGrid deploymentgrid-demo: 2 children",
        "#   beijing: template default",
        "#   guangzhou: template default",
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


def test_render_with_configs_and_nodeunits_shows_per_unit_summary(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    grid = app_grid(
        overrides=[{"name": "gold", "unitSelector": {"matchLabels": {"tier": "gold"}}, "replicas": 3}]
    )
    configmap = config_grid("ConfigMapGrid", "app-config", data={"site": "((unit))"})
    secret = config_grid("SecretGrid", "app-secret", stringData={"t": "1"})
    unit = {"apiVersion": "site.superedge.io/v1alpha2", "kind": "NodeUnit", "metadata": {"name": "beijing"}}
    unit["metadata"]["labels"] = {"tier": "gold"}
    files = {"grid": [grid, configmap], "configs": [secret], "units": [unit]}
    for name, docs in files.items():
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump_all(docs))
    out = render(
        capsys,
        "-f", str(tmp_path / "grid.yaml"), "--nodes", NODES,
        "--configs", str(tmp_path / "configs.yaml"), "--nodeunits", str(tmp_path / "units.yaml"),
    )  # fmt: skip
    header = [line for line in out.splitlines() if line.startswith("#")]
    assert header[0] == "# DeploymentGrid app: 2 children"
    assert header[1].startswith("#   beijing: template default; overrides gold; config ")
    assert header[1].endswith("(ConfigMap/app-config, Secret/app-secret)")
    assert header[2].startswith("#   guangzhou: template default; config ")
    assert header[3] == "# ConfigMapGrid app-config: 2 children"
    children = {c["metadata"]["name"]: c for c in yaml.safe_load_all(out)}
    assert children["app-beijing"]["spec"]["replicas"] == 3
    assert children["app-guangzhou"]["spec"]["replicas"] == 1
    volume = children["app-guangzhou"]["spec"]["template"]["spec"]["volumes"][0]
    assert volume["configMap"]["name"] == "app-config-guangzhou"
    assert children["app-config-beijing"]["data"] == {"site": "beijing"}


def test_render_rejects_a_wrong_configs_file(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="expected ConfigMapGrid or SecretGrid objects, found 'Node'"):
        main(["render", "-f", str(EXAMPLES / "01-deploymentgrid.yaml"), "--nodes", NODES, "--configs", NODES])
