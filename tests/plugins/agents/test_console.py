"""The agents console: the list by status, an agent's page, staff actions through its forms
(verify, suspend, capacity and territories, holidays, listings), a new agent for the user
found by their sign-in phone, refused fields (422 with the message next to the field), the
expiring queue and the dashboard card."""

from __future__ import annotations

import uuid
from typing import Any

from propmubi.actors import Actor
from propmubi.testing import csrf_of, make_staff, sign_in
from propmubi_plugins.agents import service, store
from propmubi_plugins.agents.models import ListingIn
from propmubi_plugins.agents.state import Ctx
from tests.plugins.agents.conftest import onboard, status_of, verified_kyc

PREFIX = "/console/agents"


async def signed_in(client: Any, services: Any) -> None:
    await make_staff(services)
    assert (await sign_in(client)).status == 303


async def page(client: Any, url: str) -> str:
    response = await client.get(url)
    body = await response.text()
    assert response.status == 200, body
    return body


async def test_staff_list_open_and_verify_an_agent(client, ctx, agent_user):
    await signed_in(client, ctx.services)
    agent = await onboard(client, agent_user)
    await verified_kyc(ctx, agent_user.id)
    body = await page(client, PREFIX)
    assert f'href="{PREFIX}"' in body and "Asha Kulkarni" in body  # menu entry, the row
    assert "Asha Kulkarni" not in await page(client, f"{PREFIX}?status=active")
    url = f"{PREFIX}/{agent['id']}"
    body = await page(client, url)
    assert 'data-status="pending"' in body and 'data-kyc="verified"' in body
    assert "A51800012345" in body and "Verify the registration" in body
    response = await client.post(f"{url}/registration/verify", allow_redirects=False,
                                 data={"csrf_token": csrf_of(body)})
    assert response.status == 303 and response.headers["Location"] == url
    body = await page(client, url)
    assert "Registration verified." in body and 'data-status="active"' in body
    assert await status_of(ctx, uuid.UUID(agent["id"])) == "active"
    # The history names who did it.
    assert "Sam Staff" in body
    assert (await client.get(f"{PREFIX}?status=asleep")).status == 400
    assert (await client.get(f"{PREFIX}/{uuid.uuid4()}")).status == 404


async def test_refused_fields_show_their_message(client, ctx, active_agent):
    await signed_in(client, ctx.services)
    url = f"{PREFIX}/{active_agent['id']}"
    token = csrf_of(await page(client, url))
    response = await client.post(f"{url}/suspend", data={"csrf_token": token, "reason": " "})
    assert response.status == 422
    assert '<p class="field-error" id="reason-error">Give the reason.</p>' in (
        await response.text())
    response = await client.post(f"{url}/routing", data={
        "csrf_token": token, "capacity": "-2", "territories": "Pune / Baner"})
    body = await response.text()
    assert response.status == 422
    assert "Give a number of open leads from 0 (none) to 1000." in body
    assert ">Pune / Baner</textarea>" in body  # what was typed is kept
    response = await client.post(f"{url}/holidays", data={
        "csrf_token": token, "starts_on": "2026-01-01", "ends_on": "2026-01-02"})
    assert response.status == 422
    assert "This holiday is already over." in await response.text()
    assert await status_of(ctx, uuid.UUID(active_agent["id"])) == "active"


async def test_staff_edit_routing_holidays_suspend_and_decide_listings(
        client, ctx, active_agent, builder, make_project):
    await signed_in(client, ctx.services)
    agent_id = uuid.UUID(active_agent["id"])
    project = await make_project(builder)
    listing = await service.request_listing(ctx, active_agent["user"].actor, agent_id,
                                            ListingIn(project_id=project["id"]))
    url = f"{PREFIX}/{agent_id}"
    body = await page(client, url)
    assert "Green Meadows" in body  # the project's name, not its id
    token = csrf_of(body)
    response = await client.post(f"{url}/routing", allow_redirects=False, data={
        "csrf_token": token, "capacity": "4", "territories": "Pune / Baner\nMumbai\n"})
    assert response.status == 303
    response = await client.post(f"{url}/holidays", allow_redirects=False, data={
        "csrf_token": token, "starts_on": "2026-03-10", "ends_on": "2026-03-12",
        "note": "Wedding"})
    assert response.status == 303
    response = await client.post(f"{url}/listings/{listing.id}/accept", allow_redirects=False,
                                 data={"csrf_token": token})
    assert response.status == 303
    out = await service.get_agent(ctx, Actor.system("t"), agent_id)
    assert out.capacity == 4 and [(t.city, t.locality) for t in out.territories] == [
        ("Mumbai", None), ("Pune", "Baner")]
    assert [h.note for h in out.holidays] == ["Wedding"]
    assert [li.status for li in out.listings] == ["accepted"]
    body = await page(client, url)
    assert "Wedding" in body and "Pune / Baner" in body
    response = await client.post(f"{url}/suspend", allow_redirects=False,
                                 data={"csrf_token": token, "reason": "Complaint 42"})
    assert response.status == 303
    body = await page(client, url)
    assert 'data-status="suspended"' in body and "Complaint 42" in body
    assert "inactive while the agent is not active" in body
    # Reinstating twice: the second is refused with a message, nothing breaks.
    for _ in range(2):
        response = await client.post(f"{url}/reinstate", data={"csrf_token": token})
    body = await response.text()
    assert "Nothing changed: the agent is not suspended." in body


