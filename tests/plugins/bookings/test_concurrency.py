"""It can never oversell: many buyers racing for one unit through the real application, and
the database's own guard (the partial unique index) under the service."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter

import pytest

from propmubi.db import UniqueViolation
from tests.plugins.bookings.conftest import HOLDS

BUYERS = 200


async def test_200_buyers_race_for_one_unit_and_exactly_one_wins(client, ctx, make_user,
                                                                  units):
    buyers = [await make_user() for _ in range(BUYERS)]
    unit_id = units["A-101"]

    async def try_hold(user):
        response = await client.post(HOLDS, json={"unit_id": unit_id}, headers=user.headers)
        body = await response.json()
        return response.status, body.get("type", "")

    answers = await asyncio.gather(*(try_hold(u) for u in buyers))
    assert Counter(status for status, _ in answers) == {201: 1, 409: BUYERS - 1}
    assert {t for status, t in answers if status == 409} == {
        "https://propmubi.dev/problems/unit-unavailable"}
    live = await ctx.db.fetch(
        "SELECT buyer_id FROM bookings_bookings WHERE unit_id = %s AND status IN "
        "('held', 'payment_pending', 'paid', 'confirmed')", (uuid.UUID(unit_id),))
    assert len(live) == 1
    assert await ctx.db.fetchval("SELECT count(*) FROM bookings_bookings") == 1
    assert await ctx.db.fetchval(
        "SELECT count(*) FROM core_outbox WHERE type = 'bookings.unit_held'") == 1


async def test_the_database_refuses_a_second_live_booking_whatever_the_code(client, ctx, buyer,
                                                                           units):
    response = await client.post(HOLDS, json={"unit_id": units["A-101"]},
                                 headers=buyer.headers)
    assert response.status == 201
    with pytest.raises(UniqueViolation) as caught:
        await ctx.db.execute(
            "INSERT INTO bookings_bookings SELECT (%s)::uuid, unit_id, project_id, buyer_id, "
            "'confirmed', price_minor, currency, amount_due_minor, rera_cap_minor, 0, 0, 0, 0, "
            "free_cancel_hours, fee_fixed_minor, fee_bps, held_at, expires_at, ceiling_at, 0, "
            "max_extensions, now(), NULL, now() FROM bookings_bookings", (uuid.uuid4(),))
    assert caught.value.diag.constraint_name == "bookings_bookings_live_unit"
