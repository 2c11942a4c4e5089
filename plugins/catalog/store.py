"""SQL for the catalogue's builders, projects and reviews, and the reads only its console pages
need (the builder directory, the moderation queue). Towers and units have their own
(``units/store.py``).

Every statement is parameterised. Functions take a :class:`~propmubi.db.Tx` when they change
state (the caller's transaction also carries the events) and a Database or Tx when they read.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from propmubi.db import Database, Tx
from propmubi.ids import uuid7

Q = Database | Tx

# --------------------------------------------------------------------------------------------
# Builders
# --------------------------------------------------------------------------------------------

_BUILDER_COLUMNS = ("id, owner_user_id, name, slug, rera_promoter_id, verified, description, "
                    "website, created_at, updated_at")


async def insert_builder(tx: Tx, row: dict[str, Any]) -> dict[str, Any]:
    """Insert a builder; raises UniqueViolation when the owner already has one (or the slug
    is taken). ``verified`` is the owner's KYC state (:func:`builder_kyc`)."""
    return await tx.fetchrow(
        "INSERT INTO catalog_builders (id, owner_user_id, name, slug, rera_promoter_id, "
        "description, website, verified) VALUES (%(id)s, %(owner_user_id)s, %(name)s, "
        "%(slug)s, %(rera_promoter_id)s, %(description)s, %(website)s, %(verified)s) "
        f"RETURNING {_BUILDER_COLUMNS}", row)  # type: ignore[return-value]


async def builder(q: Q, builder_id: uuid.UUID, *, lock: bool = False) -> dict[str, Any] | None:
    """One builder by id."""
    sql = f"SELECT {_BUILDER_COLUMNS} FROM catalog_builders WHERE id = %s"
    return await q.fetchrow(sql + (" FOR UPDATE" if lock else ""), (builder_id,))


async def builder_of_owner(q: Q, user_id: uuid.UUID, *, lock: bool = False
                           ) -> dict[str, Any] | None:
    """The builder a user manages, if any."""
    sql = f"SELECT {_BUILDER_COLUMNS} FROM catalog_builders WHERE owner_user_id = %s"
    return await q.fetchrow(sql + (" FOR UPDATE" if lock else ""), (user_id,))


async def update_builder(tx: Tx, builder_id: uuid.UUID, changes: dict[str, Any]
                         ) -> dict[str, Any]:
    """Set the given columns (names come from the service's fixed list, never from input)."""
    return await tx.fetchrow(
        "UPDATE catalog_builders SET "
        "name = COALESCE(%(name)s, name), "
        "rera_promoter_id = CASE WHEN %(set_rera)s THEN %(rera_promoter_id)s "
        "ELSE rera_promoter_id END, "
        "description = COALESCE(%(description)s, description), "
        "website = CASE WHEN %(set_website)s THEN %(website)s ELSE website END, "
        "updated_at = now() "
        f"WHERE id = %(id)s RETURNING {_BUILDER_COLUMNS}",
        {"id": builder_id, "name": changes.get("name"),
         "set_rera": "rera_promoter_id" in changes,
         "rera_promoter_id": changes.get("rera_promoter_id"),
         "description": changes.get("description"),
         "set_website": "website" in changes, "website": changes.get("website")},
    )  # type: ignore[return-value]


async def set_builder_verified(tx: Tx, builder_id: uuid.UUID, verified: bool) -> bool:
    """Set the verified badge; False when the builder does not exist."""
    return await tx.execute(
        "UPDATE catalog_builders SET verified = %s, updated_at = now() WHERE id = %s",
        (verified, builder_id)) > 0


async def builder_kyc(q: Q, user_id: uuid.UUID) -> str | None:
    """A builder-role user's KYC status as the auth events reported it (None: never heard)."""
    return await q.fetchval("SELECT status FROM catalog_builder_kyc WHERE user_id = %s",
                            (user_id,))


async def record_builder_kyc(tx: Tx, user_id: uuid.UUID, status: str, sequence: int) -> bool:
    """Keep a user's builder KYC status; False (nothing changed) when an event at least as
    recent (``sequence``) was already recorded."""
    return await tx.fetchval(
        "INSERT INTO catalog_builder_kyc AS k (user_id, status, sequence) "
        "VALUES (%s, %s, %s) ON CONFLICT (user_id) DO UPDATE SET status = EXCLUDED.status, "
        "sequence = EXCLUDED.sequence, updated_at = now() "
        "WHERE k.sequence < EXCLUDED.sequence RETURNING true",
        (user_id, status, sequence)) is not None


