"""The sandbox HTTP API: kube-apiserver's REST surface over the Storage, and the `Sandbox` runner.

One catch-all aiohttp route parses the path the way the apiserver's installer lays it out
(`/api/v1/...`, `/apis/G/V/...`, `namespaces/NS/PLURAL/NAME/SUBRESOURCE`, legacy `watch/`), so
CRD types appear and vanish without re-routing. Content negotiation follows the apiserver: JSON
(protobuf-only clients get 406, protobuf bodies 415), `as=Table` for kubectl's printers, aggregated
discovery (`apidiscovery.k8s.io/v2`) when asked for. Writes go through the Storage; server-side
apply merges in apply.py first, and pods/binding is the Storage's `bind`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import yaml
from aiohttp import web

from servicegroup.sandbox import apply, errors, openapi
from servicegroup.sandbox.errors import FieldCause, StatusError
from servicegroup.sandbox.faults import Faults
from servicegroup.sandbox.gc import GarbageCollector
from servicegroup.sandbox.patch import json_patch, merge_patch, strategic_merge_patch
from servicegroup.sandbox.persist import Persistence
from servicegroup.sandbox.resources import (
    CRDS,
    NAMESPACES,
    ResourceType,
    subresource_verbs,
    version_priority,
)
from servicegroup.sandbox.storage import Selector, Storage, now_rfc3339
from servicegroup.sandbox.tables import format_label_selector, to_table
from servicegroup.sandbox.watch import WatchSpec, watch_events

Obj = dict[str, Any]
log = logging.getLogger(__name__)

SERVER_VERSION = {
    "major": "1",
    "minor": "36",
    "emulationMajor": "1",
    "emulationMinor": "36",
    "minCompatibilityMajor": "1",
    "minCompatibilityMinor": "35",
    "gitVersion": "v1.36.0",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2026-04-22T00:00:00Z",
    "goVersion": "go1.26.2",
    "compiler": "gc",
    "platform": "linux/amd64",
}
JSON = "application/json"
MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
AGGREGATED = "application/json;g=apidiscovery.k8s.io;v={v};as=APIGroupDiscoveryList"
# client-go falls back to JSON after a 415 only for CBOR: its typed clients (kubectl's `create
# namespace|configmap|deployment|...` generators) always send protobuf, so the 415 says what to do.
NO_PROTOBUF = (
    "{} bodies are not decoded by the sandbox: it has no Kubernetes protobuf schemas; send JSON or "
    "YAML, e.g. `kubectl create ... --dry-run=client -o yaml | kubectl apply -f -`"
)
NO_SUBRESOURCE_APPLY = "server-side apply to a subresource is not implemented by the sandbox"
NOT_FOUND = StatusError(404, "NotFound", "the server could not find the requested resource", {})
_TRUE = ("1", "true", "True")
ENCODED_CACHE = 4096  # watch lines kept for fan-out to many watchers


# ---------------------------------------------------------------------------------------------
# Content negotiation


@dataclass(frozen=True)
class Accept:
    """What the client's Accept header allows."""

    json: bool = True
    table: str | None = None  # meta.k8s.io version of a Table
    aggregated: str | None = None  # apidiscovery.k8s.io version


def parse_accept(header: str) -> Accept:
    """Read an Accept header; JSON is the only wire format served (protobuf-only → not acceptable)."""
    if not header.strip():
        return Accept()
    plain, table, aggregated = False, None, None
    for entry in header.split(","):
        media, *raw_params = [p.strip() for p in entry.split(";")]
        params = dict(p.split("=", 1) for p in raw_params if "=" in p)
        if media not in (JSON, "*/*", "application/*"):
            continue
        kind = params.get("as")
        if kind == "Table" and params.get("g", "meta.k8s.io") == "meta.k8s.io" and table is None:
            table = params.get("v", "v1")
        elif kind == "APIGroupDiscoveryList" and params.get("g") == "apidiscovery.k8s.io":
            if params.get("v") in ("v2", "v2beta1") and aggregated is None:
                aggregated = params["v"]
        elif kind is None:
            plain = True
    return Accept(json=plain, table=table, aggregated=aggregated)


def _json(
    body: Any, status: int = 200, content_type: str = JSON, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=orjson.dumps(body),
        status=status,
        headers={"Content-Type": content_type, **(headers or {})},
    )


def _status_response(err: StatusError) -> web.Response:
    return _json(err.status(), err.code, headers=err.headers)


def _success(rt: ResourceType, obj: Obj) -> Obj:
    meta = obj.get("metadata") or {}
    details: Obj = {"name": meta.get("name", ""), "kind": rt.plural, "uid": meta.get("uid", "")}
    if rt.group:
        details["group"] = rt.group
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}


def _returns_deleted_object(rt: ResourceType) -> bool:
    """Registries that answer DELETE with the object rather than a Success Status."""
    return rt.custom or rt in (CRDS, NAMESPACES) or (not rt.group and rt.plural in ("pods", "services"))


