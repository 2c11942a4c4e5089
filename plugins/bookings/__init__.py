"""The bookings plugin: buyers hold units for a short while, pay the booking amount (through
the payments plugin, which calls ``api.py``), and may cancel under their project's terms.

A unit never has two live bookings: the database refuses it (a partial unique index). Events:
``bookings.unit_held``, ``hold_extended``, ``hold_released``, ``hold_expired``,
``payment_started``, ``booking_paid``, ``booking_confirmed``, ``booking_cancelled``,
``booking_refunded`` and ``late_payment_rejected``. The catalogue's unit status follows every
transition in the same transaction.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from propmubi import hookimpl
from propmubi.config import Config
from propmubi.types import ConsolePage, ConsoleWidget, Job, PluginInfo, template_dir
from propmubi.web.routing import Routes
from propmubi_plugins.bookings import console, events, handlers, routes, seed, service, state
from propmubi_plugins.bookings.settings import BookingsSettings
from propmubi_plugins.bookings.state import Ctx
from propmubi_plugins.bookings.terms import routes as terms_routes


@hookimpl
def propmubi_plugin_info() -> PluginInfo:
    """Name and version; units and projects are the catalogue's."""
    return PluginInfo(name="bookings", version="0.1.0", requires=("catalog",),
                      description="unit holds, bookings, cancellations and booking terms")


@hookimpl
def propmubi_settings_class() -> type:
    """``[plugins.bookings]``: hold times, limits, the lock timeout and default terms."""
    return BookingsSettings


@hookimpl
def propmubi_migrations() -> Path:
    """The bookings_* tables."""
    return Path(__file__).parent / "migrations"


@hookimpl
def propmubi_api_routes(config: Config) -> Routes:
    """Holds, bookings, cancellation and projects' booking terms."""
    return Routes(tags=["bookings"]).include(routes.routes).include(terms_routes.routes)


@hookimpl
def propmubi_event_types() -> list[type]:
    """The ten ``bookings.*`` events listed in the module docstring."""
    return list(events.EVENT_TYPES)


@hookimpl
def propmubi_event_handlers() -> Mapping[str, Any]:
    """``auth.user_erased``: the erased buyer's typed notes are cleared."""
    return handlers.subscriptions()


@hookimpl
def propmubi_jobs() -> list[Job]:
    """``expire_holds`` every 30 s: holds whose time ran out are expired."""
    return [Job(name="expire_holds", run=service.expire_holds, every=30, timeout=25)]


@hookimpl
def propmubi_console_pages() -> list[ConsolePage]:
    """Bookings (by status), a booking with its history, holds about to expire, cancel."""
    return console.pages()


@hookimpl
def propmubi_console_widgets() -> list[ConsoleWidget]:
    """Holds, confirmations and cancellations today."""
    return console.widgets()


@hookimpl
def propmubi_template_dirs() -> list[Path]:
    """``templates/bookings/``."""
    return [template_dir(__file__)]


@hookimpl
def propmubi_startup(ctx: Ctx) -> Any:
    """This process's state (``state.start``)."""
    return functools.partial(state.start, ctx)


@hookimpl
def propmubi_seed(ctx: Ctx, scale: float) -> Any:
    """Demo booking terms for the demo catalogue's projects (safe to run twice)."""
    return seed.seed(ctx, scale)
