"""Scenario 6: malformed grids, NodeUnits and NodeGroups (hypothesis) against a live cluster.

Every generated object is either rejected by the API server with 422 (CRD schema / CEL) or
accepted and then reconciled by the running manager, which reports on it (grid status with
observedGeneration; site `Valid` condition for the generation). Either way the manager keeps
reconciling the docs' cluster, and no other object changes (resourceVersions are compared).

Extension point: `BAD_INPUT_KINDS` is the registry of kinds under test. Overrides and config
grids (issue 7) add one `BadKind` each (resource, strategy, `reconciled` probe); nothing else
changes. Generated objects never reference the docs' nodes, units or label keys, so a legitimate
effect on them cannot be mistaken for damage.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reliability_scenarios import converged, create_objects
from reliability_worlds import World, docs_world, install_crds

from servicegroup.grid.kinds import DEPLOYMENT_GRIDS, SERVICE_GRIDS, STATEFULSET_GRIDS
from servicegroup.kube.client import Client
from servicegroup.kube.conditions import get_condition
from servicegroup.kube.errors import ApiError, Invalid, NotFound
from servicegroup.kube.resources import DEPLOYMENTS, NODES, SERVICES, STATEFULSETS, Resource
from servicegroup.manager import Manager
from servicegroup.sandbox import Sandbox
from servicegroup.site.controller import NODEGROUPS, NODEUNITS
from waits import eventually

Obj = dict[str, Any]
T = TypeVar("T")
pytestmark = pytest.mark.timeout(300)

# label keys, units and nodes of the docs' cluster: generated objects must not name them
TAKEN = {"location", "region", "zone", "site", "beijing", "guangzhou", "kubernetes.io/hostname"}
EXAMPLES = 10  # per kind: CI stays fast; the bench does not run this scenario


# -- strategies: a valid object, then one or two bad fields ----------------------------------------
#
# An object where every field is bad is rejected on the first one; a valid base with one or two
# mutations reaches each check (schema, CEL, controller) on its own.

_dns_label = st.from_regex(r"\A[a-z]([-a-z0-9]{0,20}[a-z0-9])?\Z")
valid_names = _dns_label.map(lambda s: f"hyp-{s}")
bad_names = st.one_of(
    st.text(min_size=1, max_size=40),  # unicode, spaces, upper case
    st.integers(64, 300).map(lambda n: "h" * n),  # over-long
    st.just(""),
)
bad_keys = st.one_of(
    st.text(max_size=30),
    st.integers(64, 320).map(lambda n: "k" * n),
    st.builds(lambda a, b: f"{a}/{b}", st.text(max_size=20), _dns_label),
    st.just(""),
).filter(lambda k: k not in TAKEN)
bad_values = st.one_of(
    st.text(max_size=70).filter(lambda v: v not in TAKEN), st.integers(64, 100).map(lambda n: "v" * n)
)
bad_maps = st.one_of(
    st.dictionaries(bad_keys, bad_values, min_size=1, max_size=6),
    st.integers(100, 400).map(lambda n: {f"hyp-{i}": "x" for i in range(n)}),  # huge
)
bad_replicas = st.one_of(st.none(), st.integers(-3, -1), st.just(2**40), st.text(max_size=5))
Mutation = Callable[[st.DrawFn, Obj], None]


def _pod(obj: Obj) -> Obj:
    spec = obj["spec"]["template"]
    return spec.get("template", spec)


GRID_MUTATIONS: dict[str, Mutation] = {
    "name": lambda d, o: o["metadata"].update(name=d(bad_names)),
    "labels": lambda d, o: o["metadata"].update(labels=d(bad_maps)),
    "gridUniqKey": lambda d, o: o["spec"].update(gridUniqKey=d(bad_keys)),
    "replicas": lambda d, o: o["spec"]["template"].update(replicas=d(bad_replicas)),
    "pod-labels": lambda d, o: _pod(o).setdefault("metadata", {}).update(labels=d(bad_maps)),
    "nodeSelector": lambda d, o: _pod(o)["spec"].update(nodeSelector=d(bad_maps)),
    "container-name": lambda d, o: _pod(o)["spec"]["containers"][0].update(name=d(bad_names)),
    # conflicting rules: a unit mapped to a template that is not in the pool, a missing default,
    # a nodeSelector fighting the grid's own key
    "templates": lambda d, o: o["spec"].update(templates={d(_dns_label): d(valid_names)}),
    "defaultTemplateName": lambda d, o: o["spec"].update(defaultTemplateName=d(valid_names)),
    "selector-vs-key": lambda d, o: _pod(o)["spec"].update(nodeSelector={o["spec"]["gridUniqKey"]: "other"}),
}
SERVICE_MUTATIONS: dict[str, Mutation] = {
    "name": GRID_MUTATIONS["name"],
    "labels": GRID_MUTATIONS["labels"],
    "gridUniqKey": GRID_MUTATIONS["gridUniqKey"],
    "selector": lambda d, o: o["spec"]["template"].update(selector=d(bad_maps)),
    "port": lambda d, o: o["spec"]["template"]["ports"][0].update(
        port=d(st.integers(-5, 0) | st.integers(65536, 99999))
    ),
}
UNIT_MUTATIONS: dict[str, Mutation] = {
    "name": lambda d, o: o["metadata"].update(name=d(bad_names)),
    "type": lambda d, o: o["spec"].update(type=d(st.text(max_size=10))),
    "nodes": lambda d, o: o["spec"].update(nodes=d(st.lists(bad_names, min_size=1, max_size=500))),
    "setNode-labels": lambda d, o: o["spec"]["setNode"].update(labels=d(bad_maps)),
    "setNode-annotations": lambda d, o: o["spec"]["setNode"].update(annotations=d(bad_maps)),
    "taint": lambda d, o: o["spec"]["setNode"].update(
        taints=[{"key": d(bad_keys), "value": d(bad_values), "effect": d(st.text(max_size=12))}]
    ),
    "selector": lambda d, o: o["spec"].update(
        selector={
            "matchLabels": d(bad_maps),
            "matchExpressions": [
                {
                    "key": d(bad_keys),
                    "operator": d(st.sampled_from(["In", "Exists", "Bogus", ""])),
                    "values": [d(bad_values)],
                }
            ],
        }
    ),
}
GROUP_MUTATIONS: dict[str, Mutation] = {
    "name": lambda d, o: o["metadata"].update(name=d(bad_names)),
    "nodeUnits": lambda d, o: o["spec"].update(nodeUnits=d(st.lists(bad_names, min_size=1, max_size=500))),
    "autoFindNodeKeys": lambda d, o: o["spec"].update(
        autoFindNodeKeys=d(st.lists(bad_keys, min_size=1, max_size=3))
    ),
}


def mutated(base: Callable[[st.DrawFn], Obj], mutations: dict[str, Mutation]) -> st.SearchStrategy[Obj]:
    """A valid object from `base`, then one or two of `mutations` applied."""

    @st.composite
    def build(draw: st.DrawFn) -> Obj:
        obj = base(draw)
        chosen = draw(st.lists(st.sampled_from(sorted(mutations)), min_size=1, max_size=2, unique=True))
        for name in chosen:
            mutations[name](draw, obj)
        obj.setdefault("metadata", {}).setdefault("annotations", {})["hyp/mutations"] = ",".join(chosen)
        return obj

    return build()


def grid_base(kind: str) -> Callable[[st.DrawFn], Obj]:
    def base(draw: st.DrawFn) -> Obj:
        name = draw(valid_names)
        if kind == "ServiceGrid":
            template: Obj = {"selector": {"app": name}, "ports": [{"port": 80}]}
        else:
            pod = {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": "x"}]},
            }
            template = {"replicas": 1, "selector": {"matchLabels": {"app": name}}, "template": pod}
            if kind == "StatefulSetGrid":
                template["serviceName"] = name
        return {
            "apiVersion": "superedge.io/v1",
            "kind": kind,
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"gridUniqKey": draw(valid_names), "template": template},
        }

    return base


def unit_base(draw: st.DrawFn) -> Obj:
    return {
        "apiVersion": "site.superedge.io/v1alpha2",
        "kind": "NodeUnit",
        "metadata": {"name": draw(valid_names)},
        "spec": {
            "type": "edge",
            "nodes": [draw(valid_names)],
            "setNode": {"labels": {draw(valid_names): "x"}},
        },
    }


def group_base(draw: st.DrawFn) -> Obj:
    return {
        "apiVersion": "site.superedge.io/v1alpha2",
        "kind": "NodeGroup",
        "metadata": {"name": draw(valid_names)},
        "spec": {"nodeUnits": [draw(valid_names)]},
    }


# -- what "reported" means per kind ------------------------------------------------------------------


def grid_reconciled(obj: Obj) -> bool:
    status = obj.get("status") or {}
    return (
        bool(status.get("conditions")) and status.get("observedGeneration") == obj["metadata"]["generation"]
    )


def site_reconciled(obj: Obj) -> bool:
    valid = get_condition((obj.get("status") or {}).get("conditions"), "Valid")
    return valid is not None and valid.get("observedGeneration") == obj["metadata"]["generation"]


@dataclass(frozen=True)
class BadKind:
    """One kind under test: how to generate it, where it lives, when the controller has reported."""

    name: str
    resource: Resource
    strategy: st.SearchStrategy[Obj]
    reconciled: Callable[[Obj], bool]


BAD_INPUT_KINDS = [
    BadKind(
        "DeploymentGrid",
        DEPLOYMENT_GRIDS,
        mutated(grid_base("DeploymentGrid"), GRID_MUTATIONS),
        grid_reconciled,
    ),
    BadKind(
        "StatefulSetGrid",
        STATEFULSET_GRIDS,
        mutated(grid_base("StatefulSetGrid"), GRID_MUTATIONS),
        grid_reconciled,
    ),
    BadKind(
        "ServiceGrid", SERVICE_GRIDS, mutated(grid_base("ServiceGrid"), SERVICE_MUTATIONS), grid_reconciled
    ),
    BadKind("NodeUnit", NODEUNITS, mutated(unit_base, UNIT_MUTATIONS), site_reconciled),
    BadKind("NodeGroup", NODEGROUPS, mutated(group_base, GROUP_MUTATIONS), site_reconciled),
]
WATCHED = [NODES, NODEUNITS, NODEGROUPS, DEPLOYMENT_GRIDS, SERVICE_GRIDS, DEPLOYMENTS, SERVICES, STATEFULSETS]


# -- a live cluster on its own loop (hypothesis drives sync test functions) ---------------------------


class Live:
    """Sandbox + manager (grid, site) + the docs' cluster, on an event loop in a thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.world: World = docs_world()
        self.outcomes: dict[str, int] = {}

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 120) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def start(self) -> None:
        self.sandbox = Sandbox(simulate=True, seed=6, bookmark_interval=0.2)
        await self.sandbox.start("127.0.0.1", 0)
        self.client = Client(self.sandbox.url)
        await install_crds(self.client)
        await create_objects(self.client, self.world.objects)
        self.manager = Manager(Client(self.sandbox.url), ["grid", "site"])
        await self.manager.start()
        lost = await converged(self.client, self.world, 60)
        assert lost == [], lost
        self.baseline = await self.stable_versions()

    async def stop(self) -> None:
        await self.manager.stop()
        await self.manager.client.close()
        await self.client.close()
        await self.sandbox.stop()

    async def versions(self) -> dict[tuple[str, str, str], str]:
        found = {}
        for res in WATCHED:
            for obj in (await self.client.list(res))["items"]:
                meta = obj["metadata"]
                found[(res.plural, meta.get("namespace", ""), meta["name"])] = meta["resourceVersion"]
        return found

    async def stable_versions(self) -> dict[tuple[str, str, str], str]:
        """The docs' objects' resourceVersions once nothing changes them any more."""
        last: dict[tuple[str, str, str], str] = {}
        same = 0

        async def unchanged() -> bool:
            nonlocal last, same
            now = await self.versions()
            same, last = (same + 1 if now == last else 0), now
            return same >= 3

        await eventually(unchanged, timeout=30, interval=0.3)
        return last

    async def submit(self, kind: BadKind, obj: Obj) -> str:
        """Create `obj`; if accepted, wait until the controller reported on it, then delete it."""
        ns = obj["metadata"].get("namespace")
        try:
            created = await self.client.create(kind.resource, obj, ns)
        except Invalid:
            return "rejected-422"
        except ApiError as err:
            raise AssertionError(
                f"malformed {kind.name} answered {err.status} {err.reason}, not 422: {err}"
            ) from err
        name = created["metadata"]["name"]

        async def reported() -> bool:
            return kind.reconciled(await self.client.get(kind.resource, name, ns))

        await eventually(reported, timeout=30, message=f"{kind.name} {name!r} reported on by the controller")
        await self.client.delete(kind.resource, name, ns)
        await eventually(lambda: _gone(self.client, kind.resource, name, ns), timeout=30)
        return "reported"