# ---------------------------------------------------------------------------------------------
# Paths


@dataclass(frozen=True)
class Target:
    """A parsed resource path."""

    rt: ResourceType
    namespace: str | None
    name: str | None
    subresource: str | None
    watch: bool

    @property
    def fault_resource(self) -> str:
        return f"{self.rt.plural}/{self.subresource}" if self.subresource else self.rt.plural


def _parse_target(storage: Storage, parts: list[str]) -> Target:
    if parts[0] == "api" and len(parts) >= 3:
        group, version, rest = "", parts[1], parts[2:]
    elif parts[0] == "apis" and len(parts) >= 4:
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        raise NOT_FOUND
    watch = rest[0] == "watch"
    if watch:
        rest = rest[1:]
    namespace = None
    namespace_subresource = not group and len(rest) == 3 and rest[2] in ("status", "finalize")
    if len(rest) >= 3 and rest[0] == "namespaces" and not namespace_subresource:
        namespace, rest = rest[1], rest[2:]
    if not rest or len(rest) > 3:
        raise NOT_FOUND
    rt = storage.served(group, version, rest[0])
    if rt is None or (namespace is not None and not rt.namespaced):
        raise NOT_FOUND
    name = rest[1] if len(rest) > 1 else None
    sub = rest[2] if len(rest) > 2 else None
    if sub is not None and sub not in rt.subresources:
        raise NOT_FOUND
    if name is not None and rt.namespaced and namespace is None:
        raise NOT_FOUND
    return Target(rt, namespace, name, sub, watch)


# ---------------------------------------------------------------------------------------------
# Scale subresource


def _path_get(obj: Obj, path: str) -> Any:
    cur: Any = obj
    for part in path.lstrip(".").split("."):
        if not isinstance(cur, dict):
            return None
        cur = cur.get(part)
    return cur


def _path_set(obj: Obj, path: str, value: Any) -> None:
    parts = path.lstrip(".").split(".")
    cur = obj
    for part in parts[:-1]:
        cur = cur.setdefault(part, {})
    cur[parts[-1]] = value


def _scale_paths(rt: ResourceType) -> dict[str, str]:
    if rt.scale_paths is not None:
        return rt.scale_paths
    return {"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas"}


def to_scale(rt: ResourceType, obj: Obj) -> Obj:
    """The autoscaling/v1 Scale view of a scalable object."""
    paths = _scale_paths(rt)
    meta = obj["metadata"]
    if rt.custom:
        selector = _path_get(obj, paths["labelSelectorPath"]) if paths.get("labelSelectorPath") else None
    else:
        selector = format_label_selector((obj.get("spec") or {}).get("selector"))
        selector = "" if selector == "<none>" else selector
    status: Obj = {"replicas": _path_get(obj, paths["statusReplicasPath"]) or 0}
    if selector:
        status["selector"] = selector
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            k: meta[k]
            for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
            if k in meta
        },
        "spec": {"replicas": _path_get(obj, paths["specReplicasPath"]) or 0},
        "status": status,
    }


def _from_scale(rt: ResourceType, obj: Obj, scale: Any) -> Obj:
    """`obj` with the Scale's replicas written back (resourceVersion precondition from the Scale)."""
    name = obj["metadata"]["name"]
    replicas = (scale.get("spec") or {}).get("replicas", 0) if isinstance(scale, dict) else None
    if not isinstance(replicas, int) or replicas < 0:
        cause = FieldCause(
            "FieldValueInvalid",
            "spec.replicas",
            f"Invalid value: {replicas}: must be greater than or equal to 0",
        )
        raise errors.invalid("Scale", "autoscaling", name, [cause])
    _path_set(obj, _scale_paths(rt)["specReplicasPath"], replicas)
    rv = (scale.get("metadata") or {}).get("resourceVersion")
    if rv:
        obj["metadata"]["resourceVersion"] = rv
    return obj


# ---------------------------------------------------------------------------------------------
# Discovery


def _storage_hash(rt: ResourceType) -> str:
    return hashlib.sha256(f"{rt.group}/{rt.version}/{rt.kind}".encode()).digest()[:8].hex()


def _api_resources(rt: ResourceType) -> list[Obj]:
    main: Obj = {
        "name": rt.plural,
        "singularName": rt.singular,
        "namespaced": rt.namespaced,
        "kind": rt.kind,
        "verbs": list(rt.verbs),
    }
    if rt.short_names:
        main["shortNames"] = list(rt.short_names)
    if rt.categories:
        main["categories"] = list(rt.categories)
    main["storageVersionHash"] = _storage_hash(rt)
    out = [main]
    for sub in sorted(rt.subresources):
        entry: Obj = {"name": f"{rt.plural}/{sub}", "singularName": "", "namespaced": rt.namespaced}
        kind = _subresource_kind(rt, sub)
        if kind["group"] != rt.group or kind["version"] != rt.version:
            entry |= {"group": kind["group"], "version": kind["version"]}
        entry["kind"] = kind["kind"]
        entry["verbs"] = list(subresource_verbs(sub))
        out.append(entry)
    return out


