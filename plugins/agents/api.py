"""What other plugins may ask the agents plugin (declare ``requires=("agents",)``): typed
queries in the caller's database or transaction. The CRM plugin routes leads with
:func:`active_agents_for` and follows changes through the ``agents.*`` events.

Other plugins depend on what is here: change it as carefully as the public API.
"""

from __future__ import annotations

import datetime as dt
import uuid

from propmubi.db import Database, Tx
from propmubi_plugins.agents import service, store
from propmubi_plugins.agents.models import AgentOut, RoutingCandidate, TerritoryOut, fold

__all__ = ["AgentOut", "RoutingCandidate", "active_agents_for", "agent"]


async def agent(q: Database | Tx, agent_id: uuid.UUID, *, today: dt.date | None = None
                ) -> AgentOut | None:
    """One agent (profile, status, KYC status, registrations, territories, capacity,
    holidays not over by ``today`` (default: today, UTC), listings), or None."""
    row = await store.agent(q, agent_id)
    if row is None:
        return None
    return await service.agent_out(q, row, today or dt.datetime.now(dt.UTC).date())


async def active_agents_for(q: Database | Tx, project_id: uuid.UUID, city: str,
                            locality: str | None = None, *, today: dt.date | None = None
                            ) -> list[RoutingCandidate]:
    """The agents a lead for ``project_id`` in ``city`` / ``locality`` may go to: active,
    taking leads (capacity above 0), with an accepted listing of the project, and a
    territory that is the whole city or that locality (compared trimmed and case-folded).
    Each says its capacity (its most open leads), territories, languages and whether
    ``today`` (default: today, UTC) is one of its holidays; choosing among them (open leads
    against capacity, holidays) is the caller's. Ordered by agent id."""
    day = today or dt.datetime.now(dt.UTC).date()
    rows = await store.routing_candidates(q, project_id, fold(city), fold(locality or ""))
    ids = [r["id"] for r in rows]
    territories: dict[uuid.UUID, list[TerritoryOut]] = {i: [] for i in ids}
    for t in await store.territories_of(q, ids):
        territories[t["agent_id"]].append(TerritoryOut(city=t["city"],
                                                       locality=t["locality"] or None))
    holidays = await store.holidays_of(q, ids, day)
    return [RoutingCandidate(
        agent_id=r["id"], user_id=r["user_id"], display_name=r["display_name"],
        capacity=r["capacity"], territories=territories[r["id"]],
        languages=list(r["languages"]),
        on_holiday=service.on_holiday([h for h in holidays if h["agent_id"] == r["id"]], day))
        for r in rows]
