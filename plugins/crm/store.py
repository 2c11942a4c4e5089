"""The CRM's SQL: plain parameterised statements over its own tables, rows as dicts. No rules
and no events (those are service.py's)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import orjson

from propmubi.db import Database, Tx

#: What every function here takes first: the pools, or an open transaction.
Queries = Database | Tx

#: Fields of crm_agents that an agents event may set.
AGENT_FIELDS = ("user_id", "name", "active", "capacity", "territories", "projects", "holidays")

_LEAD = ("SELECT l.*, a.name AS agent_name, a.user_id AS agent_user_id FROM crm_leads l"
         " LEFT JOIN crm_agents a ON a.agent_id = l.agent_id ")


# --------------------------------------------------------------------------------------------
# Agents (the routing copy)
# --------------------------------------------------------------------------------------------


async def upsert_agent(tx: Tx, agent_id: uuid.UUID, fields: dict[str, Any], sequence: int,
                       at: dt.datetime) -> bool:
    """Create or change an agent with the ``fields`` given (others keep their value); an
    event older than the one last applied changes nothing. The agent leaves the rotation
    (routing re-bases their counter when they are next eligible). True when applied."""
    params: dict[str, Any] = {"agent_id": agent_id, "sequence": sequence, "at": at}
    for name in AGENT_FIELDS:
        params["set_" + name] = name in fields
        value = fields.get(name)
        if name in ("territories", "holidays"):
            value = orjson.dumps(value or []).decode()
        params[name] = value
    sets = ", ".join(f"{n} = CASE WHEN %(set_{n})s THEN EXCLUDED.{n} ELSE crm_agents.{n} END"
                     for n in AGENT_FIELDS)
    applied = await tx.fetchval(
        "INSERT INTO crm_agents (agent_id, user_id, name, active, capacity, territories,"
        " projects, holidays, sequence, updated_at) VALUES (%(agent_id)s, %(user_id)s,"
        " coalesce(%(name)s, ''), coalesce(%(active)s, false), coalesce(%(capacity)s, 0),"
        " %(territories)s::jsonb, coalesce(%(projects)s, '{}'::uuid[]), %(holidays)s::jsonb,"
        " %(sequence)s, %(at)s)"
        f" ON CONFLICT (agent_id) DO UPDATE SET {sets}, in_rotation = false,"
        " sequence = GREATEST(crm_agents.sequence, EXCLUDED.sequence),"
        " updated_at = EXCLUDED.updated_at"
        " WHERE crm_agents.sequence < EXCLUDED.sequence OR EXCLUDED.sequence = 0"
        " RETURNING true", params)
    return bool(applied)


async def set_listing(tx: Tx, agent_id: uuid.UUID, project_id: uuid.UUID, listed: bool,
                      at: dt.datetime) -> None:
    """Add or remove a project of an agent's listings (the agent row must exist)."""
    await tx.execute(
        "INSERT INTO crm_agents (agent_id, updated_at) VALUES (%s, %s)"
        " ON CONFLICT (agent_id) DO NOTHING", (agent_id, at))
    if listed:
        await tx.execute(
            "UPDATE crm_agents SET projects = array_append(projects, %s), updated_at = %s"
            " WHERE agent_id = %s AND NOT (%s = ANY(projects))",
            (project_id, at, agent_id, project_id))
    else:
        await tx.execute(
            "UPDATE crm_agents SET projects = array_remove(projects, %s), updated_at = %s"
            " WHERE agent_id = %s", (project_id, at, agent_id))


async def agent(q: Queries, agent_id: uuid.UUID) -> dict[str, Any] | None:
    """One agent of the routing copy."""
    return await q.fetchrow("SELECT * FROM crm_agents WHERE agent_id = %s", (agent_id,))


async def agent_of_user(q: Queries, user_id: uuid.UUID) -> dict[str, Any] | None:
    """The agent a signed-in user is (None: they are not an advisor)."""
    return await q.fetchrow("SELECT * FROM crm_agents WHERE user_id = %s"
                            " ORDER BY active DESC, updated_at DESC LIMIT 1", (user_id,))


