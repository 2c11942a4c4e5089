"""``api.py`` as the payments plugin calls it: in its own transactions, with its own context
(here the catalogue's, which is any other plugin's), for payments and refunds it processed."""

from __future__ import annotations

import uuid

import pytest

from propmubi.actors import Actor
from propmubi.errors import NotFound
from propmubi.web.appkeys import SERVICES
from propmubi_plugins.bookings import api, service
from propmubi_plugins.bookings.errors import ExpiredHold, NotPayable
from propmubi_plugins.bookings.models import CancelIn
from propmubi_plugins.bookings.settlement import cancel
from tests.plugins.bookings.conftest import history, hold, outbox, run_out, unit_status

PAYMENTS = Actor.system("payments")


@pytest.fixture
def other_ctx(client):
    """Another plugin's context, as the payments plugin would pass its own."""
    return client.app[SERVICES].context("catalog")


async def pay(other_ctx, booking_id, amount=8_50_000_00, payment_id=None):
    async with other_ctx.db.transaction() as tx:
        return await api.record_payment_in(other_ctx, tx, PAYMENTS, uuid.UUID(str(booking_id)),
                                           payment_id=payment_id or uuid.uuid4(),
                                           amount_minor=amount, currency="INR")


async def test_start_payment_moves_a_hold_to_payment_pending(client, ctx, other_ctx, buyer,
                                                             make_user, units):
    booking = await hold(client, buyer, units["A-101"])
    booking_id = uuid.UUID(booking["id"])
    async with other_ctx.db.transaction() as tx:
        row = await api.start_payment_in(other_ctx, tx, buyer.actor, booking_id)
    assert row["status"] == "payment_pending" and row["amount_due_minor"] == 8_50_000_00
    async with other_ctx.db.transaction() as tx:  # again: it stays
        assert (await api.start_payment_in(other_ctx, tx, buyer.actor, booking_id)
                )["status"] == "payment_pending"
    assert len(await outbox(ctx, "bookings.payment_started")) == 1
    assert await unit_status(client, units["A-101"]) == "held"
    stranger = await make_user()
    with pytest.raises(NotFound):
        async with other_ctx.db.transaction() as tx:
            await api.start_payment_in(other_ctx, tx, stranger.actor, booking_id)
    with pytest.raises(NotFound):
        async with other_ctx.db.transaction() as tx:
            await api.start_payment_in(other_ctx, tx, buyer.actor, uuid.uuid4())
    assert (await api.booking(ctx.db, booking_id))["status"] == "payment_pending"
    assert api.LIVE_STATUSES == ("held", "payment_pending", "paid", "confirmed")


async def test_start_payment_of_an_expired_or_closed_booking_is_refused(client, ctx, other_ctx,
                                                                        buyer, units):
    booking = await hold(client, buyer, units["A-101"])
    await run_out(ctx, uuid.UUID(booking["id"]))
    with pytest.raises(ExpiredHold):
        async with other_ctx.db.transaction() as tx:
            await api.start_payment_in(other_ctx, tx, buyer.actor, uuid.UUID(booking["id"]))
    second = await hold(client, buyer, units["A-201"])
    await service.release(ctx, buyer.actor, uuid.UUID(second["id"]))
    with pytest.raises(NotPayable):
        async with other_ctx.db.transaction() as tx:
            await api.start_payment_in(other_ctx, tx, buyer.actor, uuid.UUID(second["id"]))


async def test_a_payment_confirms_the_booking(client, ctx, other_ctx, event_bus, buyer, units):
    booking = await hold(client, buyer, units["A-101"])
    booking_id = uuid.UUID(booking["id"])
    payment_id = uuid.uuid4()
    outcome = await pay(other_ctx, booking_id, payment_id=payment_id)
    assert outcome == api.PaymentOutcome(confirmed=True, reason=None)
    row = await api.booking(ctx.db, booking_id)
    assert (row["status"], row["captured_minor"]) == ("confirmed", 8_50_000_00)
    assert row["confirmed_at"] is not None
    assert await history(ctx, booking_id) == [(None, "held"), ("held", "paid"),
                                              ("paid", "confirmed")]
    (paid,) = await outbox(ctx, "bookings.booking_paid")
    assert paid["payment_id"] == str(payment_id) and paid["captured_minor"] == 8_50_000_00
    (confirmed,) = await outbox(ctx, "bookings.booking_confirmed")
    assert confirmed["late"] is False and confirmed["_actor"] == "system:payments"
    assert await unit_status(client, units["A-101"]) == "booked"
    # The same payment again: the same outcome, nothing changes.
    assert await pay(other_ctx, booking_id, payment_id=payment_id) == outcome
    assert (await api.booking(ctx.db, booking_id))["captured_minor"] == 8_50_000_00
    assert len(await outbox(ctx, "bookings.booking_paid")) == 1
    # Another payment of a paid booking is a duplicate the payments plugin refunds.
    assert await pay(other_ctx, booking_id) == api.PaymentOutcome(False, "already-paid")
    assert (await api.booking(ctx.db, booking_id))["captured_minor"] == 8_50_000_00
    await event_bus.drain()


