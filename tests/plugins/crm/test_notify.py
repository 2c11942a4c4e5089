"""The CRM tells people through the notifications plugin (notify.py), driven by the real bus:
the advisor of an assigned or reassigned lead, the buyer of a visit booked, moved or
cancelled, buyer and advisor before a visit, the escalation desk of an SLA breach. Each
request carries a dedupe key of its event, so a replayed event makes no second notification,
and a type without a template is counted and skipped, never dead-lettered.

The notifications plugin runs with its console providers; templates are its seed's
(``lead_assigned``, ``visit_reminder``) and those created here through its staff API. The
advisors are real agents profiles (``POST /agents/me``), copied into the CRM's routing table
as the agents plugin's events would.
"""

from __future__ import annotations

import datetime as dt
import uuid
import zoneinfo
from typing import Any

import attrs
import pytest
from prometheus_client import REGISTRY

from propmubi_plugins.crm import notify, service
from propmubi_plugins.crm.visits import service as visits
from propmubi_plugins.notifications import seed as notifications_seed
from tests.plugins.crm.conftest import LEADS, SYSTEM, enquiry, send

IST = zoneinfo.ZoneInfo("Asia/Kolkata")
DEVICES = "/api/v1/notifications/devices"
TEMPLATES = "/api/v1/notifications/templates"
DESK = "leads-desk@propmubi.example"
DLT = "1107000000000000099"

#: The templates of the CRM's types the notifications seed does not make.
CRM_TEMPLATES = [
    {"type": "visit_scheduled", "channel": "sms", "category": "visits",
     "body": "Your site visit to {#project#} is booked at {#time#}. - Propmubi",
     "variables": ["project", "time"], "dlt_template_id": DLT},
    {"type": "visit_scheduled", "channel": "push", "category": "visits",
     "subject": "Site visit booked", "body": "{#project#}, {#day#} at {#time#}.",
     "variables": ["project", "day", "time"]},
    {"type": "visit_cancelled", "channel": "sms", "category": "visits",
     "body": "Your site visit to {#project#} at {#time#} is cancelled. - Propmubi",
     "variables": ["project", "time"], "dlt_template_id": DLT},
    {"type": "sla_breached", "channel": "email", "category": "leads", "kind": "critical",
     "subject": "SLA breached: {#project#}",
     "body": "{#name#}'s lead for {#project#} ({#advisor#}) missed its {#kind#} target: "
             "{#link#}", "variables": ["name", "project", "advisor", "kind", "link"]},
]


def ist(day: int, hour: int) -> dt.datetime:
    return dt.datetime(2025, 6, day, hour, tzinfo=IST)


def registration(n: int) -> dict[str, Any]:
    return {"state": "MH", "number": f"A5180001{n:04d}", "valid_from": "2025-01-01",
            "valid_until": "2029-12-31"}


async def call(client: Any, method: str, url: str, user: Any, status: int, **kw: Any) -> Any:
    response = await client.request(method, url, headers=user.headers, **kw)
    answer = await response.json() if response.status != 204 else None
    assert response.status == status, answer
    return answer


@pytest.fixture
def crm_overrides() -> dict[str, Any]:
    return {"sla_escalation_email": DESK, "lead_link": "https://app.example/leads/{lead_id}"}


@pytest.fixture
async def templates(client: Any, services: Any, staff: Any) -> None:
    """The notifications seed's templates and the CRM's others (staff API)."""
    await notifications_seed.seed(services.context("notifications"), 1.0)
    for body in CRM_TEMPLATES:
        await call(client, "POST", TEMPLATES, staff, 201, json=body)


@attrs.frozen
class Advisor:
    id: uuid.UUID
    agent_id: uuid.UUID
    headers: dict[str, str]


