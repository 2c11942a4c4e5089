"""Provider fallback: Razorpay (the primary) fails; once its circuit opens, new intents go to
Stripe (the fallback); an intent stays with the provider it was opened with, so no intent is
ever charged by two providers."""

from __future__ import annotations

from typing import Any

import attrs
import pytest

from propmubi.web.appkeys import SERVICES
from tests.plugins.payments.conftest import API, booking_of, deliver, open_intent, pay_ctx


@pytest.fixture
def payments_settings(razorpay_sim: Any, stripe_sim: Any) -> dict[str, Any]:
    return {"provider": "razorpay", "fallback_provider": "stripe",
            "razorpay": attrs.asdict(razorpay_sim.settings()),
            "stripe": attrs.asdict(stripe_sim.settings()),
            "breaker_min_calls": 2, "breaker_error_rate": 0.5, "breaker_window": 600,
            "breaker_cooldown": 600}


async def test_new_intents_go_to_the_fallback_while_the_primary_is_open(
        client: Any, buyer: Any, hold: Any, razorpay_sim: Any, stripe_sim: Any,
        event_bus: Any) -> None:
    booking = await hold(buyer)
    razorpay_sim.fail_next(2, status=500)
    for _ in range(2):
        resp = await client.post(f"{API}/bookings/{booking['id']}/payment-intents",
                                 headers=buyer.headers)
        assert resp.status == 503, await resp.text()
        assert resp.headers["Retry-After"]
        assert (await resp.json())["type"].endswith("payment-provider-unavailable")
    assert pay_ctx(client).state.breakers["razorpay"].state == "open"

    intent = await open_intent(client, buyer, booking["id"])
    assert intent["provider"] == "stripe"
    assert intent["client"]["client_secret"]
    assert len(razorpay_sim.calls("POST", "/v1/orders")) == 2
    assert len(stripe_sim.calls("POST", "/v1/payment_intents")) == 1
    db = client.app[SERVICES].db
    rows = await db.fetch("SELECT provider, status, provider_order_id FROM payments_intents"
                          " ORDER BY created_at")
    assert [(r["provider"], r["status"]) for r in rows] == [
        ("razorpay", "failed"), ("razorpay", "failed"), ("stripe", "created")]
    assert rows[0]["provider_order_id"] is None and rows[1]["provider_order_id"] is None

    await deliver(client, "stripe", stripe_sim.pay(intent["provider_order_id"], "captured"))
    await event_bus.drain()
    assert (await booking_of(client, buyer, booking["id"]))["status"] == "confirmed"


async def test_a_provider_timeout_is_a_503_not_a_hang(client: Any, buyer: Any, hold: Any,
                                                     razorpay_sim: Any) -> None:
    booking = await hold(buyer)
    razorpay_sim.hang_next(1)
    resp = await client.post(f"{API}/bookings/{booking['id']}/payment-intents",
                             headers=buyer.headers)
    assert resp.status == 503
