"""The one way to declare a route: a handler with its path, query, body and response classes.

    routes = Routes()

    @routes.post("/notes", body=NoteIn, response=NoteOut, status=201, rate_limit="30/minute",
                 roles=["agent", "staff"])
    async def create_note(request: web.Request, body: NoteIn) -> NoteOut:
        ...

The handler receives only what it declared (``params``, ``query``, ``body``), already structured
and validated, and its plugin's :class:`~propmubi.context.PluginContext` when it names a ``ctx``
parameter; bad input never reaches it (422 problem+json listing every bad field). It returns
an attrs instance, a list of them, plain JSON data, None (204) or a ready ``web.Response``.
A handler with checks of its own beyond the body class's (against the rows it changes, say)
may take a body that did not validate, to report its own problems with the body's in one
answer: with ``partial_body=True`` it gets a :class:`~propmubi.validation.InvalidInput` (the
body's field errors, and its fields valid on their own) instead of a 422, and must raise
:class:`~propmubi.errors.ValidationFailed` with those errors and its own. (Bad path or query
parameters, and a body that is not a JSON object, are still refused before it runs.)
With ``roles=``, only an authenticated caller holding one of them gets in (401 / 403 otherwise,
before any input is read; see :mod:`propmubi.web.auth`). The same declarations feed the OpenAPI
document.

The edge refuses a body declared larger than ``[http] max_body_bytes`` with 413 before the
handler runs. A route that takes larger bodies says so with ``max_body=``: a byte count of its
own, or False when the handler reads the body as a stream and bounds it itself (uploads whose
limit is a plugin setting, say).

With ``idempotent=True`` a client may send an ``Idempotency-Key`` header: a retry of the same
request with the same key gets the first answer again, byte for byte, and the handler runs
once (:mod:`propmubi.web.idempotency` has the rules). The endpoint reads the whole body first
to fingerprint it, so such a route takes a JSON ``body=`` or a body its handler reads with
``request.read()`` / ``json()`` / ``text()``, never a stream (no ``max_body=False``, no
multipart ``form=``).
"""

from __future__ import annotations

import functools
import types
import typing
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import attrs
import orjson
from aiohttp import web

from propmubi.context import takes_ctx
from propmubi.errors import BadRequest, FieldError, UnsupportedMediaType, ValidationFailed
from propmubi.types import RateLimit
from propmubi.validation import (
    InvalidInput,
    json_converter,
    query_converter,
    structure_input,
    unstructure,
    valid_fields,
)
from propmubi.web import idempotency
from propmubi.web.appkeys import SERVICES
from propmubi.web.auth import check_roles
from propmubi.web.guard import Guard, Plan

__all__ = ["ROUTE_KEY", "ROUTE_SPECS", "RateLimit", "RouteSpec", "Routes", "json_response",
           "mount"]

#: Attribute on the aiohttp handler that holds its :class:`RouteSpec` (middlewares read it).
ROUTE_KEY = "__propmubi_route__"



@attrs.frozen
class RouteSpec:
    """Everything declared about one route."""

    method: str
    path: str
    handler: Callable[..., Awaitable[Any]]
    name: str
    body: type | None = None
    query: type | None = None
    params: type | None = None
    response: Any = None
    status: int = 200
    summary: str = ""
    description: str = ""
    tags: tuple[str, ...] = ()
    # None: the configured default for /api routes; False: no limit at all.
    rate_limit: RateLimit | bool | None = None
    timeout: float | None = None
    # Extra problem statuses the handler may answer with (for the OpenAPI document).
    errors: tuple[int, ...] = ()
    # Non-JSON content type for handlers returning a web.Response of their own.
    content_type: str | None = None
    # None: public; otherwise the caller needs one of these roles (ANY_ROLE: any caller).
    roles: tuple[str, ...] | None = None
    # None: [http] max_body_bytes; an int: this route's own limit; False: the handler bounds
    # the body itself as it streams it.
    max_body: int | bool | None = None
    # attrs class documenting a multipart/form-data body the handler reads itself (OpenAPI).
    form: type | None = None
    # The handler takes a body that did not validate (an InvalidInput) to add its own errors.
    partial_body: bool = False
    # Clients may send Idempotency-Key; retries get the stored answer (propmubi.web.idempotency).
    idempotent: bool = False


#: Every mounted route's spec, with full paths (the OpenAPI document is built from them).
ROUTE_SPECS: web.AppKey[list[RouteSpec]] = web.AppKey("propmubi_route_specs")