async def agents(q: Queries) -> list[dict[str, Any]]:
    """Every agent, by name (the console's choices)."""
    return await q.fetch("SELECT * FROM crm_agents ORDER BY name, agent_id")


async def agents_of_city(tx: Tx, city_key: str) -> list[dict[str, Any]]:
    """Agents with a territory in the city, locked (by id) for a routing decision, with
    their open leads.

    The count is a second statement: one run after the locks are granted sees the leads that
    the decision it waited for committed (a subquery of the locking statement would count
    from the snapshot taken before the wait)."""
    rows = await tx.fetch(
        "SELECT * FROM crm_agents WHERE territories @> %s::jsonb ORDER BY agent_id FOR UPDATE",
        (orjson.dumps([{"city": city_key}]).decode(),))
    if not rows:
        return rows
    counts = await tx.fetch(
        "SELECT agent_id, count(*) AS n FROM crm_leads WHERE agent_id = ANY(%s)"
        " AND closed_at IS NULL GROUP BY agent_id", ([r["agent_id"] for r in rows],))
    open_leads = {c["agent_id"]: c["n"] for c in counts}
    return [{**r, "open_leads": open_leads.get(r["agent_id"], 0)} for r in rows]


async def set_rotation(tx: Tx, agent_id: uuid.UUID, rotation: int | None, in_rotation: bool,
                       assigned_at: dt.datetime | None) -> None:
    """Store an agent's routing state after a decision."""
    await tx.execute(
        "UPDATE crm_agents SET rotation = coalesce(%s, rotation), in_rotation = %s,"
        " last_assigned_at = coalesce(%s, last_assigned_at) WHERE agent_id = %s",
        (rotation, in_rotation, assigned_at, agent_id))


# --------------------------------------------------------------------------------------------
# Leads and enquiries
# --------------------------------------------------------------------------------------------


async def lock_person(tx: Tx, project_id: uuid.UUID, phone: str) -> None:
    """Serialise the enquiries of one phone about one project until the transaction ends."""
    await tx.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                     (f"crm:lead:{project_id}:{phone}",))


async def open_lead_for(tx: Tx, project_id: uuid.UUID, phone: str, since: dt.datetime
                        ) -> dict[str, Any] | None:
    """The open lead of this phone for this project with an enquiry since ``since``."""
    return await tx.fetchrow(
        "SELECT * FROM crm_leads WHERE project_id = %s AND phone = %s AND closed_at IS NULL"
        " AND last_enquiry_at >= %s ORDER BY last_enquiry_at DESC LIMIT 1 FOR UPDATE",
        (project_id, phone, since))


async def insert_lead(tx: Tx, row: dict[str, Any]) -> None:
    """Insert a new lead."""
    await tx.execute(
        "INSERT INTO crm_leads (id, project_id, unit_id, phone, name, email, city, locality,"
        " source, stage, last_enquiry_at, created_at, updated_at, sla_kind, sla_cycle,"
        " sla_started_at) VALUES (%(id)s, %(project_id)s, %(unit_id)s, %(phone)s, %(name)s,"
        " %(email)s, %(city)s, %(locality)s, %(source)s, %(stage)s, %(created_at)s,"
        " %(created_at)s, %(created_at)s, %(sla_kind)s, %(sla_cycle)s, %(sla_started_at)s)",
        row)


async def insert_enquiry(tx: Tx, row: dict[str, Any]) -> None:
    """Record an enquiry of a lead."""
    await tx.execute(
        "INSERT INTO crm_enquiries (id, lead_id, project_id, unit_id, phone, name, email,"
        " message, preferred_time, source, user_id, partner, external_ref, created_at)"
        " VALUES (%(id)s, %(lead_id)s, %(project_id)s, %(unit_id)s, %(phone)s, %(name)s,"
        " %(email)s, %(message)s, %(preferred_time)s, %(source)s, %(user_id)s, %(partner)s,"
        " %(external_ref)s, %(created_at)s)", row)


async def touch_lead(tx: Tx, lead_id: uuid.UUID, at: dt.datetime) -> None:
    """A repeat enquiry joined the lead."""
    await tx.execute("UPDATE crm_leads SET last_enquiry_at = %s, updated_at = %s WHERE id = %s",
                     (at, at, lead_id))


