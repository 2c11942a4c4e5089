"""Privacy: a direct send keeps only a masked address; ``auth.user_erased`` (through the real
bus) leaves nothing of the user's addresses, values, preferences and devices in any of the
plugin's tables or in the dev outbox, and a redelivery changes nothing; the retention job
masks what is old. (tests/plugins/auth/test_erasure_scrub.py checks the whole product.)"""

from __future__ import annotations

from typing import Any

import pytest

from propmubi.actors import Actor
from propmubi_plugins.auth.events import UserErased
from propmubi_plugins.notifications import api, delivery, privacy, service
from propmubi_plugins.notifications.models import DeviceIn, NotifyIn
from propmubi_plugins.notifications.service import MessageNotSent
from tests.plugins.notifications.conftest import ASHA, RAVI, make_template, provider

PHONE = "+919845012377"
EMAIL = "quillon@example.com"
TOKEN = "vesterby-device-token-0123456789"
RAVI_PHONE = "+919811122233"
TABLES = ("notifications_notifications", "notifications_deliveries",
          "notifications_attempts", "notifications_preferences", "notifications_devices")


def test_masks_keep_enough_to_recognise_and_are_stable():
    assert privacy.mask("sms", PHONE) == "+91******2377"
    assert privacy.mask("sms", "+12025550123") == "+12*****0123"
    assert privacy.mask("sms", "+4930123") == "+49***23"
    assert privacy.mask("email", EMAIL) == "q***@example.com"
    assert privacy.mask("push", TOKEN) == "vester…"
    for channel, address in (("sms", PHONE), ("email", EMAIL), ("push", TOKEN)):
        masked = privacy.mask(channel, address)
        assert privacy.mask(channel, masked) == masked
    text = f"21211: the 'To' number {PHONE} (919845012377, 09845012377) is not valid"
    assert privacy.redact(text, "sms", [PHONE]) == (
        "21211: the 'To' number +91******2377 (+91******2377, +91******2377) is not valid")
    assert privacy.redact(f"550 <{EMAIL.upper()}> unknown", "email", [EMAIL]) == (
        "550 <q***@example.com> unknown")


async def rows_holding(ctx: Any, text: str) -> list[str]:
    """The plugin's tables with a row whose text contains ``text``."""
    found = []
    for table in TABLES:
        if await ctx.db.fetchval(f"SELECT count(*) FROM {table} t"
                                 " WHERE strpos(lower(t::text), lower(%s)) > 0", (text,)):
            found.append(table)
    return found


async def outbox_text(ctx: Any) -> str:
    return repr(await ctx.redis.lrange(ctx.keys("dev_outbox"), 0, -1))


@pytest.mark.parametrize("notifications_settings", [{"sms_providers": ["first_sms"]}])
async def test_a_direct_send_stores_the_address_masked(ctx):
    sms = provider(ctx, "sms")
    sms.script = ["gone"]  # its error quotes the number
    with pytest.raises(MessageNotSent):
        await api.send_now(ctx, Actor.system("auth"), "sms", PHONE, "123456 is your code")
    await api.send_now(ctx, Actor.system("auth"), "sms", PHONE, "654321 is your code")
    assert [m.to for m in sms.calls] == [PHONE, PHONE]  # the provider gets the whole number
    assert await rows_holding(ctx, PHONE) == [] and await rows_holding(ctx, "9845012377") == []
    rows = await ctx.db.fetch("SELECT d.addresses, d.reason, d.masked_at, a.address, a.error"
                              " FROM notifications_deliveries d JOIN notifications_attempts a"
                              " ON a.delivery_id = d.id ORDER BY d.created_at")
    assert [r["address"] for r in rows] == ["+91******2377"] * 2
    assert all(r["addresses"] == ["+91******2377"] and r["masked_at"] for r in rows)
    assert "+91******2377" in rows[0]["error"] and "+91******2377" in rows[0]["reason"]