async def make_advisor(client: Any, ctx: Any, make_user: Any, project: Any, n: int,
                       *, device: bool = True) -> Advisor:
    """An agent (profile with phone and e-mail), in the CRM's routing copy, with a device."""
    user = await make_user("agent")
    agent = await call(client, "POST", "/api/v1/agents/me", user, 201, json={
        "display_name": f"Neha Advisor {n}", "phone": f"+91981230{n:04d}",
        "email": f"neha{n}@example.com", "languages": ["English"],
        "registration": registration(n)})
    async with ctx.db.transaction() as tx:
        await service.sync_agent_in(ctx, tx, SYSTEM, uuid.UUID(agent["id"]), {
            "user_id": user.id, "name": agent["display_name"], "active": True,
            "capacity": 10, "territories": [("Pune", "")], "holidays": [],
            "projects": [project["id"]]})
    if device:
        await call(client, "PUT", DEVICES, user, 200,
                   json={"token": f"fcm-token-advisor-{n:04d}", "platform": "android"})
    return Advisor(id=user.id, agent_id=uuid.UUID(agent["id"]), headers=user.headers)


async def ledger(ctx: Any, type: str) -> list[dict[str, Any]]:
    """The notifications of a type: recipient, variables, key, and each channel's delivery
    (status and addresses), oldest first."""
    rows = await ctx.db.fetch(
        "SELECT n.id, n.user_id, n.variables, n.dedupe_key, n.requested_by"
        " FROM notifications_notifications n WHERE n.type = %s ORDER BY n.id", (type,))
    out = []
    for row in rows:
        deliveries = await ctx.db.fetch(
            "SELECT channel, status, addresses FROM notifications_deliveries"
            " WHERE notification_id = %s ORDER BY channel", (row["id"],))
        out.append({**row, "deliveries": {d["channel"]: (d["status"], list(d["addresses"]))
                                          for d in deliveries}})
    return out


def counted(type: str, outcome: str) -> float:
    return REGISTRY.get_sample_value("propmubi_crm_notifications_total",
                                     {"type": type, "outcome": outcome}) or 0.0


async def replay(services: Any, event_type: str) -> None:
    """Deliver the CRM's events of a type again, as a replay would: the processed mark is
    removed and the stream entry added again."""
    stream = services.keys.event_stream("crm")
    for _, fields in await services.redis.xrange(stream):
        decoded = {(k.decode() if isinstance(k, bytes) else k):
                   (v.decode() if isinstance(v, bytes) else v) for k, v in fields.items()}
        if decoded.get("type") == event_type:
            await services.db.execute(
                "DELETE FROM core_processed_events WHERE consumer = 'crm' AND event_id = %s",
                (uuid.UUID(decoded["id"]),))
            await services.redis.xadd(stream, fields)


# --------------------------------------------------------------------------------------------
# Leads
# --------------------------------------------------------------------------------------------


async def test_the_advisor_of_a_new_lead_is_told_on_every_channel_once(
        client, services, event_bus, ctx, clock, templates, make_user, buyer, project):
    advisor = await make_advisor(client, ctx, make_user, project, 1)
    lead_id = (await send(client, buyer, enquiry(project, name="Asha Rao")))["lead_id"]
    await event_bus.drain()

    (told,) = await ledger(ctx, "lead_assigned")
    assert told["user_id"] == advisor.id
    assert told["variables"] == {"name": "Asha", "project": "Green Meadows",
                                 "link": f"https://app.example/leads/{lead_id}"}
    assert "98765" not in str(told["variables"])  # the buyer's phone is never in a message
    assert told["dedupe_key"].startswith(f"crm:lead:{lead_id}:assigned:")
    assert told["requested_by"] == "system:crm-notify"
    assert told["deliveries"] == {"email": ("sent", ["neha1@example.com"]),
                                  "push": ("sent", ["fcm-token-advisor-0001"]),
                                  "sms": ("sent", ["+919812300001"])}

    before = counted("lead_assigned", "duplicate")
    await replay(services, "crm.lead_assigned")
    await event_bus.drain()
    assert len(await ledger(ctx, "lead_assigned")) == 1
    assert counted("lead_assigned", "duplicate") == before + 1


