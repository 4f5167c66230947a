"""The simulator against the real Storage (in-process) and once end to end over HTTP.

Covers the workload controllers (Deployment, ReplicaSet, StatefulSet), the scheduler's filters and
fit-error wording, the kubelet stand-in (status, IPs, node readiness, node deletion) and the
endpoints controllers; plus "a converged cluster is never rewritten". Waits are bounded polls.
"""

from __future__ import annotations

import asyncio
import ipaddress
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from servicegroup.sandbox import Sandbox
from servicegroup.sandbox.resources import ResourceType
from servicegroup.sandbox.simulate import (
    Simulator,
    fit_error,
    node_affinity_matches,
    pod_template_hash,
    set_condition,
    tolerates,
)
from servicegroup.sandbox.storage import Storage

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
NODES_YAML = Path("/work/shared/examples/00-nodes.yaml")
EXAMPLE_NODES = list(yaml.safe_load_all(NODES_YAML.read_text())) if NODES_YAML.exists() else []
Obj = dict[str, Any]


def container(image: str = "nginx:1.27") -> Obj:
    return {"name": "web", "image": image, "ports": [{"name": "http", "containerPort": 8080}]}


def deployment(
    name: str = "web", replicas: int = 2, selector: Obj | None = None, image: str = "nginx:1.27"
) -> Obj:
    spec: Obj = {"containers": [container(image)]}
    if selector:
        spec["nodeSelector"] = selector
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": spec},
        },
    }


def statefulset(name: str = "db", replicas: int = 3, service: str = "db-svc") -> Obj:
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "replicas": replicas,
            "serviceName": service,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [container()]}},
        },
    }


def service(name: str = "web", app: str = "web", headless: bool = False, target: Any = "http") -> Obj:
    spec: Obj = {"selector": {"app": app}, "ports": [{"name": "http", "port": 80, "targetPort": target}]}
    if headless:
        spec["clusterIP"] = "None"
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": "default"},
        "spec": spec,
    }


def bare_pod(name: str, **spec: Any) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"containers": [container()], **spec},
    }


@dataclass
class Cluster:
    """A Storage with a running Simulator and shortcuts to read and write it."""

    storage: Storage
    sim: Simulator
    eventually: Any

    def rt(self, group: str, plural: str) -> ResourceType:
        return self.storage.resource_type(group, "v1", plural)

    def create(self, obj: Obj) -> Obj:
        group, _, _ = obj["apiVersion"].rpartition("/")
        plural = {"Endpoints": "endpoints"}.get(obj["kind"], obj["kind"].lower() + "s")
        return self.storage.create(self.rt(group, plural), obj)

    def get(self, group: str, plural: str, name: str, ns: str = "default") -> Obj:
        return self.storage.get(self.rt(group, plural), ns, name)

    def list(self, group: str, plural: str, selector: str | None = None) -> list[Obj]:
        return self.storage.list(self.rt(group, plural), "default" if plural != "nodes" else None, selector)[
            0
        ]

    def pods(self, selector: str | None = None) -> list[Obj]:
        return self.list("", "pods", selector)

    def add_nodes(self) -> None:
        for node in EXAMPLE_NODES:
            self.create(node)

    async def settle(self) -> None:
        """Wait (bounded) until the simulator has read every event and has no work left."""

        async def idle() -> bool:
            return self.sim.idle

        await self.eventually(idle, message="simulator did not settle")

    def node_status(self, name: str, ready: bool) -> None:
        node = self.get("", "nodes", name)
        for cond in node["status"]["conditions"]:
            if cond["type"] == "Ready":
                cond["status"] = "True" if ready else "False"
                cond["reason"] = "KubeletReady" if ready else "KubeletNotReady"
        self.storage.update(self.rt("", "nodes"), node, subresource="status")


@pytest.fixture
async def cluster(eventually: Any) -> AsyncIterator[Cluster]:
    storage = Storage()
    sim = Simulator(storage, clock=lambda: NOW, rng=random.Random(7))
    task = asyncio.create_task(sim.run())
    yield Cluster(storage, sim, eventually)
    sim.stop()
    await asyncio.wait_for(task, 5)


def ready(pod: Obj) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions", []))


def condition(obj: Obj, type_: str) -> Obj:
    return next(c for c in obj["status"]["conditions"] if c["type"] == type_)


# ---------------------------------------------------------------------------------------------
# Deployments and ReplicaSets


