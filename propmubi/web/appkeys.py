"""Typed keys for what the application stores (``app[SERVICES]``, ...)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from propmubi.config import Config
    from propmubi.context import Services
    from propmubi.plugins import PluginSet
    from propmubi.web.routing import RouteSpec

__all__ = ["CONFIG", "OPENAPI", "PLUGINS", "ROUTE_SPECS", "SERVICES"]

CONFIG: web.AppKey[Config] = web.AppKey("propmubi_config")
PLUGINS: web.AppKey[PluginSet] = web.AppKey("propmubi_plugins")
SERVICES: web.AppKey[Services] = web.AppKey("propmubi_services")
ROUTE_SPECS: web.AppKey[list[RouteSpec]] = web.AppKey("propmubi_route_specs")
OPENAPI: web.AppKey[dict[str, Any]] = web.AppKey("propmubi_openapi")
