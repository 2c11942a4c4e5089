"""The agents plugin's SQL and nothing else: plain parameterised statements, each function
taking the database or a transaction first and returning rows as dicts. No rules and no events
here; those are service.py's. It reads only the agents_* tables.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from propmubi.db import Database, Tx

#: What every function here takes first: the pools, or an open transaction.
Queries = Database | Tx

_AGENT_COLUMNS = ("id, user_id, display_name, phone, email, languages, status, capacity, "
                  "suspended_at, suspended_note, created_by, created_at, updated_at, erased_at")
#: Profile columns a service may change with :func:`update_agent` (a fixed list: the SQL
#: names each one; input never becomes an identifier).
AGENT_EDITABLE = ("display_name", "phone", "email", "languages", "capacity")

_REGISTRATION_COLUMNS = ("id, agent_id, number, state, valid_from, valid_until, status, reason, "
                         "submitted_at, decided_at, decided_by, expiry_notified_at, lapsed_at")
_LISTING_COLUMNS = ("id, agent_id, project_id, status, reason, requested_at, decided_at, "
                    "decided_by")


# -- agents ----------------------------------------------------------------------------------

async def insert_agent(tx: Tx, row: dict[str, Any]) -> bool:
    """A new agent; False (nothing written) when the user already has a profile."""
    return await tx.fetchval(
        "INSERT INTO agents_agents (id, user_id, display_name, phone, email, languages, "
        "status, capacity, created_by, created_at, updated_at) "
        "VALUES (%(id)s, %(user_id)s, %(display_name)s, %(phone)s, %(email)s, %(languages)s, "
        "'pending', %(capacity)s, %(created_by)s, %(now)s, %(now)s) "
        "ON CONFLICT (user_id) DO NOTHING RETURNING true", row) is not None


async def agent(q: Queries, agent_id: uuid.UUID, *, lock: bool = False
                ) -> dict[str, Any] | None:
    """One agent, optionally locked for the transaction."""
    return await q.fetchrow(f"SELECT {_AGENT_COLUMNS} FROM agents_agents WHERE id = %s"
                            + (" FOR UPDATE" if lock else ""), (agent_id,))


async def agent_of_user(q: Queries, user_id: uuid.UUID, *, lock: bool = False
                        ) -> dict[str, Any] | None:
    """The agent profile of a user, optionally locked."""
    return await q.fetchrow(f"SELECT {_AGENT_COLUMNS} FROM agents_agents WHERE user_id = %s"
                            + (" FOR UPDATE" if lock else ""), (user_id,))


async def update_agent(tx: Tx, agent_id: uuid.UUID, changes: dict[str, Any],
                       now: dt.datetime) -> None:
    """Set the given :data:`AGENT_EDITABLE` columns."""
    sets = [f"{column} = %({column})s" for column in AGENT_EDITABLE if column in changes]
    await tx.execute(f"UPDATE agents_agents SET {', '.join([*sets, 'updated_at = %(now)s'])} "
                     "WHERE id = %(id)s", {**changes, "now": now, "id": agent_id})


async def set_status(tx: Tx, agent_id: uuid.UUID, status: str, now: dt.datetime) -> None:
    """Store a derived status."""
    await tx.execute("UPDATE agents_agents SET status = %s, updated_at = %s WHERE id = %s",
                     (status, now, agent_id))


async def set_suspension(tx: Tx, agent_id: uuid.UUID, at: dt.datetime | None,
                         note: str | None) -> None:
    """Suspend (``at`` set) or reinstate (None) an agent."""
    await tx.execute("UPDATE agents_agents SET suspended_at = %s, suspended_note = %s "
                     "WHERE id = %s", (at, note, agent_id))


async def list_agents(q: Queries, status: str | None,
                      after: tuple[dt.datetime, uuid.UUID] | None, limit: int
                      ) -> list[dict[str, Any]]:
    """Agents, newest first, optionally of one status, after a keyset position."""
    where: list[str] = []
    params: list[Any] = []
    if status is not None:
        where.append("status = %s")
        params.append(status)
    if after is not None:
        where.append("(created_at, id) < (%s, %s)")
        params.extend(after)
    sql = f"SELECT {_AGENT_COLUMNS} FROM agents_agents"
    if where:
        sql += " WHERE " + " AND ".join(where)
    return await q.fetch(sql + " ORDER BY created_at DESC, id DESC LIMIT %s", (*params, limit))


async def status_counts(q: Queries) -> dict[str, int]:
    """How many agents have each status."""
    rows = await q.fetch("SELECT status, count(*) AS n FROM agents_agents GROUP BY status")
    return {r["status"]: r["n"] for r in rows}


async def add_history(tx: Tx, entry_id: uuid.UUID, agent_id: uuid.UUID, old: str | None,
                      new: str, reason: str, note: str | None, actor: str,
                      at: dt.datetime) -> None:
    """One line of an agent's history."""
    await tx.execute(
        "INSERT INTO agents_history (id, agent_id, old_status, new_status, reason, note, "
        "actor, at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
        (entry_id, agent_id, old, new, reason, note, actor, at))


