"""kube/client.py against FakeApi: request shapes, write counting, read retries, typed errors,
watch decoding and kubeconfig auth. Retry sleeps are injected, so no test waits for real time.
"""

from __future__ import annotations

import base64
import contextlib
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY

from servicegroup.kube import errors
from servicegroup.kube.client import Client
from servicegroup.kube.metrics import API_RETRIES
from servicegroup.kube.resources import CONFIGMAPS, DEPLOYMENTS

from .fakeapi import CLOSE, FakeApi, bookmark, cm, event, gone_event


class Sleeps:
    """Injected sleep: records the delays instead of waiting."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


@pytest.fixture
async def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
async def client(api: FakeApi, sleeps: Sleeps) -> AsyncIterator[Client]:
    c = Client(api.url, field_manager="servicegroup-test", read_retries=3, sleep=sleeps)
    yield c
    await c.close()


class TestWrites:
    async def test_every_write_sets_field_manager_and_counts(self, api: FakeApi, client: Client) -> None:
        await client.create(CONFIGMAPS, cm("a", ""))
        await client.replace(CONFIGMAPS, cm("a", "5"))
        await client.patch(CONFIGMAPS, "a", {"data": {"v": "1"}}, namespace="default")
        await client.patch(DEPLOYMENTS, "d", {"spec": {"replicas": 2}}, namespace="ns", subresource="scale")
        await client.delete(
            CONFIGMAPS, "a", "default", propagation_policy="Foreground", preconditions={"uid": "u"}
        )
        await client.get(CONFIGMAPS, "a", "default")
        await client.list(CONFIGMAPS, "default")
        assert client.write_count == 5
        writes = [s for s in api.seen if s.method != "GET"]
        assert [(s.method, s.path) for s in writes] == [
            ("POST", "/api/v1/namespaces/default/configmaps"),
            ("PUT", "/api/v1/namespaces/default/configmaps/a"),
            ("PATCH", "/api/v1/namespaces/default/configmaps/a"),
            ("PATCH", "/apis/apps/v1/namespaces/ns/deployments/d/scale"),
            ("DELETE", "/api/v1/namespaces/default/configmaps/a"),
        ]
        assert all(s.query.get("fieldManager") == "servicegroup-test" for s in writes[:4])
        assert writes[2].headers["Content-Type"] == "application/merge-patch+json"
        assert writes[4].body["propagationPolicy"] == "Foreground"
        assert writes[4].body["preconditions"] == {"uid": "u"}

    async def test_replace_status_puts_the_status_subresource(self, api: FakeApi, client: Client) -> None:
        await client.replace_status(
            DEPLOYMENTS, {"metadata": {"name": "d", "namespace": "ns", "resourceVersion": "3"}}
        )
        assert (api.seen[0].method, api.seen[0].path) == (
            "PUT",
            "/apis/apps/v1/namespaces/ns/deployments/d/status",
        )
        assert api.seen[0].body["metadata"]["resourceVersion"] == "3"

    async def test_patch_types_set_content_type(self, api: FakeApi, client: Client) -> None:
        await client.patch(
            CONFIGMAPS, "a", [{"op": "remove", "path": "/data/v"}], namespace="default", patch_type="json"
        )
        await client.patch(CONFIGMAPS, "a", {"data": {}}, namespace="default", patch_type="strategic")
        types = [s.headers["Content-Type"] for s in api.seen]
        assert types == ["application/json-patch+json", "application/strategic-merge-patch+json"]

    async def test_field_manager_views_share_the_write_count(self, api: FakeApi, client: Client) -> None:
        grid = client.with_field_manager("servicegroup-grid")
        await grid.create(CONFIGMAPS, cm("a", ""))
        await client.create(CONFIGMAPS, cm("b", ""))
        assert client.write_count == grid.write_count == 2
        assert [s.query["fieldManager"] for s in api.seen] == ["servicegroup-grid", "servicegroup-test"]

    @pytest.mark.parametrize(
        ("status", "reason", "cls"),
        [
            (409, "Conflict", errors.Conflict),
            (409, "AlreadyExists", errors.AlreadyExists),
            (422, "Invalid", errors.Invalid),
            (404, "NotFound", errors.NotFound),
            (500, "InternalError", errors.ServerError),
            (429, "TooManyRequests", errors.TooManyRequests),
        ],
    )
    async def test_writes_raise_typed_errors_without_retrying(  # noqa: PLR0917 - pytest fixtures
        self, api: FakeApi, client: Client, sleeps: Sleeps, status: int, reason: str, cls: type[Exception]
    ) -> None:
        api.canned.append(
            ("PUT", status, {"kind": "Status", "code": status, "reason": reason, "message": "m"}, {})
        )
        with pytest.raises(cls):
            await client.replace(CONFIGMAPS, cm("a", "1"))
        assert len(api.seen) == 1
        assert sleeps.delays == []

    async def test_request_metrics_count_by_verb_resource_and_code(
        self, api: FakeApi, client: Client
    ) -> None:
        labels = {"verb": "create", "resource": "configmaps", "code": "409"}
        before = REGISTRY.get_sample_value("servicegroup_api_requests_total", labels) or 0
        api.canned.append(("POST", 409, {"reason": "AlreadyExists"}, {}))
        with pytest.raises(errors.AlreadyExists):
            await client.create(CONFIGMAPS, cm("a", ""))
        assert REGISTRY.get_sample_value("servicegroup_api_requests_total", labels) == before + 1


class TestReads:
    async def test_429_is_retried_after_retry_after(
        self, api: FakeApi, client: Client, sleeps: Sleeps
    ) -> None:
        api.canned.append(("GET", 429, {"reason": "TooManyRequests"}, {"Retry-After": "7"}))
        api.objects = [cm("a", "1")]
        listed = await client.list(CONFIGMAPS, "default")
        assert [i["metadata"]["name"] for i in listed["items"]] == ["a"]
        assert sleeps.delays == [7.0]

    async def test_5xx_retried_with_growing_bounded_backoff(
        self, api: FakeApi, client: Client, sleeps: Sleeps
    ) -> None:
        for _ in range(3):
            api.canned.append(("GET", 503, {"reason": "ServiceUnavailable"}, {}))
        retries = API_RETRIES.labels("list", str(CONFIGMAPS))
        before = retries._value.get()
        await client.list(CONFIGMAPS, "default")
        assert len(sleeps.delays) == 3
        assert retries._value.get() - before == 3  # each retry is counted for /metrics
        assert sleeps.delays[0] < sleeps.delays[1] < sleeps.delays[2] <= client.max_backoff * 1.2

    async def test_retries_are_bounded(self, api: FakeApi, client: Client, sleeps: Sleeps) -> None:
        for _ in range(4):
            api.canned.append(("GET", 500, {"reason": "InternalError"}, {}))
        with pytest.raises(errors.ServerError):
            await client.get(CONFIGMAPS, "a", "default")
        assert len(sleeps.delays) == 3

    async def test_not_found_is_not_retried(self, api: FakeApi, client: Client, sleeps: Sleeps) -> None:
        api.canned.append(("GET", 404, {"reason": "NotFound", "message": 'configmaps "a" not found'}, {}))
        with pytest.raises(errors.NotFound, match="not found"):
            await client.get(CONFIGMAPS, "a", "default")
        assert sleeps.delays == []

    async def test_connection_errors_are_unreachable_and_retried(self, sleeps: Sleeps) -> None:
        client = Client("http://127.0.0.1:9", read_retries=2, sleep=sleeps)
        try:
            with pytest.raises(errors.Unreachable):
                await client.get(CONFIGMAPS, "a", "default")
            assert len(sleeps.delays) == 2
            with pytest.raises(errors.Unreachable):
                await client.create(CONFIGMAPS, cm("a", ""))
            assert len(sleeps.delays) == 2  # writes are not retried
        finally:
            await client.close()

    async def test_list_all_follows_continue_tokens(self, api: FakeApi, client: Client) -> None:
        api.objects = [cm(f"c{i}", str(i)) for i in range(5)]
        listed = await client.list_all(CONFIGMAPS, "default", label_selector="a=b", page_size=2)
        assert [i["metadata"]["name"] for i in listed["items"]] == [f"c{i}" for i in range(5)]
        assert "continue" not in listed["metadata"]
        assert [s.query.get("continue") for s in api.seen] == [None, "2", "4"]
        assert all(s.query["labelSelector"] == "a=b" for s in api.seen)


class TestLimits:
    async def test_client_side_qps_spaces_requests_after_the_burst(
        self, api: FakeApi, sleeps: Sleeps
    ) -> None:
        client = Client(api.url, qps=10, burst=2, sleep=sleeps)
        try:
            for _ in range(3):
                await client.get(CONFIGMAPS, "a", "default")
        finally:
            await client.close()
        assert len(sleeps.delays) == 1
        assert 0.05 < sleeps.delays[0] <= 0.1

    async def test_qps_limiting_is_off_by_default(self, api: FakeApi, client: Client, sleeps: Sleeps) -> None:
        for _ in range(20):
            await client.get(CONFIGMAPS, "a", "default")
        assert sleeps.delays == []


class TestWatch:
    async def test_watch_yields_raw_events_including_bookmarks(self, api: FakeApi, client: Client) -> None:
        api.watch_scripts.append([event("ADDED", cm("a", "1")), bookmark("5"), CLOSE])
        stream = client.watch(CONFIGMAPS, "default", resource_version="0", timeout_seconds=30)
        events = [e async for e in stream]
        assert [e["type"] for e in events] == ["ADDED", "BOOKMARK"]
        query = api.seen[0].query
        assert (query["watch"], query["resourceVersion"], query["timeoutSeconds"]) == ("true", "0", "30")

    async def test_error_event_410_raises_gone(self, api: FakeApi, client: Client) -> None:
        api.watch_scripts.append([event("ADDED", cm("a", "1")), gone_event()])
        got: list[Any] = []
        with pytest.raises(errors.Gone):
            async for e in client.watch(CONFIGMAPS, "default", resource_version="1"):
                got.append(e)
        assert len(got) == 1

    async def test_http_error_on_watch_raises_typed(self, api: FakeApi, client: Client) -> None:
        api.watch_scripts.append([410])
        with pytest.raises(errors.Gone):
            async for _ in client.watch(CONFIGMAPS, "default", resource_version="1"):
                pass

    async def test_leaving_a_watch_early_closes_it(self, api: FakeApi, client: Client) -> None:
        api.watch_scripts.append([event("ADDED", cm("a", "1"))])  # then the stream stays open
        stream = client.watch(CONFIGMAPS, "default")
        async with contextlib.aclosing(stream):
            async for _ in stream:
                break
        assert client.write_count == 0


def kubeconfig(tmp_path: Path, cluster: dict[str, Any], user: dict[str, Any]) -> str:
    """Write a one-context kubeconfig; returns its path."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": cluster}],
        "users": [{"name": "u", "user": user}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "x",
    }
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump(config))
    return str(path)


