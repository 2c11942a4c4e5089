"""SQL for the catalogue's tables (builders, projects, reviews, towers, units), and the reads
only its console pages need (the builder directory, the moderation queue, the unit grid).

Every statement is parameterised. Functions take a :class:`~propmubi.db.Tx` when they change
state (the caller's transaction also carries the events) and a Database or Tx when they read.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any

from propmubi.db import Database, Tx

Q = Database | Tx

# --------------------------------------------------------------------------------------------
# Builders
# --------------------------------------------------------------------------------------------

_BUILDER_COLUMNS = ("id, owner_user_id, name, slug, rera_promoter_id, verified, description, "
                    "website, created_at, updated_at")


async def insert_builder(tx: Tx, row: dict[str, Any]) -> dict[str, Any]:
    """Insert a builder; raises UniqueViolation when the owner already has one (or the slug
    is taken)."""
    return await tx.fetchrow(
        "INSERT INTO catalog_builders (id, owner_user_id, name, slug, rera_promoter_id, "
        "description, website) VALUES (%(id)s, %(owner_user_id)s, %(name)s, %(slug)s, "
        f"%(rera_promoter_id)s, %(description)s, %(website)s) RETURNING {_BUILDER_COLUMNS}",
        row)  # type: ignore[return-value]


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
    columns are then recomputed by one transaction at a time, each seeing the others' units.
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


async def recompute_derived(tx: Tx, project_ids: Sequence[uuid.UUID]) -> None:
    """Recompute the projects' derived columns from their units in one statement.

    Price range and bedroom counts cover the units that can still be bought (not sold or
    blocked); ``units_available`` counts those available now. A project with no units gets
    nulls, empty arrays and zeros (the lateral aggregate yields a row even then).
    """
    await tx.execute(
        "UPDATE catalog_projects p SET price_min = d.price_min, price_max = d.price_max, "
        "bedrooms = d.bedrooms, units_total = d.units_total, "
        "units_available = d.units_available "
        "FROM unnest(%s::uuid[]) AS ids(id) CROSS JOIN LATERAL ("
        "  SELECT min(u.price_minor) FILTER (WHERE u.status NOT IN ('sold', 'blocked')) "
        "         AS price_min,"
        "         max(u.price_minor) FILTER (WHERE u.status NOT IN ('sold', 'blocked')) "
        "         AS price_max,"
        "         COALESCE(array_agg(DISTINCT u.bedrooms ORDER BY u.bedrooms) "
        "                  FILTER (WHERE u.status NOT IN ('sold', 'blocked')), "
        "                  '{}'::smallint[]) AS bedrooms,"
        "         count(u.id)::integer AS units_total,"
        "         (count(u.id) FILTER (WHERE u.status = 'available'))::integer "
        "         AS units_available"
        "  FROM catalog_units u WHERE u.project_id = ids.id) d "
        "WHERE p.id = ids.id", (list(project_ids),))


# --------------------------------------------------------------------------------------------
# Towers
# --------------------------------------------------------------------------------------------

_TOWER_COLUMNS = "t.id, t.project_id, t.name, t.floors, t.created_at"


async def insert_tower(tx: Tx, tower_id: uuid.UUID, project_id: uuid.UUID, name: str,
                       floors: int) -> dict[str, Any]:
    """Insert a tower; UniqueViolation when the project has one of that name."""
    return await tx.fetchrow(
        "INSERT INTO catalog_towers AS t (id, project_id, name, floors) "
        f"VALUES (%s, %s, %s, %s) RETURNING {_TOWER_COLUMNS}",
        (tower_id, project_id, name, floors))  # type: ignore[return-value]


async def tower(q: Q, tower_id: uuid.UUID) -> dict[str, Any] | None:
    """One tower."""
    return await q.fetchrow(f"SELECT {_TOWER_COLUMNS} FROM catalog_towers t WHERE t.id = %s",
                            (tower_id,))


async def towers_of(q: Q, project_id: uuid.UUID) -> list[dict[str, Any]]:
    """A project's towers by name, with their unit counts."""
    return await q.fetch(
        f"SELECT {_TOWER_COLUMNS}, (SELECT count(*) FROM catalog_units u "
        "WHERE u.tower_id = t.id)::integer AS units "
        "FROM catalog_towers t WHERE t.project_id = %s ORDER BY t.name", (project_id,))


