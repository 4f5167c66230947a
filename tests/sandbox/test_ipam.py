"""Service ClusterIP and pod CIDR allocation: first-free order, apiserver error wording, restore."""

from __future__ import annotations

import ipaddress

import pytest

from servicegroup.sandbox.ipam import KeyedPool, PodCIDRAllocator, ServiceIPAllocator


class TestServiceIPAllocator:
    def test_allocates_first_free_after_the_kubernetes_service_ip(self) -> None:
        ipam = ServiceIPAllocator()
        assert [ipam.allocate() for _ in range(3)] == ["10.96.0.2", "10.96.0.3", "10.96.0.4"]

    def test_released_addresses_are_reused_lowest_first(self) -> None:
        ipam = ServiceIPAllocator()
        first, second = ipam.allocate(), ipam.allocate()
        ipam.release(first)
        assert ipam.allocate() == first
        ipam.release(second)
        ipam.release(second)  # idempotent
        assert ipam.allocate() == second

    def test_kubernetes_service_ip_can_be_reserved_explicitly(self) -> None:
        ipam = ServiceIPAllocator()
        ipam.reserve("10.96.0.1")
        assert ipam.allocate() == "10.96.0.2"

    def test_reserve_of_a_taken_ip_uses_the_apiserver_message(self) -> None:
        ipam = ServiceIPAllocator()
        ipam.reserve("10.96.0.10")
        with pytest.raises(ValueError, match=r"^provided IP is already allocated$"):
            ipam.reserve("10.96.0.10")

    @pytest.mark.parametrize("ip", ["10.0.0.1", "10.96.0.0", "10.111.255.255", "not-an-ip"])
    def test_reserve_outside_the_range(self, ip: str) -> None:
        ipam = ServiceIPAllocator()
        with pytest.raises(ValueError) as err:
            ipam.reserve(ip)
        assert str(err.value) == (
            f"the provided IP ({ip}) is not in the valid range. The range of valid IPs is 10.96.0.0/12"
        )

    def test_a_full_range_says_so(self) -> None:
        ipam = ServiceIPAllocator("10.0.0.0/29")  # hosts .1-.6, .1 reserved
        assert [ipam.allocate() for _ in range(5)][-1] == "10.0.0.6"
        with pytest.raises(ValueError, match=r"^range is full$"):
            ipam.allocate()

    def test_restore_from_stored_services(self) -> None:
        ipam = ServiceIPAllocator()
        services = [
            {"spec": {"clusterIP": "10.96.0.2", "clusterIPs": ["10.96.0.2"]}},
            {"spec": {"clusterIP": "None", "clusterIPs": ["None"]}},
            {"spec": {"clusterIP": "192.168.0.1"}},
            {"spec": {"type": "ExternalName"}},
            {"metadata": {}},
        ]
        ipam.restore(services)
        ipam.restore(services)  # a second pass changes nothing
        assert ipam.allocate() == "10.96.0.3"
        with pytest.raises(ValueError, match="already allocated"):
            ipam.reserve("10.96.0.2")


class TestPodCIDRAllocator:
    def test_each_node_gets_its_own_subnet(self) -> None:
        cidrs = PodCIDRAllocator()
        assert cidrs.node_cidr("a") == "10.244.0.0/24"
        assert cidrs.node_cidr("b") == "10.244.1.0/24"
        assert cidrs.node_cidr("a") == "10.244.0.0/24"

    def test_pod_ips_start_after_the_gateway_and_are_stable(self) -> None:
        cidrs = PodCIDRAllocator()
        cidrs.node_cidr("a")
        cidrs.node_cidr("b")
        assert cidrs.pod_ip("b", "ns/p1") == "10.244.1.2"
        assert cidrs.pod_ip("b", "ns/p2") == "10.244.1.3"
        assert cidrs.pod_ip("b", "ns/p1") == "10.244.1.2"

    def test_release_and_move(self) -> None:
        cidrs = PodCIDRAllocator()
        first = cidrs.pod_ip("a", "ns/p1")
        cidrs.release_pod("ns/p1")
        cidrs.release_pod("ns/unknown")
        assert cidrs.pod_ip("a", "ns/p2") == first
        moved = cidrs.pod_ip("b", "ns/p2")
        assert ipaddress.ip_address(moved) in ipaddress.ip_network(cidrs.node_cidr("b"))
        assert cidrs.pod_ip("a", "ns/p3") == first  # freed by the move

    def test_released_node_frees_its_subnet(self) -> None:
        cidrs = PodCIDRAllocator()
        cidrs.node_cidr("a")
        cidrs.pod_ip("a", "ns/p")
        cidrs.release_node("a")
        assert cidrs.node_cidr("b") == "10.244.0.0/24"
        assert cidrs.pod_ip("b", "ns/p") == "10.244.0.2"

    def test_restore_node_and_pods(self) -> None:
        cidrs = PodCIDRAllocator()
        cidrs.restore_node("a", "10.244.7.0/24")
        cidrs.restore_node("a", "10.244.7.0/24")
        cidrs.restore_pod("a", "ns/p", "10.244.7.9")
        cidrs.restore_pod("a", "ns/foreign", "10.1.1.1")
        assert cidrs.node_cidr("b") == "10.244.0.0/24"
        assert cidrs.pod_ip("a", "ns/p") == "10.244.7.9"
        assert cidrs.pod_ip("a", "ns/foreign") == "10.244.7.2"

    def test_restore_conflicts(self) -> None:
        cidrs = PodCIDRAllocator()
        cidrs.node_cidr("a")
        with pytest.raises(ValueError, match="already allocated"):
            cidrs.restore_node("b", "10.244.0.0/24")
        with pytest.raises(ValueError, match="not in the valid range"):
            cidrs.restore_node("b", "10.0.0.0/24")

    def test_full_cluster_cidr(self) -> None:
        cidrs = PodCIDRAllocator("10.244.0.0/23", node_mask=24)
        cidrs.node_cidr("a")
        cidrs.node_cidr("b")
        with pytest.raises(ValueError, match="range is full"):
            cidrs.node_cidr("c")


def test_keyed_pool_restore_rejects_taken_addresses() -> None:
    pool = KeyedPool(ipaddress.IPv4Network("172.18.0.0/24"))
    assert pool.get("n1") == "172.18.0.2"
    assert not pool.restore("n2", "172.18.0.2")
    assert pool.restore("n2", "172.18.0.9") and pool.restore("n2", "172.18.0.9")
    pool.release("n1")
    assert pool.get("n3") == "172.18.0.2"
