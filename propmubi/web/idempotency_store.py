"""SQL for ``core_idempotency_keys``: claim a key, store or release the answer, purge.

Times are the database's (``now()``), so every web process agrees on leases and expiry. A row
is one caller's key on one route (:class:`Slot`). Its ``owner`` is a random id per claim: only
the request holding the claim stores its answer or releases the key, so a claim taken over after
its lease lapsed is not disturbed by the late first holder.
"""

from __future__ import annotations

import uuid
from typing import Any

import attrs
import orjson

from propmubi.db import Database

__all__ = ["Claim", "Record", "Slot", "claim", "complete", "purge", "release"]

# Attempts at claiming when the row in the way vanishes before it can be read (its holder
# released it in between); past them the key counts as busy.
_ATTEMPTS = 3


@attrs.frozen
class Slot:
    """Where a key lives: the caller's scope, the route (``"POST <name>"``) and the key."""

    scope: str
    route: str
    key: str

    def params(self) -> dict[str, Any]:
        return {"scope": self.scope, "route": self.route, "key": self.key}


@attrs.frozen
class Record:
    """A row held by someone else: a claim (``running``) or a stored answer (``done``)."""

    fingerprint: str
    state: str
    status: int | None = None
    #: ``[[name, value], ...]``, in the order the handler set them.
    headers: list[list[str]] = attrs.Factory(list)
    body: bytes = b""


@attrs.frozen
class Claim:
    """The outcome of :func:`claim`: ours to run (``mine``), or the row in the way (None when
    the key kept changing hands while we looked: treat it as busy)."""

    mine: bool
    record: Record | None = None


_CLAIM = """
INSERT INTO core_idempotency_keys AS k
    (scope, route, key, fingerprint, state, owner, locked_until, created_at, expires_at)
VALUES (%(scope)s, %(route)s, %(key)s, %(fingerprint)s, 'running', %(owner)s,
        now() + make_interval(secs => %(lease)s), now(),
        now() + make_interval(secs => greatest(%(ttl)s, %(lease)s)))
ON CONFLICT (scope, route, key) DO UPDATE
    SET fingerprint = EXCLUDED.fingerprint, state = 'running', owner = EXCLUDED.owner,
        locked_until = EXCLUDED.locked_until, created_at = EXCLUDED.created_at,
        expires_at = EXCLUDED.expires_at, status = NULL, headers = NULL, body = NULL
    WHERE k.expires_at <= now() OR (k.state = 'running' AND k.locked_until <= now())
RETURNING owner
"""

_READ = """
SELECT fingerprint, state, status, headers, body FROM core_idempotency_keys
WHERE scope = %(scope)s AND route = %(route)s AND key = %(key)s
"""


async def claim(db: Database, slot: Slot, fingerprint: str, owner: uuid.UUID, lease: float,
                ttl: float) -> Claim:
    """Claim ``slot`` for ``lease`` seconds, atomically: a new key, an expired answer or a
    lapsed claim becomes ours; otherwise the row in the way is returned. Of two concurrent
    first requests, exactly one gets the claim."""
    params = {**slot.params(), "fingerprint": fingerprint, "owner": owner, "lease": lease,
              "ttl": ttl}
    for _ in range(_ATTEMPTS):
        if await db.fetchval(_CLAIM, params) is not None:
            return Claim(mine=True)
        row = await db.fetchrow(_READ, params)
        if row is not None:
            return Claim(mine=False, record=Record(
                fingerprint=row["fingerprint"], state=row["state"], status=row["status"],
                headers=row["headers"] or [],
                body=bytes(row["body"]) if row["body"] is not None else b""))
    return Claim(mine=False)


async def complete(db: Database, slot: Slot, owner: uuid.UUID, status: int,
                   headers: list[list[str]], body: bytes, ttl: float) -> bool:
    """Store the answer of our claim, kept ``ttl`` seconds from now; False when the claim is no
    longer ours (it lapsed and was taken over, or was purged)."""
    done = await db.execute(
        "UPDATE core_idempotency_keys SET state = 'done', status = %(status)s, "
        "headers = %(headers)s::jsonb, body = %(body)s, locked_until = NULL, "
        "expires_at = now() + make_interval(secs => %(ttl)s) "
        "WHERE scope = %(scope)s AND route = %(route)s AND key = %(key)s "
        "AND owner = %(owner)s AND state = 'running'",
        {**slot.params(), "owner": owner, "status": status,
         "headers": orjson.dumps(headers).decode(), "body": body, "ttl": ttl})
    return done == 1


async def release(db: Database, slot: Slot, owner: uuid.UUID) -> bool:
    """Forget our claim without an answer (the key is free again); False when it was no longer
    ours."""
    gone = await db.execute(
        "DELETE FROM core_idempotency_keys WHERE scope = %(scope)s AND route = %(route)s "
        "AND key = %(key)s AND owner = %(owner)s AND state = 'running'",
        {**slot.params(), "owner": owner})
    return gone == 1


async def purge(db: Database, batch: int = 5000) -> int:
    """Delete every row past its ``expires_at`` (answers older than the TTL, claims whose
    request never finished), in batches; return how many."""
    total = 0
    # The outer test again: a row taken over since the inner query read it is kept.
    sql = ("DELETE FROM core_idempotency_keys WHERE expires_at <= now() "
           "AND (scope, route, key) IN (SELECT scope, route, key FROM core_idempotency_keys "
           "WHERE expires_at <= now() LIMIT %s)")
    while (n := await db.execute(sql, (batch,))) > 0:
        total += n
    return total
