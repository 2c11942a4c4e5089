"""A test plugin with role-guarded routes (what every domain plugin's routes look like)."""

from __future__ import annotations

import attrs
from aiohttp import web

from propmubi import hookimpl
from propmubi.config import Config
from propmubi.types import PluginInfo
from propmubi.web.appkeys import PRINCIPAL
from propmubi.web.routing import Routes

routes = Routes(tags=["roletest"])


@attrs.frozen
class Listing:
    title: str


@routes.get("/roletest/agents", roles=["agent"])
async def agents_only(request: web.Request) -> dict[str, str]:
    """Agents (and admins) only."""
    return {"subject": request[PRINCIPAL].subject}


@routes.post("/roletest/listings", body=Listing, roles=["builder", "staff"], status=201)
async def builders_or_staff(request: web.Request, body: Listing) -> dict[str, str]:
    """Builders or staff; the body is read only after the role check."""
    return {"title": body.title}


@hookimpl
def propmubi_plugin_info() -> PluginInfo:
    return PluginInfo(name="roletest")


@hookimpl
def propmubi_api_routes(config: Config) -> Routes:
    return routes
