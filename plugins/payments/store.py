"""The payments plugin's SQL: plain parameterised statements, rows as dicts, no rules.

Rows that a change depends on are read ``FOR UPDATE`` by the ``..._for_update`` functions;
the service decides what to lock and in which order.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from propmubi.db import Database, Tx

Queries = Database | Tx

_INTENT = ("id, booking_id, buyer_id, provider, provider_order_id, provider_payment_id,"
           " amount_minor, currency, client, status, captured_minor, refunded_minor,"
           " booking_outcome, failure_reason, created_at, updated_at")
_REFUND = ("id, intent_id, booking_id, provider, provider_refund_id, amount_minor, currency,"
           " status, reason, idempotency_key, requested_by, failure_reason, created_at,"
           " updated_at")
_EVENT = ("id, provider, event_id, kind, raw_type, order_id, payment_id, refund_id,"
          " amount_minor, currency, received_at, processed_at, outcome, intent_id")


# -- intents -----------------------------------------------------------------------------

async def insert_intent(tx: Tx, intent_id: uuid.UUID, booking_id: uuid.UUID,
                        buyer_id: uuid.UUID, provider: str, amount_minor: int, currency: str,
                        now: dt.datetime) -> dict[str, Any]:
    """A new intent (no provider order yet)."""
    rows = await tx.fetch(
        f"INSERT INTO payments_intents (id, booking_id, buyer_id, provider, amount_minor,"
        f" currency, created_at, updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
        f" RETURNING {_INTENT}",
        (intent_id, booking_id, buyer_id, provider, amount_minor, currency, now, now))
    return rows[0]


async def intent(q: Queries, intent_id: uuid.UUID) -> dict[str, Any] | None:
    return await q.fetchrow(f"SELECT {_INTENT} FROM payments_intents WHERE id = %s",
                            (intent_id,))


async def intent_for_update(tx: Tx, intent_id: uuid.UUID) -> dict[str, Any] | None:
    return await tx.fetchrow(
        f"SELECT {_INTENT} FROM payments_intents WHERE id = %s FOR UPDATE", (intent_id,))


async def intent_by_provider_ids(tx: Tx, provider: str, order_id: str | None,
                                 payment_id: str | None) -> dict[str, Any] | None:
    """The intent a provider event is about (by order id, else by payment id), locked."""
    if order_id:
        row = await tx.fetchrow(
            f"SELECT {_INTENT} FROM payments_intents WHERE provider = %s"
            f" AND provider_order_id = %s FOR UPDATE", (provider, order_id))
        if row is not None:
            return row
    if payment_id:
        return await tx.fetchrow(
            f"SELECT {_INTENT} FROM payments_intents WHERE provider = %s"
            f" AND provider_payment_id = %s FOR UPDATE", (provider, payment_id))
    return None


async def open_intent_of_booking(tx: Tx, booking_id: uuid.UUID) -> dict[str, Any] | None:
    """The booking's newest intent that may still be paid (has an order, not failed)."""
    return await tx.fetchrow(
        f"SELECT {_INTENT} FROM payments_intents WHERE booking_id = %s"
        f" AND provider_order_id IS NOT NULL AND status IN ('created', 'attempted')"
        f" ORDER BY created_at DESC LIMIT 1", (booking_id,))


async def intents_of_booking(q: Queries, booking_id: uuid.UUID) -> list[dict[str, Any]]:
    return await q.fetch(f"SELECT {_INTENT} FROM payments_intents WHERE booking_id = %s"
                         f" ORDER BY created_at", (booking_id,))


async def captured_intents_for_update(tx: Tx, booking_id: uuid.UUID) -> list[dict[str, Any]]:
    """A booking's intents that hold captured money, locked in id order."""
    return await tx.fetch(
        f"SELECT {_INTENT} FROM payments_intents WHERE booking_id = %s"
        f" AND captured_minor > 0 ORDER BY id FOR UPDATE", (booking_id,))


async def update_intent(tx: Tx, intent_id: uuid.UUID, now: dt.datetime,
                        **changes: Any) -> dict[str, Any]:
    """Set columns of an intent (names come from the service, never from input)."""
    sets = ", ".join(f"{name} = %s" for name in changes)
    rows = await tx.fetch(
        f"UPDATE payments_intents SET {sets}, updated_at = %s WHERE id = %s"
        f" RETURNING {_INTENT}", (*changes.values(), now, intent_id))
    return rows[0]


