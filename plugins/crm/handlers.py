"""What the CRM does when the agents plugin's events arrive: it keeps its own routing copy
of the advisors (``crm_agents``), read by type name and from the raw payload (the CRM never
imports the agents plugin).

- ``agents.agent_activated``: the agent is active, with the facts the payload gives;
- ``agents.agent_suspended``: the agent takes no more leads (their open leads stay theirs
  until staff reassign them);
- ``agents.agent_updated``: the facts the payload gives change (status ``active`` or not);
- ``agents.listing_changed``: a project joins or leaves the agent's listings.

The agents plugin's events carry ``agent_id``, ``user_id`` and ``routing``, the whole routing
picture of the agent (``active``, ``capacity``, ``territories`` as ``{"city", "locality"}``,
``holidays`` as ``{"starts_on", "ends_on"}``, ``listed_project_ids``); ``agent_suspended``
has no picture and only makes the agent inactive. Fields are read from the raw payload, each
optional except ``agent_id`` (``routing``'s fields may also sit at the top level; a listing
change without a picture adds or removes its ``project_id`` by its ``status``).

Each handler is idempotent: agent events apply only when their ``sequence`` is newer than the
one last applied for that agent, and a listing is a set membership.

The CRM's own events are told to people through the notifications plugin (notify.py): a lead
assigned or reassigned (the advisor), a visit booked, moved, cancelled or due (the buyer; the
advisor too for reminders), an SLA about to be missed (the advisor), an SLA breach (the
escalation desk).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from propmubi.actors import Actor
from propmubi.db import Tx
from propmubi.events import Delivery
from propmubi_plugins.crm import notify, service

Handler = Callable[[Tx, Delivery], Awaitable[None]]
ACTOR = Actor.system("crm-agents-sync")


def _uuid(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value)) if value not in (None, "") else None
    except ValueError:
        return None


def _date(value: Any) -> dt.date | None:
    try:
        return dt.date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


def _territories(items: Any) -> list[tuple[str, str]]:
    out = []
    for item in items or []:
        if isinstance(item, dict):
            out.append((str(item.get("city") or ""), str(item.get("locality") or "")))
        elif isinstance(item, str):
            city, _, locality = item.partition("/")
            out.append((city, locality))
    return [t for t in out if t[0].strip()]


def _holidays(items: Any) -> list[tuple[dt.date, dt.date]]:
    out = []
    for item in items or []:
        if isinstance(item, dict):
            first = _date(item.get("starts_on") or item.get("from"))
            last = _date(item.get("ends_on") or item.get("to")) or first
        else:
            first = last = _date(item)
        if first is not None and last is not None:
            out.append((first, last))
    return out


def _projects(items: Any) -> list[uuid.UUID]:
    out = []
    for item in items or []:
        if isinstance(item, dict):
            if item.get("status", "accepted") != "accepted" or item.get("active") is False:
                continue
            item = item.get("project_id")
        project_id = _uuid(item)
        if project_id is not None:
            out.append(project_id)
    return out


def agent_fields(event: dict[str, Any]) -> dict[str, Any]:
    """The routing facts an agents event gives (only those it carries)."""
    picture = event.get("routing")
    payload = {**(picture if isinstance(picture, dict) else {}),
               **{k: v for k, v in event.items() if k != "routing"}}
    fields: dict[str, Any] = {}
    if "user_id" in payload:
        fields["user_id"] = _uuid(payload["user_id"])
    name = payload.get("name", payload.get("display_name"))
    if name is not None:
        fields["name"] = str(name)
    if isinstance(payload.get("active"), bool):
        fields["active"] = payload["active"]
    elif "status" in payload:
        fields["active"] = payload["status"] == "active"
    if isinstance(payload.get("capacity"), int):
        fields["capacity"] = max(0, payload["capacity"])
    if "territories" in payload:
        fields["territories"] = _territories(payload["territories"])
    if "holidays" in payload:
        fields["holidays"] = _holidays(payload["holidays"])
    for key in ("listed_project_ids", "listings", "projects", "project_ids"):
        if key in payload:
            fields["projects"] = _projects(payload[key])
            break
    return fields


def _sequence(delivery: Delivery, agent_id: uuid.UUID) -> int:
    """The event's order among the agent's events (0: not keyed by the agent)."""
    return delivery.sequence if delivery.aggregate_id == str(agent_id) else 0


async def _apply(tx: Tx, delivery: Delivery, active: bool | None) -> None:
    agent_id = _uuid(delivery.payload.get("agent_id"))
    if agent_id is None:
        delivery.ctx.log.warning("crm: %s without an agent_id ignored", delivery.type)
        return
    fields = agent_fields(delivery.payload)
    if active is not None:
        fields["active"] = active
    await service.sync_agent_in(delivery.ctx, tx, ACTOR, agent_id, fields,
                                _sequence(delivery, agent_id))


async def on_agent_activated(tx: Tx, delivery: Delivery) -> None:
    """The agent takes leads now."""
    await _apply(tx, delivery, True)


async def on_agent_suspended(tx: Tx, delivery: Delivery) -> None:
    """The agent takes no more leads."""
    await _apply(tx, delivery, False)


async def on_agent_updated(tx: Tx, delivery: Delivery) -> None:
    """The agent's territories, capacity, holidays, listings or status changed."""
    await _apply(tx, delivery, None)


async def on_listing_changed(tx: Tx, delivery: Delivery) -> None:
    """A project joined or left the agent's listings."""
    payload = delivery.payload
    if isinstance(payload.get("routing"), dict):
        await _apply(tx, delivery, None)  # the whole picture, ordered by sequence
        return
    agent_id, project_id = _uuid(payload.get("agent_id")), _uuid(payload.get("project_id"))
    if agent_id is None or project_id is None:
        delivery.ctx.log.warning("crm: %s without agent_id/project_id ignored", delivery.type)
        return
    if "listed" in payload:
        listed = bool(payload["listed"])
    else:
        listed = payload.get("status") == "accepted" and payload.get("active") is not False
    await service.set_listing_in(delivery.ctx, tx, ACTOR, agent_id, project_id, listed)


def subscriptions() -> dict[str, list[Handler]]:
    """Event type -> its handlers, run in this order."""
    return {"agents.agent_activated": [on_agent_activated],
            "agents.agent_suspended": [on_agent_suspended],
            "agents.agent_updated": [on_agent_updated],
            "agents.listing_changed": [on_listing_changed],
            "crm.lead_assigned": [notify.on_lead_assigned],
            "crm.lead_reassigned": [notify.on_lead_assigned],
            "crm.visit_scheduled": [notify.on_visit_changed],
            "crm.visit_rescheduled": [notify.on_visit_changed],
            "crm.visit_cancelled": [notify.on_visit_changed],
            "crm.visit_reminder_due": [notify.on_visit_reminder_due],
            "crm.sla_warning": [notify.on_sla_warning],
            "crm.sla_breached": [notify.on_sla_breached]}