async def erase(ctx: Any, user_id: Any) -> None:
    """Publish ``auth.user_erased`` as the auth plugin does."""
    auth = ctx.services.context("auth")
    async with auth.db.transaction() as tx:
        await auth.publish(tx, UserErased(user_id=user_id), actor="user:" + str(user_id))


async def snapshot(ctx: Any) -> list[Any]:
    return [await ctx.db.fetch(f"SELECT * FROM {t} t ORDER BY t::text") for t in TABLES] + [
        await ctx.redis.lrange(ctx.keys("dev_outbox"), 0, -1)]


async def test_an_erased_user_leaves_no_address_value_or_device_behind(ctx, clock, event_bus):
    await make_template(ctx)
    await make_template(ctx, channel="email", subject="New lead: {#name#}",
                        body="{#name#} asked about {#project#}.")
    await make_template(ctx, channel="push", body="{#name#} likes {#project#}.")
    await make_template(ctx, type="offer", channel="email", category="marketing",
                        kind="promotional", subject="Offers", body="Offers for {#name#}.",
                        variables=["name"])
    user = Actor("user", str(ASHA), frozenset({"buyer"}))
    await service.register_device(ctx, user, DeviceIn(token=TOKEN, platform="android"))
    await service.register_device(ctx, Actor("user", str(RAVI), frozenset({"buyer"})),
                                  DeviceIn(token="ravi-token-0123", platform="ios"))
    await ctx.db.execute("INSERT INTO notifications_preferences VALUES"
                         " (%s, 'marketing', 'sms', 'preferences', now())", (ASHA,))
    # A sign-in code before the account existed (no user), then messages to the user...
    await api.send_now(ctx, Actor.system("auth"), "sms", PHONE, "123456 is your code")
    lead = {"type": "lead_assigned", "phone": PHONE, "email": EMAIL,
            "variables": {"name": "Vikram Vesterby", "project": "Palm Grove"}}
    await api.notify(ctx, Actor.system("leads"), NotifyIn(user_id=ASHA, **lead))
    await event_bus.drain()
    # ... one still waiting (promotional at 23:30 in India: deferred to the morning) ...
    clock.move(hours=12)
    await api.notify(ctx, Actor.system("offers"), NotifyIn(
        type="offer", user_id=ASHA, email=EMAIL, variables={"name": "Vikram Vesterby"}))
    await event_bus.drain()
    # ... and another user's, which stay.
    await api.notify(ctx, Actor.system("leads"), NotifyIn(
        user_id=RAVI, **{**lead, "phone": RAVI_PHONE, "email": "ravi@example.com",
                         "variables": {"name": "Meera", "project": "Palm Grove"}}))
    await event_bus.drain()
    planted = (PHONE, "9845012377", EMAIL, TOKEN, "Vesterby")
    for text in planted:
        assert await rows_holding(ctx, text) or text in await outbox_text(ctx), text
    statuses = await ctx.db.fetch("SELECT status FROM notifications_deliveries"
                                  " WHERE user_id = %s", (ASHA,))
    assert sorted(r["status"] for r in statuses) == ["deferred", "sent", "sent", "sent"]

    await erase(ctx, ASHA)
    await event_bus.drain()

    left = {t: where for t in planted if (where := await rows_holding(ctx, t)
                                          + (["dev_outbox"] if t.lower() in (
                                              await outbox_text(ctx)).lower() else []))}
    assert left == {}
    rows = await ctx.db.fetch("SELECT channel, status, addresses, reason, masked_at"
                              " FROM notifications_deliveries WHERE user_id = %s", (ASHA,))
    assert all(r["masked_at"] is not None for r in rows)
    assert {r["channel"]: r["addresses"] for r in rows if r["status"] == "sent"} == {
        "sms": ["+91******2377"], "email": ["q***@example.com"], "push": ["vester…"]}
    (waiting,) = [r for r in rows if r["status"] not in ("sent",)]
    assert (waiting["status"], waiting["reason"]) == ("skipped",
                                                      "the recipient's account was erased")
    assert await ctx.db.fetchval("SELECT count(*) FROM notifications_preferences") == 0
    # The whole outbox of the user is gone, the code sent before the account included (found
    # by its address's hash); Ravi's messages and device stay as they were.
    entries = await delivery.dev_outbox(ctx)
    assert {e["to"] for e in entries} == {"+91******2233", "r***@example.com", "ravi-t…"}
    assert await rows_holding(ctx, RAVI_PHONE) == ["notifications_deliveries",
                                                   "notifications_attempts"]
    assert await ctx.db.fetchval("SELECT count(*) FROM notifications_devices") == 1
    # The waiting message is never sent, even once its window opens.
    clock.move(hours=12)
    assert await delivery.send_due(ctx) == 0

    # A redelivery of the event changes nothing.
    before = await snapshot(ctx)
    stream = ctx.services.keys.event_stream("auth")
    for _, fields in await ctx.redis.xrange(stream):
        await ctx.redis.xadd(stream, fields)
    await event_bus.drain()
    assert await snapshot(ctx) == before


