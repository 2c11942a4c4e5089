"""The notifications plugin's SQL and nothing else: plain parameterised statements, each
function taking the database or a transaction first and returning rows as dicts. The rules
(who may, when to send, what a failure means) are in service.py and delivery.py.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any

from propmubi.db import Database, Tx

#: What every function here takes first: the pools, or an open transaction.
Queries = Database | Tx
Position = tuple[dt.datetime, uuid.UUID]

_TEMPLATE = ("id, type, channel, category, kind, subject, body, variables, dlt_template_id,"
             " active, created_by, created_at, updated_by, updated_at")
_DELIVERY = ("d.id, d.notification_id, d.channel, d.user_id, d.template_id, d.category, d.kind,"
             " d.addresses, d.address_index, d.status, d.reason, d.attempts, d.provider,"
             " d.pinned, d.message_key, d.next_attempt_at, d.lease_expires_at, d.counted_on,"
             " d.provider_message_id, d.sent_at, d.masked_at, d.created_at, d.updated_at")
_DEVICE = "token, user_id, platform, created_at, last_seen_at"


# -- templates ----------------------------------------------------------------------------------

async def insert_template(tx: Tx, row: dict[str, Any]) -> dict[str, Any] | None:
    """Insert a template; the new row, or None when its (type, channel) is taken."""
    return await tx.fetchrow(
        "INSERT INTO notifications_templates (id, type, channel, category, kind, subject, body,"
        " variables, dlt_template_id, active, created_by, created_at, updated_by, updated_at)"
        " VALUES (%(id)s, %(type)s, %(channel)s, %(category)s, %(kind)s, %(subject)s, %(body)s,"
        " %(variables)s, %(dlt_template_id)s, %(active)s, %(created_by)s, %(created_at)s,"
        " %(created_by)s, %(created_at)s)"
        f" ON CONFLICT (type, channel) DO NOTHING RETURNING {_TEMPLATE}", row)


async def update_template(tx: Tx, row: dict[str, Any]) -> dict[str, Any] | None:
    """Replace a template's fields; the row, or None when there is no such template."""
    return await tx.fetchrow(
        "UPDATE notifications_templates SET type = %(type)s, channel = %(channel)s,"
        " category = %(category)s, kind = %(kind)s, subject = %(subject)s, body = %(body)s,"
        " variables = %(variables)s, dlt_template_id = %(dlt_template_id)s,"
        " active = %(active)s, updated_by = %(updated_by)s, updated_at = %(updated_at)s"
        f" WHERE id = %(id)s RETURNING {_TEMPLATE}", row)


async def template(q: Queries, template_id: uuid.UUID) -> dict[str, Any] | None:
    """One template, or None."""
    return await q.fetchrow(
        f"SELECT {_TEMPLATE} FROM notifications_templates WHERE id = %s", (template_id,))


async def template_of(q: Queries, type_: str, channel: str) -> dict[str, Any] | None:
    """The template of ``type_`` on ``channel``, or None."""
    return await q.fetchrow(
        f"SELECT {_TEMPLATE} FROM notifications_templates WHERE type = %s AND channel = %s",
        (type_, channel))


async def templates_of_type(q: Queries, type_: str) -> list[dict[str, Any]]:
    """Every template of a notification type."""
    return await q.fetch(
        f"SELECT {_TEMPLATE} FROM notifications_templates WHERE type = %s", (type_,))


async def templates_page(q: Queries, channel: str | None, type_: str | None,
                         after: Position | None, limit: int) -> list[dict[str, Any]]:
    """Templates newest first, optionally of one channel or type."""
    where: list[str] = ["true"]
    params: list[Any] = []
    if channel is not None:
        where.append("channel = %s")
        params.append(channel)
    if type_ is not None:
        where.append("type = %s")
        params.append(type_)
    if after is not None:
        where.append("(created_at, id) < (%s, %s)")
        params += list(after)
    return await q.fetch(
        f"SELECT {_TEMPLATE} FROM notifications_templates WHERE {' AND '.join(where)}"
        " ORDER BY created_at DESC, id DESC LIMIT %s", (*params, limit))


async def template_keys(q: Queries) -> set[tuple[str, str]]:
    """Every (type, channel) that has a template."""
    rows = await q.fetch("SELECT type, channel FROM notifications_templates")
    return {(r["type"], r["channel"]) for r in rows}


# -- notifications and deliveries ---------------------------------------------------------------

