"""The middleware stack: the edge, then the plugins' middlewares.

One core layer only, because every layer costs a coroutine frame and a partial on every
request, /health included (tests/bench/ablate_middlewares.py measures it). The edge does the
request id, CORS, the body-size limit, error mapping (problem+json or HTML, rendered by
:mod:`propmubi.web.problems`), security headers, metrics and the access log. Rate limits and
timeouts are applied inside each route's endpoint (:mod:`propmubi.web.guard`), where what they
depend on is known when the route is mounted.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import unquote_plus

from aiohttp import web
from prometheus_client import Counter, Gauge, Histogram

from propmubi.config import Config
from propmubi.errors import PayloadTooLarge, ProblemError
from propmubi.observability import REQUEST_ID
from propmubi.web.appkeys import REQUEST_ID as REQUEST_ID_KEY
from propmubi.web.appkeys import is_console_path
from propmubi.web.problems import error_response, problem_response
from propmubi.web.routing import ROUTE_KEY, RouteSpec

__all__ = ["PII_PARAMS", "REQUEST_ID_HEADER", "build_middlewares", "error_response",
           "problem_response", "redact_path_qs"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

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
# A plain counter read at scrape time: a Gauge's inc()/dec() take a lock twice per request.
_in_flight = [0]
IN_FLIGHT.set_function(lambda: _in_flight[0])
# Labelled children, cached: .labels() costs a lock and a tuple hash on every call.
_request_counters: dict[tuple[str, str, int], Any] = {}
_latency_histograms: dict[tuple[str, str], Any] = {}
# Request ids: a random per-process prefix and a counter, unique without a syscall per request.
_ID_PREFIX = os.urandom(6).hex()
_ids = itertools.count()

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}
API_CSP = "default-src 'none'; frame-ancestors 'none'"
CONSOLE_CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
               "frame-ancestors 'none'; form-action 'self'")

# The HTTP parser knows some thirty methods (WebDAV's and more): the rare ones share one label
# so that clients cannot multiply the metric series.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


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


def _next_request_id() -> str:
    return f"{_ID_PREFIX}{next(_ids):020x}"  # 32 hex digits, shaped like a UUID


def _observe(method: str, route: str, code: int, elapsed: float) -> None:
    counter = _request_counters.get((method, route, code))
    if counter is None:
        counter = _request_counters[method, route, code] = REQUESTS.labels(method, route, code)
    counter.inc()
    histogram = _latency_histograms.get((method, route))
    if histogram is None:
        histogram = _latency_histograms[method, route] = LATENCY.labels(method, route)
    histogram.observe(elapsed)


def _body_limit(request: web.Request, default: int) -> float:
    """The route's own ``max_body`` (False: unbounded here, the handler bounds its stream)."""
    spec = route_spec(request)
    if spec is None or spec.max_body is None:
        return default
    return float("inf") if spec.max_body is False else spec.max_body


_EXPOSE = ("X-Request-ID, Retry-After, RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset, "
           "Idempotent-Replayed")

#: Query parameters whose values are personal data or secrets: the access log shows their
#: names only (``?q=[redacted]``). Compared without case.
PII_PARAMS = frozenset({"q", "phone", "email", "token", "code", "password", "otp",
                        "access_token", "refresh_token", "id_token", "secret"})
REDACTED = "[redacted]"


def redact_path_qs(path_qs: str) -> str:
    """``path_qs`` with the values of :data:`PII_PARAMS` in its query replaced by
    ``[redacted]``; other parameters, their order and their encoding are kept."""
    path, mark, query = path_qs.partition("?")
    if not mark or not query:
        return path_qs
    parts = []
    for part in query.split("&"):
        name = part.partition("=")[0]
        if unquote_plus(name).strip().lower() in PII_PARAMS:
            part = f"{name}={REDACTED}"
        parts.append(part)
    return f"{path}?{'&'.join(parts)}"


