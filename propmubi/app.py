"""``create_app(config)``: the aiohttp application with every enabled plugin's routes and pages."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp_jinja2
import attrs
import jinja2
from aiohttp import web

from propmubi.config import Config
from propmubi.console import formatting
from propmubi.context import takes_ctx
from propmubi.errors import Forbidden, Unauthorized
from propmubi.lifecycle import open_services
from propmubi.paths import CORE_TEMPLATES
from propmubi.plugins import PluginError, PluginSet, load_plugins
from propmubi.types import ConsolePage
from propmubi.web.appkeys import (
    CONFIG,
    CONSOLE_PAGES,
    CONSOLE_PREFIX,
    CONSOLE_USER,
    CONSOLE_WIDGETS,
    OPENAPI,
    PLUGINS,
    SERVICES,
)
from propmubi.web.guard import Guard, guarded
from propmubi.web.middlewares import build_middlewares
from propmubi.web.openapi import build_openapi
from propmubi.web.ratelimit import RateLimiter
from propmubi.web.routing import ROUTE_KEY, ROUTE_SPECS, RouteSpec, mount

__all__ = ["API_PREFIX", "create_app"]

API_PREFIX = "/api/v1"
_LIMITER: web.AppKey[RateLimiter] = web.AppKey("propmubi_rate_limiter")


def _template_loader(plugins: PluginSet) -> jinja2.BaseLoader:
    folders: list[Path] = []
    for _, dirs in plugins.call("propmubi_template_dirs"):
        folders += [Path(d) for d in dirs]
    core = jinja2.FileSystemLoader(str(CORE_TEMPLATES))
    # Plugins may override a core template by name and still extend it as "default:<name>".
    return jinja2.ChoiceLoader([
        jinja2.FileSystemLoader([str(f) for f in folders]),
        core,
        jinja2.PrefixLoader({"default": core}, delimiter=":"),
    ])


def _with_ctx(page: ConsolePage) -> Callable[[web.Request], Awaitable[Any]]:
    if not takes_ctx(page.handler):
        return page.handler

    async def handler(request: web.Request) -> Any:
        return await page.handler(request, ctx=request.app[SERVICES].contexts[page.plugin])

    return handler


def _console_handler(page: ConsolePage) -> Callable[[web.Request], Awaitable[Any]]:
    handler = _with_ctx(page)
    if page.public:
        return handler

    async def guarded(request: web.Request) -> Any:
        user = request.get(CONSOLE_USER)
        if user is None:
            raise Unauthorized("sign in to the console first")
        roles = set(user.get("roles", ()))
        if page.role not in roles and "admin" not in roles:
            raise Forbidden(f"this page needs the {page.role} role")
        return await handler(request)

    guarded.__name__ = page.name
    return guarded


def _declare_body_limit(page: ConsolePage, handler: Callable[..., Any], ctx: Any) -> None:
    """Give a console page with its own ``max_body`` a route spec holding that limit, which the
    edge (413 before reading) and the console shell (while reading the form) obey."""
    limit = page.max_body(ctx) if callable(page.max_body) else page.max_body
    if not isinstance(limit, int) or isinstance(limit, bool) or limit <= 0:
        raise PluginError(f"console page {page.name}: max_body must be a positive byte count")
    setattr(handler, ROUTE_KEY, RouteSpec(method=page.method, path=CONSOLE_PREFIX + page.path,
                                          handler=page.handler, name=page.name,
                                          max_body=limit))


def create_app(config: Config, plugins: PluginSet | None = None) -> web.Application:
    """Build the application; pools open on startup and close on cleanup.

    :param config: the validated configuration.
    :param plugins: an already loaded plugin set (tests pass one); loaded from ``config`` if None.
    """
    plugins = plugins if plugins is not None else load_plugins(config)
    extra_middlewares = [m for _, ms in plugins.call("propmubi_middlewares", config=config)
                         for m in ms]
    app = web.Application(
        client_max_size=config.http.max_body_bytes,
        middlewares=build_middlewares(config, extra_middlewares),
        handler_args={"access_log": None},
    )
    app[CONFIG] = config
    app[PLUGINS] = plugins

    guard = Guard(config, lambda: app.get(_LIMITER))
    specs: list[RouteSpec] = []
    for plugin, routes in plugins.call("propmubi_http_routes", config=config):
        specs += mount(app, routes, owner=plugin.name, guard=guard)
    for plugin, routes in plugins.call("propmubi_api_routes", config=config):
        specs += mount(app, routes, API_PREFIX, owner=plugin.name, guard=guard)
    names = [s.name for s in specs]
    clashes = sorted({n for n in names if names.count(n) > 1})
    if clashes:
        raise PluginError(f"route names must be unique within a plugin: {', '.join(clashes)}")
    pages = [attrs.evolve(page, plugin=plugin.name)
             for plugin, ps in plugins.call("propmubi_console_pages") for page in ps]
    sized: list[tuple[ConsolePage, Callable[..., Any]]] = []
    for page in pages:
        path = CONSOLE_PREFIX + page.path
        handler = guarded(guard, path, page.name, _console_handler(page))
        app.router.add_route(page.method, path, handler, name=page.name)
        if page.max_body is not None:
            sized.append((page, handler))
    app[CONSOLE_PAGES] = pages
    app[CONSOLE_WIDGETS] = sorted((attrs.evolve(w, plugin=plugin.name)
                                   for plugin, ws in plugins.call("propmubi_console_widgets")
                                   for w in ws), key=lambda w: (w.order, w.name))
    app[ROUTE_SPECS] = specs
    app[OPENAPI] = build_openapi(specs)
    env = aiohttp_jinja2.setup(app, loader=_template_loader(plugins), autoescape=True,
                               context_processors=[])
    env.globals.update(formatting.GLOBALS)

    async def services_ctx(app: web.Application) -> AsyncIterator[None]:
        async with open_services(config, plugins) as services:
            app[SERVICES] = services
            app[_LIMITER] = RateLimiter(services.redis, services.keys)
            for page, handler in sized:
                _declare_body_limit(page, handler, services.contexts[page.plugin])
            yield

    app.cleanup_ctx.append(services_ctx)
    return app
