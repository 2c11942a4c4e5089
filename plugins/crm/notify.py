"""What the CRM tells people, through the notifications plugin (``notifications.api``), from
its own events, each in the handler's transaction (the notification commits with the event's
processed mark, or neither does):

- ``crm.lead_assigned``, ``crm.lead_reassigned`` -> the advisor: ``lead_assigned``;
- ``crm.visit_reminder_due`` -> the buyer and the advisor: ``visit_reminder``;
- ``crm.visit_scheduled`` / ``_rescheduled`` / ``_cancelled`` -> the buyer:
  ``visit_scheduled`` / ``visit_rescheduled`` / ``visit_cancelled``;
- ``crm.sla_warning`` -> the advisor holding the lead: ``sla_warning`` (reply by when);
- ``crm.sla_breached`` -> the escalation desk (``sla_escalation_*`` settings):
  ``sla_breached``.

Addresses: the advisor's phone and e-mail come from the agents plugin (``agents.api.agent``),
the buyer's from the lead (the phone and e-mail of the enquiry); push goes to the recipient's
registered devices (``NotifyIn.push_tokens`` left empty: the notifications plugin uses the
user's device registry). Messages carry the buyer's first name, never a phone number.

Every request has a ``dedupe_key`` built from the event (``crm:<lead|visit>:<id>:<what>:
<sequence>[:<role>]``): a redelivered event finds the first notification and adds nothing.

A type without an active template (staff have not created it, or switched it off), or a
recipient with no address for any of the type's channels, is **not** an error: notify_in's
``ValidationFailed`` on ``type`` is logged and counted
(``propmubi_crm_notifications_total{type, outcome="no_template"|"no_address"}``) and the
event is processed, so it is never dead-lettered for a missing template. Any other refusal
(a template declaring a variable the CRM does not give) is raised: the event is retried,
then dead-lettered, and replayed once the template is fixed.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from prometheus_client import Counter

from propmubi.actors import Actor
from propmubi.db import Tx
from propmubi.errors import ValidationFailed
from propmubi.events import Delivery
from propmubi_plugins.agents import api as agents
from propmubi_plugins.catalog import api as catalog
from propmubi_plugins.crm import phones, store
from propmubi_plugins.crm.state import Ctx
from propmubi_plugins.notifications import api as notifications

ACTOR = Actor.system("crm-notify")
#: Notification types the CRM requests (staff create their templates; the notifications
#: seed has ``lead_assigned`` and ``visit_reminder``).
LEAD_ASSIGNED = "lead_assigned"
VISIT_REMINDER = "visit_reminder"
SLA_WARNING = "sla_warning"
SLA_BREACHED = "sla_breached"
VISIT_TYPES = {"crm.visit_scheduled": "visit_scheduled",
               "crm.visit_rescheduled": "visit_rescheduled",
               "crm.visit_cancelled": "visit_cancelled"}
#: The user the escalation desk's notifications are recorded against when
#: ``sla_escalation_user_id`` is not set (it has no devices, preferences or name).
ESCALATION_DESK = uuid.uuid5(uuid.NAMESPACE_URL, "propmubi:crm:sla-escalation")

#: Default templates of the types the CRM requests that the notifications seed does not make
#: (``lead_assigned`` and ``visit_reminder`` are its own); created by the CRM's seed where
#: staff have none. SMS: at most two variables, never adjacent (DLT); the ids are
#: placeholders of the right shape.
TEMPLATES = (
    notifications.TemplateIn(
        type="visit_scheduled", channel="sms", category="visits", kind="transactional",
        body="Your site visit to {#project#} is booked for {#slot#}. - Propmubi",
        variables=["project", "slot"], dlt_template_id="1107000000000000201"),
    notifications.TemplateIn(
        type="visit_scheduled", channel="push", category="visits", kind="transactional",
        subject="Site visit booked", body="{#project#}, {#day#} at {#time#}.",
        variables=["project", "day", "time"]),
    notifications.TemplateIn(
        type="visit_rescheduled", channel="sms", category="visits", kind="transactional",
        body="Your site visit to {#project#} is moved to {#slot#}. - Propmubi",
        variables=["project", "slot"], dlt_template_id="1107000000000000202"),
    notifications.TemplateIn(
        type="visit_rescheduled", channel="push", category="visits", kind="transactional",
        subject="Site visit moved", body="{#project#}, now {#day#} at {#time#}.",
        variables=["project", "day", "time"]),
    notifications.TemplateIn(
        type="visit_cancelled", channel="sms", category="visits", kind="transactional",
        body="Your site visit to {#project#} on {#slot#} is cancelled. - Propmubi",
        variables=["project", "slot"], dlt_template_id="1107000000000000203"),
    notifications.TemplateIn(
        type="visit_cancelled", channel="push", category="visits", kind="transactional",
        subject="Site visit cancelled", body="{#project#}, {#day#} at {#time#}.",
        variables=["project", "day", "time"]),
    notifications.TemplateIn(
        type=SLA_WARNING, channel="sms", category="leads", kind="transactional",
        body="Please reply to {#name#}'s enquiry by {#due#}. - Propmubi",
        variables=["name", "due"], dlt_template_id="1107000000000000204"),
    notifications.TemplateIn(
        type=SLA_WARNING, channel="push", category="leads", kind="transactional",
        subject="{#name#} is waiting", body="{#project#}: reply by {#due#}.",
        variables=["name", "project", "due"]),
    notifications.TemplateIn(
        type=SLA_BREACHED, channel="email", category="leads", kind="critical",
        subject="SLA breached: {#project#}",
        body="{#name#}'s lead for {#project#} (advisor: {#advisor#}) missed its {#kind#} "
             "target.\n\n{#link#}",
        variables=["name", "project", "advisor", "kind", "link"]),
    notifications.TemplateIn(
        type=SLA_BREACHED, channel="push", category="leads", kind="critical",
        subject="SLA breached: {#project#}",
        body="{#name#}'s lead ({#advisor#}) missed its {#kind#} target.",
        variables=["name", "project", "advisor", "kind"]),
)


async def ensure_templates(ctx: Ctx) -> None:
    """Create the default templates staff have not made (the seed)."""
    await notifications.ensure_templates(ctx, Actor.system("seed"), TEMPLATES)


NOTIFICATIONS = Counter(
    "propmubi_crm_notifications_total",
    "Notifications the CRM asked for, by type and outcome (requested, duplicate, "
    "no_template, no_address, no_recipient, stale)", ["type", "outcome"])


# --------------------------------------------------------------------------------------------
# Requesting
# --------------------------------------------------------------------------------------------


def _notify_in(type: str, user_id: uuid.UUID, *, phone: str | None, email: str | None,
               time_zone: str, variables: dict[str, str], dedupe_key: str
               ) -> notifications.NotifyIn:
    """The request; an address the notifications plugin would refuse is left out."""
    fields: dict[str, Any] = {"type": type, "user_id": user_id, "time_zone": time_zone,
                              "variables": variables, "dedupe_key": dedupe_key}
    try:
        return notifications.NotifyIn(**fields, phone=phone, email=email or None)
    except ValueError:
        pass
    try:
        return notifications.NotifyIn(**fields, phone=phone)
    except ValueError:
        return notifications.NotifyIn(**fields)


async def request(ctx: Ctx, tx: Tx, type: str, user_id: uuid.UUID, *, phone: str | None,
                  email: str | None, variables: dict[str, str], dedupe_key: str) -> str:
    """Ask the notifications plugin for one notification in ``tx``; the outcome counted
    (``requested``, ``duplicate``, ``no_template``, ``no_address``).

    :raises ValidationFailed: the type's templates refuse the request for another reason
        than a missing template or address (a variable the CRM does not give).
    """
    data = _notify_in(type, user_id, phone=phone, email=email, time_zone=ctx.settings.timezone,
                      variables=variables, dedupe_key=dedupe_key)
    try:
        out = await notifications.notify_in(ctx, tx, ACTOR, data)
    except ValidationFailed as exc:
        errors = exc.extra.get("errors") or []
        if not errors or any(e.get("field") != "type" for e in errors):
            raise
        outcome = ("no_template" if any("no active template" in str(e.get("message"))
                                        for e in errors) else "no_address")
        ctx.log.warning("crm: %s not sent (%s): %s", type, outcome,
                        "; ".join(str(e.get("message")) for e in errors))
        NOTIFICATIONS.labels(type, outcome).inc()
        return outcome
    outcome = "duplicate" if out.duplicate else "requested"
    NOTIFICATIONS.labels(type, outcome).inc()
    return outcome


def _skip(ctx: Ctx, type: str, outcome: str, why: str, *args: Any) -> str:
    ctx.log.info("crm: %s not sent: " + why, type, *args)
    NOTIFICATIONS.labels(type, outcome).inc()
    return outcome


async def _advisor(tx: Tx, agent_id: uuid.UUID | None, region: str
                   ) -> tuple[uuid.UUID, str | None, str | None, str] | None:
    """The advisor's user id, E.164 phone, e-mail and display name (None: unknown)."""
    if agent_id is None:
        return None
    agent = await agents.agent(tx, agent_id)
    if agent is None:
        return None
    phone = phones.normalise(agent.phone, region) if agent.phone else None
    return agent.user_id, phone, agent.email or None, agent.display_name