async def add_history(tx: Tx, lead_id: uuid.UUID, kind: str, actor: str, at: dt.datetime, *,
                      from_stage: str | None = None, to_stage: str | None = None,
                      agent_id: uuid.UUID | None = None, reason: str | None = None) -> None:
    """Append a change to a lead's history."""
    await tx.execute(
        "INSERT INTO crm_lead_history (lead_id, kind, from_stage, to_stage, agent_id, reason,"
        " actor, at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
        (lead_id, kind, from_stage, to_stage, agent_id, reason, actor, at))


async def lead(q: Queries, lead_id: uuid.UUID, *, lock: bool = False) -> dict[str, Any] | None:
    """One lead with its advisor's name and user, optionally locked."""
    return await q.fetchrow(_LEAD + "WHERE l.id = %s" + (" FOR UPDATE OF l" if lock else ""),
                            (lead_id,))


async def leads_page(q: Queries, *, stage: str | None, agent_id: uuid.UUID | None,
                     after: tuple[dt.datetime, uuid.UUID] | None, limit: int
                     ) -> list[dict[str, Any]]:
    """Leads newest first, optionally of one stage and/or one advisor (keyset pages)."""
    where: list[str] = []
    params: list[Any] = []
    if stage is not None:
        where.append("l.stage = %s")
        params.append(stage)
    if agent_id is not None:
        where.append("l.agent_id = %s")
        params.append(agent_id)
    if after is not None:
        where.append("(l.created_at, l.id) < (%s, %s)")
        params += [after[0], after[1]]
    sql = _LEAD + (("WHERE " + " AND ".join(where)) if where else "")
    return await q.fetch(sql + " ORDER BY l.created_at DESC, l.id DESC LIMIT %s",
                         (*params, limit))


async def set_agent(tx: Tx, lead_id: uuid.UUID, agent_id: uuid.UUID | None,
                    at: dt.datetime) -> None:
    """Give a lead to an advisor (None: back to the queue)."""
    await tx.execute("UPDATE crm_leads SET agent_id = %s, assigned_at = %s, updated_at = %s"
                     " WHERE id = %s",
                     (agent_id, at if agent_id else None, at, lead_id))


async def set_stage(tx: Tx, lead_id: uuid.UUID, values: dict[str, Any]) -> None:
    """Store a stage change and the lead's SLA clock after it."""
    await tx.execute(
        "UPDATE crm_leads SET stage = %(stage)s, lost_reason = %(lost_reason)s,"
        " closed_at = %(closed_at)s, first_response_at = %(first_response_at)s,"
        " updated_at = %(at)s, sla_kind = %(sla_kind)s, sla_cycle = %(sla_cycle)s,"
        " sla_started_at = %(sla_started_at)s, sla_paused_at = %(sla_paused_at)s,"
        " sla_paused_seconds = %(sla_paused_seconds)s,"
        " sla_warned_at = CASE WHEN %(new_cycle)s THEN NULL ELSE sla_warned_at END,"
        " sla_breached_at = CASE WHEN %(new_cycle)s THEN NULL ELSE sla_breached_at END"
        " WHERE id = %(id)s", {**values, "id": lead_id})


async def enquiries(q: Queries, lead_id: uuid.UUID) -> list[dict[str, Any]]:
    """A lead's enquiries, oldest first."""
    return await q.fetch("SELECT * FROM crm_enquiries WHERE lead_id = %s"
                         " ORDER BY created_at, id", (lead_id,))


async def history(q: Queries, lead_id: uuid.UUID) -> list[dict[str, Any]]:
    """A lead's history, oldest first."""
    return await q.fetch("SELECT * FROM crm_lead_history WHERE lead_id = %s ORDER BY id",
                         (lead_id,))


# --------------------------------------------------------------------------------------------
# The SLA job and the console's queues
# --------------------------------------------------------------------------------------------


