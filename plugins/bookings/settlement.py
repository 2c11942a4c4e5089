"""Money against bookings: a payment starting and arriving, cancellation with its fee and
refund, and refunds paid out. The payments plugin calls the ``_in`` functions through
``api.py``, in its own transactions; cancellation is the buyer's (or an admin's) through the
API and the console.

- **start_payment_in**: held -> payment_pending (a booking already payment_pending stays).
- **record_payment_in**: held / payment_pending (even past ``expires_at``, before the sweeper
  ran) -> paid -> confirmed. Expired or released: re-held if the unit has no live booking
  (expired -> paid -> confirmed, "late payment accepted"), else refused ("unit-taken") with
  ``bookings.late_payment_rejected``. The re-hold runs in a savepoint, so the unique index's
  refusal leaves the caller's transaction usable. Each payment id is recorded once with what
  it did; a second call returns that and changes nothing.
- **cancel**: confirmed -> cancelled; the fee and refund follow the terms the hold was taken
  under (``money.cancellation``).
- **record_refund_in**: idempotent per refund id; a cancelled booking whose refunds reach its
  ``refund_minor`` becomes refunded.
"""

from __future__ import annotations

import uuid
from typing import Any

import attrs

from propmubi.actors import Actor
from propmubi.db import DatabaseError, Tx
from propmubi.errors import Forbidden, NotFound
from propmubi_plugins.bookings import errors, money, store
from propmubi_plugins.bookings.events import (
    BookingCancelled,
    BookingConfirmed,
    BookingPaid,
    BookingRefunded,
    LatePaymentRejected,
    PaymentStarted,
)
from propmubi_plugins.bookings.models import BookingOut, CancelIn, booking_out
from propmubi_plugins.bookings.service import may_see
from propmubi_plugins.bookings.state import Ctx
from propmubi_plugins.bookings.transitions import expire, is_stale, locking, move
from propmubi_plugins.catalog import api as catalog

_SAVEPOINT = "bookings_late_payment"


@attrs.frozen
class PaymentOutcome:
    """What a captured payment did: confirmed the booking, or not and why (``unit-taken``,
    ``already-paid``, ``booking-closed``: the payments plugin then refunds it in full)."""

    confirmed: bool
    reason: str | None


async def _locked(tx: Tx, booking_id: uuid.UUID) -> dict[str, Any]:
    row = await store.booking(tx, booking_id, lock=True)
    if row is None:
        raise NotFound(f"no booking {booking_id}")
    return row


async def start_payment_in(ctx: Ctx, tx: Tx, actor: Actor, booking_id: uuid.UUID
                           ) -> dict[str, Any]:
    """Start paying a hold, in the caller's transaction; the booking row.

    :raises NotFound: no such booking, or not the actor's.
    :raises ExpiredHold: its time ran out (it is expired in ``tx``).
    :raises NotPayable: it is not a hold or a pending payment.
    """
    async with locking(ctx, tx):
        row = await _locked(tx, booking_id)
        if actor.user_id != row["buyer_id"]:
            raise NotFound(f"no booking {booking_id}")
        if is_stale(row, ctx.clock.now()):
            row = await expire(ctx, tx, row, "expired on access")
        if row["status"] == "expired":
            raise errors.ExpiredHold("the hold has expired")
        if row["status"] == "held":
            row = await move(ctx, tx, actor, row, "payment_pending", reason="payment started",
                             event=PaymentStarted(
                                 booking_id=row["id"], unit_id=row["unit_id"],
                                 buyer_id=row["buyer_id"],
                                 amount_due_minor=row["amount_due_minor"],
                                 currency=row["currency"]))
        elif row["status"] != "payment_pending":
            raise errors.NotPayable(f"the booking is {row['status']}")
    return row


async def _confirm(ctx: Ctx, tx: Tx, actor: Actor, row: dict[str, Any], late: bool) -> None:
    """paid -> confirmed after ``row`` was moved to paid (the unit becomes booked)."""
    reason = "late payment accepted" if late else "booking amount received"
    await move(ctx, tx, actor, row, "confirmed", reason=reason,
               changes={"confirmed_at": ctx.clock.now()}, event=BookingConfirmed(
                   booking_id=row["id"], unit_id=row["unit_id"], project_id=row["project_id"],
                   buyer_id=row["buyer_id"], late=late))


def _paid(row: dict[str, Any], payment_id: uuid.UUID, amount: int) -> BookingPaid:
    return BookingPaid(booking_id=row["id"], unit_id=row["unit_id"], buyer_id=row["buyer_id"],
                       payment_id=payment_id, amount_minor=amount,
                       captured_minor=row["captured_minor"] + amount, currency=row["currency"])


async def _rehold(ctx: Ctx, tx: Tx, actor: Actor, row: dict[str, Any], payment_id: uuid.UUID,
                  amount: int) -> dict[str, Any] | None:
    """expired/released -> paid in a savepoint, when the unit is free; the paid row, or None
    when the unit is taken (the savepoint undone, ``tx`` still usable)."""
    if await store.live_on_unit(tx, row["unit_id"]) is not None:
        return None
    unit = await catalog.unit(tx, row["unit_id"])
    if unit is None or unit["status"] != "available":
        return None
    await tx.execute(f"SAVEPOINT {_SAVEPOINT}")
    try:
        paid = await move(ctx, tx, actor, row, "paid", reason="late payment accepted",
                          changes={"captured_minor": row["captured_minor"] + amount},
                          event=_paid(row, payment_id, amount))
    except DatabaseError as exc:
        await tx.execute(f"ROLLBACK TO SAVEPOINT {_SAVEPOINT}")
        if errors.is_live_unit_violation(exc):
            return None
        raise
    await tx.execute(f"RELEASE SAVEPOINT {_SAVEPOINT}")
    return paid


