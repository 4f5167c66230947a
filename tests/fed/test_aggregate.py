"""The control grid's status from member copies (pure)."""

from __future__ import annotations

from typing import Any

from grid.support import example, with_identity
from servicegroup.fed import reasons
from servicegroup.fed.aggregate import Federation, aggregate_status
from servicegroup.fed.distribute import FED_BY_KIND
from servicegroup.grid.desired import Problem
from servicegroup.kube.conditions import get_condition

Obj = dict[str, Any]
NOW = "2026-11-22T10:00:00Z"
DG = FED_BY_KIND["DeploymentGrid"]


def copy(states: dict[str, Obj], *, ready: bool = True, observed: int = 3) -> Obj:
    return {
        "metadata": {"generation": 3},
        "status": {
            "observedGeneration": observed,
            "states": states,
            "readyUnits": len(states) if ready else 0,
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


def state(ready: int) -> Obj:
    return {"replicas": ready, "readyReplicas": ready}


def cond(status: Obj, type_: str) -> tuple[str, str, str]:
    found = get_condition(status["conditions"], type_)
    assert found is not None
    return found["status"], found["reason"], found["message"]


def grid() -> Obj:
    return with_identity(example("06-deploymentgrid-fed"), generation=5)


def test_states_come_from_the_member_holding_each_unit() -> None:
    fed = Federation(
        holdings={"a": ["zone1"], "b": ["zone2"], "c": []},
        # a still reports a zone2 state from before zone2 moved: it is not a holder of zone2
        copies={"a": copy({"zone1": state(2), "zone2": state(9)}), "b": copy({"zone2": state(3)})},
    )
    status = aggregate_status(DG, grid(), fed, now=NOW)
    assert status["states"] == {"zone1": state(2), "zone2": state(3)}
    assert status["clusters"] == {"zone1": "a", "zone2": "b"}
    assert (status["units"], status["readyUnits"], status["observedGeneration"]) == (2, 2, 5)
    assert cond(status, "Ready") == ("True", "UnitsReady", "2/2 units ready in 2 member clusters")
    assert cond(status, reasons.DISTRIBUTED) == ("True", reasons.COPIES_IN_SYNC, "a: zone1; b: zone2")
    assert cond(status, reasons.MEMBERS_REACHABLE) == ("True", reasons.ALL_REACHABLE, "3 members reachable")
    assert cond(status, "Degraded")[0] == "False"


def test_unreachable_member_keeps_its_last_state_and_is_named() -> None:
    fed = Federation(
        holdings={"a": ["zone1"], "b": ["zone2"]},
        copies={"a": copy({"zone1": state(2)}), "b": copy({"zone2": state(3)})},
        unreachable=["b"],
        pending=["b"],
    )
    status = aggregate_status(DG, grid(), fed, now=NOW)
    assert status["states"]["zone2"] == state(3)
    assert cond(status, reasons.MEMBERS_REACHABLE) == (
        "False",
        reasons.MEMBERS_UNREACHABLE,
        "unreachable (last known state kept): b",
    )
    assert cond(status, reasons.DISTRIBUTED) == ("False", reasons.COPIES_PENDING, "not current in: b")
    assert cond(status, "Ready") == (
        "False",
        "UnitsNotReady",
        "1/2 units ready in 2 member clusters; waiting for: b",
    )


def test_a_copy_not_yet_observed_is_not_ready() -> None:
    fed = Federation(holdings={"a": ["zone1"]}, copies={"a": copy({"zone1": state(2)}, observed=2)})
    status = aggregate_status(DG, grid(), fed, now=NOW)
    assert status["readyUnits"] == 0
    assert cond(status, "Ready")[0] == "False"


def test_no_member_holding_a_unit() -> None:
    status = aggregate_status(DG, grid(), Federation(holdings={"a": []}, copies={}), now=NOW)
    assert cond(status, "Ready") == (
        "False",
        "NoUnits",
        "no member cluster has a node with a non-empty label zone",
    )
    assert cond(status, reasons.DISTRIBUTED)[1] == reasons.NO_MEMBERS
    assert status["units"] == 0


def test_problems_and_split_units_degrade() -> None:
    fed = Federation(
        holdings={"a": ["zone1"], "b": ["zone1"]},
        copies={"a": copy({"zone1": state(2)})},
        problems={"b": Problem(reasons.COPY_NOT_OWNED, "not ours")},
    )
    status = aggregate_status(DG, grid(), fed, now=NOW)
    assert cond(status, "Degraded") == (
        "True",
        reasons.COPY_NOT_OWNED,
        "b: not ours; unit zone1 is held by a, b",
    )
    assert status["clusters"] == {"zone1": "a"}


def test_service_grid_has_conditions_only() -> None:
    sg = with_identity(example("02-servicegrid"))
    fed = Federation(holdings={"a": ["x"], "b": ["y"]}, copies={"a": copy({}), "b": copy({}, ready=False)})
    status = aggregate_status(FED_BY_KIND["ServiceGrid"], sg, fed, now=NOW)
    assert "states" not in status and "clusters" not in status
    assert cond(status, "Ready") == ("False", "UnitsNotReady", "ready in 1/2 member clusters; waiting for: b")


def test_unchanged_federation_gives_an_equal_status() -> None:
    fed = Federation(holdings={"a": ["zone1"]}, copies={"a": copy({"zone1": state(2)})})
    first = aggregate_status(DG, grid(), fed, now=NOW)
    again = aggregate_status(DG, {**grid(), "status": first}, fed, now="2030-01-01T00:00:00Z")
    assert again == first
