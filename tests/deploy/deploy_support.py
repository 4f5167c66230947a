"""Shared helpers of the deploy tests: rendering overlays, running the real commands, recording
their API requests, and checking those requests against the rendered RBAC."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import aiohttp
import orjson
import yaml
from aiohttp import web
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from servicegroup.kube.client import Client
from servicegroup.kube.errors import NotFound
from servicegroup.kube.resources import DEPLOYMENTS, NAMESPACES, NODES, Resource, crd_resource
from servicegroup.sandbox import Sandbox
from waits import eventually

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
KUBECTL = str(Path(sys.executable).with_name("kubectl"))
OVERLAYS = ("default", "cloud-only", "edge")
EXAMPLES = ROOT / "src" / "servicegroup" / "examples"

Obj = dict[str, Any]
CRDS = crd_resource(
    "apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition", False
)
NODEUNITS = crd_resource("site.superedge.io", "v1alpha2", "nodeunits", "NodeUnit", False)
NODEGROUPS = crd_resource("site.superedge.io", "v1alpha2", "nodegroups", "NodeGroup", False)
DGRIDS = crd_resource("superedge.io", "v1", "deploymentgrids", "DeploymentGrid")
SGRIDS = crd_resource("superedge.io", "v1", "servicegrids", "ServiceGrid")
SSGRIDS = crd_resource("superedge.io", "v1", "statefulsetgrids", "StatefulSetGrid")
CONFIG_GRIDS = crd_resource("servicegroup.io", "v1alpha1", "configmapgrids", "ConfigMapGrid")
SECRET_GRIDS = crd_resource("servicegroup.io", "v1alpha1", "secretgrids", "SecretGrid")
GRIDS = (DGRIDS, SGRIDS, SSGRIDS, CONFIG_GRIDS, SECRET_GRIDS)
BY_KIND = {r.kind: r for r in (CRDS, NAMESPACES, NODES, NODEUNITS, NODEGROUPS, DEPLOYMENTS, *GRIDS)}
MANAGER_NAMESPACE = "servicegroup-system"


# -- rendering --------------------------------------------------------------------------------


@cache
def _render_text(path: str) -> str:
    done = subprocess.run([KUBECTL, "kustomize", path], capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"kubectl kustomize {path} failed: {done.stderr}"
    return done.stdout


def render(path: Path) -> list[Obj]:
    """`kubectl kustomize path`, parsed (a fresh copy each call)."""
    return [doc for doc in yaml.safe_load_all(_render_text(str(path))) if doc]


async def kubectl(kubeconfig: Path, *args: str) -> tuple[int, str, str]:
    """The real kubectl against a kubeconfig: (exit code, stdout, stderr), bounded to 60 s."""
    process = await asyncio.create_subprocess_exec(
        KUBECTL,
        f"--kubeconfig={kubeconfig}",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def with_components(tmp_path: Path, *names: str) -> Path:
    """A throw-away overlay: the default one plus the Components deploy/rbac/<name> (as
    docs/install.md shows)."""
    overlay = tmp_path / "-".join(("overlay", *names))
    overlay.mkdir()
    base = os.path.relpath(DEPLOY / "overlays" / "default", overlay)
    components = "".join(f"- {os.path.relpath(DEPLOY / 'rbac' / name, overlay)}\n" for name in names)
    (overlay / "kustomization.yaml").write_text(f"resources:\n- {base}\ncomponents:\n{components}")
    return overlay


def find(objs: Iterable[Obj], kind: str, name: str) -> Obj:
    """The one rendered object of `kind` named `name`."""
    matches = [o for o in objs if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kind}/{name}: {len(matches)} objects"
    return matches[0]


def example(name: str) -> list[Obj]:
    """The docs' example manifests (examples/), parsed."""
    return [doc for doc in yaml.safe_load_all((EXAMPLES / name).read_text()) if doc]


async def create(client: Client, *objs: Obj) -> None:
    """Create each object (namespaced ones in `default` unless they say otherwise)."""
    for obj in objs:
        res = BY_KIND[obj["kind"]]
        namespace = obj["metadata"].get("namespace", "default") if res.namespaced else None
        await client.create(res, obj, namespace=namespace)


async def exists(client: Client, res: Resource, name: str, namespace: str | None = "default") -> bool:
    try:
        await client.get(res, name, namespace)
    except NotFound:
        return False
    return True


