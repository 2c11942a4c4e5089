"""The middleware stack, outermost first: edge, CORS, body limit, plugin middlewares, rate limit,
timeout.

The edge middleware does the per-request bookkeeping in one layer (request id, error mapping,
security headers, metrics, access log) because every extra layer costs a coroutine frame on
every request, /health included.
"""

from __future__ import annotations

import asyncio
import html
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web
from prometheus_client import Counter, Gauge, Histogram

from propmubi.config import Config
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
from propmubi.observability import REQUEST_ID
from propmubi.redis import RedisError
from propmubi.web.appkeys import REQUEST_ID as REQUEST_ID_KEY
from propmubi.web.appkeys import SUBJECT
from propmubi.web.ratelimit import RateLimiter, client_ip
from propmubi.web.routing import ROUTE_KEY, RateLimit, RouteSpec

__all__ = ["REQUEST_ID_HEADER", "build_middlewares", "error_response", "problem_response"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

log = logging.getLogger("propmubi.web")
access_log = logging.getLogger("propmubi.access")

REQUEST_ID_HEADER = "X-Request-ID"
_VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")

REQUESTS = Counter("propmubi_http_requests_total",
                   "HTTP requests by method, route template and status.",
                   ["method", "route", "status"])
LATENCY = Histogram("propmubi_http_request_duration_seconds",
                    "Time to produce a response, by method and route template.",
                    ["method", "route"],
                    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
                             5, 10, 30))
IN_FLIGHT = Gauge("propmubi_http_requests_in_flight", "Requests being handled now.")

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}
API_CSP = "default-src 'none'; frame-ancestors 'none'"
CONSOLE_CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
               "frame-ancestors 'none'; form-action 'self'")

_HTTP_PROBLEMS: dict[int, type[ProblemError]] = {cls.status: cls for cls in (
    BadRequest, Unauthorized, Forbidden, NotFound, MethodNotAllowed, Conflict, PayloadTooLarge,
    UnsupportedMediaType, TooManyRequests, ServiceUnavailable, TimedOut)}
# The HTTP parser knows some thirty methods (WebDAV's and more): the rare ones share one label
# so that clients cannot multiply the metric series.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Headers of an aiohttp HTTPException that describe its own text body, not the problem.
_BODY_HEADERS = frozenset({"content-type", "content-length"})


def _is_console(path: str) -> bool:
    return path.startswith("/console") and (len(path) == 8 or path[8] == "/")


def route_spec(request: web.Request) -> RouteSpec | None:
    """The :class:`RouteSpec` of the matched handler, if it was declared through ``Routes``."""
    return getattr(request.match_info.handler, ROUTE_KEY, None)


def _route_template(request: web.Request) -> str:
    # Label by template, not by path, so /projects/{id} is one series, and 404s are one.
    route = request.match_info.route
    resource = route.resource
    if resource is None or request.match_info.http_exception is not None:
        return "unmatched"
    return resource.canonical


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


def _html_error(problem: ProblemError, request_id: str) -> web.Response:
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
    if _is_console(request.path):
        return _html_error(problem, request_id)
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


def _edge(config: Config) -> Any:
    log_access = config.http.access_log

    @web.middleware
    async def edge(request: web.Request, handler: Handler) -> web.StreamResponse:
        incoming = request.headers.get(REQUEST_ID_HEADER)
        request_id = (incoming if incoming and _VALID_REQUEST_ID.fullmatch(incoming)
                      else uuid.uuid4().hex)
        request[REQUEST_ID_KEY] = request_id
        token = REQUEST_ID.set(request_id)
        started = time.perf_counter()
        response: web.StreamResponse | None = None
        redirect: web.HTTPException | None = None
        IN_FLIGHT.inc()
        try:
            try:
                response = await handler(request)
            except web.HTTPException as exc:
                if exc.status < 400:
                    # A raised redirect is a response too: it gets the same headers and is
                    # counted with its status, then re-raised (aiohttp wants it raised).
                    response = redirect = exc
                else:
                    response = error_response(exc, request, request_id)
            except ProblemError as exc:
                response = problem_response(exc, request, request_id)
            except Exception as exc:
                response = error_response(exc, request, request_id)
            headers = response.headers
            headers[REQUEST_ID_HEADER] = request_id
            for name, value in SECURITY_HEADERS.items():
                headers.setdefault(name, value)
            headers.setdefault("Content-Security-Policy",
                               CONSOLE_CSP if _is_console(request.path) else API_CSP)
            if request.secure:
                headers.setdefault("Strict-Transport-Security", "max-age=31536000")
            if redirect is not None:
                raise redirect
            return response
        finally:
            IN_FLIGHT.dec()
            elapsed = time.perf_counter() - started
            route = _route_template(request)
            method = request.method if request.method in _METHODS else "OTHER"
            # 499: the client went away (cancelled) before a response existed.
            code = response.status if response is not None else 499
            REQUESTS.labels(method, route, code).inc()
            LATENCY.labels(method, route).observe(elapsed)
            if log_access:
                access_log.info("%s %s %s", request.method, request.path_qs, code, extra={
                    "request_id": request_id, "method": request.method, "path": request.path,
                    "route": route, "status": code, "duration_ms": round(elapsed * 1000, 2),
                    "remote": request.remote})
            REQUEST_ID.reset(token)

    return edge


