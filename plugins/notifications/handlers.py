"""What the plugin does when events arrive:

- ``notifications.notification_requested`` sends the notification's deliveries;
- ``auth.user_erased`` forgets the erased user (service.erase_user_in): addresses masked,
  rendered values cleared, opt-outs and devices deleted, dev outbox entries removed.

The erasure runs in the transaction it is given; the dev outbox's entries (Redis) are removed
last, so that a failure there rolls the rest back and the event is retried. Running it again
changes nothing.

Unlike most handlers, the sending one does not do its work in the transaction it is given: each
send must be claimed in a committed transaction *before* the provider is called, and its
outcome recorded in another (delivery.py), so that no message is ever sent twice. Running
again is harmless: a delivery that is sent, being sent or deferred is not claimed. The
handler stops starting new sends before ``events.handler_timeout``; the ``send_due`` job
finishes whatever it left.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from propmubi.db import Tx
from propmubi.events import Delivery
from propmubi_plugins.notifications import delivery, service

Handler = Callable[[Tx, Delivery], Awaitable[None]]

#: Seconds of the handler's time limit left unused (recording the last outcome).
MARGIN = 5.0


async def send_requested(tx: Tx, event: Delivery) -> None:
    """Send the due deliveries of the requested notification."""
    ctx = event.ctx
    deadline = ctx.clock.monotonic() + ctx.config.events.handler_timeout - MARGIN
    await delivery.deliver_notification(ctx, event.event.notification_id, deadline=deadline)


async def on_user_erased(tx: Tx, event: Delivery) -> None:
    """Forget the erased user: the ledger, preferences, devices, the dev outbox."""
    ctx = event.ctx
    user_id = event.event.user_id
    addresses = await service.erase_user_in(ctx, tx, service.PRIVACY, user_id)
    await delivery.scrub_dev_outbox(ctx, user_id, addresses)


def subscriptions() -> dict[str, list[Handler]]:
    """Event type -> its handlers, run in this order."""
    return {"notifications.notification_requested": [send_requested],
            "auth.user_erased": [on_user_erased]}
