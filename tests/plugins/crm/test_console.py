"""The CRM's console: the board by stage, a lead with its forms (stage change, reassign with
a reason), the queues and the dashboard card, as a signed-in staff member sees them."""

from __future__ import annotations

import uuid
from typing import Any

from propmubi.testing import csrf_of, make_staff, sign_in
from propmubi_plugins.crm import service
from tests.plugins.crm.conftest import add_agent, enquiry, send

BOARD = "/console/crm/leads"


async def signed_in(client: Any, services: Any) -> None:
    await make_staff(services)
    assert (await sign_in(client)).status == 303


async def test_the_board_shows_names_by_stage(client, services, ctx, buyer, project,
                                              make_user):
    advisor = await make_user("agent")
    await add_agent(ctx, user_id=advisor.id)
    await send(client, buyer, enquiry(project))
    await signed_in(client, services)
    response = await client.get(BOARD)
    body = await response.text()
    assert response.status == 200, body
    assert f'href="{BOARD}"' in body  # the menu entry
    assert 'data-stage="new"' in body and 'data-stage="lost"' in body
    assert "Asha Rao" in body and "Green Meadows" in body
    assert str(project["id"]) not in body.replace(f"/console/projects/{project['id']}", "")
    assert "<script" not in body


async def test_staff_move_and_reassign_a_lead_with_the_forms(client, services, ctx, buyer,
                                                             project, make_user):
    advisor, other = await make_user("agent"), await make_user("agent")
    await add_agent(ctx, user_id=advisor.id)
    other_id = await add_agent(ctx, user_id=other.id, territories=[("Delhi", "")])
    lead_id = (await send(client, buyer, enquiry(project)))["lead_id"]
    await signed_in(client, services)
    page = f"{BOARD}/{lead_id}"
    body = await (await client.get(page)).text()
    token = csrf_of(body)
    assert "+919876543210" in body and "Is the 2 BHK still available?" in body

    response = await client.post(f"{page}/stage", data={"csrf_token": token, "stage": "lost"})
    assert response.status == 422
    assert 'id="reason-error"' in await response.text()
    response = await client.post(f"{page}/stage", allow_redirects=False,
                                 data={"csrf_token": token, "stage": "contacted"})
    assert response.status == 303 and response.headers["Location"] == page

    response = await client.post(f"{page}/reassign",
                                 data={"csrf_token": token, "agent_id": str(other_id)})
    assert response.status == 422
    assert 'id="reason-error"' in await response.text()
    response = await client.post(f"{page}/reassign", allow_redirects=False, data={
        "csrf_token": token, "agent_id": str(other_id), "reason": "Speaks Marathi"})
    assert response.status == 303
    body = await (await client.get(page)).text()
    assert 'data-stage="contacted"' in body and "Speaks Marathi" in body
    history = await ctx.db.fetch("SELECT kind, actor FROM crm_lead_history ORDER BY id")
    assert [h["kind"] for h in history] == ["created", "assigned", "stage", "reassigned"]
    assert history[-1]["actor"].startswith("staff:")
    assert (await client.get(f"{BOARD}/{uuid.uuid4()}")).status == 404


async def test_the_queues_and_the_dashboard_card(client, services, ctx, clock, buyer, project):
    lead_id = (await send(client, buyer, enquiry(project)))["lead_id"]  # nobody to route to
    clock.move(hours=3)
    await service.check_slas(ctx)
    await signed_in(client, services)
    for url in ("/console/crm/unassigned", "/console/crm/breaches"):
        body = await (await client.get(url)).text()
        assert f"/console/crm/leads/{lead_id}" in body and "Unassigned" in body
    body = await (await client.get("/console/")).text()
    assert "data-new-today>1<" in body and "data-unassigned>1<" in body
    assert "data-breached>1<" in body


async def test_the_pages_need_a_staff_sign_in(client):
    response = await client.get(BOARD, allow_redirects=False)
    assert response.status == 401  # the console shell asks for a sign-in
