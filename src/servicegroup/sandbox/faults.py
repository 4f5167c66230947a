"""Run-time fault injection for reliability tests: errors, latency, dropped watches, compaction.

Rules match a request by verb and resource (plural, optionally `plural/subresource`); `None`
matches any. Every random draw comes from one seeded generator, so a test with a seed sees the
same failures in the same order. Settable in-process (`sandbox.faults.set(...)`) and over HTTP
(`POST /sandbox/faults` with the same keys in JSON, `GET` to read, `DELETE` to clear).
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import asdict, dataclass
from typing import Any

from servicegroup.sandbox import errors
from servicegroup.sandbox.errors import StatusError
from servicegroup.sandbox.storage import Storage

ERROR_CODES = (403, 409, 429, 500)
# Who an injected 403 names (the sandbox authenticates nobody; RBAC denials read like this one).
DENIED_USER = "system:serviceaccount:sandbox:injected"


@dataclass(frozen=True)
class ErrorRule:
    """Fail `rate` (0..1) of matching requests with `code` (500, 429 + Retry-After, 409, or 403 as an
    RBAC denial would)."""

    code: int
    rate: float = 1.0
    verb: str | None = None
    resource: str | None = None
    retry_after: int = 1

    def __post_init__(self) -> None:
        if self.code not in ERROR_CODES:
            raise ValueError(f"fault code must be one of {ERROR_CODES}, not {self.code}")
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"fault rate must be within [0, 1], not {self.rate}")


@dataclass(frozen=True)
class LatencyRule:
    """Delay matching requests by `seconds`."""

    seconds: float
    verb: str | None = None
    resource: str | None = None


def _matches(rule: ErrorRule | LatencyRule, verb: str, resource: str) -> bool:
    if rule.verb is not None and rule.verb != verb:
        return False
    return rule.resource is None or rule.resource in (resource, resource.split("/", maxsplit=1)[0])


def _error_rule(spec: ErrorRule | dict[str, Any]) -> ErrorRule:
    if isinstance(spec, ErrorRule):
        return spec
    return ErrorRule(
        code=int(spec["code"]),
        rate=float(spec.get("rate", 1.0)),
        verb=spec.get("verb"),
        resource=spec.get("resource"),
        retry_after=int(spec.get("retryAfter", spec.get("retry_after", 1))),
    )


def _latency_rules(spec: float | list[LatencyRule | dict[str, Any]]) -> list[LatencyRule]:
    if isinstance(spec, int | float):
        return [LatencyRule(float(spec))] if spec else []
    return [
        r
        if isinstance(r, LatencyRule)
        else LatencyRule(float(r["seconds"]), r.get("verb"), r.get("resource"))
        for r in spec
    ]


class Faults:
    """The fault table consulted before every API request."""

    def __init__(self, storage: Storage, seed: int | None = None) -> None:
        self._storage = storage
        self._random = random.Random(seed)
        self.errors: list[ErrorRule] = []
        self.latency: list[LatencyRule] = []
        self.injected = 0

    def set(
        self,
        *,
        errors: list[ErrorRule | dict[str, Any]] | None = None,
        latency: float | list[LatencyRule | dict[str, Any]] | None = None,
        seed: int | None = None,
        drop_watches: bool = False,
        compact: bool = False,
    ) -> None:
        """Replace the error and/or latency rules, reseed, and optionally drop watches / compact now."""
        if seed is not None:
            self._random.seed(seed)
        if errors is not None:
            self.errors = [_error_rule(e) for e in errors]
        if latency is not None:
            self.latency = _latency_rules(latency)
        if compact:
            self.compact()
        if drop_watches:
            self.drop_watches()

    def set_from_json(self, body: Any) -> None:
        """Apply a `POST /sandbox/faults` body; 400 on a malformed one (nothing half-applied)."""
        if not isinstance(body, dict):
            raise errors.bad_request("fault body must be a JSON object")
        try:
            parsed_errors = None if body.get("errors") is None else [_error_rule(e) for e in body["errors"]]
            parsed_latency = None if body.get("latency") is None else _latency_rules(body["latency"])
            seed = None if body.get("seed") is None else int(body["seed"])
        except (KeyError, TypeError, ValueError) as err:
            raise errors.bad_request(f"invalid fault specification: {err}") from None
        self.set(
            errors=list(parsed_errors) if parsed_errors is not None else None,
            latency=list(parsed_latency) if parsed_latency is not None else None,
            seed=seed,
            drop_watches=bool(body.get("dropWatches")),
            compact=bool(body.get("compact")),
        )

    def clear(self) -> None:
        """No more injected errors or latency."""
        self.errors = []
        self.latency = []

    def drop_watches(self) -> int:
        """Break every open client watch now; returns how many were dropped."""
        return self._storage.drop_watches()

    def compact(self) -> None:
        """Forced compaction: older resourceVersions now get 410 Expired."""
        self._storage.compact()

    def to_json(self) -> dict[str, Any]:
        """The current rules, in the `POST /sandbox/faults` shape."""
        return {
            "errors": [
                {k if k != "retry_after" else "retryAfter": v for k, v in asdict(e).items()}
                for e in self.errors
            ],
            "latency": [asdict(r) for r in self.latency],
            "injected": self.injected,
        }

    async def before(self, verb: str, resource: str, name: str = "") -> None:
        """Delay and/or fail one request per the rules (raises StatusError)."""
        delay = sum(r.seconds for r in self.latency if _matches(r, verb, resource))
        if delay > 0:
            await asyncio.sleep(delay)
        for rule in self.errors:
            if _matches(rule, verb, resource) and self._random.random() < rule.rate:
                self.injected += 1
                raise self._error(rule, verb, resource, name)

    @staticmethod
    def _error(rule: ErrorRule, verb: str, resource: str, name: str) -> StatusError:
        if rule.code == 429:
            return errors.too_many_requests(rule.retry_after)
        if rule.code == 409:
            return errors.conflict(resource.split("/", maxsplit=1)[0], "", name)
        if rule.code == 403:
            plural = resource.split("/", maxsplit=1)[0]
            return errors.forbidden(
                plural, "", name, f'User "{DENIED_USER}" cannot {verb} resource "{resource}"'
            )
        return errors.internal_error("injected fault")