async def insert_notification(tx: Tx, row: dict[str, Any]) -> bool:
    """Insert a notification; False (nothing written) when its dedupe_key exists."""
    inserted = await tx.fetchval(
        "INSERT INTO notifications_notifications (id, type, user_id, time_zone, variables,"
        " dedupe_key, requested_by, created_at) VALUES (%(id)s, %(type)s, %(user_id)s,"
        " %(time_zone)s, %(variables)s, %(dedupe_key)s, %(requested_by)s, %(created_at)s)"
        " ON CONFLICT (dedupe_key) WHERE dedupe_key IS NOT NULL DO NOTHING RETURNING true", row)
    return bool(inserted)


async def notification(q: Queries, notification_id: uuid.UUID) -> dict[str, Any] | None:
    """One notification, or None."""
    return await q.fetchrow(
        "SELECT id, type, user_id, time_zone, variables, dedupe_key, requested_by, created_at"
        " FROM notifications_notifications WHERE id = %s", (notification_id,))


async def notification_by_key(q: Queries, dedupe_key: str) -> dict[str, Any] | None:
    """The notification of a dedupe key, or None."""
    return await q.fetchrow(
        "SELECT id, type, user_id, time_zone, variables, dedupe_key, requested_by, created_at"
        " FROM notifications_notifications WHERE dedupe_key = %s", (dedupe_key,))


async def insert_delivery(tx: Tx, row: dict[str, Any]) -> None:
    """Insert a delivery."""
    await tx.execute(
        "INSERT INTO notifications_deliveries (id, notification_id, channel, user_id,"
        " template_id, category, kind, addresses, status, provider, message_key,"
        " next_attempt_at, masked_at, created_at, updated_at) VALUES (%(id)s,"
        " %(notification_id)s, %(channel)s, %(user_id)s, %(template_id)s, %(category)s,"
        " %(kind)s, %(addresses)s, %(status)s, %(provider)s, %(message_key)s,"
        " %(next_attempt_at)s, %(masked_at)s, %(created_at)s, %(created_at)s)",
        {"masked_at": None, **row})


async def deliveries_of(q: Queries, notification_id: uuid.UUID) -> list[dict[str, Any]]:
    """The deliveries of a notification, by channel."""
    return await q.fetch(
        f"SELECT {_DELIVERY} FROM notifications_deliveries d WHERE d.notification_id = %s"
        " ORDER BY d.channel", (notification_id,))


async def lock_delivery(tx: Tx, delivery_id: uuid.UUID, statuses: Sequence[str],
                        due_by: dt.datetime | None) -> dict[str, Any] | None:
    """Lock a delivery in one of ``statuses`` (due by ``due_by`` when given), with its
    notification's type, zone and variables; None when it is not so, or another
    transaction holds it (SKIP LOCKED: two workers never claim the same delivery)."""
    due = " AND d.next_attempt_at <= %s" if due_by is not None else ""
    params: tuple[Any, ...] = (delivery_id, list(statuses))
    if due_by is not None:
        params += (due_by,)
    return await tx.fetchrow(
        f"SELECT {_DELIVERY}, n.type, n.time_zone, n.variables"
        " FROM notifications_deliveries d"
        " JOIN notifications_notifications n ON n.id = d.notification_id"
        f" WHERE d.id = %s AND d.status = ANY(%s){due}"
        " FOR UPDATE OF d SKIP LOCKED", params)


async def lock_delivery_wait(tx: Tx, delivery_id: uuid.UUID) -> dict[str, Any] | None:
    """Lock a delivery, waiting for whoever holds it (recording an outcome)."""
    return await tx.fetchrow(
        f"SELECT {_DELIVERY} FROM notifications_deliveries d WHERE d.id = %s FOR UPDATE",
        (delivery_id,))


async def set_delivery(tx: Tx, delivery_id: uuid.UUID, **values: Any) -> None:
    """Set some columns of a delivery (names are this module's callers', never input)."""
    columns = ", ".join(f"{name} = %s" for name in values)
    await tx.execute(f"UPDATE notifications_deliveries SET {columns} WHERE id = %s",
                     (*values.values(), delivery_id))


async def due_deliveries(q: Queries, now: dt.datetime, limit: int) -> list[uuid.UUID]:
    """Templated deliveries waiting to be sent whose time has come, the oldest due first."""
    rows = await q.fetch(
        "SELECT id FROM notifications_deliveries WHERE status IN ('pending', 'deferred')"
        " AND next_attempt_at <= %s AND template_id IS NOT NULL"
        " ORDER BY next_attempt_at LIMIT %s", (now, limit))
    return [r["id"] for r in rows]


