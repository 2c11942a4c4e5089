"""Events the catalogue publishes (its part of the event catalog).

Search, suggest and feed caches are invalidated by these events, and other plugins (alerts,
webhooks, bookings) react to them. Money is in minor units with its currency.
"""

from __future__ import annotations

import uuid

import attrs

from propmubi.events import event


@event("catalog.project_created", version=1, aggregate="project_id")
@attrs.frozen
class ProjectCreated:
    """A builder (or staff) created a project; it starts as a draft."""

    project_id: uuid.UUID
    builder_id: uuid.UUID
    name: str
    city: str


@event("catalog.project_updated", version=1, aggregate="project_id")
@attrs.frozen
class ProjectUpdated:
    """A project's details, towers or units changed; ``fields`` names what changed, and
    ``moderation`` is its state after the change (submitted, rejected and unpublished
    projects are updates too, with ``reason`` for a rejection)."""

    project_id: uuid.UUID
    builder_id: uuid.UUID
    fields: list[str]
    moderation: str
    reason: str | None = None


@event("catalog.project_published", version=1, aggregate="project_id")
@attrs.frozen
class ProjectPublished:
    """Staff published a project: it is now public (search, feed, detail)."""

    project_id: uuid.UUID
    builder_id: uuid.UUID
    city: str


@event("catalog.project_deleted", version=1, aggregate="project_id")
@attrs.frozen
class ProjectDeleted:
    """A project and its towers, units and media were deleted."""

    project_id: uuid.UUID
    builder_id: uuid.UUID


@event("catalog.units_deleted", version=1, aggregate="project_id")
@attrs.frozen
class UnitsDeleted:
    """Units were deleted: one unit, or every unit of a deleted tower (``tower_id`` set)."""

    project_id: uuid.UUID
    unit_ids: list[uuid.UUID]
    tower_id: uuid.UUID | None = None


@event("catalog.unit_status_changed", version=1, aggregate="unit_id")
@attrs.frozen
class UnitStatusChanged:
    """A unit's status moved (available, held, booked, sold, blocked)."""

    project_id: uuid.UUID
    unit_id: uuid.UUID
    old_status: str
    new_status: str


@event("catalog.price_changed", version=1, aggregate="project_id")
@attrs.frozen
class PriceChanged:
    """A unit's price changed."""

    project_id: uuid.UUID
    unit_id: uuid.UUID
    old_price_minor: int
    new_price_minor: int
    currency: str


@event("catalog.builder_verification_changed", version=1, aggregate="builder_id")
@attrs.frozen
class BuilderVerificationChanged:
    """A builder's verified badge was set or removed: by its owner's KYC decision, by staff
    by hand, or by a plugin (legal). The reason of a change by hand stays in the builder's
    verification history, not in the event."""

    builder_id: uuid.UUID
    verified: bool


EVENT_TYPES: list[type] = [ProjectCreated, ProjectUpdated, ProjectPublished, ProjectDeleted,
                           UnitsDeleted, UnitStatusChanged, PriceChanged,
                           BuilderVerificationChanged]