class TestDeployment:
    async def test_runs_replicas_on_the_selected_nodes(self, cluster: Cluster) -> None:
        cluster.add_nodes()
        cluster.create(deployment(selector={"location": "beijing"}))
        await cluster.settle()

        pods = cluster.pods("app=web")
        assert sorted(p["spec"]["nodeName"] for p in pods) == ["bj-1", "bj-2"]
        for pod in pods:
            node = cluster.get("", "nodes", pod["spec"]["nodeName"])
            assert pod["status"]["phase"] == "Running" and ready(pod)
            assert ipaddress.ip_address(pod["status"]["podIP"]) in ipaddress.ip_network(
                node["spec"]["podCIDR"]
            )
            assert pod["status"]["podIPs"] == [{"ip": pod["status"]["podIP"]}]
            assert pod["status"]["hostIP"] == node["status"]["addresses"][0]["address"]
            statuses = pod["status"]["containerStatuses"]
            assert [(s["name"], s["ready"], s["started"], "running" in s["state"]) for s in statuses] == [
                ("web", True, True, True)
            ]
            assert [c["type"] for c in pod["status"]["conditions"]] == [
                "PodReadyToStartContainers",
                "Initialized",
                "Ready",
                "ContainersReady",
                "PodScheduled",
            ]

        (rs,) = cluster.list("apps", "replicasets")
        deploy = cluster.get("apps", "deployments", "web")
        template_hash = rs["metadata"]["labels"]["pod-template-hash"]
        assert rs["metadata"]["name"] == f"web-{template_hash}"
        assert rs["spec"]["selector"]["matchLabels"] == {"app": "web", "pod-template-hash": template_hash}
        assert rs["metadata"]["ownerReferences"][0]["uid"] == deploy["metadata"]["uid"]
        assert rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
        assert all(p["metadata"]["name"].startswith(f"web-{template_hash}-") for p in pods)
        assert all(p["metadata"]["ownerReferences"][0]["uid"] == rs["metadata"]["uid"] for p in pods)
        assert rs["status"] == {
            "replicas": 2,
            "fullyLabeledReplicas": 2,
            "readyReplicas": 2,
            "availableReplicas": 2,
            "observedGeneration": 1,
        }

        status = deploy["status"]
        assert {k: v for k, v in status.items() if k != "conditions"} == {
            "observedGeneration": 1,
            "replicas": 2,
            "updatedReplicas": 2,
            "readyReplicas": 2,
            "availableReplicas": 2,
        }
        assert condition(deploy, "Available")["reason"] == "MinimumReplicasAvailable"
        progressing = condition(deploy, "Progressing")
        assert progressing["reason"] == "NewReplicaSetAvailable"
        assert progressing["message"] == f'ReplicaSet "{rs["metadata"]["name"]}" has successfully progressed.'
        assert progressing["lastUpdateTime"] == "2026-01-02T03:04:05Z"
        assert deploy["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"

    async def test_a_converged_cluster_is_not_rewritten_on_resync(self, cluster: Cluster) -> None:
        cluster.add_nodes()
        cluster.create(deployment(replicas=3))
        cluster.create(statefulset(replicas=2))
        cluster.create(service())
        await cluster.settle()
        cluster.sim.stop()
        rv = cluster.storage.resource_version

        second = Simulator(cluster.storage, clock=lambda: NOW, rng=random.Random(1))
        task = asyncio.create_task(second.run())
        cluster.sim = second
        await cluster.settle()
        second.stop()
        await asyncio.wait_for(task, 5)
        assert cluster.storage.resource_version == rv

    async def test_template_change_rolls_to_a_new_replicaset(self, cluster: Cluster) -> None:
        cluster.add_nodes()
        cluster.create(deployment(replicas=2))
        await cluster.settle()
        deploy = cluster.get("apps", "deployments", "web")
        deploy["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:1.28"
        cluster.storage.update(cluster.rt("apps", "deployments"), deploy)
        await cluster.settle()

        rss = {
            rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"]: rs
            for rs in cluster.list("apps", "replicasets")
        }
        assert sorted(rss) == ["1", "2"]
        assert rss["1"]["spec"]["replicas"] == 0 and rss["2"]["spec"]["replicas"] == 2
        new_hash = rss["2"]["metadata"]["labels"]["pod-template-hash"]
        pods = cluster.pods("app=web")
        assert len(pods) == 2 and {p["metadata"]["labels"]["pod-template-hash"] for p in pods} == {new_hash}
        assert {p["spec"]["containers"][0]["image"] for p in pods} == {"nginx:1.28"}
        deploy = cluster.get("apps", "deployments", "web")
        assert deploy["status"]["observedGeneration"] == 2 and deploy["status"]["updatedReplicas"] == 2
        assert deploy["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"
        assert condition(deploy, "Progressing")["reason"] == "NewReplicaSetAvailable"

    async def test_old_replicasets_beyond_the_history_limit_are_deleted(self, cluster: Cluster) -> None:
        cluster.add_nodes()
        deploy = deployment(replicas=1)
        deploy["spec"]["revisionHistoryLimit"] = 1
        cluster.create(deploy)
        await cluster.settle()
        for image in ("nginx:2", "nginx:3"):
            deploy = cluster.get("apps", "deployments", "web")
            deploy["spec"]["template"]["spec"]["containers"][0]["image"] = image
            cluster.storage.update(cluster.rt("apps", "deployments"), deploy)
            await cluster.settle()
        revisions = sorted(
            (rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"], rs["spec"]["replicas"])
            for rs in cluster.list("apps", "replicasets")
        )
        assert revisions == [("2", 0), ("3", 1)]

    async def test_scale_down_deletes_extra_pods(self, cluster: Cluster) -> None:
        cluster.add_nodes()
        cluster.create(deployment(replicas=4))
        await cluster.settle()
        assert len(cluster.pods("app=web")) == 4
        deploy = cluster.get("apps", "deployments", "web")
        deploy["spec"]["replicas"] = 1
        cluster.storage.update(cluster.rt("apps", "deployments"), deploy)
        await cluster.settle()
        assert len(cluster.pods("app=web")) == 1
        assert cluster.get("apps", "deployments", "web")["status"]["availableReplicas"] == 1

    async def test_pods_spread_over_fitting_nodes(self, cluster: Cluster) -> None:
        cluster.add_nodes()
        cluster.create(deployment(replicas=6, selector={"location": "guangzhou"}))
        await cluster.settle()
        per_node: dict[str, int] = {}
        for pod in cluster.pods("app=web"):
            per_node[pod["spec"]["nodeName"]] = per_node.get(pod["spec"]["nodeName"], 0) + 1
        assert per_node == {"gz-1": 2, "gz-2": 2, "gz-3": 2}

    async def test_without_nodes_pods_stay_pending(self, cluster: Cluster) -> None:
        cluster.create(deployment(replicas=1))
        await cluster.settle()
        (pod,) = cluster.pods("app=web")
        assert pod["status"]["phase"] == "Pending" and "nodeName" not in pod["spec"]
        scheduled = condition(pod, "PodScheduled")
        assert (scheduled["status"], scheduled["reason"]) == ("False", "Unschedulable")
        assert scheduled["message"] == "no nodes available to schedule pods"
        deploy = cluster.get("apps", "deployments", "web")
        assert condition(deploy, "Available")["status"] == "False"
        assert deploy["status"]["unavailableReplicas"] == 1


# ---------------------------------------------------------------------------------------------
# Scheduler


class TestScheduler:
    async def test_no_fitting_node_reports_the_fit_error(self, cluster: Cluster) -> None:
        cluster.add_nodes()
        cluster.create(bare_pod("lost", nodeSelector={"location": "shanghai"}))
        await cluster.settle()
        pod = cluster.get("", "pods", "lost")
        scheduled = condition(pod, "PodScheduled")
        assert scheduled == {
            "type": "PodScheduled",
            "status": "False",
            "lastProbeTime": None,
            "lastTransitionTime": "2026-01-02T03:04:05Z",
            "reason": "Unschedulable",
            "message": "0/5 nodes are available: 5 node(s) didn't match Pod's node affinity/selector. "
            "preemption: 0/5 nodes are available: 5 Preemption is not helpful for scheduling.",
        }

    async def test_a_new_fitting_node_schedules_a_pending_pod(self, cluster: Cluster) -> None:
        cluster.add_nodes()
        cluster.create(bare_pod("later", nodeSelector={"location": "shanghai"}))
        await cluster.settle()
        cluster.create(
            {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {"name": "sh-1", "labels": {"location": "shanghai"}},
            }
        )
        await cluster.settle()
        pod = cluster.get("", "pods", "later")
        assert pod["spec"]["nodeName"] == "sh-1" and ready(pod)
        assert condition(pod, "PodScheduled")["status"] == "True"

    async def test_gated_pods_wait_until_their_gates_are_removed(self, cluster: Cluster) -> None:
        cluster.add_nodes()
        cluster.create(bare_pod("gated", schedulingGates=[{"name": "example.com/quota"}]))
        await cluster.settle()
        pod = cluster.get("", "pods", "gated")
        assert "nodeName" not in pod["spec"]
        pod["spec"]["schedulingGates"] = []
        cluster.storage.update(cluster.rt("", "pods"), pod)
        await cluster.settle()
        assert ready(cluster.get("", "pods", "gated"))

    async def test_taints_repel_pods_without_tolerations(self, cluster: Cluster) -> None:
        cluster.add_nodes()
        nodes = cluster.rt("", "nodes")
        for name in ("gz-1", "gz-2"):
            node = cluster.get("", "nodes", name)
            node.setdefault("spec", {})["taints"] = [
                {"key": "dedicated", "value": "edge", "effect": "NoSchedule"}
            ]
            cluster.storage.update(nodes, node)
        node = cluster.get("", "nodes", "gz-3")
        node.setdefault("spec", {})["unschedulable"] = True
        cluster.storage.update(nodes, node)
        cluster.create(bare_pod("plain", nodeSelector={"location": "guangzhou"}))
        tolerant = [{"key": "dedicated", "operator": "Equal", "value": "edge", "effect": "NoSchedule"}]
        cluster.create(bare_pod("tolerant", nodeSelector={"location": "guangzhou"}, tolerations=tolerant))
        await cluster.settle()

        plain = condition(cluster.get("", "pods", "plain"), "PodScheduled")["message"]
        assert plain.startswith(
            "0/5 nodes are available: 1 node(s) were unschedulable, 2 node(s) didn't match Pod's node "
            "affinity/selector, 2 node(s) had untolerated taint {dedicated: edge}. "
        )
        assert cluster.get("", "pods", "tolerant")["spec"]["nodeName"] == "gz-1"

    async def test_not_ready_nodes_take_no_new_pods(self, cluster: Cluster) -> None:
        cluster.add_nodes()
        await cluster.settle()
        cluster.node_status("bj-1", ready=False)
        cluster.create(bare_pod("p", nodeSelector={"location": "beijing"}))
        await cluster.settle()
        assert cluster.get("", "pods", "p")["spec"]["nodeName"] == "bj-2"

    async def test_required_node_affinity(self, cluster: Cluster) -> None:
        cluster.add_nodes()
        affinity = {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {
                            "matchExpressions": [{"key": "region", "operator": "In", "values": ["south"]}],
                            "matchFields": [
                                {"key": "metadata.name", "operator": "NotIn", "values": ["gz-1"]}
                            ],
                        }
                    ]
                }
            }
        }
        cluster.create(bare_pod("a", affinity=affinity))
        cluster.create(bare_pod("b", affinity=affinity))
        await cluster.settle()
        assert {cluster.get("", "pods", n)["spec"]["nodeName"] for n in ("a", "b")} <= {"gz-2", "gz-3"}


def _node(name: str, labels: dict[str, str]) -> Obj:
    return {"metadata": {"name": name, "labels": labels}}


def _req(key: str, op: str, *values: str) -> Obj:
    return {"key": key, "operator": op, "values": list(values)}


AFFINITY_CASES = [
    ("in", [_req("zone", "In", "a", "b")], True),
    ("in-miss", [_req("zone", "In", "c")], False),
    ("notin", [_req("zone", "NotIn", "c")], True),
    ("notin-absent-key", [_req("missing", "NotIn", "c")], True),
    ("exists", [_req("zone", "Exists")], True),
    ("does-not-exist", [_req("zone", "DoesNotExist")], False),
    ("gt", [_req("cpus", "Gt", "4")], True),
    ("lt", [_req("cpus", "Lt", "4")], False),
    ("gt-not-a-number", [_req("zone", "Gt", "1")], False),
    ("and", [_req("zone", "In", "a"), _req("cpus", "Lt", "4")], False),
]


@pytest.mark.parametrize(
    ("exprs", "fits"), [c[1:] for c in AFFINITY_CASES], ids=[c[0] for c in AFFINITY_CASES]
)
def test_node_affinity_operators(exprs: list[Obj], fits: bool) -> None:
    pod = {
        "spec": {
            "affinity": {
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [
                            {"matchExpressions": [{"key": "never", "operator": "Exists"}]},
                            {"matchExpressions": exprs},
                        ]
                    }
                }
            }
        }
    }
    assert node_affinity_matches(pod, _node("n1", {"zone": "a", "cpus": "8"})) is fits


