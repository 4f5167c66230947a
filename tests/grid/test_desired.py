"""desired.py: the children of the docs' examples, the label/annotation/owner contract, and problems."""

from __future__ import annotations

from typing import Any

from grid.support import example, example_nodes, node, with_identity
from servicegroup.api.labels import GRID_SELECTOR, GRID_UNIQ_KEY, TEMPLATE_HASH_KEY
from servicegroup.grid import reasons
from servicegroup.grid.desired import GRID_WIDE, LAST_APPLIED, desired_children
from servicegroup.grid.kinds import DEPLOYMENT_GRID, SERVICE_GRID, STATEFULSET_GRID
from servicegroup.grid.templates import template_hash
from servicegroup.grid.units import unit_values
from servicegroup.kube.objects import deep_copy

OWNER = {
    "apiVersion": "superedge.io/v1",
    "kind": "DeploymentGrid",
    "name": "deploymentgrid-demo",
    "uid": "uid-1",
    "controller": True,
    "blockOwnerDeletion": True,
}


def test_deploymentgrid_example_gets_one_pinned_deployment_per_unit() -> None:
    grid = with_identity(example("01-deploymentgrid"))
    units = unit_values(example_nodes(), "location")
    desired = desired_children(DEPLOYMENT_GRID, grid, units)
    assert sorted(desired.children) == ["deploymentgrid-demo-beijing", "deploymentgrid-demo-guangzhou"]
    child = desired.children["deploymentgrid-demo-beijing"]
    assert child["apiVersion"] == "apps/v1" and child["kind"] == "Deployment"
    assert child["metadata"]["namespace"] == "default"
    assert child["metadata"]["labels"] == {GRID_SELECTOR: "deploymentgrid-demo", GRID_UNIQ_KEY: "location"}
    assert child["metadata"]["ownerReferences"] == [OWNER]
    assert child["spec"]["replicas"] == 2
    pod = child["spec"]["template"]
    assert pod["spec"]["nodeSelector"] == {"location": "beijing"}
    assert pod["metadata"]["labels"][TEMPLATE_HASH_KEY] == template_hash(grid["spec"]["template"])
    assert desired.unit_of == {
        "deploymentgrid-demo-beijing": "beijing",
        "deploymentgrid-demo-guangzhou": "guangzhou",
    }
    assert not desired.problems


def test_canary_example_picks_templates_per_unit() -> None:
    grid = with_identity(example("05-deploymentgrid-canary"))
    nodes = [node("a", zone="zone1"), node("b", zone="zone2"), node("c", zone="zone3")]
    desired = desired_children(DEPLOYMENT_GRID, grid, unit_values(nodes, "zone"))

    def image_and_replicas(unit: str) -> tuple[str, int]:
        spec = desired.children[f"deploymentgrid-demo-{unit}"]["spec"]
        return spec["template"]["spec"]["containers"][0]["image"], spec["replicas"]

    assert image_and_replicas("zone1") == ("superedge/echoserver:2.2", 2)  # test1
    assert image_and_replicas("zone2") == ("superedge/echoserver:2.3", 3)  # test2
    assert image_and_replicas("zone3") == ("superedge/echoserver:2.2", 2)  # defaultTemplateName test1
    hashes = {
        u: desired.children[f"deploymentgrid-demo-{u}"]["spec"]["template"]["metadata"]["labels"][
            TEMPLATE_HASH_KEY
        ]
        for u in ("zone1", "zone2", "zone3")
    }
    assert hashes["zone1"] == hashes["zone3"] != hashes["zone2"]


def test_statefulsetgrid_example() -> None:
    grid = with_identity(example("03-statefulsetgrid"))
    desired = desired_children(STATEFULSET_GRID, grid, ["beijing", "guangzhou"])
    child = desired.children["statefulsetgrid-demo-guangzhou"]
    assert child["kind"] == "StatefulSet" and child["spec"]["replicas"] == 3
    assert child["spec"]["serviceName"] == "servicegrid-demo-svc"
    assert child["spec"]["template"]["spec"]["nodeSelector"] == {"location": "guangzhou"}


def test_servicegrid_is_one_service_with_compact_topology_keys() -> None:
    grid = with_identity(example("02-servicegrid"))
    grid["metadata"]["annotations"] = {"team": "edge", LAST_APPLIED: "{...}"}
    grid["metadata"]["labels"] = {"app": "echo"}
    desired = desired_children(SERVICE_GRID, grid, ["ignored"])
    assert list(desired.children) == ["servicegrid-demo-svc"]
    service = desired.children["servicegrid-demo-svc"]
    assert service["apiVersion"] == "v1" and service["kind"] == "Service"
    annotations = service["metadata"]["annotations"]
    assert annotations["topologyKeys"] == '["location"]'
    assert annotations["team"] == "edge" and LAST_APPLIED not in annotations
    assert service["metadata"]["labels"] == {
        "app": "echo",
        GRID_SELECTOR: "servicegrid-demo",
        GRID_UNIQ_KEY: "location",
    }
    assert service["metadata"]["ownerReferences"][0]["kind"] == "ServiceGrid"  # set at creation (§8 fix)
    assert service["spec"] == grid["spec"]["template"]
    assert desired.unit_of == {"servicegrid-demo-svc": GRID_WIDE}


