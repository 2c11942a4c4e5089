"""Leads after the enquiry: routing to advisors, the pipeline through the API (the advisor's
and staff's), reassignment, the advisor's list, the SLA job, the queue job and the seed."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from typing import Any

import pytest

from propmubi.actors import Actor
from propmubi.errors import Forbidden
from propmubi.types import Principal
from propmubi.web.appkeys import SERVICES
from propmubi_plugins.catalog import seed as catalog_seed
from propmubi_plugins.crm import seed, service
from tests.plugins.crm.conftest import LEADS, add_agent, enquiry, outbox, send

MY = "/api/v1/crm/my/leads"


async def lead_row(ctx: Any, lead_id: Any) -> dict[str, Any]:
    row = await ctx.db.fetchrow("SELECT * FROM crm_leads WHERE id = %s",
                                (uuid.UUID(str(lead_id)),))
    assert row is not None
    return row


async def new_lead(client: Any, buyer: Any, project: Any, phone: str) -> str:
    return (await send(client, buyer, enquiry(project, phone=phone)))["lead_id"]


PHONES = [f"98765 4{n:04d}" for n in range(40)]


async def test_leads_go_round_the_advisors_of_the_place(client, ctx, clock, buyer, project):
    a = await add_agent(ctx, projects=[project["id"]])
    b = await add_agent(ctx, territories=[("pune", "baner")], projects=[project["id"]])
    await add_agent(ctx)  # in Pune but lists nothing: listing advisors come first
    await add_agent(ctx, territories=[("Mumbai", "")], projects=[project["id"]])
    got = []
    for phone in PHONES[:6]:
        clock.move(minutes=1)
        got.append((await lead_row(ctx, await new_lead(client, buyer, project, phone)))
                   ["agent_id"])
    assert got == [a, b, a, b, a, b] or got == [b, a, b, a, b, a]
    assigned = await outbox(ctx, "crm.lead_assigned")
    assert len(assigned) == 6 and assigned[0]["_actor"] == "system:crm-routing"


async def test_with_no_listing_advisor_the_territory_is_enough(client, ctx, buyer, project):
    c = await add_agent(ctx, territories=[("PUNE", "")])
    lead = await lead_row(ctx, await new_lead(client, buyer, project, PHONES[0]))
    assert lead["agent_id"] == c


async def test_without_an_eligible_advisor_the_lead_waits_then_the_job_routes_it(
        client, ctx, clock, buyer, project):
    off = await add_agent(ctx, holidays=[(dt.date(2025, 6, 1), dt.date(2025, 6, 2))])
    await add_agent(ctx, capacity=0)
    await add_agent(ctx, active=False)
    lead_id = await new_lead(client, buyer, project, PHONES[0])
    assert (await lead_row(ctx, lead_id))["agent_id"] is None
    await service.route_queue(ctx)
    assert (await lead_row(ctx, lead_id))["agent_id"] is None
    clock.move(days=1)  # the holiday is over
    await service.route_queue(ctx)
    assert (await lead_row(ctx, lead_id))["agent_id"] == off


async def test_capacity_counts_open_leads(client, ctx, buyer, project):
    a = await add_agent(ctx, capacity=1)
    first = await lead_row(ctx, await new_lead(client, buyer, project, PHONES[0]))
    second = await lead_row(ctx, await new_lead(client, buyer, project, PHONES[1]))
    assert (first["agent_id"], second["agent_id"]) == (a, None)


async def test_concurrent_leads_respect_capacity_and_fairness(client, ctx, buyer, project):
    agents = [await add_agent(ctx, capacity=3) for _ in range(3)]
    ids = await asyncio.gather(*[new_lead(client, buyer, project, p) for p in PHONES[:10]])
    rows = [await lead_row(ctx, i) for i in ids]
    per = [sum(r["agent_id"] == a for r in rows) for a in agents]
    assert sorted(per) == [3, 3, 3] and sum(r["agent_id"] is None for r in rows) == 1


@pytest.fixture
async def advisor(make_user: Any) -> Any:
    return await make_user("agent")


@pytest.fixture
async def assigned(client: Any, ctx: Any, buyer: Any, project: Any, advisor: Any) -> str:
    """A lead of the project assigned to ``advisor``."""
    await add_agent(ctx, user_id=advisor.id, name="Neha Advisor")
    return await new_lead(client, buyer, project, PHONES[0])


async def stage(client: Any, user: Any, lead_id: str, body: dict[str, Any], status: int = 200
                ) -> dict[str, Any]:
    response = await client.post(f"{LEADS}/{lead_id}/stage", json=body, headers=user.headers)
    answer = await response.json()
    assert response.status == status, answer
    return answer


async def test_the_advisor_moves_their_lead_through_the_pipeline(client, ctx, clock, advisor,
                                                                 assigned):
    clock.move(minutes=30)
    lead = await stage(client, advisor, assigned, {"stage": "contacted"})
    assert (lead["stage"], lead["stage_label"], lead["sla"]["kind"]) == (
        "contacted", "Contacted", "follow_up")
    assert lead["first_response_at"] is not None
    lead = await stage(client, advisor, assigned, {"stage": "visit_scheduled"})
    assert lead["sla"]["paused"] is True and lead["sla"]["due_at"] is None
    answer = await stage(client, advisor, assigned, {"stage": "lost"}, status=422)
    assert [e["field"] for e in answer["errors"]] == ["reason"]
    answer = await stage(client, advisor, assigned, {"stage": "sold"}, status=422)
    assert [e["field"] for e in answer["errors"]] == ["stage"]
    lead = await stage(client, advisor, assigned, {"stage": "lost", "reason": "Bought nearby"})
    assert (lead["lost_reason"], lead["sla"]) == ("Bought nearby", None)
    assert lead["closed_at"] is not None
    await stage(client, advisor, assigned, {"stage": "contacted"}, status=409)
    changes = await outbox(ctx, "crm.stage_changed")
    assert [(c["from_stage"], c["to_stage"]) for c in changes] == [
        ("new", "contacted"), ("contacted", "visit_scheduled"), ("visit_scheduled", "lost")]
    assert "reason" not in changes[-1] and changes[-1]["closed"] is True
    detail = await (await client.get(f"{LEADS}/{assigned}", headers=advisor.headers)).json()
    assert [h["kind"] for h in detail["history"]] == ["created", "assigned", "stage", "stage",
                                                      "stage"]
    assert detail["history"][-1]["reason"] == "Bought nearby"
    assert len(detail["enquiries"]) == 1


async def test_others_cannot_see_or_move_the_lead(client, buyer, make_user, assigned):
    stranger = await make_user("agent")
    for user in (buyer, stranger):
        await stage(client, user, assigned, {"stage": "contacted"}, status=404)
        assert (await client.get(f"{LEADS}/{assigned}", headers=user.headers)).status == 404
    assert (await client.get(f"{LEADS}/{assigned}")).status == 401
    assert (await client.get(f"{LEADS}/{uuid.uuid4()}", headers=buyer.headers)).status == 404
    assert (await client.get(f"{LEADS}/not-a-uuid", headers=buyer.headers)).status == 422


async def test_the_advisor_lists_their_leads(client, ctx, buyer, project, advisor, assigned):
    page = await (await client.get(MY, headers=advisor.headers)).json()
    assert [lead["id"] for lead in page["items"]] == [assigned]
    assert page["items"][0]["agent_name"] == "Neha Advisor"
    response = await client.get(MY, headers=buyer.headers)
    assert response.status == 403
    response = await client.get(MY, params={"stage": "nope"}, headers=advisor.headers)
    assert response.status == 422
    assert (await client.get(MY)).status == 401


async def test_staff_reassign_with_a_reason(client, ctx, staff, buyer, make_user, assigned):
    other_user = await make_user("agent")
    other = await add_agent(ctx, user_id=other_user.id, territories=[("Delhi", "")])
    url = f"{LEADS}/{assigned}/reassign"
    response = await client.post(url, json={"agent_id": str(other)}, headers=staff.headers)
    assert response.status == 422
    assert [e["field"] for e in (await response.json())["errors"]] == ["reason"]
    response = await client.post(url, json={"agent_id": str(uuid.uuid4()), "reason": "x"},
                                 headers=staff.headers)
    assert response.status == 422
    response = await client.post(url, json={"agent_id": str(other), "reason": "x"},
                                 headers=buyer.headers)
    assert response.status == 403
    response = await client.post(url, json={"agent_id": str(other), "reason": "On leave"},
                                 headers=staff.headers)
    assert response.status == 200, await response.text()
    assert (await response.json())["agent_id"] == str(other)
    (moved,) = await outbox(ctx, "crm.lead_reassigned")
    assert (moved["to_agent_id"], moved["to_agent_user_id"]) == (str(other), str(other_user.id))
    response = await client.post(url, json={"agent_id": str(other), "reason": "again"},
                                 headers=staff.headers)
    assert response.status == 409
    response = await client.post(url, json={"reason": "Back to the queue"},
                                 headers=staff.headers)
    assert (await response.json())["agent_id"] is None
    history = [(h["kind"], h["reason"]) for h in await ctx.db.fetch(
        "SELECT kind, reason FROM crm_lead_history ORDER BY id")]
    assert history[-2:] == [("reassigned", "On leave"), ("unassigned", "Back to the queue")]


# --------------------------------------------------------------------------------------------
# The SLA job
# --------------------------------------------------------------------------------------------


async def events_of(ctx: Any, kind: str) -> list[dict[str, Any]]:
    return await outbox(ctx, f"crm.{kind}")


async def test_a_warning_at_80_percent_and_one_breach(client, ctx, clock, assigned):
    # First response: 2 business hours from Monday 10:00 IST.
    clock.move(minutes=95)  # 79 %
    await service.check_slas(ctx)
    assert await events_of(ctx, "sla_warning") == []
    clock.move(minutes=1)  # 80 %
    await service.check_slas(ctx)
    await service.check_slas(ctx)
    (warning,) = await events_of(ctx, "sla_warning")
    assert (warning["lead_id"], warning["kind"]) == (assigned, "first_response")
    clock.move(minutes=24)  # 120 minutes
    await asyncio.gather(*[service.check_slas(ctx) for _ in range(4)])
    (breach,) = await events_of(ctx, "sla_breached")
    assert breach["agent_user_id"] is not None and breach["_actor"] == "system:sla"
    lead = await lead_row(ctx, assigned)
    assert lead["sla_breached_at"] == clock.at
    clock.move(hours=30)
    await service.check_slas(ctx)
    assert len(await events_of(ctx, "sla_breached")) == 1
    assert len(await events_of(ctx, "sla_warning")) == 1


async def test_after_hours_and_pauses_stop_the_clock(client, ctx, clock, advisor, assigned):
    clock.move(minutes=30)
    await stage(client, advisor, assigned, {"stage": "contacted"})  # follow-up: 9 h
    clock.move(hours=1)
    await stage(client, advisor, assigned, {"stage": "visit_scheduled"})  # paused
    clock.move(days=5)
    await service.check_slas(ctx)
    assert await events_of(ctx, "sla_warning") == []
    await stage(client, advisor, assigned, {"stage": "visited"})  # Saturday 11:30 IST
    clock.move(hours=7)  # 1 h + 7:30 business hours (Saturday closes at 19:00) = 8.5 h ran
    await service.check_slas(ctx)
    assert len(await events_of(ctx, "sla_warning")) == 1
    assert await events_of(ctx, "sla_breached") == []
    clock.move(hours=24)  # Sunday 18:30: still only 8.5 h
    await service.check_slas(ctx)
    assert await events_of(ctx, "sla_breached") == []
    clock.move(hours=16)  # Monday 10:30: 9 h
    await service.check_slas(ctx)
    assert len(await events_of(ctx, "sla_breached")) == 1


async def test_a_new_clock_after_a_stage_change_may_warn_again(client, ctx, clock, advisor,
                                                               assigned):
    clock.move(minutes=100)
    await service.check_slas(ctx)
    await stage(client, advisor, assigned, {"stage": "contacted"})
    clock.move(hours=8)
    await service.check_slas(ctx)
    assert [w["kind"] for w in await events_of(ctx, "sla_warning")] == [
        "first_response", "follow_up"]


async def test_seeding_twice_adds_nothing(client, ctx):
    await catalog_seed.seed(client.app[SERVICES].context("catalog"), 0.005)  # 10 projects
    made = await seed.seed(ctx, 0.25)  # looks at those 10
    assert made > 0
    assert await seed.seed(ctx, 0.25) == 0
    assert await ctx.db.fetchval("SELECT count(*) FROM crm_leads") == made
    assert await ctx.db.fetchval("SELECT count(*) FROM crm_enquiries") == made


async def test_the_dev_seed_scale_still_makes_leads(client, ctx):
    """``propmubi dev`` seeds at a small scale (0.02): the first projects looked at are
    enough to show a newcomer some leads."""
    await catalog_seed.seed(client.app[SERVICES].context("catalog"), 0.005)
    assert await seed.seed(ctx, 0.02) > 0


async def test_only_the_system_changes_the_routing_copy(ctx):
    buyer = Actor.user(Principal(str(uuid.uuid4()), ["buyer"]))
    with pytest.raises(Forbidden, match="only the system"):
        async with ctx.db.transaction() as tx:
            await service.sync_agent_in(ctx, tx, buyer, uuid.uuid4(), {"active": True})
