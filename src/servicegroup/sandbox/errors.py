"""metav1.Status errors worded exactly like kube-apiserver's, so clients branch on them unchanged."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class FieldCause:
    """One field error of an Invalid (422) Status: `type` is the cause reason, e.g. FieldValueRequired.

    `message` is the error body without the field path ("Required value",
    'Invalid value: "x": must be ...'), as in apimachinery's field.Error.ErrorBody().
    """

    type: str
    field: str
    message: str

    def to_cause(self) -> dict[str, Any]:
        """The StatusCause JSON."""
        return {"reason": self.type, "message": self.message, "field": self.field}

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


class StatusError(Exception):
    """An API error that renders as a metav1.Status body with the HTTP code `code`."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        details: dict[str, Any] | None = None,
        *,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        self.headers = headers or {}

    def status(self) -> dict[str, Any]:
        """The metav1.Status body."""
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details is not None:
            body["details"] = self.details
        return body


def qualified(plural: str, group: str) -> str:
    """`deployments.apps` / `pods`: apimachinery's GroupResource.String()."""
    return f"{plural}.{group}" if group else plural


def _details(name: str, group: str, kind: str) -> dict[str, Any]:
    details: dict[str, Any] = {"name": name, "kind": kind}
    if group:
        details["group"] = group
    return details


def not_found(plural: str, group: str, name: str) -> StatusError:
    """404 NotFound for a named object (`deployments.apps "x" not found`)."""
    return StatusError(
        404, "NotFound", f'{qualified(plural, group)} "{name}" not found', _details(name, group, plural)
    )


def already_exists(plural: str, group: str, name: str) -> StatusError:
    """409 AlreadyExists on create of an existing name."""
    return StatusError(
        409,
        "AlreadyExists",
        f'{qualified(plural, group)} "{name}" already exists',
        _details(name, group, plural),
    )


def conflict(plural: str, group: str, name: str, why: str | None = None) -> StatusError:
    """409 Conflict: a failed optimistic-concurrency or precondition check."""
    why = why or "the object has been modified; please apply your changes to the latest version and try again"
    return StatusError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {qualified(plural, group)} "{name}": {why}',
        _details(name, group, plural),
    )


def invalid(kind: str, group: str, name: str, causes: list[FieldCause]) -> StatusError:
    """422 Invalid with one cause per field error (`Deployment.apps "x" is invalid: ...`)."""
    rendered = [str(c) for c in causes]
    summary = rendered[0] if len(rendered) == 1 else "[" + ", ".join(rendered) + "]"
    qkind = f"{kind}.{group}" if group else kind
    details = _details(name, group, kind)
    details["causes"] = [c.to_cause() for c in causes]
    return StatusError(422, "Invalid", f'{qkind} "{name}" is invalid: {summary}', details)


def bad_request(message: str) -> StatusError:
    """400 BadRequest."""
    return StatusError(400, "BadRequest", message)


def gone(message: str) -> StatusError:
    """410 Expired: a resourceVersion or continue token older than the compaction window."""
    return StatusError(410, "Expired", message)


def forbidden(plural: str, group: str, name: str, why: str) -> StatusError:
    """403 Forbidden (`pods "x" is forbidden: ...`)."""
    return StatusError(
        403,
        "Forbidden",
        f'{qualified(plural, group)} "{name}" is forbidden: {why}',
        _details(name, group, plural),
    )


def method_not_allowed(verb: str, kind: str) -> StatusError:
    """405 MethodNotAllowed for a verb the resource does not serve."""
    return StatusError(405, "MethodNotAllowed", f'{verb} is not supported on resources of kind "{kind}"')


def unsupported_media_type(content_type: str, accepted: list[str], why: str = "") -> StatusError:
    """415 for a patch or body type the resource cannot take; `why` adds a parenthesised hint."""
    return StatusError(
        415,
        "UnsupportedMediaType",
        f"the body of the request was in an unknown format - accepted media types include: "
        f"{', '.join(accepted)}" + (f" ({why})" if why else ""),
    )


def internal_error(why: str) -> StatusError:
    """500 InternalError."""
    return StatusError(
        500, "InternalError", f"Internal error occurred: {why}", {"causes": [{"message": why}]}
    )


def too_many_requests(retry_after: int) -> StatusError:
    """429 with Retry-After, like the API priority-and-fairness rejection."""
    return StatusError(
        429,
        "TooManyRequests",
        "Too many requests, please try again later.",
        {"retryAfterSeconds": retry_after},
        headers={"Retry-After": str(retry_after)},
    )


def too_large_resource_version(requested: int, current: int) -> StatusError:
    """504 for a resourceVersion newer than the server's (e.g. from before a restart without state)."""
    return StatusError(
        504,
        "Timeout",
        f"Timeout: Too large resource version: {requested}, current: {current}",
        {
            "causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}],
            "retryAfterSeconds": 1,
        },
    )
