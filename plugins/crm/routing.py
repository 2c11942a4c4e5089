"""Who gets a new lead: the pure rules of routing (no I/O; the service loads the agents, locks
them, and stores the decision).

1. The **pool** of a project: active agents whose territory covers the project's place (a
   territory is a city, or one locality of it) and who list the project. When no active agent
   of the place lists it, the pool is every agent of the place (territory only).
2. The **eligible** agents of the pool: active, not on holiday today (in the business
   calendar's zone), and with capacity left (``capacity > open leads``). Capacity 0 takes no
   leads.
3. Among them, the one with the **lowest rotation counter**, then the longest since their last
   assignment (never first), then the smallest agent id. The winner's counter goes up by one.
4. **No catch-up burst**: an agent who was not eligible at the pool's last decision (away,
   full, suspended, new) comes back with their counter raised to the lowest counter of those
   who stayed eligible, so they rejoin the rotation instead of taking every lead until they
   have caught up.
5. Nobody eligible: the lead stays unassigned, in the staff queue.

With equal capacity and everyone eligible, the counters of a pool never differ by more than
one, however many leads are routed.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Sequence

import attrs

_NEVER = dt.datetime.min.replace(tzinfo=dt.UTC)


def place_key(text: str | None) -> str:
    """A city or locality as matching compares it: trimmed, single-spaced, case-folded."""
    return " ".join((text or "").split()).casefold()


@attrs.frozen
class Agent:
    """An agent as routing sees it (a row of ``crm_agents`` plus its open leads)."""

    agent_id: uuid.UUID
    active: bool = True
    capacity: int = 0
    open_leads: int = 0
    #: ``(city_key, locality_key)``; an empty locality covers the whole city.
    territories: tuple[tuple[str, str], ...] = ()
    projects: frozenset[uuid.UUID] = frozenset()
    #: Inclusive ``(first, last)`` days off.
    holidays: tuple[tuple[dt.date, dt.date], ...] = ()
    rotation: int = 0
    last_assigned_at: dt.datetime | None = None
    #: Whether the agent was eligible at the last decision of a pool they were in.
    in_rotation: bool = False


@attrs.frozen
class Decision:
    """The chosen agent (None: nobody eligible) and what to store for the pool's agents."""

    agent_id: uuid.UUID | None
    #: New rotation counters (rebased returners, the winner's increment).
    rotation: dict[uuid.UUID, int]
    #: Each pool agent's eligibility at this decision.
    in_rotation: dict[uuid.UUID, bool]


def covers(agent: Agent, city: str, locality: str) -> bool:
    """Whether one of the agent's territories is the place (or its whole city)."""
    city_key, locality_key = place_key(city), place_key(locality)
    return any(c == city_key and (loc in ("", locality_key))
               for c, loc in agent.territories)


def on_holiday(agent: Agent, day: dt.date) -> bool:
    """Whether ``day`` falls in one of the agent's holidays."""
    return any(first <= day <= last for first, last in agent.holidays)


def eligible(agent: Agent, day: dt.date) -> bool:
    """Active, at work on ``day``, with capacity left."""
    return (agent.active and agent.capacity > agent.open_leads
            and not on_holiday(agent, day))


def pool(agents: Iterable[Agent], project_id: uuid.UUID, city: str, locality: str
         ) -> list[Agent]:
    """The agents a lead of this project may go to (rule 1), by agent id."""
    placed = sorted((a for a in agents if covers(a, city, locality)),
                    key=lambda a: a.agent_id)
    listing = [a for a in placed if project_id in a.projects and a.active]
    return listing or placed


def decide(candidates: Sequence[Agent], day: dt.date) -> Decision:
    """Rules 2 to 5 over a pool."""
    able = [a for a in candidates if eligible(a, day)]
    in_rotation = {a.agent_id: eligible(a, day) for a in candidates}
    if not able:
        return Decision(None, {}, in_rotation)
    steady = [a for a in able if a.in_rotation] or able
    floor = min(a.rotation for a in steady)
    counters = {a.agent_id: a.rotation if a.in_rotation else max(a.rotation, floor)
                for a in able}
    winner = min(able, key=lambda a: (counters[a.agent_id], a.last_assigned_at or _NEVER,
                                      a.agent_id))
    counters[winner.agent_id] += 1
    changed = {k: n for k, n in counters.items()
               if n != next(a.rotation for a in able if a.agent_id == k)}
    return Decision(winner.agent_id, changed, in_rotation)