async def stuck_intents(q: Queries, before: dt.datetime, since: dt.datetime,
                        limit: int) -> list[dict[str, Any]]:
    """Open intents with a provider order, created after ``since`` and unchanged since
    ``before``, oldest first."""
    return await q.fetch(
        f"SELECT {_INTENT} FROM payments_intents WHERE status IN ('created', 'attempted',"
        f" 'authorized') AND provider_order_id IS NOT NULL AND updated_at < %s"
        f" AND created_at > %s ORDER BY updated_at LIMIT %s", (before, since, limit))


async def orderless_intents(q: Queries, before: dt.datetime) -> list[dict[str, Any]]:
    """Intents whose provider order was never made (the call failed or the process died)."""
    return await q.fetch(
        f"SELECT {_INTENT} FROM payments_intents WHERE provider_order_id IS NULL"
        f" AND status = 'created' AND created_at < %s", (before,))


async def intents_page(q: Queries, status: str | None,
                       after: tuple[dt.datetime, uuid.UUID] | None,
                       limit: int) -> list[dict[str, Any]]:
    where, params = _page_where(status, after)
    return await q.fetch(
        f"SELECT {_INTENT} FROM payments_intents {where}"
        f" ORDER BY created_at DESC, id DESC LIMIT %s", (*params, limit))


def _page_where(status: str | None, after: tuple[dt.datetime, uuid.UUID] | None
                ) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if status:
        clauses.append("status = %s")
        params.append(status)
    if after is not None:
        clauses.append("(created_at, id) < (%s, %s)")
        params.extend(after)
    return ("WHERE " + " AND ".join(clauses)) if clauses else "", params


# -- provider events -----------------------------------------------------------------------

async def insert_event(tx: Tx, row_id: uuid.UUID, provider: str, event: Any, body: bytes,
                       now: dt.datetime) -> bool:
    """Store a verified provider event; False when (provider, event id) is already stored."""
    inserted = await tx.fetchval(
        "INSERT INTO payments_events (id, provider, event_id, kind, raw_type, order_id,"
        " payment_id, refund_id, amount_minor, currency, body, received_at)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT ON CONSTRAINT payments_events_unique DO NOTHING RETURNING true",
        (row_id, provider, event.event_id, event.kind, event.raw_type, event.order_id,
         event.payment_id, event.refund_id, event.amount_minor, event.currency, body, now))
    return bool(inserted)


async def event_for_update(tx: Tx, row_id: uuid.UUID) -> dict[str, Any] | None:
    return await tx.fetchrow(f"SELECT {_EVENT} FROM payments_events WHERE id = %s FOR UPDATE",
                             (row_id,))


async def mark_event(tx: Tx, row_id: uuid.UUID, outcome: str, intent_id: uuid.UUID | None,
                     now: dt.datetime) -> None:
    await tx.execute("UPDATE payments_events SET processed_at = %s, outcome = %s,"
                     " intent_id = %s WHERE id = %s", (now, outcome, intent_id, row_id))


async def events_of_intent(q: Queries, intent: dict[str, Any]) -> list[dict[str, Any]]:
    """The provider events about an intent (applied, or not yet), oldest first."""
    return await q.fetch(
        f"SELECT {_EVENT} FROM payments_events WHERE intent_id = %s OR (provider = %s AND"
        f" order_id = %s) ORDER BY received_at, id",
        (intent["id"], intent["provider"], intent["provider_order_id"]))


# -- refunds -------------------------------------------------------------------------------

async def insert_refund(tx: Tx, refund_id: uuid.UUID, intent: dict[str, Any],
                        amount_minor: int, reason: str, key: str, requested_by: str,
                        now: dt.datetime) -> dict[str, Any] | None:
    """A pending refund; None when its idempotency key already made one."""
    return await tx.fetchrow(
        f"INSERT INTO payments_refunds (id, intent_id, booking_id, provider, amount_minor,"
        f" currency, reason, idempotency_key, requested_by, created_at, updated_at)"
        f" VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
        f" ON CONFLICT (idempotency_key) DO NOTHING RETURNING {_REFUND}",
        (refund_id, intent["id"], intent["booking_id"], intent["provider"], amount_minor,
         intent["currency"], reason, key, requested_by, now, now))


async def refund_by_key(q: Queries, key: str) -> dict[str, Any] | None:
    return await q.fetchrow(f"SELECT {_REFUND} FROM payments_refunds"
                            f" WHERE idempotency_key = %s", (key,))


