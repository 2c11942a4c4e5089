"""Search, suggest and feed: public and cached (see ``cache.py``).

Answers are computed on the primary, not the read replica: an answer read from a replica that
lags behind a change, just after the change bumped the cache generations, would be cached
under the new generation and stay stale for ``cache_ttl``. The cache takes the read load.
"""

from __future__ import annotations

from aiohttp import web

from propmubi.web.appkeys import SERVICES
from propmubi.web.routing import Routes
from propmubi_plugins.catalog import cache, search
from propmubi_plugins.catalog.search import (
    FeedPage,
    FeedQuery,
    SearchPage,
    SearchQuery,
    SuggestPage,
    SuggestQuery,
)

routes = Routes(tags=["catalog"])


def _json(text: str) -> web.Response:
    return web.Response(text=text, content_type="application/json")


@routes.get("/projects/search", query=SearchQuery, response=SearchPage, errors=[422])
async def search_projects(request: web.Request, query: SearchQuery) -> web.Response:
    """Search published projects: full text, filters, radius or polygon, facets, cursor."""
    services = request.app[SERVICES]
    plan = search.plan_search(query)
    # Scoped to no city even with a city filter: the disjunctive city facet counts every city.
    return _json(await cache.cached(services, "search", plan.canonical, None,
                                    lambda: search.run_search(services.db, plan)))


@routes.get("/projects/suggest", query=SuggestQuery, response=SuggestPage, errors=[422])
async def suggest_projects(request: web.Request, query: SuggestQuery) -> web.Response:
    """Autocomplete over project names, localities and builder names (typo tolerant)."""
    services = request.app[SERVICES]
    params = {"q": " ".join(query.q.split()).lower(), "limit": query.limit}
    return _json(await cache.cached(services, "suggest", params, None,
                                    lambda: search.run_suggest(services.db, query)))


@routes.get("/projects/feed", query=FeedQuery, response=FeedPage, errors=[422])
async def project_feed(request: web.Request, query: FeedQuery) -> web.Response:
    """A city's published projects: featured first, then newest."""
    services = request.app[SERVICES]
    params = {"city": " ".join(query.city.split()).lower(), "limit": query.limit}
    return _json(await cache.cached(services, "feed", params, query.city,
                                    lambda: search.run_feed(services.db, query)))