def test_headless_servicegrid_passes_cluster_ip_none_through() -> None:
    desired = desired_children(SERVICE_GRID, with_identity(example("04-servicegrid-headless")), [])
    assert desired.children["servicegrid-demo-svc"]["spec"]["clusterIP"] == "None"


def test_grid_labels_are_copied_and_the_grid_is_not_mutated() -> None:
    grid = with_identity(example("01-deploymentgrid"))
    grid["metadata"]["labels"] = {"team": "edge"}
    grid["spec"]["template"]["template"]["spec"]["nodeSelector"] = {"disk": "ssd", "location": "wrong"}
    before = deep_copy(grid)
    desired = desired_children(DEPLOYMENT_GRID, grid, ["beijing", "guangzhou"])
    child = desired.children["deploymentgrid-demo-guangzhou"]
    assert child["metadata"]["labels"]["team"] == "edge"
    assert child["spec"]["template"]["spec"]["nodeSelector"] == {"disk": "ssd", "location": "guangzhou"}
    assert grid == before  # SuperEdge mutated the cached grid here (§2.3 quirk, §8 fix 2)


def test_missing_replicas_defaults_to_one() -> None:
    grid = with_identity(example("01-deploymentgrid"))
    del grid["spec"]["template"]["replicas"]
    assert (
        desired_children(DEPLOYMENT_GRID, grid, ["x"]).children["deploymentgrid-demo-x"]["spec"]["replicas"]
        == 1
    )


def test_render_without_uid_has_no_owner_reference() -> None:
    grid = example("01-deploymentgrid")
    child = desired_children(DEPLOYMENT_GRID, grid, ["x"]).children["deploymentgrid-demo-x"]
    assert "ownerReferences" not in child["metadata"]


def canary(templates: dict[str, str]) -> dict[str, Any]:
    grid = with_identity(example("05-deploymentgrid-canary"))
    grid["spec"]["templates"] = templates
    return grid


def test_unknown_template_is_a_problem_of_that_unit_only() -> None:
    desired = desired_children(DEPLOYMENT_GRID, canary({"zone1": "typo"}), ["zone1", "zone2"])
    assert list(desired.children) == ["deploymentgrid-demo-zone2"]
    assert desired.problems["zone1"].reason == reasons.TEMPLATE_NOT_FOUND
    assert "typo" in desired.problems["zone1"].message
    assert desired.held == {"deploymentgrid-demo-zone1"}
    assert not desired.blocked


BAD_NAMES = [
    (DEPLOYMENT_GRID, "Zone_A", "not a DNS-1123 subdomain"),
    (STATEFULSET_GRID, "zone.a", "not a DNS-1123 label"),
    (STATEFULSET_GRID, "z" * 40, "more than 52"),
]


def test_child_names_that_cannot_exist_are_problems_naming_the_unit() -> None:
    for kind, unit, text in BAD_NAMES:
        grid = with_identity(
            example("03-statefulsetgrid" if kind is STATEFULSET_GRID else "01-deploymentgrid")
        )
        desired = desired_children(kind, grid, [unit, "ok"])
        assert desired.problems[unit].reason == reasons.INVALID_CHILD_NAME
        assert text in desired.problems[unit].message
        assert [desired.unit_of[n] for n in desired.children] == ["ok"]


def test_servicegrid_name_must_leave_a_dns1035_service_name() -> None:
    grid = with_identity(example("02-servicegrid"))
    grid["metadata"]["name"] = "1grid"
    desired = desired_children(SERVICE_GRID, grid, [])
    assert desired.problems[GRID_WIDE].reason == reasons.INVALID_CHILD_NAME
    assert desired.held == {"1grid-svc"}


def test_invalid_or_empty_key_blocks_the_whole_grid() -> None:
    for key, reason in (("", reasons.EMPTY_GRID_KEY), ("bad key", reasons.INVALID_GRID_KEY)):
        grid = with_identity(example("01-deploymentgrid"))
        grid["spec"]["gridUniqKey"] = key
        desired = desired_children(DEPLOYMENT_GRID, grid, ["beijing"])
        assert desired.blocked and desired.problems[GRID_WIDE].reason == reason
        assert not desired.children


def test_prefixed_key_is_not_copied_into_the_uniq_key_label() -> None:
    grid = with_identity(example("01-deploymentgrid"))
    grid["spec"]["gridUniqKey"] = "topology.kubernetes.io/zone"
    child = desired_children(DEPLOYMENT_GRID, grid, ["z1"]).children["deploymentgrid-demo-z1"]
    assert child["metadata"]["labels"] == {GRID_SELECTOR: "deploymentgrid-demo"}  # '/' is invalid in a value
    assert child["spec"]["template"]["spec"]["nodeSelector"] == {"topology.kubernetes.io/zone": "z1"}
