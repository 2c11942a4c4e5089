"""SQL of the reference plugin."""

from __future__ import annotations

import uuid
from typing import Any

from propmubi.db import Database


async def insert(db: Database, text: str, tags: list[str]) -> dict[str, Any]:
    return await db.fetchrow(
        "INSERT INTO reference_notes (id, text, tags) VALUES (%s, %s, %s) "
        "RETURNING id, text, tags, created_at", (uuid.uuid4(), text, tags))


async def get(db: Database, note_id: uuid.UUID) -> dict[str, Any] | None:
    return await db.fetchrow(
        "SELECT id, text, tags, created_at FROM reference_notes WHERE id = %s", (note_id,))


async def latest(db: Database, limit: int) -> list[dict[str, Any]]:
    return await db.fetch(
        "SELECT id, text, tags, created_at FROM reference_notes "
        "ORDER BY created_at DESC, id DESC LIMIT %s", (limit,))


async def record_job_run(db: Database) -> None:
    await db.execute("INSERT INTO reference_job_runs (notes) "
                     "SELECT count(*) FROM reference_notes")


async def seed(db: Database, count: int) -> None:
    existing = await db.fetchval("SELECT count(*) FROM reference_notes")
    if existing >= count:
        return
    await db.execute(
        "INSERT INTO reference_notes (id, text, tags, created_at) "
        "SELECT gen_random_uuid(), 'seeded note ' || n, ARRAY['seed'], "
        "       now() - make_interval(secs => n) FROM generate_series(%s, %s) AS n",
        (existing + 1, count))