def exec_plugin(tmp_path: Path, token_shell: str) -> dict[str, Any]:
    """A kubeconfig user whose exec credential plugin prints the token `token_shell` expands to."""
    script = tmp_path / "cred.sh"
    script.write_text(
        f"#!/bin/sh\necho x >> {tmp_path / 'calls'}\nn=$(wc -l < {tmp_path / 'calls'})\n"
        'echo \'{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential",'
        f'"status":{{"token":"\'"{token_shell}"\'"}}}}\'\n'
    )
    script.chmod(0o755)
    return {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": str(script)}}


async def get_once(path: str) -> None:
    client = await Client.from_kubeconfig(path)
    try:
        await client.get(CONFIGMAPS, "a", "default")
    finally:
        await client.close()


class TestKubeconfig:
    async def test_token_from_kubeconfig_is_sent(self, api: FakeApi, tmp_path: Path) -> None:
        await get_once(kubeconfig(tmp_path, {"server": api.url}, {"token": "s3cret"}))
        assert api.seen[0].headers["Authorization"] == "Bearer s3cret"

    async def test_exec_plugin_token_is_sent(self, api: FakeApi, tmp_path: Path) -> None:
        await get_once(kubeconfig(tmp_path, {"server": api.url}, exec_plugin(tmp_path, "from-exec")))
        assert api.seen[0].headers["Authorization"] == "Bearer from-exec"

    async def test_unauthorized_reloads_exec_credentials_once(self, api: FakeApi, tmp_path: Path) -> None:
        path = kubeconfig(tmp_path, {"server": api.url}, exec_plugin(tmp_path, "token-$n"))
        client = await Client.from_kubeconfig(path)
        unauthorized = ("GET", 401, {"reason": "Unauthorized"}, {})
        api.canned.append(unauthorized)
        try:
            await client.get(CONFIGMAPS, "a", "default")  # 401 → reload → succeeds with the new token
            api.canned.extend([unauthorized, unauthorized])
            with pytest.raises(errors.Unauthorized):
                await client.get(CONFIGMAPS, "a", "default")  # still 401 after one reload: raised
        finally:
            await client.close()
        tokens = [s.headers["Authorization"] for s in api.seen]
        assert len(tokens) == 4
        assert tokens[0] != tokens[1] and tokens[2] != tokens[3]


def openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA, a server certificate for 127.0.0.1 and a client certificate (CN=admin)."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command")
    d = tmp_path_factory.mktemp("pki")
    openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=test-ca",
        "-keyout",
        str(d / "ca.key"),
        "-out",
        str(d / "ca.crt"),
    )
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    for name, cn in (("server", "127.0.0.1"), ("client", "admin")):
        openssl(
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            f"/CN={cn}",
            "-keyout",
            str(d / f"{name}.key"),
            "-out",
            str(d / f"{name}.csr"),
        )
        openssl(
            "x509",
            "-req",
            "-in",
            str(d / f"{name}.csr"),
            "-CA",
            str(d / "ca.crt"),
            "-CAkey",
            str(d / "ca.key"),
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            str(d / "san.ext"),
            "-out",
            str(d / f"{name}.crt"),
        )
    return d


