"""Push devices: a signed-in user registers, refreshes, lists and forgets their tokens
through the API; a notification without push tokens goes to its user's registered devices,
the most recently seen first; a token the provider says is unregistered is forgotten."""

from __future__ import annotations

import pytest

from propmubi.actors import Actor
from propmubi.errors import ValidationFailed
from propmubi_plugins.notifications import api, service
from propmubi_plugins.notifications.models import DeviceIn, NotifyIn
from tests.plugins.notifications.conftest import (
    ASHA,
    RAVI,
    USER,
    attempts,
    deliveries,
    make_template,
    provider,
)

DEVICES = "/api/v1/notifications/devices"
TOKEN = "fcm-token:APA91bHun4MxP5egoKMwt2KZFBaFUH-1RYqx"
OLD_TOKEN = "fcm-token:APA91bOldOldOldOldOldOld"
RAVI_ACTOR = Actor("user", str(RAVI), frozenset({"buyer"}))


async def tokens_of(ctx, user_id):
    rows = await ctx.db.fetch("SELECT token FROM notifications_devices WHERE user_id = %s"
                              " ORDER BY last_seen_at DESC", (user_id,))
    return [r["token"] for r in rows]


async def test_a_user_registers_refreshes_lists_and_forgets_a_device(client, ctx, clock):
    response = await client.put(DEVICES, json={"token": TOKEN, "platform": "android"},
                                headers=USER)
    assert response.status == 200, await response.text()
    first = await response.json()
    assert (first["token"], first["platform"]) == (TOKEN, "android")
    assert first["created_at"] == first["last_seen_at"]
    clock.move(hours=5)
    again = await (await client.put(DEVICES, json={"token": TOKEN, "platform": "android"},
                                    headers=USER)).json()
    assert again["created_at"] == first["created_at"]
    assert again["last_seen_at"] > first["last_seen_at"]
    listing = await (await client.get(DEVICES, headers=USER)).json()
    assert [d["token"] for d in listing["items"]] == [TOKEN]
    response = await client.delete(f"{DEVICES}/{TOKEN}", headers=USER)
    assert response.status == 204, await response.text()
    assert (await (await client.get(DEVICES, headers=USER)).json())["items"] == []
    assert (await client.delete(f"{DEVICES}/{TOKEN}", headers=USER)).status == 404


async def test_devices_need_a_signed_in_user(client):
    assert (await client.get(DEVICES)).status == 401
    assert (await client.put(DEVICES, json={"token": TOKEN, "platform": "ios"})).status == 401
    assert (await client.delete(f"{DEVICES}/{TOKEN}")).status == 401


@pytest.mark.parametrize(("body", "fields"), [
    ({"token": TOKEN}, {"platform"}),
    ({"token": TOKEN, "platform": "symbian"}, {"platform"}),
    ({"token": "short", "platform": "ios"}, {"token"}),
    ({"token": "has space in it", "platform": "ios"}, {"token"}),
    ({"token": "x" * 4097, "platform": "web"}, {"token"}),
    ({}, {"token", "platform"}),
])
async def test_a_bad_device_is_a_422_naming_the_field(client, body, fields):
    response = await client.put(DEVICES, json=body, headers=USER)
    assert response.status == 422, await response.text()
    problem = await response.json(content_type="application/problem+json")
    assert {e["field"] for e in problem["errors"]} == fields


async def test_someone_elses_device_is_a_404_and_a_token_moves_to_its_new_user(client, ctx,
                                                                                clock):
    await service.register_device(ctx, RAVI_ACTOR, DeviceIn(token=TOKEN, platform="ios"))
    assert (await client.delete(f"{DEVICES}/{TOKEN}", headers=USER)).status == 404
    assert await tokens_of(ctx, RAVI) == [TOKEN]
    assert (await (await client.get(DEVICES, headers=USER)).json())["items"] == []
    # The phone changed hands: Asha registers the same token, which is now hers alone.
    clock.move(minutes=1)
    response = await client.put(DEVICES, json={"token": TOKEN, "platform": "android"},
                                headers=USER)
    assert response.status == 200
    moved = await response.json()
    assert moved["platform"] == "android" and moved["created_at"] == moved["last_seen_at"]
    assert await tokens_of(ctx, RAVI) == [] and await tokens_of(ctx, ASHA) == [TOKEN]


async def test_a_user_keeps_the_twenty_most_recently_seen_devices(ctx, clock):
    actor = Actor("user", str(ASHA), frozenset({"buyer"}))
    for n in range(service.DEVICES_MAX + 2):
        clock.move(minutes=1)
        await service.register_device(ctx, actor, DeviceIn(token=f"token-{n:04}",
                                                           platform="web"))
    kept = await tokens_of(ctx, ASHA)
    assert len(kept) == service.DEVICES_MAX
    assert kept[0] == f"token-{service.DEVICES_MAX + 1:04}" and "token-0000" not in kept


@pytest.mark.parametrize("notifications_settings", [{"push_providers": ["first_push"]}])
async def test_a_push_goes_to_the_registered_devices_and_forgets_an_unregistered_one(
        ctx, clock, event_bus):
    await make_template(ctx, channel="push", body="{#name#} likes {#project#}.")
    actor = Actor("user", str(ASHA), frozenset({"buyer"}))
    await service.register_device(ctx, actor, DeviceIn(token=OLD_TOKEN, platform="android"))
    clock.move(minutes=1)
    await service.register_device(ctx, actor, DeviceIn(token=TOKEN, platform="ios"))
    await service.register_device(ctx, RAVI_ACTOR, DeviceIn(token="ravi-token-1",
                                                            platform="ios"))
    push = provider(ctx, "push")
    push.script = ["gone"]  # the newest token: the app was uninstalled
    await api.notify(ctx, Actor.system("leads"), NotifyIn(
        type="lead_assigned", user_id=ASHA,
        variables={"name": "Vikram", "project": "Palm Grove"}))
    await event_bus.drain()
    assert [m.to for m in push.calls] == [TOKEN, OLD_TOKEN]
    assert [m.to for m in push.accepted] == [OLD_TOKEN]
    (row,) = await deliveries(ctx)
    assert row["addresses"] == [TOKEN, OLD_TOKEN] and row["status"] == "sent"
    # The refused token is forgotten; the error names it masked only.
    assert await tokens_of(ctx, ASHA) == [OLD_TOKEN]
    assert await tokens_of(ctx, RAVI) == ["ravi-token-1"]
    first, _ = await attempts(ctx)
    assert first["status"] == "failed" and TOKEN not in first["error"]
    assert "fcm-to…" in first["error"]


async def test_a_push_without_tokens_or_devices_is_a_422_naming_push_tokens(ctx):
    await make_template(ctx, channel="push", body="{#name#} likes {#project#}.")
    with pytest.raises(ValidationFailed) as caught:
        await api.notify(ctx, Actor.system("leads"), NotifyIn(
            type="lead_assigned", user_id=ASHA, channels=["push"],
            variables={"name": "Vikram", "project": "Palm Grove"}))
    (error,) = caught.value.extra["errors"]
    assert error["field"] == "push_tokens" and "no registered device" in error["message"]
