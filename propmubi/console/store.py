"""SQL for the ``core_staff`` table (the console's staff accounts)."""

from __future__ import annotations

import uuid
from typing import Any

from propmubi.db import Database
from propmubi.ids import valid_uuids

__all__ = ["by_email", "by_id", "disable", "insert", "list_all", "names", "record_login",
           "set_password"]

_COLUMNS = "id, email, name, password_hash, roles, created_at, last_login_at, disabled"


async def insert(db: Database, staff_id: uuid.UUID, email: str, name: str,
                 password_hash: str, roles: list[str]) -> dict[str, Any]:
    """Insert an account; raises :class:`propmubi.db.UniqueViolation` for a taken address."""
    row = await db.fetchrow(
        f"INSERT INTO core_staff (id, email, name, password_hash, roles) "
        f"VALUES (%s, %s, %s, %s, %s) RETURNING {_COLUMNS}",
        (staff_id, email, name, password_hash, roles))
    assert row is not None
    return row


async def by_email(db: Database, email: str) -> dict[str, Any] | None:
    """The account with this address, compared case-insensitively (core_staff_email_idx)."""
    return await db.fetchrow(
        f"SELECT {_COLUMNS} FROM core_staff WHERE lower(email) = lower(%s)", (email,))


async def by_id(db: Database, staff_id: str | uuid.UUID) -> dict[str, Any] | None:
    """The account with this id, or None."""
    return await db.fetchrow(f"SELECT {_COLUMNS} FROM core_staff WHERE id = %s",
                             (uuid.UUID(str(staff_id)),))


async def names(db: Database, ids: list[str]) -> dict[str, str]:
    """The names of the accounts among ``ids`` (text; ones that are not UUIDs are skipped)."""
    rows = await db.fetch("SELECT id::text AS id, name FROM core_staff WHERE id = ANY(%s::uuid[])",
                          (valid_uuids(ids),))
    return {row["id"]: row["name"] for row in rows}


async def list_all(db: Database) -> list[dict[str, Any]]:
    """Every account, by address (staff lists are short: no pagination needed)."""
    return await db.fetch(f"SELECT {_COLUMNS} FROM core_staff ORDER BY lower(email)")


async def set_password(db: Database, email: str, password_hash: str) -> bool:
    """Replace an account's password hash; False when no account has this address."""
    count = await db.execute(
        "UPDATE core_staff SET password_hash = %s WHERE lower(email) = lower(%s)",
        (password_hash, email))
    return count > 0


async def disable(db: Database, email: str) -> bool:
    """Disable an account (it can no longer sign in; open sessions end at their next request)."""
    count = await db.execute("UPDATE core_staff SET disabled = true WHERE lower(email) = lower(%s)",
                             (email,))
    return count > 0


async def record_login(db: Database, staff_id: uuid.UUID, password_hash: str | None) -> None:
    """Stamp a successful sign-in, and store a re-hashed password when parameters changed."""
    if password_hash is None:
        await db.execute("UPDATE core_staff SET last_login_at = now() WHERE id = %s",
                         (staff_id,))
    else:
        await db.execute("UPDATE core_staff SET last_login_at = now(), password_hash = %s "
                         "WHERE id = %s", (password_hash, staff_id))
