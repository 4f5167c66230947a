"""apply.py Expectations: a write is awaited until its watch echo, at most `ttl` seconds."""

from __future__ import annotations

from servicegroup.grid.apply import Expectations
from servicegroup.kube.objects import ObjectKey

GRID = ObjectKey("default", "g")


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def child(name: str, rv: str) -> dict[str, object]:
    return {"metadata": {"name": name, "namespace": "default", "resourceVersion": rv}}


def test_create_is_pending_until_its_echo_arrives() -> None:
    expectations = Expectations(ttl=30, clock=FakeClock())
    expectations.expect(GRID, {"g-a": "7", "g-b": "8"})
    assert set(expectations.pending(GRID)) == {"g-a", "g-b"}
    expectations.observe(child("g-a", "6"), deleted=False)  # an older event is not the echo
    assert set(expectations.pending(GRID)) == {"g-a", "g-b"}
    expectations.observe(child("g-a", "7"), deleted=False)
    assert set(expectations.pending(GRID)) == {"g-b"}


def test_delete_is_pending_until_the_delete_event() -> None:
    expectations = Expectations(clock=FakeClock())
    expectations.expect(GRID, {"g-a": None})
    expectations.observe(child("g-a", "9"), deleted=False)
    assert "g-a" in expectations.pending(GRID)
    expectations.observe(child("g-a", "9"), deleted=True)
    assert expectations.pending(GRID) == {}


def test_expectations_expire_and_can_be_forgotten() -> None:
    clock = FakeClock()
    expectations = Expectations(ttl=30, clock=clock)
    expectations.expect(GRID, {"g-a": "1"})
    assert expectations.pending(GRID) == {"g-a": 30.0}
    clock.now += 31
    assert expectations.pending(GRID) == {}
    expectations.expect(GRID, {"g-b": "2"})
    expectations.forget(GRID)
    assert expectations.pending(GRID) == {}
