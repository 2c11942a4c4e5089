"""SQL of the catalogue's photos (``catalog_media``).

A gallery is a project's own photos (``unit_id IS NULL``) or one unit's; positions are dense
(0..n-1). Every change to a gallery first locks its project row (``lock_project``), so that
concurrent uploads, moves and deletions renumber one after the other.
"""

from __future__ import annotations

import uuid
from typing import Any

from propmubi.db import Database, Tx

_COLUMNS = """m.id, m.project_id, m.unit_id, m.position, m.alt_text, m.original_key, m.web_key,
    m.thumb_key, m.content_type, m.width, m.height, m.bytes, m.sha256, m.created_at,
    m.updated_at"""

# The two kinds of gallery, each served by its own partial index.
_PROJECT_GALLERY = "m.project_id = %(project_id)s AND m.unit_id IS NULL"
_UNIT_GALLERY = "m.unit_id = %(unit_id)s"


def _gallery(unit_id: uuid.UUID | None) -> str:
    return _UNIT_GALLERY if unit_id is not None else _PROJECT_GALLERY


async def project_access(db: Database | Tx, project_id: uuid.UUID) -> dict[str, Any] | None:
    """A project's builder, its owner user and its moderation state (None: no such project)."""
    return await db.fetchrow(
        """SELECT p.id AS project_id, p.builder_id, p.moderation, b.owner_user_id
             FROM catalog_projects p JOIN catalog_builders b ON b.id = p.builder_id
            WHERE p.id = %s""", (project_id,))


async def unit_access(db: Database | Tx, unit_id: uuid.UUID) -> dict[str, Any] | None:
    """A unit's project, with what :func:`project_access` tells (None: no such unit)."""
    return await db.fetchrow(
        """SELECT u.id AS unit_id, p.id AS project_id, p.builder_id, p.moderation,
                  b.owner_user_id
             FROM catalog_units u
             JOIN catalog_projects p ON p.id = u.project_id
             JOIN catalog_builders b ON b.id = p.builder_id
            WHERE u.id = %s""", (unit_id,))


async def lock_project(tx: Tx, project_id: uuid.UUID) -> dict[str, Any] | None:
    """Lock the project row against concurrent gallery changes (NO KEY UPDATE: inserts that
    reference it are not blocked); its builder, moderation and city (the search cache's
    scope), or None when it is gone."""
    return await tx.fetchrow(
        """SELECT id, builder_id, moderation, city FROM catalog_projects
            WHERE id = %s FOR NO KEY UPDATE""", (project_id,))


async def gallery_size(tx: Tx, project_id: uuid.UUID, unit_id: uuid.UUID | None) -> int:
    """How many photos the gallery holds."""
    sql = "SELECT count(*) FROM catalog_media m WHERE " + _gallery(unit_id)
    return await tx.fetchval(sql, {"project_id": project_id, "unit_id": unit_id})


async def gallery(db: Database | Tx, project_id: uuid.UUID, unit_id: uuid.UUID | None
                  ) -> list[dict[str, Any]]:
    """The gallery's photos in order."""
    sql = (f"SELECT {_COLUMNS} FROM catalog_media m WHERE " + _gallery(unit_id)
           + " ORDER BY m.position, m.created_at, m.id")
    return await db.fetch(sql, {"project_id": project_id, "unit_id": unit_id})


async def make_room(tx: Tx, project_id: uuid.UUID, unit_id: uuid.UUID | None,
                    position: int) -> None:
    """Move photos at ``position`` and after one place down the gallery."""
    sql = ("UPDATE catalog_media m SET position = m.position + 1 WHERE "
           + _gallery(unit_id) + " AND m.position >= %(position)s")
    await tx.execute(sql, {"project_id": project_id, "unit_id": unit_id, "position": position})


async def close_gap(tx: Tx, project_id: uuid.UUID, unit_id: uuid.UUID | None,
                    position: int) -> None:
    """Move photos after ``position`` one place up (after a deletion)."""
    sql = ("UPDATE catalog_media m SET position = m.position - 1 WHERE "
           + _gallery(unit_id) + " AND m.position > %(position)s")
    await tx.execute(sql, {"project_id": project_id, "unit_id": unit_id, "position": position})


async def insert(tx: Tx, row: dict[str, Any]) -> dict[str, Any]:
    """Add a photo; the stored row."""
    stored = await tx.fetchrow(
        f"""INSERT INTO catalog_media AS m (id, project_id, unit_id, position, alt_text,
                original_key, web_key, thumb_key, content_type, width, height, bytes, sha256)
            VALUES (%(id)s, %(project_id)s, %(unit_id)s, %(position)s, %(alt_text)s,
                %(original_key)s, %(web_key)s, %(thumb_key)s, %(content_type)s, %(width)s,
                %(height)s, %(bytes)s, %(sha256)s)
            RETURNING {_COLUMNS}""", row)
    assert stored is not None  # INSERT ... RETURNING always returns the row
    return stored


async def photo(db: Database | Tx, photo_id: uuid.UUID) -> dict[str, Any] | None:
    """One photo with its project's owner and moderation state."""
    return await db.fetchrow(
        f"""SELECT {_COLUMNS}, p.builder_id, p.moderation, b.owner_user_id
              FROM catalog_media m
              JOIN catalog_projects p ON p.id = m.project_id
              JOIN catalog_builders b ON b.id = p.builder_id
             WHERE m.id = %s""", (photo_id,))


async def photo_for_update(tx: Tx, photo_id: uuid.UUID) -> dict[str, Any] | None:
    """One photo, locked (its project must be locked first)."""
    return await tx.fetchrow(
        f"SELECT {_COLUMNS} FROM catalog_media m WHERE m.id = %s FOR UPDATE", (photo_id,))


async def move(tx: Tx, photo: dict[str, Any], new_position: int) -> None:
    """Put a photo at ``new_position``, shifting the ones in between by one place."""
    sql = ("""UPDATE catalog_media m SET position = CASE
                  WHEN m.id = %(id)s THEN %(new)s
                  WHEN %(new)s < %(old)s THEN m.position + 1
                  ELSE m.position - 1 END,
                  updated_at = CASE WHEN m.id = %(id)s THEN now() ELSE m.updated_at END
               WHERE """ + _gallery(photo["unit_id"])
           + " AND m.position BETWEEN least(%(old)s, %(new)s) AND greatest(%(old)s, %(new)s)")
    await tx.execute(sql, {"project_id": photo["project_id"], "unit_id": photo["unit_id"],
                           "id": photo["id"], "old": photo["position"], "new": new_position})


async def set_alt_text(tx: Tx, photo_id: uuid.UUID, alt_text: str) -> None:
    """Change a photo's alternative text."""
    await tx.execute("UPDATE catalog_media SET alt_text = %s, updated_at = now() WHERE id = %s",
                     (alt_text, photo_id))


async def delete(tx: Tx, photo_id: uuid.UUID) -> None:
    """Remove a photo's row."""
    await tx.execute("DELETE FROM catalog_media WHERE id = %s", (photo_id,))