async def history(q: Queries, agent_id: uuid.UUID) -> list[dict[str, Any]]:
    """An agent's history, oldest first."""
    return await q.fetch("SELECT old_status, new_status, reason, note, actor, at "
                         "FROM agents_history WHERE agent_id = %s ORDER BY id", (agent_id,))


async def erase(tx: Tx, agent_id: uuid.UUID, now: dt.datetime) -> None:
    """Forget an agent's personal data (the user erased their account)."""
    await tx.execute(
        "UPDATE agents_agents SET display_name = 'Erased agent', phone = '', email = '', "
        "languages = '{}', erased_at = %s, updated_at = %s WHERE id = %s",
        (now, now, agent_id))
    await tx.execute("UPDATE agents_holidays SET note = '' WHERE agent_id = %s", (agent_id,))


# -- KYC (as auth reports it) ----------------------------------------------------------------

async def record_kyc(tx: Tx, user_id: uuid.UUID, status: str, sequence: int) -> bool:
    """Keep a user's agent KYC status; False (nothing changed) when an event at least as
    recent (``sequence``) was already recorded."""
    return await tx.fetchval(
        "INSERT INTO agents_kyc AS k (user_id, status, sequence) VALUES (%s, %s, %s) "
        "ON CONFLICT (user_id) DO UPDATE SET status = EXCLUDED.status, "
        "sequence = EXCLUDED.sequence, updated_at = now() "
        "WHERE k.sequence < EXCLUDED.sequence RETURNING true",
        (user_id, status, sequence)) is not None


async def kyc_status(q: Queries, user_id: uuid.UUID) -> str | None:
    """The agent KYC status held for a user, or None when never heard of."""
    return await q.fetchval("SELECT status FROM agents_kyc WHERE user_id = %s", (user_id,))


async def kyc_statuses(q: Queries, user_ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    """The KYC status held for each of ``user_ids`` (those known)."""
    rows = await q.fetch("SELECT user_id, status FROM agents_kyc "
                         "WHERE user_id = ANY(%s::uuid[])", (user_ids,))
    return {r["user_id"]: r["status"] for r in rows}


# -- registrations ---------------------------------------------------------------------------

async def insert_registration(tx: Tx, registration_id: uuid.UUID, agent_id: uuid.UUID,
                              number: str, state: str, valid_from: dt.date,
                              valid_until: dt.date, status: str, now: dt.datetime,
                              decided_by: str | None = None) -> None:
    """A new registration (``submitted``, or ``verified`` by the seed)."""
    await tx.execute(
        "INSERT INTO agents_registrations (id, agent_id, number, state, valid_from, "
        "valid_until, status, submitted_at, decided_at, decided_by) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (registration_id, agent_id, number, state, valid_from, valid_until, status, now,
         now if decided_by else None, decided_by))


async def registrations_of(q: Queries, agent_id: uuid.UUID) -> list[dict[str, Any]]:
    """An agent's registrations, newest submission first."""
    return await q.fetch(f"SELECT {_REGISTRATION_COLUMNS} FROM agents_registrations "
                         "WHERE agent_id = %s ORDER BY submitted_at DESC, id DESC",
                         (agent_id,))


