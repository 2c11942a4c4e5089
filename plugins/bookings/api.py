"""What other plugins may ask of bookings (declare ``requires=("bookings",)``): the payments
plugin reads a booking, starts its payment and records the payments and refunds it processes.

The writes run in the caller's transaction and take the caller's own context (any plugin's:
bookings' is found through it) and the :class:`~propmubi.actors.Actor` their history rows and
events record. Their semantics are in :mod:`propmubi_plugins.bookings.settlement`.
"""

from __future__ import annotations

import uuid
from typing import Any

from propmubi.actors import Actor
from propmubi.context import PluginContext
from propmubi.db import Database, Tx
from propmubi_plugins.bookings import models, settlement, store
from propmubi_plugins.bookings.settlement import PaymentOutcome

__all__ = ["LIVE_STATUSES", "PaymentOutcome", "booking", "record_payment_in",
           "record_refund_in", "start_payment_in"]

#: The statuses in which a booking keeps its unit (at most one booking per unit).
LIVE_STATUSES: tuple[str, ...] = models.LIVE_STATUSES


def _own(ctx: PluginContext[Any, Any]) -> Any:
    return ctx.services.context("bookings")


async def booking(q: Database | Tx, booking_id: uuid.UUID) -> dict[str, Any] | None:
    """A booking as stored (no lazy expiry): id, unit_id, project_id, buyer_id, status,
    price_minor, currency, amount_due_minor, rera_cap_minor, captured_minor, refunded_minor,
    fee_minor, refund_minor, held_at, expires_at, ceiling_at, confirmed_at, cancelled_at, ...;
    None when there is no such booking."""
    return await store.booking(q, booking_id)


async def start_payment_in(ctx: PluginContext[Any, Any], tx: Tx, actor: Actor,
                           booking_id: uuid.UUID) -> dict[str, Any]:
    """Lock the booking (``lock_timeout``), expire it if its time ran out, check that the
    actor is its buyer, move held -> payment_pending (payment_pending stays); the booking.

    :raises NotFound: unknown, or not the actor's.
    :raises Conflict: ``hold-expired`` or ``booking-not-payable``.
    :raises ServiceUnavailable: ``booking-busy``, the row stayed locked.
    """
    return await settlement.start_payment_in(_own(ctx), tx, actor, booking_id)


async def record_payment_in(ctx: PluginContext[Any, Any], tx: Tx, actor: Actor,
                            booking_id: uuid.UUID, *, payment_id: uuid.UUID, amount_minor: int,
                            currency: str) -> PaymentOutcome:
    """A captured payment arrived: confirm the booking (re-holding an expired or released
    one whose unit is free), or say why not (``unit-taken``, publishing
    ``bookings.late_payment_rejected``; ``already-paid``; ``booking-closed``). Idempotent per
    ``payment_id``.

    :raises NotFound: no such booking.
    """
    return await settlement.record_payment_in(_own(ctx), tx, actor, booking_id,
                                              payment_id=payment_id, amount_minor=amount_minor,
                                              currency=currency)


async def record_refund_in(ctx: PluginContext[Any, Any], tx: Tx, actor: Actor,
                           booking_id: uuid.UUID, *, refund_id: uuid.UUID,
                           amount_minor: int, cancellation: bool) -> None:
    """A refund of this booking was processed (idempotent per ``refund_id``).
    ``cancellation``: it pays out the booking's cancellation (the refund of a payment the
    booking refused does not count, even when the booking is cancelled by now); a cancelled
    booking whose cancellation refunds reach its ``refund_minor`` becomes refunded.

    :raises NotFound: no such booking.
    """
    await settlement.record_refund_in(_own(ctx), tx, actor, booking_id, refund_id=refund_id,
                                      amount_minor=amount_minor, cancellation=cancellation)
