"""The console pages: the Messages ledger (names, filters, a message's attempts), Templates
(create with the form; refused fields next to them, 422; edit), the Dev outbox, and the
dashboard card."""

from __future__ import annotations

from typing import Any

from propmubi.actors import Actor
from propmubi.testing import csrf_of, make_staff, sign_in
from propmubi.web.appkeys import SERVICES
from propmubi_plugins.notifications import api
from propmubi_plugins.notifications.models import NotifyIn
from tests.plugins.notifications.conftest import ASHA, DLT_ID, make_template

BASE = "/console/notifications"
TEMPLATES = BASE + "/templates"


async def open_page(client: Any, services: Any, path: str) -> str:
    await make_staff(services)
    assert (await sign_in(client)).status == 303
    response = await client.get(path)
    body = await response.text()
    assert response.status == 200, body
    return body


async def test_the_ledger_shows_names_and_each_attempt(client, services, event_bus):
    ctx = services.context("notifications")
    await make_template(ctx)
    await api.notify(ctx, Actor.system("leads"), NotifyIn(
        type="lead_assigned", user_id=ASHA, phone="+919812345678",
        variables={"name": "Vikram", "project": "Palm Grove"}))
    await api.send_now(ctx, Actor.system("auth"), "sms", "+919876543210", "code")
    await event_bus.drain()
    body = await open_page(client, services, BASE)
    assert f'href="{BASE}"' in body and f'href="{TEMPLATES}"' in body  # the menu
    assert "<td>Asha Rao</td>" in body and "+91******3210" in body
    assert body.count("<td>sent</td>") == 2 and "console_sms" in body
    assert f'href="{BASE}/outbox"' in body
    filtered = await (await client.get(BASE, params={"status": "failed"})).text()
    assert "No messages yet." in filtered
    assert (await client.get(BASE, params={"status": "bogus"})).status == 400
    delivery_id = await services.db.fetchval(
        "SELECT id FROM notifications_deliveries WHERE user_id = %s", (ASHA,))
    detail = await (await client.get(f"{BASE}/messages/{delivery_id}")).text()
    assert "Asha Rao" in detail and "system (leads)" in detail
    assert "<td>console_sms</td>" in detail and "<td>+919812345678</td>" in detail
    assert (await client.get(f"{BASE}/messages/nope")).status == 404
    outbox = await (await client.get(f"{BASE}/outbox")).text()
    assert "New lead Vikram for Palm Grove." in outbox and "<td>code</td>" in outbox
    dashboard = await (await client.get("/console/")).text()
    assert "Messages today" in dashboard and "2</strong> messages sent today" in dashboard


async def test_staff_create_and_edit_a_template_with_the_form(client, services):
    body = await open_page(client, services, TEMPLATES)
    token = csrf_of(body)
    response = await client.post(TEMPLATES, allow_redirects=False, data={
        "csrf_token": token, "type": "visit_reminder", "channel": "sms", "category": "visits",
        "kind": "transactional", "body": "Visit to {#project#} at {#time#}.",
        "variables": "project, time", "dlt_template_id": DLT_ID, "active": "true"})
    assert response.status == 303, await response.text()
    page = await (await client.get(response.headers["Location"])).text()
    assert "Created the sms template of visit_reminder." in page
    assert 'value="project, time"' in page
    edited = await client.post(response.headers["Location"], allow_redirects=False, data={
        "csrf_token": csrf_of(page), "type": "visit_reminder", "channel": "sms",
        "category": "visits", "kind": "transactional", "body": "Visit {#project#} today.",
        "variables": "project", "dlt_template_id": DLT_ID})
    assert edited.status == 303
    row = await services.db.fetchrow("SELECT body, active, updated_by"
                                     " FROM notifications_templates")
    assert row["body"] == "Visit {#project#} today." and row["active"] is False
    assert row["updated_by"].startswith("staff:")
    listing = await (await client.get(TEMPLATES)).text()
    assert "visit_reminder" in listing and "switched off" in listing


async def test_a_refused_template_shows_each_message_next_to_its_field(client, services):
    token = csrf_of(await open_page(client, services, TEMPLATES))
    response = await client.post(TEMPLATES, data={
        "csrf_token": token, "type": "visit_reminder", "channel": "sms", "category": "visits",
        "kind": "transactional", "body": "Hi {#a#} {#b#} {#c#}", "variables": "a b c"})
    assert response.status == 422
    body = await response.text()
    assert '<p class="field-error" id="body-error">an SMS template may hold at most 2' in body
    assert 'id="dlt_template_id-error">An SMS template needs its DLT template id' in body
    assert "Hi {#a#} {#b#} {#c#}</textarea>" in body  # what was typed is kept
    assert not await services.db.fetchval("SELECT count(*) FROM notifications_templates")
    duplicate = {"csrf_token": token, "type": "otp", "channel": "sms", "category": "account",
                 "kind": "critical", "body": "{#code#} is your code.", "variables": "code",
                 "dlt_template_id": DLT_ID, "active": "true"}
    assert (await client.post(TEMPLATES, data=duplicate, allow_redirects=False)).status == 303
    again = await client.post(TEMPLATES, data=duplicate)
    assert again.status == 422 and "otp already has an sms template" in await again.text()


async def test_the_dev_outbox_is_absent_in_a_setup_without_console_providers(client,
                                                                            services):
    ctx = client.app[SERVICES].context("notifications")
    ctx.state.providers["sms"] = []
    ctx.state.providers["email"] = []
    ctx.state.providers["push"] = []
    await open_page(client, services, BASE)
    assert (await client.get(f"{BASE}/outbox")).status == 404
