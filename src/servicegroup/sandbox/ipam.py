"""IP address management for the sandbox: Service ClusterIPs and per-node pod CIDRs.

Allocation is "first free" (kube-apiserver picks at random; deterministic addresses make tests and
demos readable). Both allocators keep no state of their own on disk: after a restart from a data dir
they are rebuilt from the stored objects (`restore_*`), so the objects stay the source of truth.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

ERR_FULL = "range is full"
ERR_ALLOCATED = "provided IP is already allocated"


def _not_in_range(ip: str, valid: ipaddress.IPv4Network) -> str:
    """kube-apiserver's ErrNotInRange wording, so clients see the message they would in a cluster."""
    return f"the provided IP ({ip}) is not in the valid range. The range of valid IPs is {valid}"


class AddressPool:
    """Allocated host addresses of one network; its first `skip` hosts are never handed out (gateways)."""

    def __init__(self, network: ipaddress.IPv4Network, skip: int) -> None:
        self.network = network
        self._first = int(network.network_address) + 1
        self._last = int(network.broadcast_address) - 1
        self._skip = skip
        self._used: set[int] = set()

    def _index(self, ip: str) -> int:
        try:
            value = int(ipaddress.IPv4Address(ip))
        except ValueError as err:
            raise ValueError(_not_in_range(ip, self.network)) from err
        if not self._first <= value <= self._last:
            raise ValueError(_not_in_range(ip, self.network))
        return value

    def allocate(self) -> str:
        """The lowest free address; ValueError "range is full" when none is left."""
        value = self._first + self._skip
        while value in self._used:
            value += 1
        if value > self._last:
            raise ValueError(ERR_FULL)
        self._used.add(value)
        return str(ipaddress.IPv4Address(value))

    def reserve(self, ip: str) -> None:
        """Claim a specific address (ValueError: not in range / already allocated)."""
        value = self._index(ip)
        if value in self._used:
            raise ValueError(ERR_ALLOCATED)
        self._used.add(value)

    def release(self, ip: str) -> None:
        """Free an address (ValueError when it is outside the network)."""
        self._used.discard(self._index(ip))

    def holds(self, ip: str) -> bool:
        """Whether `ip` is allocated here."""
        try:
            return self._index(ip) in self._used
        except ValueError:
            return False


class ServiceIPAllocator:
    """ClusterIPs from the service CIDR; the first host (10.96.0.1) belongs to the `kubernetes` Service."""

    def __init__(self, cidr: str = "10.96.0.0/12") -> None:
        self._range = AddressPool(ipaddress.IPv4Network(cidr), skip=1)

    @property
    def cidr(self) -> str:
        return str(self._range.network)

    def allocate(self) -> str:
        """The lowest free address; ValueError "range is full" when none is left."""
        return self._range.allocate()

    def reserve(self, ip: str) -> None:
        """Claim a user-requested ClusterIP (ValueError with the apiserver's message on failure)."""
        self._range.reserve(ip)

    def release(self, ip: str) -> None:
        """Give an address back; unknown or foreign addresses are ignored (deletes are idempotent)."""
        if self._range.holds(ip):
            self._range.release(ip)

    def restore(self, services: Iterable[dict[str, object]]) -> None:
        """Re-mark the ClusterIPs of stored Services after a restart; headless and foreign IPs are skipped."""
        for svc in services:
            spec = svc.get("spec")
            if not isinstance(spec, dict):
                continue
            ips = spec.get("clusterIPs") or [spec.get("clusterIP")]
            for ip in ips if isinstance(ips, list) else []:
                if isinstance(ip, str) and not self._range.holds(ip):
                    try:
                        self._range.reserve(ip)
                    except ValueError:
                        continue


class KeyedPool:
    """Addresses of one network handed to named holders: asking again returns the same address."""

    def __init__(self, network: ipaddress.IPv4Network, skip: int = 1) -> None:
        self.network = network
        self._pool = AddressPool(network, skip)
        self._held: dict[str, str] = {}

    def get(self, key: str) -> str:
        """The holder's address, allocating the lowest free one on first use."""
        if key not in self._held:
            self._held[key] = self._pool.allocate()
        return self._held[key]

    def restore(self, key: str, ip: str) -> bool:
        """Adopt a stored address for `key`; False when it is foreign or held by someone else."""
        if self._held.get(key) == ip:
            return True
        try:
            self._pool.reserve(ip)
        except ValueError:
            return False
        self.release(key)
        self._held[key] = ip
        return True

    def release(self, key: str) -> None:
        """Free the holder's address; unknown holders are ignored."""
        ip = self._held.pop(key, None)
        if ip is not None:
            self._pool.release(ip)


class PodCIDRAllocator:
    """One /node_mask subnet of the cluster CIDR per node, and pod IPs inside it.

    Like flannel/kindnet, the subnet's first host is the node's bridge gateway, so pods start at .2.
    Pod IPs are keyed by a caller-chosen pod key (namespace/name) so asking twice returns the same IP.
    """

    def __init__(self, cluster_cidr: str = "10.244.0.0/16", node_mask: int = 24) -> None:
        self._cluster = ipaddress.IPv4Network(cluster_cidr)
        self._subnets = list(self._cluster.subnets(new_prefix=node_mask))
        self._pools: dict[str, KeyedPool] = {}
        self._pod_node: dict[str, str] = {}

    def node_cidr(self, node: str) -> str:
        """The node's pod CIDR, allocating the lowest free subnet on first use."""
        pool = self._pools.get(node)
        if pool is None:
            used = {p.network for p in self._pools.values()}
            subnet = next((n for n in self._subnets if n not in used), None)
            if subnet is None:
                raise ValueError(ERR_FULL)
            pool = self._pools[node] = KeyedPool(subnet)
        return str(pool.network)

    def restore_node(self, node: str, cidr: str) -> None:
        """Adopt a node's stored spec.podCIDR; ValueError if it is foreign or taken by another node."""
        subnet = ipaddress.IPv4Network(cidr)
        if subnet not in self._subnets:
            raise ValueError(_not_in_range(cidr, self._cluster))
        owner = next((n for n, p in self._pools.items() if p.network == subnet), None)
        if owner not in (None, node):
            raise ValueError(ERR_ALLOCATED)
        if owner is None:
            self.release_node(node)
            self._pools[node] = KeyedPool(subnet)

    def release_node(self, node: str) -> None:
        """Forget a deleted node's subnet and every pod IP in it."""
        self._pools.pop(node, None)
        for key in [k for k, n in self._pod_node.items() if n == node]:
            del self._pod_node[key]

    def pod_ip(self, node: str, pod_key: str) -> str:
        """The pod's IP on `node`, allocating one if the pod has none there yet."""
        if self._pod_node.get(pod_key) not in (None, node):
            self.release_pod(pod_key)
        self.node_cidr(node)
        self._pod_node[pod_key] = node
        return self._pools[node].get(pod_key)

    def restore_pod(self, node: str, pod_key: str, ip: str) -> None:
        """Adopt a stored pod IP; addresses outside the node's subnet or already taken are ignored."""
        self.node_cidr(node)
        previous = self._pod_node.get(pod_key)
        if self._pools[node].restore(pod_key, ip):
            if previous not in (None, node):
                self.release_pod(pod_key)
            self._pod_node[pod_key] = node

    def release_pod(self, pod_key: str) -> None:
        """Free a deleted pod's IP; unknown keys are ignored."""
        node = self._pod_node.pop(pod_key, None)
        if node is not None and node in self._pools:
            self._pools[node].release(pod_key)
