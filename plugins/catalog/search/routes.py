"""Search, suggest and feed: public and cached (see ``service.py`` and ``cache.py``)."""

from __future__ import annotations

from aiohttp import web

from propmubi.web.routing import Routes
from propmubi_plugins.catalog.search import service
from propmubi_plugins.catalog.search.models import (
    FeedPage,
    FeedQuery,
    SearchPage,
    SearchQuery,
    SuggestPage,
    SuggestQuery,
)
from propmubi_plugins.catalog.state import Ctx

routes = Routes(tags=["catalog"])


def _json(text: str) -> web.Response:
    return web.Response(text=text, content_type="application/json")


@routes.get("/projects/search", query=SearchQuery, response=SearchPage, errors=[422])
async def search_projects(request: web.Request, ctx: Ctx, query: SearchQuery) -> web.Response:
    """Search published projects: full text, filters, radius or polygon, facets, cursor."""
    return _json(await service.search(ctx, None, query))


@routes.get("/projects/suggest", query=SuggestQuery, response=SuggestPage, errors=[422])
async def suggest_projects(request: web.Request, ctx: Ctx, query: SuggestQuery
                           ) -> web.Response:
    """Autocomplete over project names, localities and builder names (typo tolerant)."""
    return _json(await service.suggest(ctx, None, query))


@routes.get("/projects/feed", query=FeedQuery, response=FeedPage, errors=[422])
async def project_feed(request: web.Request, ctx: Ctx, query: FeedQuery) -> web.Response:
    """A city's published projects: featured first, then newest."""
    return _json(await service.feed(ctx, None, query))
