"""Subscriber test plugin: one effect row per handled event."""

from __future__ import annotations

import asyncio
import random
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
    services = delivery.ctx.services
    if await tx.fetchval("SELECT 1 FROM tally_poison WHERE amount = %s", (amount,)):
        # Counted outside the transaction, which rolls back: one increment per delivery.
        await services.redis.incr(services.keys.plugin("tally", "attempts", str(delivery.id)))
        raise RuntimeError(f"poison amount {amount}")
    delay = await tx.fetchrow("SELECT seconds, jitter FROM tally_delay LIMIT 1")
    if delay:
        await asyncio.sleep(delay["seconds"] * (random.random() if delay["jitter"] else 1))
    await tx.execute(
        "INSERT INTO tally_latest (account_id, sequence, amount) VALUES (%s, %s, %s) "
        "ON CONFLICT (account_id) DO UPDATE SET sequence = EXCLUDED.sequence, "
        "amount = EXCLUDED.amount WHERE tally_latest.sequence < EXCLUDED.sequence",
        (delivery.event.account_id, delivery.sequence, amount))
    await tx.execute(
        "INSERT INTO tally_effects (event_id, account_id, sequence, amount, handled_by) "
        "VALUES (%s, %s, %s, %s, %s)",
        (delivery.id, delivery.event.account_id, delivery.sequence, amount,
         delivery.ctx.config.redis.key_prefix))


@hookimpl
def propmubi_event_handlers() -> dict[str, Any]:
    return {"ledger.entry_recorded": on_entry}