def _subresource_kind(rt: ResourceType, sub: str) -> Obj:
    """The group/version/kind a subresource takes and returns (Scale, Binding, or the object's own)."""
    if sub == "scale":
        return {"group": "autoscaling", "version": "v1", "kind": "Scale"}
    if sub == "binding":
        return {"group": "", "version": "v1", "kind": "Binding"}
    return {"group": rt.group, "version": rt.version, "kind": rt.kind}


def _discovery_resource(rt: ResourceType) -> Obj:
    entry: Obj = {
        "resource": rt.plural,
        "responseKind": {"group": rt.group, "version": rt.version, "kind": rt.kind},
        "scope": "Namespaced" if rt.namespaced else "Cluster",
        "singularResource": rt.singular,
        "verbs": list(rt.verbs),
    }
    if rt.short_names:
        entry["shortNames"] = list(rt.short_names)
    if rt.categories:
        entry["categories"] = list(rt.categories)
    subs = []
    for sub in sorted(rt.subresources):
        kind = _subresource_kind(rt, sub)
        subs.append({"subresource": sub, "responseKind": kind, "verbs": list(subresource_verbs(sub))})
    if subs:
        entry["subresources"] = subs
    return entry


class Discovery:
    """Discovery documents computed from the storage's current types."""

    BUILTIN_GROUP_ORDER = (
        "",
        "apps",
        "events.k8s.io",
        "policy",
        "rbac.authorization.k8s.io",
        "scheduling.k8s.io",
        "coordination.k8s.io",
        "discovery.k8s.io",
        "apiextensions.k8s.io",
    )

    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    def groups(self) -> dict[str, dict[str, list[ResourceType]]]:
        """group -> version (preferred first) -> types."""
        by_group: dict[str, dict[str, list[ResourceType]]] = {}
        for rt in self.storage.types():
            by_group.setdefault(rt.group, {}).setdefault(rt.version, []).append(rt)
        order = {g: i for i, g in enumerate(self.BUILTIN_GROUP_ORDER)}
        return {
            g: {v: by_group[g][v] for v in sorted(by_group[g], key=version_priority)}
            for g in sorted(by_group, key=lambda g: (order.get(g, len(order)), g))
        }

    @staticmethod
    def _group_doc(name: str, versions: list[str]) -> Obj:
        gvs = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
        return {"name": name, "versions": gvs, "preferredVersion": gvs[0]}

    def api_versions(self) -> Obj:
        """GET /api."""
        return {
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1:6443"}],
        }

    def api_groups(self) -> Obj:
        """GET /apis."""
        groups = [self._group_doc(g, list(vs)) for g, vs in self.groups().items() if g]
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}

    def api_group(self, group: str) -> Obj:
        """GET /apis/G."""
        versions = self.groups().get(group)
        if not group or not versions:
            raise NOT_FOUND
        return {"kind": "APIGroup", "apiVersion": "v1", **self._group_doc(group, list(versions))}

    def resource_list(self, group: str, version: str) -> Obj:
        """GET /api/v1 or /apis/G/V."""
        types = self.groups().get(group, {}).get(version)
        if not types:
            raise NOT_FOUND
        gv = f"{group}/{version}" if group else version
        resources = [r for rt in types for r in _api_resources(rt)]
        return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}

    def aggregated(self, core: bool, version: str) -> Obj:
        """The APIGroupDiscoveryList of /api (core) or /apis (every other group)."""
        items = []
        for group, versions in self.groups().items():
            if (group == "") != core:
                continue
            meta: Obj = {"name": group, "creationTimestamp": None} if group else {"creationTimestamp": None}
            items.append(
                {
                    "metadata": meta,
                    "versions": [
                        {
                            "version": v,
                            "resources": [_discovery_resource(rt) for rt in types],
                            "freshness": "Current",
                        }
                        for v, types in versions.items()
                    ],
                }
            )
        return {
            "kind": "APIGroupDiscoveryList",
            "apiVersion": f"apidiscovery.k8s.io/{version}",
            "metadata": {},
            "items": items,
        }


# ---------------------------------------------------------------------------------------------
# The API server


