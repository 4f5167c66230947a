"""units.py: distinct unit values from nodes, and which gridUniqKeys are valid label keys."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from grid.support import node
from servicegroup.grid.units import label_key_problem, unit_values


def test_unit_values_are_distinct_sorted_and_non_empty() -> None:
    nodes = [
        node("a", zone="z2"),
        node("b", zone="z1"),
        node("c", zone="z2"),
        node("d", zone=""),
        node("e", other="z9"),
        {"metadata": {"name": "f"}},
    ]
    assert unit_values(nodes, "zone") == ["z1", "z2"]


@given(st.lists(st.sampled_from(["a", "b", "c", ""]), max_size=20))
def test_unit_values_is_the_set_of_non_empty_values(values: list[str]) -> None:
    nodes = [node(f"n{i}", key=value) for i, value in enumerate(values)]
    assert unit_values(nodes, "key") == sorted({v for v in values if v})


VALID_KEYS = ["location", "zone", "a.b/c", "example.com/zone", "A_b.c-9", "x" * 63, "a" * 253 + "/b"]
INVALID_KEYS = ["", "-zone", "zone-", "a/b/c", "a b", "x" * 64, "Example.com/zone", "a" * 254 + "/b", "/zone"]


@pytest.mark.parametrize("key", VALID_KEYS, ids=lambda k: k[:20])
def test_valid_label_keys(key: str) -> None:
    assert label_key_problem(key) is None


@pytest.mark.parametrize("key", INVALID_KEYS, ids=lambda k: k[:20] or "empty")
def test_invalid_label_keys_are_explained(key: str) -> None:
    problem = label_key_problem(key)
    assert problem is not None and "gridUniqKey" in problem