async def set_owner_verified(tx: Tx, user_id: uuid.UUID, verified: bool) -> uuid.UUID | None:
    """Set the verified badge of the builder a user manages; its id when the badge changed
    (None: no such builder, or the badge was so already)."""
    return await tx.fetchval(
        "UPDATE catalog_builders SET verified = %s, updated_at = now() "
        "WHERE owner_user_id = %s AND verified <> %s RETURNING id", (verified, user_id, verified))


async def add_verification(tx: Tx, builder_id: uuid.UUID, verified: bool, actor: str,
                           reason: str | None) -> None:
    """Record a change of a builder's badge in its verification history."""
    await tx.execute(
        "INSERT INTO catalog_builder_verifications (id, builder_id, verified, actor, reason) "
        "VALUES (%s, %s, %s, %s, %s)", (uuid7(), builder_id, verified, actor, reason))


async def verifications(q: Q, builder_id: uuid.UUID, limit: int) -> list[dict[str, Any]]:
    """A builder's badge changes, newest first (catalog_builder_verifications_builder_idx)."""
    return await q.fetch(
        "SELECT verified, actor, reason, at FROM catalog_builder_verifications "
        "WHERE builder_id = %s ORDER BY at DESC, id DESC LIMIT %s", (builder_id, limit))


async def forget_builder_kyc(tx: Tx, user_id: uuid.UUID) -> None:
    """Drop an erased user's KYC state."""
    await tx.execute("DELETE FROM catalog_builder_kyc WHERE user_id = %s", (user_id,))


# --------------------------------------------------------------------------------------------
# Projects
# --------------------------------------------------------------------------------------------

_PROJECT_COLUMNS = (
    "p.id, p.builder_id, p.slug, p.name, p.city, p.locality, p.address, p.lat, p.lng, "
    "p.rera_number, p.status, p.possession_date, p.amenities, p.description, p.moderation, "
    "p.rejection_reason, p.featured, p.currency, p.price_min, p.price_max, p.bedrooms, "
    "p.units_total, p.units_available, p.created_at, p.updated_at, p.submitted_at, "
    "p.published_at")
# The project with what permission checks need: its builder's owner.
_PROJECT_SELECT = (f"SELECT {_PROJECT_COLUMNS}, b.owner_user_id, b.name AS builder_name, "
                   "b.slug AS builder_slug, b.verified AS builder_verified "
                   "FROM catalog_projects p JOIN catalog_builders b ON b.id = p.builder_id ")

#: Project columns a service may change with :func:`update_project` (a fixed list: the SQL
#: below names each one; input never becomes an identifier).
PROJECT_EDITABLE = ("name", "city", "locality", "address", "lat", "lng", "rera_number",
                    "status", "possession_date", "amenities", "description", "featured")


async def insert_project(tx: Tx, row: dict[str, Any]) -> None:
    """Insert a draft project."""
    await tx.execute(
        "INSERT INTO catalog_projects (id, builder_id, slug, name, city, locality, address, "
        "lat, lng, rera_number, status, possession_date, amenities, description, currency) "
        "VALUES (%(id)s, %(builder_id)s, %(slug)s, %(name)s, %(city)s, %(locality)s, "
        "%(address)s, %(lat)s, %(lng)s, %(rera_number)s, %(status)s, %(possession_date)s, "
        "%(amenities)s::text[], %(description)s, %(currency)s)", row)


async def project(q: Q, project_id: uuid.UUID, *, lock: bool = False) -> dict[str, Any] | None:
    """One project (with its builder's owner), optionally locked for the transaction.

    Every change to a project's towers or units locks the project row first: the derived
    columns are then recomputed (``units/store.py``) by one transaction at a time, each
    seeing the others' units.
    """
    sql = _PROJECT_SELECT + "WHERE p.id = %s"
    return await q.fetchrow(sql + (" FOR UPDATE OF p" if lock else ""), (project_id,))


async def project_by_slug(q: Q, slug: str) -> dict[str, Any] | None:
    """One project by its slug."""
    return await q.fetchrow(_PROJECT_SELECT + "WHERE p.slug = %s", (slug,))


