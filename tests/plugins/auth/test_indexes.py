"""The hot statements of sign-in and refresh find their rows through an index."""

from __future__ import annotations

import datetime as dt
import uuid

from propmubi_plugins.auth import store


async def plan(services, sql: str, params) -> str:
    async with services.db.transaction() as tx:
        # With sequential scans priced out, a plan still scanning means no usable index.
        await tx.execute("SET LOCAL enable_seqscan = off")
        rows = await tx.fetch("EXPLAIN " + sql, params)
    return "\n".join(r["QUERY PLAN"] for r in rows)


async def test_guess_and_rotate_use_indexes(services):
    guess = await plan(services, store._GUESS,
                       {"id": uuid.uuid4(), "hash": b"x" * 32, "max": 5})
    assert "Index" in guess and "Seq Scan" not in guess, guess
    rotate = await plan(services, store._ROTATE, (b"x" * 32, dt.timedelta(days=90)))
    assert "auth_refresh_tokens_token_hash_key" in rotate and "Seq Scan" not in rotate, rotate
