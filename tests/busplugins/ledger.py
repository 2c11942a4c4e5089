"""Publisher test plugin."""

from __future__ import annotations

import uuid
from pathlib import Path

import attrs

from propmubi import hookimpl
from propmubi.context import PluginContext
from propmubi.db import Database
from propmubi.events import event
from propmubi.types import PluginInfo


@event("ledger.entry_recorded", version=1, aggregate="account_id")
@attrs.frozen
class EntryRecorded:
    """An amount was recorded on an account."""

    account_id: uuid.UUID
    amount: int


@hookimpl
def propmubi_plugin_info() -> PluginInfo:
    return PluginInfo(name="ledger")


@hookimpl
def propmubi_migrations() -> Path:
    return Path(__file__).parent / "ledger_migrations"


@hookimpl
def propmubi_event_types() -> list[type]:
    return [EntryRecorded]


async def record(ctx: PluginContext[None, None], account_id: uuid.UUID, amount: int,
                 db: Database | None = None) -> uuid.UUID:
    """The state change and its event, committed together (on ``db`` when given: tests that
    need another pool)."""
    async with (db or ctx.db).transaction() as tx:
        await tx.execute("INSERT INTO ledger_entries (account_id, amount) VALUES (%s, %s)",
                         (account_id, amount))
        return await ctx.publish(tx, EntryRecorded(account_id=account_id, amount=amount))


async def record_many(ctx: PluginContext[None, None], entries: list[tuple[uuid.UUID, int]]
                      ) -> list[uuid.UUID]:
    """Several state changes and their events, committed together in one transaction (each
    entry as :func:`record` writes it: its ledger row, then its event)."""
    async with ctx.db.transaction() as tx:
        ids = []
        for account_id, amount in entries:
            await tx.execute("INSERT INTO ledger_entries (account_id, amount) VALUES (%s, %s)",
                             (account_id, amount))
            ids.append(await ctx.publish(tx, EntryRecorded(account_id=account_id, amount=amount)))
        return ids
