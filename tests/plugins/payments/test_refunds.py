"""Refunds: an admin's (partial, keyed, never above what was captured), a cancellation's
(the booking's policy decides the amount; the booking ends refunded), and a payment that
arrives after its hold expired (re-held and confirmed when the unit is free, refunded in full
when someone else took it)."""

from __future__ import annotations

import time
from typing import Any

from propmubi.web.appkeys import SERVICES
from propmubi_plugins.payments import sandbox_flow
from tests.plugins.payments.conftest import API, booking_of, open_intent, pay_ctx


async def _paid(client: Any, buyer: Any, hold: Any, event_bus: Any) -> tuple[dict, dict]:
    booking = await hold(buyer)
    intent = await open_intent(client, buyer, booking["id"])
    await sandbox_flow.complete(pay_ctx(client), intent["id"], "captured", time.time())
    await event_bus.drain()
    return await booking_of(client, buyer, booking["id"]), intent


async def test_admin_refunds_are_keyed_and_bounded(client: Any, buyer: Any, admin: Any,
                                                   staff: Any, hold: Any,
                                                   event_bus: Any) -> None:
    booking, intent = await _paid(client, buyer, hold, event_bus)
    url = f"{API}/payments/intents/{intent['id']}/refunds"
    captured = intent["amount_minor"]
    body = {"amount_minor": 1000, "reason": "goodwill"}
    resp = await client.post(url, json=body, headers=staff.headers)
    assert resp.status == 403
    resp = await client.post(url, json=body, headers=admin.headers)
    assert resp.status == 400 and "Idempotency-Key" in (await resp.json())["detail"]
    key = {"Idempotency-Key": "refund-1"}
    first = await client.post(url, json=body, headers={**admin.headers, **key})
    assert first.status == 201, await first.text()
    again = await client.post(url, json=body, headers={**admin.headers, **key})
    assert await again.read() == await first.read()
    assert again.headers["Idempotent-Replayed"] == "true"
    other_body = await client.post(url, json={**body, "amount_minor": 999},
                                   headers={**admin.headers, **key})
    assert other_body.status == 422
    assert (await other_body.json())["type"].endswith("idempotency-key-reused")
    too_much = {"amount_minor": captured, "reason": "goodwill"}
    resp = await client.post(url, json=too_much,
                             headers={**admin.headers, "Idempotency-Key": "refund-2"})
    assert resp.status == 422
    problem = await resp.json()
    assert problem["type"].endswith("refund-too-large")
    assert problem["left_minor"] == captured - 1000
    for bad in ({"amount_minor": 0, "reason": "goodwill"},
                {"amount_minor": 1.5, "reason": "goodwill"},
                {"amount_minor": "10", "reason": "goodwill"},
                {"amount_minor": 10, "reason": "because"}, {"amount_minor": 10}):
        resp = await client.post(url, json=bad,
                                 headers={**admin.headers, "Idempotency-Key": "refund-3"})
        assert resp.status == 422, bad
    await event_bus.drain()
    db = client.app[SERVICES].db
    row = await db.fetchrow("SELECT count(*) AS n, sum(amount_minor) AS total FROM"
                            " payments_refunds WHERE intent_id = %s", (intent["id"],))
    assert (row["n"], row["total"]) == (1, 1000)
    # The sandbox "bank" processes it; the confirmed booking stays confirmed.
    await sandbox_flow.complete(pay_ctx(client), intent["id"], "refunds", time.time())
    await event_bus.drain()
    assert await db.fetchval("SELECT status FROM payments_refunds WHERE intent_id = %s",
                             (intent["id"],)) == "processed"
    assert (await booking_of(client, buyer, booking["id"]))["status"] == "confirmed"


async def test_a_cancelled_booking_is_refunded(client: Any, buyer: Any, hold: Any,
                                               event_bus: Any) -> None:
    booking, intent = await _paid(client, buyer, hold, event_bus)
    resp = await client.post(f"{API}/bookings/{booking['id']}/cancel",
                             json={"reason_code": "changed_mind"}, headers=buyer.headers)
    assert resp.status == 200, await resp.text()
    cancelled = await resp.json()
    assert cancelled["status"] == "cancelled"
    # Within the free window the whole amount comes back.
    assert cancelled["refund_minor"] == intent["amount_minor"]
    await event_bus.drain()
    db = client.app[SERVICES].db
    refund = await db.fetchrow("SELECT amount_minor, reason, status, provider_refund_id"
                               " FROM payments_refunds WHERE intent_id = %s", (intent["id"],))
    assert refund["reason"] == "cancellation" and refund["status"] == "pending"
    assert refund["amount_minor"] == cancelled["refund_minor"] and refund["provider_refund_id"]
    await sandbox_flow.complete(pay_ctx(client), intent["id"], "refunds", time.time())
    await event_bus.drain()
    done = await booking_of(client, buyer, booking["id"])
    assert done["status"] == "refunded" and done["refunded_minor"] == intent["amount_minor"]
    # Draining again (a redelivery) refunds nothing more.
    await event_bus.drain()
    assert await db.fetchval("SELECT count(*) FROM payments_refunds") == 1


async def test_a_late_payment_for_a_free_unit_confirms(client: Any, buyer: Any, hold: Any,
                                                       event_bus: Any) -> None:
    booking = await hold(buyer)
    intent = await open_intent(client, buyer, booking["id"])
    db = client.app[SERVICES].db
    await db.execute("UPDATE bookings_bookings SET expires_at = now() - interval '1 minute'"
                     " WHERE id = %s", (booking["id"],))
    await sandbox_flow.complete(pay_ctx(client), intent["id"], "captured", time.time())
    await event_bus.drain()
    assert (await booking_of(client, buyer, booking["id"]))["status"] == "confirmed"


async def test_a_late_payment_for_a_taken_unit_is_refunded(
        client: Any, buyer: Any, make_user: Any, hold: Any, event_bus: Any) -> None:
    booking = await hold(buyer)
    intent = await open_intent(client, buyer, booking["id"])
    db = client.app[SERVICES].db
    await db.execute("UPDATE bookings_bookings SET expires_at = now() - interval '1 minute'"
                     " WHERE id = %s", (booking["id"],))
    # Someone else holds the unit once the first hold has expired.
    other = await make_user()
    theirs = await hold(other)
    await sandbox_flow.complete(pay_ctx(client), intent["id"], "captured", time.time())
    await event_bus.drain()
    mine = await booking_of(client, buyer, booking["id"])
    assert mine["status"] == "expired"
    assert (await booking_of(client, other, theirs["id"]))["status"] == "held"
    row = await db.fetchrow("SELECT booking_outcome, refunded_minor, captured_minor FROM"
                            " payments_intents WHERE id = %s", (intent["id"],))
    assert row["booking_outcome"] == "unit-taken"
    assert row["refunded_minor"] == row["captured_minor"] > 0
    assert await db.fetchval("SELECT count(*) FROM core_outbox WHERE type ="
                             " 'bookings.late_payment_rejected'") == 1
