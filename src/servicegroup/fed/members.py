"""Member clusters registered as kubeconfig Secrets in the control cluster. Pure.

A member is a Secret in the fed namespace (default `servicegroup-system`) labelled
`servicegroup.io/cluster: "true"`, whose name is the member's name and whose `data.kubeconfig`
holds a kubeconfig for it. `parse_member` turns such a Secret into a `Member` or raises
`BadMember` with a one-line reason (the controller turns it into a Warning Event on the Secret),
so a typo never yields a half-configured client.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import yaml

from servicegroup.api import labels
from servicegroup.kube.objects import meta

Obj = dict[str, Any]

DEFAULT_NAMESPACE: Final = "servicegroup-system"
MEMBER_LABEL: Final = labels.FED_MEMBER_LABEL
MEMBER_SELECTOR: Final = f"{MEMBER_LABEL}=true"
KUBECONFIG_KEY: Final = "kubeconfig"
CONTROL_ANNOTATION: Final = labels.FED_CONTROL_ANNOTATION
FED_FINALIZER: Final = labels.FED_FINALIZER
DEFAULT_CONTROL_NAME: Final = "control"

_DNS1123_LABEL: Final = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


class BadMember(ValueError):
    """The Secret cannot describe a member cluster; the message says why, in one line."""


@dataclass(frozen=True)
class Member:
    """One member cluster: its name, the kubeconfig to reach it, and a digest to notice edits."""

    name: str
    server: str
    context: str
    kubeconfig: Obj = field(compare=False, repr=False)
    digest: str = ""


def is_member_secret(secret: Mapping[str, Any]) -> bool:
    """The label that makes a Secret a member registration."""
    return (meta(secret).get("labels") or {}).get(MEMBER_LABEL) == "true"


def parse_member(secret: Mapping[str, Any]) -> Member:
    """The member a Secret registers (raises BadMember)."""
    name = meta(secret).get("name") or ""
    if not _DNS1123_LABEL.match(name):
        raise BadMember(f"member name {name!r} (the Secret's name) must be a DNS-1123 label")
    raw = _kubeconfig_bytes(secret)
    try:
        config = yaml.safe_load(raw)
    except yaml.YAMLError as err:
        raise BadMember(f"data.{KUBECONFIG_KEY} is not YAML: {_first_line(str(err))}") from None
    if not isinstance(config, dict):
        raise BadMember(f"data.{KUBECONFIG_KEY} is not a kubeconfig (a YAML mapping)")
    context, server = _current(config)
    return Member(name, server, context, config, hashlib.sha256(raw).hexdigest())


def _kubeconfig_bytes(secret: Mapping[str, Any]) -> bytes:
    data = secret.get("data") or {}
    string_data = secret.get("stringData") or {}
    if KUBECONFIG_KEY in string_data:  # only seen before the API server folds it into data
        return str(string_data[KUBECONFIG_KEY]).encode()
    encoded = data.get(KUBECONFIG_KEY)
    if not encoded:
        raise BadMember(f"the Secret has no data.{KUBECONFIG_KEY}")
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise BadMember(f"data.{KUBECONFIG_KEY} is not valid base64") from None


def _named(config: Mapping[str, Any], section: str, name: str) -> Mapping[str, Any]:
    """The inner mapping of entry `name` in kubeconfig list `section` (clusters, users, contexts)."""
    entries = config.get(section)
    if not isinstance(entries, list):
        raise BadMember(f"kubeconfig has no {section} list")
    for entry in entries:
        if isinstance(entry, dict) and entry.get("name") == name:
            inner = entry.get(section[:-1])
            if isinstance(inner, dict):
                return inner
            raise BadMember(f"kubeconfig {section[:-1]} {name!r} has no {section[:-1]} mapping")
    raise BadMember(f"kubeconfig has no {section[:-1]} named {name!r}")


def _current(config: Mapping[str, Any]) -> tuple[str, str]:
    """The current context's name and server URL (it must name an existing cluster and user)."""
    contexts = config.get("contexts")
    current = config.get("current-context")
    if not current and isinstance(contexts, list) and len(contexts) == 1 and isinstance(contexts[0], dict):
        current = contexts[0].get("name")
    if not current:
        raise BadMember("kubeconfig has no current-context")
    context = _named(config, "contexts", str(current))
    cluster = _named(config, "clusters", str(context.get("cluster") or ""))
    if context.get("user"):
        _named(config, "users", str(context["user"]))
    server = cluster.get("server")
    if not isinstance(server, str) or not server.startswith(("https://", "http://")):
        raise BadMember(f"kubeconfig cluster {context.get('cluster')!r} has no http(s) server URL")
    return str(current), server


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else text
