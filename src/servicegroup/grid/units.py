"""Units: the distinct non-empty values of a grid's `gridUniqKey` node label. Pure.

SuperEdge lists every node carrying the key and treats the (duplicated, lister-ordered) values as
a set; we return them sorted and distinct, so everything downstream is deterministic.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, Final

from servicegroup.api.grid_crds import LABEL_KEY_PATTERN, SUBDOMAIN_MAX

_LABEL_KEY: Final = re.compile(LABEL_KEY_PATTERN)


def unit_values(nodes: Iterable[Mapping[str, Any]], key: str) -> list[str]:
    """Sorted distinct non-empty values of node label `key`."""
    values = set()
    for node in nodes:
        value = ((node.get("metadata") or {}).get("labels") or {}).get(key)
        if value:
            values.add(value)
    return sorted(values)


def label_key_problem(key: str) -> str | None:
    """Why `key` is not a usable gridUniqKey (a qualified label key), or None when it is."""
    if not key:
        return "gridUniqKey is empty"
    prefix, _, _ = key.rpartition("/")
    if not _LABEL_KEY.match(key) or len(prefix) > SUBDOMAIN_MAX:
        return (
            f"gridUniqKey {key!r} is not a valid label key: an optional DNS subdomain prefix and '/', "
            "then at most 63 characters [A-Za-z0-9-_.] starting and ending with an alphanumeric"
        )
    return None
