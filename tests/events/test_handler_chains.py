"""Several handlers for one event type in one plugin: declared order, one transaction, one
idempotency record; one failing handler fails (and rolls back) the whole delivery."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from propmubi import hookimpl
from propmubi.db import Tx
from propmubi.events import Delivery
from propmubi.events.bus import EventBus
from propmubi.types import PluginInfo
from tests.busplugins import ledger, tally
from tests.busplugins.ledger import record

pytestmark = pytest.mark.usefixtures("services")


async def _first(tx: Tx, delivery: Delivery) -> None:
    await tx.execute("INSERT INTO tally_effects (event_id, account_id, sequence, amount, "
                     "handled_by) VALUES (%s, %s, %s, %s, 'chain:first')",
                     (delivery.id, delivery.event.account_id, delivery.sequence,
                      delivery.event.amount))


async def _second(tx: Tx, delivery: Delivery) -> None:
    # Sees what the first handler wrote: the same transaction, run after it.
    seen = await tx.fetchval("SELECT count(*) FROM tally_effects WHERE event_id = %s "
                             "AND handled_by = 'chain:first'", (delivery.id,))
    if delivery.event.amount == 13:
        raise RuntimeError("the second handler refuses 13")
    await tx.execute("INSERT INTO tally_effects (event_id, account_id, sequence, amount, "
                     "handled_by) VALUES (%s, %s, %s, %s, %s)",
                     (delivery.id, delivery.event.account_id, delivery.sequence,
                      delivery.event.amount, f"chain:second saw {seen}"))


class Chain:
    """A subscriber with two handlers for one type."""

    @hookimpl
    def propmubi_plugin_info(self) -> PluginInfo:
        return PluginInfo(name="chain", requires=("ledger", "tally"))

    @hookimpl
    def propmubi_event_handlers(self) -> dict[str, Any]:
        return {"ledger.entry_recorded": [_first, _second]}


@pytest.fixture
def extra_plugins() -> list[Any]:
    return [ledger, tally, Chain()]


async def _effects(services: Any) -> list[str]:
    rows = await services.db.fetch("SELECT handled_by FROM tally_effects "
                                   "WHERE handled_by LIKE 'chain:%%' ORDER BY handled_by")
    return [r["handled_by"] for r in rows]


async def test_handlers_run_in_order_in_one_transaction(services: Any) -> None:
    await record(services.context("ledger"), uuid.uuid4(), 5)
    bus = EventBus(services)
    await bus.drain()
    assert await _effects(services) == ["chain:first", "chain:second saw 1"]
    # A redelivery (the same event fed again) has no second effect on either handler.
    group = next(g for g in bus.groups if g.name == "chain")
    assert group.handlers["ledger.entry_recorded"] == (_first, _second)
    event_id = await services.db.fetchval("SELECT id FROM core_outbox")
    assert await services.db.fetchval(
        "SELECT count(*) FROM core_processed_events WHERE consumer = 'chain' "
        "AND event_id = %s", (event_id,)) == 1


async def test_a_failing_handler_rolls_back_the_others(services: Any) -> None:
    await record(services.context("ledger"), uuid.uuid4(), 13)
    await EventBus(services).drain()
    # The first handler's row was rolled back with the failure, and the event is not marked
    # processed for the group: it stays pending for a retry.
    assert await _effects(services) == []
    assert await services.db.fetchval(
        "SELECT count(*) FROM core_processed_events WHERE consumer = 'chain'") == 0


async def test_a_non_callable_handler_is_refused(services: Any) -> None:
    from propmubi.events import EventTypeError
    from propmubi.events.consumer import collect_groups
    from propmubi.lifecycle import open_services
    from propmubi.plugins import load_plugins

    class Broken:
        @hookimpl
        def propmubi_plugin_info(self) -> PluginInfo:
            return PluginInfo(name="broken", requires=("ledger",))

        @hookimpl
        def propmubi_event_handlers(self) -> dict[str, Any]:
            return {"ledger.entry_recorded": []}

    plugins = load_plugins(services.config, extra=[ledger, Broken()])
    async with open_services(services.config, plugins, lifecycle=False) as opened:
        with pytest.raises(EventTypeError, match=r"broken subscribes to ledger\.entry_recorded"):
            collect_groups(opened, opened.events)
