"""Event handlers of the search cache: cached search, suggest and feed answers that a
catalogue event made stale become unreachable (``cache.py``).

``catalog.project_created`` needs none: a draft is in no answer.
"""

from __future__ import annotations

from propmubi.db import Tx
from propmubi.events import Delivery
from propmubi_plugins.catalog.search import cache, store


async def on_published(tx: Tx, delivery: Delivery) -> None:
    """``catalog.project_published``: the project's city's answers."""
    await cache.invalidate(delivery.ctx, delivery.event.city)


async def on_project_changed(tx: Tx, delivery: Delivery) -> None:
    """``catalog.project_updated``, ``unit_status_changed``, ``price_changed``: the project's
    city's answers, or every answer when the project moved city."""
    event = delivery.event
    city = None
    if "city" not in (getattr(event, "fields", None) or ()):
        # A project that moved city changed two cities' answers: the old one is unknown here.
        city = await store.project_city(tx, event.project_id)
    await cache.invalidate(delivery.ctx, city)


async def on_deleted(tx: Tx, delivery: Delivery) -> None:
    """``catalog.project_deleted``: every answer (the project's city is gone with it)."""
    await cache.invalidate(delivery.ctx, None)
