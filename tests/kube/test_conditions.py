"""kube/conditions.py: metav1.Condition semantics (lastTransitionTime moves only on status flips)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from servicegroup.kube.conditions import (
    FALSE,
    TRUE,
    format_time,
    get_condition,
    is_condition_true,
    remove_condition,
    set_condition,
)

T1 = datetime(2026, 1, 1, 0, 0, 0, tzinfo=UTC)
T2 = datetime(2026, 1, 2, 0, 0, 0, tzinfo=UTC)


class TestConditions:
    def test_new_condition_is_appended_with_now(self) -> None:
        result = set_condition([], "Ready", TRUE, "UnitsReady", "all good", 3, T1)
        assert result == [
            {
                "type": "Ready",
                "status": "True",
                "reason": "UnitsReady",
                "message": "all good",
                "lastTransitionTime": "2026-01-01T00:00:00Z",
                "observedGeneration": 3,
            }
        ]

    def test_same_status_keeps_transition_time(self) -> None:
        first = set_condition(None, "Ready", TRUE, "A", "m1", 1, T1)
        second = set_condition(first, "Ready", TRUE, "B", "m2", 2, T2)
        assert second[0]["lastTransitionTime"] == "2026-01-01T00:00:00Z"
        assert (second[0]["reason"], second[0]["observedGeneration"]) == ("B", 2)

    def test_status_flip_moves_transition_time(self) -> None:
        first = set_condition(None, "Ready", TRUE, "A", "m", 1, T1)
        second = set_condition(first, "Ready", FALSE, "A", "m", 1, T2)
        assert second[0]["lastTransitionTime"] == "2026-01-02T00:00:00Z"

    def test_setting_identical_values_gives_an_equal_list(self) -> None:
        first = set_condition(None, "Ready", TRUE, "A", "m", 1, T1)
        assert set_condition(first, "Ready", TRUE, "A", "m", 1, T2) == first

    def test_input_is_not_mutated_and_order_is_kept(self) -> None:
        conditions = set_condition(None, "Ready", TRUE, "A", "m", 1, T1)
        conditions = set_condition(conditions, "Degraded", FALSE, "A", "m", 1, T1)
        snapshot = [dict(c) for c in conditions]
        result = set_condition(conditions, "Ready", FALSE, "B", "m", 1, T2)
        assert conditions == snapshot
        assert [c["type"] for c in result] == ["Ready", "Degraded"]

    def test_get_and_is_true(self) -> None:
        conditions = set_condition(None, "Ready", TRUE, "A", "m", None, "2026-01-01T00:00:00Z")
        assert get_condition(conditions, "Ready") is not None
        assert "observedGeneration" not in conditions[0]
        assert get_condition(conditions, "Degraded") is None
        assert is_condition_true(conditions, "Ready")
        assert not is_condition_true(conditions, "Degraded")
        assert remove_condition(conditions, "Ready") == []

    def test_invalid_status_is_rejected(self) -> None:
        with pytest.raises(ValueError, match="True, False or Unknown"):
            set_condition(None, "Ready", "yes", "A", "m", 1, T1)

    def test_format_time_is_rfc3339_utc(self) -> None:
        assert format_time(T1) == "2026-01-01T00:00:00Z"
