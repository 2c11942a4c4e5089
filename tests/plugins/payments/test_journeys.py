"""The critical journeys end to end over HTTP, with the Razorpay-compatible provider talking
to its loopback simulator (orders, payments, refunds and signed webhooks in Razorpay's
documented formats):

1. a buyer finds a unit, holds it, pays, and gets a confirmed booking;
3. a payment fails, the hold survives, the buyer retries and is confirmed, charged once;
4. a confirmed booking is cancelled under the project's policy and refunded.
"""

from __future__ import annotations

from typing import Any

import attrs
import pytest

from propmubi.web.appkeys import SERVICES
from tests.plugins.payments.conftest import API, booking_of, deliver, open_intent


@pytest.fixture
def payments_settings(razorpay_sim: Any) -> dict[str, Any]:
    return {"provider": "razorpay", "razorpay": attrs.asdict(razorpay_sim.settings())}


async def _find_and_hold(client: Any, buyer: Any) -> dict[str, Any]:
    resp = await client.get(f"{API}/projects/search", params={"city": "Pune"})
    assert resp.status == 200, await resp.text()
    project = (await resp.json())["items"][0]
    resp = await client.get(f"{API}/projects/{project['id']}/units")
    units = (await resp.json())["items"]
    unit = next(u for u in units if u["status"] == "available")
    resp = await client.post(f"{API}/holds", json={"unit_id": unit["id"]},
                             headers=buyer.headers)
    assert resp.status == 201, await resp.text()
    return await resp.json()


async def test_journey_1_hold_pay_confirm(client: Any, buyer: Any, project: Any,
                                         razorpay_sim: Any, event_bus: Any) -> None:
    booking = await _find_and_hold(client, buyer)
    assert booking["status"] == "held"
    intent = await open_intent(client, buyer, booking["id"])
    order_id = intent["client"]["order_id"]
    assert intent["provider"] == "razorpay" and order_id in razorpay_sim.orders
    assert intent["client"]["key"] == razorpay_sim.settings().key_id
    assert razorpay_sim.orders[order_id]["amount"] == booking["amount_due_minor"]

    answer = await deliver(client, "razorpay", razorpay_sim.pay(order_id, "captured"))
    assert answer == {"received": True, "duplicate": False}
    await event_bus.drain()
    done = await booking_of(client, buyer, booking["id"])
    assert done["status"] == "confirmed"
    assert done["captured_minor"] == booking["amount_due_minor"]
    unit = await (await client.get(f"{API}/units/{booking['unit_id']}")).json()
    assert unit["status"] == "booked"


async def test_journey_3_failure_then_retry_charges_once(
        client: Any, buyer: Any, project: Any, razorpay_sim: Any, event_bus: Any) -> None:
    booking = await _find_and_hold(client, buyer)
    first = await open_intent(client, buyer, booking["id"])
    await deliver(client, "razorpay", razorpay_sim.pay(first["client"]["order_id"], "failed"))
    await event_bus.drain()
    kept = await booking_of(client, buyer, booking["id"])
    assert kept["status"] == "payment_pending"
    assert kept["expires_at"] == booking["expires_at"]  # the hold survives, as it was

    second = await open_intent(client, buyer, booking["id"])
    assert second["id"] != first["id"]
    webhook = razorpay_sim.pay(second["client"]["order_id"], "captured")
    await deliver(client, "razorpay", webhook)
    await deliver(client, "razorpay", webhook)  # the provider retries: a duplicate
    await event_bus.drain()
    assert (await booking_of(client, buyer, booking["id"]))["status"] == "confirmed"
    charged = [p for p in razorpay_sim.payments.values() if p["captured"]]
    assert len(charged) == 1
    db = client.app[SERVICES].db
    assert await db.fetchval("SELECT count(*) FROM payments_intents WHERE status = 'captured'"
                             " AND booking_id = %s", (booking["id"],)) == 1
    assert await db.fetchval("SELECT count(*) FROM payments_refunds") == 0


async def test_journey_4_cancel_under_the_policy_and_refund(
        client: Any, buyer: Any, builder: Any, project: Any, razorpay_sim: Any,
        event_bus: Any) -> None:
    # No free window; fee = max(₹25,000, 1 % of the price) = ₹85,000 on an 85 lakh unit.
    terms = {"amount_kind": "fixed", "amount_minor": 2_00_000_00, "free_cancel_hours": 0,
             "fee_fixed_minor": 25_000_00, "fee_bps": 100}
    resp = await client.put(f"{API}/projects/{project['id']}/booking-terms", json=terms,
                            headers=builder.headers)
    assert resp.status == 200, await resp.text()
    booking = await _find_and_hold(client, buyer)
    intent = await open_intent(client, buyer, booking["id"])
    payment = razorpay_sim.pay(intent["client"]["order_id"], "captured")
    await deliver(client, "razorpay", payment)
    await event_bus.drain()

    resp = await client.post(f"{API}/bookings/{booking['id']}/cancel",
                             json={"reason_code": "financing_refused"}, headers=buyer.headers)
    assert resp.status == 200, await resp.text()
    cancelled = await resp.json()
    price = booking["price_minor"]
    fee = max(25_000_00, price * 100 // 10_000)
    assert cancelled["fee_minor"] == fee
    assert cancelled["refund_minor"] == 2_00_000_00 - fee
    await event_bus.drain()

    refunds = list(razorpay_sim.refunds.values())
    assert [r["amount"] for r in refunds] == [cancelled["refund_minor"]]
    unit = await (await client.get(f"{API}/units/{booking['unit_id']}")).json()
    assert unit["status"] == "available"
    await deliver(client, "razorpay", razorpay_sim.process_refund(refunds[0]["id"]))
    await event_bus.drain()
    done = await booking_of(client, buyer, booking["id"])
    assert done["status"] == "refunded"
    assert done["refunded_minor"] == cancelled["refund_minor"]
    # The refund at the provider was asked for once, with an idempotency key.
    calls = razorpay_sim.calls("POST", "/v1/payments/")
    refund_calls = [c for c in calls if c.path.endswith("/refund")]
    assert len(refund_calls) == 1
    assert refund_calls[0].headers.get("X-Refund-Idempotency")


async def test_an_authorised_razorpay_payment_is_captured_once(
        client: Any, buyer: Any, project: Any, razorpay_sim: Any, event_bus: Any) -> None:
    booking = await _find_and_hold(client, buyer)
    intent = await open_intent(client, buyer, booking["id"])
    await deliver(client, "razorpay", razorpay_sim.pay(intent["provider_order_id"],
                                                       "authorized"))
    await event_bus.drain()
    captures = [c for c in razorpay_sim.calls("POST", "/v1/payments/")
                if c.path.endswith("/capture")]
    assert len(captures) == 1
    assert (await booking_of(client, buyer, booking["id"]))["status"] == "confirmed"
    # Razorpay's own payment.captured webhook for that capture changes nothing more.
    assert razorpay_sim.webhooks[-1].event_type == "payment.captured"
    await deliver(client, "razorpay", razorpay_sim.webhooks[-1])
    await event_bus.drain()
    db = client.app[SERVICES].db
    assert await db.fetchval("SELECT count(*) FROM core_outbox WHERE type ="
                             " 'payments.payment_captured'") == 1