class ApiServer:
    """The aiohttp application answering every kube-apiserver path the sandbox serves."""

    def __init__(self, storage: Storage, faults: Faults, *, bookmark_interval: float = 5.0) -> None:
        self.storage = storage
        self.faults = faults
        self.discovery = Discovery(storage)
        self.bookmark_interval = bookmark_interval
        self._openapi_cache: dict[Any, Any] = {}
        self._encoded: dict[tuple[str, int], tuple[Obj, bytes]] = {}

    def app(self) -> web.Application:
        """The aiohttp application."""
        app = web.Application(client_max_size=256 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Dispatch one request; every failure is a metav1.Status."""
        try:
            return await self._dispatch(request)
        except StatusError as err:
            return _status_response(err)
        except (asyncio.CancelledError, ConnectionResetError):
            raise
        except Exception as err:
            log.exception("sandbox: %s %s failed", request.method, request.path)
            return _status_response(errors.internal_error(str(err)))

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        parts = [p for p in request.path.split("/") if p]
        accept = parse_accept(request.headers.get("Accept", ""))
        if not parts:
            return _json({"paths": ["/api", "/api/v1", "/apis", "/openapi/v2", "/openapi/v3", "/version"]})
        head = parts[0]
        if head in ("healthz", "livez", "readyz"):
            return web.Response(text="ok")
        if head == "version":
            return _json(SERVER_VERSION)
        if head == "sandbox" and parts[1:] == ["faults"]:
            return await self._faults(request)
        if head == "openapi":
            return self._openapi(request, parts)
        if head in ("api", "apis") and (len(parts) <= 2 or (head == "apis" and len(parts) == 3)):
            return self._discovery(parts, accept)
        if head not in ("api", "apis"):
            raise NOT_FOUND
        if not accept.json and not accept.table:
            raise StatusError(
                406,
                "NotAcceptable",
                "only the following media types are accepted: application/json, application/yaml",
            )
        return await self._resource(request, _parse_target(self.storage, parts), accept)

    # -- discovery, openapi, faults --------------------------------------------------------

    def _discovery(self, parts: list[str], accept: Accept) -> web.Response:
        if len(parts) == 1 and accept.aggregated:
            doc = self.discovery.aggregated(parts[0] == "api", accept.aggregated)
            return _json(doc, content_type=AGGREGATED.format(v=accept.aggregated), headers={"Vary": "Accept"})
        if parts == ["api"]:
            return _json(self.discovery.api_versions())
        if parts == ["apis"]:
            return _json(self.discovery.api_groups())
        if parts[0] == "api":
            return _json(self.discovery.resource_list("", parts[1]))
        if len(parts) == 2:
            return _json(self.discovery.api_group(parts[1]))
        return _json(self.discovery.resource_list(parts[1], parts[2]))

    def _crds(self) -> list[Obj]:
        return sorted(self.storage.iter_objects(CRDS), key=lambda c: c["metadata"]["name"])

    def _openapi(self, request: web.Request, parts: list[str]) -> web.Response:
        """The OpenAPI documents; /openapi/v2 in gnostic protobuf when asked, as kubectl does."""
        crds = self._crds()
        stamp = tuple(c["metadata"]["resourceVersion"] for c in crds)
        protobuf = parts[1:] == ["v2"] and openapi.PROTOBUF_V2_MIME in request.headers.get("Accept", "")
        key = (tuple(parts), protobuf, stamp)
        doc = self._openapi_cache.get(key)
        if doc is None:
            types = self.storage.types()
            if protobuf:
                doc = openapi.openapi_v2_protobuf(types, crds)
            elif parts[1:] == ["v2"]:
                doc = openapi.openapi_v2(types, crds)
            elif parts[1:] == ["v3"]:
                doc = openapi.openapi_v3_paths(types)
            elif len(parts) == 5 and parts[1:3] == ["v3", "apis"]:
                doc = openapi.openapi_v3_group(parts[3], parts[4], types, crds)
            elif len(parts) == 4 and parts[1:3] == ["v3", "api"]:
                doc = openapi.openapi_v3_group("", parts[3], types, crds)
            if doc is None:
                raise NOT_FOUND
            if len(self._openapi_cache) > 64:
                self._openapi_cache.clear()
            self._openapi_cache[key] = doc
        if protobuf:
            return web.Response(body=doc, headers={"Content-Type": openapi.PROTOBUF_V2_CONTENT_TYPE})
        return _json(doc)

    async def _faults(self, request: web.Request) -> web.Response:
        if request.method == "POST":
            self.faults.set_from_json(await _read_body(request))
        elif request.method == "DELETE":
            self.faults.clear()
        elif request.method != "GET":
            raise errors.method_not_allowed(request.method, "Faults")
        return _json(self.faults.to_json())

    # -- resources -------------------------------------------------------------------------

    async def _resource(self, request: web.Request, target: Target, accept: Accept) -> web.StreamResponse:
        method = request.method
        q = request.query
        if target.name is None:
            if method == "GET":
                watching = target.watch or q.get("watch") in _TRUE
                verb = "watch" if watching else "list"
            else:
                verb = {"POST": "create", "DELETE": "deletecollection"}.get(method, "")
        else:
            named = {"GET": "get", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}
            if target.subresource:
                named["POST"] = "create"
            verb = named.get(method, "")
        if not verb or verb not in target.rt.verbs or (target.watch and verb != "watch"):
            raise errors.method_not_allowed(method, target.rt.kind)
        if target.subresource and verb not in subresource_verbs(target.subresource):
            raise errors.method_not_allowed(method, target.rt.kind)
        await self.faults.before(verb, target.fault_resource, target.name or "")
        handler = getattr(self, "_bind" if target.subresource == "binding" else f"_{verb}")
        response: web.StreamResponse = await handler(request, target, accept)
        return response

    def _render(
        self,
        target: Target,
        accept: Accept,
        obj: Obj,
        request: web.Request,
        *,
        status: int = 200,
        warnings: list[str] | None = None,
    ) -> web.Response:
        headers = (
            {"Warning": ", ".join(f"299 - {orjson.dumps(w).decode()}" for w in warnings)}
            if warnings
            else None
        )
        if accept.table and target.subresource is None:
            return _json(self._row_table(target, accept, obj, request), status, headers=headers)
        return _json(obj, status, headers=headers)

    def _row_table(self, target: Target, accept: Accept, obj: Obj, request: web.Request) -> Obj:
        """The one-row Table of a GET or of one watch event."""
        meta = {"resourceVersion": obj["metadata"].get("resourceVersion", "")}
        return self._table(target, accept, [obj], request, meta)

    def _table(
        self, target: Target, accept: Accept, objs: list[Obj], request: web.Request, list_meta: Obj
    ) -> Obj:
        table = to_table(
            target.rt,
            objs,
            printer_columns=target.rt.printer_columns,
            include_object=request.query.get("includeObject", "Metadata"),
            list_meta=list_meta,
        )
        if accept.table != "v1":
            table["apiVersion"] = f"meta.k8s.io/{accept.table}"
        return table

    async def _get(self, request: web.Request, target: Target, accept: Accept) -> web.Response:
        assert target.name is not None
        obj = self.storage.get(target.rt, target.namespace, target.name, copy=False)
        if target.subresource == "scale":
            return _json(to_scale(target.rt, obj))
        return self._render(target, accept, obj, request)

    async def _list(self, request: web.Request, target: Target, accept: Accept) -> web.Response:
        q = request.query
        limit = _int_param(q.get("limit"), "limit")
        items, rv, token = self.storage.list(
            target.rt,
            target.namespace,
            q.get("labelSelector"),
            q.get("fieldSelector"),
            limit=limit or None,
            continue_=q.get("continue") or None,
            resource_version=q.get("resourceVersion"),
            resource_version_match=q.get("resourceVersionMatch"),
            copy=False,
        )
        meta: Obj = {"resourceVersion": rv}
        if token:
            meta["continue"] = token
        if accept.table:
            return _json(self._table(target, accept, items, request, meta))
        rt = target.rt
        return _json(
            {"kind": rt.list_kind_name, "apiVersion": rt.api_version, "metadata": meta, "items": items}
        )

    async def _watch(self, request: web.Request, target: Target, accept: Accept) -> web.StreamResponse:
        q = request.query
        spec = WatchSpec(
            rt=target.rt,
            namespace=target.namespace,
            selector=Selector.parse(target.rt, q.get("labelSelector"), q.get("fieldSelector")),
            resource_version=q.get("resourceVersion"),
            timeout=float(_int_param(q.get("timeoutSeconds"), "timeoutSeconds") or 0) or None,
            bookmarks=q.get("allowWatchBookmarks") in _TRUE,
            send_initial_events=q.get("sendInitialEvents") in _TRUE,
        )
        response = web.StreamResponse(status=200, headers={"Content-Type": JSON, "Cache-Control": "no-cache"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        events = watch_events(self.storage, spec, bookmark_interval=self.bookmark_interval)
        # A watcher that hangs up is the normal end of a watch, not a server error to log.
        with contextlib.suppress(ConnectionResetError):
            async with contextlib.aclosing(events):
                async for type_, obj in events:
                    if accept.table and type_ in ("ADDED", "MODIFIED", "DELETED"):
                        table = self._row_table(target, accept, obj, request)
                        line = orjson.dumps({"type": type_, "object": table}) + b"\n"
                    else:
                        line = self._event_line(type_, obj)
                    await response.write(line)
            await response.write_eof()
        return response

    def _event_line(self, type_: str, obj: Obj) -> bytes:
        """The encoded watch line, shared by every watcher that receives the same stored object.

        Entries hold the object itself, so an id() in the cache can never be reused by another one.
        """
        key = (type_, id(obj))
        hit = self._encoded.get(key)
        if hit is not None and hit[0] is obj:
            return hit[1]
        line = orjson.dumps({"type": type_, "object": obj}) + b"\n"
        if len(self._encoded) >= ENCODED_CACHE:
            self._encoded.clear()
        self._encoded[key] = (obj, line)
        return line

    def _check_body(self, target: Target, body: Any, *, for_name: bool) -> Obj:
        """Decode-time checks: an object of this kind, in this namespace (and with this name)."""
        rt = target.rt
        if not isinstance(body, dict):
            raise errors.bad_request(f"Object '{rt.kind}' is invalid: the body must be a JSON object")
        kind, api_version = body.get("kind"), body.get("apiVersion")
        if kind and kind != rt.kind:
            raise errors.bad_request(
                f'{kind} in version "{rt.version}" cannot be handled as a {rt.kind}: '
                f'no kind "{kind}" is registered for version "{rt.api_version}"'
            )
        if (
            api_version
            and api_version != rt.api_version
            and self.storage.served_by_api_version(api_version, rt) is None
        ):
            raise errors.bad_request(
                f"the API version in the data ({api_version}) does not match the expected API version "
                f"({rt.api_version})"
            )
        meta = body.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise errors.bad_request("metadata must be an object")
        if rt.namespaced:
            if meta.get("namespace") and meta["namespace"] != target.namespace:
                raise errors.bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            meta["namespace"] = target.namespace
        if for_name and meta.get("name") != target.name:
            raise errors.bad_request(
                f"the name of the object ({meta.get('name', '')}) does not match the name on the URL "
                f"({target.name})"
            )
        return body

    async def _create(self, request: web.Request, target: Target, accept: Accept) -> web.Response:
        if target.namespace is None and target.rt.namespaced:
            raise NOT_FOUND
        body = self._check_body(target, await _read_body(request), for_name=False)
        warnings: list[str] = []
        obj = self.storage.create(
            target.rt,
            body,
            dry_run=_dry_run(request),
            field_validation=_field_validation(request),
            warnings=warnings,
            copy=False,
        )
        return self._render(target, accept, obj, request, status=201, warnings=warnings)

    async def _bind(self, request: web.Request, target: Target, accept: Accept) -> web.Response:
        """POST pods/NAME/binding: a core/v1 Binding names the node; the answer is a Success Status."""
        assert target.name is not None and target.namespace is not None
        binding = _check_binding(target, await _read_body(request))
        meta, node = binding["metadata"], binding["target"]
        self.storage.bind(
            target.namespace,
            target.name,
            str(node.get("name") or ""),
            resource_version=meta.get("resourceVersion"),
            uid=meta.get("uid"),
            annotations=meta.get("annotations"),
            dry_run=_dry_run(request),
        )
        status = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}
        return _json(status, 201)

    async def _update(self, request: web.Request, target: Target, accept: Accept) -> web.Response:
        assert target.name is not None
        body = await _read_body(request)
        if target.subresource == "scale":
            current = self.storage.get(target.rt, target.namespace, target.name)
            return self._write_scale(request, target.rt, current, body)
        obj = self._check_body(target, body, for_name=True)
        return self._write(request, target, accept, obj)

    def _write(self, request: web.Request, target: Target, accept: Accept, obj: Obj) -> web.Response:
        """Store a full object (PUT or patched) and render it, with any unknown-field warnings."""
        warnings: list[str] = []
        updated = self.storage.update(
            target.rt,
            obj,
            subresource=target.subresource,
            dry_run=_dry_run(request),
            field_validation=_field_validation(request),
            warnings=warnings,
            copy=False,
            field_manager=_field_manager(request),
        )
        return self._render(target, accept, updated, request, warnings=warnings)

    def _write_scale(self, request: web.Request, rt: ResourceType, current: Obj, scale: Any) -> web.Response:
        """Write a Scale's replicas into the scaled object and answer with the new Scale."""
        updated = self.storage.update(
            rt,
            _from_scale(rt, current, scale),
            subresource="scale",
            dry_run=_dry_run(request),
            copy=False,
            field_manager=_field_manager(request),
        )
        return _json(to_scale(rt, updated))

    async def _patch(self, request: web.Request, target: Target, accept: Accept) -> web.Response:
        assert target.name is not None
        rt = target.rt
        ctype = request.content_type
        accepted = [JSON_PATCH, MERGE_PATCH] + ([] if rt.custom else [STRATEGIC_PATCH])
        if ctype == APPLY_PATCH and target.subresource is None:
            return await self._apply(request, target, accept)
        if ctype == APPLY_PATCH:
            raise errors.unsupported_media_type(ctype, accepted, NO_SUBRESOURCE_APPLY)
        if ctype not in accepted:
            raise errors.unsupported_media_type(ctype, [*accepted, APPLY_PATCH])
        try:
            patch = orjson.loads(await request.read())
        except orjson.JSONDecodeError as err:
            raise errors.bad_request(f"error decoding patch: {err}") from None
        current = self.storage.get(rt, target.namespace, target.name)
        if target.subresource == "scale":
            scale = _apply_patch(ctype, to_scale(rt, current), patch, ("autoscaling", "Scale"))
            return self._write_scale(request, rt, current, scale)
        patched = _apply_patch(ctype, current, patch, (rt.group, rt.kind))
        if not isinstance(patched, dict):
            raise errors.bad_request("the patched object is not a JSON object")
        meta = patched.setdefault("metadata", {})
        if rt.namespaced:
            meta["namespace"] = target.namespace
        meta["name"] = target.name
        return self._write(request, target, accept, patched)

    async def _apply(self, request: web.Request, target: Target, accept: Accept) -> web.Response:
        """Server-side apply: create or merge with field ownership (apply.py), 409 on conflicts."""
        assert target.name is not None
        rt = target.rt
        manager = apply.require_manager(request.query.get("fieldManager"))
        config = self._check_body(target, await _read_body(request), for_name=True)
        exists = self.storage.exists(rt, target.namespace, target.name)
        live = self.storage.get(rt, target.namespace, target.name) if exists else None  # apply edits it
        force = request.query.get("force") in _TRUE
        obj = apply.apply(rt, live, config, manager, force=force, now=now_rfc3339())
        warnings: list[str] = []
        managed = obj["metadata"]["managedFields"]
        write = self.storage.create if live is None else self.storage.update
        stored = write(
            rt,
            obj,
            dry_run=_dry_run(request),
            field_validation=_field_validation(request),
            warnings=warnings,
            copy=False,
            managed_fields=managed,
        )
        status = 201 if live is None else 200
        return self._render(target, accept, stored, request, status=status, warnings=warnings)

    async def _delete_options(self, request: web.Request) -> tuple[str | None, Obj | None, bool]:
        body = await _read_body(request) if request.can_read_body else None
        opts: Obj = body if isinstance(body, dict) else {}
        policy = opts.get("propagationPolicy") or request.query.get("propagationPolicy")
        orphan = opts.get("orphanDependents")
        if orphan is None and "orphanDependents" in request.query:
            orphan = request.query["orphanDependents"] in _TRUE
        if policy is None and orphan is not None:
            policy = "Orphan" if orphan else "Background"
        dry_run = "All" in (opts.get("dryRun") or []) or _dry_run(request)
        return policy, opts.get("preconditions"), dry_run

    async def _delete(self, request: web.Request, target: Target, accept: Accept) -> web.Response:
        assert target.name is not None
        policy, preconditions, dry_run = await self._delete_options(request)
        obj = self.storage.delete(
            target.rt,
            target.namespace,
            target.name,
            propagation_policy=policy,
            preconditions=preconditions,
            dry_run=dry_run,
            copy=False,
        )
        pending = bool(obj["metadata"].get("deletionTimestamp"))
        if pending or _returns_deleted_object(target.rt):
            return _json(obj)
        return _json(_success(target.rt, obj))

    async def _deletecollection(self, request: web.Request, target: Target, accept: Accept) -> web.Response:
        policy, _, dry_run = await self._delete_options(request)
        q = request.query
        items, _, _ = self.storage.list(
            target.rt, target.namespace, q.get("labelSelector"), q.get("fieldSelector"), copy=False
        )
        deleted = []
        for obj in items:
            meta = obj["metadata"]
            with contextlib.suppress(StatusError):
                deleted.append(
                    self.storage.delete(
                        target.rt,
                        meta.get("namespace"),
                        meta["name"],
                        propagation_policy=policy,
                        dry_run=dry_run,
                        copy=False,
                    )
                )
        rt = target.rt
        return _json(
            {
                "kind": rt.list_kind_name,
                "apiVersion": rt.api_version,
                "metadata": {"resourceVersion": str(self.storage.resource_version)},
                "items": deleted,
            }
        )


def _apply_patch(ctype: str, doc: Obj, patch: Any, group_kind: tuple[str, str]) -> Any:
    """`doc` with a JSON, merge or strategic merge patch applied (patch.py does the work)."""
    if ctype == JSON_PATCH:
        return json_patch(doc, patch)
    if ctype == MERGE_PATCH:
        return merge_patch(doc, patch)
    return strategic_merge_patch(doc, patch, *group_kind)


def _check_binding(target: Target, body: Any) -> Obj:
    """Decode-time checks of a Binding: its kind, namespace, name, and a Node target.

    kube-apiserver answers a target without a name with a 500 (an unconverted aggregate error);
    the sandbox answers 422 Invalid, the status every other validation failure has.
    """
    if not isinstance(body, dict) or not isinstance(body.get("metadata", {}), dict):
        raise errors.bad_request("Object 'Binding' is invalid: the body must be a JSON object")
    kind, api_version = body.get("kind"), body.get("apiVersion")
    if (kind and kind != "Binding") or (api_version and api_version != "v1"):
        raise errors.bad_request(
            f'{kind} in version "{api_version}" cannot be handled as a Binding: '
            f'no kind "{kind}" is registered for version "{api_version}"'
        )
    meta = body.setdefault("metadata", {})
    if meta.get("namespace") and meta["namespace"] != target.namespace:
        raise errors.bad_request(
            "the namespace of the provided object does not match the namespace sent on the request"
        )
    if meta.get("name") != target.name:
        raise errors.bad_request("name in URL does not match name in Binding object")
    annotations = meta.get("annotations") or {}
    if not isinstance(annotations, dict) or not all(isinstance(v, str) for v in annotations.values()):
        raise errors.bad_request(
            "Object 'Binding' is invalid: metadata.annotations must map strings to strings"
        )
    node = body.setdefault("target", {})
    if not isinstance(node, dict):
        raise errors.bad_request("Object 'Binding' is invalid: target must be an object")
    node_kind = node.get("kind")
    if node_kind not in (None, "", "Node"):
        cause = FieldCause(
            "FieldValueNotSupported",
            "target.kind",
            f'Unsupported value: "{node_kind}": supported values: "Node", "<empty>"',
        )
        raise errors.invalid("Binding", "", str(target.name), [cause])
    return body


def _int_param(value: str | None, name: str) -> int | None:
    if value in (None, ""):
        return None
    try:
        return int(str(value))
    except ValueError:
        raise errors.bad_request(f"invalid {name} parameter: {value}") from None


def _field_manager(request: web.Request) -> str:
    """Who a write's changes are recorded for: `fieldManager`, else the User-Agent's product name."""
    manager = request.query.get("fieldManager") or request.headers.get("User-Agent", "").split("/", 1)[0]
    return manager[:128] or "unknown"


def _dry_run(request: web.Request) -> bool:
    values = request.query.getall("dryRun", [])
    for value in values:
        if value != "All":
            raise errors.bad_request(f'unsupported dryRun value "{value}"; supported values: "All"')
    return bool(values)


def _field_validation(request: web.Request) -> Any:
    value = request.query.get("fieldValidation") or "Strict"
    if value not in ("Strict", "Warn", "Ignore"):
        raise errors.bad_request(
            f'fieldValidation must be one of "Ignore", "Warn", or "Strict", got "{value}"'
        )
    return value


async def _read_body(request: web.Request) -> Any:
    raw = await request.read()
    if not raw:
        return None
    ctype = request.content_type
    if "protobuf" in ctype:
        raise errors.unsupported_media_type(ctype, [JSON, "application/yaml"], NO_PROTOBUF.format(ctype))
    try:
        if ctype in ("application/yaml", "application/x-yaml", APPLY_PATCH):
            return yaml.safe_load(raw)
        return orjson.loads(raw)
    except (orjson.JSONDecodeError, yaml.YAMLError) as err:
        raise errors.bad_request(f"couldn't get version/kind; json parse error: {err}") from None


# ---------------------------------------------------------------------------------------------
# The runner


class Sandbox:
    """An embedded kube-apiserver: `url = await Sandbox().start("127.0.0.1", 0)`, then `await stop()`."""

    def __init__(
        self,
        data_dir: str | Path | None = None,
        simulate: bool = False,
        compaction_window: int = 100_000,
        *,
        compaction_seconds: float | None = None,
        bookmark_interval: float = 5.0,
        seed: int | None = None,
        flush_interval: float = 0.2,
    ) -> None:
        self._persist = Persistence(data_dir) if data_dir is not None else None
        rv, rows = self._persist.load() if self._persist is not None else (0, [])
        self.storage = Storage(
            compaction_window=compaction_window,
            compaction_seconds=compaction_seconds,
            on_commit=self._persist.record if self._persist is not None else None,
            seed_objects=rows,
            start_rv=rv,
        )
        self.faults = Faults(self.storage, seed)
        self.simulate = simulate
        self.bookmark_interval = bookmark_interval
        self.flush_interval = flush_interval
        self.url = ""
        self._gc = GarbageCollector(self.storage)
        self._runner: web.AppRunner | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._simulator: Any = None

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on host:port (0 = a free port); returns the base URL."""
        server = ApiServer(self.storage, self.faults, bookmark_interval=self.bookmark_interval)
        self._runner = web.AppRunner(
            server.app(),
            handle_signals=False,
            access_log=None,
            handler_cancellation=True,
            shutdown_timeout=1.0,
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        bound = self._runner.addresses[0]
        self.url = f"http://{host}:{bound[1]}"
        self._gc.start()
        if self._persist is not None:
            self._tasks.append(asyncio.create_task(self._flush_loop(), name="sandbox-persist"))
        if self.simulate:
            from servicegroup.sandbox.simulate import Simulator

            self._simulator = Simulator(self.storage)
            self._tasks.append(asyncio.create_task(self._simulator.run(), name="sandbox-simulator"))
        return self.url

    async def _flush_loop(self) -> None:
        assert self._persist is not None
        while True:
            await asyncio.sleep(self.flush_interval)
            self._persist.flush()

    def write_kubeconfig(self, path: str | Path) -> Path:
        """Write a kubeconfig (context `sandbox`, namespace default) pointing at this server."""
        if not self.url:
            raise RuntimeError("the sandbox is not started")
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "sandbox", "cluster": {"server": self.url}}],
            "users": [{"name": "sandbox", "user": {"token": "sandbox"}}],
            "contexts": [
                {
                    "name": "sandbox",
                    "context": {"cluster": "sandbox", "user": "sandbox", "namespace": "default"},
                }
            ],
            "current-context": "sandbox",
            "preferences": {},
        }
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(yaml.safe_dump(config, sort_keys=False))
        return out

    async def stop(self) -> None:
        """Close watches, stop serving, stop the controllers, flush state to --data-dir."""
        if self._simulator is not None:
            self._simulator.stop()
        self.storage.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await self._gc.stop()
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self._persist is not None:
            self._persist.close()
            self._persist = None
