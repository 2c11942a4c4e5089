"""The SQL of site visits: plain parameterised statements over crm_visits and
crm_visit_history (and the lead rows they join), rows as dicts. No rules, no events."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from propmubi.db import Database, Tx

Queries = Database | Tx

#: A visit with its lead's advisor (and their user) and the lead's name.
_VISIT = ("SELECT v.*, l.agent_id, l.name AS lead_name, l.stage AS lead_stage,"
          " l.closed_at AS lead_closed_at, a.user_id AS advisor_user_id,"
          " a.name AS agent_name FROM crm_visits v JOIN crm_leads l ON l.id = v.lead_id"
          " LEFT JOIN crm_agents a ON a.agent_id = l.agent_id ")


async def lock_slot(tx: Tx, project_id: uuid.UUID, starts_at: dt.datetime) -> None:
    """Serialise the bookings of one slot of one project until the transaction ends."""
    await tx.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                     (f"crm:visit-slot:{project_id}:{starts_at.timestamp():.0f}",))


async def booked(q: Queries, project_id: uuid.UUID, starts_at: dt.datetime) -> int:
    """Scheduled visits of one slot (run after :func:`lock_slot`: a new statement sees what
    the bookings it waited for committed)."""
    return int(await q.fetchval(
        "SELECT count(*) FROM crm_visits WHERE project_id = %s AND starts_at = %s"
        " AND status = 'scheduled'", (project_id, starts_at)) or 0)


async def booked_between(q: Queries, project_id: uuid.UUID, lo: dt.datetime,
                         hi: dt.datetime) -> dict[dt.datetime, int]:
    """Scheduled visits per slot start in ``[lo, hi)``."""
    rows = await q.fetch(
        "SELECT starts_at, count(*) AS n FROM crm_visits WHERE project_id = %s"
        " AND status = 'scheduled' AND starts_at >= %s AND starts_at < %s GROUP BY starts_at",
        (project_id, lo, hi))
    return {r["starts_at"]: int(r["n"]) for r in rows}


async def buyer_of(q: Queries, lead_id: uuid.UUID) -> uuid.UUID | None:
    """The user of the lead's first enquiry sent by a signed-in user (None: a partner's)."""
    value = await q.fetchval(
        "SELECT user_id FROM crm_enquiries WHERE lead_id = %s AND user_id IS NOT NULL"
        " ORDER BY created_at, id LIMIT 1", (lead_id,))
    return value if isinstance(value, uuid.UUID) else None


async def is_buyer(q: Queries, lead_id: uuid.UUID, user_id: uuid.UUID) -> bool:
    """Whether the user sent one of the lead's enquiries."""
    return bool(await q.fetchval(
        "SELECT EXISTS (SELECT 1 FROM crm_enquiries WHERE lead_id = %s AND user_id = %s)",
        (lead_id, user_id)))


async def scheduled_of_lead(q: Queries, lead_id: uuid.UUID) -> dict[str, Any] | None:
    """The lead's scheduled visit, if any."""
    return await q.fetchrow("SELECT * FROM crm_visits WHERE lead_id = %s"
                            " AND status = 'scheduled'", (lead_id,))


async def insert_visit(tx: Tx, row: dict[str, Any]) -> None:
    """A new scheduled visit."""
    await tx.execute(
        "INSERT INTO crm_visits (id, lead_id, project_id, buyer_user_id, starts_at, ends_at,"
        " stage_before, booked_by, remind_24h_at, remind_1h_at, created_at, updated_at)"
        " VALUES (%(id)s, %(lead_id)s, %(project_id)s, %(buyer_user_id)s, %(starts_at)s,"
        " %(ends_at)s, %(stage_before)s, %(booked_by)s, %(remind_24h_at)s, %(remind_1h_at)s,"
        " %(at)s, %(at)s)", row)


async def move_visit(tx: Tx, visit_id: uuid.UUID, values: dict[str, Any]) -> None:
    """A new time for a scheduled visit; its reminders are armed again for that time."""
    await tx.execute(
        "UPDATE crm_visits SET starts_at = %(starts_at)s, ends_at = %(ends_at)s,"
        " remind_24h_at = %(remind_24h_at)s, reminded_24h_at = NULL,"
        " remind_1h_at = %(remind_1h_at)s, reminded_1h_at = NULL,"
        " reschedules = reschedules + 1, updated_at = %(at)s WHERE id = %(id)s",
        {**values, "id": visit_id})


async def close_visit(tx: Tx, visit_id: uuid.UUID, status: str, at: dt.datetime, *,
                      attended: bool | None = None, rating: int | None = None,
                      notes: str | None = None, cancel_reason: str | None = None) -> bool:
    """End a scheduled visit (completed, cancelled, no_show); False when it was not
    scheduled any more."""
    return bool(await tx.fetchval(
        "UPDATE crm_visits SET status = %s, attended = %s, rating = %s, notes = %s,"
        " cancel_reason = %s, closed_at = %s, updated_at = %s"
        " WHERE id = %s AND status = 'scheduled' RETURNING true",
        (status, attended, rating, notes, cancel_reason, at, at, visit_id)))


async def add_history(tx: Tx, visit_id: uuid.UUID, kind: str, actor: str, at: dt.datetime, *,
                      starts_at: dt.datetime | None = None,
                      from_starts_at: dt.datetime | None = None,
                      reason: str | None = None) -> None:
    """Append a change to a visit's history."""
    await tx.execute(
        "INSERT INTO crm_visit_history (visit_id, kind, from_starts_at, starts_at, reason,"
        " actor, at) VALUES (%s, %s, %s, %s, %s, %s, %s)",
        (visit_id, kind, from_starts_at, starts_at, reason, actor, at))


