"""Re-filtering rules: which upstream change re-filters what, and that unchanged views stay silent."""

from __future__ import annotations

from typing import Any

import orjson
from prometheus_client import REGISTRY

from servicegroup.kube.resources import ENDPOINTS, ENDPOINTSLICES, NODES, SERVICES
from servicegroup.traffic.sync import ServedView, TopologySync
from servicegroup.traffic.watchcache import ResourceVersions


def node(name: str, location: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": {"location": location, "kubernetes.io/hostname": name}}}


def service(name: str = "svc", keys: str | None = '["location"]') -> dict[str, Any]:
    annotations = {"topologyKeys": keys} if keys is not None else {}
    return {"metadata": {"name": name, "namespace": "default", "annotations": annotations}, "spec": {}}


def eslice(name: str, *nodes: str, service_name: str = "svc") -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "namespace": "default",
            "labels": {"kubernetes.io/service-name": service_name},
        },
        "addressType": "IPv4",
        "endpoints": [{"addresses": [f"10.0.0.{i}"], "nodeName": n} for i, n in enumerate(nodes, 1)],
    }


def endpoints(name: str, *nodes: str) -> dict[str, Any]:
    addresses = [{"ip": f"10.0.0.{i}", "nodeName": n} for i, n in enumerate(nodes, 1)]
    return {"metadata": {"name": name, "namespace": "default"}, "subsets": [{"addresses": addresses}]}


NODES_LIST = [node("bj-1", "beijing"), node("bj-2", "beijing"), node("gz-1", "guangzhou")]


def started(*, svc: dict[str, Any] | None = None) -> TopologySync:
    sync = TopologySync("bj-1", ServedView(ResourceVersions()))
    sync.resync(
        {
            "nodes": NODES_LIST,
            "services": [svc or service()],
            "endpointslices": [eslice("svc-1", "bj-2", "gz-1")],
            "endpoints": [endpoints("svc", "bj-2", "gz-1")],
            "namespaces": [{"metadata": {"name": "default"}}],
        }
    )
    return sync


def slice_nodes(sync: TopologySync, key: str = "default/svc-1") -> list[str]:
    served = sync.served.cache(ENDPOINTSLICES).get(key)
    assert served is not None
    return [ep["nodeName"] for ep in served["endpoints"]]


def endpoints_nodes(sync: TopologySync) -> list[str]:
    served = sync.served.cache(ENDPOINTS).get("default/svc")
    assert served is not None
    return [a["nodeName"] for s in served["subsets"] for a in s.get("addresses", [])]


def test_resync_serves_filtered_view() -> None:
    sync = started()
    assert slice_nodes(sync) == ["bj-2"]
    assert endpoints_nodes(sync) == ["bj-2"]
    assert len(sync.served.cache(NODES)) == 3


def test_scale_up_in_other_unit_changes_nothing_served() -> None:
    sync = started()
    watcher = sync.served.cache(ENDPOINTSLICES).watch(sync.served.rvs.current)
    sync.changed(ENDPOINTSLICES, eslice("svc-1", "bj-2", "gz-1"), eslice("svc-1", "bj-2", "gz-1", "gz-1"))
    assert watcher.backlog == 0
    sync.changed(
        ENDPOINTSLICES,
        eslice("svc-1", "bj-2", "gz-1", "gz-1"),
        eslice("svc-1", "bj-2", "gz-1", "gz-1", "bj-1"),
    )
    assert slice_nodes(sync) == ["bj-2", "bj-1"]
    assert watcher.backlog == 1


def test_annotation_removal_shows_all_endpoints() -> None:
    sync = started()
    sync.changed(SERVICES, service(), service(keys=None))
    assert slice_nodes(sync) == ["bj-2", "gz-1"]
    assert endpoints_nodes(sync) == ["bj-2", "gz-1"]


def test_own_relabel_refilters_every_topology_service() -> None:
    sync = started()
    sync.changed(NODES, node("bj-1", "beijing"), node("bj-1", "guangzhou"))
    assert slice_nodes(sync) == ["gz-1"]
    assert endpoints_nodes(sync) == ["gz-1"]


async def test_other_node_relabel_refilters_services_on_it() -> None:
    sync = started()
    watcher = sync.served.cache(ENDPOINTSLICES).watch(sync.served.rvs.current)
    sync.changed(NODES, node("gz-1", "guangzhou"), node("gz-1", "beijing"))
    assert slice_nodes(sync) == ["bj-2", "gz-1"]
    events = [orjson.loads(line) for line in await watcher.take(0)]
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("MODIFIED", "svc-1")]


