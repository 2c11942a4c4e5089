"""What the plugin does when events arrive (``propmubi_event_handlers``).

A handler is ``async def handler(tx, delivery)``. The worker runs it inside the transaction
that also marks the event processed for this plugin, so its writes and that mark commit
together; if it raises, nothing commits and the event is retried later. The bus skips an
event already processed, but delivery is at least once: write each effect so that a second
run changes nothing (here, the activity line's key is the event's id). ``delivery.event`` is
the typed event, ``delivery.ctx`` this plugin's context.

Subscribe to another plugin's events by their type name alone (never import its modules);
a type may map to several handlers, which run in order in the one transaction.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from propmubi.db import Tx
from propmubi.events import Delivery
from propmubi_plugins.payments import store

Handler = Callable[[Tx, Delivery], Awaitable[None]]


async def record_activity(tx: Tx, delivery: Delivery) -> None:
    """Add the "created" line of the item to the activity log, once per event."""
    created = delivery.event
    await store.add_activity(tx, delivery.id, created.item_id, f"created “{created.title}”")


def subscriptions() -> dict[str, list[Handler]]:
    """Event type -> its handlers, run in this order."""
    return {"payments.item_created": [record_activity]}
