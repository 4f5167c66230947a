"""autoFindNodeKeys naming and hash (SuperEdge's exactly), and status computation."""

from __future__ import annotations

import hashlib

from sitesupport import node, unit

from servicegroup.site.autofind import (
    auto_selectors,
    auto_unit,
    auto_unit_patch,
    keys_hash,
    unit_name,
)
from servicegroup.site.labels import name_error
from servicegroup.site.membership import Conflict
from servicegroup.site.status import (
    common_conditions,
    condition_turned,
    lost_message,
    nodes_message,
    status_members,
    status_patch,
    unit_status,
    workload_status,
)

NOW = "2026-11-22T08:00:00Z"


def test_names_from_superedge_tests() -> None:
    assert unit_name(["eu-west-1"]) == "eu-west-1"
    nodes = [node("vm", **{"kubernetes.io/hostname": "vm-111-centos", "kubernetes.io/os": "linux"})]
    assert auto_selectors(["kubernetes.io/os", "kubernetes.io/hostname"], nodes) == {
        "vm-111-centos-linux": {"kubernetes.io/hostname": "vm-111-centos", "kubernetes.io/os": "linux"}
    }
    assert auto_selectors(["beta.kubernetes.io/os"], nodes) == {}


def test_long_or_slashed_names_become_sha1() -> None:
    long = ["x" * 64]
    assert unit_name(long) == hashlib.sha1(("x" * 64).encode()).hexdigest()
    assert unit_name(["a/b"]) == hashlib.sha1(b"a/b").hexdigest()
    assert unit_name(["x" * 63]) == "x" * 63


def test_hash_is_sha1_of_sorted_keys_without_separator() -> None:
    assert keys_hash(["b", "a"]) == hashlib.sha1(b"ab").hexdigest()


def test_auto_unit_is_type_edge_with_superedge_labels() -> None:
    u = auto_unit("zone-group", ["zone"], "a", {"zone": "a"})
    assert u["spec"] == {"type": "edge", "selector": {"matchLabels": {"zone": "a"}}}
    assert u["metadata"]["labels"] == {
        "site.superedge.io/node-group-auto-keys-hash": keys_hash(["zone"]),
        "zone-group": "nodegroups.superedge.io",
    }
    assert u["metadata"]["annotations"] == {"zone": "a"}


def test_auto_unit_patch_fixes_labels_and_match_labels_only() -> None:
    desired = auto_unit("g", ["zone"], "a", {"zone": "a"})
    assert auto_unit_patch(desired, desired) is None
    live = unit("a", labels={"mine": "x"}, selector={"matchLabels": {"zone": "b", "extra": "y"}}, nodes=["n"])
    patch = auto_unit_patch(live, desired)
    assert patch == {
        "metadata": {"labels": desired["metadata"]["labels"]},
        "spec": {"selector": {"matchLabels": {"zone": "a", "extra": None}}},
    }


def test_uppercase_names_are_reported_not_created() -> None:
    assert name_error("Beijing") is not None
    assert name_error("beijing") is None


def test_unit_status_ready_rate_and_sorted_lists() -> None:
    s = unit_status([node("b"), node("a"), node("c", ready=False)], [])
    assert s["readyRate"] == "2/3" and s["readyNodes"] == ["a", "b"] and s["notReadyNodes"] == ["c"]
    empty = unit_status([], [])
    assert empty["readyRate"] == "0/0" and "readyNodes" not in empty and "notReadyNodes" not in empty


def test_status_patch_nulls_fields_that_went_away_and_is_none_when_equal() -> None:
    live = {"status": {"readyRate": "1/1", "readyNodes": ["a"], "unitClusterStatus": {"phase": "x"}}}
    assert status_patch(live, {"readyRate": "0/0"}, ("readyRate", "readyNodes")) == {
        "status": {"readyRate": "0/0", "readyNodes": None}
    }
    assert status_patch(live, {"readyRate": "1/1", "readyNodes": ["a"]}, ("readyRate", "readyNodes")) is None


def test_conditions_keep_transition_time_and_events_fire_on_transition() -> None:
    live = {"metadata": {"generation": 1}, "status": {}}
    first = common_conditions(live, [], "lost", NOW)
    desired = {"conditions": first}
    assert condition_turned(live, desired, "Conflict", "True")
    live_after = {"metadata": {"generation": 1}, "status": {"conditions": first}}
    again = common_conditions(live_after, [], "lost", "2030-01-01T00:00:00Z")
    assert again == first
    assert not condition_turned(live_after, {"conditions": again}, "Conflict", "True")


def test_lost_message_names_group_nodes_and_winner() -> None:
    conflicts = [Conflict("location", "n1", "a", ("b",)), Conflict("location", "n2", "a", ("b", "c"))]
    message = lost_message("b", conflicts)
    assert message is not None and "location" in message and "n1, n2" in message and "NodeUnit a" in message
    assert lost_message("a", conflicts) is None


def test_workload_status_ready_when_ready_replicas_equal_replicas() -> None:
    grid = {
        "metadata": {"name": "echo", "namespace": "default"},
        "spec": {"gridUniqKey": "location"},
        "status": {
            "states": {
                "beijing": {"replicas": 2, "readyReplicas": 2},
                "guangzhou": {"replicas": 2, "readyReplicas": 1},
            }
        },
    }
    other = {"metadata": {"name": "x", "namespace": "default"}, "spec": {"gridUniqKey": "zone"}}
    result = workload_status(
        "location",
        ["beijing", "guangzhou", "shanghai"],
        [("DeploymentGrid", grid), ("DeploymentGrid", other)],
    )
    assert result == [
        {
            "workloadName": "default/echo",
            "type": "DeploymentGrid",
            "readyUnit": ["beijing"],
            "notReadyUnit": ["guangzhou", "shanghai"],
        }
    ]


def test_membership_events_batch_nodes_per_unit() -> None:
    assert status_members({"readyNodes": ["a", "b"], "notReadyNodes": ["c"]}) == {"a", "b", "c"}
    assert nodes_message("left", "u", ["a"]) == "node a left NodeUnit u"
    many = nodes_message("joined", "u", [f"n{i}" for i in range(25)])
    assert many.startswith("25 nodes joined NodeUnit u: n0, n1") and many.endswith("and 5 more")
