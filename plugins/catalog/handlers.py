"""What the catalogue does when events arrive: its caches forget what an event made stale
(``cache.py``), the media objects of deleted projects and units are removed (``media.py``), and
a user who erased their account stops being the manager of a builder (the builder, a company,
stays).

A plugin has one handler per event type; this module runs each part's handler in turn, in the
one transaction the bus gives the plugin's group.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from propmubi.db import Tx
from propmubi.events import Delivery
from propmubi_plugins.catalog import cache, media, store

Handler = Callable[[Tx, Delivery], Awaitable[Any]]


def _chain(parts: list[Handler]) -> Handler:
    async def handle(tx: Tx, delivery: Delivery) -> None:
        for part in parts:
            await part(tx, delivery)

    return handle


async def on_user_erased(tx: Tx, delivery: Delivery) -> None:
    """``auth.user_erased``: the builder profile loses its link to the person."""
    await store.detach_owner(tx, delivery.event.user_id)


def handlers() -> Mapping[str, Handler]:
    """Event type -> handler (each part's handlers for that type, in order)."""
    combined: dict[str, list[Handler]] = {}
    own: dict[str, Handler] = {"auth.user_erased": on_user_erased}
    for offered in (cache.handlers(), media.handlers(), own):
        for event_type, handler in offered.items():
            combined.setdefault(event_type, []).append(handler)
    return {t: parts[0] if len(parts) == 1 else _chain(parts) for t, parts in combined.items()}
