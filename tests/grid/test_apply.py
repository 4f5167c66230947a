"""apply.py Expectations: a write is awaited until its watch echo (or anything newer), at most `ttl`
seconds; resource versions are compared for identity only, never for order."""

from __future__ import annotations

from servicegroup.grid.apply import Expectations, Written
from servicegroup.kube.objects import ObjectKey

GRID = ObjectKey("default", "g")


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def child(name: str, rv: str, uid: str = "u1") -> dict[str, object]:
    return {"metadata": {"name": name, "namespace": "default", "resourceVersion": rv, "uid": uid}}


def test_create_is_pending_until_its_object_shows_up() -> None:
    expectations = Expectations(ttl=30, clock=FakeClock())
    expectations.expect(GRID, {"g-a": Written("u1", "7"), "g-b": Written("u2", "8")})
    assert set(expectations.pending(GRID)) == {"g-a", "g-b"}
    expectations.observe(child("g-a", "6", uid="u0"), deleted=False)  # an older incarnation's event
    assert set(expectations.pending(GRID)) == {"g-a", "g-b"}
    expectations.observe(child("g-a", "7"), deleted=False)
    assert set(expectations.pending(GRID)) == {"g-b"}
    expectations.observe(child("g-b", "9", uid="u2"), deleted=False)  # a newer version: also settles
    assert expectations.pending(GRID) == {}


def test_update_settles_on_any_version_but_the_one_it_replaced() -> None:
    expectations = Expectations(clock=FakeClock())
    expectations.expect(GRID, {"g-a": Written("u1", "12", previous="10")})
    expectations.observe(child("g-a", "10"), deleted=False)  # the pre-write state, late
    assert "g-a" in expectations.pending(GRID)
    expectations.observe(child("g-a", "13"), deleted=False)  # a status write overtook our echo
    assert expectations.pending(GRID) == {}


def test_delete_is_pending_until_the_delete_event() -> None:
    expectations = Expectations(clock=FakeClock())
    expectations.expect(GRID, {"g-a": Written("u1", None)})
    expectations.observe(child("g-a", "9"), deleted=False)
    assert "g-a" in expectations.pending(GRID)
    expectations.observe(child("g-a", "9"), deleted=True)
    assert expectations.pending(GRID) == {}


def test_shown_by_a_cached_state() -> None:
    update = Written("u1", "12", previous="10")
    assert not update.shown_by(None) and not update.shown_by(child("g", "10"))
    assert update.shown_by(child("g", "12")) and update.shown_by(child("g", "15"))
    assert not update.shown_by(child("g", "15", uid="other"))
    delete = Written("u1", None)
    assert delete.shown_by(None) and delete.shown_by(child("g", "20", uid="recreated"))
    assert not delete.shown_by(child("g", "11"))


def test_expectations_expire_and_can_be_forgotten() -> None:
    clock = FakeClock()
    expectations = Expectations(ttl=30, clock=clock)
    expectations.expect(GRID, {"g-a": Written("u1", "1")})
    assert expectations.pending(GRID) == {"g-a": 30.0}
    clock.now += 31
    assert expectations.pending(GRID) == {}
    expectations.expect(GRID, {"g-b": Written("u2", "2")})
    expectations.forget(GRID)
    assert expectations.pending(GRID) == {}