async def test_erasing_a_user_mid_send_never_sends_again(ctx, clock, event_bus):
    await make_template(ctx)
    await api.notify(ctx, Actor.system("leads"), NotifyIn(
        type="lead_assigned", user_id=ASHA, phone=PHONE,
        variables={"name": "Vikram", "project": "Palm Grove"}))
    (row,) = await ctx.db.fetch("SELECT id FROM notifications_deliveries")
    held = await delivery.claim(ctx, row["id"])
    assert held is not None
    async with ctx.db.transaction() as tx:
        await service.erase_user_in(ctx, tx, service.PRIVACY, ASHA)
    # The provider failed for now: the retry finds the recipient erased.
    await delivery.record(ctx, held, delivery.Outcome(error="503", retryable=True))
    clock.move(hours=2)
    assert await delivery.send_due(ctx) == 1
    status = await ctx.db.fetchrow("SELECT status, reason, addresses"
                                   " FROM notifications_deliveries")
    assert (status["status"], status["reason"]) == ("skipped",
                                                    "the recipient's account was erased")
    assert status["addresses"] == ["+91******2377"]
    assert len(provider(ctx, "sms").outbox) == 0


async def test_the_retention_job_masks_old_messages_and_forgets_idle_devices(ctx, clock,
                                                                            event_bus):
    await make_template(ctx)
    await service.register_device(ctx, Actor("user", str(ASHA), frozenset()),
                                  DeviceIn(token=TOKEN, platform="web"))
    await api.notify(ctx, Actor.system("leads"), NotifyIn(
        type="lead_assigned", user_id=ASHA, phone=PHONE,
        variables={"name": "Vikram Vesterby", "project": "Palm Grove"}))
    await event_bus.drain()
    clock.move(days=ctx.settings.retention_days - 1)
    assert await service.forget_old(ctx) == 0
    clock.move(days=2)
    await api.notify(ctx, Actor.system("leads"), NotifyIn(
        type="lead_assigned", user_id=RAVI, phone=RAVI_PHONE,
        variables={"name": "Recent", "project": "Palm Grove"}))
    await event_bus.drain()
    assert await service.forget_old(ctx) == 2  # one delivery, one notification
    assert await rows_holding(ctx, PHONE) == [] and await rows_holding(ctx, "Vikram Vesterby") == []
    assert await rows_holding(ctx, RAVI_PHONE) == ["notifications_deliveries",
                                                   "notifications_attempts"]
    assert await service.forget_old(ctx) == 0
    clock.move(days=ctx.settings.device_idle_days)
    assert await service.forget_old(ctx) == 1 + 1 + 1  # Ravi's: delivery, values; the device
    assert await ctx.db.fetchval("SELECT count(*) FROM notifications_devices") == 0
