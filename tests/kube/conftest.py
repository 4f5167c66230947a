"""Fixtures for kube/ tests: the scripted FakeApi, a started sandbox, a Client from its kubeconfig."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from servicegroup.kube.client import Client
from servicegroup.sandbox import Sandbox

from .fakeapi import FakeApi


@pytest.fixture
async def api() -> AsyncIterator[FakeApi]:
    """A started FakeApi (scripted server) for exact request/stream assertions."""
    fake = FakeApi()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def kube(sandbox: Sandbox, tmp_path: Path) -> AsyncIterator[Client]:
    """A Client configured exactly as the product configures it: through a kubeconfig."""
    path = sandbox.write_kubeconfig(tmp_path / "kubeconfig")
    client = await Client.from_kubeconfig(str(path), field_manager="servicegroup-test")
    yield client
    await client.close()
