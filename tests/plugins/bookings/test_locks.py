"""Locks: a write waits at most ``lock_timeout_ms`` for a booking row and then answers 503
``booking-busy`` with ``Retry-After`` (changing nothing); a late payment whose re-hold the
unique index refuses leaves the payment plugin's transaction usable (a savepoint)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from propmubi.actors import Actor
from propmubi_plugins.bookings import api, service
from propmubi_plugins.bookings.errors import BookingBusy
from tests.plugins.auth.conftest import AUTH_SETTINGS
from tests.plugins.bookings.conftest import HOLDS, hold, outbox

PAYMENTS = Actor.system("payments")


@pytest.fixture
def config_overrides() -> dict[str, dict[str, Any]]:
    return {"plugins": {"enabled": ["auth", "notifications", "catalog", "bookings"],
                        "settings": {"auth": dict(AUTH_SETTINGS),
                                     "bookings": {"lock_timeout_ms": 300}}},
            "ratelimit": {"enabled": False}}


async def waiting_on_a_lock(ctx: Any) -> None:
    """Return once some other session of this database waits for a lock."""
    for _ in range(500):
        if await ctx.db.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock'"):
            return
        await asyncio.sleep(0.01)
    raise AssertionError("nobody waited for a lock")


async def test_a_locked_booking_answers_503_with_retry_after(client, ctx, buyer, units):
    booking = await hold(client, buyer, units["A-101"])
    async with ctx.db.transaction() as tx:
        await tx.execute("SELECT 1 FROM bookings_bookings WHERE id = %s FOR UPDATE",
                         (uuid.UUID(booking["id"]),))
        response = await client.post(f"{HOLDS}/{booking['id']}/extend", headers=buyer.headers)
        assert response.status == 503
        assert response.headers["Retry-After"] == "1"
        problem = await response.json()
        assert problem["type"].endswith("/booking-busy")
    assert await outbox(ctx, "bookings.hold_extended") == []
    response = await client.post(f"{HOLDS}/{booking['id']}/extend", headers=buyer.headers)
    assert response.status == 200  # once the lock is gone


async def test_the_sweeper_leaves_a_locked_batch_to_its_next_run(client, ctx, buyer, units):
    booking = await hold(client, buyer, units["A-101"])
    await ctx.db.execute("UPDATE bookings_bookings SET expires_at = now() - interval '1 s'")
    async with ctx.db.transaction() as tx:
        await tx.execute("SELECT 1 FROM bookings_bookings FOR UPDATE")
        assert await service.expire_holds(ctx) == 0
    assert await service.expire_holds(ctx) == 1
    assert (await api.booking(ctx.db, uuid.UUID(booking["id"])))["status"] == "expired"


class GiveUp(Exception):
    """Leaves a transaction by rolling it back."""


async def _released(client: Any, ctx: Any, buyer: Any, unit_id: str) -> uuid.UUID:
    booking = await hold(client, buyer, unit_id)
    booking_id = uuid.UUID(booking["id"])
    await service.release(ctx, buyer.actor, booking_id)
    return booking_id


async def _rival_row(tx: Any, booking_id: uuid.UUID) -> None:
    """A live booking of the same unit, uncommitted: what a concurrent hold looks like to
    others (the checks before the re-hold cannot see it; the unique index can)."""
    await tx.execute(
        "INSERT INTO bookings_bookings SELECT %s, unit_id, project_id, gen_random_uuid(), "
        "'held', price_minor, currency, amount_due_minor, rera_cap_minor, 0, 0, NULL, NULL, "
        "free_cancel_hours, fee_fixed_minor, fee_bps, now(), now() + interval '10 minutes', "
        "now() + interval '30 minutes', 0, max_extensions, NULL, NULL, now() "
        "FROM bookings_bookings WHERE id = %s", (uuid.uuid4(), booking_id))


async def test_a_re_hold_refused_by_the_index_keeps_the_callers_transaction(client, ctx, buyer,
                                                                           units):
    booking_id = await _released(client, ctx, buyer, units["A-101"])

    async def pay() -> tuple[api.PaymentOutcome, int]:
        async with ctx.db.transaction() as tx:
            outcome = await api.record_payment_in(ctx, tx, PAYMENTS, booking_id,
                                                  payment_id=uuid.uuid4(),
                                                  amount_minor=8_50_000_00, currency="INR")
            return outcome, await tx.fetchval("SELECT 1")  # still usable

    async with ctx.db.transaction() as rival:
        await _rival_row(rival, booking_id)
        paying = asyncio.create_task(pay())
        await waiting_on_a_lock(ctx)  # the re-hold waits on the rival's row
    outcome, usable = await paying
    assert outcome == api.PaymentOutcome(confirmed=False, reason="unit-taken") and usable == 1
    assert len(await outbox(ctx, "bookings.late_payment_rejected")) == 1
    assert (await api.booking(ctx.db, booking_id))["status"] == "released"
    assert await ctx.db.fetchval(
        "SELECT outcome FROM bookings_payments WHERE booking_id = %s", (booking_id,)
    ) == "unit-taken"


async def test_a_re_hold_that_waits_too_long_is_busy_and_changes_nothing(client, ctx, buyer,
                                                                        units):
    booking_id = await _released(client, ctx, buyer, units["A-101"])
    with pytest.raises(GiveUp):
        async with ctx.db.transaction() as rival:
            await _rival_row(rival, booking_id)
            async with ctx.db.transaction() as tx:
                with pytest.raises(BookingBusy) as caught:
                    await api.record_payment_in(ctx, tx, PAYMENTS, booking_id,
                                                payment_id=uuid.uuid4(), amount_minor=1,
                                                currency="INR")
                assert caught.value.headers["Retry-After"] == "1"
                # The savepoint was undone, and the caller's lock_timeout put back.
                assert await tx.fetchval("SHOW lock_timeout") == "0"
            raise GiveUp  # the rival rolls back
    assert (await api.booking(ctx.db, booking_id))["status"] == "released"
    assert await ctx.db.fetchval("SELECT count(*) FROM bookings_payments") == 0