async def _held_by(ctx: Ctx, tx: Tx, type: str, lead_id: uuid.UUID,
                   agent_id: uuid.UUID | None
                   ) -> tuple[dict[str, Any], tuple[uuid.UUID, str | None, str | None, str]] | None:
    """The lead and its advisor, when the lead is still with ``agent_id``; None (counted
    ``stale`` or ``no_recipient``) when an event about it should tell nobody."""
    lead = await store.lead(tx, lead_id)
    if lead is None or agent_id is None or lead["agent_id"] != agent_id:
        _skip(ctx, type, "stale", "lead %s is not with agent %s", lead_id, agent_id)
        return None
    advisor = await _advisor(tx, agent_id, ctx.settings.default_region)
    if advisor is None:
        _skip(ctx, type, "no_recipient", "agent %s is unknown", agent_id)
        return None
    return lead, advisor


async def _project_name(tx: Tx, project_id: Any) -> str:
    project = await catalog.project(tx, uuid.UUID(str(project_id)))
    return str(project["name"]) if project else "your project"


def _first_name(name: str | None) -> str:
    parts = (name or "").split()
    return parts[0][:60] if parts else "A buyer"


def _lead_link(ctx: Ctx, lead_id: Any) -> str:
    return ctx.settings.lead_link.replace("{lead_id}", str(lead_id))


