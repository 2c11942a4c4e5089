"""A second subscriber group for the same events."""

from __future__ import annotations

from typing import Any

from propmubi import hookimpl
from propmubi.db import Tx
from propmubi.events import Delivery
from propmubi.types import PluginInfo


@hookimpl
def propmubi_plugin_info() -> PluginInfo:
    return PluginInfo(name="audit", requires=("ledger", "tally"))


async def on_entry(tx: Tx, delivery: Delivery) -> None:
    await tx.execute("INSERT INTO tally_effects (event_id, account_id, sequence, amount, "
                     "handled_by) VALUES (%s, %s, %s, %s, 'audit')",
                     (delivery.id, delivery.event.account_id, delivery.sequence,
                      delivery.event.amount))


@hookimpl
def propmubi_event_handlers() -> dict[str, Any]:
    return {"ledger.entry_recorded": on_entry}