async def update_tower(tx: Tx, tower_id: uuid.UUID, name: str | None, floors: int | None
                       ) -> dict[str, Any]:
    """Rename a tower or change its floor count."""
    return await tx.fetchrow(
        "UPDATE catalog_towers AS t SET name = COALESCE(%s, name), "
        f"floors = COALESCE(%s, floors) WHERE id = %s RETURNING {_TOWER_COLUMNS}",
        (name, floors, tower_id))  # type: ignore[return-value]


async def highest_unit_floor(q: Q, tower_id: uuid.UUID) -> int | None:
    """The highest floor a unit of the tower is on."""
    return await q.fetchval("SELECT max(floor) FROM catalog_units WHERE tower_id = %s",
                            (tower_id,))


async def delete_tower(tx: Tx, tower_id: uuid.UUID) -> list[uuid.UUID]:
    """Delete a tower and its units; the ids of the units deleted with it."""
    units = await tx.fetch("DELETE FROM catalog_units WHERE tower_id = %s RETURNING id",
                           (tower_id,))
    await tx.execute("DELETE FROM catalog_towers WHERE id = %s", (tower_id,))
    return [row["id"] for row in units]


# --------------------------------------------------------------------------------------------
# Units
# --------------------------------------------------------------------------------------------

_UNIT_COLUMNS = ("u.id, u.project_id, u.tower_id, u.code, u.unit_type, u.bedrooms, "
                 "u.carpet_area_sqft::float8 AS carpet_area_sqft, "
                 "u.super_area_sqft::float8 AS super_area_sqft, u.floor, u.facing, "
                 "u.price_minor, u.currency, u.status, u.created_at, u.updated_at")

#: Unit columns a service may change with :func:`update_unit`.
UNIT_EDITABLE = ("code", "unit_type", "bedrooms", "carpet_area_sqft", "super_area_sqft",
                 "floor", "facing", "price_minor", "status")


async def insert_units(tx: Tx, units: Sequence[dict[str, Any]]) -> None:
    """Insert units in one statement (one unnest per column), whatever their number."""
    await tx.execute(
        "INSERT INTO catalog_units (id, project_id, tower_id, code, unit_type, bedrooms, "
        "carpet_area_sqft, super_area_sqft, floor, facing, price_minor, currency, status) "
        "SELECT * FROM unnest(%s::uuid[], %s::uuid[], %s::uuid[], %s::text[], %s::text[], "
        "%s::smallint[], %s::numeric[], %s::numeric[], %s::smallint[], %s::text[], "
        "%s::bigint[], %s::text[], %s::text[])",
        [[u[c] for u in units] for c in (
            "id", "project_id", "tower_id", "code", "unit_type", "bedrooms",
            "carpet_area_sqft", "super_area_sqft", "floor", "facing", "price_minor",
            "currency", "status")])


async def unit(q: Q, unit_id: uuid.UUID) -> dict[str, Any] | None:
    """One unit, with its tower's floor count."""
    return await q.fetchrow(
        f"SELECT {_UNIT_COLUMNS}, t.floors AS tower_floors, t.name AS tower_name "
        "FROM catalog_units u JOIN catalog_towers t ON t.id = u.tower_id WHERE u.id = %s",
        (unit_id,))


async def update_unit(tx: Tx, unit_id: uuid.UUID, changes: dict[str, Any]
                      ) -> dict[str, Any]:
    """Set the columns named in ``changes`` (keys from :data:`UNIT_EDITABLE`)."""
    params: dict[str, Any] = {"id": unit_id}
    for name in UNIT_EDITABLE:
        params["set_" + name] = name in changes
        params[name] = changes.get(name)
    return await tx.fetchrow(
        "UPDATE catalog_units AS u SET "
        "code = CASE WHEN %(set_code)s THEN %(code)s ELSE code END, "
        "unit_type = CASE WHEN %(set_unit_type)s THEN %(unit_type)s ELSE unit_type END, "
        "bedrooms = CASE WHEN %(set_bedrooms)s THEN %(bedrooms)s::smallint "
        "ELSE bedrooms END, "
        "carpet_area_sqft = CASE WHEN %(set_carpet_area_sqft)s THEN "
        "%(carpet_area_sqft)s::numeric ELSE carpet_area_sqft END, "
        "super_area_sqft = CASE WHEN %(set_super_area_sqft)s THEN "
        "%(super_area_sqft)s::numeric ELSE super_area_sqft END, "
        "floor = CASE WHEN %(set_floor)s THEN %(floor)s::smallint ELSE floor END, "
        "facing = CASE WHEN %(set_facing)s THEN %(facing)s ELSE facing END, "
        "price_minor = CASE WHEN %(set_price_minor)s THEN %(price_minor)s::bigint "
        "ELSE price_minor END, "
        "status = CASE WHEN %(set_status)s THEN %(status)s ELSE status END, "
        f"updated_at = now() WHERE id = %(id)s RETURNING {_UNIT_COLUMNS}",
        params)  # type: ignore[return-value]


