"""Delivery guarantees, in process: ordering skips, poison events, concurrent duplicates,
several consumers of one group."""

import asyncio
import os
import subprocess
import sys
import uuid

import pytest

from propmubi.events.bus import EventBus
from propmubi.events.consumer import Consumer
from tests.busplugins.ledger import EntryRecorded, record


async def tally_effects(services):
    return await services.db.fetch(
        "SELECT event_id, account_id, sequence, amount FROM tally_effects "
        "WHERE handled_by <> 'audit' ORDER BY id")


def group(bus, name):
    return next(g for g in bus.groups if g.name == name)


async def test_a_lower_position_committing_last_is_still_relayed(services):
    """The classic `id > last_seen` bug: position 1 commits after position 2 was relayed."""
    bus = EventBus(services)
    db = services.db
    async with db.transaction() as slow:
        ledger = services.context("ledger")
        first = await ledger.publish(slow, EntryRecorded(account_id=uuid.uuid4(), amount=1))
        second = await record(ledger, uuid.uuid4(), 2)  # commits while `slow` is still open
        assert await bus.relay.relay_once() == 1
    # `slow` has now committed, with the lower position.
    positions = {r["id"]: r["position"] for r in await db.fetch(
        "SELECT id, position FROM core_outbox")}
    assert positions[first] < positions[second]
    assert await bus.relay.relay_once() == 1
    await bus.drain()
    assert {r["event_id"] for r in await tally_effects(services)} == {first, second}


async def test_an_aggregates_events_keep_commit_order(services):
    bus = EventBus(services)
    account = uuid.uuid4()
    ids = [await record(services.context("ledger"), account, n) for n in range(20)]
    await bus.drain()
    rows = await tally_effects(services)
    assert [r["event_id"] for r in rows] == ids
    assert [r["sequence"] for r in rows] == list(range(1, 21))
    latest = await services.db.fetchrow("SELECT sequence, amount FROM tally_latest")
    assert latest == {"sequence": 20, "amount": 19}


async def test_publishing_an_unregistered_type_fails(services):
    import attrs

    from propmubi.events import EventTypeError, event

    @event("ledger.never_registered", aggregate="id")
    @attrs.frozen
    class Stray:
        id: str

    with pytest.raises(EventTypeError, match="not registered"):
        async with services.db.transaction() as tx:
            await services.context("ledger").publish(tx, Stray(id="x"))
    assert await services.db.fetchval("SELECT count(*) FROM core_outbox") == 0


async def retry_until_settled(bus, name, rounds=400):
    consumer = bus.consumer
    g = group(bus, name)
    for _ in range(rounds):
        await consumer.read_once(g, block=False)
        await consumer.retry_once(g)
        pending = await bus.services.redis.xpending(g.streams[0], g.name)
        if pending["pending"] == 0:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("pending entries never settled")


def cli(services, *args):
    config = services.config
    env = {**os.environ,
           "PROPMUBI_DATABASE__URL": config.database.url,
           "PROPMUBI_REDIS__URL": config.redis.url,
           "PROPMUBI_REDIS__KEY_PREFIX": config.redis.key_prefix,
           "PROPMUBI_PLUGINS__MODULES": "tests.refplugin,tests.busplugins.ledger,"
                                       "tests.busplugins.tally,tests.busplugins.audit",
           "PROPMUBI_LOGGING__LEVEL": "WARNING",
           "PYTHONPATH": os.getcwd()}
    return subprocess.run([sys.executable, "-m", "propmubi", *args], env=env, cwd="/tmp",
                          capture_output=True, text=True, timeout=60)


