"""Event handlers of the photos: the stored objects of deleted projects and units are removed
(their rows went with them, by ON DELETE CASCADE). Both are idempotent: a second run finds
nothing left to remove."""

from __future__ import annotations

from propmubi.db import Tx
from propmubi.events import Delivery


async def on_project_deleted(tx: Tx, delivery: Delivery) -> None:
    """``catalog.project_deleted``: every object under ``projects/<id>/``."""
    project_id = delivery.event.project_id
    removed = await delivery.ctx.storage.delete_prefix(f"projects/{project_id}/")
    delivery.ctx.log.info("removed %d media objects of deleted project %s", removed, project_id)


async def on_units_deleted(tx: Tx, delivery: Delivery) -> None:
    """``catalog.units_deleted``: each deleted unit's gallery objects."""
    event = delivery.event
    storage = delivery.ctx.storage
    removed = 0
    for unit_id in event.unit_ids:
        removed += await storage.delete_prefix(f"projects/{event.project_id}/units/{unit_id}/")
    delivery.ctx.log.info("removed %d media objects of %d deleted unit(s) of project %s",
                          removed, len(event.unit_ids), event.project_id)