def b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def tls_kubeconfig(tmp_path: Path, pki: Path, server: str, *, with_ca: bool = True) -> str:
    cluster: dict[str, Any] = {"server": server}
    if with_ca:
        cluster["certificate-authority-data"] = b64(pki / "ca.crt")
    user = {"client-certificate-data": b64(pki / "client.crt"), "client-key-data": b64(pki / "client.key")}
    return kubeconfig(tmp_path, cluster, user)


@pytest.fixture
async def tls_api(pki: Path) -> AsyncIterator[FakeApi]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki / "server.crt", pki / "server.key")
    context.load_verify_locations(pki / "ca.crt")
    context.verify_mode = ssl.CERT_OPTIONAL  # a client certificate, when sent, must be valid
    fake = FakeApi()
    await fake.start(context)
    yield fake
    await fake.stop()


class TestTls:
    async def test_ca_and_client_certificate_from_kubeconfig(
        self, pki: Path, tls_api: FakeApi, tmp_path: Path
    ) -> None:
        await get_once(tls_kubeconfig(tmp_path, pki, tls_api.url))
        assert tls_api.seen[0].headers["X-Client-CN"] == "admin"

    async def test_unknown_server_ca_is_unreachable(
        self, pki: Path, tls_api: FakeApi, tmp_path: Path
    ) -> None:
        client = await Client.from_kubeconfig(tls_kubeconfig(tmp_path, pki, tls_api.url, with_ca=False))
        client.read_retries = 0
        try:
            with pytest.raises(errors.Unreachable, match="CERTIFICATE_VERIFY_FAILED"):
                await client.get(CONFIGMAPS, "a", "default")
        finally:
            await client.close()
        assert tls_api.seen == []

    async def test_in_cluster_config_uses_service_account(
        self, pki: Path, tls_api: FakeApi, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from kubernetes_asyncio.config import incluster_config

        (tmp_path / "token").write_text("sa-token")
        monkeypatch.setattr(incluster_config, "SERVICE_TOKEN_FILENAME", str(tmp_path / "token"))
        monkeypatch.setattr(incluster_config, "SERVICE_CERT_FILENAME", str(pki / "ca.crt"))
        monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
        monkeypatch.setenv("KUBERNETES_SERVICE_PORT", tls_api.url.rsplit(":", 1)[1])
        client = await Client.from_kubeconfig(None)
        try:
            await client.get(CONFIGMAPS, "a", "default")
        finally:
            await client.close()
        assert tls_api.seen[0].headers["Authorization"] == "Bearer sa-token"