async def update_project(tx: Tx, project_id: uuid.UUID, changes: dict[str, Any]) -> None:
    """Set the columns named in ``changes`` (keys from :data:`PROJECT_EDITABLE`)."""
    params: dict[str, Any] = {"id": project_id}
    for name in PROJECT_EDITABLE:
        params["set_" + name] = name in changes
        params[name] = changes.get(name)
    await tx.execute(
        "UPDATE catalog_projects SET "
        "name = CASE WHEN %(set_name)s THEN %(name)s ELSE name END, "
        "city = CASE WHEN %(set_city)s THEN %(city)s ELSE city END, "
        "locality = CASE WHEN %(set_locality)s THEN %(locality)s ELSE locality END, "
        "address = CASE WHEN %(set_address)s THEN %(address)s ELSE address END, "
        "lat = CASE WHEN %(set_lat)s THEN %(lat)s ELSE lat END, "
        "lng = CASE WHEN %(set_lng)s THEN %(lng)s ELSE lng END, "
        "rera_number = CASE WHEN %(set_rera_number)s THEN %(rera_number)s ELSE rera_number END, "
        "status = CASE WHEN %(set_status)s THEN %(status)s ELSE status END, "
        "possession_date = CASE WHEN %(set_possession_date)s THEN %(possession_date)s::date "
        "ELSE possession_date END, "
        "amenities = CASE WHEN %(set_amenities)s THEN %(amenities)s::text[] ELSE amenities END, "
        "description = CASE WHEN %(set_description)s THEN %(description)s ELSE description END, "
        "featured = CASE WHEN %(set_featured)s THEN %(featured)s ELSE featured END, "
        "updated_at = now() WHERE id = %(id)s", params)


async def set_moderation(tx: Tx, project_id: uuid.UUID, moderation: str,
                         reason: str | None) -> None:
    """Move a project to a moderation state; stamps submitted_at / published_at."""
    await tx.execute(
        "UPDATE catalog_projects SET moderation = %(m)s, rejection_reason = %(reason)s, "
        "submitted_at = CASE WHEN %(m)s = 'in_review' THEN now() ELSE submitted_at END, "
        "published_at = CASE WHEN %(m)s = 'published' THEN now() ELSE published_at END, "
        "updated_at = now() WHERE id = %(id)s",
        {"m": moderation, "reason": reason, "id": project_id})


async def add_review(tx: Tx, project_id: uuid.UUID, action: str, reason: str | None,
                     actor: str) -> None:
    """Record one moderation step."""
    await tx.execute(
        "INSERT INTO catalog_project_reviews (project_id, action, reason, actor) "
        "VALUES (%s, %s, %s, %s)", (project_id, action, reason, actor))


async def reviews(q: Q, project_id: uuid.UUID) -> list[dict[str, Any]]:
    """A project's moderation history, oldest first."""
    return await q.fetch(
        "SELECT action, reason, actor, at FROM catalog_project_reviews "
        "WHERE project_id = %s ORDER BY at, id", (project_id,))


async def completeness(q: Q, project_id: uuid.UUID) -> dict[str, Any]:
    """What a review needs of a project: how many towers, units and photos it has."""
    return await q.fetchrow(
        "SELECT (SELECT count(*) FROM catalog_towers WHERE project_id = %(id)s)::integer "
        "AS towers, (SELECT count(*) FROM catalog_units WHERE project_id = %(id)s)::integer "
        "AS units, (SELECT count(*) FROM catalog_media WHERE project_id = %(id)s "
        "AND unit_id IS NULL)::integer "
        "AS photos", {"id": project_id})  # type: ignore[return-value]


async def delete_project(tx: Tx, project_id: uuid.UUID) -> None:
    """Delete a project; towers, units and reviews go with it (ON DELETE CASCADE)."""
    await tx.execute("DELETE FROM catalog_projects WHERE id = %s", (project_id,))


async def projects_of_builder(q: Q, builder_id: uuid.UUID, limit: int,
                              after: tuple[dt.datetime, uuid.UUID] | None,
                              moderation: str | None) -> list[dict[str, Any]]:
    """A builder's projects, newest first, after a ``(created_at, id)`` keyset cursor
    (catalog_projects_builder_idx)."""
    return await q.fetch(
        _PROJECT_SELECT + "WHERE p.builder_id = %(b)s "
        "AND (%(m)s::text IS NULL OR p.moderation = %(m)s) "
        "AND (%(at)s::timestamptz IS NULL OR (p.created_at, p.id) < (%(at)s, %(id)s)) "
        "ORDER BY p.created_at DESC, p.id DESC LIMIT %(limit)s",
        {"b": builder_id, "m": moderation, "at": after[0] if after else None,
         "id": after[1] if after else None, "limit": limit})


