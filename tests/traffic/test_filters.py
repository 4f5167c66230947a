"""The filter rule as table tests: topology parsing, same-unit, slices and Endpoints (pure, no I/O)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from servicegroup.traffic.filters import endpoint_nodes, filter_endpoints, filter_slices, slice_service_key
from servicegroup.traffic.view import Fallback, NodeView, Topology, topology_of

NODES = {
    "bj-1": {"location": "beijing", "region": "north", "kubernetes.io/hostname": "bj-1"},
    "bj-2": {"location": "beijing", "region": "north", "kubernetes.io/hostname": "bj-2"},
    "gz-1": {"location": "guangzhou", "region": "south", "kubernetes.io/hostname": "gz-1"},
    "gz-2": {"location": "guangzhou", "region": "south", "kubernetes.io/hostname": "gz-2"},
    "nolabel": {},
}
BJ1 = NodeView("bj-1", NODES)
LOCATION = Topology(("location",))
LOCATION_ANYWHERE = Topology(("location",), Fallback.ANYWHERE)


def service(annotations: dict[str, str] | None) -> dict[str, Any]:
    return {"metadata": {"name": "svc", "namespace": "default", "annotations": annotations or {}}}


def endpoint(ip: str, node: str | None, ready: bool | None = True) -> dict[str, Any]:
    result: dict[str, Any] = {"addresses": [ip]}
    if node is not None:
        result["nodeName"] = node
    if ready is not None:
        result["conditions"] = {"ready": ready}
    return result


def eslice(name: str, *endpoints: dict[str, Any], service_name: str | None = "svc") -> dict[str, Any]:
    labels = {"kubernetes.io/service-name": service_name} if service_name else {}
    return {
        "metadata": {"name": name, "namespace": "default", "labels": labels},
        "addressType": "IPv4",
        "endpoints": list(endpoints),
        "ports": [{"port": 8080, "protocol": "TCP"}],
    }


def ips(slices: list[dict[str, Any]]) -> list[str]:
    return [ep["addresses"][0] for s in slices for ep in s["endpoints"]]


TOPOLOGY_CASES = {
    "no annotations": (None, None),
    "other annotations only": ({"a": "b"}, None),
    "one key": ({"topologyKeys": '["location"]'}, Topology(("location",))),
    "two keys": ({"topologyKeys": '["location","region"]'}, Topology(("location", "region"))),
    "empty list is no policy (SuperEdge)": ({"topologyKeys": "[]"}, None),
    "fallback anywhere": (
        {"topologyKeys": '["location"]', "servicegroup.io/topology-fallback": "anywhere"},
        Topology(("location",), Fallback.ANYWHERE),
    ),
    "unknown fallback is strict": (
        {"topologyKeys": '["location"]', "servicegroup.io/topology-fallback": "sometimes"},
        Topology(("location",)),
    ),
}


@pytest.mark.parametrize(("annotations", "expected"), TOPOLOGY_CASES.values(), ids=TOPOLOGY_CASES.keys())
def test_topology_of(annotations: dict[str, str] | None, expected: Topology | None) -> None:
    assert topology_of(service(annotations)) == expected


@pytest.mark.parametrize("raw", ["location", "[location]", '"location"', "[1]", '{"a":1}', ""])
def test_invalid_topology_annotation_fails_closed(raw: str) -> None:
    topology = topology_of(service({"topologyKeys": raw}))
    assert topology is not None
    assert topology.keys == ()
    assert topology.error and "topologyKeys" in topology.error
    assert filter_slices([eslice("s", endpoint("10.0.0.1", "bj-1"))], topology, BJ1)[0]["endpoints"] == []


SAME_UNIT_CASES = {
    "same location": (("location",), "bj-2", True),
    "itself": (("location",), "bj-1", True),
    "other location": (("location",), "gz-1", False),
    "no nodeName": (("location",), None, False),
    "unknown node": (("location",), "ghost", False),
    "endpoint node lacks key": (("location",), "nolabel", False),
    "keys are OR-ed": (("zone", "region"), "bj-2", True),
    "hostname key: only this node": (("kubernetes.io/hostname",), "bj-2", False),
    "hostname key: this node": (("kubernetes.io/hostname",), "bj-1", True),
}


@pytest.mark.parametrize(("keys", "other", "expected"), SAME_UNIT_CASES.values(), ids=SAME_UNIT_CASES.keys())
def test_same_unit(keys: tuple[str, ...], other: str | None, expected: bool) -> None:
    assert BJ1.same_unit(Topology(keys), other) is expected


def test_hostname_key_defaults_to_node_name_without_label() -> None:
    view = NodeView("a", {"a": {}, "b": {}})
    assert view.same_unit(Topology(("kubernetes.io/hostname",)), "a")
    assert not view.same_unit(Topology(("kubernetes.io/hostname",)), "b")


def test_unknown_local_node_sees_nothing() -> None:
    view = NodeView("ghost", NODES)
    assert not view.same_unit(LOCATION, "bj-1")


MIXED = eslice(
    "svc-abc12",
    endpoint("10.0.1.1", "bj-1"),
    endpoint("10.0.1.2", "bj-2"),
    endpoint("10.0.2.1", "gz-1"),
    endpoint("10.0.9.9", None),
)

SLICE_CASES = {
    "no policy passes untouched": ([MIXED], None, ["10.0.1.1", "10.0.1.2", "10.0.2.1", "10.0.9.9"]),
    "location keeps beijing": ([MIXED], LOCATION, ["10.0.1.1", "10.0.1.2"]),
    "hostname keeps this node": ([MIXED], Topology(("kubernetes.io/hostname",)), ["10.0.1.1"]),
    "no match gives an empty slice": ([eslice("s", endpoint("10.0.2.1", "gz-1"))], LOCATION, []),
    "fallback anywhere with local ready endpoints stays strict": (
        [MIXED],
        LOCATION_ANYWHERE,
        ["10.0.1.1", "10.0.1.2"],
    ),
    "fallback anywhere without local endpoints shows all": (
        [eslice("s", endpoint("10.0.2.1", "gz-1"))],
        LOCATION_ANYWHERE,
        ["10.0.2.1"],
    ),
    "fallback anywhere: local but not ready counts as none": (
        [eslice("s", endpoint("10.0.1.1", "bj-1", ready=False), endpoint("10.0.2.1", "gz-1"))],
        LOCATION_ANYWHERE,
        ["10.0.1.1", "10.0.2.1"],
    ),
    "fallback is decided over all slices of the service": (
        [eslice("s1", endpoint("10.0.2.1", "gz-1")), eslice("s2", endpoint("10.0.1.1", "bj-1", ready=None))],
        LOCATION_ANYWHERE,
        ["10.0.1.1"],
    ),
}


@pytest.mark.parametrize(("slices", "topology", "expected"), SLICE_CASES.values(), ids=SLICE_CASES.keys())
def test_filter_slices(slices: list[dict[str, Any]], topology: Topology | None, expected: list[str]) -> None:
    before = copy.deepcopy(slices)
    result = filter_slices(slices, topology, BJ1)
    assert ips(result) == expected
    assert slices == before, "input must not be mutated"
    assert [s["metadata"] for s in result] == [s["metadata"] for s in slices]
    assert all(s["ports"] == [{"port": 8080, "protocol": "TCP"}] for s in result)


def test_unfiltered_slices_are_the_same_objects() -> None:
    assert filter_slices([MIXED], None, BJ1)[0] is MIXED


SERVICE_KEY_CASES = {
    "label names the service": (
        eslice("anything-x7k2p", service_name="servicegrid-demo-svc"),
        "default/servicegrid-demo-svc",
    ),
    "name is not used (SuperEdge bug)": (
        eslice("servicegrid-demo-svc-x7k2p", service_name="other"),
        "default/other",
    ),
    "no label: no service": (eslice("kubernetes", service_name=None), None),
}


@pytest.mark.parametrize(("obj", "expected"), SERVICE_KEY_CASES.values(), ids=SERVICE_KEY_CASES.keys())
def test_slice_service_key(obj: dict[str, Any], expected: str | None) -> None:
    assert slice_service_key(obj) == expected


def v1_endpoints(*subsets: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"name": "svc", "namespace": "default"}, "subsets": list(subsets)}


def address(ip: str, node: str | None) -> dict[str, Any]:
    return {"ip": ip, "nodeName": node} if node else {"ip": ip}


SUBSET = {
    "addresses": [address("10.0.1.1", "bj-1"), address("10.0.2.1", "gz-1"), address("10.0.9.9", None)],
    "notReadyAddresses": [address("10.0.1.2", "bj-2"), address("10.0.2.2", "gz-2")],
    "ports": [{"port": 8080}],
}


def test_filter_endpoints_filters_ready_and_not_ready_addresses() -> None:
    before = copy.deepcopy(SUBSET)
    result = filter_endpoints(v1_endpoints(SUBSET), LOCATION, BJ1)
    assert result["subsets"] == [
        {
            "addresses": [address("10.0.1.1", "bj-1")],
            "notReadyAddresses": [address("10.0.1.2", "bj-2")],
            "ports": [{"port": 8080}],
        }
    ]
    assert before == SUBSET


def test_filter_endpoints_keeps_emptied_subsets() -> None:
    subset = {"addresses": [address("10.0.2.1", "gz-1")], "ports": [{"port": 80}]}
    assert filter_endpoints(v1_endpoints(subset), LOCATION, BJ1)["subsets"] == [{"ports": [{"port": 80}]}]


def test_filter_endpoints_without_policy_is_untouched() -> None:
    eps = v1_endpoints(SUBSET)
    assert filter_endpoints(eps, None, BJ1) is eps


def test_filter_endpoints_fallback_anywhere() -> None:
    remote_only = v1_endpoints(
        {"addresses": [address("10.0.2.1", "gz-1")], "notReadyAddresses": [address("10.0.1.2", "bj-2")]}
    )
    assert filter_endpoints(remote_only, LOCATION_ANYWHERE, BJ1) is remote_only
    mixed = v1_endpoints(SUBSET)
    assert filter_endpoints(mixed, LOCATION_ANYWHERE, BJ1)["subsets"][0]["addresses"] == [
        address("10.0.1.1", "bj-1")
    ]


def test_endpoint_nodes() -> None:
    assert endpoint_nodes(MIXED) == {"bj-1", "bj-2", "gz-1"}
    assert endpoint_nodes(v1_endpoints(SUBSET)) == {"bj-1", "gz-1", "bj-2", "gz-2"}
