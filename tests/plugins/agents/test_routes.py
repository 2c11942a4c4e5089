"""The agents API through the whole application: onboarding, the staff actions, holidays,
listings; 401/403/404/409/422."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from tests.plugins.agents.conftest import (
    API,
    ME,
    agent_body,
    onboard,
    outbox,
    registration,
    verified_kyc,
)

AGENTS = f"{API}/agents"


async def problem(response: Any, status: int) -> dict[str, Any]:
    body = await response.json()
    assert response.status == status, body
    assert response.content_type == "application/problem+json"
    return body  # type: ignore[no-any-return]


def fields(body: dict[str, Any]) -> dict[str, str]:
    return {e["field"]: e["message"] for e in body["errors"]}


async def test_an_agent_onboards_and_reads_their_profile(client, ctx, agent_user):
    agent = await onboard(client, agent_user,
                          registration=registration(number=" a518 0001 2345", state="mh"))
    assert agent["status"] == "pending" and agent["kyc_status"] == "not_started"
    assert agent["email"] == "asha@example.com"
    assert agent["languages"] == ["Marathi", "English"]  # repeats dropped
    assert agent["registration"] is None
    waiting = agent["pending_registration"]
    assert (waiting["number"], waiting["state"], waiting["status"]) == (
        "A51800012345", "MH", "submitted")
    assert agent["capacity"] == 10 and agent["listings"] == [] and not agent["on_holiday"]
    response = await client.get(ME, headers=agent_user.headers)
    assert response.status == 200
    assert await response.json() == agent
    # A second profile is refused.
    await problem(await client.post(ME, json=agent_body(), headers=agent_user.headers), 409)


async def test_who_may_onboard(client, buyer, agent_user, make_user):
    await problem(await client.post(ME, json=agent_body()), 401)
    await problem(await client.post(ME, json=agent_body(), headers=buyer.headers), 403)
    await problem(await client.get(ME, headers=agent_user.headers), 404)  # no profile yet
    await problem(await client.get(ME), 401)
    # Another agent's registration number is theirs.
    await onboard(client, agent_user)
    other = await make_user("agent")
    body = await problem(await client.post(ME, json=agent_body(), headers=other.headers), 409)
    assert body["field"] == "registration.number"


async def test_bad_input_is_a_422_naming_every_field(client, agent_user):
    body = await problem(await client.post(ME, headers=agent_user.headers, json=agent_body(
        display_name=" ", phone="12", email="nobody", languages=["x" * 41],
        registration=registration(number="P52100012345", valid_until="2024-12-31"))), 422)
    assert fields(body) == {
        "display_name": "Give the name you work under.",
        "phone": "Give a phone number of 10 to 15 digits, optionally with + first.",
        "email": "Give an e-mail address such as name@example.com.",
        "languages": "Each language is a name of 1 to 40 characters (Marathi).",
        "registration.number": "A MahaRERA agent number is A and 11 digits (A51800012345).",
        "registration.valid_until": "The registration must end after it starts."}
    body = await problem(await client.post(ME, headers=agent_user.headers, json=agent_body(
        registration=registration(state="XX", valid_until="2035-01-02"))), 422)
    assert set(fields(body)) == {"registration.state", "registration.valid_until"}
    assert "at most 10 years" in fields(body)["registration.valid_until"]
    # Other states take any plausible number.
    response = await client.post(ME, headers=agent_user.headers, json=agent_body(
        registration=registration(state="DL", number="dl/rera/ag/2024/15 3")))
    assert response.status == 201
    assert (await response.json())["pending_registration"]["number"] == "DL/RERA/AG/2024/153"


async def test_an_ended_registration_is_refused(client, agent_user, clock):
    clock.now_is("2030-01-05")
    body = await problem(await client.post(ME, json=agent_body(), headers=agent_user.headers),
                         422)
    assert fields(body) == {"registration.valid_until": "This registration has already ended."}


async def test_staff_verify_and_the_agent_becomes_active(client, ctx, agent_user, staff,
                                                         buyer):
    agent = await onboard(client, agent_user)
    url = f"{AGENTS}/{agent['id']}"
    await problem(await client.post(f"{url}/registration/verify", headers=buyer.headers), 403)
    await problem(await client.post(f"{url}/registration/verify"), 401)
    response = await client.post(f"{url}/registration/verify", headers=staff.headers)
    body = await response.json()
    assert response.status == 200, body
    assert body["status"] == "pending"  # the KYC is not verified yet
    assert body["registration"]["status"] == "verified" and body["pending_registration"] is None
    await problem(await client.post(f"{url}/registration/verify", headers=staff.headers), 409)
    await verified_kyc(ctx, agent_user.id)
    me = await (await client.get(ME, headers=agent_user.headers)).json()
    assert me["status"] == "active" and me["kyc_status"] == "verified"
    (activated,) = await outbox(ctx, "agents.agent_activated")
    assert activated["agent_id"] == agent["id"] and activated["routing"]["active"]
    # Staff suspend (with a reason), the agent is told why; reinstate.
    body = await problem(await client.post(f"{url}/suspend", json={"reason": ""},
                                           headers=staff.headers), 422)
    assert fields(body) == {"reason": "Give the reason."}
    response = await client.post(f"{url}/suspend", json={"reason": "complaints"},
                                 headers=staff.headers)
    assert (await response.json())["status"] == "suspended"
    me = await (await client.get(ME, headers=agent_user.headers)).json()
    assert (me["status"], me["suspended_note"]) == ("suspended", "complaints")
    response = await client.post(f"{url}/reinstate", headers=staff.headers)
    assert (await response.json())["status"] == "active"
    await problem(await client.post(f"{url}/reinstate", headers=staff.headers), 409)
    await problem(await client.get(f"{AGENTS}/{uuid.uuid4()}", headers=staff.headers), 404)
    await problem(await client.get(f"{AGENTS}/not-a-uuid", headers=staff.headers), 422)


async def test_a_rejected_registration_and_a_renewal(client, ctx, agent_user, staff):
    agent = await onboard(client, agent_user)
    url = f"{AGENTS}/{agent['id']}"
    response = await client.post(f"{url}/registration/reject", json={"reason": "blurry"},
                                 headers=staff.headers)
    body = await response.json()
    assert body["pending_registration"]["status"] == "rejected"
    assert body["pending_registration"]["reason"] == "blurry"
    renewal = registration(valid_from="2025-02-01", valid_until="2030-01-31")
    response = await client.put(f"{ME}/registration", json=renewal, headers=agent_user.headers)
    body = await response.json()
    assert response.status == 200, body
    assert body["pending_registration"]["status"] == "submitted"
    assert body["pending_registration"]["valid_until"] == "2030-01-31"


async def test_staff_list_agents_by_status_a_page_at_a_time(client, ctx, staff, make_user):
    ids = []
    for n in range(3):
        user = await make_user("agent")
        ids.append((await onboard(client, user, registration=registration(
            number=f"A5180001234{n}")))["id"])
    first = await (await client.get(AGENTS, params={"limit": "2"},
                                    headers=staff.headers)).json()
    assert [a["id"] for a in first["items"]] == [ids[2], ids[1]]
    second = await (await client.get(AGENTS, params={"limit": "2",
                                                     "cursor": first["next_cursor"]},
                                     headers=staff.headers)).json()
    assert [a["id"] for a in second["items"]] == [ids[0]] and second["next_cursor"] is None
    active = await (await client.get(AGENTS, params={"status": "active"},
                                     headers=staff.headers)).json()
    assert active["items"] == []
    await problem(await client.get(AGENTS, params={"status": "asleep"},
                                   headers=staff.headers), 422)
    await problem(await client.get(AGENTS, params={"cursor": "nope"}, headers=staff.headers),
                  422)


async def test_capacity_territories_and_holidays(client, ctx, agent_user, clock):
    await onboard(client, agent_user)
    response = await client.patch(ME, headers=agent_user.headers, json={
        "capacity": 0, "territories": [{"city": " Pune ", "locality": "Baner"},
                                       {"city": "pune", "locality": " baner "},
                                       {"city": "Mumbai"}]})
    body = await response.json()
    assert response.status == 200, body
    assert body["capacity"] == 0
    assert body["territories"] == [{"city": "Mumbai", "locality": None},
                                   {"city": "Pune", "locality": "Baner"}]
    body = await problem(await client.patch(ME, headers=agent_user.headers, json={
        "capacity": -1, "territories": [{"city": ""}]}), 422)
    assert set(fields(body)) == {"capacity", "territories[0].city"}
    response = await client.post(f"{ME}/holidays", headers=agent_user.headers, json={
        "starts_on": "2026-02-27", "ends_on": "2026-03-03", "note": "Holi"})
    body = await response.json()
    assert response.status == 201, body
    assert body["on_holiday"] and body["holidays"][0]["note"] == "Holi"
    body = await problem(await client.post(f"{ME}/holidays", headers=agent_user.headers,
                                           json={"starts_on": "2026-02-01",
                                                 "ends_on": "2026-02-02"}), 422)
    assert fields(body) == {"ends_on": "This holiday is already over."}
    body = await problem(await client.post(f"{ME}/holidays", headers=agent_user.headers,
                                           json={"starts_on": "2026-04-02",
                                                 "ends_on": "2026-04-01"}), 422)
    assert fields(body) == {"ends_on": "A holiday ends on or after the day it starts."}
    holiday_id = (await (await client.get(ME, headers=agent_user.headers)).json()
                  )["holidays"][0]["id"]
    response = await client.delete(f"{ME}/holidays/{holiday_id}", headers=agent_user.headers)
    assert response.status == 204
    await problem(await client.delete(f"{ME}/holidays/{holiday_id}",
                                      headers=agent_user.headers), 404)
    updates = await outbox(ctx, "agents.agent_updated")
    assert [u["fields"] for u in updates] == [["capacity", "territories"], ["holidays"],
                                             ["holidays"]]
    assert updates[0]["routing"]["territories"][1] == {
        "city": "Pune", "locality": "Baner", "city_key": "pune", "locality_key": "baner"}


async def test_listings_requested_by_active_agents_decided_by_the_builder(
            client, ctx, active_agent, builder, other_builder, make_project, make_user, staff):
    project = await make_project(builder)
    agent_user = active_agent["user"]
    listings = f"{ME}/listings"
    await problem(await client.post(listings, json={"project_id": str(uuid.uuid4())},
                                    headers=agent_user.headers), 404)
    response = await client.post(listings, json={"project_id": str(project["id"])},
                                 headers=agent_user.headers)
    listing = await response.json()
    assert response.status == 201, listing
    assert (listing["status"], listing["active"]) == ("requested", False)
    await problem(await client.post(listings, json={"project_id": str(project["id"])},
                                    headers=agent_user.headers), 409)
    # The builder sees and decides; another builder may not.
    url = f"{API}/agents/projects/{project['id']}/listings"
    await problem(await client.get(url, headers=other_builder.headers), 403)
    page = await (await client.get(url, headers=builder.headers)).json()
    assert [item["id"] for item in page["items"]] == [listing["id"]]
    accept = f"{API}/agents/listings/{listing['id']}/accept"
    await problem(await client.post(accept, headers=other_builder.headers), 403)
    response = await client.post(f"{API}/agents/listings/{listing['id']}/reject",
                                 json={"reason": "not our channel partner"},
                                 headers=builder.headers)
    assert (await response.json())["status"] == "rejected"
    await problem(await client.post(accept, headers=builder.headers), 409)
    # Asked again after a rejection, then accepted by staff.
    response = await client.post(listings, json={"project_id": str(project["id"])},
                                 headers=agent_user.headers)
    assert response.status == 201
    response = await client.post(accept, headers=staff.headers)
    accepted = await response.json()
    assert (accepted["status"], accepted["active"]) == ("accepted", True)
    await problem(await client.post(f"{API}/agents/listings/{uuid.uuid4()}/accept",
                                    headers=staff.headers), 404)
    changes = await outbox(ctx, "agents.listing_changed")
    assert [c["status"] for c in changes] == ["requested", "rejected", "requested", "accepted"]
    assert changes[-1]["routing"]["listed_project_ids"] == [str(project["id"])]
    # A pending agent may not ask.
    pending = await make_user("agent")
    await onboard(client, pending, registration=registration(number="A51800099999"))
    body = await problem(await client.post(listings, json={"project_id": str(project["id"])},
                                           headers=pending.headers), 409)
    assert body["type"].endswith("/agent-not-active")


async def test_one_number_one_agent_also_at_once(client, make_user):
    """Five agents submit the same registration number at the same moment: one profile
    gets it, four get a 409 naming the field (the check and the insert are one step)."""
    users = [await make_user("agent") for _ in range(5)]
    answers = await asyncio.gather(*(client.post(ME, json=agent_body(), headers=u.headers)
                                     for u in users))
    assert sorted(a.status for a in answers) == [201, 409, 409, 409, 409]
    for answer in answers:
        if answer.status == 409:
            assert (await answer.json())["field"] == "registration.number"
