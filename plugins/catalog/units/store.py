"""SQL for towers and units (catalog_towers, catalog_units), the projects' columns derived from
their units, the unit grid of the console, and the seed's bulk inserts of both.

Every statement is parameterised. Functions take a :class:`~propmubi.db.Tx` when they change
state (the caller's transaction also carries the events) and a Database or Tx when they read.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from propmubi.db import Database, Tx

Q = Database | Tx

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


async def unit(q: Q, unit_id: uuid.UUID, lock: bool = False) -> dict[str, Any] | None:
    """One unit, with its tower's floor count; ``lock``: its row locked (not the tower's)."""
    return await q.fetchrow(
        f"SELECT {_UNIT_COLUMNS}, t.floors AS tower_floors, t.name AS tower_name "
        "FROM catalog_units u JOIN catalog_towers t ON t.id = u.tower_id WHERE u.id = %s"
        + (" FOR UPDATE OF u" if lock else ""), (unit_id,))


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
                   status: str | None, after: tuple[str, int, str, uuid.UUID] | None,
                   limit: int) -> list[dict[str, Any]]:
    """A project's units as buyers read them, by tower name, floor and code, after a
    ``(tower name, floor, code, id)`` keyset position; optionally of one tower/status."""
    return await q.fetch(
        f"SELECT {_UNIT_COLUMNS}, t.name AS tower_name FROM catalog_units u "
        "JOIN catalog_towers t ON t.id = u.tower_id WHERE u.project_id = %(p)s "
        "AND (%(t)s::uuid IS NULL OR u.tower_id = %(t)s) "
        "AND (%(s)s::text IS NULL OR u.status = %(s)s) "
        "AND (%(after)s::boolean IS NULL OR (t.name, u.floor, u.code, u.id) > "
        "(%(a_tower)s, %(a_floor)s, %(a_code)s, %(a_id)s)) "
        "ORDER BY t.name, u.floor, u.code, u.id LIMIT %(limit)s",
        {"p": project_id, "t": tower_id, "s": status, "after": True if after else None,
         "a_tower": after[0] if after else None, "a_floor": after[1] if after else None,
         "a_code": after[2] if after else None, "a_id": after[3] if after else None,
         "limit": limit})


async def tower_name_taken(q: Q, project_id: uuid.UUID, name: str,
                           other_than: uuid.UUID | None = None) -> bool:
    """Whether another tower of the project (not ``other_than``) has this name."""
    return bool(await q.fetchval(
        "SELECT EXISTS (SELECT 1 FROM catalog_towers WHERE project_id = %s AND name = %s "
        "AND id IS DISTINCT FROM %s)", (project_id, name, other_than)))


async def code_taken(q: Q, tower_id: uuid.UUID, code: str,
                     other_than: uuid.UUID | None = None) -> bool:
    """Whether another unit of the tower (not ``other_than``) has this code."""
    return bool(await q.fetchval(
        "SELECT EXISTS (SELECT 1 FROM catalog_units WHERE tower_id = %s AND code = %s "
        "AND id IS DISTINCT FROM %s)", (tower_id, code, other_than)))


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
# A project's derived columns
# --------------------------------------------------------------------------------------------


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
# Seed (bulk, idempotent: deterministic ids and ON CONFLICT DO NOTHING)
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# The console's unit grid
# --------------------------------------------------------------------------------------------

#: A unit grid shows at most this many units (a tower block is a few hundred at most).
GRID_MAX = 5000


async def grid_units(db: Database, project_id: uuid.UUID) -> list[dict[str, Any]]:
    """A project's units for the unit grid: by tower, top floor first, then by code."""
    return await db.fetch(
        "SELECT id, tower_id, code, unit_type, bedrooms, floor, price_minor, currency, status "
        "FROM catalog_units WHERE project_id = %s "
        "ORDER BY tower_id, floor DESC, code LIMIT %s", (project_id, GRID_MAX))
