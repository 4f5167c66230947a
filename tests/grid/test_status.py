"""status.py: SuperEdge's per-unit states, counts for the printer columns, and the conditions."""

from __future__ import annotations

from typing import Any

from grid.support import example, with_identity
from servicegroup.grid import reasons
from servicegroup.grid.desired import desired_children
from servicegroup.grid.kinds import DEPLOYMENT_GRID, SERVICE_GRID, STATEFULSET_GRID
from servicegroup.grid.status import collect_problems, grid_status, unit_state
from servicegroup.kube.conditions import get_condition

UID = "uid-1"
NOW = "2026-11-22T08:00:00Z"
LATER = "2026-11-22T09:00:00Z"

AVAILABLE = {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"}
PROGRESSING = {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}


def deployment(name: str, *, ready: int, replicas: int = 2, owner: str = UID) -> dict[str, Any]:
    return {
        "kind": "Deployment",
        "metadata": {"name": name, "generation": 2, "ownerReferences": [{"uid": owner, "controller": True}]},
        "spec": {"replicas": replicas, "template": {}},
        "status": {
            "observedGeneration": 2,
            "replicas": replicas,
            "updatedReplicas": replicas,
            "readyReplicas": ready,
            "availableReplicas": ready,
            "conditions": [PROGRESSING, AVAILABLE],
        },
    }


def status_for(
    live: dict[str, Any],
    units: list[str],
    grid: dict[str, Any] | None = None,
    now: str = NOW,
    conflicts: list[str] | None = None,
) -> dict[str, Any]:
    grid = grid or with_identity(example("01-deploymentgrid"), uid=UID, generation=3)
    desired = desired_children(DEPLOYMENT_GRID, grid, units)
    problems = collect_problems(DEPLOYMENT_GRID, "deploymentgrid-demo", desired, conflicts or [])
    return grid_status(
        DEPLOYMENT_GRID, grid, desired, live, problems=problems, conflicts=conflicts or [], now=now
    )


def test_deployment_state_is_superedge_filtdgstatus() -> None:
    state = unit_state(DEPLOYMENT_GRID, deployment("x", ready=1))
    assert state == {"replicas": 2, "readyReplicas": 1, "conditions": [AVAILABLE]}
    assert unit_state(DEPLOYMENT_GRID, {"status": {}}) == {}


def test_statefulset_state_is_the_whole_status() -> None:
    child = {
        "status": {
            "replicas": 3,
            "readyReplicas": 3,
            "currentRevision": "r1",
            "updateRevision": "r1",
            "collisionCount": 0,
        }
    }
    assert unit_state(STATEFULSET_GRID, child) == child["status"]


def test_all_units_ready() -> None:
    live = {
        f"deploymentgrid-demo-{u}": deployment(f"deploymentgrid-demo-{u}", ready=2)
        for u in ("beijing", "guangzhou")
    }
    status = status_for(live, ["beijing", "guangzhou"])
    assert status["units"] == 2 and status["readyUnits"] == 2 and status["observedGeneration"] == 3
    assert set(status["states"]) == {"beijing", "guangzhou"}
    conditions = status["conditions"]
    assert get_condition(conditions, reasons.READY)["status"] == "True"  # type: ignore[index]
    assert get_condition(conditions, reasons.PROGRESSING)["status"] == "False"  # type: ignore[index]
    assert get_condition(conditions, reasons.DEGRADED)["status"] == "False"  # type: ignore[index]
    assert all(c["observedGeneration"] == 3 for c in conditions)


def test_missing_or_unready_units_are_progressing_and_named() -> None:
    live = {"deploymentgrid-demo-beijing": deployment("deploymentgrid-demo-beijing", ready=1)}
    status = status_for(live, ["beijing", "guangzhou"])
    assert status["readyUnits"] == 0 and list(status["states"]) == ["beijing"]
    ready = get_condition(status["conditions"], reasons.READY)
    assert ready is not None and ready["status"] == "False" and "beijing, guangzhou" in ready["message"]


def test_status_is_stable_so_a_resync_writes_nothing() -> None:
    live = {"deploymentgrid-demo-beijing": deployment("deploymentgrid-demo-beijing", ready=2)}
    first = status_for(live, ["beijing"])
    grid = with_identity(example("01-deploymentgrid"), uid=UID, generation=3)
    grid["status"] = first
    assert status_for(live, ["beijing"], grid=grid, now=LATER) == first


def test_conflict_sets_child_conflict_and_degraded_naming_the_unit() -> None:
    live = {
        "deploymentgrid-demo-beijing": deployment(
            "deploymentgrid-demo-beijing", ready=2, owner="someone-else"
        )
    }
    status = status_for(live, ["beijing"], conflicts=["deploymentgrid-demo-beijing"])
    conflict = get_condition(status["conditions"], reasons.CHILD_CONFLICT)
    degraded = get_condition(status["conditions"], reasons.DEGRADED)
    assert (
        conflict is not None
        and conflict["status"] == "True"
        and "deploymentgrid-demo-beijing" in conflict["message"]
    )
    assert (
        degraded is not None
        and degraded["reason"] == reasons.CHILD_NOT_OWNED
        and "unit beijing" in degraded["message"]
    )
    assert status["states"] == {} and status["readyUnits"] == 0


def test_no_units_is_not_ready() -> None:
    ready = get_condition(status_for({}, [])["conditions"], reasons.READY)
    assert ready is not None and ready["reason"] == reasons.NO_UNITS and "location" in ready["message"]


def test_servicegrid_ready_when_its_service_exists() -> None:
    grid = with_identity(example("02-servicegrid"), uid=UID)
    desired = desired_children(SERVICE_GRID, grid, [])
    service = {
        "metadata": {"name": "servicegrid-demo-svc", "ownerReferences": [{"uid": UID, "controller": True}]},
        "spec": {},
    }
    status = grid_status(SERVICE_GRID, grid, desired, {"servicegrid-demo-svc": service}, problems={}, now=NOW)
    assert "states" not in status and "units" not in status
    assert get_condition(status["conditions"], reasons.READY)["status"] == "True"  # type: ignore[index]