async def registration_in_status(q: Queries, agent_id: uuid.UUID, status: str
                                 ) -> dict[str, Any] | None:
    """An agent's ``verified`` or ``submitted`` registration (at most one of each)."""
    return await q.fetchrow(f"SELECT {_REGISTRATION_COLUMNS} FROM agents_registrations "
                            "WHERE agent_id = %s AND status = %s", (agent_id, status))


async def set_registration_status(tx: Tx, registration_id: uuid.UUID, status: str,
                                  reason: str | None, at: dt.datetime,
                                  by: str | None) -> None:
    """Move a registration (a decision records when and by whom)."""
    await tx.execute("UPDATE agents_registrations SET status = %s, reason = %s, "
                     "decided_at = COALESCE(%s, decided_at), "
                     "decided_by = COALESCE(%s, decided_by) WHERE id = %s",
                     (status, reason, at if by else None, by, registration_id))


async def lock_number(tx: Tx, state: str, number: str) -> None:
    """Serialise, until the transaction ends, everyone registering this number: the check
    of :func:`number_holder` and the insert that follows are then one step."""
    await tx.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                     (f"agents.registration:{state}:{number}",))


async def number_holder(q: Queries, state: str, number: str) -> uuid.UUID | None:
    """The agent holding a submitted or verified registration with this number, if any."""
    return await q.fetchval("SELECT agent_id FROM agents_registrations WHERE state = %s "
                            "AND number = %s AND status IN ('submitted', 'verified') LIMIT 1",
                            (state, number))


async def claim_expiring(tx: Tx, today: dt.date, horizon: dt.date, limit: int
                         ) -> list[dict[str, Any]]:
    """Mark (and return) verified registrations ending between ``today`` and ``horizon``
    whose agent was not told yet. A concurrent run waits on the rows, then skips them (they
    are marked by then): each is returned once, ever."""
    return await tx.fetch(
        "UPDATE agents_registrations r SET expiry_notified_at = now() "
        "FROM agents_agents a WHERE a.id = r.agent_id AND r.id IN ("
        "  SELECT id FROM agents_registrations WHERE status = 'verified' "
        "  AND expiry_notified_at IS NULL AND valid_until >= %s AND valid_until <= %s "
        "  ORDER BY valid_until, id LIMIT %s) "
        "AND r.expiry_notified_at IS NULL "
        "RETURNING r.id, r.agent_id, r.number, r.state, r.valid_until, a.user_id",
        (today, horizon, limit))


async def expiring(q: Queries, today: dt.date, horizon: dt.date,
                   after: tuple[dt.date, uuid.UUID] | None, limit: int
                   ) -> list[dict[str, Any]]:
    """Verified registrations ending between ``today`` and ``horizon``, soonest first, with
    their agent's name and status."""
    sql = ("SELECT r.id, r.agent_id, r.number, r.state, r.valid_until, r.expiry_notified_at, "
           "a.display_name, a.status FROM agents_registrations r "
           "JOIN agents_agents a ON a.id = r.agent_id WHERE r.status = 'verified' "
           "AND r.valid_until >= %s AND r.valid_until <= %s")
    params: list[Any] = [today, horizon]
    if after is not None:
        sql += " AND (r.valid_until, r.id) > (%s, %s)"
        params.extend(after)
    return await q.fetch(sql + " ORDER BY r.valid_until, r.id LIMIT %s", (*params, limit))


async def expiring_count(q: Queries, today: dt.date, horizon: dt.date) -> int:
    """How many verified registrations end between ``today`` and ``horizon``."""
    return await q.fetchval("SELECT count(*) FROM agents_registrations WHERE status = "
                            "'verified' AND valid_until >= %s AND valid_until <= %s",
                            (today, horizon))


async def submitted_count(q: Queries) -> int:
    """Registrations waiting for staff."""
    return await q.fetchval("SELECT count(*) FROM agents_registrations "
                            "WHERE status = 'submitted'")


