"""kube/serve.py and kube/logs.py: health/readiness/metrics endpoints, and log formats with context."""

from __future__ import annotations

import io
import logging
from collections.abc import AsyncIterator, Iterator

import aiohttp
import orjson
import pytest

from servicegroup.kube import logs
from servicegroup.kube.serve import HealthServer, parse_listen


@pytest.fixture
async def server() -> AsyncIterator[HealthServer]:
    health = HealthServer("127.0.0.1:0")
    await health.start()
    yield health
    await health.stop()


async def fetch(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.text()


class TestHealthServer:
    async def test_healthz_ok_and_metrics_exposed(self, server: HealthServer) -> None:
        assert await fetch(server.url + "/healthz") == (200, "ok\n")
        status, text = await fetch(server.url + "/metrics")
        assert status == 200
        assert "servicegroup_api_requests_total" in text
        assert "servicegroup_watch_restarts_total" in text

    async def test_healthz_fails_while_a_liveness_check_fails(self, server: HealthServer) -> None:
        alive = {"loop": False}
        server.add_health_check("event-loop", lambda: alive["loop"])
        assert await fetch(server.url + "/healthz") == (503, "[-] event-loop failed\n")
        alive["loop"] = True
        assert (await fetch(server.url + "/healthz"))[0] == 200

    async def test_readyz_reports_failing_checks(self, server: HealthServer) -> None:
        state = {"synced": False, "broken": True}

        async def leader_known() -> bool:
            return True

        def broken() -> bool:
            if state["broken"]:
                raise RuntimeError("check bug")
            return True

        server.add_readiness_check("informers-synced", lambda: state["synced"])
        server.add_readiness_check("leader-known", leader_known)
        server.add_readiness_check("broken", broken)
        status, text = await fetch(server.url + "/readyz")
        assert status == 503
        assert text == "[-] informers-synced failed\n[-] broken failed\n"
        state.update(synced=True, broken=False)
        assert await fetch(server.url + "/readyz") == (200, "ok\n")

    @pytest.mark.parametrize(
        ("listen", "expected"),
        [("127.0.0.1:8081", ("127.0.0.1", 8081)), (":9000", ("0.0.0.0", 9000)), ("[::1]:80", ("::1", 80))],
    )
    def test_parse_listen(self, listen: str, expected: tuple[str, int]) -> None:
        assert parse_listen(listen) == expected

    @pytest.mark.parametrize("bad", ["8081", "host:", "host:port"])
    def test_parse_listen_rejects_bad_input(self, bad: str) -> None:
        with pytest.raises(ValueError, match="HOST:PORT"):
            parse_listen(bad)


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    stream = io.StringIO()
    yield stream
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])


def install(stream: io.StringIO, fmt: str) -> None:
    logs.setup_logging("debug", fmt)
    handler = logging.getLogger().handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(stream)


class TestLogs:
    def test_json_lines_carry_context_and_extra(self, captured: io.StringIO) -> None:
        install(captured, "json")
        with logs.log_context(controller="grid", key="ns/g"):
            logging.getLogger("t").info("child created", extra={"unit": "zone1"})
        entry = orjson.loads(captured.getvalue())
        assert entry["msg"] == "child created"
        assert entry["level"] == "info"
        assert (entry["controller"], entry["key"], entry["unit"]) == ("grid", "ns/g", "zone1")

    def test_text_lines_append_key_values(self, captured: io.StringIO) -> None:
        install(captured, "text")
        with logs.log_context(key="ns/g"):
            logging.getLogger("t").warning("retrying")
        line = captured.getvalue().strip()
        assert line.endswith("WARNING t: retrying key=ns/g")

    def test_context_is_restored_after_the_block(self) -> None:
        with logs.log_context(a=1), logs.log_context(b=2):
            assert logs.current_context() == {"a": 1, "b": 2}
        assert logs.current_context() == {}

    @pytest.mark.parametrize(("level", "fmt"), [("loud", "text"), ("info", "xml")])
    def test_bad_settings_are_rejected(self, level: str, fmt: str) -> None:
        with pytest.raises(ValueError, match="must be one of"):
            logs.setup_logging(level, fmt)
