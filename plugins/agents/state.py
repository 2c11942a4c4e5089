"""The plugin's per-process state (there is none to open) and ``Ctx``, the typed context
every module annotates."""

from __future__ import annotations

import datetime as dt

import attrs

from propmubi.context import PluginContext
from propmubi_plugins.agents.settings import AgentsSettings


@attrs.define(eq=False)
class AgentsState:
    """What one process of the plugin holds.

    :ivar started_at: when this process started the plugin.
    """

    started_at: dt.datetime


#: The plugin's context, as every module of the plugin annotates it.
Ctx = PluginContext[AgentsSettings, AgentsState]


async def start(ctx: Ctx) -> AgentsState:
    """Build this process's state (there is nothing to open)."""
    return AgentsState(started_at=ctx.clock.now())
