"""grid/placeholders.py: the syntax, its escape, what it must never touch, and per-unit errors."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from servicegroup.grid.placeholders import (
    PlaceholderError,
    UnitInfo,
    placeholders_in,
    substitute,
    substitute_text,
    uses_labels,
)

XIAN = UnitInfo("xian", {"city": "Xi'an", "tier": "gold"})

CASES = [
    ("((unit))", "xian"),
    ("cfg-((unit))", "cfg-xian"),
    ("(( unit ))", "xian"),
    ("((unit.name))", "xian"),
    ("((unit.labels['tier']))", "gold"),
    ('((unit.labels["tier"]))', "gold"),
    ("((unit.labels[ 'tier' ]))/((unit))", "gold/xian"),
    (r"\((unit))", "((unit))"),  # escaped placeholder: literal
    (r"a\b \( c", r"a\b \( c"),  # other backslashes untouched
    ("$(POD_NAME)", "$(POD_NAME)"),  # Kubernetes env expansion
    ("{{ .Values.unit }}", "{{ .Values.unit }}"),  # Helm
    ("echo $((1+2))", "echo $((1+2))"),  # shell arithmetic
    ("$((unit+1)) $((units))", "$((unit+1)) $((units))"),  # a shell variable named unit(s)
    ("", ""),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_substitution_table(text: str, expected: str) -> None:
    assert substitute_text(text, XIAN) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("((unit.labls['tier']))", "unknown placeholder"),
        ("((unit.labels[tier]))", "unknown placeholder"),
        ("((unit.labels['nope']))", "no label 'nope'"),
    ],
)
def test_bad_placeholders_are_errors(text: str, message: str) -> None:
    with pytest.raises(PlaceholderError, match=message):
        substitute_text(text, XIAN)


def test_label_placeholder_without_nodeunit_is_an_error() -> None:
    with pytest.raises(PlaceholderError, match="has no NodeUnit"):
        substitute_text("((unit.labels['tier']))", UnitInfo("hebei"))
    assert substitute_text("((unit))", UnitInfo("hebei")) == "hebei"


def test_substitute_walks_values_not_keys() -> None:
    value = {"((unit))": ["((unit))", 3, None, {"k": "x-((unit))"}], "n": True}
    assert substitute(value, XIAN) == {"((unit))": ["xian", 3, None, {"k": "x-xian"}], "n": True}


def test_placeholders_in_and_uses_labels() -> None:
    value = {"a": ["((unit))", r"\((unit.labels['x']))"], "b": "((unit.labels['tier']))"}
    assert placeholders_in(value) == {"unit", "unit.labels['tier']"}
    assert uses_labels(value)
    assert not uses_labels({"a": "((unit))", "b": r"\((unit.labels['x']))"})


_TEXT = st.text(alphabet=st.characters(blacklist_characters="\\"), max_size=40)


@given(_TEXT)
def test_text_without_a_placeholder_is_unchanged(text: str) -> None:
    if "((" not in text or "unit" not in text:
        assert substitute_text(text, XIAN) == text


@given(st.lists(st.sampled_from(["((unit))", "-", "$(X)", "{{y}}", "((1+2))", "a"]), max_size=12))
def test_every_placeholder_and_only_those_is_replaced(parts: list[str]) -> None:
    text = "".join(parts)
    assert substitute_text(text, XIAN) == "".join("xian" if p == "((unit))" else p for p in parts)