async def lock_expired_leases(tx: Tx, now: dt.datetime, limit: int) -> list[dict[str, Any]]:
    """Deliveries left ``sending`` past their lease (their worker stopped), locked."""
    return await tx.fetch(
        f"SELECT {_DELIVERY}, n.type FROM notifications_deliveries d"
        " JOIN notifications_notifications n ON n.id = d.notification_id"
        " WHERE d.status = 'sending' AND d.lease_expires_at < %s"
        " ORDER BY d.lease_expires_at LIMIT %s FOR UPDATE OF d SKIP LOCKED", (now, limit))


async def counted_today(tx: Tx, user_id: uuid.UUID, day: dt.date) -> int:
    """Non-critical messages of a user counted against the cap of ``day``."""
    return int(await tx.fetchval(
        "SELECT count(*) FROM notifications_deliveries WHERE user_id = %s AND counted_on = %s"
        " AND status IN ('sending', 'sent', 'unknown')", (user_id, day)) or 0)


async def lock_user_cap(tx: Tx, user_id: uuid.UUID) -> None:
    """Serialise the cap checks of one user until ``tx`` ends."""
    await tx.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                     (f"notifications:cap:{user_id}",))


# -- attempts -----------------------------------------------------------------------------------

async def insert_attempt(tx: Tx, delivery_id: uuid.UUID, attempt_no: int, provider: str,
                         address: str, started_at: dt.datetime) -> None:
    """Record the start of an attempt."""
    await tx.execute(
        "INSERT INTO notifications_attempts (delivery_id, attempt_no, provider, address,"
        " status, started_at) VALUES (%s, %s, %s, %s, 'sending', %s)",
        (delivery_id, attempt_no, provider, address, started_at))


async def finish_attempt(tx: Tx, delivery_id: uuid.UUID, attempt_no: int, status: str,
                         error: str | None, provider_message_id: str | None,
                         finished_at: dt.datetime, duration_ms: int | None) -> None:
    """Record how an attempt ended."""
    await tx.execute(
        "UPDATE notifications_attempts SET status = %s, error = %s, provider_message_id = %s,"
        " finished_at = %s, duration_ms = %s WHERE delivery_id = %s AND attempt_no = %s",
        (status, error, provider_message_id, finished_at, duration_ms, delivery_id,
         attempt_no))


async def attempts_of(q: Queries, delivery_id: uuid.UUID) -> list[dict[str, Any]]:
    """Every attempt of a delivery, first first."""
    return await q.fetch(
        "SELECT attempt_no, provider, address, status, error, provider_message_id, started_at,"
        " finished_at, duration_ms FROM notifications_attempts WHERE delivery_id = %s"
        " ORDER BY attempt_no", (delivery_id,))


async def insert_decision(tx: Tx, row: dict[str, Any]) -> None:
    """Record staff's decision about an ``unknown`` delivery."""
    await tx.execute(
        "INSERT INTO notifications_decisions (id, delivery_id, decision, note, actor,"
        " decided_at) VALUES (%(id)s, %(delivery_id)s, %(decision)s, %(note)s, %(actor)s,"
        " %(decided_at)s)", row)


async def decisions_of(q: Queries, delivery_id: uuid.UUID) -> list[dict[str, Any]]:
    """Staff's decisions about a delivery, first first."""
    return await q.fetch(
        "SELECT decision, note, actor, decided_at FROM notifications_decisions"
        " WHERE delivery_id = %s ORDER BY decided_at, id", (delivery_id,))


# -- preferences --------------------------------------------------------------------------------

async def opted_out(q: Queries, user_id: uuid.UUID) -> set[tuple[str, str]]:
    """The (category, channel) pairs a user opted out of."""
    rows = await q.fetch("SELECT category, channel FROM notifications_preferences"
                         " WHERE user_id = %s", (user_id,))
    return {(r["category"], r["channel"]) for r in rows}


async def is_opted_out(q: Queries, user_id: uuid.UUID, category: str, channel: str) -> bool:
    """Whether a user opted out of a category on a channel."""
    return bool(await q.fetchval(
        "SELECT true FROM notifications_preferences WHERE user_id = %s AND category = %s"
        " AND channel = %s", (user_id, category, channel)))


async def replace_opt_outs(tx: Tx, user_id: uuid.UUID, pairs: Sequence[tuple[str, str]],
                           at: dt.datetime) -> None:
    """Make ``pairs`` the user's opt-outs (those already there keep their time)."""
    keep = [f"{c}:{ch}" for c, ch in pairs]
    await tx.execute("DELETE FROM notifications_preferences WHERE user_id = %s"
                     " AND NOT (category || ':' || channel = ANY(%s))", (user_id, keep))
    for category, channel in pairs:
        await add_opt_out(tx, user_id, category, channel, "preferences", at)