async def lapse_candidates(q: Queries, today: dt.date, limit: int) -> list[uuid.UUID]:
    """Agents (active or pending) whose verified registration ended before ``today``."""
    rows = await q.fetch(
        "SELECT a.id FROM agents_agents a JOIN agents_registrations r ON r.agent_id = a.id "
        "AND r.status = 'verified' WHERE r.valid_until < %s "
        "AND a.status IN ('active', 'pending') ORDER BY r.valid_until, a.id LIMIT %s",
        (today, limit))
    return [r["id"] for r in rows]


async def mark_lapsed(tx: Tx, agent_id: uuid.UUID, now: dt.datetime) -> None:
    """Record when the lapse of the agent's verified registration was acted on."""
    await tx.execute("UPDATE agents_registrations SET lapsed_at = %s WHERE agent_id = %s "
                     "AND status = 'verified' AND lapsed_at IS NULL", (now, agent_id))


async def activation_candidates(q: Queries, today: dt.date, limit: int) -> list[uuid.UUID]:
    """Pending agents, not suspended, with verified KYC whose verified registration is in
    force ``today`` (one that started since they were verified, say)."""
    rows = await q.fetch(
        "SELECT a.id FROM agents_agents a JOIN agents_registrations r ON r.agent_id = a.id "
        "AND r.status = 'verified' JOIN agents_kyc k ON k.user_id = a.user_id "
        "WHERE a.status = 'pending' AND a.suspended_at IS NULL AND k.status = 'verified' "
        "AND r.valid_from <= %s AND r.valid_until >= %s ORDER BY a.id LIMIT %s",
        (today, today, limit))
    return [r["id"] for r in rows]


# -- territories and holidays ----------------------------------------------------------------

async def replace_territories(tx: Tx, agent_id: uuid.UUID,
                              places: list[tuple[str, str, str, str]]) -> None:
    """Replace an agent's territories with ``(city, locality, city_key, locality_key)``."""
    await tx.execute("DELETE FROM agents_territories WHERE agent_id = %s", (agent_id,))
    for city, locality, city_key, locality_key in places:
        await tx.execute(
            "INSERT INTO agents_territories (agent_id, city, locality, city_key, locality_key) "
            "VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
            (agent_id, city, locality, city_key, locality_key))


async def territories_of(q: Queries, agent_ids: list[uuid.UUID]) -> list[dict[str, Any]]:
    """The territories of agents, by city then locality."""
    return await q.fetch(
        "SELECT agent_id, city, locality, city_key, locality_key FROM agents_territories "
        "WHERE agent_id = ANY(%s::uuid[]) ORDER BY city_key, locality_key", (agent_ids,))


async def add_holiday(tx: Tx, holiday_id: uuid.UUID, agent_id: uuid.UUID, starts_on: dt.date,
                      ends_on: dt.date, note: str, now: dt.datetime) -> None:
    """A new holiday."""
    await tx.execute("INSERT INTO agents_holidays (id, agent_id, starts_on, ends_on, note, "
                     "created_at) VALUES (%s, %s, %s, %s, %s, %s)",
                     (holiday_id, agent_id, starts_on, ends_on, note, now))


async def delete_holiday(tx: Tx, agent_id: uuid.UUID, holiday_id: uuid.UUID) -> bool:
    """Remove one of an agent's holidays; False when it has no such holiday."""
    return await tx.fetchval("DELETE FROM agents_holidays WHERE id = %s AND agent_id = %s "
                             "RETURNING true", (holiday_id, agent_id)) is not None


async def holidays_of(q: Queries, agent_ids: list[uuid.UUID], since: dt.date
                      ) -> list[dict[str, Any]]:
    """Holidays of agents that have not ended before ``since``, soonest first."""
    return await q.fetch(
        "SELECT id, agent_id, starts_on, ends_on, note FROM agents_holidays "
        "WHERE agent_id = ANY(%s::uuid[]) AND ends_on >= %s ORDER BY starts_on, id",
        (agent_ids, since))


# -- listings --------------------------------------------------------------------------------

