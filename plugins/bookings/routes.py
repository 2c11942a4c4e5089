"""The plugin's JSON API, mounted under ``/api/v1`` (``propmubi_api_routes``).

Handlers are thin: they get their declared ``params`` / ``query`` / ``body`` already
structured and validated (bad input never reaches them: the core answers 422 problem+json
listing every bad field) and the plugin's context when they name a ``ctx`` parameter; they
call the service with the caller as an Actor and return attrs objects. ``roles=`` answers
401 / 403 before any input is read; ``rate_limit=`` gives a route its own limit. Errors are
raised as :mod:`propmubi.errors` (``NotFound`` is a 404 problem+json).
"""

from __future__ import annotations

from aiohttp import web

from propmubi.actors import Actor
from propmubi.web.appkeys import PRINCIPAL
from propmubi.web.routing import Routes
from propmubi_plugins.bookings import service
from propmubi_plugins.bookings.models import ItemId, ItemIn, ItemOut, ItemPage, ListQuery
from propmubi_plugins.bookings.state import Ctx

routes = Routes(tags=["bookings"])


def _caller(request: web.Request) -> Actor | None:
    """The signed-in caller as an Actor; None for an anonymous one."""
    principal = request.get(PRINCIPAL)
    return Actor.user(principal) if principal is not None else None


@routes.get("/bookings/items", query=ListQuery, response=ItemPage,
            errors=[400])
async def list_items(request: web.Request, ctx: Ctx, query: ListQuery) -> ItemPage:
    """Items, newest first; pass ``next_cursor`` back as ``cursor`` for the next page."""
    return await service.list_items(ctx, _caller(request), query.cursor, query.limit)


@routes.get("/bookings/items/{item_id}", params=ItemId,
            response=ItemOut, errors=[404])
async def get_item(request: web.Request, ctx: Ctx, params: ItemId) -> ItemOut:
    """One item."""
    return await service.get_item(ctx, _caller(request), params.item_id)


@routes.post("/bookings/items", body=ItemIn, response=ItemOut,
             status=201, roles=["staff"], rate_limit="30/minute")
async def create_item(request: web.Request, ctx: Ctx, body: ItemIn) -> ItemOut:
    """Create an item (staff); publishes its ``item_created`` event."""
    return await service.create_item(ctx, Actor.user(request[PRINCIPAL]), body)
