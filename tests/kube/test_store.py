"""kube/store.py: the keyed cache and its indexes stay consistent through upserts and deletes."""

from __future__ import annotations

from typing import Any

import pytest

from servicegroup.kube.objects import ObjectKey
from servicegroup.kube.store import (
    Store,
    controller_uid_index,
    label_index,
    label_keys_index,
    namespace_index,
    object_key,
    owner_uid_index,
)


def obj(
    name: str, ns: str = "ns", labels: dict[str, str] | None = None, owners: list[Any] | None = None
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": labels or {}}
    if ns:
        meta["namespace"] = ns
    if owners:
        meta["ownerReferences"] = owners
    return {"metadata": meta}


class TestStore:
    def test_object_key_is_ns_slash_name_or_name(self) -> None:
        assert object_key(obj("a")) == "ns/a"
        assert object_key(obj("n1", ns="")) == "n1"

    def test_get_list_keys(self) -> None:
        store = Store()
        a, b = obj("a"), obj("b")
        store.upsert(a)
        store.upsert(b)
        assert store.get("ns/a") is a
        assert store.get(ObjectKey("ns", "b")) is b
        assert store.get("ns/zz") is None
        assert sorted(store.keys()) == ["ns/a", "ns/b"]
        assert len(store.list()) == 2
        assert "ns/a" in store

    def test_upsert_returns_previous_and_delete_returns_last(self) -> None:
        store = Store()
        first, second = obj("a", labels={"v": "1"}), obj("a", labels={"v": "2"})
        assert store.upsert(first) is None
        assert store.upsert(second) is first
        assert store.delete("ns/a") is second
        assert store.delete("ns/a") is None

    def test_index_follows_label_changes(self) -> None:
        store = Store()
        store.add_index("zone", label_index("zone"))
        store.upsert(obj("a", labels={"zone": "z1"}))
        store.upsert(obj("b", labels={"zone": "z1"}))
        store.upsert(obj("a", labels={"zone": "z2"}))
        assert [o["metadata"]["name"] for o in store.by_index("zone", "z1")] == ["b"]
        assert store.index_keys("zone", "z2") == ["ns/a"]
        store.delete("ns/b")
        assert store.by_index("zone", "z1") == []
        assert store.index_values("zone") == ["z2"]

    def test_index_added_late_covers_existing_objects(self) -> None:
        store = Store()
        store.upsert(obj("a", ns="x"))
        store.add_index("ns", namespace_index)
        assert store.index_keys("ns", "x") == ["x/a"]

    def test_duplicate_or_unknown_index_is_an_error(self) -> None:
        store = Store()
        store.add_index("ns", namespace_index)
        with pytest.raises(ValueError, match="already exists"):
            store.add_index("ns", namespace_index)
        with pytest.raises(KeyError, match="nope"):
            store.by_index("nope", "x")

    def test_owner_and_controller_indexes(self) -> None:
        owners = [{"uid": "u1", "controller": True}, {"uid": "u2"}]
        child = obj("c", owners=owners)
        assert owner_uid_index(child) == ["u1", "u2"]
        assert controller_uid_index(child) == ["u1"]

    def test_label_keys_index(self) -> None:
        assert label_keys_index(obj("n", labels={"a": "1", "b": ""})) == ["a", "b"]
