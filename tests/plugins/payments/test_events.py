"""The plugin's event handler, driven by the real bus (``event_bus.drain()`` relays and
handles every committed event now)."""

from __future__ import annotations

from propmubi.actors import Actor
from propmubi.events import Delivery, Envelope
from propmubi_plugins.payments import handlers, service
from propmubi_plugins.payments.events import ItemCreated
from propmubi_plugins.payments.models import ItemIn


async def test_the_handler_records_a_line_per_item(ctx, event_bus):
    item = await service.create_item(ctx, Actor.system("test"), ItemIn(title="Seen"))
    assert await service.recent_activity(ctx, None, 10) == []  # the worker has not run yet
    await event_bus.drain()
    (line,) = await service.recent_activity(ctx, None, 10)
    assert (line.item_id, line.line) == (item.id, "created “Seen”")


async def test_a_redelivered_event_has_no_second_effect(ctx, services, event_bus):
    await service.create_item(ctx, Actor.system("test"), ItemIn(title="Once"))
    await event_bus.drain()
    stream = services.keys.event_stream("payments")
    ((_, fields),) = await services.redis.xrange(stream)
    await services.redis.xadd(stream, fields)  # the same event again, as after a crash
    await event_bus.drain()
    assert len(await service.recent_activity(ctx, None, 10)) == 1


async def test_the_handler_itself_changes_nothing_the_second_time(ctx):
    item = await service.create_item(ctx, Actor.system("test"), ItemIn(title="Twice"))
    row = await ctx.db.fetchrow("SELECT * FROM core_outbox WHERE aggregate_id = %s",
                                (str(item.id),))
    delivery = Delivery(envelope=Envelope.from_row(row),
                        event=ItemCreated(item_id=item.id, title=item.title),
                        ctx=ctx, stream_id="0-1")
    async with ctx.db.transaction() as tx:
        for handler in handlers.subscriptions()["payments.item_created"]:
            await handler(tx, delivery)
            await handler(tx, delivery)
    assert len(await service.recent_activity(ctx, None, 10)) == 1