async def test_a_reassigned_lead_tells_the_new_advisor_and_the_queue_tells_nobody(
        client, services, event_bus, ctx, clock, templates, make_user, buyer, staff, project):
    first = await make_advisor(client, ctx, make_user, project, 1)
    lead_id = (await send(client, buyer, enquiry(project)))["lead_id"]
    await event_bus.drain()
    second = await make_advisor(client, ctx, make_user, project, 2, device=False)
    await call(client, "POST", f"{LEADS}/{lead_id}/reassign", staff, 200,
               json={"agent_id": str(second.agent_id), "reason": "Speaks Marathi"})
    await event_bus.drain()
    told = await ledger(ctx, "lead_assigned")
    assert [t["user_id"] for t in told] == [first.id, second.id]
    # No registered device: no push, the other channels go.
    assert set(told[1]["deliveries"]) == {"email", "sms"}

    await call(client, "POST", f"{LEADS}/{lead_id}/reassign", staff, 200,
               json={"reason": "Back to the queue"})
    await event_bus.drain()
    assert len(await ledger(ctx, "lead_assigned")) == 2


async def test_a_type_without_a_template_is_counted_and_not_dead_lettered(
        client, services, event_bus, ctx, clock, make_user, buyer, project):
    await make_advisor(client, ctx, make_user, project, 1)
    before = counted("lead_assigned", "no_template")
    await send(client, buyer, enquiry(project))
    await event_bus.drain()
    assert await ledger(ctx, "lead_assigned") == []
    assert counted("lead_assigned", "no_template") == before + 1
    (event_id,) = [r["id"] for r in await ctx.db.fetch(
        "SELECT id FROM core_outbox WHERE type = 'crm.lead_assigned'")]
    assert await ctx.db.fetchval(
        "SELECT count(*) FROM core_processed_events WHERE consumer = 'crm' AND event_id = %s",
        (event_id,)) == 1


# --------------------------------------------------------------------------------------------
# Visits
# --------------------------------------------------------------------------------------------


async def test_the_buyer_hears_of_the_visit_and_both_are_reminded_once(
        client, services, event_bus, ctx, clock, templates, make_user, buyer, project):
    advisor = await make_advisor(client, ctx, make_user, project, 1)
    await call(client, "PUT", DEVICES, buyer, 200,
               json={"token": "fcm-token-buyer-0001", "platform": "ios"})
    lead_id = (await send(client, buyer, enquiry(project, email="asha@example.com")))[
        "lead_id"]
    visit = await call(client, "POST", f"{LEADS}/{lead_id}/visits", buyer, 201,
                       json={"starts_at": ist(4, 15).isoformat()})
    await event_bus.drain()
    (booked,) = await ledger(ctx, "visit_scheduled")
    assert booked["user_id"] == buyer.id
    assert booked["variables"] == {"project": "Green Meadows", "time": "15:00",
                                   "day": "Wed 4 Jun", "slot": "Wed 4 Jun, 15:00"}
    assert booked["deliveries"] == {"push": ("sent", ["fcm-token-buyer-0001"]),
                                    "sms": ("sent", ["+919876543210"])}

    clock.at = ist(3, 15) + dt.timedelta(minutes=1)
    await visits.send_reminders(ctx)
    await visits.send_reminders(ctx)
    await event_bus.drain()
    clock.at = ist(4, 14) + dt.timedelta(minutes=1)
    await visits.send_reminders(ctx)
    await event_bus.drain()
    await replay(services, "crm.visit_reminder_due")
    await event_bus.drain()
    reminded = await ledger(ctx, "visit_reminder")
    assert sorted((r["user_id"] == buyer.id, r["variables"]["which"]) for r in reminded) == [
        (False, "1h"), (False, "24h"), (True, "1h"), (True, "24h")]
    for r in reminded:
        assert r["user_id"] in (buyer.id, advisor.id)
        assert {s for s, _ in r["deliveries"].values()} == {"sent"}
    to_advisor = next(r for r in reminded if r["user_id"] == advisor.id)
    assert to_advisor["deliveries"]["sms"] == ("sent", ["+919812300001"])
    assert {r["variables"]["which"]: r["variables"]["when"] for r in reminded} == {
        "24h": "tomorrow at 15:00", "1h": "in an hour, at 15:00"}

    await call(client, "POST", f"/api/v1/crm/visits/{visit['id']}/cancel", buyer, 200,
               json={"reason": "Travelling"})
    await event_bus.drain()
    (cancelled,) = await ledger(ctx, "visit_cancelled")
    assert cancelled["deliveries"] == {"sms": ("sent", ["+919876543210"])}


# --------------------------------------------------------------------------------------------
# SLA
# --------------------------------------------------------------------------------------------


