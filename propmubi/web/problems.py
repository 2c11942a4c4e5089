"""Errors as responses: a :class:`~propmubi.errors.ProblemError` (or any exception escaping a
handler) rendered as RFC 9457 ``application/problem+json``, or as an HTML page under ``/console``.

The edge middleware renders what a handler raises with these; so does the idempotency layer
(:mod:`propmubi.web.idempotency`), which keeps the bytes of the answer it stores.
"""

from __future__ import annotations

import html
import logging

import orjson
from aiohttp import web

from propmubi.db import OperationalError, QueryCanceled
from propmubi.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    ProblemError,
    ServiceUnavailable,
    TimedOut,
    TooManyRequests,
    Unauthorized,
    UnsupportedMediaType,
)
from propmubi.redis import RedisError
from propmubi.web.appkeys import is_console_path

__all__ = ["error_response", "problem_response"]

log = logging.getLogger("propmubi.web")

_HTTP_PROBLEMS: dict[int, type[ProblemError]] = {cls.status: cls for cls in (
    BadRequest, Unauthorized, Forbidden, NotFound, MethodNotAllowed, Conflict, PayloadTooLarge,
    UnsupportedMediaType, TooManyRequests, ServiceUnavailable, TimedOut)}
# Headers of an aiohttp HTTPException that describe its own text body, not the problem.
_BODY_HEADERS = frozenset({"content-type", "content-length"})


def _from_http_exception(exc: web.HTTPException) -> ProblemError:
    # aiohttp's default text is just "404: Not Found"; anything else was written for the caller.
    text = exc.text
    detail = text if text and text != f"{exc.status}: {exc.reason}" else None
    headers = {k: v for k, v in exc.headers.items() if k.lower() not in _BODY_HEADERS}
    cls = _HTTP_PROBLEMS.get(exc.status)
    if cls is not None:
        return cls(detail, headers=headers)
    problem = ProblemError(detail, headers=headers)
    problem.status = exc.status  # type: ignore[misc]
    problem.title = exc.reason  # type: ignore[misc]
    problem.slug = f"http-{exc.status}"  # type: ignore[misc]
    return problem


def _as_problem(exc: BaseException) -> ProblemError:
    if isinstance(exc, ProblemError):
        return exc
    if isinstance(exc, web.HTTPException):
        return _from_http_exception(exc)
    if isinstance(exc, QueryCanceled):
        return TimedOut("a database statement ran past its time limit")
    if isinstance(exc, (OperationalError, RedisError, ConnectionError)):
        return ServiceUnavailable("a backing service is unreachable; retry shortly",
                                  headers={"Retry-After": "5"})
    if isinstance(exc, TimeoutError):  # not the route's own deadline (that is TimedOut)
        return TimedOut("a backing service did not answer in time")
    return ProblemError()


def _error_page(problem: ProblemError, request: web.Request, request_id: str) -> str | None:
    """The console's error template (layout, menu and all), or None when it cannot render
    (no template engine on this app, or the template itself fails): the plain page then."""
    import aiohttp_jinja2

    try:
        return aiohttp_jinja2.render_string(
            "console/error.html", request,
            {"status": problem.status, "title": problem.title, "detail": problem.detail or "",
             "request_id": request_id})
    except Exception:  # an error page must never raise
        log.debug("console error template failed; plain page used", exc_info=True)
        return None


def _html_error(problem: ProblemError, request: web.Request, request_id: str) -> web.Response:
    page = _error_page(problem, request, request_id)
    if page is not None:
        return web.Response(text=page, status=problem.status, content_type="text/html",
                            headers=problem.headers)
    body = (
        "<!doctype html><html lang=en><meta charset=utf-8>"
        f"<title>{problem.status} {html.escape(problem.title)}</title>"
        "<body style='font-family:system-ui;max-width:40rem;margin:4rem auto'>"
        f"<h1>{html.escape(problem.title)}</h1>"
        f"<p>{html.escape(problem.detail or '')}</p>"
        f"<p><small>Request id: <code>{html.escape(request_id)}</code></small></p>"
    )
    return web.Response(text=body, status=problem.status, content_type="text/html",
                        headers=problem.headers)


def problem_response(problem: ProblemError, request: web.Request, request_id: str
                     ) -> web.Response:
    """Render a problem as ``application/problem+json`` (or HTML under ``/console``)."""
    if is_console_path(request.path):
        return _html_error(problem, request, request_id)
    doc = problem.to_problem(instance=request.path)
    doc["request_id"] = request_id
    return web.Response(body=orjson.dumps(doc), status=problem.status,
                        content_type="application/problem+json", headers=problem.headers)


def error_response(exc: Exception, request: web.Request, request_id: str) -> web.Response:
    """The response for an exception escaping a handler; unexpected ones are logged with their
    traceback and answered with a bare 500 that reveals nothing of them."""
    problem = _as_problem(exc)
    if problem is not exc and problem.status >= 500 and not isinstance(exc, web.HTTPException):
        log.exception("unhandled error in %s %s", request.method, request.path,
                      extra={"request_id": request_id})
    return problem_response(problem, request, request_id)
