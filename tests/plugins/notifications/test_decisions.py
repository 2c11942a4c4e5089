"""Staff settle a message whose fate is ``unknown`` (a provider that can neither be asked nor
de-duplicate may have accepted it) once they have checked the provider's own records:
delivered, not delivered, or not delivered and sent again (once, through the primary), from
the console's message page, with who decided and why kept beside the attempts."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from propmubi.actors import Actor
from propmubi.errors import Conflict, Forbidden
from propmubi.testing import csrf_of, make_staff, sign_in
from propmubi.types import Principal
from propmubi_plugins.notifications import api, delivery, service, store
from propmubi_plugins.notifications.models import DecisionIn
from propmubi_plugins.notifications.service import MessageNotSent
from tests.plugins.notifications.conftest import attempts, deliveries, provider, published
from tests.plugins.notifications.test_reliability import (
    CALLER,
    SETTINGS,
    extra_plugins,  # noqa: F401  (the fixture: the settling providers)
    lead,
    ledger,
    requested,
)

STAFF = Actor.staff(uuid.UUID(int=7))
BUYER = Actor.user(Principal(subject=str(uuid.UUID(int=8)), roles=frozenset({"buyer"})))
BASE = "/console/notifications/messages"


@pytest.fixture
def notifications_settings() -> dict[str, Any]:
    return {**SETTINGS, "sms_providers": ["plain_sms", "second_sms"]}


async def unknown(ctx: Any, event_bus: Any) -> uuid.UUID:
    """A lead SMS that ``plain_sms`` may have accepted: ``unknown``, never resent by itself."""
    provider(ctx, "sms", 0).script = ["lost"]
    await requested(ctx, event_bus)
    (row,) = await deliveries(ctx)
    assert row["status"] == "unknown"
    return row["id"]  # type: ignore[no-any-return]


async def test_not_delivered_is_sent_again_once_through_the_primary(ctx, event_bus):
    delivery_id = await unknown(ctx, event_bus)
    await service.decide_unknown(ctx, STAFF, delivery_id, DecisionIn(
        decision="resend", note="  not in plain_sms's log  "))
    (row,) = await deliveries(ctx)
    assert (row["status"], row["pinned"], row["provider"]) == ("pending", False, None)
    assert row["reason"] == "staff confirmed it was not delivered: sent again"
    assert await delivery.send_due(ctx) == 1
    (row,) = await deliveries(ctx)
    assert row["status"] == "sent"
    assert ledger(await attempts(ctx)) == [(1, "plain_sms", "maybe_sent"),
                                           (2, "plain_sms", "sent")]
    (decision,) = await store.decisions_of(ctx.db, delivery_id)
    assert (decision["decision"], decision["note"], decision["actor"]) == (
        "resend", "not in plain_sms's log", STAFF.ref)
    assert len(await published(ctx, "notifications.message_delivered")) == 1
    # Decided once: a second decision (a second tab, a double click) changes nothing.
    with pytest.raises(Conflict, match="the message is sent, not unknown"):
        await service.decide_unknown(ctx, STAFF, delivery_id, DecisionIn(
            decision="resend", note="again"))
    assert len(provider(ctx, "sms", 0).calls) == 2


async def test_delivered_and_not_delivered_end_it_and_say_so(ctx, event_bus):
    first = await unknown(ctx, event_bus)
    await service.decide_unknown(ctx, STAFF, first, DecisionIn(
        decision="delivered", note="in the log as delivered"))
    provider(ctx, "sms", 0).script = ["lost"]
    await api.notify(ctx, CALLER, lead(dedupe_key="second"))
    await event_bus.drain()
    second = (await deliveries(ctx))[1]["id"]
    await service.decide_unknown(ctx, STAFF, second, DecisionIn(
        decision="failed", note="bounced, number closed"))
    one, two = await deliveries(ctx)
    assert (one["status"], one["reason"]) == ("sent", "staff confirmed it was delivered")
    assert one["sent_at"] is not None
    assert (two["status"], two["reason"]) == ("failed", "staff confirmed it was not delivered")
    (delivered,) = await published(ctx, "notifications.message_delivered")
    assert delivered["delivery_id"] == str(first)
    assert [f["status"] for f in await published(ctx, "notifications.message_failed")] == [
        "unknown", "unknown", "failed"]
    await delivery.send_due(ctx)
    assert len(provider(ctx, "sms", 0).calls) == 2  # nothing was sent again


async def test_what_cannot_be_decided_is_refused(ctx, event_bus):
    provider(ctx, "sms", 0).script = ["lost"]
    with pytest.raises(MessageNotSent):
        await api.send_now(ctx, Actor.system("auth"), "sms", "+919876543210", "code 123456")
    (direct,) = await deliveries(ctx)
    resend = DecisionIn(decision="resend", note="not in the log")
    with pytest.raises(Conflict, match="its text is not kept"):
        await service.decide_unknown(ctx, STAFF, direct["id"], resend)
    with pytest.raises(Forbidden):
        await service.decide_unknown(ctx, BUYER, direct["id"], resend)
    with pytest.raises(Conflict, match="not unknown"):
        await service.decide_unknown(ctx, STAFF, (await requested(ctx, event_bus)
                                                  ).deliveries[0].id, resend)
    assert [d["status"] for d in await deliveries(ctx)] == ["unknown", "sent"]
    assert await ctx.db.fetchval("SELECT count(*) FROM notifications_decisions") == 0


async def test_staff_decide_from_the_message_page(client, services, ctx, event_bus):
    delivery_id = await unknown(ctx, event_bus)
    await make_staff(services)
    assert (await sign_in(client)).status == 303
    url = f"{BASE}/{delivery_id}"
    body = await (await client.get(url)).text()
    assert "What happened to it?" in body and 'value="resend"' in body
    token = csrf_of(body)
    response = await client.post(f"{url}/decision", data={"csrf_token": token, "note": " "})
    body = await response.text()
    assert response.status == 422
    assert '<p class="field-error" id="decision-error">Choose what happened to it.</p>' in body
    assert ('<p class="field-error" id="note-error">Say what you checked (the provider\'s log,'
            in body.replace("&#39;", "'"))
    response = await client.post(f"{url}/decision", allow_redirects=False, data={
        "csrf_token": token, "decision": "delivered", "note": "found in the relay log"})
    assert response.status == 303 and response.headers["Location"] == url
    body = await (await client.get(url)).text()
    assert "Recorded as delivered." in body and "What happened to it?" not in body
    assert "<td>Delivered</td>" in body and "found in the relay log" in body
    assert "Sam Staff" in body  # who decided, by name
    # The same form posted again (a stale tab): a flash, nothing changes.
    response = await client.post(f"{url}/decision", data={
        "csrf_token": token, "decision": "resend", "note": "again"})
    assert response.status == 200
    assert "Nothing changed: the message is sent, not unknown" in await response.text()
    assert len(await store.decisions_of(ctx.db, delivery_id)) == 1