async def add_opt_out(tx: Tx, user_id: uuid.UUID, category: str, channel: str, source: str,
                      at: dt.datetime) -> None:
    """Opt a user out of a category on a channel (nothing when already out)."""
    await tx.execute(
        "INSERT INTO notifications_preferences (user_id, category, channel, source,"
        " opted_out_at) VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
        (user_id, category, channel, source, at))


# -- devices ------------------------------------------------------------------------------------

async def upsert_device(tx: Tx, user_id: uuid.UUID, token: str, platform: str,
                        at: dt.datetime) -> dict[str, Any]:
    """Register a token for a user, or refresh it (``last_seen_at``); a token another user
    held moves to this one and counts as new (``created_at``)."""
    row = await tx.fetchrow(
        "INSERT INTO notifications_devices AS d (token, user_id, platform, created_at,"
        " last_seen_at) VALUES (%(token)s, %(user_id)s, %(platform)s, %(at)s, %(at)s)"
        " ON CONFLICT (token) DO UPDATE SET platform = EXCLUDED.platform,"
        " last_seen_at = EXCLUDED.last_seen_at,"
        " created_at = CASE WHEN d.user_id = EXCLUDED.user_id THEN d.created_at"
        "                   ELSE EXCLUDED.created_at END,"
        " user_id = EXCLUDED.user_id"
        f" RETURNING {_DEVICE}",
        {"token": token, "user_id": user_id, "platform": platform, "at": at})
    assert row is not None
    return row


async def trim_devices(tx: Tx, user_id: uuid.UUID, keep: int) -> int:
    """Forget a user's devices beyond the ``keep`` most recently seen; how many."""
    rows = await tx.fetch(
        "DELETE FROM notifications_devices WHERE token IN (SELECT token FROM"
        " notifications_devices WHERE user_id = %s"
        " ORDER BY last_seen_at DESC, created_at DESC OFFSET %s) RETURNING token",
        (user_id, keep))
    return len(rows)


async def devices_of(q: Queries, user_id: uuid.UUID, limit: int | None = None
                     ) -> list[dict[str, Any]]:
    """A user's devices, the most recently seen first."""
    return await q.fetch(
        f"SELECT {_DEVICE} FROM notifications_devices WHERE user_id = %s"
        " ORDER BY last_seen_at DESC, created_at DESC LIMIT %s", (user_id, limit))


async def delete_device(tx: Tx, token: str, user_id: uuid.UUID | None = None) -> bool:
    """Forget a token (only when it is ``user_id``'s, when given); whether it existed."""
    owner = " AND user_id = %s" if user_id is not None else ""
    params: tuple[Any, ...] = (token,) if user_id is None else (token, user_id)
    return bool(await tx.fetchval(
        f"DELETE FROM notifications_devices WHERE token = %s{owner} RETURNING true", params))


async def delete_user_devices(tx: Tx, user_id: uuid.UUID) -> list[str]:
    """Forget every device of a user; their tokens."""
    rows = await tx.fetch("DELETE FROM notifications_devices WHERE user_id = %s"
                          " RETURNING token", (user_id,))
    return [r["token"] for r in rows]


async def delete_idle_devices(tx: Tx, seen_before: dt.datetime, limit: int) -> int:
    """Forget devices not seen since ``seen_before`` (at most ``limit``); how many."""
    rows = await tx.fetch(
        "DELETE FROM notifications_devices WHERE token IN (SELECT token FROM"
        " notifications_devices WHERE last_seen_at < %s LIMIT %s) RETURNING token",
        (seen_before, limit))
    return len(rows)


# -- privacy: erasure and retention -------------------------------------------------------------

async def lock_user_deliveries(tx: Tx, user_id: uuid.UUID) -> list[dict[str, Any]]:
    """Every delivery of a user, locked (waiting for a claim or a record in progress)."""
    return await tx.fetch(
        f"SELECT {_DELIVERY} FROM notifications_deliveries d WHERE d.user_id = %s"
        " ORDER BY d.created_at FOR UPDATE", (user_id,))