async def _gone(client: Client, res: Resource, name: str, ns: str | None) -> bool:
    try:
        await client.get(res, name, ns)
    except NotFound:
        return True
    return False


@pytest.fixture(scope="module")
def live() -> Iterator[Live]:
    cluster = Live()
    cluster.run(cluster.start())
    try:
        yield cluster
    finally:
        cluster.run(cluster.stop())
        cluster.loop.call_soon_threadsafe(cluster.loop.stop)
        cluster.thread.join(10)


@pytest.mark.parametrize("kind", BAD_INPUT_KINDS, ids=lambda k: k.name)
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(data=st.data())
def test_malformed_objects_are_rejected_or_reported_and_touch_nothing_else(
    live: Live, kind: BadKind, data: st.DataObject
) -> None:
    before = live.baseline
    obj = data.draw(kind.strategy, label=kind.name)
    outcome = live.run(live.submit(kind, obj))
    mutations = obj["metadata"]["annotations"]["hyp/mutations"]
    live.outcomes[f"{kind.name}:{mutations}:{outcome}"] = (
        live.outcomes.get(f"{kind.name}:{mutations}:{outcome}", 0) + 1
    )
    after = live.run(live.versions())
    changed = {k: (v, after.get(k)) for k, v in before.items() if after.get(k) != v}
    assert changed == {}, f"{kind.name} {obj['metadata']['name']!r} changed other objects: {changed}"
    extra = set(after) - set(before)
    assert extra == set(), f"left behind: {extra}"


def test_manager_still_converges_after_the_bad_input(live: Live) -> None:
    """The manager was never wedged: a change to the docs' grid is still carried out."""
    grid_patch = {"spec": {"template": {"replicas": 3}}}

    async def change_and_wait() -> list[str]:
        await live.client.patch(DEPLOYMENT_GRIDS, "deploymentgrid-demo", grid_patch, namespace="default")
        live.world.desired.set_replicas("default", 3)
        return await converged(live.client, live.world, 60)

    assert live.run(change_and_wait()) == []
