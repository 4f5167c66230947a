"""NodeGroup `autoFindNodeKeys`: one NodeUnit per distinct combination of node label values. Pure.

Names and the hash label are SuperEdge's exactly, so existing auto-created units are adopted:
the unit for values `[v1, v2]` (in sorted-key order) is `"v1-v2"`, or `hex(sha1(name))` when that
contains `/` or is 64 characters or longer; the units carry
`site.superedge.io/node-group-auto-keys-hash: hex(sha1("".join(sorted(keys))))` and
`<group>: nodegroups.superedge.io`. Fixed SuperEdge bug: `spec.type` is `edge` (SuperEdge wrote the
unit *name* constant `unit-node-edge`). Unlike SuperEdge, the unit carries no `setNode.labels`:
the membership and `<group>=<unit>` node labels are derived from group membership, so deleting
the group cleans its node labels without editing the unit's spec.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from servicegroup.api.labels import NODEGROUP_AUTO_KEYS_HASH, NODEGROUP_MEMBER_VALUE, SITE_API_VERSION
from servicegroup.kube.objects import labels_of

Obj = dict[str, Any]


def keys_hash(keys: Iterable[str]) -> str:
    """SuperEdge's hash of the key set: sha1 of the sorted keys concatenated with no separator."""
    return hashlib.sha1("".join(sorted(keys)).encode()).hexdigest()


def unit_name(values: Sequence[str]) -> str:
    """SuperEdge's unit name for label values in sorted-key order."""
    name = "-".join(values)
    if "/" in name or len(name) >= 64:
        return hashlib.sha1(name.encode()).hexdigest()
    return name


def auto_selectors(keys: Sequence[str], nodes: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, str]]:
    """`{unit name: matchLabels}` for every distinct value combination among nodes having all `keys`."""
    ordered = sorted(set(keys))
    result: dict[str, dict[str, str]] = {}
    for node in nodes:
        labels = labels_of(node)
        if all(key in labels for key in ordered):
            selector = {key: labels[key] for key in ordered}
            result[unit_name([selector[key] for key in ordered])] = selector
    return result


def auto_unit(group: str, keys: Sequence[str], name: str, selector: Mapping[str, str]) -> Obj:
    """The NodeUnit SuperEdge creates for one value combination (with `type: edge`)."""
    return {
        "apiVersion": SITE_API_VERSION,
        "kind": "NodeUnit",
        "metadata": {
            "name": name,
            "labels": {NODEGROUP_AUTO_KEYS_HASH: keys_hash(keys), group: NODEGROUP_MEMBER_VALUE},
            "annotations": dict(selector),
        },
        "spec": {"type": "edge", "selector": {"matchLabels": dict(selector)}},
    }


def auto_unit_patch(live: Mapping[str, Any], desired: Mapping[str, Any]) -> Obj | None:
    """Merge patch bringing an existing unit's labels and matchLabels to the auto unit's, or None.

    Only our labels are set; `matchLabels` is made exactly equal (extra keys are nulled), as
    SuperEdge replaces it. Other fields of a unit someone else created are left alone.
    """
    patch: Obj = {}
    live_labels = labels_of(live)
    labels = {k: v for k, v in labels_of(desired).items() if live_labels.get(k) != v}
    if labels:
        patch["metadata"] = {"labels": labels}
    want = desired["spec"]["selector"]["matchLabels"]
    have = ((live.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    if have != want:
        change: dict[str, str | None] = {k: v for k, v in want.items() if have.get(k) != v}
        change.update({k: None for k in have if k not in want})
        patch["spec"] = {"selector": {"matchLabels": change}}
    return patch or None
