"""The service called directly, as jobs, event handlers, the CLI and other plugins call it."""

from __future__ import annotations

from typing import Any

import pytest

from propmubi.actors import Actor
from propmubi.errors import BadRequest, Forbidden
from propmubi.types import Principal
from propmubi_plugins.bookings import api, seed, service
from propmubi_plugins.bookings.models import ItemIn

SYSTEM = Actor.system("test")


async def published(ctx: Any) -> list[dict[str, Any]]:
    """The committed item_created events (payload and actor), oldest first."""
    return await ctx.db.fetch(
        "SELECT payload, actor FROM core_outbox WHERE type = %s ORDER BY position",
        ("bookings.item_created",))


async def test_creating_publishes_the_event_with_the_item(ctx):
    item = await service.create_item(ctx, SYSTEM, ItemIn(title="From a job"))
    assert item.created_by == "system:test"
    assert await published(ctx) == [
        {"payload": {"item_id": str(item.id), "title": "From a job"}, "actor": "system:test"}]
    assert await api.item(ctx.db, item.id) == item


async def test_a_rolled_back_transaction_leaves_no_item_and_no_event(ctx):
    class Abandoned(Exception):
        pass

    with pytest.raises(Abandoned):
        async with ctx.db.transaction() as tx:
            item = await service.create_item_in(ctx, tx, SYSTEM, ItemIn(title="Gone"))
            assert await api.item(tx, item.id) == item  # visible inside the transaction
            raise Abandoned
    assert await api.item(ctx.db, item.id) is None
    assert await published(ctx) == []


async def test_only_staff_create(ctx):
    buyer = Actor.user(Principal("00000000-0000-0000-0000-000000000002", ["buyer"]))
    with pytest.raises(Forbidden):
        await service.create_item(ctx, buyer, ItemIn(title="Mine"))
    assert await published(ctx) == []


async def test_a_foreign_cursor_is_refused(ctx):
    with pytest.raises(BadRequest):
        await service.list_items(ctx, None, "not-a-cursor", None)


async def test_seeding_twice_adds_nothing(ctx):
    await seed.seed(ctx, 0.05)
    first = await service.list_items(ctx, None, None, 100)
    await seed.seed(ctx, 0.05)
    again = await service.list_items(ctx, None, None, 100)
    assert len(first.items) == 5 and again.items == first.items