async def test_poison_event_is_dead_lettered_after_exactly_n_deliveries(services):
    bus = EventBus(services)
    await services.db.execute("INSERT INTO tally_poison VALUES (13)")
    healthy = await record(services.context("ledger"), uuid.uuid4(), 1)
    poison = await record(services.context("ledger"), uuid.uuid4(), 13)
    await bus.drain()
    await retry_until_settled(bus, "tally")

    attempts = await services.redis.get(services.keys.plugin("tally", "attempts", str(poison)))
    assert int(attempts) == services.config.events.max_deliveries == 3
    assert [r["event_id"] for r in await tally_effects(services)] == [healthy]
    dead = await services.redis.xrange(services.keys.dead_letters("tally"))
    assert len(dead) == 1
    assert "poison amount 13" in dead[0][1]["error"]
    # The other group handled it normally.
    audit = await services.db.fetchval(
        "SELECT count(*) FROM tally_effects WHERE handled_by = 'audit' AND event_id = %s",
        (poison,))
    assert audit == 1

    listed = cli(services, "events", "dlq", "list")
    assert listed.returncode == 0, listed.stderr
    assert str(poison) in listed.stdout and "poison amount 13" in listed.stdout
    dead_id = dead[0][0]
    again = cli(services, "events", "dlq", "retry", dead_id)
    assert again.returncode == 1 and "failed again" in again.stdout

    await services.db.execute("DELETE FROM tally_poison")  # the handler is "fixed"
    fixed = cli(services, "events", "dlq", "retry", dead_id)
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert [r["event_id"] for r in await tally_effects(services)] == [healthy, poison]
    assert await services.redis.xlen(services.keys.dead_letters("tally")) == 0
    stats = cli(services, "events", "stats")
    assert stats.returncode == 0 and '"dead": 0' in stats.stdout


async def test_dead_letter_can_be_dropped(services):
    bus = EventBus(services)
    await services.db.execute("INSERT INTO tally_poison VALUES (7)")
    await record(services.context("ledger"), uuid.uuid4(), 7)
    await bus.drain()
    await retry_until_settled(bus, "tally")
    (dead_id, _), = await services.redis.xrange(services.keys.dead_letters("tally"))
    shown = cli(services, "events", "dlq", "show", dead_id)
    assert shown.returncode == 0 and "Traceback" in shown.stdout
    dropped = cli(services, "events", "dlq", "drop", dead_id)
    assert dropped.returncode == 0
    assert await services.redis.xlen(services.keys.dead_letters("tally")) == 0


async def test_the_same_event_delivered_three_times_at_once_has_one_effect(services):
    bus = EventBus(services)
    await bus.consumer.ensure_groups()
    event_id = await record(services.context("ledger"), uuid.uuid4(), 5)
    await bus.relay.relay_once()
    g = group(bus, "tally")
    stream = g.streams[0]
    ((_, fields),) = await services.redis.xrange(stream)
    for _ in range(2):
        await services.redis.xadd(stream, fields)  # two duplicates on the stream
    entries = [(stream, i, f) for i, f in await services.redis.xrange(stream)]
    assert len(entries) == 3
    await services.db.execute("INSERT INTO tally_delay (seconds) VALUES (0.2)")
    consumers = [Consumer(services, bus.catalog, bus.groups, name=f"c{n}") for n in range(3)]
    await asyncio.gather(*(c.handle(g, [e]) for c, e in zip(consumers, entries, strict=True)))
    assert [r["event_id"] for r in await tally_effects(services)] == [event_id]


async def test_two_consumers_with_random_delays_match_serial_processing(services):
    bus = EventBus(services)
    accounts = [uuid.uuid4() for _ in range(4)]
    ids = []
    for n in range(40):
        ids.append(await record(services.context("ledger"), accounts[n % 4], n))
    await services.db.execute("INSERT INTO tally_delay (seconds, jitter) VALUES (0.02, true)")
    await bus.relay.relay_once()
    await bus.consumer.ensure_groups()
    g = group(bus, "tally")
    consumers = [Consumer(services, bus.catalog, bus.groups, name=f"w{n}") for n in range(2)]

    async def consume(consumer):
        # Small batches so both consumers get a share and interleave.
        while True:
            response = await services.redis.xreadgroup(g.name, consumer.name,
                                                       {s: ">" for s in g.streams}, count=3)
            entries = [(s, i, f) for s, items in response or [] for i, f in items]
            if not entries:
                return
            await consumer.handle(g, entries)

    await asyncio.gather(*(consume(c) for c in consumers))
    rows = await tally_effects(services)
    assert sorted(r["event_id"] for r in rows) == sorted(ids)
    latest = {r["account_id"]: (r["sequence"], r["amount"]) for r in await services.db.fetch(
        "SELECT account_id, sequence, amount FROM tally_latest")}
    # Serial processing would leave each account at its last event: sequence 10.
    assert latest == {a: (10, 36 + i) for i, a in enumerate(accounts)}