async def test_the_expiring_queue_and_the_dashboard_card(client, ctx, clock, active_agent):
    await signed_in(client, ctx.services)
    body = await page(client, f"{PREFIX}/expiring")
    assert "No registration ends in that time." in body
    clock.now_is("2029-11-01")
    body = await page(client, f"{PREFIX}/expiring")
    assert "Asha Kulkarni" in body and "2029-12-31 (60 days)" in body
    body = await page(client, "/console/")
    assert "data-active>1<" in body and "data-expiring>1<" in body
    assert await store.submitted_count(ctx.db) == 0


async def _sign_in_phone(ctx: Ctx, user_id: uuid.UUID) -> str:
    return str(await ctx.db.fetchval("SELECT phone FROM auth_users WHERE id = %s", (user_id,)))


def _new_agent(token: str, user_phone: str, **changes: str) -> dict[str, str]:
    return {"csrf_token": token, "user_phone": user_phone, "display_name": "Ravi Deshpande",
            "phone": "", "email": "Ravi@Example.com", "languages": "Marathi, english, marathi",
            "state": "MH", "number": "A51800054321", "valid_from": "2025-01-01",
            "valid_until": "2029-12-31", **changes}


async def test_staff_create_an_agent_for_the_user_who_signs_in_with_a_phone(
        client, ctx, make_user):
    await signed_in(client, ctx.services)
    user = await make_user("agent")
    phone = await _sign_in_phone(ctx, user.id)
    body = await page(client, PREFIX)
    assert f'href="{PREFIX}/new"' in body
    body = await page(client, f"{PREFIX}/new")
    assert '<label for="user_phone">' in body and ">Maharashtra</option>" in body
    # Typed the national way, with spaces: the user is found by the E.164 number.
    national = f"0{phone[3:8]} {phone[8:]}"
    response = await client.post(f"{PREFIX}/new", allow_redirects=False,
                                 data=_new_agent(csrf_of(body), national))
    assert response.status == 303, await response.text()
    url = response.headers["Location"]
    agent_id = uuid.UUID(url.rsplit("/", 1)[1])
    body = await page(client, url)
    assert "Agent created" in body and 'data-status="pending"' in body
    assert "Ravi Deshpande" in body and "A51800054321" in body
    out = await service.get_agent(ctx, Actor.system("t"), agent_id)
    assert out.user_id == user.id and out.phone == phone  # empty contact: the sign-in number
    assert out.email == "ravi@example.com" and out.languages == ["Marathi", "english"]
    assert out.pending_registration is not None and out.pending_registration.state == "MH"
    # The history says staff made it, by name.
    assert "Sam Staff" in body


async def test_a_refused_new_agent_says_why_next_to_the_field_and_creates_nothing(
        client, ctx, make_user, active_agent):
    await signed_in(client, ctx.services)
    token = csrf_of(await page(client, f"{PREFIX}/new"))
    before = await ctx.db.fetchval("SELECT count(*) FROM agents_agents")

    async def refused(data: dict[str, str]) -> str:
        response = await client.post(f"{PREFIX}/new", data=data)
        text = await response.text()
        assert response.status == 422, text
        return text

    def message(field: str, text: str) -> str:
        return f'<p class="field-error" id="{field}-error">{text}</p>'

    # A browser posts every box, the empty ones empty.
    body = await refused(_new_agent(token, "", display_name=" ", email="", languages="",
                                    number="", valid_from="", valid_until=""))
    assert message("user_phone", "Give the phone number the user signs in with.") in body
    assert message("display_name", "Give the name they work under.") in body
    assert 'id="number-error"' in body and 'id="valid_from-error"' in body
    assert 'id="email-error"' in body
    body = await refused(_new_agent(token, "12345", valid_until="2024-12-31",
                                    email="not an address"))
    assert message("user_phone",
                   "Give a valid phone number (98123 45678 or +91 98123 45678).") in body
    assert message("valid_until", "The registration must end after it starts.") in body
    assert message("email", "Give an e-mail address such as name@example.com.") in body
    assert 'value="not an address"' in body  # what was typed is kept
    body = await refused(_new_agent(token, "+91 99999 00001"))
    assert "No user signs in with this phone number" in body
    buyer = await make_user()
    body = await refused(_new_agent(token, await _sign_in_phone(ctx, buyer.id)))
    assert "The user does not hold the agent role" in body
    holder = active_agent["user"]
    body = await refused(_new_agent(token, await _sign_in_phone(ctx, holder.id),
                                    number="A51800099999"))
    assert message("user_phone", "This user already has an agent profile.") in body
    other = await make_user("agent")
    body = await refused(_new_agent(token, await _sign_in_phone(ctx, other.id),
                                    number="A51800012345"))  # the active agent's number
    assert 'id="number-error"' in body and "belongs to another agent" in body
    assert await ctx.db.fetchval("SELECT count(*) FROM agents_agents") == before
