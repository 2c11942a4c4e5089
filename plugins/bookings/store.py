"""The SQL of bookings, their history, and the payments and refunds recorded against them:
plain parameterised statements, rows as dicts, no rules and no events (those are the
service's). Terms have their own store (``terms/store.py``).
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from propmubi.db import Database, Tx

#: What every function here takes first: the pools, or an open transaction.
Queries = Database | Tx

_LIVE = "('held', 'payment_pending', 'paid', 'confirmed')"
_EXPIRING = "('held', 'payment_pending')"
_COLUMNS = ("id, unit_id, project_id, buyer_id, status, price_minor, currency, "
            "amount_due_minor, rera_cap_minor, captured_minor, refunded_minor, fee_minor, "
            "refund_minor, free_cancel_hours, fee_fixed_minor, fee_bps, held_at, expires_at, "
            "ceiling_at, extensions_used, max_extensions, confirmed_at, cancelled_at, "
            "updated_at")
_SELECT = f"SELECT {_COLUMNS} FROM bookings_bookings "
#: Columns :func:`update` may set besides the status.
UPDATABLE = ("expires_at", "extensions_used", "captured_minor", "refunded_minor", "fee_minor",
             "refund_minor", "confirmed_at", "cancelled_at")


async def set_lock_timeout(tx: Tx, ms: int) -> str:
    """Set ``lock_timeout`` for the rest of ``tx`` (or until :func:`restore_lock_timeout`);
    the value it had."""
    # One round trip: the scalar subquery is an init plan, read before set_config runs.
    before = await tx.fetchval(
        "SELECT (SELECT current_setting('lock_timeout')) AS before,"
        " set_config('lock_timeout', %s, true)", (f"{int(ms)}ms",))
    return str(before)


async def restore_lock_timeout(tx: Tx, value: str) -> None:
    """Put back the ``lock_timeout`` that :func:`set_lock_timeout` replaced."""
    await tx.execute("SELECT set_config('lock_timeout', %s, true)", (value,))


async def lock_buyer(tx: Tx, buyer_id: uuid.UUID) -> None:
    """Take the buyer's hold lock for the transaction (new holds of one buyer queue on it)."""
    await tx.execute("SELECT pg_advisory_xact_lock(hashtext('bookings.buyer'), "
                     "hashtext(%s::text))", (buyer_id,))


async def insert(tx: Tx, row: dict[str, Any]) -> dict[str, Any]:
    """Insert a new hold; the unique index on live units refuses a second live booking."""
    keys = list(row)
    return await tx.fetchrow(  # type: ignore[return-value]  # RETURNING gives a row
        f"INSERT INTO bookings_bookings ({', '.join(keys)}) "
        f"VALUES ({', '.join(['%s'] * len(keys))}) RETURNING {_COLUMNS}",
        [row[k] for k in keys])


async def booking(q: Queries, booking_id: uuid.UUID, *, lock: bool = False
                  ) -> dict[str, Any] | None:
    """One booking, optionally locked (FOR UPDATE) for the transaction."""
    return await q.fetchrow(_SELECT + "WHERE id = %s" + (" FOR UPDATE" if lock else ""),
                            (booking_id,))


async def lock_many(tx: Tx, ids: list[uuid.UUID]) -> list[dict[str, Any]]:
    """Lock several bookings in id order (so that two transactions never wait on each other in
    a cycle); the rows, in that order."""
    return await tx.fetch(_SELECT + "WHERE id = ANY(%s) ORDER BY id FOR UPDATE",
                          (sorted(ids),))


async def live_on_unit(tx: Tx, unit_id: uuid.UUID) -> dict[str, Any] | None:
    """The unit's live booking, locked, or None."""
    return await tx.fetchrow(_SELECT + f"WHERE unit_id = %s AND status IN {_LIVE} FOR UPDATE",
                             (unit_id,))


async def active_holds(q: Queries, buyer_id: uuid.UUID, now: dt.datetime) -> int:
    """How many unexpired holds (held, payment pending) the buyer keeps."""
    return int(await q.fetchval(
        f"SELECT count(*) FROM bookings_bookings WHERE buyer_id = %s AND status IN {_EXPIRING}"
        " AND expires_at > %s", (buyer_id, now)))


async def update(tx: Tx, booking_id: uuid.UUID, status: str, now: dt.datetime,
                 changes: dict[str, Any]) -> dict[str, Any]:
    """Set a booking's status and the columns in ``changes`` (keys of :data:`UPDATABLE`)."""
    unknown = set(changes) - set(UPDATABLE)
    if unknown:
        raise ValueError(f"not updatable: {sorted(unknown)}")
    sets = "".join(f", {k} = %s" for k in changes)
    return await tx.fetchrow(  # type: ignore[return-value]  # the caller holds the row
        f"UPDATE bookings_bookings SET status = %s, updated_at = %s{sets} WHERE id = %s "
        f"RETURNING {_COLUMNS}", [status, now, *changes.values(), booking_id])