def test_relabel_of_unrelated_label_is_silent() -> None:
    sync = started()
    before = sync.served.rvs.current
    relabelled = node("gz-1", "guangzhou")
    relabelled["metadata"]["labels"]["disk"] = "ssd"
    sync.changed(NODES, node("gz-1", "guangzhou"), relabelled)
    assert sync.served.rvs.current == before + 1, "only the Node itself changed"


def test_slice_moving_to_another_service_is_refiltered() -> None:
    sync = started()
    sync.changed(SERVICES, None, service("other", keys=None))
    sync.changed(
        ENDPOINTSLICES, eslice("svc-1", "bj-2", "gz-1"), eslice("svc-1", "bj-2", "gz-1", service_name="other")
    )
    assert slice_nodes(sync) == ["bj-2", "gz-1"]


def test_slice_delete_is_served_as_delete() -> None:
    sync = started()
    sync.changed(ENDPOINTSLICES, eslice("svc-1", "bj-2", "gz-1"), None)
    assert sync.served.cache(ENDPOINTSLICES).get("default/svc-1") is None
    sync.changed(ENDPOINTS, endpoints("svc", "bj-2"), None)
    assert sync.served.cache(ENDPOINTS).get("default/svc") is None


def test_fallback_refilters_sibling_slices() -> None:
    svc = service()
    svc["metadata"]["annotations"]["servicegroup.io/topology-fallback"] = "anywhere"
    sync = started(svc=svc)
    assert slice_nodes(sync) == ["bj-2"]
    sync.changed(ENDPOINTSLICES, None, eslice("svc-2", "gz-1"))
    assert slice_nodes(sync, "default/svc-2") == []
    sync.changed(ENDPOINTSLICES, eslice("svc-1", "bj-2", "gz-1"), eslice("svc-1", "gz-1"))
    assert slice_nodes(sync) == ["gz-1"]
    assert slice_nodes(sync, "default/svc-2") == ["gz-1"], "no local endpoint left: every slice falls back"


async def test_resync_after_outage_emits_only_differences() -> None:
    sync = started()
    watcher = sync.served.cache(ENDPOINTSLICES).watch(sync.served.rvs.current)
    sync.resync(
        {
            "nodes": NODES_LIST,
            "services": [service()],
            "endpointslices": [eslice("svc-1", "bj-2", "gz-1"), eslice("svc-2", "bj-1")],
            "endpoints": [endpoints("svc", "bj-2", "gz-1")],
            "namespaces": [{"metadata": {"name": "default"}}],
        }
    )
    events = [orjson.loads(line) for line in await watcher.take(0)]
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "svc-2")]


def hidden_sample(resource: str) -> float | None:
    return REGISTRY.get_sample_value("servicegroup_proxy_filtered_endpoints", {"resource": resource})


def test_hidden_endpoints_are_counted_and_exported() -> None:
    sync = started()  # gz-1's endpoint is outside bj-1's unit, in the slice and in the Endpoints
    assert (sync.hidden.total(ENDPOINTSLICES), sync.hidden.total(ENDPOINTS)) == (1, 1)
    sync.changed(ENDPOINTSLICES, eslice("svc-1", "bj-2", "gz-1"), eslice("svc-1", "bj-2", "gz-1", "gz-1"))
    assert sync.hidden.total(ENDPOINTSLICES) == 2
    assert hidden_sample("endpointslices") == 2
    sync.changed(NODES, node("bj-1", "beijing"), node("bj-1", "guangzhou"))  # now bj-2 is foreign
    assert (sync.hidden.total(ENDPOINTSLICES), sync.hidden.total(ENDPOINTS)) == (1, 1)
    sync.changed(SERVICES, service(), service(keys=None))  # no policy: nothing hidden
    assert (sync.hidden.total(ENDPOINTSLICES), sync.hidden.total(ENDPOINTS)) == (0, 0)
    assert hidden_sample("endpoints") == 0


def test_hidden_count_follows_deletes_and_resync() -> None:
    sync = started()
    sync.changed(ENDPOINTS, endpoints("svc", "bj-2", "gz-1"), None)
    sync.changed(ENDPOINTSLICES, eslice("svc-1", "bj-2", "gz-1"), None)
    assert (sync.hidden.total(ENDPOINTSLICES), sync.hidden.total(ENDPOINTS)) == (0, 0)
    again = started()
    again.resync({"nodes": NODES_LIST, "services": [service()], "endpointslices": [], "endpoints": []})
    assert (again.hidden.total(ENDPOINTSLICES), again.hidden.total(ENDPOINTS)) == (0, 0)