def _cors(config: Config) -> Any:
    allowed = set(config.http.cors_origins)
    allow_all = "*" in allowed
    expose = "X-Request-ID, Retry-After, RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset"

    def allow(headers: Any, origin: str) -> None:
        if allow_all:
            # Any site may read, but never with the user's cookies: "*" plus credentials would
            # hand every site on the web the signed-in user's data.
            headers["Access-Control-Allow-Origin"] = "*"
            return
        headers["Access-Control-Allow-Origin"] = origin
        headers["Access-Control-Allow-Credentials"] = "true"
        headers.add("Vary", "Origin")

    @web.middleware
    async def cors(request: web.Request, handler: Handler) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        if origin is None or not (allow_all or origin in allowed):
            return await handler(request)
        if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
            response: web.StreamResponse = web.Response(status=204)
            response.headers["Access-Control-Allow-Methods"] = \
                "GET, POST, PUT, PATCH, DELETE, OPTIONS"
            response.headers["Access-Control-Allow-Headers"] = request.headers.get(
                "Access-Control-Request-Headers", "Content-Type, Authorization")
            response.headers["Access-Control-Max-Age"] = "600"
            allow(response.headers, origin)
            return response
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            if exc.status < 400:
                exc.headers["Access-Control-Expose-Headers"] = expose
                allow(exc.headers, origin)
                raise
            response = error_response(exc, request, request[REQUEST_ID_KEY])
        except Exception as exc:
            # Render errors here, not in the edge, so that the browser may read them too: a
            # 422 the client cannot see is no help.
            response = error_response(exc, request, request[REQUEST_ID_KEY])
        response.headers["Access-Control-Expose-Headers"] = expose
        allow(response.headers, origin)
        return response

    return cors


def _body_limit(config: Config) -> Any:
    limit = config.http.max_body_bytes

    @web.middleware
    async def body_limit(request: web.Request, handler: Handler) -> web.StreamResponse:
        # Refuse a declared oversize body before reading it; chunked bodies are cut by
        # aiohttp's client_max_size while being read.
        if request.content_length is not None and request.content_length > limit:
            raise PayloadTooLarge(f"the body is {request.content_length} bytes; "
                                  f"the limit is {limit}")
        return await handler(request)

    return body_limit


def _rate_limit(config: Config, limiter: Callable[[], RateLimiter | None]) -> Any:
    settings = config.ratelimit
    per_ip = RateLimit.parse(settings.per_ip)
    per_subject = RateLimit.parse(settings.per_subject)
    trust = config.http.trust_forwarded

    @web.middleware
    async def rate_limit(request: web.Request, handler: Handler) -> web.StreamResponse:
        spec = route_spec(request)
        is_api = request.path.startswith("/api/")
        declared = spec.rate_limit if spec is not None else None
        if declared is False or (declared is None and not is_api) or not settings.enabled:
            return await handler(request)
        instance = limiter()
        if instance is None:
            return await handler(request)
        scope = spec.name if spec is not None and declared else "api"
        limit = declared or per_ip
        checks = [("ip", client_ip(request, trust), limit)]
        subject = request.get(SUBJECT)
        if subject:
            checks.append(("subject", str(subject), declared or per_subject))
        headers = await instance.check(scope, checks)
        try:
            response = await handler(request)
        except ProblemError as exc:
            # A refused request counted against the limit too; say how much is left.
            for name, value in headers.items():
                exc.headers.setdefault(name, value)
            raise
        response.headers.update(headers)
        return response

    return rate_limit


def _timeout(config: Config) -> Any:
    default = config.http.request_timeout

    @web.middleware
    async def timeout(request: web.Request, handler: Handler) -> web.StreamResponse:
        spec = route_spec(request)
        seconds = spec.timeout if spec is not None and spec.timeout else default
        deadline = asyncio.timeout(seconds)
        try:
            async with deadline:
                return await handler(request)
        except TimeoutError:
            if not deadline.expired():
                raise  # the handler's own timeout, not the route's
            raise TimedOut(f"no response within {seconds:g}s") from None

    return timeout


def build_middlewares(config: Config, limiter: Callable[[], RateLimiter | None],
                      extra: list[Any]) -> list[Any]:
    """The app's middlewares; ``extra`` (from plugins, e.g. authentication) run before the rate
    limit so that per-subject limits see the subject."""
    return [_edge(config), _cors(config), _body_limit(config), *extra,
            _rate_limit(config, limiter), _timeout(config)]