@contextlib.asynccontextmanager
async def installed_sandbox() -> AsyncIterator[tuple[Sandbox, Client]]:
    """The sandbox (simulating pods) with our CRDs and namespace, as deploy/base renders them, and
    the docs' five nodes."""
    sandbox = Sandbox(simulate=True, bookmark_interval=0.5)
    await sandbox.start("127.0.0.1", 0)
    client = Client(sandbox.url)
    installed = [o for o in render(DEPLOY / "base") if o["kind"] in ("CustomResourceDefinition", "Namespace")]
    try:
        await create(client, *installed, *example("00-nodes.yaml"))
        yield sandbox, client
    finally:
        await client.close()
        await sandbox.stop()


# -- running the real commands ----------------------------------------------------------------


@dataclass
class Component:
    """A `servicegroup ...` subprocess with its stderr in a file (so a full pipe never blocks it)."""

    process: asyncio.subprocess.Process
    log: Path

    def lines(self) -> list[str]:
        return self.log.read_text(errors="replace").splitlines()

    def json_lines(self) -> list[Obj]:
        """Every log line, each of which must be one JSON object (`--log-format json`)."""
        return [orjson.loads(line) for line in self.lines() if line.strip()]

    async def address(self, message: str) -> str:
        """The `http://host:port` a log message (e.g. "health server listening on") announced."""

        async def announced() -> str:
            for line in self.lines():
                if message in line and (found := re.search(r"http://[\d.]+:\d+", line)):
                    return found.group(0)
            assert self.process.returncode is None, f"exited {self.process.returncode}: {self.lines()}"
            return ""

        return str(await eventually(announced, timeout=30, message=f"{message!r} in the log"))

    async def terminate(self, timeout: float = 20.0) -> int:
        """SIGTERM, then the exit code; fails (after killing it) if it does not exit in `timeout`."""
        self.process.send_signal(signal.SIGTERM)
        try:
            return await asyncio.wait_for(self.process.wait(), timeout)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
            raise AssertionError(f"no exit {timeout}s after SIGTERM: {self.lines()[-20:]}") from None

    async def kill(self) -> None:
        if self.process.returncode is None:
            self.process.kill()
            await self.process.wait()


@contextlib.asynccontextmanager
async def component(
    args: list[str], log: Path, env: dict[str, str] | None = None
) -> AsyncIterator[Component]:
    """Run `servicegroup *args` (JSON logs, debug level, `env` added to ours); killed on exit if
    still running."""
    with log.open("wb") as stderr:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "servicegroup",
            *args,
            "--log-format",
            "json",
            "--log-level",
            "debug",
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            env={**os.environ, **(env or {})},
        )
    running = Component(process, log)
    try:
        yield running
    finally:
        await running.kill()


async def scrape(url: str) -> dict[str, Metric]:
    """GET `url`/metrics and parse it with prometheus_client's parser: family name -> family."""
    async with aiohttp.ClientSession() as session, session.get(f"{url}/metrics") as response:
        assert response.status == 200
        text = await response.text()
    return {family.name: family for family in text_string_to_metric_families(text)}


async def status_of(url: str) -> int:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status


# -- recording what a component asks the API server --------------------------------------------


@dataclass(frozen=True)
class Call:
    """One API request as RBAC sees it (the attributes kube-apiserver's authorizer gets)."""

    verb: str
    group: str
    resource: str  # plural, or plural/subresource
    namespace: str | None
    name: str | None


def to_call(method: str, path: str, query: dict[str, list[str]]) -> Call | None:
    """The RBAC attributes of a REST request; None for non-resource URLs (/version, discovery)."""
    parts = [p for p in path.split("/") if p]
    if parts[:2] == ["api", "v1"]:
        group, rest = "", parts[2:]
    elif parts[:1] == ["apis"] and len(parts) >= 3:
        group, rest = parts[1], parts[3:]
    else:
        return None
    if not rest:
        return None
    namespace = None
    if rest[0] == "namespaces" and len(rest) >= 3:
        namespace, rest = rest[1], rest[2:]
    resource, name = rest[0], rest[1] if len(rest) > 1 else None
    if len(rest) > 2:
        resource = f"{resource}/{rest[2]}"
    watch = query.get("watch", [""])[0] in ("true", "1")
    verb = {
        "POST": "create",
        "PUT": "update",
        "PATCH": "patch",
        "DELETE": "delete" if name else "deletecollection",
    }.get(method) or ("get" if name else "watch" if watch else "list")
    return Call(verb, group, resource, namespace, name)


