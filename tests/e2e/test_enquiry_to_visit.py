"""From an enquiry to a visited lead, through HTTP on the whole application (auth, catalogue,
agents, notifications, CRM), with the real providers talking to loopback simulators of FCM
and a Twilio-compatible SMS gateway:

1. a builder's project is published; an advisor onboards (agents API), their agent KYC is
   decided in auth, staff verify the registration, the territory is the project's city, the
   builder accepts their listing, and they register a push device; a second advisor is
   suspended and a third works another city;
2. a buyer signs in with a code sent through the SMS gateway and enquires: the lead goes to
   the active advisor of the city only, who gets a push (FCM) and an SMS (gateway);
3. a visit is booked; with the clock moved, the 24 h and 1 h reminders reach the buyer (SMS)
   and the advisor (SMS and push); the advisor records the visit and the lead is ``visited``;
4. another lead left untouched past its first-response target escalates once to the desk,
   however often the SLA job runs.

Events are handled by draining the bus; conditions are awaited within bounds; no duration is
asserted. The clock is the application's (``MovableClock``), moved by the test.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import re
import uuid
import zoneinfo
from collections.abc import AsyncIterator, Callable
from typing import Any

import attrs
import pytest

from propmubi.actors import Actor
from propmubi.console import accounts
from propmubi.web.appkeys import SERVICES
from propmubi_plugins.auth.kyc import service as kyc
from propmubi_plugins.auth.kyc.models import Decision
from propmubi_plugins.crm import service as crm
from propmubi_plugins.crm.visits import service as visits
from propmubi_plugins.notifications import seed as notifications_seed
from tests.plugins.auth.conftest import AUTH_SETTINGS
from tests.plugins.catalog.conftest import (  # noqa: F401  (fixtures)
    builder,
    make_project,
    make_user,
    staff,
)
from tests.plugins.crm.conftest import MONDAY_10, MovableClock
from tests.plugins.notifications.providers.simulators import (
    FcmSimulator,
    ServiceAccount,
    TwilioSimulator,
)

API = "/api/v1"
IST = zoneinfo.ZoneInfo("Asia/Kolkata")
DESK = "leads-desk@propmubi.example"
BUYER_PHONE = "+919876543210"
ADVISOR_PHONE = "+919812300001"
ADVISOR_DEVICE = "fcm-token-advisor-e2e-0001"
KYC = {"legal_name": "Neha Kulkarni", "document_kind": "pan", "document_number": "ABCDE1234F"}
ESCALATION = {"type": "sla_breached", "channel": "email", "category": "leads", "kind": "critical",
              "subject": "SLA breached: {#project#}",
              "body": "{#name#}'s lead for {#project#} ({#advisor#}) missed its {#kind#} "
                      "target: {#link#}",
              "variables": ["name", "project", "advisor", "kind", "link"]}


@pytest.fixture(scope="module")
def service_account() -> ServiceAccount:
    return ServiceAccount.generate()


@pytest.fixture
async def twilio() -> AsyncIterator[TwilioSimulator]:
    async with TwilioSimulator.running() as sim:
        yield sim


@pytest.fixture
async def fcm(service_account: ServiceAccount) -> AsyncIterator[FcmSimulator]:
    async with FcmSimulator.running(service_account) as sim:
        yield sim


@pytest.fixture
def config_overrides(twilio: TwilioSimulator, fcm: FcmSimulator) -> dict[str, Any]:
    pii_key = base64.b64encode(bytes(range(32))).decode()
    return {"plugins": {
        "enabled": ["auth", "catalog", "agents", "notifications", "crm"],
        "settings": {
            "auth": {**AUTH_SETTINGS, "sms_provider": "notifications",
                     "sms_template_id": "1107000000000000003", "pii_key_id": "k1",
                     "pii_key": pii_key},
            "notifications": {"sms_providers": ["http_sms"], "push_providers": ["fcm"],
                              "email_providers": ["console_email"],
                              "http_sms": attrs.asdict(twilio.settings()),
                              "fcm": attrs.asdict(fcm.settings())},
            "crm": {"sla_escalation_email": DESK,
                    "lead_link": "https://app.propmubi.example/leads/{lead_id}"}}},
        "ratelimit": {"enabled": False}}


@attrs.frozen
class Caller:
    id: uuid.UUID
    headers: dict[str, str]


async def call(client: Any, method: str, path: str, who: Any, status: int = 200,
               **kw: Any) -> Any:
    response = await client.request(method, API + path,
                                    headers=who.headers if who else {}, **kw)
    body = await response.json() if response.status != 204 else None
    assert response.status == status, (method, path, body)
    return body


async def settle(event_bus: Any, done: Callable[[], bool], rounds: int = 100) -> None:
    """Drain the bus until ``done()`` holds (at most ``rounds`` times)."""
    for _ in range(rounds):
        await event_bus.drain()
        if done():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the condition did not hold after draining the bus")


def sms_to(twilio: TwilioSimulator, phone: str) -> list[str]:
    return [m["form"]["Body"] for m in twilio.accepted if m["form"]["To"] == phone]


def pushes_to(fcm: FcmSimulator, token: str) -> list[dict[str, Any]]:
    return [m["body"]["message"] for m in fcm.accepted if m["body"]["message"]["token"] == token]


async def sign_in(client: Any, twilio: TwilioSimulator, phone: str) -> Caller:
    """Sign in by phone: the code arrives at the SMS gateway."""
    challenge = await call(client, "POST", "/auth/otp", None, 202, json={"phone": phone})
    (body,) = sms_to(twilio, phone)[-1:]
    code = re.search(r"\b(\d{6})\b", body)[1]  # type: ignore[index]
    tokens = await call(client, "POST", "/auth/otp/verify", None, json={
        "challenge_id": challenge["challenge_id"], "code": code})
    me = await call(client, "GET", "/me", Caller(uuid.UUID(int=0), {
        "Authorization": f"Bearer {tokens['access_token']}"}))
    return Caller(uuid.UUID(me["id"]), {"Authorization": f"Bearer {tokens['access_token']}"})


async def onboard(client: Any, event_bus: Any, services: Any, new_user: Any, staff_user: Any,
                  owner: Any, project: Any, n: int, city: str) -> tuple[Any, str]:
    """An advisor made active through the agents API: profile, KYC decided in auth,
    registration verified by staff, territory, a listing the builder accepts."""
    user = await new_user("agent", kyc=None)
    agent = await call(client, "POST", "/agents/me", user, 201, json={
        "display_name": f"Neha Advisor {n}", "phone": f"+91981230{n:04d}",
        "email": f"neha{n}@example.com", "languages": ["English", "Marathi"],
        "registration": {"state": "MH", "number": f"A5180001{n:04d}",
                         "valid_from": "2025-01-01", "valid_until": "2029-12-31"}})
    record = await call(client, "PUT", "/me/kyc/agent", user, json=KYC)
    reviewer = await accounts.create_staff(services.db, f"r{uuid.uuid4().hex[:8]}@example.com",
                                           "Rita Reviewer", "correct horse battery", ["staff"])
    await kyc.decide(services.context("auth"), Actor.staff(uuid.UUID(str(reviewer.id))),
                     uuid.UUID(record["id"]), Decision(verified=True, reason=None))
    await event_bus.drain()
    await call(client, "POST", f"/agents/{agent['id']}/registration/verify", staff_user)
    await call(client, "PATCH", "/agents/me", user, json={"territories": [{"city": city}]})
    listing = await call(client, "POST", "/agents/me/listings", user, 201,
                         json={"project_id": str(project["id"])})
    await call(client, "POST", f"/agents/listings/{listing['id']}/accept", owner)
    await event_bus.drain()
    assert (await call(client, "GET", "/agents/me", user))["status"] == "active"
    return user, agent["id"]


async def ledger(services: Any, type: str) -> list[dict[str, Any]]:
    return list(await services.db.fetch(
        "SELECT n.user_id, d.channel, d.status FROM notifications_notifications n"
        " JOIN notifications_deliveries d ON d.notification_id = n.id"
        " WHERE n.type = %s ORDER BY n.id, d.channel", (type,)))


async def test_an_enquiry_becomes_a_visited_lead_and_a_neglected_one_escalates_once(
        client, event_bus, twilio, fcm, make_user, staff, builder, make_project):  # noqa: F811
    services = client.app[SERVICES]
    # The buyers sign in first (a code's expiry is checked against the database's time),
    # through the SMS gateway; then the clock stops at Monday 2 June 2025, 10:00 IST.
    buyer = await sign_in(client, twilio, BUYER_PHONE)
    other = await sign_in(client, twilio, "+919876500002")
    clock = MovableClock(MONDAY_10)
    services.clock = clock
    await notifications_seed.seed(services.context("notifications"), 1.0)
    await call(client, "POST", "/notifications/templates", staff, 201, json=ESCALATION)
    project = await make_project(builder, moderation="published")  # Green Meadows, Pune

    advisor, advisor_agent = await onboard(client, event_bus, services, make_user, staff,
                                           builder, project, 1, "Pune")
    await call(client, "PUT", "/notifications/devices", advisor,
               json={"token": ADVISOR_DEVICE, "platform": "android"})
    _, suspended_agent = await onboard(client, event_bus, services, make_user, staff, builder,
                                       project, 2, "Pune")
    await call(client, "POST", f"/agents/{suspended_agent}/suspend", staff,
               json={"reason": "Complaints under review"})
    _, elsewhere_agent = await onboard(client, event_bus, services, make_user, staff, builder,
                                       project, 3, "Mumbai")
    await event_bus.drain()

    # The buyer enquires.
    ack = await call(client, "POST", "/enquiries", buyer, 202, json={
        "project_id": str(project["id"]), "name": "Asha Rao", "phone": "98765 43210",
        "message": "Is the 2 BHK still available?", "source": "website"})
    lead_id = ack["lead_id"]
    await settle(event_bus, lambda: bool(pushes_to(fcm, ADVISOR_DEVICE))
                 and bool(sms_to(twilio, ADVISOR_PHONE)))
    lead = await call(client, "GET", f"/crm/leads/{lead_id}", advisor)
    assert lead["lead"]["agent_id"] == advisor_agent
    assert lead["lead"]["agent_id"] not in (suspended_agent, elsewhere_agent)
    (push,) = pushes_to(fcm, ADVISOR_DEVICE)
    assert push["notification"]["title"] == "New lead: Asha"
    assert "Green Meadows" in push["notification"]["body"]
    (sms,) = sms_to(twilio, ADVISOR_PHONE)
    assert "Asha" in sms and "Green Meadows" in sms and "98765" not in sms
    assert not sms_to(twilio, "+919812300002") and not sms_to(twilio, "+919812300003")

    # A visit on Wednesday 4 June at 15:00 IST; the reminders fire as the clock moves.
    starts = dt.datetime(2025, 6, 4, 15, tzinfo=IST)
    visit = await call(client, "POST", f"/crm/leads/{lead_id}/visits", buyer, 201,
                       json={"starts_at": starts.isoformat()})
    await event_bus.drain()
    crm_ctx = services.context("crm")
    for moment, count in ((starts - dt.timedelta(hours=24), 1),
                          (starts - dt.timedelta(hours=1), 2)):
        clock.at = moment + dt.timedelta(minutes=1)
        await visits.send_reminders(crm_ctx)
        await visits.send_reminders(crm_ctx)  # a second run sends nothing more
        await settle(event_bus, lambda c=count: len(sms_to(twilio, BUYER_PHONE)) == 1 + c
                     and len(pushes_to(fcm, ADVISOR_DEVICE)) == 1 + c
                     and len(sms_to(twilio, ADVISOR_PHONE)) == 1 + c)
    reminders = sms_to(twilio, BUYER_PHONE)[1:]  # after the sign-in code
    assert all("Green Meadows" in r and "15:00" in r for r in reminders)
    # Two reminders, each: the buyer's SMS (no device), the advisor's SMS and push.
    assert len(await ledger(services, "visit_reminder")) == 6

    # The visit happens; the advisor records it and the lead is visited.
    clock.at = starts + dt.timedelta(minutes=30)
    await call(client, "POST", f"/crm/visits/{visit['id']}/feedback", advisor,
               json={"attended": True, "rating": 5, "notes": "Liked the east-facing units"})
    lead = await call(client, "GET", f"/crm/leads/{lead_id}", advisor)
    assert lead["lead"]["stage"] == "visited"

    # Another buyer's lead nobody touches escalates once, however often the job runs.
    await call(client, "POST", "/enquiries", other, 202, json={
        "project_id": str(project["id"]), "name": "Vikram Iyer", "phone": "+919876500002",
        "message": "Price of a 3 BHK?", "source": "app"})
    await event_bus.drain()
    clock.move(hours=3)  # past 120 business minutes (the day ends at 19:00 IST)
    clock.at = max(clock.at, dt.datetime(2025, 6, 4, 18, 30, tzinfo=IST))
    await crm.check_slas(crm_ctx)
    await crm.check_slas(crm_ctx)
    await settle(event_bus, lambda: True)
    escalations = await ledger(services, "sla_breached")
    assert [(e["channel"], e["status"]) for e in escalations] == [("email", "sent")]
    await crm.check_slas(crm_ctx)
    await event_bus.drain()
    assert len(await ledger(services, "sla_breached")) == 1
