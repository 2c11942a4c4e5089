"""Subscriber test plugin: one effect row per handled event."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from propmubi import hookimpl
from propmubi.db import Tx
from propmubi.events import Delivery
from propmubi.types import PluginInfo


@hookimpl
def propmubi_plugin_info() -> PluginInfo:
    return PluginInfo(name="tally", requires=("ledger",))


@hookimpl
def propmubi_migrations() -> Path:
    return Path(__file__).parent / "tally_migrations"


async def on_entry(tx: Tx, delivery: Delivery) -> None:
    amount = delivery.event.amount
    if await tx.fetchval("SELECT 1 FROM tally_poison WHERE amount = %s", (amount,)):
        raise RuntimeError(f"poison amount {amount}")
    delay = await tx.fetchval("SELECT seconds FROM tally_delay LIMIT 1")
    if delay:
        await asyncio.sleep(delay)
    await tx.execute(
        "INSERT INTO tally_effects (event_id, account_id, sequence, amount, handled_by) "
        "VALUES (%s, %s, %s, %s, %s)",
        (delivery.id, delivery.event.account_id, delivery.sequence, amount,
         delivery.services.config.redis.key_prefix))


@hookimpl
def propmubi_event_handlers() -> dict[str, Any]:
    return {"ledger.entry_recorded": on_entry}
