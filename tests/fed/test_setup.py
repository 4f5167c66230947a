"""`setup(mgr)` settings from the environment."""

from __future__ import annotations

import pytest

from servicegroup.fed.controller import ENV_PROBE_SECONDS
from servicegroup.kube.client import Client
from servicegroup.manager import Manager


@pytest.mark.parametrize("value", ["abc", "0", "-1"])
async def test_bad_probe_interval_is_a_one_line_error(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_PROBE_SECONDS, value)
    manager = Manager(Client("http://127.0.0.1:9"), ["fed"])
    try:
        with pytest.raises(SystemExit) as caught:
            await manager.start()
        assert str(caught.value) == (
            f"servicegroup manager: error: {ENV_PROBE_SECONDS} must be a positive number, not {value!r}"
        )
        assert manager.controllers == []
    finally:
        await manager.client.close()