class Routes:
    """A table of declared routes; a plugin returns one from ``propmubi_api_routes``."""

    def __init__(self, tags: Sequence[str] = ()) -> None:
        self.specs: list[RouteSpec] = []
        self.tags = tuple(tags)

    def route(self, method: str, path: str, *, body: type | None = None,
              query: type | None = None, params: type | None = None, response: Any = None,
              status: int = 200, summary: str = "", tags: Sequence[str] = (),
              rate_limit: str | bool | None = None, timeout: float | None = None,
              errors: Sequence[int] = (), name: str | None = None,
              content_type: str | None = None,
              roles: Sequence[str] | None = None,
              max_body: int | bool | None = None,
              form: type | None = None,
              partial_body: bool = False,
              idempotent: bool = False) -> Callable[[Any], Any]:
        """Declare a route; see the module docstring.

        :param params: attrs class for the path's ``{placeholders}``.
        :param query: attrs class for the query string (list fields take repeated keys).
        :param body: attrs class for a JSON body.
        :param response: the attrs class (or ``list[cls]``) the handler returns.
        :param rate_limit: ``"30/minute"``; False exempts the route from every limit.
        :param timeout: seconds before the handler is cancelled with 504.
        :param roles: role names, one of which the caller must hold (``["*"]``: any
            authenticated caller); None makes the route public.
        :param form: attrs class describing a ``multipart/form-data`` body, for the OpenAPI
            document only (the handler reads the parts itself); ``bytes`` fields are files.
        :param max_body: bytes of body this route accepts instead of ``[http] max_body_bytes``;
            False when the handler streams the body and enforces its own limit.
        :param partial_body: the handler gets a body that did not validate as an
            :class:`~propmubi.validation.InvalidInput` (see the module docstring).
        :param idempotent: honour an ``Idempotency-Key`` header (see the module docstring).
        """
        if max_body is True or (max_body is not None and max_body is not False
                                and max_body <= 0):
            raise TypeError(f"{method} {path}: max_body= must be a positive byte count or False")
        if partial_body and body is None:
            raise TypeError(f"{method} {path}: partial_body=True needs a body= class")
        if idempotent and (max_body is False or form is not None):
            raise TypeError(f"{method} {path}: idempotent=True reads the body to fingerprint it; "
                            "it cannot go with a streamed body (max_body=False or form=)")
        if idempotent and body is None and max_body is not None:
            raise TypeError(f"{method} {path}: idempotent=True with max_body= needs a body= "
                            "class")
        if isinstance(roles, str) or (roles is not None and not roles):
            raise TypeError(f"{method} {path}: roles= must be a non-empty list of role names")
        for cls, what in ((body, "body"), (query, "query"), (params, "params"), (form, "form")):
            if cls is not None and not attrs.has(cls):
                raise TypeError(f"{method} {path}: {what}= must be an attrs class")
            if cls is not None:
                # Modules using `from __future__ import annotations` leave types as strings.
                attrs.resolve_types(cls)
        limit = RateLimit.parse(rate_limit) if isinstance(rate_limit, str) else rate_limit
        if limit is True:
            raise TypeError(f"{method} {path}: rate_limit=True is meaningless; give a limit")

        def decorator(handler: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
            doc = (handler.__doc__ or "").strip()
            self.specs.append(RouteSpec(
                method=method.upper(), path=path, handler=handler,
                name=name or handler.__name__, body=body, query=query, params=params,
                response=response, status=status,
                summary=summary or (doc.splitlines()[0] if doc else ""),
                description=doc, tags=tuple(tags) or self.tags, rate_limit=limit,
                timeout=timeout, errors=tuple(errors), content_type=content_type,
                roles=tuple(roles) if roles is not None else None, max_body=max_body,
                form=form, partial_body=partial_body, idempotent=idempotent))
            return handler

        return decorator

    def include(self, other: Routes) -> Routes:
        """Add another table's routes (a plugin may keep its routes in several modules);
        returns self."""
        self.specs.extend(other.specs)
        return self

    def get(self, path: str, **options: Any) -> Callable[[Any], Any]:
        """Declare a GET route."""
        return self.route("GET", path, **options)

    def post(self, path: str, **options: Any) -> Callable[[Any], Any]:
        """Declare a POST route."""
        return self.route("POST", path, **options)

    def put(self, path: str, **options: Any) -> Callable[[Any], Any]:
        """Declare a PUT route."""
        return self.route("PUT", path, **options)

    def patch(self, path: str, **options: Any) -> Callable[[Any], Any]:
        """Declare a PATCH route."""
        return self.route("PATCH", path, **options)

    def delete(self, path: str, **options: Any) -> Callable[[Any], Any]:
        """Declare a DELETE route."""
        return self.route("DELETE", path, **options)


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None
                  ) -> web.Response:
    """A JSON response from attrs instances or plain data, serialised with orjson."""
    return web.Response(body=orjson.dumps(unstructure(data)), status=status,
                        content_type="application/json", headers=headers)


