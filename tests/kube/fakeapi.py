"""A scripted API server for one resource, for client and informer tests that need exact control.

The sandbox (servicegroup.sandbox) is the real counterpart used by the integration tests; this
fake exists to assert exact requests (query parameters, pages, bodies) and to stage events the
sandbox produces only by timing (a bookmark at a given point, a line split across chunks, an
ERROR event in the middle of a stream).

* `objects` is served by LIST (honouring `limit`/`continue`) with `metadata.resourceVersion = rv`.
* Each WATCH consumes the next script from `watch_scripts`: a list of steps, each an event dict
  (written as one line), `SPLIT` + event (written in two chunks), `CLOSE` (end the stream) or an
  int (answer the watch with that HTTP status). Without a script, a watch stays open until stop.
* `canned` answers (method, status, body, headers) are consumed before normal handling.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

CLOSE = "close"
SPLIT = "split"


@dataclass
class Seen:
    """One request the fake received."""

    method: str
    path: str
    query: dict[str, str]
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


def cm(name: str, rv: str, data: str = "", namespace: str = "default") -> dict[str, Any]:
    """A ConfigMap as the API server would send it."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace, "resourceVersion": rv, "uid": f"uid-{name}"},
        "data": {"v": data},
    }


def event(type_: str, obj: dict[str, Any]) -> dict[str, Any]:
    return {"type": type_, "object": obj}


def bookmark(rv: str) -> dict[str, Any]:
    return {
        "type": "BOOKMARK",
        "object": {"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"resourceVersion": rv}},
    }


def gone_event() -> dict[str, Any]:
    status = {"kind": "Status", "status": "Failure", "reason": "Expired", "code": 410, "message": "too old"}
    return {"type": "ERROR", "object": status}


class FakeApi:
    """See the module docstring."""

    def __init__(self) -> None:
        self.objects: list[dict[str, Any]] = []
        self.rv = "100"
        self.watch_scripts: deque[list[Any]] = deque()
        self.canned: deque[tuple[str, int, Any, dict[str, str]]] = deque()
        self.seen: list[Seen] = []
        self._stopping = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self, ssl_context: ssl.SSLContext | None = None) -> str:
        """Serve on a free port (https when `ssl_context` is given); returns the URL."""
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=ssl_context)
        await site.start()
        scheme = "https" if ssl_context else "http"
        self.url = f"{scheme}://127.0.0.1:{self._runner.addresses[0][1]}"
        return self.url

    async def stop(self) -> None:
        self._stopping.set()
        if self._runner is not None:
            await self._runner.cleanup()

    def requests(self, method: str | None = None, watch: bool | None = None) -> list[Seen]:
        """Requests seen, filtered by method and by being a watch."""
        return [
            s
            for s in self.seen
            if (method is None or s.method == method)
            and (watch is None or (s.query.get("watch") == "true") == watch)
        ]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        body = orjson.loads(raw) if raw else None
        headers = dict(request.headers)
        peer = request.transport.get_extra_info("peercert") if request.transport else None
        if peer:
            headers["X-Client-CN"] = dict(x[0] for x in peer["subject"])["commonName"]
        self.seen.append(Seen(request.method, request.path, dict(request.query), body, headers))
        if self.canned and self.canned[0][0] == request.method and request.query.get("watch") != "true":
            _, status, answer, headers = self.canned.popleft()
            return web.Response(status=status, body=orjson.dumps(answer), headers=headers)
        if request.query.get("watch") == "true":
            return await self._watch(request)
        if request.method == "GET":
            return self._list(request)
        return web.Response(status=201 if request.method == "POST" else 200, body=orjson.dumps(body or {}))

    def _list(self, request: web.Request) -> web.Response:
        start = int(request.query.get("continue") or 0)
        limit = int(request.query.get("limit") or 0) or len(self.objects)
        items = self.objects[start : start + limit]
        metadata: dict[str, Any] = {"resourceVersion": self.rv}
        if start + limit < len(self.objects):
            metadata["continue"] = str(start + limit)
        body = {"kind": "ConfigMapList", "apiVersion": "v1", "metadata": metadata, "items": items}
        return web.Response(body=orjson.dumps(body), content_type="application/json")

    async def _watch(self, request: web.Request) -> web.StreamResponse:
        script = self.watch_scripts.popleft() if self.watch_scripts else []
        if script and isinstance(script[0], int):
            status = {
                "kind": "Status",
                "code": script[0],
                "reason": "Expired" if script[0] == 410 else "Error",
            }
            return web.Response(status=script[0], body=orjson.dumps(status), content_type="application/json")
        response = web.StreamResponse()
        response.content_type = "application/json"
        await response.prepare(request)
        split = False
        for step in script:
            if step == CLOSE:
                return response
            if step == SPLIT:
                split = True
                continue
            line = orjson.dumps(step) + b"\n"
            if split:
                await response.write(line[:7])
                await asyncio.sleep(0.01)
                await response.write(line[7:])
                split = False
            else:
                await response.write(line)
        await self._stopping.wait()
        return response
