"""The console's user directory and the sign-ups card."""

from __future__ import annotations

import re
from typing import Any

import pytest

from propmubi.ids import uuid7
from propmubi.testing import csrf_of, make_staff
from propmubi.testing import sign_in as console_sign_in
from propmubi_plugins.auth import store
from tests.plugins.auth.conftest import bearer, sign_in


async def staff_client(client: Any, services: Any, roles: tuple[str, ...] = ("staff",)) -> Any:
    await make_staff(services, roles=roles)
    response = await console_sign_in(client)
    assert response.status == 303
    return client


async def make_users(client: Any) -> list[dict[str, Any]]:
    users = []
    for phone, name in (("+919812345678", "Asha Rao"), ("+919812300000", "Vikram Shah"),
                        ("+447911123456", None)):
        tokens = await sign_in(client, phone=phone, device="Pixel")
        if name:
            await client.patch("/api/v1/me", json={"name": name}, headers=bearer(tokens))
        users.append(tokens)
    return users


def listed(body: str) -> list[str]:
    return re.findall(r'<a href="/console/users/[0-9a-f-]+">([^<]+)</a>', body)


async def test_search_by_phone_start_and_name_start(client, services):
    await make_users(client)
    await staff_client(client, services)
    everyone = await (await client.get("/console/users")).text()
    assert listed(everyone) == ["+447911123456", "Vikram Shah", "Asha Rao"]
    for query, expected in (("98123", ["Vikram Shah", "Asha Rao"]),
                            ("+91 98123 45678", ["Asha Rao"]),
                            ("+44791", ["+447911123456"]),
                            ("asha", ["Asha Rao"]), ("vik", ["Vikram Shah"]),
                            ("%", []), ("nobody", [])):
        body = await (await client.get("/console/users", params={"q": query})).text()
        assert listed(body) == expected, query
    response = await client.get("/console/users", params={"cursor": "garbage"})
    assert response.status == 400


async def test_pages_of_users_do_not_overlap(client, services):
    # Straight into the store: 30 OTP sign-ins would meet the per-IP send limit.
    async with services.db.transaction() as tx:
        for n in range(30):
            await store.upsert_user(tx, uuid7(), f"+9198000{n:05d}")
    await staff_client(client, services)
    first = await (await client.get("/console/users")).text()
    link = re.search(r'rel="next" href="([^"]+)"', first)
    assert link
    second = await (await client.get(link.group(1).replace("&amp;", "&"))).text()
    assert len(listed(first)) == 25 and len(listed(second)) == 5
    assert not set(listed(first)) & set(listed(second))


async def test_detail_shows_roles_sessions_and_consents(client, services):
    asha = (await make_users(client))[0]
    await client.post("/api/v1/me/consents", headers=bearer(asha),
                      json={"purpose": "marketing_sms", "policy_version": "v7", "granted": False})
    await staff_client(client, services)
    body = await (await client.get(f"/console/users/{asha['user_id']}")).text()
    assert "Asha Rao" in body and "buyer" in body and "Pixel" in body
    assert "marketing_sms" in body and "v7" in body and "withdrawn" in body
    assert "No KYC submitted." in body
    # Only admins may change roles: staff see no form, and a POST is refused.
    assert 'name="action" value="grant"' not in body
    response = await client.post(f"/console/users/{asha['user_id']}/roles", data={
        "csrf_token": csrf_of(body), "role": "agent", "action": "grant"}, allow_redirects=False)
    assert response.status == 403
    assert (await client.get("/console/users/not-a-uuid")).status == 404
    assert (await client.get("/console/users/00000000-0000-0000-0000-000000000000")
            ).status == 404


async def test_admin_grants_and_revokes_roles_and_staff_revoke_sessions(client, services):
    asha = (await make_users(client))[0]
    await staff_client(client, services, roles=("admin",))
    page = f"/console/users/{asha['user_id']}"
    body = await (await client.get(page)).text()
    response = await client.post(page + "/roles", data={
        "csrf_token": csrf_of(body), "role": "agent", "action": "grant"}, allow_redirects=False)
    assert response.status == 303
    assert await services.db.fetchval(
        "SELECT array_agg(role ORDER BY role) FROM auth_user_roles WHERE user_id = %s",
        (asha["user_id"],)) == ["agent", "buyer"]
    body = await (await client.get(page)).text()
    assert "Granted agent" in body
    # Without the CSRF token nothing changes.
    response = await client.post(page + "/roles", data={"role": "agent", "action": "revoke"},
                                 allow_redirects=False)
    assert response.status == 403
    session_id = asha["session_id"]
    response = await client.post(f"{page}/sessions/{session_id}/revoke",
                                 data={"csrf_token": csrf_of(body)}, allow_redirects=False)
    assert response.status == 303
    refresh = await client.post("/api/v1/auth/refresh",
                                json={"refresh_token": asha["refresh_token"]})
    assert refresh.status == 401


async def test_dashboard_counts_sign_ups(client, services):
    await make_users(client)
    await staff_client(client, services)
    body = await (await client.get("/console/")).text()
    assert re.search(r'data-testid="signups-today">3<', body), body
    assert "Users" in body  # navigation entry


async def test_signed_out_visitors_get_the_sign_in_form(client):
    response = await client.get("/console/users", allow_redirects=False,
                                headers={"Accept": "text/html"})
    assert response.status == 401
    assert 'name="next" value="/console/users"' in await response.text()


def field_error(body: str, field: str) -> str | None:
    match = re.search(rf'<p class="field-error" id="{field}-error">([^<]*)</p>', body)
    return match.group(1) if match else None


@pytest.mark.parametrize("data, field, message", [
    ({"role": "emperor", "action": "grant"}, "role",
     "choose one of: buyer, agent, builder, staff, admin"),
    ({"role": "agent", "action": "promote"}, "action", "choose Grant or Revoke"),
    ({"role": "agent"}, "action", "required field missing"),
])
async def test_a_refused_role_form_shows_the_message_next_to_its_field(client, services, data,
                                                                      field, message):
    asha = (await make_users(client))[0]
    await staff_client(client, services, roles=("admin",))
    page = f"/console/users/{asha['user_id']}"
    body = await (await client.get(page)).text()
    response = await client.post(page + "/roles", data={"csrf_token": csrf_of(body), **data},
                                 allow_redirects=False)
    assert response.status == 422
    text = await response.text()
    assert field_error(text, field) == message
    assert text.count('class="field-error"') == 1
    if field == "role":  # under the role list, which points to it
        assert re.search(r'<select id="role" name="role" aria-invalid="true" '
                         r'aria-describedby="role-error">.*?</select>\s*<p class="field-error" '
                         r'id="role-error">', text, re.S), text
    else:  # under the Grant and Revoke buttons
        assert re.search(r'value="revoke">Revoke</button>\s*<p class="field-error" '
                         r'id="action-error">', text), text
    assert await services.db.fetchval(
        "SELECT array_agg(role ORDER BY role) FROM auth_user_roles WHERE user_id = %s",
        (asha["user_id"],)) == ["buyer"]
    # Nothing was said to the next page either: no flash of a change.
    assert "Granted" not in await (await client.get(page)).text()
