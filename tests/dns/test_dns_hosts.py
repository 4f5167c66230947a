"""render_hosts / format_hosts: which names a node's hosts file holds (pure table tests).

Covers SuperEdge §4's concern rules, the fixed name mapping (prefix stripping, prefixed keys),
foreign objects, pod IP rules and ordering. Not covered here: I/O (test_dns_writer) and watches
(test_dns_daemon).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from dns_support import GRID, SERVICE, fqdn, pod, service, statefulset, statefulset_grid

from servicegroup.api.labels import GRID_SELECTOR, GRID_UNIQ_KEY
from servicegroup.dns.hosts import HostEntry, format_hosts, render_hosts

Obj = dict[str, Any]
BEIJING = {"location": "beijing", "kubernetes.io/hostname": "bj-1"}


def world(unit: str = "beijing", **grid_kw: Any) -> tuple[Obj, Obj, list[Obj], Obj]:
    """A grid, its StatefulSet for `unit`, three pods with IPs, and its Service."""
    grid = statefulset_grid(**grid_kw)
    sts = statefulset(grid, unit)
    pods = [pod(sts, i, f"10.244.1.{10 + i}") for i in range(3)]
    svc = service(name=grid["spec"]["template"]["serviceName"], key=grid["spec"]["gridUniqKey"])
    return grid, sts, pods, svc


def names(entries: list[HostEntry]) -> list[tuple[str, str]]:
    return [(e.ip, e.fqdn) for e in entries]


def render(
    node_labels: dict[str, str], grid: Obj, sts: Obj, pods: list[Obj], svc: Obj
) -> list[tuple[str, str]]:
    return names(
        render_hosts(node_labels=node_labels, statefulsets=[sts], pods=pods, services=[svc], grids=[grid])
    )


DEMO_LINES = [("10.244.1.10", fqdn(0)), ("10.244.1.11", fqdn(1)), ("10.244.1.12", fqdn(2))]


class TestNames:
    def test_maps_each_ordinal_of_the_local_unit(self) -> None:
        assert render(BEIJING, *world()) == DEMO_LINES

    def test_other_unit_sees_nothing_of_this_unit(self) -> None:
        assert render({"location": "guangzhou"}, *world()) == []

    def test_node_without_the_grid_key_sees_nothing(self) -> None:
        assert render({"region": "north"}, *world()) == []

    def test_unit_value_inside_grid_name_strips_only_the_prefix(self) -> None:
        # SuperEdge cut the first occurrence of "bc" in "abcx-bc-0" and produced "ax-bc-0".
        grid, sts, pods, svc = world("bc", name="abcx")
        assert render({"location": "bc"}, grid, sts, pods, svc) == [
            ("10.244.1.10", fqdn(0, grid="abcx")),
            ("10.244.1.11", fqdn(1, grid="abcx")),
            ("10.244.1.12", fqdn(2, grid="abcx")),
        ]

    def test_prefixed_grid_key(self) -> None:
        grid, sts, pods, svc = world("zone-a", key="example.com/zone")
        assert render({"example.com/zone": "zone-a"}, grid, sts, pods, svc) == DEMO_LINES

    def test_regex_metacharacters_in_names_are_literal(self) -> None:
        # "a.b" would match "axb" in SuperEdge's unescaped regex.
        grid, sts, pods, svc = world("a.b")
        sts["metadata"]["name"] = f"{GRID}-a.b"
        pods = [pod(sts, 0, "10.0.0.1")]
        assert render({"location": "a.b"}, grid, sts, pods, svc) == [("10.0.0.1", fqdn(0))]
        assert render({"location": "axb"}, grid, sts, pods, svc) == []

    def test_custom_cluster_domain(self) -> None:
        _, sts, pods, svc = world()
        entries = render_hosts(
            node_labels=BEIJING,
            statefulsets=[sts],
            pods=pods[:1],
            services=[svc],
            cluster_domain="edge.local.",
        )
        assert [e.fqdn for e in entries] == [f"{GRID}-0.{SERVICE}.default.svc.edge.local"]

    def test_entries_are_sorted_by_numeric_ordinal(self) -> None:
        _, sts, _, svc = world()
        pods = [pod(sts, i, f"10.0.0.{i + 1}") for i in (10, 2, 1)]
        assert [
            e.ordinal
            for e in render_hosts(node_labels=BEIJING, statefulsets=[sts], pods=pods, services=[svc])
        ] == [
            1,
            2,
            10,
        ]

    def test_input_order_does_not_change_output(self) -> None:
        grid, sts, pods, svc = world()
        other_grid, other_sts, other_pods, other_svc = world(name="other", service="other-svc")
        forward = render_hosts(
            node_labels=BEIJING,
            statefulsets=[sts, other_sts],
            pods=pods + other_pods,
            services=[svc, other_svc],
            grids=[grid, other_grid],
        )
        backward = render_hosts(
            node_labels=BEIJING,
            statefulsets=[other_sts, sts],
            pods=list(reversed(pods + other_pods)),
            services=[other_svc, svc],
            grids=[other_grid, grid],
        )
        assert forward == backward
        assert len(forward) == 6

    def test_dual_stack_pod_gets_both_families(self) -> None:
        grid, sts, _, svc = world()
        dual = pod(sts, 0, "10.0.0.1")
        dual["status"]["podIPs"] = [{"ip": "10.0.0.1"}, {"ip": "fd00::0001"}]
        assert render(BEIJING, grid, sts, [dual], svc) == [("10.0.0.1", fqdn(0)), ("fd00::1", fqdn(0))]


def _mutate(path: str, value: Any) -> Callable[[Obj], None]:
    """Set a dotted path (`metadata.labels.x`) to `value`, deleting it when value is None."""

    def apply(obj: Obj) -> None:
        *parents, last = path.split("|")
        for part in parents:
            obj = obj.setdefault(part, {})
        if value is None:
            obj.pop(last, None)
        else:
            obj[last] = value

    return apply


FOREIGN_STATEFULSETS = {
    "no-controller": _mutate("metadata|ownerReferences", None),
    "controller-is-deployment-grid": lambda s: s["metadata"]["ownerReferences"][0].update(
        kind="DeploymentGrid"
    ),
    "controller-from-other-group": lambda s: s["metadata"]["ownerReferences"][0].update(
        apiVersion="example.com/v1"
    ),
    "grid-selector-names-other-grid": _mutate(f"metadata|labels|{GRID_SELECTOR}", "someone-else"),
    "no-grid-uniq-key": _mutate(f"metadata|labels|{GRID_UNIQ_KEY}", None),
    "no-service-name": _mutate("spec|serviceName", None),
    "node-selector-other-unit": _mutate("spec|template|spec|nodeSelector", {"location": "guangzhou"}),
    "name-not-grid-dash-unit": _mutate("metadata|name", f"{GRID}-beijing-old"),
}


@pytest.mark.parametrize("change", FOREIGN_STATEFULSETS.values(), ids=FOREIGN_STATEFULSETS.keys())
def test_statefulsets_that_are_not_grid_children_are_ignored(change: Callable[[Obj], None]) -> None:
    grid, sts, pods, svc = world()
    change(sts)
    assert render(BEIJING, grid, sts, pods, svc) == []


FOREIGN_SERVICES = {
    "missing": None,
    "no-grid-uniq-key": _mutate(f"metadata|labels|{GRID_UNIQ_KEY}", None),
    "other-grid-uniq-key": _mutate(f"metadata|labels|{GRID_UNIQ_KEY}", "region"),
    "no-grid-selector": _mutate(f"metadata|labels|{GRID_SELECTOR}", None),
    "controlled-by-something-else": _mutate(
        "metadata|ownerReferences", [{"kind": "Deployment", "name": "x", "uid": "1", "controller": True}]
    ),
}


@pytest.mark.parametrize("change", FOREIGN_SERVICES.values(), ids=FOREIGN_SERVICES.keys())
def test_service_must_be_the_service_grids_with_the_same_key(change: Callable[[Obj], None] | None) -> None:
    grid, sts, pods, svc = world()
    if change is None:
        assert names(render_hosts(node_labels=BEIJING, statefulsets=[sts], pods=pods, services=[])) == []
        return
    change(svc)
    assert render(BEIJING, grid, sts, pods, svc) == []


def test_service_adopted_by_its_service_grid_is_accepted() -> None:
    grid, sts, pods, svc = world()
    svc["metadata"]["ownerReferences"] = [
        {
            "apiVersion": "superedge.io/v1",
            "kind": "ServiceGrid",
            "name": "servicegrid-demo",
            "uid": "u",
            "controller": True,
        }
    ]
    assert render(BEIJING, grid, sts, pods, svc) == DEMO_LINES


GRID_MISMATCHES = {
    "other-uid": _mutate("metadata|uid", "recreated"),
    "key-changed": _mutate("spec|gridUniqKey", "region"),
    "deleting": _mutate("metadata|deletionTimestamp", "2026-11-22T08:00:00Z"),
}


@pytest.mark.parametrize("change", GRID_MISMATCHES.values(), ids=GRID_MISMATCHES.keys())
def test_live_grid_must_own_the_statefulset(change: Callable[[Obj], None]) -> None:
    grid, sts, pods, svc = world()
    change(grid)
    assert render(BEIJING, grid, sts, pods, svc) == []


def test_grid_missing_from_cache_is_tolerated() -> None:
    _, sts, pods, svc = world()
    assert (
        names(render_hosts(node_labels=BEIJING, statefulsets=[sts], pods=pods, services=[svc])) == DEMO_LINES
    )


FOREIGN_PODS = {
    "no-ip": lambda s: pod(s, 0, None),
    "invalid-ip": lambda s: pod(s, 0, "not-an-ip"),
    "succeeded": lambda s: pod(s, 0, "10.0.0.1", phase="Succeeded"),
    "failed": lambda s: pod(s, 0, "10.0.0.1", phase="Failed"),
    "other-owner-uid": lambda s: _with(pod(s, 0, "10.0.0.1"), "metadata|ownerReferences|0|uid", "x"),
    "owner-not-statefulset": lambda s: _with(
        pod(s, 0, "10.0.0.1"), "metadata|ownerReferences|0|kind", "ReplicaSet"
    ),
    "other-namespace": lambda s: _with(pod(s, 0, "10.0.0.1"), "metadata|namespace", "other"),
    "name-without-ordinal": lambda s: _with(pod(s, 0, "10.0.0.1"), "metadata|name", f"{GRID}-beijing-x"),
    "leading-zero-ordinal": lambda s: _with(pod(s, 0, "10.0.0.1"), "metadata|name", f"{GRID}-beijing-01"),
    "name-of-other-set": lambda s: _with(pod(s, 0, "10.0.0.1"), "metadata|name", f"{GRID}-bj-0"),
}


def _with(obj: Obj, path: str, value: Any) -> Obj:
    target: Any = obj
    *parents, last = path.split("|")
    for part in parents:
        target = target[int(part)] if isinstance(target, list) else target[part]
    target[last] = value
    return obj


@pytest.mark.parametrize("make_pod", FOREIGN_PODS.values(), ids=FOREIGN_PODS.keys())
def test_pods_that_are_not_members_with_an_ip_are_ignored(make_pod: Callable[[Obj], Obj]) -> None:
    grid, sts, _, svc = world()
    assert render(BEIJING, grid, sts, [make_pod(sts)], svc) == []


def test_not_ready_pod_with_an_ip_is_listed() -> None:
    grid, sts, _, svc = world()
    pending = pod(sts, 0, "10.0.0.1", phase="Pending")
    pending["status"]["conditions"] = [{"type": "Ready", "status": "False"}]
    assert render(BEIJING, grid, sts, [pending], svc) == [("10.0.0.1", fqdn(0))]


def test_set_keyed_differently_from_its_service_is_ignored() -> None:
    # SuperEdge's needClear: the Service must carry the StatefulSet's grid-uniq-key.
    grid, _, _, svc = world()
    regional = statefulset(grid, "north")
    regional["metadata"]["labels"][GRID_UNIQ_KEY] = "region"
    regional["spec"]["template"]["spec"]["nodeSelector"] = {"region": "north"}
    entries = render_hosts(
        node_labels={**BEIJING, "region": "north"},
        statefulsets=[regional],
        pods=[pod(regional, 0, "10.0.0.2")],
        services=[svc],
    )
    assert entries == []


def test_format_has_a_generated_header_and_one_line_per_entry() -> None:
    grid, sts, pods, svc = world()
    entries = render_hosts(node_labels=BEIJING, statefulsets=[sts], pods=pods, services=[svc], grids=[grid])
    text = format_hosts(entries, node="bj-1")
    lines = text.splitlines()
    assert lines[0].startswith("# Generated by `servicegroup dns` for node bj-1")
    assert all(line.startswith("#") for line in lines[:2])
    assert lines[2:] == [f"{ip} {name}" for ip, name in DEMO_LINES]
    assert text.endswith("\n")
    assert format_hosts(entries, node="bj-1") == text