async def visit(q: Queries, visit_id: uuid.UUID, *, lock: bool = False
                ) -> dict[str, Any] | None:
    """One visit with its lead's advisor, optionally locked."""
    return await q.fetchrow(_VISIT + "WHERE v.id = %s" + (" FOR UPDATE OF v" if lock else ""),
                            (visit_id,))


async def history(q: Queries, visit_id: uuid.UUID) -> list[dict[str, Any]]:
    """A visit's history, oldest first."""
    return await q.fetch("SELECT * FROM crm_visit_history WHERE visit_id = %s ORDER BY id",
                         (visit_id,))


async def of_lead(q: Queries, lead_id: uuid.UUID) -> list[dict[str, Any]]:
    """A lead's visits, latest first."""
    return await q.fetch(_VISIT + "WHERE v.lead_id = %s ORDER BY v.starts_at DESC, v.id DESC",
                         (lead_id,))


async def of_agent(q: Queries, agent_id: uuid.UUID, status: str,
                   after: tuple[dt.datetime, uuid.UUID] | None, limit: int
                   ) -> list[dict[str, Any]]:
    """Visits of an advisor's leads in one status, soonest first (keyset pages)."""
    return await _soonest(q, "l.agent_id", agent_id, status, after, limit)


async def of_buyer(q: Queries, user_id: uuid.UUID, status: str,
                   after: tuple[dt.datetime, uuid.UUID] | None, limit: int
                   ) -> list[dict[str, Any]]:
    """Visits of a buyer (``buyer_user_id``) in one status, soonest first (keyset pages)."""
    return await _soonest(q, "v.buyer_user_id", user_id, status, after, limit)


async def _soonest(q: Queries, column: str, value: uuid.UUID, status: str,
                   after: tuple[dt.datetime, uuid.UUID] | None, limit: int
                   ) -> list[dict[str, Any]]:
    """Visits whose ``column`` (this module's callers', never input) is ``value``, in one
    status, soonest first, after the keyset position ``after``."""
    sql = _VISIT + f"WHERE {column} = %s AND v.status = %s"
    params: list[Any] = [value, status]
    if after is not None:
        sql += " AND (v.starts_at, v.id) > (%s, %s)"
        params += [after[0], after[1]]
    return await q.fetch(sql + " ORDER BY v.starts_at, v.id LIMIT %s", (*params, limit))


async def upcoming(q: Queries, since: dt.datetime, limit: int) -> list[dict[str, Any]]:
    """Scheduled visits ending after ``since``, soonest first (the console's page)."""
    return await q.fetch(_VISIT + "WHERE v.status = 'scheduled' AND v.ends_at > %s"
                         " ORDER BY v.starts_at, v.id LIMIT %s", (since, limit))


# --------------------------------------------------------------------------------------------
# The jobs
# --------------------------------------------------------------------------------------------

#: The reminder columns, by ``which``.
REMINDERS = {"24h": ("remind_24h_at", "reminded_24h_at"),
             "1h": ("remind_1h_at", "reminded_1h_at")}


async def reminders_due(q: Queries, which: str, now: dt.datetime, not_after: dt.timedelta,
                        limit: int) -> list[dict[str, Any]]:
    """Scheduled visits whose ``which`` reminder is due and not sent, while there is still
    more than ``not_after`` before the visit (a stale reminder is never sent late)."""
    due, sent = REMINDERS[which]
    return await q.fetch(
        f"SELECT id FROM crm_visits WHERE status = 'scheduled' AND {sent} IS NULL"
        f" AND {due} IS NOT NULL AND {due} <= %s AND starts_at > %s"
        f" ORDER BY {due}, id LIMIT %s", (now, now + not_after, limit))


async def mark_reminded(tx: Tx, visit_id: uuid.UUID, which: str, now: dt.datetime,
                        not_after: dt.timedelta) -> dict[str, Any] | None:
    """Mark the ``which`` reminder of a visit sent; None when it already was, or is not due
    any more (rescheduled, closed). The row as it is now otherwise."""
    due, sent = REMINDERS[which]
    return await tx.fetchrow(
        f"UPDATE crm_visits SET {sent} = %s WHERE id = %s AND status = 'scheduled'"
        f" AND {sent} IS NULL AND {due} IS NOT NULL AND {due} <= %s AND starts_at > %s"
        " RETURNING *", (now, visit_id, now, now + not_after))


async def overdue(q: Queries, ended_before: dt.datetime, limit: int) -> list[dict[str, Any]]:
    """Scheduled visits that ended before ``ended_before``, oldest first."""
    return await q.fetch("SELECT id FROM crm_visits WHERE status = 'scheduled'"
                         " AND ends_at < %s ORDER BY starts_at, id LIMIT %s",
                         (ended_before, limit))


async def mark_no_show(tx: Tx, visit_id: uuid.UUID, ended_before: dt.datetime,
                       at: dt.datetime) -> bool:
    """A scheduled visit that ended before ``ended_before`` becomes a no-show; False when
    it was not (any more)."""
    return bool(await tx.fetchval(
        "UPDATE crm_visits SET status = 'no_show', attended = false, closed_at = %s,"
        " updated_at = %s WHERE id = %s AND status = 'scheduled' AND ends_at < %s"
        " RETURNING true", (at, at, visit_id, ended_before)))