def test_empty_affinity_term_matches_nothing() -> None:
    pod = {
        "spec": {
            "affinity": {
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{}]}
                }
            }
        }
    }
    assert not node_affinity_matches(pod, _node("n1", {}))


TOLERATION_CASES = [
    ("equal", {"key": "k", "value": "v", "effect": "NoSchedule"}, True),
    ("equal-other-value", {"key": "k", "value": "x", "effect": "NoSchedule"}, False),
    ("exists-key", {"key": "k", "operator": "Exists"}, True),
    ("exists-everything", {"operator": "Exists"}, True),
    ("other-effect", {"key": "k", "operator": "Exists", "effect": "NoExecute"}, False),
]


@pytest.mark.parametrize(
    ("toleration", "ok"), [c[1:] for c in TOLERATION_CASES], ids=[c[0] for c in TOLERATION_CASES]
)
def test_tolerations(toleration: Obj, ok: bool) -> None:
    assert tolerates([toleration], {"key": "k", "value": "v", "effect": "NoSchedule"}) is ok


def test_fit_error_histogram_is_sorted() -> None:
    reasons = ["b reason", "a reason", "b reason"]
    assert fit_error(3, reasons) == (
        "0/3 nodes are available: 1 a reason, 2 b reason. preemption: 0/3 nodes are available: "
        "3 Preemption is not helpful for scheduling."
    )