def _local(ctx: Ctx, at: Any) -> dt.datetime:
    when = at if isinstance(at, dt.datetime) else dt.datetime.fromisoformat(str(at))
    return when.astimezone(ctx.state.calendar.zone)


def _visit_variables(ctx: Ctx, project: str, starts_at: Any) -> dict[str, str]:
    local = _local(ctx, starts_at)
    day = f"{local:%a} {local.day} {local:%b}"
    return {"project": project, "time": local.strftime("%H:%M"), "day": day,
            "slot": f"{day}, {local:%H:%M}"}


# --------------------------------------------------------------------------------------------
# Handlers (subscribed in handlers.py)
# --------------------------------------------------------------------------------------------


async def on_lead_assigned(tx: Tx, delivery: Delivery) -> None:
    """``crm.lead_assigned`` / ``crm.lead_reassigned``: tell the advisor who has the lead now
    (``lead_assigned``: the buyer's first name, the project, the lead's link). A reassignment
    back to the queue tells nobody; an event about an advisor who no longer has the lead
    (a later reassignment committed first) is stale and tells nobody."""
    ctx: Ctx = delivery.ctx
    payload = delivery.payload
    agent_field = "agent_id" if delivery.type == "crm.lead_assigned" else "to_agent_id"
    agent_id = _uuid(payload.get(agent_field))
    lead_id = _uuid(payload.get("lead_id"))
    if agent_id is None or lead_id is None:
        return
    held = await _held_by(ctx, tx, LEAD_ASSIGNED, lead_id, agent_id)
    if held is None:
        return
    lead, (user_id, phone, email, _) = held
    await request(ctx, tx, LEAD_ASSIGNED, user_id, phone=phone, email=email, variables={
        "name": _first_name(lead["name"]),
        "project": await _project_name(tx, lead["project_id"]),
        "link": _lead_link(ctx, lead_id)},
        dedupe_key=f"crm:lead:{lead_id}:assigned:{delivery.sequence}")


async def _tell_buyer(ctx: Ctx, tx: Tx, delivery: Delivery, type: str,
                      variables: dict[str, str], key: str) -> None:
    payload = delivery.payload
    buyer = _uuid(payload.get("buyer_user_id"))
    lead = await store.lead(tx, uuid.UUID(str(payload["lead_id"])))
    if buyer is None or lead is None:  # a partner's lead: the buyer has no account
        _skip(ctx, type, "no_recipient", "visit %s has no buyer account",
              payload.get("visit_id"))
        return
    await request(ctx, tx, type, buyer, phone=lead["phone"], email=lead["email"],
                  variables=variables, dedupe_key=f"{key}:buyer")


async def on_visit_changed(tx: Tx, delivery: Delivery) -> None:
    """``crm.visit_scheduled`` / ``_rescheduled`` / ``_cancelled``: tell the buyer
    (transactional types of the same names: the project, the visit's local day and time)."""
    ctx: Ctx = delivery.ctx
    payload = delivery.payload
    type = VISIT_TYPES[delivery.type]
    variables = _visit_variables(ctx, await _project_name(tx, payload["project_id"]),
                                 payload["starts_at"])
    what = type.removeprefix("visit_")
    await _tell_buyer(ctx, tx, delivery, type, variables,
                      f"crm:visit:{payload['visit_id']}:{what}:{delivery.sequence}")