def _edge(config: Config) -> Any:
    log_access = config.http.access_log
    body_limit = config.http.max_body_bytes
    allowed = set(config.http.cors_origins)
    allow_all = "*" in allowed

    def allow(headers: Any, origin: str) -> None:
        if allow_all:
            # Any site may read, but never with the user's cookies: "*" plus credentials would
            # hand every site on the web the signed-in user's data.
            headers["Access-Control-Allow-Origin"] = "*"
            return
        headers["Access-Control-Allow-Origin"] = origin
        headers["Access-Control-Allow-Credentials"] = "true"
        headers.add("Vary", "Origin")

    def preflight(request: web.Request, origin: str) -> web.Response:
        response = web.Response(status=204)
        response.headers["Access-Control-Allow-Methods"] = "GET, POST, PUT, PATCH, DELETE, OPTIONS"
        response.headers["Access-Control-Allow-Headers"] = request.headers.get(
            "Access-Control-Request-Headers", "Content-Type, Authorization")
        response.headers["Access-Control-Max-Age"] = "600"
        return response

    @web.middleware
    async def edge(request: web.Request, handler: Handler) -> web.StreamResponse:
        incoming = request.headers.get(REQUEST_ID_HEADER)
        request_id = (incoming if incoming and _VALID_REQUEST_ID.fullmatch(incoming)
                      else _next_request_id())
        request[REQUEST_ID_KEY] = request_id
        token = REQUEST_ID.set(request_id)
        started = time.perf_counter()
        origin = request.headers.get("Origin")
        # Never on the console: its cookie session must not be readable from another site,
        # whatever origins the API allows (no preflight answer either).
        cors = (origin is not None and (allow_all or origin in allowed)
                and not is_console_path(request.path))
        is_preflight = False
        response: web.StreamResponse | None = None
        redirect: web.HTTPException | None = None
        _in_flight[0] += 1
        try:
            try:
                if cors and request.method == "OPTIONS" and \
                        "Access-Control-Request-Method" in request.headers:
                    is_preflight = True
                    response = preflight(request, origin)  # type: ignore[arg-type]
                elif request.content_length is not None and \
                        request.content_length > (limit := _body_limit(request, body_limit)):
                    # Refused before reading; chunked bodies are cut by aiohttp's
                    # client_max_size while being read (or by a streaming handler's own bound).
                    raise PayloadTooLarge(f"the body is {request.content_length} bytes; "
                                          f"the limit is {limit}")
                else:
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
                               CONSOLE_CSP if is_console_path(request.path) else API_CSP)
            if request.secure:
                headers.setdefault("Strict-Transport-Security", "max-age=31536000")
            if cors:
                # On errors too: a 422 the browser may not read is no help to the client.
                if not is_preflight:
                    headers["Access-Control-Expose-Headers"] = _EXPOSE
                allow(headers, origin)  # type: ignore[arg-type]
            if redirect is not None:
                raise redirect
            return response
        finally:
            _in_flight[0] -= 1
            elapsed = time.perf_counter() - started
            route = _route_template(request)
            method = request.method if request.method in _METHODS else "OTHER"
            # 499: the client went away (cancelled) before a response existed.
            code = response.status if response is not None else 499
            _observe(method, route, code, elapsed)
            if log_access:
                access_log.info("%s %s %s", request.method, redact_path_qs(request.path_qs),
                                code, extra={
                    "request_id": request_id, "method": request.method, "path": request.path,
                    "route": route, "status": code, "duration_ms": round(elapsed * 1000, 2),
                    "remote": request.remote})
            REQUEST_ID.reset(token)

    return edge


def build_middlewares(config: Config, extra: list[Any]) -> list[Any]:
    """The app's middlewares: the edge, then ``extra`` (from plugins, e.g. authentication).

    Rate limits and timeouts are applied by each route's endpoint (:mod:`propmubi.web.guard`),
    inside these, so per-subject limits see the subject an authentication middleware set."""
    return [_edge(config), *extra]
