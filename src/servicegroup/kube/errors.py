"""Typed API errors, one class per failure a caller handles differently.

    ApiError(status, reason, message, body)     any non-2xx answer (or no answer at all)
    ├── BadRequest          400
    ├── Unauthorized        401
    ├── Forbidden           403
    ├── NotFound            404
    ├── MethodNotAllowed    405
    ├── AlreadyExists       409, reason AlreadyExists (create of an existing name)
    ├── Conflict            409, any other reason (stale resourceVersion: re-read and retry)
    ├── Gone                410 (resourceVersion compacted: relist)
    ├── Invalid             422 (`.causes`: the Status' details.causes)
    ├── TooManyRequests     429 (`.retry_after` seconds, from Retry-After or details)
    ├── ServerError         5xx
    └── Unreachable         status 0: connection refused/reset, TLS or timeout; nothing was answered

Reads are retried by the client for 429, 5xx and Unreachable; writes raise at once, because only
the caller knows whether a write is safe to repeat. Controllers simply let these propagate: the
runner requeues the key with rate limiting (a Conflict is routine and logged at debug level).
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """A failed API call; `body` is the decoded `metav1.Status` (or `{}`)."""

    def __init__(self, status: int, reason: str, message: str, body: dict[str, Any] | None = None) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message
        self.body: dict[str, Any] = body if body is not None else {}


class BadRequest(ApiError):
    """400: the request itself is malformed."""


class Unauthorized(ApiError):
    """401: credentials missing or expired."""


class Forbidden(ApiError):
    """403: RBAC denies the verb."""


class NotFound(ApiError):
    """404: no such object (or resource)."""


class MethodNotAllowed(ApiError):
    """405: the verb is not served for this resource."""


class AlreadyExists(ApiError):
    """409 AlreadyExists: a create raced with another writer; read it and reconcile."""


class Conflict(ApiError):
    """409 Conflict: the resourceVersion precondition failed; requeue and re-read."""


class Gone(ApiError):
    """410: the requested resourceVersion is older than the server's history; relist."""


class Invalid(ApiError):
    """422: validation failed; retrying the same object cannot succeed."""

    @property
    def causes(self) -> list[dict[str, Any]]:
        """`details.causes` of the Status: `[{reason, message, field}]`."""
        details = self.body.get("details") or {}
        return list(details.get("causes") or [])


class TooManyRequests(ApiError):
    """429: the server asks us to slow down for `retry_after` seconds."""

    def __init__(
        self,
        status: int,
        reason: str,
        message: str,
        body: dict[str, Any] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(status, reason, message, body)
        details = self.body.get("details") or {}
        self.retry_after: float = float(
            retry_after if retry_after is not None else details.get("retryAfterSeconds") or 1
        )


class ServerError(ApiError):
    """5xx: the server failed; the same request may succeed later."""


class Unreachable(ApiError):
    """No HTTP answer (connection error, TLS error, timeout); `status` is 0."""

    def __init__(self, message: str) -> None:
        super().__init__(0, "Unreachable", message, {})


_BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    405: MethodNotAllowed,
    410: Gone,
    422: Invalid,
}


def error_for(status: int, body: Any, retry_after: float | None = None) -> ApiError:
    """The typed error for an HTTP status and its (ideally `metav1.Status`) body."""
    status_body: dict[str, Any] = body if isinstance(body, dict) else {}
    reason = str(status_body.get("reason") or "")
    message = str(status_body.get("message") or (body if isinstance(body, str) else "") or f"HTTP {status}")
    if status == 409:
        cls: type[ApiError] = AlreadyExists if reason == "AlreadyExists" else Conflict
    elif status == 429:
        return TooManyRequests(status, reason or "TooManyRequests", message, status_body, retry_after)
    elif status >= 500:
        cls = ServerError
    else:
        cls = _BY_STATUS.get(status, ApiError)
    return cls(status, reason or cls.__name__, message, status_body)


def raise_for_status(status: int, body: Any, retry_after: float | None = None) -> None:
    """Raise the typed error for a non-2xx `status`; do nothing for 2xx."""
    if not 200 <= status < 300:
        raise error_for(status, body, retry_after)