def _is_list_type(tp: Any) -> bool:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):  # list[str] | None
        return any(_is_list_type(arg) for arg in typing.get_args(tp))
    return origin in (list, tuple, set, frozenset, Sequence)


@functools.cache
def _list_fields(cls: type) -> frozenset[str]:
    # Per class, not per request: the query string of every request is read through it.
    return frozenset(f.name for f in attrs.fields(cls) if _is_list_type(f.type))


def _query_data(request: web.Request, cls: type) -> dict[str, Any]:
    data: dict[str, Any] = {}
    list_fields = _list_fields(cls)
    for key in set(request.query.keys()):
        values = request.query.getall(key)
        data[key] = values if key in list_fields else values[-1]
    return data


async def _read_json(request: web.Request) -> tuple[bytes, Any]:
    """The body's bytes and the JSON they hold."""
    if request.content_type != "application/json":
        raise UnsupportedMediaType(
            f"expected Content-Type: application/json, got {request.content_type or 'none'}")
    raw = await request.read()
    if not raw:
        raise BadRequest("the request body is empty; a JSON object is expected")
    try:
        return raw, orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"the request body is not valid JSON: {exc}") from None


def _endpoint(spec: RouteSpec, guard: Guard | None, owner: str
              ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    plan: Plan | None = None
    wants_ctx = takes_ctx(spec.handler)
    if guard is not None:
        plan = guard.plan(spec.path, spec.name, spec.rate_limit, spec.timeout, spec.roles)

    async def endpoint(request: web.Request) -> web.StreamResponse:
        if plan is None:
            return await respond(request)
        return await guard.run(request, plan, respond)  # type: ignore[union-attr]

    async def respond(request: web.Request) -> web.StreamResponse:
        if spec.roles is not None:
            check_roles(request, spec.roles)
        key = idempotency.key_of(request) if spec.idempotent else None
        raw = b""
        kwargs: dict[str, Any] = {}
        if wants_ctx:
            kwargs["ctx"] = request.app[SERVICES].contexts[owner]
        errors: list[FieldError] = []
        body_errors: list[FieldError] = []
        data: Any = None
        if spec.params is not None:
            kwargs["params"], errs = structure_input(
                dict(request.match_info), spec.params, "path", query_converter)
            errors += errs
        if spec.query is not None:
            kwargs["query"], errs = structure_input(
                _query_data(request, spec.query), spec.query, "query", query_converter)
            errors += errs
        if spec.body is not None:
            # A route's own byte limit replaces client_max_size for the JSON it reads.
            source = (request.clone(client_max_size=spec.max_body)
                      if spec.max_body not in (None, False) else request)
            raw, data = await _read_json(source)
            kwargs["body"], body_errors = structure_input(data, spec.body, "body",
                                                          json_converter)
        if (body_errors and spec.partial_body and not errors and spec.body is not None
                and isinstance(data, Mapping)):
            kwargs["body"] = InvalidInput(
                errors=body_errors,
                valid=valid_fields(data, spec.body, body_errors, json_converter))
        elif errors or body_errors:
            raise ValidationFailed(errors + body_errors)
        if key is None:
            return await call(request, kwargs)
        if spec.body is None:
            raw = await request.read()
        return await idempotency.run(request, spec.name, spec.timeout, key, raw,
                                     functools.partial(call, request, kwargs))

    async def call(request: web.Request, kwargs: dict[str, Any]) -> web.StreamResponse:
        result = await spec.handler(request, **kwargs)
        if isinstance(result, web.StreamResponse):
            return result
        if result is None:
            return web.Response(status=204)
        return json_response(result, spec.status)

    endpoint.__name__ = spec.name
    setattr(endpoint, ROUTE_KEY, spec)
    return endpoint


def mount(app: web.Application, routes: Routes, prefix: str = "", owner: str = "",
          guard: Guard | None = None) -> list[RouteSpec]:
    """Add a table's routes to ``app`` under ``prefix``; return the specs with full paths.

    Each route's name becomes ``<owner>.<handler name>``: its OpenAPI ``operationId`` and the
    scope of its own rate limit, unique across plugins. GET routes also answer HEAD. With a
    ``guard``, each route gets its rate limits and timeout.
    """
    mounted = []
    for spec in routes.specs:
        full = attrs.evolve(spec, path=prefix + spec.path,
                            name=f"{owner}.{spec.name}" if owner else spec.name)
        endpoint = _endpoint(full, guard, owner)
        app.router.add_route(full.method, full.path, endpoint)
        if full.method == "GET":
            app.router.add_route("HEAD", full.path, endpoint)
        mounted.append(full)
    return mounted
