"""What the catalogue does when events arrive, as lists of handlers per event type: the search
cache forgets what an event made stale (``search/handlers.py``), the stored photos of deleted
projects and units are removed (``media/handlers.py``), and a user who erased their account
stops being the manager of a builder (the builder, a company, stays).

The core runs the handlers of one event in the order listed, in the one transaction the bus
gives the catalogue's consumer group.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from propmubi.db import Tx
from propmubi.events import Delivery
from propmubi_plugins.catalog import store
from propmubi_plugins.catalog.media import handlers as media
from propmubi_plugins.catalog.search import handlers as search

Handler = Callable[[Tx, Delivery], Awaitable[Any]]


async def on_user_erased(tx: Tx, delivery: Delivery) -> None:
    """``auth.user_erased``: the builder profile loses its link to the person."""
    await store.detach_owner(tx, delivery.event.user_id)


def handlers() -> Mapping[str, list[Handler]]:
    """Event type -> its handlers, in order."""
    return {
        "catalog.project_published": [search.on_published],
        "catalog.project_updated": [search.on_project_changed],
        "catalog.project_deleted": [search.on_deleted, media.on_project_deleted],
        "catalog.units_deleted": [media.on_units_deleted],
        "catalog.unit_status_changed": [search.on_project_changed],
        "catalog.price_changed": [search.on_project_changed],
        "auth.user_erased": [on_user_erased],
    }
