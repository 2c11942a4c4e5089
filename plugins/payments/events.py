"""The events the payments plugin publishes (``propmubi events catalog``).

Each carries ids, amounts in integer minor units and the currency; never card data, never
free text about a person. They are published in the transaction that made the change.
``webhook_received`` and ``refund_requested`` are the plugin's own work queue: the webhook
endpoint stores a provider event and answers at once, and the worker applies it; a refund row
is written with the change that caused it, and the worker asks the provider for it.
"""

from __future__ import annotations

import uuid

import attrs

from propmubi.events import event


@event("payments.intent_created", version=1, aggregate="intent_id")
@attrs.frozen
class IntentCreated:
    """A payment intent was opened with a provider for a booking's amount."""

    intent_id: uuid.UUID
    booking_id: uuid.UUID
    provider: str
    amount_minor: int
    currency: str


@event("payments.webhook_received", version=1, aggregate="event_row_id")
@attrs.frozen
class WebhookReceived:
    """A provider event was verified and stored (once per provider event id); the worker
    applies it."""

    event_row_id: uuid.UUID
    provider: str


@event("payments.payment_authorized", version=1, aggregate="intent_id")
@attrs.frozen
class PaymentAuthorized:
    """The provider authorised the payment of an intent (possibly after a failure: a late
    authorisation)."""

    intent_id: uuid.UUID
    booking_id: uuid.UUID


@event("payments.payment_captured", version=1, aggregate="intent_id")
@attrs.frozen
class PaymentCaptured:
    """Money was captured for an intent. ``booking_outcome`` is ``confirmed`` or why the
    booking refused it (``unit-taken``, ``already-paid``, ``booking-closed``): a refused
    payment is refunded in full, automatically."""

    intent_id: uuid.UUID
    booking_id: uuid.UUID
    amount_minor: int
    currency: str
    booking_outcome: str


@event("payments.payment_failed", version=1, aggregate="intent_id")
@attrs.frozen
class PaymentFailed:
    """The provider reported the payment of an intent failed; the booking's hold is kept and
    the buyer may try again with a new intent."""

    intent_id: uuid.UUID
    booking_id: uuid.UUID


@event("payments.refund_requested", version=1, aggregate="refund_id")
@attrs.frozen
class RefundRequested:
    """A refund was decided (a cancellation, a refused payment, an admin); the worker asks
    the provider for it."""

    refund_id: uuid.UUID
    intent_id: uuid.UUID
    booking_id: uuid.UUID
    amount_minor: int
    currency: str
    reason: str


@event("payments.refund_processed", version=1, aggregate="refund_id")
@attrs.frozen
class RefundProcessed:
    """The provider processed a refund: the money is on its way back to the buyer."""

    refund_id: uuid.UUID
    intent_id: uuid.UUID
    booking_id: uuid.UUID
    amount_minor: int
    currency: str


@event("payments.refund_failed", version=1, aggregate="refund_id")
@attrs.frozen
class RefundFailed:
    """The provider refused or failed a refund; staff see it in the console and may issue
    it again."""

    refund_id: uuid.UUID
    intent_id: uuid.UUID
    booking_id: uuid.UUID
    amount_minor: int
    currency: str


#: Every event type of the plugin (``propmubi_event_types``).
EVENT_TYPES: tuple[type, ...] = (IntentCreated, WebhookReceived, PaymentAuthorized,
                                 PaymentCaptured, PaymentFailed, RefundRequested,
                                 RefundProcessed, RefundFailed)