# ---------------------------------------------------------------------------------------------
# Kubelet stand-in and nodes


def daemonset(name: str = "agent", selector: Obj | None = None, image: str = "agent:1") -> Obj:
    dep = deployment(name, selector=selector, image=image)
    del dep["spec"]["replicas"]
    return {**dep, "kind": "DaemonSet"}


class TestDaemonSet:
    def nodes_of(self, cluster: Cluster) -> list[str]:
        return sorted(p["spec"]["nodeName"] for p in cluster.pods("app=agent"))

    async def test_one_bound_running_pod_per_fitting_node(self, cluster: Cluster) -> None:
        cluster.add_nodes()
        cluster.create(daemonset(selector={"location": "guangzhou"}))
        await cluster.settle()
        pods = cluster.pods("app=agent")
        assert self.nodes_of(cluster) == ["gz-1", "gz-2", "gz-3"]
        for pod in pods:
            assert pod["status"]["phase"] == "Running" and ready(pod)
            assert pod["metadata"]["name"].startswith("agent-")
            assert pod["metadata"]["labels"]["pod-template-generation"] == "1"
            term = pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
            assert term["nodeSelectorTerms"][0]["matchFields"][0]["values"] == [pod["spec"]["nodeName"]]
            tolerated = {(t["key"], t["effect"]) for t in pod["spec"]["tolerations"]}
            assert ("node.kubernetes.io/unreachable", "NoExecute") in tolerated
        status = cluster.get("apps", "daemonsets", "agent")["status"]
        assert status == {
            "desiredNumberScheduled": 3,
            "currentNumberScheduled": 3,
            "updatedNumberScheduled": 3,
            "numberMisscheduled": 0,
            "numberReady": 3,
            "numberAvailable": 3,
            "numberUnavailable": 0,
            "observedGeneration": 1,
        }

    async def test_follows_nodes_joining_leaving_and_relabelled(self, cluster: Cluster) -> None:
        cluster.add_nodes()
        cluster.create(daemonset(selector={"location": "guangzhou"}))
        await cluster.settle()
        cluster.create(
            {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {"name": "gz-4", "labels": {"location": "guangzhou"}},
            }
        )
        gz1 = cluster.get("", "nodes", "gz-1")
        gz1["metadata"]["labels"]["location"] = "beijing"
        cluster.storage.update(cluster.rt("", "nodes"), gz1)
        cluster.storage.delete(cluster.rt("", "nodes"), "", "gz-2")
        await cluster.settle()
        assert self.nodes_of(cluster) == ["gz-3", "gz-4"]
        assert cluster.get("apps", "daemonsets", "agent")["status"]["desiredNumberScheduled"] == 2

    async def test_template_change_replaces_every_pod_by_default(self, cluster: Cluster) -> None:
        cluster.add_nodes()
        cluster.create(daemonset())
        await cluster.settle()
        ds = cluster.get("apps", "daemonsets", "agent")
        ds["spec"]["template"]["spec"]["containers"][0]["image"] = "agent:2"
        cluster.storage.update(cluster.rt("apps", "daemonsets"), ds)
        await cluster.settle()
        pods = cluster.pods("app=agent")
        assert self.nodes_of(cluster) == ["bj-1", "bj-2", "gz-1", "gz-2", "gz-3"]
        assert {p["spec"]["containers"][0]["image"] for p in pods} == {"agent:2"}
        assert {p["metadata"]["labels"]["pod-template-generation"] for p in pods} == {"2"}

    @pytest.mark.parametrize(("max_unavailable", "floor"), [(1, 4), ("40%", 3)])
    async def test_rolling_update_keeps_all_but_max_unavailable_nodes_served(
        self, cluster: Cluster, max_unavailable: int | str, floor: int
    ) -> None:
        cluster.add_nodes()
        ds = daemonset()
        ds["spec"]["updateStrategy"] = {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxUnavailable": max_unavailable},
        }
        cluster.create(ds)
        await cluster.settle()
        events = cluster.storage.subscribe(cluster.rt("", "pods"))
        ds = cluster.get("apps", "daemonsets", "agent")
        ds["spec"]["template"]["spec"]["containers"][0]["image"] = "agent:2"
        cluster.storage.update(cluster.rt("apps", "daemonsets"), ds)
        await cluster.settle()
        served = {p["metadata"]["name"]: p["spec"]["nodeName"] for p in cluster.pods("app=agent") if ready(p)}
        fewest = len(served)
        while (event := await events.next(wait=0)) is not None:
            name = event.obj["metadata"]["name"]
            served.pop(name, None)
            if event.type != "DELETED" and ready(event.obj):
                served[name] = event.obj["spec"]["nodeName"]
            fewest = min(fewest, len(set(served.values())))
        events.close()
        assert fewest == floor, "nodes with a ready agent during the rollout"
        assert {p["spec"]["containers"][0]["image"] for p in cluster.pods("app=agent")} == {"agent:2"}
        assert cluster.get("apps", "daemonsets", "agent")["status"]["updatedNumberScheduled"] == 5

    async def test_on_delete_replaces_a_pod_only_once_it_is_deleted(self, cluster: Cluster) -> None:
        cluster.add_nodes()
        ds = daemonset()
        ds["spec"]["updateStrategy"] = {"type": "OnDelete"}
        cluster.create(ds)
        await cluster.settle()
        ds = cluster.get("apps", "daemonsets", "agent")
        ds["spec"]["template"]["spec"]["containers"][0]["image"] = "agent:2"
        cluster.storage.update(cluster.rt("apps", "daemonsets"), ds)
        await cluster.settle()
        assert {p["spec"]["containers"][0]["image"] for p in cluster.pods("app=agent")} == {"agent:1"}
        assert cluster.get("apps", "daemonsets", "agent")["status"]["updatedNumberScheduled"] == 0
        victim = next(p for p in cluster.pods("app=agent") if p["spec"]["nodeName"] == "gz-1")
        cluster.storage.delete(cluster.rt("", "pods"), "default", victim["metadata"]["name"])
        await cluster.settle()
        images = {
            p["spec"]["nodeName"]: p["spec"]["containers"][0]["image"] for p in cluster.pods("app=agent")
        }
        assert images == {
            "bj-1": "agent:1",
            "bj-2": "agent:1",
            "gz-1": "agent:2",
            "gz-2": "agent:1",
            "gz-3": "agent:1",
        }

    async def test_no_schedule_taints_keep_new_pods_away_but_not_running_ones(self, cluster: Cluster) -> None:
        cluster.add_nodes()
        cluster.create(daemonset("old"))
        await cluster.settle()
        node = cluster.get("", "nodes", "bj-1")
        node["spec"]["taints"] = [{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]
        cluster.storage.update(cluster.rt("", "nodes"), node)
        cluster.create(daemonset("new"))
        await cluster.settle()
        assert sorted(p["spec"]["nodeName"] for p in cluster.pods("app=old")) == [
            "bj-1",
            "bj-2",
            "gz-1",
            "gz-2",
            "gz-3",
        ]
        assert sorted(p["spec"]["nodeName"] for p in cluster.pods("app=new")) == [
            "bj-2",
            "gz-1",
            "gz-2",
            "gz-3",
        ]
        node = cluster.get("", "nodes", "bj-1")
        node["spec"]["taints"] = [{"key": "dedicated", "value": "db", "effect": "NoExecute"}]
        cluster.storage.update(cluster.rt("", "nodes"), node)
        await cluster.settle()
        assert "bj-1" not in [p["spec"]["nodeName"] for p in cluster.pods("app=old")]


class TestNodes:
    async def test_bare_nodes_get_addresses_cidrs_and_ready(self, cluster: Cluster) -> None:
        cluster.add_nodes()
        await cluster.settle()
        nodes = {n["metadata"]["name"]: n for n in cluster.list("", "nodes")}
        ips = {n["status"]["addresses"][0]["address"] for n in nodes.values()}
        cidrs = {n["spec"]["podCIDR"] for n in nodes.values()}
        assert ips == {f"172.18.0.{i}" for i in range(2, 7)}
        assert cidrs == {f"10.244.{i}.0/24" for i in range(5)}
        bj1 = nodes["bj-1"]
        assert bj1["status"]["addresses"][1] == {"type": "Hostname", "address": "bj-1"}
        assert condition(bj1, "Ready")["reason"] == "KubeletReady"
        assert bj1["spec"]["podCIDRs"] == [bj1["spec"]["podCIDR"]]

    async def test_nodes_get_a_heartbeat_lease(self, cluster: Cluster) -> None:
        cluster.add_nodes()
        await cluster.settle()
        lease = cluster.get("coordination.k8s.io", "leases", "gz-2", ns="kube-node-lease")
        node = cluster.get("", "nodes", "gz-2")
        assert lease["spec"] == {
            "holderIdentity": "gz-2",
            "leaseDurationSeconds": 40,
            "renewTime": "2026-01-02T03:04:05.000000Z",
        }
        assert lease["metadata"]["ownerReferences"] == [
            {"apiVersion": "v1", "kind": "Node", "name": "gz-2", "uid": node["metadata"]["uid"]}
        ]

    async def test_declared_node_status_is_kept(self, cluster: Cluster) -> None:
        node = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": "x"},
            "spec": {"podCIDR": "10.244.9.0/24"},
        }
        cluster.create(node)
        nodes = cluster.rt("", "nodes")
        stored = cluster.get("", "nodes", "x")
        stored["status"] = {
            "addresses": [{"type": "InternalIP", "address": "192.168.1.5"}],
            "conditions": [{"type": "Ready", "status": "False", "reason": "KubeletNotReady"}],
        }
        cluster.storage.update(nodes, stored, subresource="status")
        await cluster.settle()
        got = cluster.get("", "nodes", "x")
        assert got["spec"]["podCIDR"] == "10.244.9.0/24"
        assert got["status"]["addresses"] == [{"type": "InternalIP", "address": "192.168.1.5"}]
        assert condition(got, "Ready")["status"] == "False"

    async def test_not_ready_node_makes_its_pods_unready_and_back(self, cluster: Cluster) -> None:
        cluster.add_nodes()
        cluster.create(deployment(selector={"location": "beijing"}))
        cluster.create(service())
        await cluster.settle()
        cluster.node_status("bj-1", ready=False)
        await cluster.settle()

        by_node = {p["spec"]["nodeName"]: p for p in cluster.pods("app=web")}
        assert not ready(by_node["bj-1"]) and ready(by_node["bj-2"])
        assert by_node["bj-1"]["status"]["phase"] == "Running"
        (eps,) = cluster.list("discovery.k8s.io", "endpointslices")
        conds = {e["nodeName"]: e["conditions"] for e in eps["endpoints"]}
        assert conds["bj-1"] == {"ready": False, "serving": False, "terminating": False}
        assert conds["bj-2"] == {"ready": True, "serving": True, "terminating": False}
        (subset,) = cluster.get("", "endpoints", "web")["subsets"]
        assert [a["nodeName"] for a in subset["addresses"]] == ["bj-2"]
        assert [a["nodeName"] for a in subset["notReadyAddresses"]] == ["bj-1"]
        deploy = cluster.get("apps", "deployments", "web")
        assert deploy["status"]["readyReplicas"] == 1

        cluster.node_status("bj-1", ready=True)
        await cluster.settle()
        assert all(ready(p) for p in cluster.pods("app=web"))

    async def test_pods_of_a_deleted_node_are_deleted_and_replaced(self, cluster: Cluster) -> None:
        cluster.add_nodes()
        cluster.create(deployment(selector={"location": "beijing"}))
        await cluster.settle()
        gone = {p["metadata"]["name"] for p in cluster.pods("app=web") if p["spec"]["nodeName"] == "bj-1"}
        cluster.storage.delete(cluster.rt("", "nodes"), None, "bj-1")
        await cluster.settle()
        pods = cluster.pods("app=web")
        assert len(pods) == 2 and not gone & {p["metadata"]["name"] for p in pods}
        assert {p["spec"]["nodeName"] for p in pods} == {"bj-2"}
        ips = [p["status"]["podIP"] for p in pods]
        assert len(set(ips)) == 2

    async def test_restart_restores_pod_ips(self, cluster: Cluster) -> None:
        cluster.add_nodes()
        cluster.create(bare_pod("one", nodeName="gz-1"))
        await cluster.settle()
        first_ip = cluster.get("", "pods", "one")["status"]["podIP"]
        cluster.sim.stop()
        second = Simulator(cluster.storage, clock=lambda: NOW, rng=random.Random(3))
        task = asyncio.create_task(second.run())
        cluster.sim = second
        cluster.create(bare_pod("two", nodeName="gz-1"))
        await cluster.settle()
        second.stop()
        await asyncio.wait_for(task, 5)
        assert cluster.get("", "pods", "one")["status"]["podIP"] == first_ip
        assert cluster.get("", "pods", "two")["status"]["podIP"] not in (first_ip, "")

    async def test_host_network_pods_use_the_node_ip(self, cluster: Cluster) -> None:
        cluster.add_nodes()
        cluster.create(bare_pod("hn", nodeName="bj-2", hostNetwork=True))
        await cluster.settle()
        pod = cluster.get("", "pods", "hn")
        assert (
            pod["status"]["podIP"]
            == pod["status"]["hostIP"]
            == cluster.get("", "nodes", "bj-2")["status"]["addresses"][0]["address"]
        )


