"""Preferences (the signed-in user's opt-outs) and one-click unsubscribe links."""

from __future__ import annotations

import uuid

from propmubi.web.appkeys import SERVICES
from propmubi_plugins.notifications import store, tokens
from tests.plugins.notifications.conftest import ASHA, USER

PREFERENCES = "/api/v1/notifications/preferences"
UNSUBSCRIBE = "/api/v1/notifications/unsubscribe/"


def app_ctx(client):
    return client.app[SERVICES].context("notifications")


async def test_a_user_turns_marketing_off_and_on(client):
    start = await (await client.get(PREFERENCES, headers=USER)).json()
    assert all(i["enabled"] for i in start["items"])
    assert {i["category"] for i in start["items"] if i["can_opt_out"]} == {"marketing"}
    response = await client.put(PREFERENCES, headers=USER, json={
        "opted_out": [{"category": "marketing", "channel": "sms"},
                      {"category": "marketing", "channel": "email"}]})
    assert response.status == 200, await response.text()
    off = {(i["category"], i["channel"]) for i in (await response.json())["items"]
           if not i["enabled"]}
    assert off == {("marketing", "sms"), ("marketing", "email")}
    response = await client.put(PREFERENCES, headers=USER, json={
        "opted_out": [{"category": "marketing", "channel": "email"}]})
    assert await store.opted_out(app_ctx(client).db, ASHA) == {("marketing", "email")}


async def test_transactional_categories_cannot_be_turned_off(client):
    response = await client.put(PREFERENCES, headers=USER, json={
        "opted_out": [{"category": "leads", "channel": "sms"}]})
    assert response.status == 422
    (error,) = (await response.json())["errors"]
    assert error["field"] == "opted_out[0].category"
    assert "leads messages are transactional: they cannot be turned off" in error["message"]
    response = await client.put(PREFERENCES, headers=USER, json={
        "opted_out": [{"category": "gossip", "channel": "fax"}]})
    assert {e["field"] for e in (await response.json())["errors"]} == {
        "opted_out[0].category", "opted_out[0].channel"}


async def test_preferences_need_a_signed_in_user(client):
    assert (await client.get(PREFERENCES)).status == 401
    assert (await client.put(PREFERENCES, json={"opted_out": []})).status == 401


async def test_the_unsubscribe_link_confirms_then_unsubscribes_in_one_click(client):
    ctx = app_ctx(client)
    token = tokens.sign(ctx.state.unsubscribe_key, ASHA, "marketing")
    page = await client.get(UNSUBSCRIBE + token)
    assert page.status == 200 and page.content_type == "text/html"
    body = await page.text()
    assert "Unsubscribe from marketing messages" in body and 'method="post"' in body
    assert await store.opted_out(ctx.db, ASHA) == set()  # a GET changes nothing
    done = await client.post(UNSUBSCRIBE + token, data={"List-Unsubscribe": "One-Click"})
    assert done.status == 200 and "no longer receive marketing" in await done.text()
    assert await store.opted_out(ctx.db, ASHA) == {
        ("marketing", "sms"), ("marketing", "email"), ("marketing", "push")}
    again = await client.post(UNSUBSCRIBE + token)
    assert again.status == 200


async def test_a_forged_or_mangled_token_is_a_404_page(client):
    ctx = app_ctx(client)
    genuine = tokens.sign(ctx.state.unsubscribe_key, ASHA, "marketing")
    forged = tokens.sign(b"another key", ASHA, "marketing")
    other_user = genuine.replace(ASHA.hex, uuid.uuid4().hex)
    transactional = tokens.sign(ctx.state.unsubscribe_key, ASHA, "account")
    tampered = genuine[:-1] + ("B" if genuine.endswith("A") else "A")
    for token in (forged, other_user, transactional, "nonsense", tampered, "x" * 200):
        for method in (client.get, client.post):
            response = await method(UNSUBSCRIBE + token)
            assert response.status == 404, (token, await response.text())
            assert "not valid" in await response.text()
    assert await store.opted_out(ctx.db, ASHA) == set()
    for token in ("%00", "x" * 301):  # refused by the path's own checks: a 422 problem
        response = await client.post(UNSUBSCRIBE + token)
        assert response.status == 422
        assert response.content_type == "application/problem+json"
    assert await store.opted_out(ctx.db, ASHA) == set()
