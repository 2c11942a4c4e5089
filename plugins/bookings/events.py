"""The events bookings publish, each in the transaction of the change it reports.

Every event is keyed by its booking (``aggregate="booking_id"``) and carries ids, statuses and
amounts only (minor units with their currency): never a name, a note or a reason someone typed.
"""

from __future__ import annotations

import datetime as dt
import uuid

import attrs

from propmubi.events import event


@event("bookings.unit_held", version=1, aggregate="booking_id")
@attrs.frozen
class UnitHeld:
    """A buyer took a hold on a unit until ``expires_at``."""

    booking_id: uuid.UUID
    unit_id: uuid.UUID
    project_id: uuid.UUID
    buyer_id: uuid.UUID
    expires_at: dt.datetime
    amount_due_minor: int
    currency: str


@event("bookings.hold_extended", version=1, aggregate="booking_id")
@attrs.frozen
class HoldExtended:
    """A hold now lasts until ``expires_at``."""

    booking_id: uuid.UUID
    unit_id: uuid.UUID
    buyer_id: uuid.UUID
    expires_at: dt.datetime
    extensions_left: int


@event("bookings.hold_released", version=1, aggregate="booking_id")
@attrs.frozen
class HoldReleased:
    """The buyer let a hold go; the unit is available again."""

    booking_id: uuid.UUID
    unit_id: uuid.UUID
    buyer_id: uuid.UUID


@event("bookings.hold_expired", version=1, aggregate="booking_id")
@attrs.frozen
class HoldExpired:
    """A hold (or a payment that never arrived) ran out of time; the unit is available."""

    booking_id: uuid.UUID
    unit_id: uuid.UUID
    buyer_id: uuid.UUID
    from_status: str


@event("bookings.payment_started", version=1, aggregate="booking_id")
@attrs.frozen
class PaymentStarted:
    """The buyer started paying the booking amount."""

    booking_id: uuid.UUID
    unit_id: uuid.UUID
    buyer_id: uuid.UUID
    amount_due_minor: int
    currency: str


@event("bookings.booking_paid", version=1, aggregate="booking_id")
@attrs.frozen
class BookingPaid:
    """A captured payment was recorded against the booking."""

    booking_id: uuid.UUID
    unit_id: uuid.UUID
    buyer_id: uuid.UUID
    payment_id: uuid.UUID
    amount_minor: int
    captured_minor: int
    currency: str


@event("bookings.booking_confirmed", version=1, aggregate="booking_id")
@attrs.frozen
class BookingConfirmed:
    """The booking is confirmed; the unit is booked. ``late``: the payment arrived after the
    hold expired and the unit was still free."""

    booking_id: uuid.UUID
    unit_id: uuid.UUID
    project_id: uuid.UUID
    buyer_id: uuid.UUID
    late: bool


@event("bookings.booking_cancelled", version=1, aggregate="booking_id")
@attrs.frozen
class BookingCancelled:
    """A confirmed booking was cancelled: ``refund_minor`` goes back to the buyer, ``fee_minor``
    is the cancellation fee of the project's terms; the unit is available again."""

    booking_id: uuid.UUID
    unit_id: uuid.UUID
    buyer_id: uuid.UUID
    refund_minor: int
    fee_minor: int
    currency: str


@event("bookings.booking_refunded", version=1, aggregate="booking_id")
@attrs.frozen
class BookingRefunded:
    """The refund of a cancelled booking was paid out in full."""

    booking_id: uuid.UUID
    unit_id: uuid.UUID
    buyer_id: uuid.UUID
    refunded_minor: int
    currency: str


@event("bookings.late_payment_rejected", version=1, aggregate="booking_id")
@attrs.frozen
class LatePaymentRejected:
    """A payment arrived for an expired or released booking whose unit is taken: it must be
    refunded in full."""

    booking_id: uuid.UUID
    payment_id: uuid.UUID
    amount_minor: int
    currency: str


#: Every event type of the plugin (``propmubi_event_types``).
EVENT_TYPES: tuple[type, ...] = (UnitHeld, HoldExtended, HoldReleased, HoldExpired,
                                 PaymentStarted, BookingPaid, BookingConfirmed,
                                 BookingCancelled, BookingRefunded, LatePaymentRejected)
