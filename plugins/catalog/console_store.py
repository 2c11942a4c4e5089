"""SQL that only the catalogue's console pages need: the builder directory with project counts,
the moderation queue and its dashboard numbers, and a project's units for the unit grid.

Every statement is parameterised; reads only (changes go through the service).
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from propmubi.db import Database

#: A unit grid shows at most this many units (a tower block is a few hundred at most).
GRID_MAX = 5000


def _prefix_pattern(text: str) -> str:
    """A LIKE pattern matching names that start with ``text`` (its wildcards escaped)."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.lower() + "%"


async def builders(db: Database, name_prefix: str | None,
                   before: tuple[dt.datetime, uuid.UUID] | None, limit: int
                   ) -> list[dict[str, Any]]:
    """Builders, newest first, optionally whose name starts with ``name_prefix``
    (case-insensitive), before a ``(created_at, id)`` keyset cursor; each with its project
    counts by moderation state."""
    return await db.fetch(
        "SELECT b.id, b.name, b.rera_promoter_id, b.verified, b.owner_user_id, b.created_at, "
        "c.draft, c.in_review, c.published, c.rejected "
        "FROM catalog_builders b "
        "CROSS JOIN LATERAL (SELECT "
        "count(*) FILTER (WHERE p.moderation = 'draft')::integer AS draft, "
        "count(*) FILTER (WHERE p.moderation = 'in_review')::integer AS in_review, "
        "count(*) FILTER (WHERE p.moderation = 'published')::integer AS published, "
        "count(*) FILTER (WHERE p.moderation = 'rejected')::integer AS rejected "
        "FROM catalog_projects p WHERE p.builder_id = b.id) c "
        "WHERE (%(pattern)s::text IS NULL OR lower(b.name) LIKE %(pattern)s) "
        "AND (%(at)s::timestamptz IS NULL OR (b.created_at, b.id) < (%(at)s, %(id)s)) "
        "ORDER BY b.created_at DESC, b.id DESC LIMIT %(limit)s",
        {"pattern": _prefix_pattern(name_prefix) if name_prefix else None,
         "at": before[0] if before else None, "id": before[1] if before else None,
         "limit": limit})


async def review_queue(db: Database, after: tuple[dt.datetime, uuid.UUID] | None, limit: int
                       ) -> list[dict[str, Any]]:
    """Projects in review, oldest submission first, after a ``(submitted_at, id)`` cursor
    (catalog_projects_review_idx)."""
    return await db.fetch(
        "SELECT p.id, p.name, p.city, p.locality, p.submitted_at, p.units_total, "
        "b.id AS builder_id, b.name AS builder_name, b.verified AS builder_verified "
        "FROM catalog_projects p JOIN catalog_builders b ON b.id = p.builder_id "
        "WHERE p.moderation = 'in_review' "
        "AND (%(at)s::timestamptz IS NULL OR (p.submitted_at, p.id) > (%(at)s, %(id)s)) "
        "ORDER BY p.submitted_at, p.id LIMIT %(limit)s",
        {"at": after[0] if after else None, "id": after[1] if after else None,
         "limit": limit})


async def review_stats(db: Database) -> dict[str, Any]:
    """How many projects wait for review and since when the oldest has waited."""
    return await db.fetchrow(
        "SELECT count(*)::integer AS count, min(submitted_at) AS oldest "
        "FROM catalog_projects WHERE moderation = 'in_review'")  # type: ignore[return-value]


async def grid_units(db: Database, project_id: uuid.UUID) -> list[dict[str, Any]]:
    """A project's units for the unit grid: by tower, top floor first, then by code."""
    return await db.fetch(
        "SELECT id, tower_id, code, unit_type, bedrooms, floor, price_minor, currency, status "
        "FROM catalog_units WHERE project_id = %s "
        "ORDER BY tower_id, floor DESC, code LIMIT %s", (project_id, GRID_MAX))
