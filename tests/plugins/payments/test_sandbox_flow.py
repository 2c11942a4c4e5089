"""Payments through the sandbox provider: the app's whole chain (hold, intent, the provider's
webhook, the worker applying it, the booking confirmed or refunded) over HTTP, with the
webhooks made by the sandbox's own signer (what the console's sandbox buttons do)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from propmubi.web.appkeys import SERVICES
from propmubi_plugins.payments import sandbox_flow
from propmubi_plugins.payments.providers.sandbox import sandbox_payment_id, sandbox_webhook
from tests.plugins.payments.conftest import API, booking_of, open_intent, pay_ctx


async def _unit_status(client: Any, unit_id: str) -> str:
    resp = await client.get(f"{API}/units/{unit_id}")
    return (await resp.json())["status"]


async def test_hold_pay_confirm(client: Any, buyer: Any, hold: Any, event_bus: Any) -> None:
    booking = await hold(buyer)
    intent = await open_intent(client, buyer, booking["id"])
    assert intent["provider"] == "sandbox" and intent["status"] == "created"
    assert intent["amount_minor"] == booking["amount_due_minor"] > 0
    assert intent["client"]["order_id"].startswith("sandbox_order_")
    assert isinstance(intent["amount_minor"], int)
    # A second tap gets the same open intent, not a second order.
    again = await open_intent(client, buyer, booking["id"])
    assert again["id"] == intent["id"]
    # A retried request with an Idempotency-Key gets the first answer again, byte for byte.
    url = f"{API}/bookings/{booking['id']}/payment-intents"
    key = {**buyer.headers, "Idempotency-Key": "checkout-1"}
    first, retry = [await client.post(url, headers=key) for _ in range(2)]
    assert first.status == retry.status == 201
    assert await retry.read() == await first.read()
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert (await booking_of(client, buyer, booking["id"]))["status"] == "payment_pending"

    await sandbox_flow.complete(pay_ctx(client), intent["id"], "captured", time.time())
    await event_bus.drain()
    done = await booking_of(client, buyer, booking["id"])
    assert done["status"] == "confirmed"
    assert done["captured_minor"] == intent["amount_minor"]
    assert await _unit_status(client, booking["unit_id"]) == "booked"
    resp = await client.get(f"{API}/payments/intents/{intent['id']}", headers=buyer.headers)
    shown = await resp.json()
    assert shown["status"] == "captured" and shown["booking_outcome"] == "confirmed"


async def test_failure_keeps_the_hold_and_a_retry_confirms_once(
        client: Any, buyer: Any, hold: Any, event_bus: Any) -> None:
    booking = await hold(buyer)
    first = await open_intent(client, buyer, booking["id"])
    await sandbox_flow.complete(pay_ctx(client), first["id"], "failed", time.time())
    await event_bus.drain()
    after = await booking_of(client, buyer, booking["id"])
    assert after["status"] == "payment_pending"  # the hold survives the failure
    second = await open_intent(client, buyer, booking["id"])
    assert second["id"] != first["id"]
    await sandbox_flow.complete(pay_ctx(client), second["id"], "captured", time.time())
    await event_bus.drain()
    done = await booking_of(client, buyer, booking["id"])
    assert done["status"] == "confirmed"
    db = client.app[SERVICES].db
    captured = await db.fetchval(
        "SELECT count(*) FROM payments_intents WHERE booking_id = %s AND status = 'captured'",
        (booking["id"],))
    assert captured == 1
    # A late capture of the failed first intent is money too: the booking is already paid,
    # so it is refunded in full, automatically.
    await sandbox_flow.complete(pay_ctx(client), first["id"], "captured", time.time())
    await event_bus.drain()
    row = await db.fetchrow("SELECT status, booking_outcome, refunded_minor, captured_minor"
                            " FROM payments_intents WHERE id = %s", (first["id"],))
    assert row["status"] == "captured" and row["booking_outcome"] == "already-paid"
    assert row["refunded_minor"] == row["captured_minor"]
    refund = await db.fetchrow("SELECT reason, status, provider_refund_id FROM payments_refunds"
                               " WHERE intent_id = %s", (first["id"],))
    assert refund["reason"] == "already-paid" and refund["provider_refund_id"]


async def test_the_same_webhook_three_times_at_once_has_one_effect(
        client: Any, buyer: Any, hold: Any, event_bus: Any) -> None:
    booking = await hold(buyer)
    intent = await open_intent(client, buyer, booking["id"])
    provider = pay_ctx(client).state.providers["sandbox"]
    order = intent["client"]["order_id"]
    body, headers = sandbox_webhook(provider.settings.webhook_secret, kind="payment.captured",
                                    order_id=order, payment_id=sandbox_payment_id(order),
                                    amount_minor=intent["amount_minor"], currency="INR")
    answers = await asyncio.gather(*(
        client.post(f"{API}/payments/webhooks/sandbox", data=body, headers=headers)
        for _ in range(3)))
    assert [a.status for a in answers] == [200, 200, 200]
    dupes = sorted([(await a.json())["duplicate"] for a in answers])
    assert dupes == [False, True, True]
    await event_bus.drain()
    db = client.app[SERVICES].db
    assert await db.fetchval("SELECT count(*) FROM payments_events") == 1
    assert await db.fetchval("SELECT count(*) FROM core_outbox WHERE type ="
                             " 'payments.payment_captured'") == 1
    assert (await booking_of(client, buyer, booking["id"]))["status"] == "confirmed"


async def test_transitions_only_move_forward(client: Any, buyer: Any, hold: Any,
                                             event_bus: Any) -> None:
    booking = await hold(buyer)
    intent = await open_intent(client, buyer, booking["id"])
    ctx = pay_ctx(client)
    await sandbox_flow.complete(ctx, intent["id"], "captured", time.time())
    await sandbox_flow.complete(ctx, intent["id"], "failed", time.time())
    await event_bus.drain()
    db = client.app[SERVICES].db
    assert await db.fetchval("SELECT status FROM payments_intents WHERE id = %s",
                             (intent["id"],)) == "captured"
    outcomes = [r["outcome"] for r in await db.fetch(
        "SELECT outcome FROM payments_events ORDER BY received_at, id")]
    assert outcomes[0].startswith("captured") and outcomes[1] == "ignored: a failure after captured"


async def test_a_late_authorisation_after_a_failure_is_accepted_and_captured(
        client: Any, buyer: Any, hold: Any, event_bus: Any) -> None:
    booking = await hold(buyer)
    intent = await open_intent(client, buyer, booking["id"])
    ctx = pay_ctx(client)
    await sandbox_flow.complete(ctx, intent["id"], "failed", time.time())
    await event_bus.drain()
    await sandbox_flow.complete(ctx, intent["id"], "authorized", time.time())
    await event_bus.drain()
    db = client.app[SERVICES].db
    outcomes = [r["outcome"] for r in await db.fetch(
        "SELECT outcome FROM payments_events ORDER BY received_at, id")]
    assert outcomes[:2] == ["failed", "authorized late"]
    # The worker captured the authorised payment; its answer confirmed the booking.
    assert outcomes[2] == "captured: booking confirmed"
    assert await db.fetchval("SELECT status FROM payments_intents WHERE id = %s",
                             (intent["id"],)) == "captured"
    assert (await booking_of(client, buyer, booking["id"]))["status"] == "confirmed"


async def test_webhook_refusals(client: Any, buyer: Any, hold: Any) -> None:
    booking = await hold(buyer)
    intent = await open_intent(client, buyer, booking["id"])
    order = intent["client"]["order_id"]
    body, headers = sandbox_webhook("not-the-secret", kind="payment.captured", order_id=order,
                                    payment_id=sandbox_payment_id(order), amount_minor=1,
                                    currency="INR")
    resp = await client.post(f"{API}/payments/webhooks/sandbox", data=body, headers=headers)
    assert resp.status == 400
    problem = await resp.json()
    assert problem["type"].endswith("webhook-signature")
    resp = await client.post(f"{API}/payments/webhooks/sandbox", data=body)
    assert resp.status == 400 and "missing" in (await resp.json())["detail"]
    # A provider that is not configured here, and a name that is no provider at all.
    resp = await client.post(f"{API}/payments/webhooks/razorpay", data=body)
    assert resp.status == 404
    resp = await client.post(f"{API}/payments/webhooks/paypal", data=body)
    assert resp.status == 422
    assert (await resp.json())["errors"][0]["field"] == "provider"
    db = client.app[SERVICES].db
    assert await db.fetchval("SELECT count(*) FROM payments_events") == 0


async def test_intent_rules(client: Any, buyer: Any, make_user: Any, hold: Any) -> None:
    booking = await hold(buyer)
    other = await make_user()
    resp = await client.post(f"{API}/bookings/{booking['id']}/payment-intents",
                             headers=other.headers)
    assert resp.status == 404
    resp = await client.post(f"{API}/bookings/{booking['id']}/payment-intents")
    assert resp.status == 401
    resp = await client.post(f"{API}/bookings/not-a-uuid/payment-intents",
                             headers=buyer.headers)
    assert resp.status == 422
    intent = await open_intent(client, buyer, booking["id"])
    resp = await client.get(f"{API}/payments/intents/{intent['id']}", headers=other.headers)
    assert resp.status == 404


async def test_an_expired_hold_cannot_be_paid(client: Any, buyer: Any, hold: Any) -> None:
    booking = await hold(buyer)
    db = client.app[SERVICES].db
    await db.execute("UPDATE bookings_bookings SET expires_at = now() - interval '1 second'"
                     " WHERE id = %s", (booking["id"],))
    resp = await client.post(f"{API}/bookings/{booking['id']}/payment-intents",
                             headers=buyer.headers)
    assert resp.status == 409
    assert (await resp.json())["type"].endswith("hold-expired")
    assert await db.fetchval("SELECT count(*) FROM payments_intents") == 0


async def test_rera_cap(client: Any, buyer: Any, builder: Any, project: Any,
                        hold: Any) -> None:
    # A fixed booking amount above 10 % of an 85 lakh unit: 9 lakh.
    terms = {"amount_kind": "fixed", "amount_minor": 9_00_000_00, "free_cancel_hours": 48,
             "fee_fixed_minor": 0, "fee_bps": 0}
    resp = await client.put(f"{API}/projects/{project['id']}/booking-terms", json=terms,
                            headers=builder.headers)
    assert resp.status == 200, await resp.text()
    booking = await hold(buyer)
    resp = await client.post(f"{API}/bookings/{booking['id']}/payment-intents",
                             headers=buyer.headers)
    assert resp.status == 422, await resp.text()
    problem = await resp.json()
    assert problem["type"].endswith("rera-cap-exceeded")
    assert problem["cap_minor"] == 8_50_000_00