async def refund(q: Queries, refund_id: uuid.UUID) -> dict[str, Any] | None:
    return await q.fetchrow(f"SELECT {_REFUND} FROM payments_refunds WHERE id = %s",
                            (refund_id,))


async def refund_for_update(tx: Tx, refund_id: uuid.UUID) -> dict[str, Any] | None:
    return await tx.fetchrow(f"SELECT {_REFUND} FROM payments_refunds WHERE id = %s"
                             f" FOR UPDATE", (refund_id,))


async def refund_by_provider_id(tx: Tx, provider: str, provider_refund_id: str
                                ) -> dict[str, Any] | None:
    return await tx.fetchrow(
        f"SELECT {_REFUND} FROM payments_refunds WHERE provider = %s"
        f" AND provider_refund_id = %s FOR UPDATE", (provider, provider_refund_id))


async def update_refund(tx: Tx, refund_id: uuid.UUID, now: dt.datetime,
                        **changes: Any) -> dict[str, Any]:
    sets = ", ".join(f"{name} = %s" for name in changes)
    rows = await tx.fetch(
        f"UPDATE payments_refunds SET {sets}, updated_at = %s WHERE id = %s"
        f" RETURNING {_REFUND}", (*changes.values(), now, refund_id))
    return rows[0]


async def refunds_of_booking(q: Queries, booking_id: uuid.UUID) -> list[dict[str, Any]]:
    return await q.fetch(f"SELECT {_REFUND} FROM payments_refunds WHERE booking_id = %s"
                         f" ORDER BY created_at", (booking_id,))


async def refunds_page(q: Queries, status: str | None,
                       after: tuple[dt.datetime, uuid.UUID] | None,
                       limit: int) -> list[dict[str, Any]]:
    where, params = _page_where(status, after)
    return await q.fetch(
        f"SELECT {_REFUND} FROM payments_refunds {where}"
        f" ORDER BY created_at DESC, id DESC LIMIT %s", (*params, limit))


# -- settlement ----------------------------------------------------------------------------

async def intent_by_payment_id(q: Queries, provider: str, payment_id: str
                               ) -> dict[str, Any] | None:
    return await q.fetchrow(f"SELECT {_INTENT} FROM payments_intents WHERE provider = %s"
                            f" AND provider_payment_id = %s", (provider, payment_id))


async def refund_by_provider_ref(q: Queries, provider: str, provider_refund_id: str
                                 ) -> dict[str, Any] | None:
    return await q.fetchrow(f"SELECT {_REFUND} FROM payments_refunds WHERE provider = %s"
                            f" AND provider_refund_id = %s", (provider, provider_refund_id))


async def upsert_settlement_line(tx: Tx, provider: str, line: Any, intent_id: uuid.UUID | None,
                                 refund_id: uuid.UUID | None, status: str, detail: str,
                                 now: dt.datetime) -> None:
    await tx.execute(
        "INSERT INTO payments_settlement_lines (provider, settled_on, kind, provider_id,"
        " amount_minor, fee_minor, currency, intent_id, refund_id, status, detail, checked_at)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (provider, kind, provider_id) DO UPDATE SET settled_on ="
        " EXCLUDED.settled_on, amount_minor = EXCLUDED.amount_minor, fee_minor ="
        " EXCLUDED.fee_minor, currency = EXCLUDED.currency, intent_id = EXCLUDED.intent_id,"
        " refund_id = EXCLUDED.refund_id, status = EXCLUDED.status, detail = EXCLUDED.detail,"
        " checked_at = EXCLUDED.checked_at",
        (provider, line.settled_on, line.kind, line.provider_id, line.amount_minor,
         line.fee_minor, line.currency, intent_id, refund_id, status, detail, now))


async def settlement_lines(q: Queries, day: dt.date | None, problems_only: bool,
                           limit: int) -> list[dict[str, Any]]:
    """Lines of a day (or the newest days), problems first."""
    clauses: list[str] = []
    params: list[Any] = []
    if day is not None:
        clauses.append("settled_on = %s")
        params.append(day)
    if problems_only:
        clauses.append("status <> 'matched'")
    where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
    return await q.fetch(
        f"SELECT provider, settled_on, kind, provider_id, amount_minor, fee_minor, currency,"
        f" intent_id, refund_id, status, detail, checked_at FROM payments_settlement_lines"
        f" {where} ORDER BY settled_on DESC, (status = 'matched'), provider, provider_id"
        f" LIMIT %s", (*params, limit))
