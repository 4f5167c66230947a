"""plan.py: converged grids plan nothing; drift, hash and replicas changes update; not-ours is a
conflict; only children we control and no longer want are deleted; problems never delete."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from grid.support import example, with_identity
from servicegroup.grid.desired import Desired, desired_children
from servicegroup.grid.kinds import DEPLOYMENT_GRID, SERVICE_GRID, STATEFULSET_GRID, GridKind
from servicegroup.grid.plan import needs_update, plan_children, updated_child
from servicegroup.kube.objects import deep_copy
from servicegroup.sandbox.defaults import apply_defaults

UID = "uid-1"


def live_from(child: dict[str, Any], rv: str = "10") -> dict[str, Any]:
    """What the API server would store for `child`: server defaults, identity, status."""
    live = deep_copy(child)
    group = live["apiVersion"].rpartition("/")[0]
    apply_defaults(group, live["kind"], live)
    live["metadata"].update(resourceVersion=rv, uid=f"child-{live['metadata']['name']}", generation=1)
    if live["kind"] == "Service":
        live["spec"].setdefault("clusterIP", "10.96.0.10")
        live["spec"].setdefault("clusterIPs", ["10.96.0.10"])
    return live


def converged(kind: GridKind, example_name: str, units: list[str]) -> tuple[Desired, dict[str, Any]]:
    desired = desired_children(kind, with_identity(example(example_name), uid=UID), units)
    return desired, {name: live_from(child) for name, child in desired.children.items()}


CASES = [
    (DEPLOYMENT_GRID, "01-deploymentgrid", ["beijing", "guangzhou"]),
    (DEPLOYMENT_GRID, "05-deploymentgrid-canary", ["zone1", "zone2", "zone3"]),
    (STATEFULSET_GRID, "03-statefulsetgrid", ["beijing", "guangzhou"]),
    (SERVICE_GRID, "02-servicegrid", []),
    (SERVICE_GRID, "04-servicegrid-headless", []),
]


def test_converged_grids_plan_nothing_despite_server_defaults() -> None:
    for kind, name, units in CASES:
        desired, live = converged(kind, name, units)
        plan = plan_children(desired, live, UID)
        assert plan.empty and not plan.conflicts, name


def test_missing_child_is_created() -> None:
    desired, live = converged(DEPLOYMENT_GRID, "01-deploymentgrid", ["beijing", "guangzhou"])
    del live["deploymentgrid-demo-guangzhou"]
    plan = plan_children(desired, live, UID)
    assert [c["metadata"]["name"] for c in plan.create] == ["deploymentgrid-demo-guangzhou"]
    assert not plan.update and not plan.delete


def grid_with(mutate: Any) -> Desired:
    grid = with_identity(example("01-deploymentgrid"), uid=UID)
    mutate(grid["spec"]["template"])
    return desired_children(DEPLOYMENT_GRID, grid, ["beijing", "guangzhou"])


def test_template_change_updates_every_child_with_the_live_resource_version() -> None:
    _, live = converged(DEPLOYMENT_GRID, "01-deploymentgrid", ["beijing", "guangzhou"])
    desired = grid_with(lambda t: t["template"]["spec"]["containers"][0].update(image="echo:9"))
    plan = plan_children(desired, live, UID)
    assert [c["metadata"]["name"] for c in plan.update] == sorted(live)
    body = plan.update[0]
    assert body["metadata"]["resourceVersion"] == "10"
    assert body["spec"]["template"]["spec"]["containers"][0]["image"] == "echo:9"


def test_removing_a_template_field_updates_through_the_hash() -> None:
    grid = with_identity(example("01-deploymentgrid"), uid=UID)
    grid["spec"]["template"]["minReadySeconds"] = 5
    before = desired_children(DEPLOYMENT_GRID, grid, ["beijing"])
    live = {n: live_from(c) for n, c in before.children.items()}
    del grid["spec"]["template"]["minReadySeconds"]
    after = desired_children(DEPLOYMENT_GRID, grid, ["beijing"])
    assert len(plan_children(after, live, UID).update) == 1  # DeepContains alone would miss this


def test_replicas_change_including_to_zero_updates() -> None:
    for replicas in (5, 0):
        _, live = converged(DEPLOYMENT_GRID, "01-deploymentgrid", ["beijing", "guangzhou"])
        desired = grid_with(lambda t, r=replicas: t.update(replicas=r))
        plan = plan_children(desired, live, UID)
        assert {c["spec"]["replicas"] for c in plan.update} == {replicas}


def test_hand_edit_of_a_field_we_set_is_reverted_and_extra_fields_are_tolerated() -> None:
    desired, live = converged(DEPLOYMENT_GRID, "01-deploymentgrid", ["beijing"])
    child = live["deploymentgrid-demo-beijing"]
    child["metadata"]["labels"]["added-by-user"] = "yes"
    child["metadata"]["annotations"] = {"deployment.kubernetes.io/revision": "1"}
    assert plan_children(desired, live, UID).empty
    child["spec"]["template"]["spec"]["containers"][0]["image"] = "hacked"
    plan = plan_children(desired, live, UID)
    assert len(plan.update) == 1
    assert plan.update[0]["metadata"]["labels"]["added-by-user"] == "yes"
    assert plan.update[0]["spec"]["template"]["spec"]["containers"][0]["image"] == "superedge/echoserver:2.2"


def test_removed_grid_label_on_a_child_is_restored() -> None:
    desired, live = converged(DEPLOYMENT_GRID, "01-deploymentgrid", ["beijing"])
    del live["deploymentgrid-demo-beijing"]["metadata"]["labels"]["superedge.io/grid-selector"]
    assert needs_update(live["deploymentgrid-demo-beijing"], desired.children["deploymentgrid-demo-beijing"])


def test_child_not_controlled_by_the_grid_is_a_conflict_and_never_touched() -> None:
    desired, live = converged(DEPLOYMENT_GRID, "01-deploymentgrid", ["beijing", "guangzhou"])
    for name, owners in (
        ("deploymentgrid-demo-beijing", []),
        ("deploymentgrid-demo-guangzhou", [{"uid": "other", "controller": True}]),
    ):
        live[name]["metadata"]["ownerReferences"] = owners
        live[name]["spec"]["replicas"] = 9
    plan = plan_children(desired, live, UID)
    assert plan.conflicts == ["deploymentgrid-demo-beijing", "deploymentgrid-demo-guangzhou"]
    assert plan.empty


def test_vanished_unit_child_is_deleted_but_held_and_blocked_ones_are_not() -> None:
    grid = with_identity(example("05-deploymentgrid-canary"), uid=UID)
    desired = desired_children(DEPLOYMENT_GRID, grid, ["zone1", "zone2", "gone"])
    live = {n: live_from(c) for n, c in desired.children.items()}
    shrunk = desired_children(DEPLOYMENT_GRID, grid, ["zone1", "zone2"])
    assert [c["metadata"]["name"] for c in plan_children(shrunk, live, UID).delete] == [
        "deploymentgrid-demo-gone"
    ]
    grid["spec"]["templates"]["zone1"] = "typo"  # the schema forbids it; with SuperEdge's CRD it can happen
    typo = desired_children(DEPLOYMENT_GRID, grid, ["zone1", "zone2", "gone"])
    plan = plan_children(typo, live, UID)
    assert plan.empty, "a typo must not delete or change the unit's running child"
    grid["spec"]["gridUniqKey"] = ""
    assert plan_children(desired_children(DEPLOYMENT_GRID, grid, []), live, UID).empty


def test_in_flight_and_terminating_children_are_left_alone() -> None:
    desired, live = converged(DEPLOYMENT_GRID, "01-deploymentgrid", ["beijing", "guangzhou"])
    del live["deploymentgrid-demo-beijing"]
    live["deploymentgrid-demo-guangzhou"]["spec"]["replicas"] = 7
    live["deploymentgrid-demo-guangzhou"]["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    assert plan_children(desired, live, UID, in_flight={"deploymentgrid-demo-beijing"}).empty


def test_service_update_keeps_allocated_ip_and_node_ports() -> None:
    grid = with_identity(example("02-servicegrid"), uid=UID)
    grid["spec"]["template"]["type"] = "NodePort"
    desired = desired_children(SERVICE_GRID, grid, [])
    live = live_from(desired.children["servicegrid-demo-svc"])
    live["spec"]["ports"][0]["nodePort"] = 30080
    grid["spec"]["template"]["ports"][0]["targetPort"] = 9090
    want = desired_children(SERVICE_GRID, grid, []).children["servicegrid-demo-svc"]
    assert needs_update(live, want)
    body = updated_child(live, want)
    assert body["spec"]["clusterIP"] == "10.96.0.10" and body["spec"]["clusterIPs"] == ["10.96.0.10"]
    assert body["spec"]["ports"][0] == {"protocol": "TCP", "port": 80, "targetPort": 9090, "nodePort": 30080}
    assert body["metadata"]["annotations"]["topologyKeys"] == '["location"]'


UNIT_SETS = st.sets(st.sampled_from(["a", "b", "c", "d", "e", "f"]), max_size=6)


@settings(max_examples=50, deadline=None)
@given(before=UNIT_SETS, after=UNIT_SETS)
def test_plan_creates_new_units_deletes_vanished_ones_and_nothing_else(
    before: set[str], after: set[str]
) -> None:
    grid = with_identity(example("01-deploymentgrid"), uid=UID)
    old = desired_children(DEPLOYMENT_GRID, grid, sorted(before))
    live = {name: live_from(child) for name, child in old.children.items()}
    plan = plan_children(desired_children(DEPLOYMENT_GRID, grid, sorted(after)), live, UID)
    assert [c["metadata"]["name"] for c in plan.create] == [
        f"deploymentgrid-demo-{u}" for u in sorted(after - before)
    ]
    assert [c["metadata"]["name"] for c in plan.delete] == [
        f"deploymentgrid-demo-{u}" for u in sorted(before - after)
    ]
    assert not plan.update and not plan.conflicts
