"""The console layout (templates/base.html) must not shadow the variables of the pages that
extend it: the auth plugin's user page has its own ``user``."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest

import propmubi_plugins.auth
import tests.refplugin
from propmubi.testing import csrf_of, make_staff
from propmubi.testing import sign_in as console_sign_in
from tests.plugins.auth.conftest import AUTH_SETTINGS, bearer, sign_in


@pytest.fixture
def extra_plugins() -> list[Any]:
    return [tests.refplugin, propmubi_plugins.auth]


@pytest.fixture
def config_overrides() -> dict[str, dict[str, Any]]:
    return {"plugins": {"settings": {"auth": dict(AUTH_SETTINGS)}}}


def form_actions(body: str) -> list[str]:
    return [html.unescape(a) for a in re.findall(r'<form method="post" action="([^"]+)"', body)]


async def test_another_users_page_shows_that_user_and_its_forms_post_to_them(client, services):
    asha = await sign_in(client, phone="+919812345678", device="Pixel")
    await client.patch("/api/v1/me", json={"name": "Asha Rao"}, headers=bearer(asha))
    await make_staff(services, roles=("admin",))  # "Sam Staff"
    assert (await console_sign_in(client)).status == 303
    page = f"/console/users/{asha['user_id']}"
    response = await client.get(page)
    body = await response.text()
    assert response.status == 200, body
    # The page is Asha's, not the signed-in staff member's; the layout still names Sam.
    assert "<h1>Asha Rao</h1>" in body, body
    assert "<title>Asha Rao · Propmubi</title>" in body
    assert asha["user_id"] in body and "+919812345678" in body
    assert "<span>Sam Staff</span>" in body  # who is signed in, in the menu bar
    assert re.search(r"<h2>Roles</h2>\s*<p>buyer</p>", body), body
    # Every form on the page posts to Asha's id, and works when followed.
    roles_url = f"{page}/roles"
    revoke_url = f"{page}/sessions/{asha['session_id']}/revoke"
    actions = form_actions(body)
    assert roles_url in actions and revoke_url in actions, actions
    response = await client.post(roles_url, data={"csrf_token": csrf_of(body), "role": "agent",
                                                  "action": "grant"}, allow_redirects=False)
    assert response.status == 303
    body = await (await client.get(page)).text()
    assert re.search(r"<h2>Roles</h2>\s*<p>agent, buyer</p>", body), body
    response = await client.post(revoke_url, data={"csrf_token": csrf_of(body)},
                                 allow_redirects=False)
    assert response.status == 303
    refresh = await client.post("/api/v1/auth/refresh",
                                json={"refresh_token": asha["refresh_token"]})
    assert refresh.status == 401
    body = await (await client.get(page)).text()
    assert "revoked" in body and "<h1>Asha Rao</h1>" in body