# --------------------------------------------------------------------------------------------
# Seed (bulk, idempotent: deterministic ids and ON CONFLICT DO NOTHING)
# --------------------------------------------------------------------------------------------


async def seed_builders(tx: Tx, cols: dict[str, list[Any]]) -> int:
    """Insert demo builders that do not exist yet; how many were new."""
    return await tx.execute(
        "INSERT INTO catalog_builders (id, name, slug, rera_promoter_id, verified, "
        "description, website) SELECT * FROM unnest(%(id)s::uuid[], %(name)s::text[], "
        "%(slug)s::text[], %(rera)s::text[], %(verified)s::boolean[], "
        "%(description)s::text[], %(website)s::text[]) ON CONFLICT DO NOTHING", cols)


async def seed_projects(tx: Tx, cols: dict[str, list[Any]]) -> int:
    """Insert demo projects that do not exist yet; how many were new. Amenities travel as
    comma-joined text (unnest cannot take an array of arrays of different lengths)."""
    return await tx.execute(
        "INSERT INTO catalog_projects (id, builder_id, slug, name, city, locality, address, "
        "lat, lng, rera_number, status, possession_date, amenities, description, moderation, "
        "rejection_reason, featured, created_at, updated_at, submitted_at, published_at) "
        "SELECT s.id, s.builder_id, s.slug, s.name, s.city, s.locality, s.address, s.lat, "
        "s.lng, s.rera, s.status, s.possession, string_to_array(s.amenities, ','), "
        "s.description, s.moderation, s.reason, s.featured, s.created, s.created, "
        "s.submitted, s.published "
        "FROM unnest(%(id)s::uuid[], %(builder_id)s::uuid[], %(slug)s::text[], "
        "%(name)s::text[], %(city)s::text[], %(locality)s::text[], %(address)s::text[], "
        "%(lat)s::float8[], %(lng)s::float8[], %(rera)s::text[], %(status)s::text[], "
        "%(possession)s::date[], %(amenities)s::text[], %(description)s::text[], "
        "%(moderation)s::text[], %(reason)s::text[], %(featured)s::boolean[], "
        "%(created)s::timestamptz[], %(submitted)s::timestamptz[], "
        "%(published)s::timestamptz[]) AS s(id, builder_id, slug, name, city, locality, "
        "address, lat, lng, rera, status, possession, amenities, description, moderation, "
        "reason, featured, created, submitted, published) ON CONFLICT DO NOTHING", cols)


async def seed_reviews(tx: Tx, cols: dict[str, list[Any]]) -> int:
    """Record the moderation steps of newly seeded projects (only those with none yet)."""
    return await tx.execute(
        "INSERT INTO catalog_project_reviews (project_id, action, reason, actor, at) "
        "SELECT s.project_id, s.action, s.reason, 'system:seed', s.at FROM "
        "unnest(%(project_id)s::uuid[], %(action)s::text[], %(reason)s::text[], "
        "%(at)s::timestamptz[]) AS s(project_id, action, reason, at) "
        "WHERE NOT EXISTS (SELECT 1 FROM catalog_project_reviews r "
        "WHERE r.project_id = s.project_id AND r.action = s.action AND r.at = s.at)", cols)


async def detach_owner(tx: Tx, user_id: uuid.UUID) -> int:
    """Forget which user manages builders (the user erased their account); how many."""
    return await tx.execute(
        "UPDATE catalog_builders SET owner_user_id = NULL, updated_at = now() "
        "WHERE owner_user_id = %s", (user_id,))


# --------------------------------------------------------------------------------------------
# Console reads: the builder directory with project counts, the moderation queue and its
# dashboard numbers
# --------------------------------------------------------------------------------------------

def _prefix_pattern(text: str) -> str:
    """A LIKE pattern matching names that start with ``text`` (its wildcards escaped)."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.lower() + "%"


async def builder_directory(db: Database, name_prefix: str | None,
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
