"""What bookings do when events arrive: ``auth.user_erased`` clears the notes typed into the
erased buyer's booking histories (the bookings, their amounts and statuses stay: they are the
record of a sale)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from propmubi.db import Tx
from propmubi.events import Delivery
from propmubi_plugins.bookings import store

Handler = Callable[[Tx, Delivery], Awaitable[None]]


async def on_user_erased(tx: Tx, delivery: Delivery) -> None:
    """Forget the notes of the erased user's booking histories (a second run finds none)."""
    await store.forget_notes(tx, delivery.event.user_id)


def subscriptions() -> dict[str, list[Handler]]:
    """Event type -> its handlers, run in this order."""
    return {"auth.user_erased": [on_user_erased]}