async def request_listing(tx: Tx, listing_id: uuid.UUID, agent_id: uuid.UUID,
                          project_id: uuid.UUID, now: dt.datetime) -> dict[str, Any] | None:
    """A listing request: new, or a rejected one asked again; None when the agent already
    asked for (or has) this project."""
    return await tx.fetchrow(
        f"INSERT INTO agents_listings AS l ({_LISTING_COLUMNS}) "
        "VALUES (%s, %s, %s, 'requested', NULL, %s, NULL, NULL) "
        "ON CONFLICT (agent_id, project_id) DO UPDATE SET status = 'requested', reason = NULL, "
        "requested_at = EXCLUDED.requested_at, decided_at = NULL, decided_by = NULL "
        f"WHERE l.status = 'rejected' RETURNING {_LISTING_COLUMNS}",
        (listing_id, agent_id, project_id, now))


async def listing(q: Queries, listing_id: uuid.UUID, *, lock: bool = False
                  ) -> dict[str, Any] | None:
    """One listing, optionally locked."""
    return await q.fetchrow(f"SELECT {_LISTING_COLUMNS} FROM agents_listings WHERE id = %s"
                            + (" FOR UPDATE" if lock else ""), (listing_id,))


async def decide_listing(tx: Tx, listing_id: uuid.UUID, status: str, reason: str | None,
                         at: dt.datetime, by: str) -> dict[str, Any]:
    """Accept or reject a listing; the row after."""
    row = await tx.fetchrow(
        "UPDATE agents_listings SET status = %s, reason = %s, decided_at = %s, decided_by = %s "
        f"WHERE id = %s RETURNING {_LISTING_COLUMNS}", (status, reason, at, by, listing_id))
    assert row is not None  # locked by the caller
    return row


async def listings_of(q: Queries, agent_id: uuid.UUID) -> list[dict[str, Any]]:
    """An agent's listings, newest request first."""
    return await q.fetch(f"SELECT {_LISTING_COLUMNS} FROM agents_listings WHERE agent_id = %s "
                         "ORDER BY requested_at DESC, id DESC", (agent_id,))


async def project_listings(q: Queries, project_id: uuid.UUID, status: str | None,
                           after: tuple[dt.datetime, uuid.UUID] | None, limit: int
                           ) -> list[dict[str, Any]]:
    """A project's listings with their agent's status, newest request first."""
    sql = (f"SELECT {', '.join('l.' + c.strip() for c in _LISTING_COLUMNS.split(','))}, "
           "a.status AS agent_status, a.display_name FROM agents_listings l "
           "JOIN agents_agents a ON a.id = l.agent_id WHERE l.project_id = %s")
    params: list[Any] = [project_id]
    if status is not None:
        sql += " AND l.status = %s"
        params.append(status)
    if after is not None:
        sql += " AND (l.requested_at, l.id) < (%s, %s)"
        params.extend(after)
    return await q.fetch(sql + " ORDER BY l.requested_at DESC, l.id DESC LIMIT %s",
                         (*params, limit))


async def accepted_project_ids(q: Queries, agent_id: uuid.UUID) -> list[uuid.UUID]:
    """The projects an agent's accepted listings are for."""
    rows = await q.fetch("SELECT project_id FROM agents_listings WHERE agent_id = %s "
                         "AND status = 'accepted' ORDER BY project_id", (agent_id,))
    return [r["project_id"] for r in rows]


async def routing_candidates(q: Queries, project_id: uuid.UUID, city_key: str,
                             locality_key: str) -> list[dict[str, Any]]:
    """Active agents with an accepted listing of the project and a territory covering the
    place (the whole city, or that locality)."""
    return await q.fetch(
        "SELECT a.id, a.user_id, a.display_name, a.capacity, a.languages "
        "FROM agents_agents a JOIN agents_listings l ON l.agent_id = a.id "
        "AND l.project_id = %s AND l.status = 'accepted' "
        "WHERE a.status = 'active' AND a.capacity > 0 "
        "AND EXISTS (SELECT 1 FROM agents_territories t "
        "WHERE t.agent_id = a.id AND t.city_key = %s "
        "AND (t.locality_key = '' OR t.locality_key = %s)) ORDER BY a.id",
        (project_id, city_key, locality_key))
