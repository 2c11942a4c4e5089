"""Benchmark-only subscriber: the cheapest handler that still commits an effect.

``sink`` handles ``ledger.entry_recorded`` with exactly one statement, an INSERT stamped with
``clock_timestamp()`` (the moment the handler ran, for commit->handler latency). Its table has
no unique key on ``event_id``: an event handled twice shows up as two rows. With it, the event
benchmark measures the bus (outbox, relay, streams, consumer transaction) rather than a test
plugin's handler (``tests.busplugins.tally`` does four statements per event).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from propmubi import hookimpl
from propmubi.db import Tx
from propmubi.events import Delivery
from propmubi.types import PluginInfo

_INSERT = "INSERT INTO sink_effects (event_id, at) VALUES (%s, clock_timestamp())"


@hookimpl
def propmubi_plugin_info() -> PluginInfo:
    return PluginInfo(name="sink", requires=("ledger",))


@hookimpl
def propmubi_migrations() -> Path:
    return Path(__file__).parent / "sink_migrations"


async def on_entry(tx: Tx, delivery: Delivery) -> None:
    await tx.execute(_INSERT, (delivery.id,))


@hookimpl
def propmubi_event_handlers() -> dict[str, Any]:
    return {"ledger.entry_recorded": on_entry}