async def running_clocks(q: Queries, after: tuple[dt.datetime, uuid.UUID] | None, limit: int
                         ) -> list[dict[str, Any]]:
    """Leads whose SLA clock runs and has not breached, oldest clock first (keyset)."""
    running = ("WHERE l.sla_kind IS NOT NULL AND l.sla_paused_at IS NULL"
               " AND l.sla_breached_at IS NULL")
    if after is None:
        return await q.fetch(_LEAD + running + " ORDER BY l.sla_started_at, l.id LIMIT %s",
                             (limit,))
    return await q.fetch(_LEAD + running + " AND (l.sla_started_at, l.id) > (%s, %s)"
                         " ORDER BY l.sla_started_at, l.id LIMIT %s", (*after, limit))


async def mark_warned(tx: Tx, lead_id: uuid.UUID, cycle: int, at: dt.datetime) -> bool:
    """Mark the clock ``cycle`` of a lead warned; False when it already was (or changed)."""
    return bool(await tx.fetchval(
        "UPDATE crm_leads SET sla_warned_at = %s WHERE id = %s AND sla_cycle = %s"
        " AND sla_warned_at IS NULL AND sla_breached_at IS NULL AND sla_paused_at IS NULL"
        " AND sla_kind IS NOT NULL RETURNING true", (at, lead_id, cycle)))


async def mark_breached(tx: Tx, lead_id: uuid.UUID, cycle: int, at: dt.datetime) -> bool:
    """Mark the clock ``cycle`` of a lead breached (and warned); False when it already was."""
    return bool(await tx.fetchval(
        "UPDATE crm_leads SET sla_breached_at = %s, sla_warned_at = coalesce(sla_warned_at, %s)"
        " WHERE id = %s AND sla_cycle = %s AND sla_breached_at IS NULL"
        " AND sla_paused_at IS NULL AND sla_kind IS NOT NULL RETURNING true",
        (at, at, lead_id, cycle)))


async def breaches(q: Queries, limit: int) -> list[dict[str, Any]]:
    """Open leads whose SLA clock breached, latest breach first."""
    return await q.fetch(_LEAD + "WHERE l.sla_breached_at IS NOT NULL AND l.closed_at IS NULL"
                         " ORDER BY l.sla_breached_at DESC, l.id DESC LIMIT %s", (limit,))


async def unassigned(q: Queries, limit: int) -> list[dict[str, Any]]:
    """Open leads nobody has, oldest first."""
    return await q.fetch(_LEAD + "WHERE l.agent_id IS NULL AND l.closed_at IS NULL"
                         " ORDER BY l.created_at, l.id LIMIT %s", (limit,))


async def by_stage(q: Queries, stage: str, limit: int) -> list[dict[str, Any]]:
    """The newest leads of a stage."""
    return await q.fetch(_LEAD + "WHERE l.stage = %s ORDER BY l.created_at DESC, l.id DESC"
                         " LIMIT %s", (stage, limit))


async def stage_counts(q: Queries) -> dict[str, int]:
    """Leads per stage."""
    rows = await q.fetch("SELECT stage, count(*) AS n FROM crm_leads GROUP BY stage")
    return {r["stage"]: r["n"] for r in rows}


async def dashboard_counts(q: Queries, since: dt.datetime) -> dict[str, int]:
    """New leads since ``since``, open unassigned leads, open breached leads."""
    row = await q.fetchrow(
        "SELECT (SELECT count(*) FROM crm_leads WHERE created_at >= %s) AS new_today,"
        " (SELECT count(*) FROM crm_leads WHERE agent_id IS NULL AND closed_at IS NULL)"
        "   AS unassigned,"
        " (SELECT count(*) FROM crm_leads WHERE sla_breached_at IS NOT NULL"
        "   AND closed_at IS NULL) AS breached", (since,))
    assert row is not None
    return {k: int(v) for k, v in row.items()}


async def projects_with_leads(q: Queries, project_ids: list[uuid.UUID]) -> set[uuid.UUID]:
    """Which of the projects already have a lead (the seed's check)."""
    rows = await q.fetch("SELECT DISTINCT project_id FROM crm_leads WHERE project_id = ANY(%s)",
                         (project_ids,))
    return {r["project_id"] for r in rows}