# ---------------------------------------------------------------------------------------------
# StatefulSets


class TestStatefulSet:
    async def test_ordinal_pods_with_identity(self, cluster: Cluster) -> None:
        cluster.add_nodes()
        cluster.create(statefulset(replicas=3))
        await cluster.settle()
        pods = {p["metadata"]["name"]: p for p in cluster.pods("app=db")}
        assert sorted(pods) == ["db-0", "db-1", "db-2"]
        sts = cluster.get("apps", "statefulsets", "db")
        revision = sts["status"]["updateRevision"]
        for i in range(3):
            pod = pods[f"db-{i}"]
            assert pod["metadata"]["labels"] == {
                "app": "db",
                "controller-revision-hash": revision,
                "statefulset.kubernetes.io/pod-name": f"db-{i}",
                "apps.kubernetes.io/pod-index": str(i),
            }
            assert (pod["spec"]["hostname"], pod["spec"]["subdomain"]) == (f"db-{i}", "db-svc")
            assert pod["metadata"]["ownerReferences"][0]["kind"] == "StatefulSet" and ready(pod)
        assert sts["status"] == {
            "replicas": 3,
            "observedGeneration": 1,
            "readyReplicas": 3,
            "currentReplicas": 3,
            "updatedReplicas": 3,
            "availableReplicas": 3,
            "currentRevision": revision,
            "updateRevision": revision,
            "collisionCount": 0,
        }
        (rev,) = cluster.list("apps", "controllerrevisions")
        assert rev["metadata"]["name"] == revision and rev["revision"] == 1
        assert rev["data"]["spec"]["template"]["$patch"] == "replace"

    @pytest.mark.parametrize(
        ("policy", "created"), [("OrderedReady", ["db-0"]), ("Parallel", ["db-0", "db-1", "db-2"])]
    )
    async def test_pod_management_policy(self, cluster: Cluster, policy: str, created: list[str]) -> None:
        sts = statefulset(replicas=3)
        sts["spec"]["podManagementPolicy"] = policy
        sts["spec"]["template"]["spec"]["nodeSelector"] = {"location": "nowhere"}
        cluster.add_nodes()
        cluster.create(sts)
        await cluster.settle()
        pods = cluster.pods("app=db")
        assert [p["metadata"]["name"] for p in pods] == created
        assert {p["status"]["phase"] for p in pods} == {"Pending"}

    async def test_scale_down_removes_highest_ordinals(self, cluster: Cluster) -> None:
        cluster.add_nodes()
        cluster.create(statefulset(replicas=3))
        await cluster.settle()
        sts = cluster.get("apps", "statefulsets", "db")
        sts["spec"]["replicas"] = 1
        cluster.storage.update(cluster.rt("apps", "statefulsets"), sts)
        await cluster.settle()
        assert [p["metadata"]["name"] for p in cluster.pods("app=db")] == ["db-0"]
        assert cluster.get("apps", "statefulsets", "db")["status"]["replicas"] == 1

    async def test_template_change_replaces_pods_with_the_new_revision(self, cluster: Cluster) -> None:
        cluster.add_nodes()
        cluster.create(statefulset(replicas=2))
        await cluster.settle()
        old = cluster.get("apps", "statefulsets", "db")["status"]["updateRevision"]
        sts = cluster.get("apps", "statefulsets", "db")
        sts["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:1.28"
        cluster.storage.update(cluster.rt("apps", "statefulsets"), sts)
        await cluster.settle()
        status = cluster.get("apps", "statefulsets", "db")["status"]
        assert status["updateRevision"] != old and status["currentRevision"] == status["updateRevision"]
        assert {p["metadata"]["labels"]["controller-revision-hash"] for p in cluster.pods("app=db")} == {
            status["updateRevision"]
        }
        assert len(cluster.list("apps", "controllerrevisions")) == 2

    async def test_controller_revisions_are_trimmed_to_the_history_limit(self, cluster: Cluster) -> None:
        cluster.add_nodes()
        sts = statefulset(replicas=1)
        sts["spec"]["revisionHistoryLimit"] = 0
        cluster.create(sts)
        await cluster.settle()
        for image in ("nginx:2", "nginx:3"):
            sts = cluster.get("apps", "statefulsets", "db")
            sts["spec"]["template"]["spec"]["containers"][0]["image"] = image
            cluster.storage.update(cluster.rt("apps", "statefulsets"), sts)
            await cluster.settle()
        status = cluster.get("apps", "statefulsets", "db")["status"]
        revisions = cluster.list("apps", "controllerrevisions")
        assert [(r["metadata"]["name"], r["revision"]) for r in revisions] == [(status["updateRevision"], 3)]

    async def test_headless_service_publishes_hostnames(self, cluster: Cluster) -> None:
        cluster.add_nodes()
        cluster.create(statefulset(replicas=2))
        cluster.create(service("db-svc", app="db", headless=True))
        await cluster.settle()
        (eps,) = cluster.list("discovery.k8s.io", "endpointslices")
        assert eps["metadata"]["labels"]["service.kubernetes.io/headless"] == ""
        assert sorted(e["hostname"] for e in eps["endpoints"]) == ["db-0", "db-1"]
        (subset,) = cluster.get("", "endpoints", "db-svc")["subsets"]
        assert sorted(a["hostname"] for a in subset["addresses"]) == ["db-0", "db-1"]


# ---------------------------------------------------------------------------------------------
# Endpoints


class TestEndpoints:
    async def test_slice_and_endpoints_for_a_service(self, cluster: Cluster) -> None:
        cluster.add_nodes()
        nodes = cluster.rt("", "nodes")
        node = cluster.get("", "nodes", "bj-1")
        node["metadata"]["labels"]["topology.kubernetes.io/zone"] = "zone-a"
        cluster.storage.update(nodes, node)
        cluster.create(deployment(selector={"location": "beijing"}))
        svc = cluster.create(service())
        await cluster.settle()

        (eps,) = cluster.list("discovery.k8s.io", "endpointslices")
        assert eps["metadata"]["name"].startswith("web-") and len(eps["metadata"]["name"]) == 9
        assert eps["metadata"]["generateName"] == "web-"
        assert eps["metadata"]["labels"] == {
            "kubernetes.io/service-name": "web",
            "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
        }
        assert eps["metadata"]["ownerReferences"] == [
            {
                "apiVersion": "v1",
                "kind": "Service",
                "name": "web",
                "uid": svc["metadata"]["uid"],
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
        assert eps["addressType"] == "IPv4"
        assert eps["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
        pods = {p["metadata"]["name"]: p for p in cluster.pods("app=web")}
        by_node = {e["nodeName"]: e for e in eps["endpoints"]}
        assert sorted(by_node) == ["bj-1", "bj-2"]
        assert by_node["bj-1"]["zone"] == "zone-a" and "zone" not in by_node["bj-2"]
        for endpoint in eps["endpoints"]:
            pod = pods[endpoint["targetRef"]["name"]]
            assert endpoint["addresses"] == [pod["status"]["podIP"]]
            assert endpoint["targetRef"] == {
                "kind": "Pod",
                "namespace": "default",
                "name": pod["metadata"]["name"],
                "uid": pod["metadata"]["uid"],
            }

        legacy = cluster.get("", "endpoints", "web")
        assert legacy["metadata"]["labels"] == {"endpointslice.kubernetes.io/skip-mirror": "true"}
        (subset,) = legacy["subsets"]
        assert subset["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
        assert sorted(a["ip"] for a in subset["addresses"]) == sorted(
            p["status"]["podIP"] for p in pods.values()
        )

    async def test_endpoints_follow_label_changes_and_scale(self, cluster: Cluster) -> None:
        cluster.add_nodes()
        cluster.create(deployment(replicas=3))
        cluster.create(service())
        await cluster.settle()
        assert len(cluster.list("discovery.k8s.io", "endpointslices")[0]["endpoints"]) == 3
        deploy = cluster.get("apps", "deployments", "web")
        deploy["spec"]["replicas"] = 0
        cluster.storage.update(cluster.rt("apps", "deployments"), deploy)
        await cluster.settle()
        (eps,) = cluster.list("discovery.k8s.io", "endpointslices")
        assert eps["endpoints"] == [] and eps["ports"] == []
        assert "subsets" not in cluster.get("", "endpoints", "web")

    async def test_service_without_selector_is_left_alone(self, cluster: Cluster) -> None:
        svc = service()
        del svc["spec"]["selector"]
        cluster.create(svc)
        await cluster.settle()
        assert cluster.list("discovery.k8s.io", "endpointslices") == []
        assert cluster.list("", "endpoints") == []

    async def test_deleted_service_loses_its_endpoints(self, cluster: Cluster) -> None:
        cluster.create(service())
        await cluster.settle()
        assert cluster.get("", "endpoints", "web")
        cluster.storage.delete(cluster.rt("", "services"), "default", "web")
        await cluster.settle()
        assert cluster.list("", "endpoints") == []

    async def test_tampered_slice_is_repaired(self, cluster: Cluster) -> None:
        cluster.add_nodes()
        cluster.create(deployment(replicas=1))
        cluster.create(service())
        await cluster.settle()
        (eps,) = cluster.list("discovery.k8s.io", "endpointslices")
        eps["endpoints"] = []
        cluster.storage.update(cluster.rt("discovery.k8s.io", "endpointslices"), eps)
        await cluster.settle()
        (repaired,) = cluster.list("discovery.k8s.io", "endpointslices")
        assert len(repaired["endpoints"]) == 1 and repaired["metadata"]["name"] == eps["metadata"]["name"]


# ---------------------------------------------------------------------------------------------
# Pure helpers


def test_pod_template_hash_is_stable_and_template_sensitive() -> None:
    template = deployment()["spec"]["template"]
    first = pod_template_hash(template)
    assert first == pod_template_hash(yaml.safe_load(yaml.safe_dump(template)))
    assert set(first) <= set("bcdfghjklmnpqrstvwxz2456789")
    changed = deployment(image="nginx:2")["spec"]["template"]
    assert pod_template_hash(changed) != first
    assert pod_template_hash(template, collision_count=1) != first


def test_set_condition_moves_transition_time_only_on_status_flips() -> None:
    first = set_condition([], {"type": "Ready", "status": "True", "reason": "A"}, "t1")
    assert set_condition(first, {"type": "Ready", "status": "True", "reason": "A"}, "t2") is first
    reason_change = set_condition(
        first, {"type": "Ready", "status": "True", "reason": "B"}, "t2", update_time=True
    )
    assert reason_change == [
        {"type": "Ready", "status": "True", "lastUpdateTime": "t2", "lastTransitionTime": "t1", "reason": "B"}
    ]
    flipped = set_condition(reason_change, {"type": "Ready", "status": "False", "reason": "B"}, "t3")
    assert flipped[0]["lastTransitionTime"] == "t3"


# ---------------------------------------------------------------------------------------------
# End to end over HTTP


@pytest.fixture
async def live() -> AsyncIterator[tuple[str, aiohttp.ClientSession]]:
    sb = Sandbox(simulate=True)
    url = await sb.start("127.0.0.1", 0)
    async with aiohttp.ClientSession() as session:
        yield url, session
    await sb.stop()


async def test_http_example_cluster(live: tuple[str, aiohttp.ClientSession], eventually: Any) -> None:
    url, session = live

    async def call(method: str, path: str, body: Any = None, **kw: Any) -> Any:
        async with session.request(method, url + path, json=body, **kw) as resp:
            assert resp.status < 300, await resp.text()
            return await resp.json()

    for node in EXAMPLE_NODES:
        await call("POST", "/api/v1/nodes", node)
    await call(
        "POST", "/apis/apps/v1/namespaces/default/deployments", deployment(selector={"location": "beijing"})
    )
    await call("POST", "/api/v1/namespaces/default/services", service())

    async def deployment_ready() -> bool:
        got = await call("GET", "/apis/apps/v1/namespaces/default/deployments/web")
        return got["status"].get("readyReplicas") == 2 and got["status"].get("availableReplicas") == 2

    await eventually(deployment_ready, message="deployment not ready")
    pods = (await call("GET", "/api/v1/namespaces/default/pods", params={"labelSelector": "app=web"}))[
        "items"
    ]
    assert sorted(p["spec"]["nodeName"] for p in pods) == ["bj-1", "bj-2"]
    assert {p["status"]["phase"] for p in pods} == {"Running"}

    async def two_endpoints() -> list[Obj]:
        slices = await call(
            "GET",
            "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices",
            params={"labelSelector": "kubernetes.io/service-name=web"},
        )
        items: list[Obj] = slices["items"]
        return items if items and len(items[0]["endpoints"]) == 2 else []

    (eps,) = await eventually(two_endpoints, message="endpoint slice not filled")
    assert sorted(e["nodeName"] for e in eps["endpoints"]) == ["bj-1", "bj-2"]
    assert all(e["conditions"]["ready"] for e in eps["endpoints"])

    table = await call(
        "GET",
        "/api/v1/namespaces/default/pods",
        headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"},
    )
    assert [c["name"] for c in table["columnDefinitions"][:5]] == [
        "Name",
        "Ready",
        "Status",
        "Restarts",
        "Age",
    ]
    assert {tuple(r["cells"][1:3]) for r in table["rows"]} == {("1/1", "Running")}
