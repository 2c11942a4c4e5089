"""Requesting a notification and sending it through the real bus (``event_bus.drain()``) and
the console providers: the transactional outbox, the ledger, the events, dedupe keys."""

from __future__ import annotations

import uuid

import pytest

from propmubi.actors import Actor
from propmubi.errors import ValidationFailed
from propmubi_plugins.notifications import api, delivery
from propmubi_plugins.notifications.models import NotifyIn
from tests.plugins.notifications.conftest import (
    ASHA,
    attempts,
    deliveries,
    make_template,
    provider,
    published,
)

CALLER = Actor.system("leads")


def lead(**more):
    values = {"type": "lead_assigned", "user_id": ASHA, "phone": "+919812345678",
              "email": "asha@example.com", "push_tokens": ["token-1"],
              "variables": {"name": "Vikram", "project": "Palm Grove"}}
    values.update(more)
    return NotifyIn(**values)


async def test_a_notification_goes_out_on_every_channel_once(ctx, event_bus):
    await make_template(ctx)
    await make_template(ctx, channel="email", subject="New lead: {#name#}",
                        body="{#name#} asked about {#project#}.")
    await make_template(ctx, channel="push", body="{#name#} likes {#project#}.")
    out = await api.notify(ctx, CALLER, lead())
    assert {d.channel for d in out.deliveries} == {"sms", "email", "push"}
    assert all(d.status == "pending" for d in out.deliveries)
    (requested,) = await published(ctx, "notifications.notification_requested")
    assert requested["notification_id"] == str(out.id)
    await event_bus.drain()
    sms, email, push = (provider(ctx, c) for c in ("sms", "email", "push"))
    (text,) = sms.outbox
    assert (text.to, text.body) == ("+919812345678", "New lead Vikram for Palm Grove.")
    assert text.template_id is not None and text.key == f"{out.id}:sms"
    (mail,) = email.outbox
    assert (mail.subject, mail.body) == ("New lead: Vikram", "Vikram asked about Palm Grove.")
    assert "list_unsubscribe" not in mail.data  # transactional: no unsubscribe link
    assert push.outbox[0].to == "token-1"
    rows = await deliveries(ctx)
    assert {(r["channel"], r["status"], r["attempts"]) for r in rows} == {
        ("sms", "sent", 1), ("email", "sent", 1), ("push", "sent", 1)}
    assert {(a["status"], a["attempt_no"]) for a in await attempts(ctx)} == {("sent", 1)}
    delivered = await published(ctx, "notifications.message_delivered")
    assert sorted(d["channel"] for d in delivered) == ["email", "push", "sms"]
    # Everything again (a redelivered event, the job) sends nothing more.
    stream = ctx.services.keys.event_stream("notifications")
    ((_, fields), *_) = await ctx.redis.xrange(stream)
    await ctx.redis.xadd(stream, fields)
    await event_bus.drain()
    for rows_id in (r["id"] for r in rows):
        await delivery.deliver(ctx, rows_id)
    assert await delivery.send_due(ctx) == 0
    assert (len(sms.outbox), len(email.outbox), len(push.outbox)) == (1, 1, 1)


async def test_the_same_dedupe_key_makes_one_notification(ctx, event_bus):
    await make_template(ctx)
    first = await api.notify(ctx, CALLER, lead(dedupe_key="lead:42:assigned"))
    again = await api.notify(ctx, CALLER, lead(dedupe_key="lead:42:assigned"))
    assert again.duplicate and again.id == first.id and not first.duplicate
    await event_bus.drain()
    assert len(provider(ctx, "sms").outbox) == 1
    assert len(await published(ctx, "notifications.notification_requested")) == 1


async def test_notify_in_commits_or_rolls_back_with_the_caller(ctx, event_bus):
    await make_template(ctx)

    class Abandoned(Exception):
        pass

    with pytest.raises(Abandoned):
        async with ctx.db.transaction() as tx:
            await api.notify_in(ctx, tx, CALLER, lead())
            raise Abandoned
    assert await deliveries(ctx) == []
    assert await published(ctx, "notifications.notification_requested") == []
    await event_bus.drain()
    assert not provider(ctx, "sms").outbox


async def test_channels_default_to_those_with_a_template_and_an_address(ctx):
    await make_template(ctx)
    await make_template(ctx, channel="push", body="{#name#} likes {#project#}.")
    out = await api.notify(ctx, CALLER, lead(push_tokens=[]))
    assert [d.channel for d in out.deliveries] == ["sms"]
    only = await api.notify(ctx, CALLER, lead(channels=["push"]))
    assert [d.channel for d in only.deliveries] == ["push"]


async def test_bad_requests_name_their_fields(ctx):
    await make_template(ctx)
    with pytest.raises(ValidationFailed) as refused:
        await api.notify(ctx, CALLER, lead(variables={"name": "V"}, channels=["sms", "email"],
                                           phone=None))
    assert {e["field"] for e in refused.value.extra["errors"]} == {
        "channels[1]", "phone", "variables.project"}
    with pytest.raises(ValidationFailed) as unknown:
        await api.notify(ctx, CALLER, lead(type="no_such_type"))
    assert unknown.value.extra["errors"][0]["field"] == "type"
    assert await deliveries(ctx) == []


async def test_a_user_sees_only_their_own_notification(ctx):
    await make_template(ctx)
    out = await api.notify(ctx, CALLER, lead())
    from propmubi.types import Principal
    mine = Actor.user(Principal(str(ASHA), ["buyer"]))
    assert (await api.notification(ctx, mine, out.id)).id == out.id
    other = Actor.user(Principal(str(uuid.uuid4()), ["buyer"]))
    from propmubi.errors import NotFound
    with pytest.raises(NotFound):
        await api.notification(ctx, other, out.id)


async def test_send_now_sends_at_once_and_writes_the_ledger(ctx):
    result = await api.send_now(ctx, Actor.system("auth"), "sms", "+919812345678",
                                "123456 is your code.", dlt_template_id="1107000000000000003")
    (text,) = provider(ctx, "sms").outbox
    assert text.body == "123456 is your code." and text.key.endswith(":sms")
    assert result.provider == "console_sms" and result.attempts == 1
    (row,) = await deliveries(ctx)
    assert (row["status"], row["kind"], row["template_id"]) == ("sent", "critical", None)
    with pytest.raises(ValidationFailed):
        await api.send_now(ctx, Actor.system("auth"), "sms", "98123", "x")


async def test_the_dev_outbox_keeps_console_messages(ctx, event_bus):
    await make_template(ctx)
    await api.notify(ctx, CALLER, lead())
    await event_bus.drain()
    (entry,) = await delivery.dev_outbox(ctx)
    # Never a whole address: the outbox lives in Redis, out of reach of the ledger's rules.
    assert entry["to"] == "+91******5678" and "Vikram" in entry["body"]
    assert entry["user_id"] == str(ASHA) and len(entry["to_hash"]) == 32