async def test_two_relays_at_once_publish_each_event_once(services):
    from propmubi.events.relay import Relay

    relays = [Relay(services), Relay(services)]
    tasks = [asyncio.create_task(r.run()) for r in relays]
    try:
        ids = [await record(services.context("ledger"), uuid.uuid4(), n) for n in range(30)]
        stream = services.keys.event_stream("ledger")
        for _ in range(200):
            if await services.redis.xlen(stream) >= 30 and not await services.db.fetchval(
                    "SELECT count(*) FROM core_outbox WHERE published_at IS NULL"):
                break
            await asyncio.sleep(0.05)
        entries = await services.redis.xrange(stream)
        assert [f["id"] for _, f in entries] == [str(i) for i in ids]
        assert sum(r.active for r in relays) == 1  # one leads, the other stands by
    finally:
        for relay in relays:
            relay.stop()
        await asyncio.gather(*tasks)


async def test_bus_metrics_are_exposed(services, event_bus):
    from propmubi.observability import render_metrics

    await record(services.context("ledger"), uuid.uuid4(), 1)
    await event_bus.drain()
    text = render_metrics().decode()
    for name in ("propmubi_events_published_total", "propmubi_events_relayed_total",
                 "propmubi_events_relay_lag_seconds", "propmubi_events_delivered_total",
                 "propmubi_events_handler_duration_seconds", "propmubi_events_failed_total",
                 "propmubi_events_retried_total", "propmubi_events_dead_lettered_total",
                 "propmubi_events_end_to_end_seconds", "propmubi_events_group_pending",
                 "propmubi_events_group_lag_seconds"):
        assert name in text, name
    assert 'propmubi_events_delivered_total{group="tally",type="ledger.entry_recorded"}' in text


async def test_a_deadlocked_batch_is_run_again_at_once(services):
    from propmubi.db import TransactionRollbackError
    from propmubi.events.consumer import Group

    bus = EventBus(services)
    await bus.consumer.ensure_groups()
    event_id = await record(services.context("ledger"), uuid.uuid4(), 1)
    await bus.relay.relay_once()
    calls = []

    async def handler(tx, delivery):
        calls.append(delivery.id)
        if len(calls) == 1:
            raise TransactionRollbackError("deadlock detected")  # as PostgreSQL would
        await tx.execute("INSERT INTO tally_effects (event_id, account_id, sequence, amount, "
                         "handled_by) VALUES (%s, %s, 1, 1, 'rerun')",
                         (delivery.id, delivery.event.account_id))

    tally = group(bus, "tally")
    rerun = Group(name=tally.name, handlers={"ledger.entry_recorded": (handler,)},
                  streams=tally.streams)
    consumer = Consumer(services, bus.catalog, [rerun], name="rerun")
    assert await consumer.read_once(rerun, block=False) == 1
    assert calls == [event_id, event_id]
    rows = await services.db.fetch("SELECT event_id FROM tally_effects WHERE handled_by = 'rerun'")
    assert [r["event_id"] for r in rows] == [event_id]
    assert (await services.redis.xpending(tally.streams[0], "tally"))["pending"] == 0
    assert not await services.redis.hlen(services.keys.handler_errors("tally"))


async def test_an_entry_still_being_handled_is_not_claimed_back_by_its_consumer(services):
    """A slow handler is not a failed one: the retry loop skips the consumer's own entries
    while its read loop is still handling them (no second, concurrent delivery)."""
    bus = EventBus(services)
    ledger = services.context("ledger")
    account = uuid.uuid4()
    await record(ledger, account, 1)
    await bus.drain()
    await record(ledger, account, 2)
    g = group(bus, "tally")
    redis = services.redis
    async with services.db.transaction() as blocker:
        # The handler's upsert of this account's row waits on this lock.
        await blocker.execute("SELECT 1 FROM tally_latest WHERE account_id = %s FOR UPDATE",
                              (account,))
        assert await bus.relay.relay_once() == 1
        reading = asyncio.create_task(bus.consumer.read_once(g, block=False))
        backoff_ms = services.config.events.retry_base * 1000
        for _ in range(500):  # until the entry is pending past its backoff (bounded)
            items = await redis.xpending_range(g.streams[0], g.name, min="-", max="+",
                                               count=10)
            if items and items[0]["time_since_delivered"] > 2 * backoff_ms:
                break
            await asyncio.sleep(0.02)
        else:
            raise AssertionError("the entry never became pending")
        assert await bus.consumer.retry_once(g) == 0
    await reading
    await bus.drain()
    items = await redis.xpending_range(g.streams[0], g.name, min="-", max="+", count=10)
    assert items == []
    rows = await tally_effects(services)
    assert [r["amount"] for r in rows] == [1, 2]
