"""The one error family: every error a user may see is a :class:`ProblemError`.

Services raise these; the error middleware renders them as RFC 9457 ``application/problem+json``
for the API and as an HTML page for the console. ``type`` URIs are stable: clients branch on them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

__all__ = [
    "PROBLEM_BASE",
    "BadRequest",
    "Conflict",
    "FieldError",
    "Forbidden",
    "IdempotencyKeyInFlight",
    "IdempotencyKeyReused",
    "NotFound",
    "PayloadTooLarge",
    "ProblemError",
    "ServiceUnavailable",
    "TimedOut",
    "TooManyRequests",
    "Unauthorized",
    "UnsupportedMediaType",
    "ValidationFailed",
]

PROBLEM_BASE = "https://propmubi.dev/problems/"


class FieldError(dict[str, Any]):
    """One bad input: ``{"in": "body", "field": "inner.n", "message": "..."}``."""

    def __init__(self, location: str, field: str, message: str) -> None:
        super().__init__({"in": location, "field": field, "message": message})


class ProblemError(Exception):
    """Root of every error with a public meaning.

    :cvar status: HTTP status code.
    :cvar slug: last part of the problem ``type`` URI; stable once published.
    :cvar title: short, fixed, human summary of the problem type.
    :param detail: what went wrong this time, safe to show the caller.
    :param headers: extra response headers (``Retry-After``, ...).
    :param extra: additional members of the problem document.
    """

    status: ClassVar[int] = 500
    slug: ClassVar[str] = "internal"
    title: ClassVar[str] = "Internal server error"

    def __init__(self, detail: str | None = None, *, headers: Mapping[str, str] | None = None,
                 **extra: Any) -> None:
        super().__init__(detail or self.title)
        self.detail = detail
        self.headers = dict(headers or {})
        self.extra = extra

    @property
    def type(self) -> str:
        return PROBLEM_BASE + self.slug

    def to_problem(self, instance: str | None = None) -> dict[str, Any]:
        """The problem document (without the request id, which the middleware adds)."""
        body: dict[str, Any] = {"type": self.type, "title": self.title, "status": self.status}
        if self.detail:
            body["detail"] = self.detail
        if instance:
            body["instance"] = instance
        body.update(self.extra)
        return body


class BadRequest(ProblemError):
    status, slug, title = 400, "bad-request", "Bad request"


class Unauthorized(ProblemError):
    status, slug, title = 401, "unauthorized", "Authentication required"


class Forbidden(ProblemError):
    status, slug, title = 403, "forbidden", "Not allowed"


class NotFound(ProblemError):
    status, slug, title = 404, "not-found", "Not found"


class MethodNotAllowed(ProblemError):
    status, slug, title = 405, "method-not-allowed", "Method not allowed"


class Conflict(ProblemError):
    status, slug, title = 409, "conflict", "Conflict with the current state"


class IdempotencyKeyInFlight(Conflict):
    """A request with the same ``Idempotency-Key`` is still being handled; retry later."""

    slug, title = "idempotency-key-in-flight", "A request with this idempotency key is in progress"


class PayloadTooLarge(ProblemError):
    status, slug, title = 413, "payload-too-large", "Request body too large"


class UnsupportedMediaType(ProblemError):
    status, slug, title = 415, "unsupported-media-type", "Unsupported media type"


class ValidationFailed(ProblemError):
    """The input does not fit the declared shape; ``errors`` lists every bad field."""

    status, slug, title = 422, "validation", "Invalid input"

    def __init__(self, errors: Sequence[FieldError], detail: str | None = None) -> None:
        fields = ", ".join(f"{e['in']}.{e['field']}" if e["field"] else e["in"]
                           for e in errors[:5])
        super().__init__(detail or f"Invalid input: {fields}", errors=list(errors))


class IdempotencyKeyReused(ProblemError):
    """The ``Idempotency-Key`` was already used for a different request (another body, path or
    query string)."""

    status, slug = 422, "idempotency-key-reused"
    title = "Idempotency key reused with a different request"


class TooManyRequests(ProblemError):
    status, slug, title = 429, "rate-limited", "Too many requests"


class ServiceUnavailable(ProblemError):
    status, slug, title = 503, "unavailable", "Service unavailable"


class TimedOut(ProblemError):
    status, slug, title = 504, "timeout", "The request took too long"
