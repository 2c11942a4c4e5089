"""The payments plugin: titled items, their API, console page and event.

This file is the plugin's face: hook implementations only, each with a one-line docstring
that says what it contributes. The work lives in the modules named in docs/plugins.md.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from propmubi import hookimpl
from propmubi.config import Config
from propmubi.types import ConsolePage, PluginInfo, template_dir
from propmubi.web.routing import Routes
from propmubi_plugins.payments import console, events, handlers, routes, seed, state
from propmubi_plugins.payments.settings import PaymentsSettings
from propmubi_plugins.payments.state import Ctx


@hookimpl
def propmubi_plugin_info() -> PluginInfo:
    """Name and version; it requires no other plugin."""
    return PluginInfo(name="payments", version="0.1.0",
                      description="Payments items")


@hookimpl
def propmubi_settings_class() -> type:
    """``[plugins.payments]``: the page size of its lists."""
    return PaymentsSettings


@hookimpl
def propmubi_migrations() -> Path:
    """The plugin's tables: its items, and the activity log."""
    return Path(__file__).parent / "migrations"


@hookimpl
def propmubi_api_routes(config: Config) -> Routes:
    """``/payments/items``: list and read (anyone), create (staff)."""
    return routes.routes


@hookimpl
def propmubi_event_types() -> list[type]:
    """``payments.item_created``."""
    return list(events.EVENT_TYPES)


@hookimpl
def propmubi_event_handlers() -> Mapping[str, Any]:
    """``payments.item_created``: add the item's line to the activity log."""
    return handlers.subscriptions()


@hookimpl
def propmubi_console_pages() -> list[ConsolePage]:
    """The items page (list, create form, activity) and its menu entry."""
    return console.pages()


@hookimpl
def propmubi_template_dirs() -> list[Path]:
    """``templates/payments/``."""
    return [template_dir(__file__)]


@hookimpl
def propmubi_startup(ctx: Ctx) -> Any:
    """Build this process's state (``state.start``)."""
    return functools.partial(state.start, ctx)


@hookimpl
def propmubi_cleanup(ctx: Ctx) -> Any:
    """Release it (``state.stop``)."""
    return functools.partial(state.stop, ctx)


@hookimpl
def propmubi_seed(ctx: Ctx, scale: float) -> Any:
    """Demo items, created through the service (safe to run twice)."""
    return seed.seed(ctx, scale)
