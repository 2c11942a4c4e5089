import uuid

from propmubi.events.bus import EventBus
from tests.busplugins.ledger import record


async def effects(services, handled_by=None):
    return await services.db.fetch(
        "SELECT event_id, handled_by, sequence FROM tally_effects ORDER BY id")


async def test_commit_delivers_once_to_every_group(services):
    bus = EventBus(services)
    account = uuid.uuid4()
    ids = [await record(services.context("ledger"), account, n) for n in range(1, 4)]
    await bus.drain()
    rows = await effects(services)
    by_group = {}
    for row in rows:
        group = "audit" if row["handled_by"] == "audit" else "tally"
        by_group.setdefault(group, []).append(row["event_id"])
    assert by_group["tally"] == ids
    assert by_group["audit"] == ids
    await bus.drain()
    assert len(await effects(services)) == 6


async def test_rollback_publishes_nothing(services):
    from tests.busplugins.ledger import EntryRecorded

    try:
        async with services.db.transaction() as tx:
            await services.context("ledger").publish(
                tx, EntryRecorded(account_id=uuid.uuid4(), amount=1))
            raise RuntimeError("abort")
    except RuntimeError:
        pass
    assert await services.db.fetchval("SELECT count(*) FROM core_outbox") == 0
    await EventBus(services).drain()
    assert await effects(services) == []
