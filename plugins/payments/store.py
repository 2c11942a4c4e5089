"""The plugin's SQL and nothing else: plain parameterised statements (``%s`` placeholders,
never text pasted into SQL), each function taking the database or a transaction first and
returning rows as dicts. No rules and no events here; those are service.py's.

Tables, indexes and Redis keys carry the plugin's name (``ctx.keys(...)`` for Redis), and a
plugin reads only its own tables: another plugin's data comes through that plugin's api.py.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from propmubi.db import Database, Tx

#: What every function here takes first: the pools, or an open transaction.
Queries = Database | Tx


async def insert_item(tx: Tx, item_id: uuid.UUID, title: str, note: str, created_by: str,
                      created_at: dt.datetime) -> dict[str, Any]:
    """Insert an item; the new row."""
    rows = await tx.fetch(
        "INSERT INTO payments_items"
        " (id, title, note, created_by, created_at) VALUES (%s, %s, %s, %s, %s)"
        " RETURNING id, title, note, created_by, created_at",
        (item_id, title, note, created_by, created_at))
    return rows[0]


async def item(q: Queries, item_id: uuid.UUID) -> dict[str, Any] | None:
    """One item, or None."""
    return await q.fetchrow(
        "SELECT id, title, note, created_by, created_at"
        " FROM payments_items WHERE id = %s", (item_id,))


async def page(q: Queries, after: tuple[dt.datetime, uuid.UUID] | None,
               limit: int) -> list[dict[str, Any]]:
    """Up to ``limit`` items older than the position ``after``, newest first (the index
    on ``(created_at DESC, id DESC)`` serves every page alike)."""
    if after is None:
        return await q.fetch(
            "SELECT id, title, note, created_by, created_at"
            " FROM payments_items"
            " ORDER BY created_at DESC, id DESC LIMIT %s", (limit,))
    return await q.fetch(
        "SELECT id, title, note, created_by, created_at"
        " FROM payments_items WHERE (created_at, id) < (%s, %s)"
        " ORDER BY created_at DESC, id DESC LIMIT %s", (*after, limit))


async def titles_among(q: Queries, titles: list[str]) -> set[str]:
    """Which of ``titles`` some item already has."""
    rows = await q.fetch(
        "SELECT title FROM payments_items WHERE title = ANY(%s)", (titles,))
    return {row["title"] for row in rows}


async def add_activity(tx: Tx, event_id: uuid.UUID, item_id: uuid.UUID, line: str) -> bool:
    """Record the line of an event; False (and nothing written) when it is already there."""
    added = await tx.fetchval(
        "INSERT INTO payments_activity (event_id, item_id, line)"
        " VALUES (%s, %s, %s) ON CONFLICT (event_id) DO NOTHING RETURNING true",
        (event_id, item_id, line))
    return bool(added)


async def activity(q: Queries, limit: int) -> list[dict[str, Any]]:
    """The newest activity lines."""
    return await q.fetch(
        "SELECT item_id, line, recorded_at"
        " FROM payments_activity"
        " ORDER BY recorded_at DESC, event_id DESC LIMIT %s", (limit,))
