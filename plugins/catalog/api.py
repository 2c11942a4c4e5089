"""What other plugins may ask the catalogue (declare ``requires=("catalog",)``).

Mostly queries. Two writes exist because the state they set belongs to another plugin's
workflow and must commit with it: :func:`set_builder_verified` (the legal plugin, when a
builder's documents are verified or rejected) and :func:`set_unit_status` (bookings, when a
unit is held, booked, sold or released); both run in the caller's transaction and publish the
catalogue's events in it.
"""

from __future__ import annotations

import uuid
from typing import Any

from propmubi.db import Database, Tx
from propmubi_plugins.catalog import inputs, service, store

#: Unit statuses (``available``, ``held``, ``booked``, ``sold``, ``blocked``).
UNIT_STATUSES = inputs.UNIT_STATUSES


async def builder(q: Database | Tx, builder_id: uuid.UUID) -> dict[str, Any] | None:
    """A builder: id, owner_user_id, name, slug, rera_promoter_id, verified, ..."""
    return await store.builder(q, builder_id)


async def builder_of_user(q: Database | Tx, user_id: uuid.UUID) -> dict[str, Any] | None:
    """The builder a user manages, if any."""
    return await store.builder_of_owner(q, user_id)


async def project(q: Database | Tx, project_id: uuid.UUID) -> dict[str, Any] | None:
    """A project in any moderation state (check ``moderation`` before showing it), with its
    builder's ``owner_user_id``, ``builder_name`` and derived price columns."""
    return await store.project(q, project_id)


async def unit(q: Database | Tx, unit_id: uuid.UUID) -> dict[str, Any] | None:
    """A unit: project_id, tower_id, code, price_minor, currency, status, ..."""
    return await store.unit(q, unit_id)


async def set_builder_verified(tx: Tx, builder_id: uuid.UUID, verified: bool) -> bool:
    """Set a builder's verified badge in ``tx``; False when the builder does not exist."""
    return await service.set_builder_verified(tx, builder_id, verified)


async def set_unit_status(tx: Tx, unit_id: uuid.UUID, status: str, actor: str
                          ) -> dict[str, Any] | None:
    """Move a unit's status in ``tx`` (recomputes its project, publishes
    ``catalog.unit_status_changed``); None for an unknown unit."""
    return await service.set_unit_status_in(tx, unit_id, status, actor)