async def add_history(tx: Tx, booking_id: uuid.UUID, from_status: str | None, to_status: str,
                      actor: str, reason: str | None, note: str | None, at: dt.datetime
                      ) -> None:
    """Record one transition."""
    await tx.execute(
        "INSERT INTO bookings_history (booking_id, from_status, to_status, actor, reason, note,"
        " at) VALUES (%s, %s, %s, %s, %s, %s, %s)",
        (booking_id, from_status, to_status, actor, reason, note, at))


async def history(q: Queries, booking_id: uuid.UUID) -> list[dict[str, Any]]:
    """A booking's transitions, oldest first."""
    return await q.fetch(
        "SELECT from_status, to_status, actor, reason, note, at FROM bookings_history "
        "WHERE booking_id = %s ORDER BY id", (booking_id,))


async def stale_ids(q: Queries, now: dt.datetime, limit: int) -> list[uuid.UUID]:
    """Bookings held or payment pending whose time ran out, the longest expired first."""
    rows = await q.fetch(
        f"SELECT id FROM bookings_bookings WHERE status IN {_EXPIRING} AND expires_at <= %s"
        " ORDER BY expires_at, id LIMIT %s", (now, limit))
    return [r["id"] for r in rows]


async def page(q: Queries, *, buyer_id: uuid.UUID | None, status: str | None,
               after: tuple[dt.datetime, uuid.UUID] | None, limit: int
               ) -> list[dict[str, Any]]:
    """Bookings newest first (of one buyer and/or one status), after a keyset position."""
    where: list[str] = ["true"]
    params: list[Any] = []
    if buyer_id is not None:
        where.append("buyer_id = %s")
        params.append(buyer_id)
    if status is not None:
        where.append("status = %s")
        params.append(status)
    if after is not None:
        where.append("(held_at, id) < (%s, %s)")
        params.extend(after)
    return await q.fetch(_SELECT + f"WHERE {' AND '.join(where)} "
                         "ORDER BY held_at DESC, id DESC LIMIT %s", [*params, limit])


async def expiring(q: Queries, now: dt.datetime, until: dt.datetime, limit: int
                   ) -> list[dict[str, Any]]:
    """Holds still running that expire by ``until``, soonest first."""
    return await q.fetch(
        _SELECT + f"WHERE status IN {_EXPIRING} AND expires_at > %s AND expires_at <= %s "
        "ORDER BY expires_at, id LIMIT %s", (now, until, limit))


async def counts_since(q: Queries, since: dt.datetime) -> dict[str, int]:
    """Transitions to held, confirmed and cancelled since ``since``."""
    rows = await q.fetch(
        "SELECT to_status, count(*) AS n FROM bookings_history WHERE to_status IN "
        "('held', 'confirmed', 'cancelled') AND at >= %s GROUP BY to_status", (since,))
    return {r["to_status"]: int(r["n"]) for r in rows}


async def payment(q: Queries, payment_id: uuid.UUID) -> dict[str, Any] | None:
    """A recorded payment (its booking and outcome), or None."""
    return await q.fetchrow(
        "SELECT payment_id, booking_id, amount_minor, currency, outcome FROM bookings_payments"
        " WHERE payment_id = %s", (payment_id,))


async def add_payment(tx: Tx, payment_id: uuid.UUID, booking_id: uuid.UUID, amount_minor: int,
                      currency: str, outcome: str, at: dt.datetime) -> None:
    """Record a payment and what it did."""
    await tx.execute(
        "INSERT INTO bookings_payments (payment_id, booking_id, amount_minor, currency, "
        "outcome, recorded_at) VALUES (%s, %s, %s, %s, %s, %s)",
        (payment_id, booking_id, amount_minor, currency, outcome, at))


async def add_refund(tx: Tx, refund_id: uuid.UUID, booking_id: uuid.UUID, amount_minor: int,
                     cancellation: bool, at: dt.datetime) -> bool:
    """Record a refund; False (and nothing written) when it was recorded before."""
    added = await tx.fetchval(
        "INSERT INTO bookings_refunds (refund_id, booking_id, amount_minor, cancellation, "
        "recorded_at) VALUES (%s, %s, %s, %s, %s) ON CONFLICT (refund_id) DO NOTHING "
        "RETURNING true", (refund_id, booking_id, amount_minor, cancellation, at))
    return bool(added)


async def forget_notes(tx: Tx, buyer_id: uuid.UUID) -> int:
    """Clear the typed notes of a buyer's booking histories; how many were cleared."""
    return await tx.execute(
        "UPDATE bookings_history h SET note = NULL FROM bookings_bookings b "
        "WHERE h.booking_id = b.id AND b.buyer_id = %s AND h.note IS NOT NULL", (buyer_id,))
