"""--data-dir: state and the resourceVersion counter survive a restart; the CLI serves and stops cleanly."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from servicegroup.sandbox import Sandbox

CMS = "/api/v1/namespaces/default/configmaps"


async def test_state_survives_restart(tmp_path: Path, make: Any) -> None:
    first = Sandbox(data_dir=tmp_path)
    await first.start("127.0.0.1", 0)
    async with aiohttp.ClientSession() as s:
        async with s.post(first.url + CMS, json=make.configmap("kept", a="1")) as r:
            kept = await r.json()
        async with s.post(
            first.url + "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", json=make.widget_crd()
        ) as r:
            assert r.status == 201
        async with s.post(
            first.url + "/apis/example.com/v1/namespaces/default/widgets", json=make.widget("w")
        ) as r:
            assert r.status == 201
        async with s.post(
            first.url + "/api/v1/namespaces/default/services",
            json={"metadata": {"name": "svc"}, "spec": {"ports": [{"port": 80}]}},
        ) as r:
            ip = (await r.json())["spec"]["clusterIP"]
        async with s.delete(first.url + CMS + "/kept") as r:
            assert r.status == 200
        async with s.post(first.url + CMS, json=make.configmap("kept", a="2")) as r:
            kept = await r.json()
    rv = int(kept["metadata"]["resourceVersion"])
    await first.stop()

    second = Sandbox(data_dir=tmp_path)
    await second.start("127.0.0.1", 0)
    try:
        async with aiohttp.ClientSession() as s:
            async with s.get(second.url + CMS + "/kept") as r:
                again = await r.json()
            assert again == kept
            async with s.get(second.url + "/apis/example.com/v1/namespaces/default/widgets/w") as r:
                assert r.status == 200
            async with s.post(second.url + CMS, json=make.configmap("new")) as r:
                assert int((await r.json())["metadata"]["resourceVersion"]) > rv
            svc = {"metadata": {"name": "other"}, "spec": {"ports": [{"port": 80}]}}
            async with s.post(second.url + "/api/v1/namespaces/default/services", json=svc) as r:
                assert (await r.json())["spec"]["clusterIP"] != ip
            async with s.get(second.url + "/api/v1/namespaces") as r:
                names = [n["metadata"]["name"] for n in (await r.json())["items"]]
            assert names == ["default", "kube-node-lease", "kube-public", "kube-system"]
    finally:
        await second.stop()


async def test_cli_serves_until_sigterm(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kc"
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "servicegroup",
        "sandbox",
        "--listen",
        "127.0.0.1:0",
        "--kubeconfig",
        str(kubeconfig),
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    try:
        line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        url = line.split()[-1]
        assert url.startswith("http://127.0.0.1:")
        export = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        assert export.strip() == f"export KUBECONFIG={kubeconfig.resolve()}"
        assert f"server: {url}" in kubeconfig.read_text()
        async with aiohttp.ClientSession() as s, s.get(url + "/api/v1/namespaces/default") as r:
            assert orjson.loads(await r.read())["metadata"]["name"] == "default"
    finally:
        proc.send_signal(signal.SIGTERM)
        rc = await asyncio.wait_for(proc.wait(), 30)
    assert rc == 0


async def test_cli_rejects_a_bad_listen_address(tmp_path: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "servicegroup",
        "sandbox",
        "--listen",
        "nope",
        "--kubeconfig",
        str(tmp_path / "kc"),
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2 and b"expected HOST:PORT" in err


async def test_cli_rejects_an_unusable_data_dir(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "servicegroup",
        "sandbox",
        "--kubeconfig",
        str(tmp_path / "kc"),
        "--data-dir",
        str(not_a_dir),
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 1
    assert err.decode().startswith("servicegroup sandbox: error: cannot use --data-dir")
    assert b"Traceback" not in err
