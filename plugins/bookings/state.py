"""The plugin's per-process state (there is none to open) and ``Ctx``, the typed context every
module annotates."""

from __future__ import annotations

import datetime as dt

import attrs

from propmubi.context import PluginContext
from propmubi_plugins.bookings.settings import BookingsSettings


@attrs.define(eq=False)
class BookingsState:
    """What one process of the plugin holds.

    :ivar started_at: when this process started the plugin.
    """

    started_at: dt.datetime


#: The plugin's context, as every module of the plugin annotates it.
Ctx = PluginContext[BookingsSettings, BookingsState]


async def start(ctx: Ctx) -> BookingsState:
    """Build this process's state."""
    return BookingsState(started_at=ctx.clock.now())