@dataclass
class RecordingProxy:
    """A reverse proxy in front of the sandbox that records every request (the audit log the
    sandbox does not keep). Streams responses, so watches work through it."""

    upstream: str
    calls: list[Call] = field(default_factory=list)
    _runner: web.AppRunner | None = None
    _session: aiohttp.ClientSession | None = None

    async def start(self) -> str:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None))
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        return f"http://127.0.0.1:{self._runner.addresses[0][1]}"

    async def stop(self) -> None:
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    def kubeconfig(self, url: str, path: Path) -> Path:
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "recorded", "cluster": {"server": url}}],
            "users": [{"name": "recorded", "user": {"token": "recorded"}}],
            "contexts": [{"name": "recorded", "context": {"cluster": "recorded", "user": "recorded"}}],
            "current-context": "recorded",
        }
        path.write_text(yaml.safe_dump(config))
        return path

    @property
    def writes(self) -> list[Call]:
        return [c for c in self.calls if c.verb not in ("get", "list", "watch")]

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        call = to_call(request.method, request.path, parse_qs(request.query_string))
        if call is not None:
            self.calls.append(call)
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() in ("content-type", "accept")}
        async with self._session.request(
            request.method, self.upstream + request.path_qs, headers=headers, data=await request.read()
        ) as upstream:
            response = web.StreamResponse(status=upstream.status)
            response.content_type = upstream.content_type
            await response.prepare(request)
            with contextlib.suppress(aiohttp.ClientError, ConnectionError):
                async for chunk in upstream.content.iter_any():
                    await response.write(chunk)
            return response


# -- RBAC evaluation over the rendered manifests -----------------------------------------------


@dataclass(frozen=True)
class Grant:
    """One rule of a role bound to a service account; `namespace` None = cluster-wide."""

    rule: tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...], tuple[str, ...]]
    namespace: str | None

    @property
    def permissions(self) -> list[tuple[str, str, str, str | None]]:
        """(group, resource, verb, resourceName) tuples this grant expands to."""
        groups, resources, verbs, names = self.rule
        return [(g, r, v, n) for g in groups for r in resources for v in verbs for n in (names or (None,))]

    def allows(self, call: Call) -> bool:
        if self.namespace is not None and call.namespace != self.namespace:
            return False
        return any(
            (g, r, v) == (call.group, call.resource, call.verb) and (n is None or n == call.name)
            for g, r, v, n in self.permissions
        )


def grants_of(objs: list[Obj], namespace: str, account: str) -> list[Grant]:
    """Every rule the rendered bindings give the ServiceAccount `namespace/account`."""
    roles = {(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]): o for o in objs}
    grants = []
    for binding in objs:
        if binding["kind"] not in ("ClusterRoleBinding", "RoleBinding"):
            continue
        subjects = binding.get("subjects") or []
        if not any(
            s["kind"] == "ServiceAccount" and s["name"] == account and s.get("namespace") == namespace
            for s in subjects
        ):
            continue
        scope = binding["metadata"].get("namespace")
        ref = binding["roleRef"]
        role = roles[(ref["kind"], scope if ref["kind"] == "Role" else None, ref["name"])]
        for rule in role.get("rules") or []:
            key = tuple(
                tuple(rule.get(k) or ()) for k in ("apiGroups", "resources", "verbs", "resourceNames")
            )
            grants.append(Grant(key, scope))  # type: ignore[arg-type]
    return grants


def compare(grants: list[Grant], calls: Iterable[Call]) -> tuple[set[Call], set[str]]:
    """(calls no grant allows, granted permissions no call used)."""
    calls = set(calls)
    missing = {c for c in calls if not any(g.allows(c) for g in grants)}
    unused = set()
    for grant in grants:
        for group, resource, verb, name in grant.permissions:
            if not any(
                (c.group, c.resource, c.verb) == (group, resource, verb)
                and (name is None or c.name == name)
                and (grant.namespace is None or c.namespace == grant.namespace)
                for c in calls
            ):
                scope = grant.namespace or "cluster"
                unused.add(f"{verb} {resource}.{group or 'core'} {name or ''} in {scope}".replace("  ", " "))
    return missing, unused
