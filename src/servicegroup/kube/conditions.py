"""`metav1.Condition` lists: set and get with Kubernetes' lastTransitionTime rule.

`lastTransitionTime` moves only when `status` flips, so "since when is it Ready=False" stays
truthful however often the controller rewrites reason and message. Functions return new lists and
never mutate their input (it may come from the informer's read-only cache).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Final

TRUE: Final = "True"
FALSE: Final = "False"
UNKNOWN: Final = "Unknown"

Condition = dict[str, Any]


def format_time(now: datetime | None = None) -> str:
    """RFC 3339 seconds in UTC (`metav1.Time`), e.g. `2026-11-22T08:00:00Z`."""
    now = now or datetime.now(UTC)
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def get_condition(conditions: Sequence[Condition] | None, type_: str) -> Condition | None:
    """The condition of that type, or None."""
    for condition in conditions or ():
        if condition.get("type") == type_:
            return condition
    return None


def is_condition_true(conditions: Sequence[Condition] | None, type_: str) -> bool:
    """Whether the condition exists with status "True"."""
    condition = get_condition(conditions, type_)
    return condition is not None and condition.get("status") == TRUE


def set_condition(  # noqa: PLR0917 - positional order is the contract (docs/architecture.md)
    conditions: Sequence[Condition] | None,
    type_: str,
    status: str,
    reason: str,
    message: str,
    observed_generation: int | None,
    now: datetime | str | None = None,
) -> list[Condition]:
    """A new list with the condition of `type_` set (appended if new, in place otherwise).

    `now` is a datetime or an already formatted time; it is used only for a new condition or a
    status change, so setting the same values again returns an equal list (no status write).
    """
    if status not in (TRUE, FALSE, UNKNOWN):
        raise ValueError(f"condition {type_}: status must be True, False or Unknown, not {status!r}")
    old = get_condition(conditions, type_)
    if old is not None and old.get("status") == status and old.get("lastTransitionTime"):
        transition = old["lastTransitionTime"]
    else:
        transition = now if isinstance(now, str) else format_time(now)
    new: Condition = {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": transition,
    }
    if observed_generation is not None:
        new["observedGeneration"] = observed_generation
    result = [dict(c) for c in conditions or ()]
    for i, condition in enumerate(result):
        if condition.get("type") == type_:
            result[i] = new
            return result
    result.append(new)
    return result


def remove_condition(conditions: Sequence[Condition] | None, type_: str) -> list[Condition]:
    """A new list without the condition of `type_`."""
    return [dict(c) for c in conditions or () if c.get("type") != type_]
