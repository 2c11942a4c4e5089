"""The service called directly: transactions roll back whole, staff and the system do not take
holds, the seed is safe to run twice, and an erased buyer's notes are cleared."""

from __future__ import annotations

import uuid

import pytest

from propmubi.actors import Actor
from propmubi.errors import Forbidden
from propmubi.web.appkeys import SERVICES
from propmubi_plugins.auth.events import UserErased
from propmubi_plugins.bookings import api, seed, service
from propmubi_plugins.bookings.models import CancelIn, HoldIn
from propmubi_plugins.bookings.settlement import cancel
from propmubi_plugins.catalog import seed as catalog_seed
from tests.plugins.bookings.conftest import hold, outbox, unit_status


class Abandoned(Exception):
    pass


async def test_a_rolled_back_caller_leaves_no_change_and_no_event(client, ctx, buyer, units):
    booking = await hold(client, buyer, units["A-101"])
    with pytest.raises(Abandoned):
        async with ctx.db.transaction() as tx:
            row = await api.start_payment_in(ctx, tx, buyer.actor, uuid.UUID(booking["id"]))
            assert row["status"] == "payment_pending"
            raise Abandoned
    assert (await api.booking(ctx.db, uuid.UUID(booking["id"])))["status"] == "held"
    assert await outbox(ctx, "bookings.payment_started") == []


async def test_only_users_take_holds(ctx, units):
    for actor in (Actor.staff(uuid.uuid4()), Actor.system("test")):
        with pytest.raises(Forbidden):
            await service.hold(ctx, actor, HoldIn(unit_id=uuid.UUID(units["A-101"])))


async def test_seeding_terms_twice_adds_nothing(client, ctx):
    await catalog_seed.seed(client.app[SERVICES].context("catalog"), 0.001)
    assert await seed.seed(ctx, 0.001) == 2
    assert await seed.seed(ctx, 0.001) == 0
    rows = await ctx.db.fetch("SELECT project_id, amount_kind FROM bookings_terms "
                              "ORDER BY amount_kind")
    assert {r["project_id"] for r in rows} == {seed.demo_project_id(0), seed.demo_project_id(1)}


async def test_an_erased_buyers_notes_are_cleared(client, ctx, event_bus, buyer, units):
    booking = await hold(client, buyer, units["A-101"])
    booking_id = uuid.UUID(booking["id"])
    other = client.app[SERVICES].context("catalog")
    async with other.db.transaction() as tx:
        await api.record_payment_in(other, tx, Actor.system("payments"), booking_id,
                                    payment_id=uuid.uuid4(), amount_minor=1, currency="INR")
    await cancel(ctx, buyer.actor, booking_id, CancelIn(reason_code="other",
                                                        note="Moving to Bengaluru"))
    async with ctx.db.transaction() as tx:
        await ctx.publish(tx, UserErased(user_id=buyer.id), actor="system:test")
    await event_bus.drain()
    notes = await ctx.db.fetch("SELECT note, reason FROM bookings_history WHERE note IS NOT NULL"
                               " OR reason = 'other'")
    assert notes == [{"note": None, "reason": "other"}]
    assert (await api.booking(ctx.db, booking_id))["status"] == "cancelled"
    assert await unit_status(client, units["A-101"]) == "available"
