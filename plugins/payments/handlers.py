"""What the payments plugin does when events arrive.

- ``payments.webhook_received``: apply the stored provider event (``processing.py``).
- ``payments.payment_authorized``: capture it (its answer is applied like a webhook).
- ``payments.refund_requested``: ask the provider for the refund.
- ``bookings.booking_cancelled``: refund what the cancellation policy left to refund,
  across the booking's captured intents (once per booking and intent).

Each runs in the worker's transaction for this plugin; each is idempotent (an event row is
applied once, a refund is sent once, a cancellation's refunds are keyed by booking and
intent).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from propmubi.actors import Actor
from propmubi.db import Tx
from propmubi.events import Delivery
from propmubi_plugins.payments import processing, service

Handler = Callable[[Tx, Delivery], Awaitable[None]]


async def on_webhook_received(tx: Tx, delivery: Delivery) -> None:
    """Apply a stored provider event."""
    await processing.apply_event_in(delivery.ctx, tx, delivery.event.event_row_id)


async def on_payment_authorized(tx: Tx, delivery: Delivery) -> None:
    """Capture an authorised payment."""
    await processing.capture_in(delivery.ctx, tx, delivery.event.intent_id)


async def on_refund_requested(tx: Tx, delivery: Delivery) -> None:
    """Send a decided refund to its provider."""
    await processing.send_refund_in(delivery.ctx, tx, delivery.event.refund_id)


async def on_booking_cancelled(tx: Tx, delivery: Delivery) -> None:
    """Refund what the booking's cancellation left to refund."""
    event = delivery.event
    if event.refund_minor > 0:
        await service.refunds_for_cancellation_in(
            delivery.ctx, tx, Actor.system("cancellation"), event.booking_id,
            event.refund_minor)


def subscriptions() -> dict[str, list[Handler]]:
    """Event type -> its handlers, run in this order."""
    return {"payments.webhook_received": [on_webhook_received],
            "payments.payment_authorized": [on_payment_authorized],
            "payments.refund_requested": [on_refund_requested],
            "bookings.booking_cancelled": [on_booking_cancelled]}
