"""EventRecorder against the sandbox: Event shape, count aggregation by PATCH, never raising."""

from __future__ import annotations

from typing import Any

from prometheus_client import REGISTRY

from servicegroup.kube.client import Client
from servicegroup.kube.events import NORMAL, WARNING, EventRecorder
from servicegroup.kube.resources import CONFIGMAPS, EVENTS, NODES
from servicegroup.sandbox import Sandbox


async def make_configmap(kube: Client, name: str = "subject") -> dict[str, Any]:
    return await kube.create(
        CONFIGMAPS,
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "default"}},
    )


async def events_in(kube: Client, namespace: str = "default") -> list[dict[str, Any]]:
    return list((await kube.list(EVENTS, namespace))["items"])


def dropped(component: str) -> float:
    return REGISTRY.get_sample_value("servicegroup_events_dropped_total", {"component": component}) or 0


async def test_event_shape(kube: Client) -> None:
    subject = await make_configmap(kube)
    recorder = EventRecorder(kube, "servicegroup-grid", host="node-a")
    recorder.event(subject, NORMAL, "UnitAdded", "unit zone1 added")
    await recorder.flush()
    (event,) = await events_in(kube)
    assert event["involvedObject"] == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "name": "subject",
        "namespace": "default",
        "uid": subject["metadata"]["uid"],
        "resourceVersion": subject["metadata"]["resourceVersion"],
    }
    assert (event["type"], event["reason"], event["message"], event["count"]) == (
        "Normal",
        "UnitAdded",
        "unit zone1 added",
        1,
    )
    assert event["source"] == {"component": "servicegroup-grid", "host": "node-a"}
    assert event["reportingComponent"] == "servicegroup-grid"
    assert event["firstTimestamp"] and event["lastTimestamp"]
    assert event["metadata"]["name"].startswith("subject.")
    await recorder.close()


async def test_repeats_within_window_bump_count(kube: Client) -> None:
    subject = await make_configmap(kube)
    recorder = EventRecorder(kube, "servicegroup-grid")
    for _ in range(3):
        recorder.event(subject, WARNING, "ChildNotOwned", "deployment d is not ours")
    recorder.event(subject, WARNING, "ChildNotOwned", "another message")
    await recorder.flush()
    events = sorted(await events_in(kube), key=lambda e: e["message"])
    assert [(e["message"], e["count"]) for e in events] == [
        ("another message", 1),
        ("deployment d is not ours", 3),
    ]
    await recorder.close()


async def test_repeat_after_window_creates_a_new_event(kube: Client) -> None:
    subject = await make_configmap(kube)
    recorder = EventRecorder(kube, "servicegroup-grid", aggregation_window=0)
    recorder.event(subject, NORMAL, "Synced", "same")
    await recorder.flush()
    recorder.event(subject, NORMAL, "Synced", "same")
    await recorder.flush()
    assert [e["count"] for e in await events_in(kube)] == [1, 1]
    await recorder.close()


async def test_cluster_scoped_objects_get_events_in_default(kube: Client) -> None:
    node = await kube.create(NODES, {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "edge-1"}})
    recorder = EventRecorder(kube, "servicegroup-site")
    recorder.event(node, NORMAL, "UnitJoined", "joined")
    await recorder.flush()
    (event,) = await events_in(kube)
    assert event["involvedObject"]["kind"] == "Node"
    assert "namespace" not in event["involvedObject"]
    await recorder.close()


async def test_event_never_raises(kube: Client, sandbox: Sandbox) -> None:
    subject = await make_configmap(kube)
    recorder = EventRecorder(kube, "servicegroup-faulty")
    before = dropped("servicegroup-faulty")
    sandbox.faults.set(errors=[{"code": 500, "resource": "events"}])
    recorder.event(subject, NORMAL, "Created", "x")
    recorder.event(subject, "Bogus", "Created", "invalid type is dropped, not raised")
    await recorder.flush()
    assert dropped("servicegroup-faulty") == before + 2
    sandbox.faults.clear()
    recorder.event(subject, NORMAL, "Created", "x")
    await recorder.flush()
    assert len(await events_in(kube)) == 1
    await recorder.close()
