"""What uses up deliveries, and what a dead letter says: every path that dead-letters an entry
writes the error (type and message) and, where there was an exception, its traceback; an outage
uses up no delivery, a statement timeout does."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid
from typing import Any

import orjson
import pytest

from propmubi.db import OperationalError
from propmubi.events.bus import EventBus
from propmubi.events.consumer import Consumer, Group
from propmubi.events.envelope import Envelope
from propmubi.ids import uuid7
from tests.busplugins.ledger import record

DEADLINE = 60.0  # seconds a condition may take to come true; never a bound on speed


@pytest.fixture
def config_overrides() -> dict[str, dict[str, Any]]:
    return {"events": {"retry_base": 0.05, "retry_max": 0.2, "retry_scan": 0.05,
                       "claim_idle": 1.0, "max_deliveries": 3, "block_ms": 100,
                       "handler_timeout": 1.0}}


async def consumer_of(services: Any, handler: Any, name: str = "live") -> tuple[Consumer, Group]:
    """A consumer whose ``tally`` group runs ``handler`` for ``ledger.entry_recorded``."""
    bus = EventBus(services)
    await bus.consumer.ensure_groups()
    tally = next(g for g in bus.groups if g.name == "tally")
    group = Group(name="tally", handlers={"ledger.entry_recorded": (handler,)},
                  streams=tally.streams)
    return Consumer(services, bus.catalog, [group], name=name), group


async def publish_one(services: Any) -> uuid.UUID:
    event_id = await record(services.context("ledger"), uuid.uuid4(), 1)
    await EventBus(services).relay.relay_once()
    return event_id


async def settle(services: Any, consumer: Consumer, group: Group) -> None:
    """Read and retry until nothing of the group is pending."""
    stream = services.keys.event_stream("ledger")
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        await consumer.read_once(group, block=False)
        await consumer.retry_once(group)
        if (await services.redis.xpending(stream, group.name))["pending"] == 0:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("pending entries never settled")


async def dead_letters(services: Any) -> list[dict[str, str]]:
    return [fields for _, fields in await services.redis.xrange(
        services.keys.dead_letters("tally"))]


async def refuse_the_entry(tx: Any, delivery: Any) -> None:
    raise LookupError(f"no account takes amount {delivery.event.amount}")


async def test_a_raising_handler_is_dead_lettered_with_its_exception_and_traceback(services):
    consumer, group = await consumer_of(services, refuse_the_entry)
    event_id = await publish_one(services)
    await settle(services, consumer, group)
    (letter,) = await dead_letters(services)
    assert orjson.loads(letter["fields"])["id"] == str(event_id)
    assert letter["deliveries"] == "3"
    assert letter["error"] == "LookupError: no account takes amount 1"
    assert "Traceback" in letter["traceback"] and "refuse_the_entry" in letter["traceback"]
    assert not await services.redis.hlen(services.keys.handler_errors("tally"))


async def test_a_statement_timeout_uses_up_deliveries_and_is_dead_lettered_with_it(services):
    calls: list[uuid.UUID] = []

    async def run_a_slow_report(tx: Any, delivery: Any) -> None:
        calls.append(delivery.id)
        await tx.execute("SET LOCAL statement_timeout = '50ms'")
        await tx.execute("SELECT pg_sleep(5)")

    consumer, group = await consumer_of(services, run_a_slow_report)
    event_id = await publish_one(services)
    await settle(services, consumer, group)
    assert calls == [event_id] * services.config.events.max_deliveries
    (letter,) = await dead_letters(services)
    assert letter["deliveries"] == "3"
    assert "QueryCanceled" in letter["error"] and "statement timeout" in letter["error"]
    assert "run_a_slow_report" in letter["traceback"]


async def test_the_handler_timeout_is_named_in_the_dead_letter(services):
    async def hang(tx: Any, delivery: Any) -> None:
        await asyncio.sleep(DEADLINE)

    consumer, group = await consumer_of(services, hang)
    await publish_one(services)
    await settle(services, consumer, group)
    (letter,) = await dead_letters(services)
    assert letter["error"] == ("TimeoutError: the handlers of ledger.entry_recorded ran longer "
                               "than events.handler_timeout (1 s)")
    assert "in hang" in letter["traceback"]


async def test_an_outage_uses_up_no_delivery(services):
    calls: list[uuid.UUID] = []

    async def flaky_connection(tx: Any, delivery: Any) -> None:
        calls.append(delivery.id)
        if len(calls) <= 5:  # more failures than events.max_deliveries (3)
            raise OperationalError("server closed the connection unexpectedly")
        await tx.execute("INSERT INTO tally_effects (event_id, account_id, sequence, amount, "
                         "handled_by) VALUES (%s, %s, 1, 1, 'flaky')",
                         (delivery.id, delivery.event.account_id))

    consumer, group = await consumer_of(services, flaky_connection)
    event_id = await publish_one(services)
    await settle(services, consumer, group)
    assert calls == [event_id] * 6
    assert await dead_letters(services) == []
    assert await services.db.fetchval(
        "SELECT count(*) FROM tally_effects WHERE handled_by = 'flaky'") == 1
    assert not await services.redis.hlen(services.keys.handler_errors("tally"))


async def test_a_payload_that_does_not_fit_its_type_is_dead_lettered_with_the_error(services):
    calls: list[Any] = []

    async def count(tx: Any, delivery: Any) -> None:
        calls.append(delivery)

    consumer, group = await consumer_of(services, count)
    bad = Envelope(id=uuid7(), type="ledger.entry_recorded", version=1, publisher="ledger",
                   aggregate_id="a", sequence=1, occurred_at=dt.datetime.now(dt.UTC),
                   correlation_id=None, actor=None,
                   payload={"account_id": "not an id", "amount": 1})
    stream = services.keys.event_stream("ledger")
    await services.redis.xadd(stream, bad.to_fields())
    await services.redis.xadd(stream, {"type": "ledger.entry_recorded"})  # no id
    await settle(services, consumer, group)
    assert calls == []
    malformed, unfit = sorted(await dead_letters(services), key=lambda d: d["deliveries"])
    assert malformed["deliveries"] == "1"
    assert malformed["error"] == "malformed entry: KeyError: 'id'"
    assert "from_fields" in malformed["traceback"]
    assert unfit["deliveries"] == "3"
    assert unfit["error"] == ("ValueError: the payload of ledger.entry_recorded (version 1) "
                              "does not fit EntryRecorded (version 1): account_id: "
                              "expected a UUID")
    assert "Traceback" in unfit["traceback"]
    assert "_typed" in unfit["traceback"]


async def crash_while_handling(services: Any, group: Group, entry_id: str, ghost: str) -> None:
    """What a consumer killed in the middle of a handler leaves: the entry, claimed (one more
    delivery) and never acknowledged."""
    stream = services.keys.event_stream("ledger")
    claimed = await services.redis.xclaim(stream, group.name, ghost, min_idle_time=0,
                                          message_ids=[entry_id])
    assert claimed


async def test_a_crashed_consumers_entry_is_dead_lettered_with_the_last_error(services):
    """A handler fails on one consumer; two more deliveries go to consumers that die while
    handling; a live consumer finally dead-letters it with the error the first one saw."""
    first, group = await consumer_of(services, refuse_the_entry, name="first")
    await publish_one(services)
    assert await first.read_once(group, block=False) == 1
    stream = services.keys.event_stream("ledger")
    (pending,) = await services.redis.xpending_range(stream, "tally", min="-", max="+",
                                                      count=10)
    for n in (1, 2):
        await crash_while_handling(services, group, pending["message_id"], f"ghost-{n}")

    async def never_called(tx: Any, delivery: Any) -> None:
        raise AssertionError("an exhausted entry is not delivered again")

    live, group = await consumer_of(services, never_called, name="live")
    await settle(services, live, group)
    (letter,) = await dead_letters(services)
    assert letter["deliveries"] == "3"
    assert letter["error"] == "LookupError: no account takes amount 1"
    assert "refuse_the_entry" in letter["traceback"]


async def test_an_entry_whose_consumers_all_died_says_so_in_its_dead_letter(services):
    async def never_called(tx: Any, delivery: Any) -> None:
        raise AssertionError("an exhausted entry is not delivered again")

    live, group = await consumer_of(services, never_called, name="live")
    await publish_one(services)
    stream = services.keys.event_stream("ledger")
    await services.redis.xreadgroup("tally", "ghost-0", {stream: ">"}, count=1)
    (pending,) = await services.redis.xpending_range(stream, "tally", min="-", max="+",
                                                      count=10)
    for n in (1, 2):
        await crash_while_handling(services, group, pending["message_id"], f"ghost-{n}")
    await settle(services, live, group)
    (letter,) = await dead_letters(services)
    assert letter["deliveries"] == "3"
    assert letter["error"].startswith("no error recorded: delivered 3 times")
    assert "consumer ghost-2" in letter["error"]
