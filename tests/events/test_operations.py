"""Operating the bus: trimming, replay, the Redis guard, the CLI, correlation ids."""

import logging
import uuid

import pytest

from propmubi.events.bus import BusGuardError, EventBus, check_eviction_policy
from propmubi.events.ops import group_stats, replay, trim_log, trim_streams
from propmubi.observability import REQUEST_ID
from tests.busplugins.ledger import EntryRecorded, record
from tests.events.test_delivery import cli, group, tally_effects


async def test_trimming_keeps_what_a_group_has_not_acknowledged(services, event_bus):
    for n in range(5):
        await record(services.context("ledger"), uuid.uuid4(), n)
    await event_bus.relay.relay_once()
    await event_bus.consumer.ensure_groups()
    stream = services.keys.event_stream("ledger")
    # tally reads and acks everything; audit reads two and acks nothing yet.
    await event_bus.consumer.read_once(group(event_bus, "tally"), block=False)
    await services.redis.xreadgroup("audit", "slow", {stream: ">"}, count=2)
    removed = await trim_streams(services, [stream])
    assert removed[stream] == 0  # audit has all five unacknowledged
    audit = group(event_bus, "audit")
    await event_bus.consumer.retry_once(audit)  # nothing due yet: claim_idle not reached
    pending = await services.redis.xpending(stream, "audit")
    assert pending["pending"] == 2
    # Once audit catches up, the stream can be emptied.
    await services.redis.xack(stream, "audit", pending["min"], pending["max"])
    await services.redis.xreadgroup("audit", "slow", {stream: ">"}, count=10)
    entries = await services.redis.xrange(stream)
    await services.redis.xack(stream, "audit", *[i for i, _ in entries])
    assert (await trim_streams(services, [stream]))[stream] == 5
    assert await services.redis.xlen(stream) == 0


async def test_an_unacknowledged_entry_trimmed_away_is_reported_and_refed(services, event_bus):
    event_id = await record(services.context("ledger"), uuid.uuid4(), 3)
    await event_bus.relay.relay_once()
    await event_bus.consumer.ensure_groups()
    tally = group(event_bus, "tally")
    stream = tally.streams[0]
    await services.redis.xreadgroup("tally", "dead-consumer", {stream: ">"})
    # Someone trims carelessly (or Redis lost the entry) before tally acknowledged it.
    await services.redis.xtrim(stream, maxlen=0)
    # A dead consumer's entry is claimed after claim_idle; pretend that time has passed.
    event_bus.consumer.settings = services.config.evolve(
        events={"claim_idle": 0.01}).events
    import asyncio
    await asyncio.sleep(0.1)
    await event_bus.consumer.retry_once(tally)
    from propmubi.events import metrics
    assert metrics.TRIMMED_UNACKED.labels("tally")._value.get() >= 1
    await event_bus.drain()
    assert [r["event_id"] for r in await tally_effects(services)] == [event_id]
    assert (await services.redis.xpending(stream, "tally"))["pending"] == 0


async def test_replay_applies_only_missing_effects(services, event_bus):
    ids = [await record(services.context("ledger"), uuid.uuid4(), n) for n in range(4)]
    await event_bus.drain()
    # tally loses the effects of two events, as if its state were restored from an old backup.
    await services.db.execute("DELETE FROM tally_effects WHERE event_id = ANY(%s) "
                              "AND handled_by <> 'audit'", (ids[2:],))
    await services.db.execute("DELETE FROM core_processed_events WHERE consumer = 'tally' "
                              "AND event_id = ANY(%s)", (ids[2:],))
    queued = await replay(services, group(event_bus, "tally"), str(ids[0]))
    assert queued == 4
    await event_bus.drain()
    assert sorted(r["event_id"] for r in await tally_effects(services)) == sorted(ids)
    audit = await services.db.fetchval(
        "SELECT count(*) FROM tally_effects WHERE handled_by = 'audit'")
    assert audit == 4  # replaying tally does not touch audit

    by_time = cli(services, "events", "replay", "--consumer", "tally", "--since",
                  "2000-01-01T00:00:00+00:00")
    assert by_time.returncode == 0 and "queued 4 event(s)" in by_time.stdout
    await event_bus.drain()
    assert len(await tally_effects(services)) == 4
    bad = cli(services, "events", "replay", "--consumer", "tally", "--since", "yesterday")
    assert bad.returncode != 0 and "neither an event id nor an ISO time" in bad.stderr
    unknown = cli(services, "events", "replay", "--consumer", "nobody", "--since", str(ids[0]))
    assert unknown.returncode != 0 and "no consumer group 'nobody'" in unknown.stderr