async def record_payment_in(ctx: Ctx, tx: Tx, actor: Actor, booking_id: uuid.UUID, *,
                            payment_id: uuid.UUID, amount_minor: int, currency: str
                            ) -> PaymentOutcome:
    """Record a captured payment of a booking, in the caller's transaction (see the module's
    docstring); what it did.

    :raises NotFound: no such booking.
    """
    money.amount(amount_minor)
    async with locking(ctx, tx):
        row = await _locked(tx, booking_id)
        seen = await store.payment(tx, payment_id)
        if seen is not None:
            outcome = seen["outcome"]
            return PaymentOutcome(confirmed=outcome == "confirmed",
                                  reason=None if outcome == "confirmed" else outcome)
        outcome = await _apply_payment(ctx, tx, actor, row, payment_id, amount_minor, currency)
        await store.add_payment(tx, payment_id, booking_id, amount_minor, currency, outcome,
                                ctx.clock.now())
    return PaymentOutcome(confirmed=outcome == "confirmed",
                          reason=None if outcome == "confirmed" else outcome)


async def _apply_payment(ctx: Ctx, tx: Tx, actor: Actor, row: dict[str, Any],
                         payment_id: uuid.UUID, amount: int, currency: str) -> str:
    status = row["status"]
    if status in ("held", "payment_pending"):
        paid = await move(ctx, tx, actor, row, "paid", reason="payment captured",
                          changes={"captured_minor": row["captured_minor"] + amount},
                          event=_paid(row, payment_id, amount))
        await _confirm(ctx, tx, actor, paid, late=False)
        return "confirmed"
    if status in ("expired", "released"):
        reheld = await _rehold(ctx, tx, actor, row, payment_id, amount)
        if reheld is None:
            await ctx.publish(tx, LatePaymentRejected(
                booking_id=row["id"], payment_id=payment_id, amount_minor=amount,
                currency=currency), actor=actor.ref)
            return "unit-taken"
        await _confirm(ctx, tx, actor, reheld, late=True)
        return "confirmed"
    if status in ("paid", "confirmed"):
        return "already-paid"
    return "booking-closed"


async def record_refund_in(ctx: Ctx, tx: Tx, actor: Actor, booking_id: uuid.UUID, *,
                           refund_id: uuid.UUID, amount_minor: int,
                           cancellation: bool) -> None:
    """Record a processed refund of a booking, in the caller's transaction (once per refund
    id). A cancellation's refund of a cancelled booking counts towards its ``refund_minor``;
    when they reach it, the booking becomes refunded (``bookings.booking_refunded``). The
    refund of a payment the booking refused (a second payment, a late one) is recorded but
    pays nothing of the cancellation back, whenever it is processed.

    :raises NotFound: no such booking.
    """
    money.amount(amount_minor)
    async with locking(ctx, tx):
        row = await _locked(tx, booking_id)
        cancelled = cancellation and row["status"] == "cancelled"
        if not await store.add_refund(tx, refund_id, booking_id, amount_minor, cancelled,
                                      ctx.clock.now()):
            return
        if not cancelled:
            return
        refunded = row["refunded_minor"] + amount_minor
        if refunded < row["refund_minor"]:
            await store.update(tx, booking_id, "cancelled", ctx.clock.now(),
                               {"refunded_minor": refunded})
            return
        await move(ctx, tx, actor, row, "refunded", reason="refund paid out",
                   changes={"refunded_minor": refunded}, event=BookingRefunded(
                       booking_id=row["id"], unit_id=row["unit_id"], buyer_id=row["buyer_id"],
                       refunded_minor=refunded, currency=row["currency"]))


async def cancel(ctx: Ctx, actor: Actor, booking_id: uuid.UUID, data: CancelIn) -> BookingOut:
    """Cancel a confirmed booking (its buyer, or an admin): the fee and refund of its terms;
    the unit becomes available.

    :raises NotFound: no such booking, or another buyer's.
    :raises Forbidden: staff who are not admins.
    :raises NotCancellable: the booking is not confirmed.
    """
    async with ctx.db.transaction() as tx, locking(ctx, tx):
        row = await _locked(tx, booking_id)
        if not may_see(actor, row):
            raise NotFound(f"no booking {booking_id}")
        if actor.user_id != row["buyer_id"] and "admin" not in actor.roles:
            raise Forbidden("only the buyer or an admin cancels a booking")
        if row["status"] != "confirmed":
            raise errors.NotCancellable(f"the booking is {row['status']}, not confirmed")
        now = ctx.clock.now()
        fee, refund = money.cancellation(
            captured_minor=row["captured_minor"], price_minor=row["price_minor"],
            confirmed_at=row["confirmed_at"], now=now,
            free_cancel_hours=row["free_cancel_hours"],
            fee_fixed_minor=row["fee_fixed_minor"], fee_bps=row["fee_bps"])
        row = await move(ctx, tx, actor, row, "cancelled", reason=data.reason_code,
                         note=data.note or None,
                         changes={"fee_minor": fee, "refund_minor": refund,
                                  "cancelled_at": now},
                         event=BookingCancelled(
                             booking_id=row["id"], unit_id=row["unit_id"],
                             buyer_id=row["buyer_id"], refund_minor=refund, fee_minor=fee,
                             currency=row["currency"]))
    return booking_out(row)