async def test_a_payment_arriving_before_the_sweeper_still_confirms(client, ctx, other_ctx,
                                                                    buyer, units):
    booking = await hold(client, buyer, units["A-101"])
    await run_out(ctx, uuid.UUID(booking["id"]))
    assert (await pay(other_ctx, booking["id"])).confirmed
    assert (await api.booking(ctx.db, uuid.UUID(booking["id"])))["status"] == "confirmed"


async def test_a_late_payment_re_holds_a_free_unit(client, ctx, other_ctx, buyer, units):
    booking = await hold(client, buyer, units["A-101"])
    booking_id = uuid.UUID(booking["id"])
    await run_out(ctx, booking_id)
    assert await service.expire_holds(ctx) == 1
    assert await unit_status(client, units["A-101"]) == "available"
    assert await pay(other_ctx, booking_id) == api.PaymentOutcome(True, None)
    assert await history(ctx, booking_id) == [
        (None, "held"), ("held", "expired"), ("expired", "paid"), ("paid", "confirmed")]
    reasons = await ctx.db.fetch("SELECT reason FROM bookings_history WHERE booking_id = %s "
                                 "ORDER BY id", (booking_id,))
    assert [r["reason"] for r in reasons][-2:] == ["late payment accepted"] * 2
    assert (await outbox(ctx, "bookings.booking_confirmed"))[0]["late"] is True
    assert await unit_status(client, units["A-101"]) == "booked"


async def test_a_late_payment_for_a_taken_unit_is_rejected(client, ctx, other_ctx, buyer,
                                                           make_user, units):
    booking = await hold(client, buyer, units["A-101"])
    booking_id = uuid.UUID(booking["id"])
    await run_out(ctx, booking_id)
    rival = await hold(client, await make_user(), units["A-101"])
    payment_id = uuid.uuid4()
    async with other_ctx.db.transaction() as tx:
        outcome = await api.record_payment_in(other_ctx, tx, PAYMENTS, booking_id,
                                              payment_id=payment_id, amount_minor=8_50_000_00,
                                              currency="INR")
        assert await tx.fetchval("SELECT 1") == 1  # the caller's transaction is still usable
    assert outcome == api.PaymentOutcome(confirmed=False, reason="unit-taken")
    (rejected,) = await outbox(ctx, "bookings.late_payment_rejected")
    assert rejected == {"booking_id": str(booking_id), "payment_id": str(payment_id),
                        "amount_minor": 8_50_000_00, "currency": "INR",
                        "_actor": "system:payments"}
    assert (await api.booking(ctx.db, booking_id))["status"] == "expired"
    assert (await api.booking(ctx.db, uuid.UUID(rival["id"])))["status"] == "held"
    assert await pay(other_ctx, booking_id, payment_id=payment_id) == outcome  # idempotent
    assert len(await outbox(ctx, "bookings.late_payment_rejected")) == 1


async def test_a_closed_booking_refuses_payments(client, ctx, other_ctx, buyer, units):
    booking = await hold(client, buyer, units["A-101"])
    booking_id = uuid.UUID(booking["id"])
    await pay(other_ctx, booking_id)
    await cancel(ctx, buyer.actor, booking_id, CancelIn(reason_code="changed_mind"))
    assert await pay(other_ctx, booking_id) == api.PaymentOutcome(False, "booking-closed")


async def test_refunds_complete_a_cancellation(client, ctx, other_ctx, event_bus, buyer,
                                               units):
    booking = await hold(client, buyer, units["A-101"])
    booking_id = uuid.UUID(booking["id"])
    await pay(other_ctx, booking_id)
    await ctx.db.execute("UPDATE bookings_bookings SET confirmed_at = confirmed_at - interval "
                         "'3 days' WHERE id = %s", (booking_id,))
    cancelled = await cancel(ctx, buyer.actor, booking_id, CancelIn(reason_code="other"))
    # Past the 48 h free window: max(10,000 rupees, 2 % of the 85 lakh price = 1.7 lakh).
    assert (cancelled.fee_minor, cancelled.refund_minor) == (1_70_000_00, 6_80_000_00)
    first, second, refused = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()

    async def refund(refund_id, amount, cancellation=True):
        async with other_ctx.db.transaction() as tx:
            await api.record_refund_in(other_ctx, tx, PAYMENTS, booking_id,
                                       refund_id=refund_id, amount_minor=amount,
                                       cancellation=cancellation)

    # The refund of a second payment the booking refused, processed after the cancellation:
    # recorded, but it pays nothing of the cancellation back.
    await refund(refused, 8_50_000_00, cancellation=False)
    row = await api.booking(ctx.db, booking_id)
    assert (row["status"], row["refunded_minor"]) == ("cancelled", 0)
    await refund(first, 6_00_000_00)
    await refund(first, 6_00_000_00)  # the same refund again: nothing more
    row = await api.booking(ctx.db, booking_id)
    assert (row["status"], row["refunded_minor"]) == ("cancelled", 6_00_000_00)
    await refund(second, 80_000_00)
    row = await api.booking(ctx.db, booking_id)
    assert (row["status"], row["refunded_minor"]) == ("refunded", 6_80_000_00)
    assert await history(ctx, booking_id) == [
        (None, "held"), ("held", "paid"), ("paid", "confirmed"), ("confirmed", "cancelled"),
        ("cancelled", "refunded")]
    (event,) = await outbox(ctx, "bookings.booking_refunded")
    assert event["refunded_minor"] == 6_80_000_00
    await event_bus.drain()