async def test_the_log_is_trimmed_after_its_retention(services, event_bus):
    await record(services.context("ledger"), uuid.uuid4(), 1)
    await event_bus.drain()
    assert await trim_log(services) == 0
    await services.db.execute("UPDATE core_outbox SET occurred_at = now() - interval '30 days'")
    await services.db.execute(
        "UPDATE core_processed_events SET processed_at = now() - interval '30 days'")
    assert await trim_log(services) == 3  # one event, two processed records
    assert await services.db.fetchval("SELECT count(*) FROM core_outbox") == 0


async def test_unpublished_events_are_never_trimmed_from_the_log(services):
    async with services.db.transaction() as tx:
        await services.context("ledger").publish(
            tx, EntryRecorded(account_id=uuid.uuid4(), amount=1))
    await services.db.execute("UPDATE core_outbox SET occurred_at = now() - interval '30 days'")
    assert await trim_log(services) == 0


async def test_redis_that_may_evict_is_refused_or_warned_about(services, caplog):
    redis = services.redis
    before = (await redis.config_get("maxmemory-policy"))["maxmemory-policy"]
    await redis.config_set("maxmemory-policy", "allkeys-lru")
    try:
        with pytest.raises(BusGuardError, match="allkeys-lru"):
            await check_eviction_policy(services)
        services.config = services.config.evolve(events={"eviction_policy_check": "warn"})
        with caplog.at_level(logging.WARNING):
            await check_eviction_policy(services)
        assert "noeviction" in caplog.text
    finally:
        await redis.config_set("maxmemory-policy", before)
    await check_eviction_policy(services)


async def test_correlation_id_follows_the_request(services, event_bus):
    token = REQUEST_ID.set("req-123")
    try:
        async with services.db.transaction() as tx:
            await services.context("ledger").publish(
                tx, EntryRecorded(account_id=uuid.uuid4(), amount=1), actor="u1")
    finally:
        REQUEST_ID.reset(token)
    row = await services.db.fetchrow("SELECT correlation_id, actor, sequence FROM core_outbox")
    assert row == {"correlation_id": "req-123", "actor": "u1", "sequence": 1}


async def test_stats_report_pending_lag_and_dead(services, event_bus):
    await record(services.context("ledger"), uuid.uuid4(), 1)
    await event_bus.relay.relay_once()
    await event_bus.consumer.ensure_groups()
    stats = {(s["group"], s["stream"]): s for s in await group_stats(services,
                                                                     event_bus.groups)}
    ledger = services.keys.event_stream("ledger")
    assert stats[("tally", ledger)]["lag_seconds"] >= 0
    assert stats[("tally", ledger)]["pending"] == 0
    await event_bus.drain()
    stats = {(s["group"], s["stream"]): s for s in await group_stats(services,
                                                                     event_bus.groups)}
    assert stats[("tally", ledger)]["lag_seconds"] == 0


async def test_catalog_and_tail_commands(services, event_bus):
    catalog = cli(services, "events", "catalog")
    assert catalog.returncode == 0
    assert '"type": "ledger.entry_recorded"' in catalog.stdout
    assert '"amount": "int"' in catalog.stdout
    event_id = await record(services.context("ledger"), uuid.uuid4(), 42)
    await event_bus.drain()
    tail = cli(services, "events", "tail", "--last", "5", "--no-follow")
    assert tail.returncode == 0, tail.stderr
    assert str(event_id) in tail.stdout and '"amount":42' in tail.stdout


def test_event_types_are_validated():
    import attrs

    from propmubi.events import EventTypeError, event

    with pytest.raises(EventTypeError, match=r"plugin>\.<past_tense>"):
        event("NoDot", aggregate="x")
    with pytest.raises(EventTypeError, match="aggregate field"):
        @event("ledger.thing_done", aggregate="missing")
        @attrs.frozen
        class Thing:
            id: str


async def test_subscribing_to_an_unknown_type_fails_at_start(config):
    from propmubi import hookimpl
    from propmubi.events.catalog import EventTypeError
    from propmubi.lifecycle import open_services
    from propmubi.plugins import load_plugins
    from propmubi.types import PluginInfo

    class Stray:
        @hookimpl
        def propmubi_plugin_info(self):
            return PluginInfo(name="stray")

        @hookimpl
        def propmubi_event_handlers(self):
            async def handler(tx, delivery):
                return None
            return {"ledger.nothing_like_this": handler}

    from tests.busplugins import ledger
    plugins = load_plugins(config, extra=[ledger, Stray()])
    async with open_services(config, plugins, lifecycle=False) as services:
        with pytest.raises(EventTypeError, match=r"stray subscribes to ledger\.nothing_like_this"):
            EventBus(services)
