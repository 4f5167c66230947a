"""Unit placeholders in template strings: `((unit))`, `((unit.labels['key']))`. Pure.

The syntax is chosen so it cannot collide with what already lives in pod templates: Kubernetes
expands `$(VAR)` in command, args and env values, Helm renders `{{ }}` before we ever see the
object, and shells use `$((expr))` for arithmetic. A placeholder is `((` + `unit` + an optional
`.name` / `.labels['key']` (or `["key"]`) + `))`, spaces allowed inside the parentheses; anything
else between `((unit.` and `))` is an error naming the placeholder. `$((units + 1))` or
`$((unit+1))` are not placeholders and stay as they are. A backslash escapes one placeholder:
`\\((unit))` yields the literal text `((unit))`; a backslash anywhere else is left alone.

`((unit.labels['key']))` reads the labels of the unit's NodeUnit (site.superedge.io, named like the
unit); a unit without a NodeUnit, or a NodeUnit without that label, is an error for that unit only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

_PLACEHOLDER: Final = re.compile(r"(\\?)\(\(\s*unit(?:\.([^()]*?))?\s*\)\)")
_LABEL: Final = re.compile(r"""^labels\[\s*(?:'([^']*)'|"([^"]*)")\s*\]$""")
MARKER: Final = "(("  # cheap pre-check: no marker, no placeholder


class PlaceholderError(ValueError):
    """A placeholder that is unknown, or that this unit cannot fill."""


@dataclass(frozen=True)
class UnitInfo:
    """What placeholders and override selectors know about a unit."""

    name: str
    labels: Mapping[str, str] | None = field(default=None)  # its NodeUnit's labels; None = no NodeUnit


def substitute_text(text: str, unit: UnitInfo) -> str:
    """`text` with every placeholder replaced by the unit's value (PlaceholderError if impossible)."""
    if MARKER not in text:
        return text
    return _PLACEHOLDER.sub(lambda match: _value(match, unit), text)


def substitute(value: Any, unit: UnitInfo) -> Any:
    """Every string of a JSON value (not map keys) substituted; unchanged parts are shared."""
    if isinstance(value, str):
        return substitute_text(value, unit)
    if isinstance(value, dict):
        return {key: substitute(item, unit) for key, item in value.items()}
    if isinstance(value, list):
        return [substitute(item, unit) for item in value]
    return value


def placeholders_in(value: Any) -> set[str]:
    """The placeholder expressions (`unit`, `unit.labels['k']`, ...) used anywhere in a JSON value."""
    found: set[str] = set()
    if isinstance(value, str):
        if MARKER in value:
            found.update(
                "unit" + (f".{m.group(2).strip()}" if m.group(2) is not None else "")
                for m in _PLACEHOLDER.finditer(value)
                if not m.group(1)
            )
    elif isinstance(value, dict):
        for item in value.values():
            found |= placeholders_in(item)
    elif isinstance(value, list):
        for item in value:
            found |= placeholders_in(item)
    return found


def uses_labels(value: Any) -> bool:
    """Does a JSON value use a NodeUnit label placeholder (so NodeUnit changes matter to it)?"""
    return any(expr.startswith("unit.labels") for expr in placeholders_in(value))


def _value(match: re.Match[str], unit: UnitInfo) -> str:
    if match.group(1):  # escaped: the placeholder text itself, without the backslash
        return match.group(0)[1:]
    path = match.group(2)
    if path is None or path.strip() == "name":
        return unit.name
    label = _LABEL.match(path.strip())
    if label is None:
        raise PlaceholderError(
            f"unknown placeholder {match.group(0)!r}: use ((unit)), ((unit.name)) or ((unit.labels['key']))"
        )
    key = label.group(1) if label.group(1) is not None else label.group(2)
    if unit.labels is None:
        raise PlaceholderError(f"placeholder {match.group(0)!r}: unit {unit.name} has no NodeUnit")
    if key not in unit.labels:
        raise PlaceholderError(f"placeholder {match.group(0)!r}: NodeUnit {unit.name} has no label {key!r}")
    return unit.labels[key]
