"""The SQL of booking terms."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from propmubi.db import Database, Tx

_COLUMNS = ("project_id, amount_kind, amount_minor, amount_bps, free_cancel_hours, "
            "fee_fixed_minor, fee_bps, updated_by, updated_at")


async def terms(q: Database | Tx, project_id: uuid.UUID) -> dict[str, Any] | None:
    """A project's own terms, or None."""
    return await q.fetchrow(f"SELECT {_COLUMNS} FROM bookings_terms WHERE project_id = %s",
                            (project_id,))


async def upsert(tx: Tx, project_id: uuid.UUID, values: dict[str, Any], actor: str,
                 at: dt.datetime) -> dict[str, Any]:
    """Set a project's terms (all of them); the row."""
    return await tx.fetchrow(  # type: ignore[return-value]  # RETURNING gives a row
        "INSERT INTO bookings_terms (project_id, amount_kind, amount_minor, amount_bps, "
        "free_cancel_hours, fee_fixed_minor, fee_bps, updated_by, updated_at) "
        "VALUES (%(p)s, %(amount_kind)s, %(amount_minor)s, %(amount_bps)s, "
        "%(free_cancel_hours)s, %(fee_fixed_minor)s, %(fee_bps)s, %(by)s, %(at)s) "
        "ON CONFLICT (project_id) DO UPDATE SET amount_kind = EXCLUDED.amount_kind, "
        "amount_minor = EXCLUDED.amount_minor, amount_bps = EXCLUDED.amount_bps, "
        "free_cancel_hours = EXCLUDED.free_cancel_hours, "
        "fee_fixed_minor = EXCLUDED.fee_fixed_minor, fee_bps = EXCLUDED.fee_bps, "
        "updated_by = EXCLUDED.updated_by, updated_at = EXCLUDED.updated_at "
        f"RETURNING {_COLUMNS}", {**values, "p": project_id, "by": actor, "at": at})


async def insert_missing(tx: Tx, project_id: uuid.UUID, values: dict[str, Any], actor: str,
                         at: dt.datetime) -> bool:
    """Give a project terms unless it has some; whether it was new."""
    added = await tx.fetchval(
        "INSERT INTO bookings_terms (project_id, amount_kind, amount_minor, amount_bps, "
        "free_cancel_hours, fee_fixed_minor, fee_bps, updated_by, updated_at) "
        "VALUES (%(p)s, %(amount_kind)s, %(amount_minor)s, %(amount_bps)s, "
        "%(free_cancel_hours)s, %(fee_fixed_minor)s, %(fee_bps)s, %(by)s, %(at)s) "
        "ON CONFLICT (project_id) DO NOTHING RETURNING true",
        {**values, "p": project_id, "by": actor, "at": at})
    return bool(added)
