"""The proxy's HTTP face: the only module that knows aiohttp, URLs and watch framing.

Serves, read-only and from the local view only (nothing is ever forwarded upstream, so the
proxy cannot lend its credentials to other local processes):

    GET /version /api /api/v1 /apis /apis/discovery.k8s.io[/v1]     discovery of what is served
    GET /healthz /readyz /livez
    GET list | watch | get of services, endpoints, nodes, namespaces (core/v1) and
        endpointslices (discovery.k8s.io/v1), cluster-wide and namespaced paths

with labelSelector, fieldSelector (metadata.name / metadata.namespace), resourceVersion,
timeoutSeconds, allowWatchBookmarks and sendInitialEvents. Lists come in one page. Everything else
(any write, any other resource, Events from kube-proxy included) is 403 Forbidden: the proxy holds
no state a client could change, and pretending to accept writes would hide lost data.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import orjson
from aiohttp import web

from servicegroup.kube.objects import match_label_selector, meta, parse_selector_string
from servicegroup.kube.resources import Resource
from servicegroup.traffic.sync import SERVED, ServedView
from servicegroup.traffic.watchcache import Expired, ResourceCache, Watcher

log = logging.getLogger(__name__)

Obj = dict[str, Any]
Predicate = Callable[[Obj], bool]

JSON: Final = "application/json"
VERSION: Final = {
    "major": "1",
    "minor": "36",
    "gitVersion": "v1.36.0+servicegroup-proxy",
    "gitCommit": "",
    "gitTreeState": "clean",
    "buildDate": "2026-01-01T00:00:00Z",
    "goVersion": "",
    "compiler": "",
    "platform": "linux/amd64",
}
SHORT_NAMES: Final = {"services": ["svc"], "endpoints": ["ep"], "nodes": ["no"], "namespaces": ["ns"]}
FIELDS: Final = ("metadata.name", "metadata.namespace")


@dataclass(frozen=True)
class ServerOptions:
    """Watch behaviour: bookmark cadence, default watch length, how far a client may lag."""

    bookmark_interval: float = 30.0
    default_watch_timeout: float = 1800.0
    max_backlog: int = 100_000
    ready_wait: float = 10.0


class StatusError(Exception):
    """Answered as a `metav1.Status` with this code and reason."""

    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message

    def body(self) -> Obj:
        """The Status object."""
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }


def json_response(body: Any, status: int = 200) -> web.Response:
    """A JSON answer encoded with orjson."""
    return web.Response(body=orjson.dumps(body), status=status, content_type=JSON)


def accepts_json(accept: str) -> bool:
    """Does the Accept list allow plain JSON? Entries asking for another shape (`as=Table`,
    aggregated discovery) or format (protobuf, YAML) are skipped, as the apiserver would."""
    if not accept.strip():
        return True
    for entry in accept.split(","):
        media, *params = [part.strip() for part in entry.split(";")]
        if any(param.startswith("as=") for param in params):
            continue
        if media in (JSON, "application/*", "*/*"):
            return True
    return False


def field_predicate(selector: str) -> Predicate | None:
    """`metadata.name=x,metadata.namespace!=y` as a predicate (the fields clients of the proxy use)."""
    checks: list[tuple[str, str, bool]] = []
    for requirement in filter(None, (part.strip() for part in selector.split(","))):
        negate = "!=" in requirement
        field, sep, value = requirement.replace("!=", "=").replace("==", "=").partition("=")
        if not sep or field.strip() not in FIELDS:
            raise StatusError(400, "BadRequest", f'field label not supported: "{requirement}"')
        checks.append((field.strip().removeprefix("metadata."), value.strip(), negate))
    if not checks:
        return None

    def matches(obj: Obj) -> bool:
        metadata = meta(obj)
        return all(((metadata.get(field) or "") == value) != negate for field, value, negate in checks)

    return matches


def request_predicate(request: web.Request, namespace: str | None) -> Predicate | None:
    """Namespace scope, labelSelector and fieldSelector of a list/watch request, combined."""
    predicates: list[Predicate] = []
    if namespace:
        predicates.append(lambda obj: meta(obj).get("namespace") == namespace)
    label_selector = request.query.get("labelSelector", "")
    if label_selector.strip():
        try:
            selector = parse_selector_string(label_selector)
        except ValueError as err:
            raise StatusError(400, "BadRequest", f"unable to parse labelSelector: {err}") from err
        predicates.append(lambda obj: match_label_selector(selector, meta(obj).get("labels") or {}))
    fields = field_predicate(request.query.get("fieldSelector", ""))
    if fields is not None:
        predicates.append(fields)
    if not predicates:
        return None
    return lambda obj: all(predicate(obj) for predicate in predicates)


@dataclass(frozen=True)
class Target:
    """What a resource URL names."""

    res: Resource
    namespace: str | None
    name: str | None
    watch: bool


def parse_path(path: str) -> Target | None:
    """Map a URL path onto a served resource (None when it names anything else)."""
    parts = [p for p in path.split("/") if p]
    if parts[:2] == ["api", "v1"]:
        group, rest = "", parts[2:]
    elif parts[:3] == ["apis", "discovery.k8s.io", "v1"]:
        group, rest = "discovery.k8s.io", parts[3:]
    else:
        return None
    watch = bool(rest) and rest[0] == "watch"
    rest = rest[1:] if watch else rest
    namespace = None
    if len(rest) >= 3 and rest[0] == "namespaces":
        namespace, rest = rest[1], rest[2:]
    if not rest or len(rest) > 2:
        return None
    for res in SERVED:
        if res.group == group and res.plural == rest[0] and (res.namespaced or namespace is None):
            return Target(res, namespace, rest[1] if len(rest) == 2 else None, watch)
    return None


class ProxyServer:
    """aiohttp application over a `ServedView`."""

    def __init__(self, view: ServedView, ready: asyncio.Event, options: ServerOptions | None = None) -> None:
        self.view = view
        self.ready = ready
        self.options = options or ServerOptions()
        self.app = web.Application()
        self.app.router.add_route("*", "/{tail:.*}", self.dispatch)

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        """Every request enters here; errors become Status answers."""
        try:
            return await self._dispatch(request)
        except StatusError as err:
            return json_response(err.body(), err.code)

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        if request.method not in ("GET", "HEAD"):
            raise self._forbidden(request)
        path = request.path.rstrip("/") or "/"
        if path in ("/healthz", "/livez"):
            return web.Response(text="ok")
        if path == "/readyz":
            return (
                web.Response(text="ok") if self.ready.is_set() else web.Response(text="not ready", status=503)
            )
        if not accepts_json(request.headers.get("Accept", "")):
            raise StatusError(406, "NotAcceptable", "only application/json is served by the topology proxy")
        discovery = self._discovery(path, request.host)
        if discovery is not None:
            return json_response(discovery)
        target = parse_path(path)
        if target is None:
            raise self._forbidden(request)
        await self._wait_ready()
        cache = self.view.cache(target.res)
        if target.watch or request.query.get("watch") in ("true", "1"):
            return await self._watch(request, cache, target)
        if target.name is not None:
            return self._get(cache, target)
        return self._list(request, cache, target)

    @staticmethod
    def _forbidden(request: web.Request) -> StatusError:
        served = ", ".join(res.plural for res in SERVED)
        return StatusError(
            403,
            "Forbidden",
            f"the topology proxy is read-only: {request.method} {request.path} is forbidden "
            f"(it serves get, list and watch of {served})",
        )

    async def _wait_ready(self) -> None:
        try:
            async with asyncio.timeout(self.options.ready_wait):
                await self.ready.wait()
        except TimeoutError:
            raise StatusError(503, "ServiceUnavailable", "the topology proxy has no view yet") from None

    def _get(self, cache: ResourceCache, target: Target) -> web.Response:
        key = f"{target.namespace}/{target.name}" if target.namespace else str(target.name)
        obj = cache.get(key)
        if obj is None:
            raise StatusError(404, "NotFound", f'{target.res.plural} "{target.name}" not found')
        return json_response(obj)

    def _list(self, request: web.Request, cache: ResourceCache, target: Target) -> web.Response:
        items = cache.objects(request_predicate(request, target.namespace))
        body = {
            "kind": target.res.list_kind,
            "apiVersion": target.res.api_version,
            "metadata": {"resourceVersion": str(self.view.rvs.current)},
            "items": items,
        }
        return json_response(body)

    async def _watch(self, request: web.Request, cache: ResourceCache, target: Target) -> web.StreamResponse:
        query = request.query
        predicate = request_predicate(request, target.namespace)
        if target.name is not None:
            name_predicate = field_predicate(f"metadata.name={target.name}")
            predicate = _both(predicate, name_predicate)
        raw_rv = query.get("resourceVersion", "")
        send_initial = query.get("sendInitialEvents") == "true"
        try:
            rv = int(raw_rv) if raw_rv else 0
        except ValueError:
            raise StatusError(400, "BadRequest", f"invalid resourceVersion {raw_rv!r}") from None
        start = None if rv == 0 or send_initial else rv  # the current state is "not older than" any RV
        length = _timeout(query.get("timeoutSeconds"), self.options.default_watch_timeout)
        response = web.StreamResponse(headers={"Content-Type": JSON})
        response.enable_chunked_encoding()
        await response.prepare(request)
        try:
            watcher = cache.watch(start, predicate, self.options.max_backlog, initial_events_end=send_initial)
        except Expired as err:
            status = StatusError(410, "Expired", str(err)).body()
            await response.write(orjson.dumps({"type": "ERROR", "object": status}) + b"\n")
            return response
        try:
            await self._stream(response, watcher, length, query.get("allowWatchBookmarks") == "true")
        except ConnectionResetError:
            log.debug("watch client of %s left", target.res.plural)
        finally:
            watcher.close()
        return response

    async def _stream(
        self, response: web.StreamResponse, watcher: Watcher, length: float, bookmarks: bool
    ) -> None:
        """Write the watcher's lines for `length` seconds, until the client leaves or the watcher closes."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + length
        while not watcher.closed:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            lines = await watcher.take(min(remaining, self.options.bookmark_interval))
            if lines:
                await response.write(b"".join(lines))
            elif bookmarks and not watcher.closed and loop.time() < deadline:
                watcher.bookmark()

    def _discovery(self, path: str, host: str) -> Obj | None:
        """The discovery documents kube-proxy, CoreDNS and kubectl read, listing only what is served."""
        if path == "/version":
            return VERSION
        if path == "/api":
            return {
                "kind": "APIVersions",
                "versions": ["v1"],
                "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": host}],
            }
        group = {
            "name": "discovery.k8s.io",
            "versions": [{"groupVersion": "discovery.k8s.io/v1", "version": "v1"}],
            "preferredVersion": {"groupVersion": "discovery.k8s.io/v1", "version": "v1"},
        }
        if path == "/apis":
            return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [group]}
        if path == "/apis/discovery.k8s.io":
            return {"kind": "APIGroup", "apiVersion": "v1", **group}
        if path == "/api/v1":
            return _resource_list("v1", "")
        if path == "/apis/discovery.k8s.io/v1":
            return _resource_list("discovery.k8s.io/v1", "discovery.k8s.io")
        return None


def _resource_list(group_version: str, group: str) -> Obj:
    resources = [
        {
            "name": res.plural,
            "singularName": res.kind.lower(),
            "namespaced": res.namespaced,
            "kind": res.kind,
            "verbs": ["get", "list", "watch"],
            **({"shortNames": SHORT_NAMES[res.plural]} if res.plural in SHORT_NAMES else {}),
        }
        for res in SERVED
        if res.group == group
    ]
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources,
    }


def _both(first: Predicate | None, second: Predicate | None) -> Predicate | None:
    if first is None or second is None:
        return first or second
    return lambda obj: first(obj) and second(obj)


def _timeout(raw: str | None, default: float) -> float:
    if raw is None or raw == "":
        return default
    try:
        return max(0.0, float(raw))
    except ValueError:
        raise StatusError(400, "BadRequest", f"invalid timeoutSeconds {raw!r}") from None