async def test_an_sla_breach_escalates_to_the_desk_exactly_once(
        client, services, event_bus, ctx, clock, templates, make_user, buyer, project):
    await make_advisor(client, ctx, make_user, project, 1)
    lead_id = (await send(client, buyer, enquiry(project, name="Asha Rao")))["lead_id"]
    await event_bus.drain()
    clock.move(hours=3)  # past the 120 business minutes of the first response
    await service.check_slas(ctx)
    await service.check_slas(ctx)
    await event_bus.drain()
    await replay(services, "crm.sla_breached")
    await event_bus.drain()
    (escalated,) = await ledger(ctx, "sla_breached")
    assert escalated["deliveries"] == {"email": ("sent", [DESK])}
    assert escalated["variables"] == {
        "project": "Green Meadows", "name": "Asha", "advisor": "Neha Advisor 1",
        "kind": "first response", "link": f"https://app.example/leads/{lead_id}"}


async def test_the_advisor_is_warned_once_before_the_target_and_the_queue_is_not(
        client, services, event_bus, ctx, clock, make_user, buyer, staff, project):
    await notifications_seed.seed(services.context("notifications"), 1.0)
    await notify.ensure_templates(ctx)  # the CRM's defaults: sla_warning by SMS and push
    advisor = await make_advisor(client, ctx, make_user, project, 1)
    lead_id = (await send(client, buyer, enquiry(project, name="Asha Rao")))["lead_id"]
    await event_bus.drain()
    due = clock.at + dt.timedelta(minutes=120)  # a business morning: 120 minutes to respond
    clock.move(minutes=100)  # past 80 %
    await service.check_slas(ctx)
    await service.check_slas(ctx)
    await event_bus.drain()
    await replay(services, "crm.sla_warning")
    await event_bus.drain()
    (warned,) = await ledger(ctx, "sla_warning")
    assert warned["user_id"] == advisor.id
    assert warned["variables"] == {
        "name": "Asha", "project": "Green Meadows", "kind": "first response",
        "due": f"Mon 2 Jun, {due.astimezone(IST):%H:%M}",
        "link": f"https://app.example/leads/{lead_id}"}
    assert warned["deliveries"] == {"push": ("sent", ["fcm-token-advisor-0001"]),
                                    "sms": ("sent", ["+919812300001"])}
    assert warned["dedupe_key"].startswith(f"crm:lead:{lead_id}:sla_warning:")
    # Back to the queue before its warning: nobody holds the lead, nobody is told.
    other = (await send(client, buyer, enquiry(project, name="Ravi K",
                                               phone="+919876500011")))["lead_id"]
    assert other != lead_id
    await event_bus.drain()
    await call(client, "POST", f"{LEADS}/{other}/reassign", staff, 200,
               json={"reason": "Back to the queue"})
    before = counted("sla_warning", "stale")
    clock.move(minutes=100)
    await service.check_slas(ctx)
    await event_bus.drain()
    assert len(await ledger(ctx, "sla_warning")) == 1
    assert counted("sla_warning", "stale") == before + 1


@pytest.mark.parametrize("crm_overrides", [{}])
async def test_without_an_escalation_desk_a_breach_is_only_counted(
        client, services, event_bus, ctx, clock, templates, make_user, buyer, project):
    await make_advisor(client, ctx, make_user, project, 1)
    await send(client, buyer, enquiry(project))
    before = counted("sla_breached", "no_recipient")
    clock.move(hours=3)
    await service.check_slas(ctx)
    await event_bus.drain()
    assert await ledger(ctx, "sla_breached") == []
    assert counted("sla_breached", "no_recipient") == before + 1


async def test_the_default_templates_pass_the_rules_and_are_made_once(ctx):
    """The seed's templates for the CRM's own types are valid (DLT rules included: the
    notifications plugin refuses a bad one when it is created) and a second run adds none."""
    await notify.ensure_templates(ctx)
    await notify.ensure_templates(ctx)
    rows = await ctx.db.fetch("SELECT type, channel FROM notifications_templates WHERE type ="
                              " ANY(%s)", (sorted({t.type for t in notify.TEMPLATES}),))
    assert sorted((r["type"], r["channel"]) for r in rows) == sorted(
        (t.type, t.channel) for t in notify.TEMPLATES)
