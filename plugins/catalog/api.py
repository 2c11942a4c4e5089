"""What other plugins may ask the catalogue (declare ``requires=("catalog",)``).

Mostly queries, in the caller's database or transaction. Two writes exist because the state
they set belongs to another plugin's workflow and must commit with it:
:func:`set_builder_verified` (the legal plugin, when a builder's documents are verified or
rejected) and :func:`set_unit_status` (bookings, when a unit is held, booked, sold or
released); both run in the caller's transaction and publish the catalogue's events in it.
Writes take the calling plugin's own context (any plugin's: the catalogue's is found through
it), the transaction and the :class:`~propmubi.actors.Actor` recorded on the events.
"""

from __future__ import annotations

import uuid
from typing import Any

from propmubi.actors import Actor
from propmubi.context import PluginContext
from propmubi.db import Database, Tx
from propmubi_plugins.catalog import service, store
from propmubi_plugins.catalog.units import models as units_models
from propmubi_plugins.catalog.units import service as units_service
from propmubi_plugins.catalog.units import store as units_store

#: Unit statuses (``available``, ``held``, ``booked``, ``sold``, ``blocked``).
UNIT_STATUSES = units_models.UNIT_STATUSES


async def builder(q: Database | Tx, builder_id: uuid.UUID) -> dict[str, Any] | None:
    """A builder: id, owner_user_id, name, slug, rera_promoter_id, verified, ..."""
    return await store.builder(q, builder_id)


async def project(q: Database | Tx, project_id: uuid.UUID) -> dict[str, Any] | None:
    """A project in any moderation state (check ``moderation`` before showing it), with its
    builder's ``owner_user_id``, ``builder_name`` and derived price columns."""
    return await store.project(q, project_id)


async def unit(q: Database | Tx, unit_id: uuid.UUID) -> dict[str, Any] | None:
    """A unit: project_id, tower_id, code, price_minor, currency, status, ..."""
    return await units_store.unit(q, unit_id)


async def set_builder_verified(ctx: PluginContext[Any, Any], tx: Tx, actor: Actor,
                               builder_id: uuid.UUID, verified: bool) -> bool:
    """Set a builder's verified badge in ``tx``; False when the builder does not exist."""
    return await service.set_builder_verified_in(ctx.services.context("catalog"), tx, actor,
                                                 builder_id, verified)


async def set_unit_status(ctx: PluginContext[Any, Any], tx: Tx, actor: Actor,
                          unit_id: uuid.UUID, status: str) -> dict[str, Any] | None:
    """Move a unit's status in ``tx`` (recomputes its project, publishes
    ``catalog.unit_status_changed`` with ``actor.ref``); None for an unknown unit."""
    return await units_service.set_unit_status_in(ctx.services.context("catalog"), tx, actor,
                                                  unit_id, status)
