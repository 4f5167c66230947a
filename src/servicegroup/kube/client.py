"""Async Kubernetes REST client over aiohttp: the only place that speaks HTTP to the API server.

One `Client` per process (controllers share it; `with_field_manager` gives each component its own
field manager over the same connection pool and counters). Objects are plain dicts decoded with
orjson. Reads (get, list) retry 429 (honouring Retry-After), 5xx and connection errors with bounded
exponential backoff; writes raise the typed error from `kube.errors` at once, because only the
caller knows whether repeating a write is safe. Watches are parsed line by line as they stream.

`write_count` counts every POST/PUT/PATCH/DELETE sent; tests and benchmarks assert that a
converged resync makes zero writes.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import random
import ssl
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, Final, Literal

import aiohttp
import orjson

from servicegroup.kube.errors import (
    ApiError,
    ServerError,
    TooManyRequests,
    Unauthorized,
    Unreachable,
    error_for,
)
from servicegroup.kube.metrics import API_REQUESTS, API_RETRIES
from servicegroup.kube.objects import meta
from servicegroup.kube.resources import Resource
from servicegroup.kube.workqueue import BucketRateLimiter

log = logging.getLogger(__name__)

Obj = dict[str, Any]
PatchType = Literal["merge", "json", "strategic"]
AuthProvider = Callable[[], Awaitable[dict[str, str]]]

DEFAULT_FIELD_MANAGER: Final = "servicegroup"
PATCH_CONTENT_TYPES: Final[dict[str, str]] = {
    "merge": "application/merge-patch+json",
    "json": "application/json-patch+json",
    "strategic": "application/strategic-merge-patch+json",
}
_JSON: Final = "application/json"


class _Auth:
    """Auth headers from a kubernetes_asyncio Configuration; `refresh` reloads (exec plugins)."""

    def __init__(self, config: Any, loader: Any = None) -> None:
        self._config = config
        self._loader = loader

    async def headers(self) -> dict[str, str]:
        token = await self._config.get_api_key_with_prefix("BearerToken")
        if token:
            return {"Authorization": token}
        if self._config.username or self._config.password:
            raw = f"{self._config.username or ''}:{self._config.password or ''}".encode()
            return {"Authorization": "Basic " + base64.b64encode(raw).decode()}
        return {}

    async def refresh(self) -> None:
        if self._loader is not None:
            await self._loader.load_and_set(self._config)


def _ssl_context(config: Any) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=config.ssl_ca_cert)
    if config.cert_file:
        context.load_cert_chain(config.cert_file, keyfile=config.key_file)
    if not config.verify_ssl:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


class _Transport:
    """Shared state of every Client view: session, auth, limits and counters."""

    def __init__(
        self,
        base_url: str,
        *,
        auth: _Auth | None,
        ssl_context: ssl.SSLContext | None,
        server_hostname: str | None,
        headers: Mapping[str, str],
        qps: float | None,
        burst: int,
        request_timeout: float,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.auth = auth
        self.ssl_context = ssl_context
        self.server_hostname = server_hostname
        self.headers = {"Accept": _JSON, "User-Agent": "servicegroup", **headers}
        self.limiter = BucketRateLimiter(qps, burst) if qps else None
        self.request_timeout = request_timeout
        self.session: aiohttp.ClientSession | None = None
        self.write_count = 0

    def get_session(self) -> aiohttp.ClientSession:
        if self.session is None or self.session.closed:
            # no pool limit: every informer holds one connection open for its watch, and a full pool
            # would block reads behind them; concurrency is bounded by the workers instead
            connector = aiohttp.TCPConnector(ssl=self.ssl_context if self.ssl_context else False, limit=0)
            self.session = aiohttp.ClientSession(connector=connector)
        return self.session

    async def request_headers(self, extra: Mapping[str, str] | None) -> dict[str, str]:
        headers = dict(self.headers)
        if self.auth is not None:
            headers.update(await self.auth.headers())
        if extra:
            headers.update(extra)
        return headers

    def throttle_delay(self) -> float:
        """Seconds to wait before the next request under client-side QPS limiting (0 when off)."""
        return self.limiter.reserve() if self.limiter is not None else 0.0


class Client:
    """Kubernetes API client. `Client(base_url)` for tests; `await Client.from_kubeconfig(path)` else.

    `token` adds a bearer token; `ssl` is an SSLContext for https; `qps` enables client-side rate
    limiting (off by default); `read_retries` bounds retries of reads; `sleep` is injectable so retry
    tests take no real time.
    """

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        ssl: ssl.SSLContext | None = None,
        headers: Mapping[str, str] | None = None,
        field_manager: str = DEFAULT_FIELD_MANAGER,
        qps: float | None = None,
        burst: int = 100,
        read_retries: int = 5,
        max_backoff: float = 10.0,
        request_timeout: float = 60.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        _transport: _Transport | None = None,
    ) -> None:
        extra = dict(headers or {})
        if token:
            extra["Authorization"] = f"Bearer {token}"
        self._t = _transport or _Transport(
            base_url,
            auth=None,
            ssl_context=ssl,
            server_hostname=None,
            headers=extra,
            qps=qps,
            burst=burst,
            request_timeout=request_timeout,
        )
        self.field_manager = field_manager
        self.read_retries = read_retries
        self.max_backoff = max_backoff
        self._sleep = sleep

    @classmethod
    async def from_kubeconfig(
        cls,
        path: str | None = None,
        *,
        context: str | None = None,
        field_manager: str = DEFAULT_FIELD_MANAGER,
        qps: float | None = None,
        burst: int = 100,
    ) -> Client:
        """A client from a kubeconfig file, or from the in-cluster service account when `path` is None.

        Raises `kubernetes_asyncio.config.ConfigException` with the library's message when the
        configuration is unusable.
        """
        from kubernetes_asyncio.client import Configuration
        from kubernetes_asyncio.config import incluster_config, kube_config

        config = Configuration()
        loader: Any = None
        if path is None:
            incluster_config.load_incluster_config(client_configuration=config)  # type: ignore[no-untyped-call]
        else:
            loader = await kube_config.load_kube_config(
                config_file=path, context=context, client_configuration=config, persist_config=False
            )
        https = str(config.host).startswith("https")
        transport = _Transport(
            str(config.host),
            auth=_Auth(config, loader),
            ssl_context=_ssl_context(config) if https else None,
            server_hostname=config.tls_server_name,
            headers={},
            qps=qps,
            burst=burst,
            request_timeout=60.0,
        )
        return cls(str(config.host), field_manager=field_manager, _transport=transport)

    def with_field_manager(self, field_manager: str) -> Client:
        """A view of this client writing under another field manager (shared pool and counters)."""
        return Client(
            self._t.base_url,
            field_manager=field_manager,
            read_retries=self.read_retries,
            max_backoff=self.max_backoff,
            sleep=self._sleep,
            _transport=self._t,
        )

    @property
    def base_url(self) -> str:
        """The API server URL."""
        return self._t.base_url

    @property
    def write_count(self) -> int:
        """Write requests (POST/PUT/PATCH/DELETE) sent so far by every view of this client."""
        return self._t.write_count

    async def close(self) -> None:
        """Close the connection pool (every view shares it)."""
        if self._t.session is not None:
            await self._t.session.close()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- reads -----------------------------------------------------------------------------------

    async def get(
        self, res: Resource, name: str, namespace: str | None = None, subresource: str | None = None
    ) -> Obj:
        """GET one object; raises NotFound when absent."""
        return await self._read("get", res, res.path(namespace, name, subresource), {})

    async def list(  # noqa: PLR0917 - positional order is the contract (docs/architecture.md)
        self,
        res: Resource,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        limit: int | None = None,
        continue_: str | None = None,
        resource_version: str | None = None,
    ) -> Obj:
        """One LIST request; returns the raw List (`items`, `metadata.resourceVersion/continue`)."""
        params = _params(
            labelSelector=label_selector,
            fieldSelector=field_selector,
            limit=limit,
            resourceVersion=resource_version,
        )
        if continue_:
            params["continue"] = continue_
        return await self._read("list", res, res.path(namespace), params)

    async def list_all(  # noqa: PLR0917 - same order as list()
        self,
        res: Resource,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        resource_version: str | None = None,
        page_size: int = 500,
    ) -> Obj:
        """LIST every page (`limit=page_size` chunks) into one List with the snapshot's resourceVersion.

        A continue token that expired mid-way (410) raises Gone; callers relist from scratch.
        """
        items: list[Obj] = []
        token: str | None = None
        while True:
            page = await self.list(
                res,
                namespace,
                label_selector,
                field_selector,
                limit=page_size,
                continue_=token,
                resource_version=None if token else resource_version,
            )
            items.extend(page.get("items") or [])
            token = meta(page).get("continue")
            if not token:
                page["items"] = items
                page.setdefault("metadata", {}).pop("continue", None)
                return page

    async def watch(  # noqa: PLR0917 - positional order is the contract (docs/architecture.md)
        self,
        res: Resource,
        namespace: str | None = None,
        resource_version: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        timeout_seconds: int | None = None,
        allow_bookmarks: bool = True,
    ) -> AsyncGenerator[Obj, None]:
        """Stream raw watch events `{"type", "object"}` (ADDED, MODIFIED, DELETED, BOOKMARK).

        The stream ends when the server closes it (timeoutSeconds). An ERROR event raises its typed
        error (code 410 → Gone); a non-200 answer raises too. Not retried: the informer decides.
        Use `async with contextlib.aclosing(client.watch(...))` when leaving the loop early.
        """
        params = _params(
            watch="true",
            resourceVersion=resource_version,
            labelSelector=label_selector,
            fieldSelector=field_selector,
            timeoutSeconds=timeout_seconds,
            allowWatchBookmarks="true" if allow_bookmarks else None,
        )
        read_timeout = (timeout_seconds or 600) + 30
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=self._t.request_timeout, sock_read=read_timeout
        )
        await self._throttle()
        try:
            response = await self._send("GET", res.path(namespace), params=params, client_timeout=timeout)
        except Unreachable:
            _count("watch", res, 0)
            raise
        async with response:
            _count("watch", res, response.status)
            if response.status != 200:
                raise error_for(response.status, _decode(await response.read()), _retry_after(response))
            try:
                async for line in _lines(response.content):
                    event = orjson.loads(line)
                    if event.get("type") == "ERROR":
                        status = event.get("object") or {}
                        raise error_for(int(status.get("code") or 500), status)
                    yield event
            except (aiohttp.ClientError, TimeoutError, OSError) as err:
                raise Unreachable(f"watch {res} broken: {err!r}") from err

    # -- writes ----------------------------------------------------------------------------------

    async def create(self, res: Resource, obj: Obj, namespace: str | None = None) -> Obj:
        """POST a new object (namespace from the argument or the object's metadata)."""
        ns = namespace or meta(obj).get("namespace")
        return await self._write("create", "POST", res, path=res.path(ns), body=obj)

    async def replace(self, res: Resource, obj: Obj, subresource: str | None = None) -> Obj:
        """PUT an object; its `metadata.resourceVersion` is the precondition (stale → Conflict)."""
        object_meta = meta(obj)
        path = res.path(object_meta.get("namespace"), object_meta["name"], subresource)
        return await self._write("update", "PUT", res, path=path, body=obj)

    async def replace_status(self, res: Resource, obj: Obj) -> Obj:
        """PUT the `status` subresource (spec changes in `obj` are ignored by the server)."""
        return await self.replace(res, obj, "status")

    async def patch(
        self,
        res: Resource,
        name: str,
        patch: Any,
        *,
        namespace: str | None = None,
        patch_type: PatchType = "merge",
        subresource: str | None = None,
    ) -> Obj:
        """PATCH an object: JSON merge patch (default), JSON patch (a list of ops) or strategic merge."""
        content_type = PATCH_CONTENT_TYPES[patch_type]
        path = res.path(namespace, name, subresource)
        return await self._write("patch", "PATCH", res, path=path, body=patch, content_type=content_type)

    async def delete(
        self,
        res: Resource,
        name: str,
        namespace: str | None = None,
        propagation_policy: Literal["Background", "Foreground", "Orphan"] | None = None,
        preconditions: Mapping[str, str] | None = None,
    ) -> Obj:
        """DELETE an object; `preconditions` is `{"uid": ..., "resourceVersion": ...}`."""
        body: Obj = {"apiVersion": "v1", "kind": "DeleteOptions"}
        if propagation_policy:
            body["propagationPolicy"] = propagation_policy
        if preconditions:
            body["preconditions"] = dict(preconditions)
        return await self._write("delete", "DELETE", res, path=res.path(namespace, name), body=body)

    # -- plumbing --------------------------------------------------------------------------------

    async def _throttle(self) -> None:
        delay = self._t.throttle_delay()
        if delay > 0:
            await self._sleep(delay)

    async def _read(self, verb: str, res: Resource, path: str, params: dict[str, str]) -> Obj:
        attempt = 0
        while True:
            try:
                return await self._call(
                    verb, res, "GET", path=path, params=params, body=None, content_type=None
                )
            except (TooManyRequests, ServerError, Unreachable) as err:
                if attempt >= self.read_retries:
                    raise
                delay = self._retry_delay(err, attempt)
                log.debug("retrying %s %s in %.2fs: %s", verb, res, delay, err)
                API_RETRIES.labels(verb, str(res)).inc()
                attempt += 1
                await self._sleep(delay)

    def _retry_delay(self, err: ApiError, attempt: int) -> float:
        if isinstance(err, TooManyRequests):
            return min(err.retry_after, self.max_backoff * 3)
        return min(self.max_backoff, 0.2 * float(2**attempt)) * random.uniform(0.8, 1.2)

    async def _write(
        self, verb: str, method: str, res: Resource, *, path: str, body: Any, content_type: str = _JSON
    ) -> Obj:
        self._t.write_count += 1
        params = {"fieldManager": self.field_manager} if method != "DELETE" else {}
        return await self._call(
            verb, res, method, path=path, params=params, body=body, content_type=content_type
        )

    async def _call(
        self,
        verb: str,
        res: Resource,
        method: str,
        *,
        path: str,
        params: dict[str, str],
        body: Any,
        content_type: str | None,
    ) -> Obj:
        await self._throttle()
        data = orjson.dumps(body) if body is not None else None
        timeout = aiohttp.ClientTimeout(total=self._t.request_timeout)
        refreshed = False
        while True:
            try:
                response = await self._send(
                    method, path, params=params, data=data, content_type=content_type, client_timeout=timeout
                )
                async with response:
                    raw = await response.read()
                    status = response.status
                    retry_after = _retry_after(response)
            except (aiohttp.ClientError, TimeoutError, OSError) as err:
                _count(verb, res, 0)
                raise Unreachable(f"{method} {path}: {err!r}") from err
            except Unreachable:
                _count(verb, res, 0)
                raise
            _count(verb, res, status)
            decoded = _decode(raw)
            if 200 <= status < 300:
                return decoded if isinstance(decoded, dict) else {}
            error = error_for(status, decoded, retry_after)
            if isinstance(error, Unauthorized) and not refreshed and self._t.auth is not None:
                refreshed = True
                await self._t.auth.refresh()
                continue
            raise error

    async def _send(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str],
        data: bytes | None = None,
        content_type: str | None = None,
        client_timeout: aiohttp.ClientTimeout,
    ) -> aiohttp.ClientResponse:
        extra = {"Content-Type": content_type} if content_type else None
        headers = await self._t.request_headers(extra)
        try:
            return await self._t.get_session().request(
                method,
                self._t.base_url + path,
                params=params,
                data=data,
                headers=headers,
                timeout=client_timeout,
                server_hostname=self._t.server_hostname,
            )
        except (aiohttp.ClientError, TimeoutError, OSError) as err:
            raise Unreachable(f"{method} {path}: {err!r}") from err


def _params(**values: Any) -> dict[str, str]:
    return {key: str(value) for key, value in values.items() if value is not None and value != ""}


def _count(verb: str, res: Resource, code: int) -> None:
    API_REQUESTS.labels(verb, str(res), str(code)).inc()


def _decode(raw: bytes) -> Any:
    if not raw:
        return {}
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw.decode(errors="replace")


def _retry_after(response: aiohttp.ClientResponse) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return float(value) if value else None
    except ValueError:
        return None


async def _lines(stream: aiohttp.StreamReader) -> AsyncIterator[bytes]:
    """Split a chunked body into lines as chunks arrive (no line-length limit, no full buffering)."""
    buffer = bytearray()
    async for chunk in stream.iter_any():
        buffer.extend(chunk)
        start = 0
        while (end := buffer.find(b"\n", start)) >= 0:
            line = bytes(buffer[start:end])
            start = end + 1
            if line.strip():
                yield line
        del buffer[:start]
    if buffer.strip():
        yield bytes(buffer)