async def lock_old_unmasked(tx: Tx, before: dt.datetime, limit: int) -> list[dict[str, Any]]:
    """Finished deliveries created before ``before`` whose addresses are whole, locked."""
    return await tx.fetch(
        f"SELECT {_DELIVERY} FROM notifications_deliveries d WHERE d.masked_at IS NULL"
        " AND d.created_at < %s AND d.status IN ('sent', 'failed', 'skipped', 'unknown')"
        " ORDER BY d.created_at LIMIT %s FOR UPDATE SKIP LOCKED", (before, limit))


async def attempts_to_mask(tx: Tx, delivery_ids: Sequence[uuid.UUID]
                           ) -> list[dict[str, Any]]:
    """The attempts of some deliveries, with their address and error."""
    return await tx.fetch(
        "SELECT delivery_id, attempt_no, address, error FROM notifications_attempts"
        " WHERE delivery_id = ANY(%s)", (list(delivery_ids),))


async def set_attempt_text(tx: Tx, delivery_id: uuid.UUID, attempt_no: int, address: str,
                           error: str | None) -> None:
    """Replace an attempt's address and error text (masking)."""
    await tx.execute(
        "UPDATE notifications_attempts SET address = %s, error = %s"
        " WHERE delivery_id = %s AND attempt_no = %s", (address, error, delivery_id, attempt_no))


async def forget_user_variables(tx: Tx, user_id: uuid.UUID) -> int:
    """Clear the variables (the values rendered into messages) of a user's notifications."""
    rows = await tx.fetch(
        "UPDATE notifications_notifications SET variables = '{}' WHERE user_id = %s"
        " AND variables <> '{}' RETURNING id", (user_id,))
    return len(rows)


async def forget_old_variables(tx: Tx, before: dt.datetime, limit: int) -> int:
    """Clear the variables of notifications created before ``before`` with no delivery
    still to send (at most ``limit``); how many."""
    rows = await tx.fetch(
        "UPDATE notifications_notifications SET variables = '{}' WHERE id IN ("
        " SELECT n.id FROM notifications_notifications n WHERE n.created_at < %s"
        " AND n.variables <> '{}' AND NOT EXISTS (SELECT 1 FROM notifications_deliveries d"
        "  WHERE d.notification_id = n.id AND d.status IN ('pending', 'deferred', 'sending'))"
        " LIMIT %s FOR UPDATE SKIP LOCKED) RETURNING id", (before, limit))
    return len(rows)


async def delete_opt_outs(tx: Tx, user_id: uuid.UUID) -> int:
    """Forget a user's opt-outs; how many."""
    rows = await tx.fetch("DELETE FROM notifications_preferences WHERE user_id = %s"
                          " RETURNING category", (user_id,))
    return len(rows)


# -- the console --------------------------------------------------------------------------------

async def ledger_page(q: Queries, status: str | None, channel: str | None,
                      after: Position | None, limit: int) -> list[dict[str, Any]]:
    """Deliveries newest first (by status and/or channel), with their notification's type."""
    where: list[str] = ["true"]
    params: list[Any] = []
    if status is not None:
        where.append("d.status = %s")
        params.append(status)
    if channel is not None:
        where.append("d.channel = %s")
        params.append(channel)
    if after is not None:
        where.append("(d.created_at, d.id) < (%s, %s)")
        params += list(after)
    return await q.fetch(
        f"SELECT {_DELIVERY}, n.type FROM notifications_deliveries d"
        " JOIN notifications_notifications n ON n.id = d.notification_id"
        f" WHERE {' AND '.join(where)} ORDER BY d.created_at DESC, d.id DESC LIMIT %s",
        (*params, limit))


async def delivery_detail(q: Queries, delivery_id: uuid.UUID) -> dict[str, Any] | None:
    """A delivery with its notification's type, zone, dedupe key and requester."""
    return await q.fetchrow(
        f"SELECT {_DELIVERY}, n.type, n.time_zone, n.dedupe_key, n.requested_by"
        " FROM notifications_deliveries d"
        " JOIN notifications_notifications n ON n.id = d.notification_id WHERE d.id = %s",
        (delivery_id,))


async def counts_since(q: Queries, since: dt.datetime) -> dict[str, int]:
    """Deliveries sent and failed since ``since``, and those deferred now."""
    row = await q.fetchrow(
        "SELECT (SELECT count(*) FROM notifications_deliveries WHERE status = 'sent'"
        "        AND updated_at >= %s) AS sent,"
        " (SELECT count(*) FROM notifications_deliveries WHERE status IN ('failed', 'unknown')"
        "        AND updated_at >= %s) AS failed,"
        " (SELECT count(*) FROM notifications_deliveries WHERE status = 'deferred') AS deferred",
        (since, since))
    return {k: int(v) for k, v in (row or {}).items()}
