"""Enquiries through the whole application: a signed-in buyer's, a partner's; validation, the
honeypot, dedup by normalised phone within the window, and the events."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from typing import Any

import pytest

from tests.plugins.crm.conftest import (
    ENQUIRIES,
    LEADS,
    PARTNER_KEY,
    enquiry,
    outbox,
    send,
)

PARTNER = "/api/v1/crm/partner-leads"


async def leads(ctx: Any) -> list[dict[str, Any]]:
    return await ctx.db.fetch("SELECT * FROM crm_leads ORDER BY created_at, id")


async def test_an_enquiry_makes_a_lead_with_its_enquiry_and_events(client, ctx, buyer,
                                                                   project):
    ack = await send(client, buyer, enquiry(project, email="asha@example.com",
                                            preferred_time="evenings"))
    (lead,) = await leads(ctx)
    assert str(lead["id"]) == ack["lead_id"]
    assert (lead["phone"], lead["name"], lead["stage"], lead["city"], lead["locality"]) == (
        "+919876543210", "Asha Rao", "new", "Pune", "Baner")
    row = await ctx.db.fetchrow("SELECT * FROM crm_enquiries")
    assert (str(row["id"]), row["user_id"], row["preferred_time"], row["email"]) == (
        ack["enquiry_id"], buyer.id, "evenings", "asha@example.com")
    (created,) = await outbox(ctx, "crm.lead_created")
    assert created["lead_id"] == ack["lead_id"] and created["_actor"] == f"user:{buyer.id}"
    (received,) = await outbox(ctx, "crm.enquiry_received")
    assert received["new_lead"] is True and received["enquiry_id"] == ack["enquiry_id"]
    assert "phone" not in received and "name" not in received  # no personal data in events


@pytest.mark.parametrize("spelling", ["+91-98765-43210", "09876543210", "919876543210",
                                      "0091 98765 43210"])
async def test_every_spelling_of_a_number_joins_the_same_lead(client, ctx, buyer, project,
                                                              spelling):
    first = await send(client, buyer, enquiry(project))
    again = await send(client, buyer, enquiry(project, phone=spelling, message="Any offers?"))
    assert again["lead_id"] == first["lead_id"] and again["enquiry_id"] != first["enquiry_id"]
    assert len(await leads(ctx)) == 1
    assert await ctx.db.fetchval("SELECT count(*) FROM crm_enquiries") == 2
    kinds = [r["kind"] for r in await ctx.db.fetch(
        "SELECT kind FROM crm_lead_history ORDER BY id")]
    assert kinds == ["created", "enquiry"]
    assert len(await outbox(ctx, "crm.lead_created")) == 1
    assert [e["new_lead"] for e in await outbox(ctx, "crm.enquiry_received")] == [True, False]


async def test_another_project_or_a_closed_lead_or_an_old_one_makes_a_new_lead(
        client, ctx, clock, buyer, builder, make_project, project):
    other = await make_project(builder, moderation="published", name="Blue Ridge")
    first = await send(client, buyer, enquiry(project))
    elsewhere = await send(client, buyer, enquiry(other))
    assert elsewhere["lead_id"] != first["lead_id"]
    clock.move(days=31)  # past the 30-day window
    later = await send(client, buyer, enquiry(project))
    assert later["lead_id"] != first["lead_id"]
    await ctx.db.execute("UPDATE crm_leads SET closed_at = now(), stage = 'lost'"
                         " WHERE id = %s", (uuid.UUID(later["lead_id"]),))
    again = await send(client, buyer, enquiry(project))
    assert again["lead_id"] not in (first["lead_id"], later["lead_id"])
    assert len(await leads(ctx)) == 4


async def test_twenty_concurrent_identical_enquiries_make_one_lead(client, ctx, buyer,
                                                                   project):
    answers = await asyncio.gather(*[send(client, buyer, enquiry(project))
                                     for _ in range(20)])
    assert len({a["lead_id"] for a in answers}) == 1
    assert len(await leads(ctx)) == 1
    assert await ctx.db.fetchval("SELECT count(*) FROM crm_enquiries") == 20
    assert len(await outbox(ctx, "crm.lead_created")) == 1
    assert len(await outbox(ctx, "crm.enquiry_received")) == 20


@pytest.mark.parametrize("phone", ["   ", "not a phone", "12345", "+91 00000 00000"])
async def test_a_bad_phone_is_a_422_naming_phone(client, ctx, buyer, project, phone):
    answer = await send(client, buyer, enquiry(project, phone=phone), status=422)
    assert [e["field"] for e in answer["errors"]] == ["phone"]
    assert await leads(ctx) == []


async def test_every_bad_field_is_named_at_once(client, ctx, buyer, builder, make_project,
                                                project):
    other = await make_project(builder, moderation="published", name="Blue Ridge")
    response = await client.get(f"/api/v1/projects/{other['id']}/units")
    unit_of_other = (await response.json())["items"][0]["id"]
    answer = await send(client, buyer, enquiry(
        project, phone="abc", name=" ", email="nope", source="fax", unit_id=unit_of_other),
        status=422)
    assert {e["field"] for e in answer["errors"]} == {"phone", "name", "email", "source",
                                                      "unit_id"}
    answer = await send(client, buyer, enquiry(project, unit_id=unit_of_other), status=422)
    assert [e["field"] for e in answer["errors"]] == ["unit_id"]
    answer = await send(client, buyer, enquiry(project, project_id=str(uuid.uuid4()),
                                               phone="abc"), status=422)
    assert {e["field"] for e in answer["errors"]} == {"project_id", "phone"}
    draft = await make_project(builder, name="Not Yet")
    answer = await send(client, buyer, enquiry(draft), status=422)
    assert [e["field"] for e in answer["errors"]] == ["project_id"]
    assert await leads(ctx) == []


async def test_a_unit_of_the_project_is_kept(client, ctx, buyer, project):
    units = await (await client.get(f"/api/v1/projects/{project['id']}/units")).json()
    unit_id = units["items"][0]["id"]
    await send(client, buyer, enquiry(project, unit_id=unit_id))
    (lead,) = await leads(ctx)
    assert str(lead["unit_id"]) == unit_id


async def test_anonymous_enquiries_need_a_sign_in(client, ctx, project):
    response = await client.post(ENQUIRIES, json=enquiry(project))
    assert response.status == 401
    assert await leads(ctx) == []


async def test_the_honeypot_answers_alike_and_keeps_nothing(client, ctx, buyer, project):
    answer = await send(client, buyer, enquiry(project, website="http://spam.example"))
    assert set(answer) == {"enquiry_id", "lead_id", "received_at"}
    assert await leads(ctx) == []
    assert await outbox(ctx, "crm.enquiry_received") == []


class TestLimits:
    @pytest.fixture
    def crm_overrides(self) -> dict[str, Any]:
        return {"enquiry_per_phone": "2/hour", "enquiry_per_ip": "1000/hour"}

    async def test_a_phone_sends_a_few_enquiries_an_hour(self, client, ctx, buyer, project):
        await send(client, buyer, enquiry(project))
        await send(client, buyer, enquiry(project, phone="+91 98765 43210"))
        answer = await send(client, buyer, enquiry(project, phone="098765 43210"), status=429)
        assert answer["status"] == 429
        await send(client, buyer, enquiry(project, phone="91234 56789"))  # another number
        assert await ctx.db.fetchval("SELECT count(*) FROM crm_enquiries") == 3


async def test_a_partner_pushes_a_lead_with_its_key(client, ctx, buyer, project):
    body = {k: v for k, v in enquiry(project).items() if k != "source"}
    response = await client.post(PARTNER, json={**body, "external_ref": "ACME-7"},
                                 headers={"X-Partner-Key": PARTNER_KEY})
    assert response.status == 202, await response.text()
    ack = await response.json()
    row = await ctx.db.fetchrow("SELECT * FROM crm_enquiries")
    assert (row["partner"], row["source"], row["external_ref"]) == ("acme", "partner",
                                                                    "ACME-7")
    (created,) = await outbox(ctx, "crm.lead_created")
    assert created["_actor"] == "system:partner-acme"
    # The buyer enquiring later about the same project joins the partner's lead.
    assert (await send(client, buyer, enquiry(project)))["lead_id"] == ack["lead_id"]


@pytest.mark.parametrize("headers", [{}, {"X-Partner-Key": ""}, {"X-Partner-Key": "guess"},
                                     {"X-Partner-Key": PARTNER_KEY + "x"}])
async def test_a_partner_without_its_key_gets_a_401(client, ctx, project, headers):
    response = await client.post(PARTNER, json=enquiry(project), headers=headers)
    assert response.status == 401
    assert response.content_type == "application/problem+json"
    assert await leads(ctx) == []


async def test_the_lead_list_is_for_staff(client, buyer, staff, project):
    await send(client, buyer, enquiry(project))
    assert (await client.get(LEADS)).status == 401
    assert (await client.get(LEADS, headers=buyer.headers)).status == 403
    response = await client.get(LEADS, headers=staff.headers)
    page = await response.json()
    assert response.status == 200 and len(page["items"]) == 1
    lead = page["items"][0]
    assert lead["stage_label"] == "New" and lead["sla"]["kind"] == "first_response"
    assert dt.datetime.fromisoformat(lead["sla"]["due_at"]) > dt.datetime.fromisoformat(
        lead["created_at"])