async def on_visit_reminder_due(tx: Tx, delivery: Delivery) -> None:
    """``crm.visit_reminder_due``: remind the buyer and the advisor (``visit_reminder``:
    the project, the local time and day, ``which`` "24h" or "1h" and ``when`` "tomorrow at
    11:00" or "in an hour, at 11:00": one variable, so an SMS text stays within DLT's two)."""
    ctx: Ctx = delivery.ctx
    payload = delivery.payload
    variables = {**_visit_variables(ctx, await _project_name(tx, payload["project_id"]),
                                    payload["starts_at"]),
                 "which": str(payload.get("which"))}
    variables["when"] = (f"in an hour, at {variables['time']}" if payload.get("which") == "1h"
                         else f"tomorrow at {variables['time']}")
    key = f"crm:visit:{payload['visit_id']}:reminder_{payload.get('which')}:{delivery.sequence}"
    await _tell_buyer(ctx, tx, delivery, VISIT_REMINDER, variables, key)
    advisor_user = _uuid(payload.get("advisor_user_id"))
    row = await store.agent_of_user(tx, advisor_user) if advisor_user else None
    advisor = await _advisor(tx, row["agent_id"] if row else None,
                             ctx.settings.default_region)
    if advisor is None:
        _skip(ctx, VISIT_REMINDER, "no_recipient", "visit %s has no advisor",
              payload.get("visit_id"))
        return
    user_id, phone, email, _ = advisor
    await request(ctx, tx, VISIT_REMINDER, user_id, phone=phone, email=email,
                  variables=variables, dedupe_key=f"{key}:advisor")


def _due(ctx: Ctx, at: Any) -> str:
    """When a clock is due, as the advisor reads it (``Thu 5 Jun, 10:00``: a message may be
    read the next day, so never "today")."""
    if at in (None, ""):
        return "as soon as you can"
    local = _local(ctx, at)
    return f"{local:%a} {local.day} {local:%b}, {local:%H:%M}"


async def on_sla_warning(tx: Tx, delivery: Delivery) -> None:
    """``crm.sla_warning``: tell the advisor who holds the lead that its clock is running out
    (``sla_warning``: the buyer's first name, the project, which clock, when it is due, the
    lead's link), once per warning. A lead in the queue, or no longer with that advisor,
    tells nobody (staff see it in the SLA queue)."""
    ctx: Ctx = delivery.ctx
    payload = delivery.payload
    lead_id, agent_id = _uuid(payload.get("lead_id")), _uuid(payload.get("agent_id"))
    if lead_id is None:
        return
    held = await _held_by(ctx, tx, SLA_WARNING, lead_id, agent_id)
    if held is None:
        return
    lead, (user_id, phone, email, _) = held
    await request(ctx, tx, SLA_WARNING, user_id, phone=phone, email=email, variables={
        "name": _first_name(lead["name"]),
        "project": await _project_name(tx, lead["project_id"]),
        "kind": str(payload.get("kind") or "").replace("_", " "),
        "due": _due(ctx, payload.get("due_at")), "link": _lead_link(ctx, lead_id)},
        dedupe_key=f"crm:lead:{lead_id}:sla_warning:{delivery.sequence}")


async def on_sla_breached(tx: Tx, delivery: Delivery) -> None:
    """``crm.sla_breached``: escalate to the escalation desk (``sla_breached``: the project,
    the buyer's first name, the advisor's name or "nobody", which clock, the lead's link),
    once per breach: the job publishes one event per breach, and the key is the event's."""
    ctx: Ctx = delivery.ctx
    settings = ctx.settings
    payload = delivery.payload
    lead_id = _uuid(payload.get("lead_id"))
    if lead_id is None:
        return
    email = settings.sla_escalation_email or None
    user_id = _uuid(settings.sla_escalation_user_id)
    if email is None and user_id is None:
        _skip(ctx, SLA_BREACHED, "no_recipient", "no sla_escalation_email or _user_id (lead "
              "%s)", lead_id)
        return
    lead = await store.lead(tx, lead_id)
    if lead is None:
        return
    advisor = await _advisor(tx, _uuid(payload.get("agent_id")), settings.default_region)
    await request(ctx, tx, SLA_BREACHED, user_id or ESCALATION_DESK, phone=None, email=email,
                  variables={
                      "project": await _project_name(tx, lead["project_id"]),
                      "name": _first_name(lead["name"]),
                      "advisor": advisor[3] if advisor else "nobody",
                      "kind": str(payload.get("kind") or "").replace("_", " "),
                      "link": _lead_link(ctx, lead_id)},
                  dedupe_key=f"crm:lead:{lead_id}:sla_breached:{delivery.sequence}")


def _uuid(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value)) if value not in (None, "") else None
    except ValueError:
        return None
