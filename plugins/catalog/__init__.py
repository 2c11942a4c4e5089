"""The catalogue plugin: builders, projects, towers and units with a moderation workflow,
photos in the core's object storage, faceted + geo + full-text search, suggest and a cached feed.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from propmubi import hookimpl
from propmubi.config import Config
from propmubi.types import ConsolePage, ConsoleWidget, PluginInfo, template_dir
from propmubi.web.routing import Routes
from propmubi_plugins.catalog import console, events, handlers, routes, seed, state
from propmubi_plugins.catalog.media import routes as media_routes
from propmubi_plugins.catalog.search import routes as search_routes
from propmubi_plugins.catalog.settings import CatalogSettings
from propmubi_plugins.catalog.state import Ctx
from propmubi_plugins.catalog.units import routes as units_routes


@hookimpl
def propmubi_plugin_info() -> PluginInfo:
    """Name and version; builders are auth users with the builder role."""
    return PluginInfo(name="catalog", version="0.1.0", requires=("auth",),
                      description="builders, projects, units, media, search and feed")


@hookimpl
def propmubi_settings_class() -> type:
    """``[plugins.catalog]``: the search cache and media limits."""
    return CatalogSettings


@hookimpl
def propmubi_migrations() -> Path:
    """The catalog_* tables."""
    return Path(__file__).parent / "migrations"


@hookimpl
def propmubi_api_routes(config: Config) -> Routes:
    """Builders, projects, towers, units, photos, search, suggest and feed."""
    return (Routes(tags=["catalog"]).include(routes.routes).include(units_routes.routes)
            .include(media_routes.routes).include(search_routes.routes))


@hookimpl
def propmubi_http_routes(config: Config) -> Routes:
    """``/media/{key}``: stored photos (the local backend's, and S3's without a public URL)."""
    return media_routes.http_routes


@hookimpl
def propmubi_event_types() -> list[type]:
    """``catalog.project_created``, ``project_updated``, ``project_published``,
    ``project_deleted``, ``units_deleted``, ``unit_status_changed`` and ``price_changed``."""
    return events.EVENT_TYPES


@hookimpl
def propmubi_event_handlers() -> Mapping[str, Any]:
    """Search cache invalidation, deleted photos' removal, ``auth.user_erased`` (owner unlinked)."""
    return handlers.handlers()


@hookimpl
def propmubi_console_pages() -> list[ConsolePage]:
    """Builders, the moderation queue, project pages with their unit grid, galleries."""
    return console.pages()


@hookimpl
def propmubi_console_widgets() -> list[ConsoleWidget]:
    """Projects waiting for review."""
    return console.widgets()


@hookimpl
def propmubi_template_dirs() -> list[Path]:
    """``templates/catalog/``."""
    return [template_dir(__file__)]


@hookimpl
def propmubi_seed(ctx: Ctx, scale: float) -> Any:
    """Demo builders, projects, towers and units (``--scale 1``: 2,000 projects, 100k units)."""
    return seed.seed(ctx, scale)


@hookimpl
def propmubi_startup(ctx: Ctx) -> Any:
    """The photo processing slots (``ctx.state``); photos go to ``ctx.storage``."""
    return functools.partial(state.start, ctx)
