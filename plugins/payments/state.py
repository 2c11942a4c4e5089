"""The plugin's per-process state, and ``Ctx``: the typed context every module annotates.

``propmubi_startup`` hands ``start`` to the core, which stores its result as ``ctx.state``
for the life of the process (web, worker, scheduler or a CLI command) and calls ``stop`` at
the end. Keep here what a process opens once and shares between requests: clients, pools,
semaphores, a provider picked by a setting (``ctx.provider(...)``). Never in module globals:
two applications in one process (the tests) would share it.
"""

from __future__ import annotations

import datetime as dt

import attrs

from propmubi.context import PluginContext
from propmubi_plugins.payments.settings import PaymentsSettings


@attrs.define(eq=False)
class PaymentsState:
    """What one process of the plugin holds.

    :ivar started_at: when this process started the plugin (the console page shows it).
    """

    started_at: dt.datetime


#: The plugin's context, as every module of the plugin annotates it.
Ctx = PluginContext[PaymentsSettings, PaymentsState]


async def start(ctx: Ctx) -> PaymentsState:
    """Build this process's state (there is nothing to open yet)."""
    return PaymentsState(started_at=ctx.clock.now())


async def stop(ctx: Ctx) -> None:
    """Release what :func:`start` opened (nothing yet)."""