async def delete_unit(tx: Tx, unit_id: uuid.UUID) -> None:
    """Delete one unit."""
    await tx.execute("DELETE FROM catalog_units WHERE id = %s", (unit_id,))


async def units_of(q: Q, project_id: uuid.UUID, tower_id: uuid.UUID | None,
                   status: str | None, after: uuid.UUID | None, limit: int
                   ) -> list[dict[str, Any]]:
    """A project's units in id order after an id cursor, optionally of one tower/status."""
    return await q.fetch(
        f"SELECT {_UNIT_COLUMNS} FROM catalog_units u WHERE u.project_id = %(p)s "
        "AND (%(t)s::uuid IS NULL OR u.tower_id = %(t)s) "
        "AND (%(s)s::text IS NULL OR u.status = %(s)s) "
        "AND (%(after)s::uuid IS NULL OR u.id > %(after)s) "
        "ORDER BY u.id LIMIT %(limit)s",
        {"p": project_id, "t": tower_id, "s": status, "after": after, "limit": limit})


async def towers_by_name(q: Q, project_id: uuid.UUID) -> dict[str, dict[str, Any]]:
    """A project's towers keyed by name (for the CSV import)."""
    rows = await q.fetch(f"SELECT {_TOWER_COLUMNS} FROM catalog_towers t "
                         "WHERE t.project_id = %s", (project_id,))
    return {r["name"]: r for r in rows}


async def existing_codes(q: Q, project_id: uuid.UUID) -> set[tuple[uuid.UUID, str]]:
    """Every ``(tower_id, code)`` of a project's units."""
    rows = await q.fetch("SELECT tower_id, code FROM catalog_units WHERE project_id = %s",
                         (project_id,))
    return {(r["tower_id"], r["code"]) for r in rows}


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


async def seed_towers(tx: Tx, cols: dict[str, list[Any]]) -> int:
    """Insert demo towers that do not exist yet."""
    return await tx.execute(
        "INSERT INTO catalog_towers (id, project_id, name, floors) SELECT * FROM "
        "unnest(%(id)s::uuid[], %(project_id)s::uuid[], %(name)s::text[], "
        "%(floors)s::smallint[]) ON CONFLICT DO NOTHING", cols)


async def seed_units(tx: Tx, cols: dict[str, list[Any]]) -> int:
    """Insert demo units that do not exist yet."""
    return await tx.execute(
        "INSERT INTO catalog_units (id, project_id, tower_id, code, unit_type, bedrooms, "
        "carpet_area_sqft, super_area_sqft, floor, facing, price_minor, currency, status) "
        "SELECT * FROM unnest(%(id)s::uuid[], %(project_id)s::uuid[], %(tower_id)s::uuid[], "
        "%(code)s::text[], %(unit_type)s::text[], %(bedrooms)s::smallint[], "
        "%(carpet)s::numeric[], %(super)s::numeric[], %(floor)s::smallint[], "
        "%(facing)s::text[], %(price)s::bigint[], %(currency)s::text[], %(status)s::text[]) "
        "ON CONFLICT DO NOTHING", cols)


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
# dashboard numbers, and a project's units for the unit grid
# --------------------------------------------------------------------------------------------

#: A unit grid shows at most this many units (a tower block is a few hundred at most).
GRID_MAX = 5000


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


async def grid_units(db: Database, project_id: uuid.UUID) -> list[dict[str, Any]]:
    """A project's units for the unit grid: by tower, top floor first, then by code."""
    return await db.fetch(
        "SELECT id, tower_id, code, unit_type, bedrooms, floor, price_minor, currency, status "
        "FROM catalog_units WHERE project_id = %s "
        "ORDER BY tower_id, floor DESC, code LIMIT %s", (project_id, GRID_MAX))
