"""Member Secret parsing: a usable kubeconfig or one clear line saying why not."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from servicegroup.fed.demo import member_secret
from servicegroup.fed.members import BadMember, is_member_secret, parse_member

Obj = dict[str, Any]


def kubeconfig(**overrides: Any) -> Obj:
    config: Obj = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "edge", "cluster": {"server": "https://10.0.0.1:6443"}}],
        "users": [{"name": "admin", "user": {"token": "t"}}],
        "contexts": [{"name": "edge", "context": {"cluster": "edge", "user": "admin"}}],
        "current-context": "edge",
    }
    config.update(overrides)
    return config


def secret_for(config: Any, name: str = "member-a") -> Obj:
    return member_secret(name, yaml.safe_dump(config).encode())


def test_parses_name_server_and_context() -> None:
    member = parse_member(secret_for(kubeconfig()))
    assert (member.name, member.server, member.context) == ("member-a", "https://10.0.0.1:6443", "edge")
    assert member.kubeconfig["users"][0]["user"]["token"] == "t"
    assert is_member_secret(secret_for(kubeconfig()))


def test_digest_changes_with_the_kubeconfig_only() -> None:
    first = parse_member(secret_for(kubeconfig()))
    same = parse_member(secret_for(kubeconfig()))
    moved = parse_member(
        secret_for(kubeconfig(clusters=[{"name": "edge", "cluster": {"server": "https://b"}}]))
    )
    assert first.digest == same.digest != moved.digest


def test_single_context_without_current_context_is_used() -> None:
    config = kubeconfig()
    del config["current-context"]
    assert parse_member(secret_for(config)).context == "edge"


@pytest.mark.parametrize(
    ("secret", "message"),
    [
        (
            secret_for(kubeconfig(), name="Member_A"),
            "member name 'Member_A' (the Secret's name) must be a DNS-1123 label",
        ),
        ({"metadata": {"name": "m"}, "data": {}}, "the Secret has no data.kubeconfig"),
        ({"metadata": {"name": "m"}, "data": {"kubeconfig": "%%%"}}, "data.kubeconfig is not valid base64"),
        (member_secret("m", b"[unclosed"), "data.kubeconfig is not YAML: "),
        (member_secret("m", b"- a list"), "data.kubeconfig is not a kubeconfig (a YAML mapping)"),
        (
            secret_for(kubeconfig(**{"current-context": "", "contexts": [{"name": "x"}, {"name": "y"}]})),
            "kubeconfig has no current-context",
        ),
        (secret_for(kubeconfig(**{"current-context": "other"})), "kubeconfig has no context named 'other'"),
        (secret_for(kubeconfig(clusters=[])), "kubeconfig has no cluster named 'edge'"),
        (secret_for(kubeconfig(users=[])), "kubeconfig has no user named 'admin'"),
        (
            secret_for(kubeconfig(clusters=[{"name": "edge", "cluster": {"server": "10.0.0.1"}}])),
            "kubeconfig cluster 'edge' has no http(s) server URL",
        ),
    ],
)
def test_bad_secrets_name_the_problem(secret: Obj, message: str) -> None:
    with pytest.raises(BadMember) as caught:
        parse_member(secret)
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


def test_string_data_is_read_before_the_server_folds_it() -> None:
    secret = {"metadata": {"name": "m"}, "stringData": {"kubeconfig": yaml.safe_dump(kubeconfig())}}
    assert parse_member(secret).server == "https://10.0.0.1:6443"
