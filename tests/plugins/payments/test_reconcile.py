"""Reconciliation against the Razorpay simulator: a lost webhook is recovered by the poll,
and every line of a day's settlement report is matched to exactly one payment or refund of
ours, the rest reported (also by ``propmubi payments reconcile``, which exits 1)."""

from __future__ import annotations

import argparse
import datetime as dt
from typing import Any

import attrs
import pytest

from propmubi.web.appkeys import SERVICES
from propmubi_plugins.payments import cli, reconcile
from tests.plugins.payments.conftest import booking_of, deliver, open_intent, pay_ctx


@pytest.fixture
def payments_settings(razorpay_sim: Any) -> dict[str, Any]:
    return {"provider": "razorpay", "razorpay": attrs.asdict(razorpay_sim.settings()),
            "stuck_after_minutes": 15}


async def test_the_poll_recovers_a_lost_webhook(client: Any, buyer: Any, hold: Any,
                                               razorpay_sim: Any, event_bus: Any) -> None:
    booking = await hold(buyer)
    intent = await open_intent(client, buyer, booking["id"])
    razorpay_sim.pay(intent["provider_order_id"], "captured")  # its webhook never arrives
    ctx = pay_ctx(client)
    report = await reconcile.poll(ctx)
    assert report.asked == 0  # not stuck yet: it changed less than 15 minutes ago
    db = client.app[SERVICES].db
    await db.execute("UPDATE payments_intents SET updated_at = now() - interval '16 minutes'")
    report = await reconcile.poll(ctx)
    assert (report.asked, report.news) == (1, 1)
    await event_bus.drain()
    assert (await booking_of(client, buyer, booking["id"]))["status"] == "confirmed"
    # A second poll finds nothing new; the webhook arriving late has no second effect.
    await db.execute("UPDATE payments_intents SET updated_at = now() - interval '16 minutes'")
    assert (await reconcile.poll(ctx)).asked == 0  # captured: no longer open
    await deliver(client, "razorpay", razorpay_sim.webhooks[-1])
    await event_bus.drain()
    assert await db.fetchval("SELECT count(*) FROM core_outbox WHERE type ="
                             " 'payments.payment_captured'") == 1


async def test_orderless_intents_fail_and_unsent_refunds_are_queued_again(
        client: Any, buyer: Any, hold: Any, razorpay_sim: Any, event_bus: Any) -> None:
    booking = await hold(buyer)
    razorpay_sim.fail_next(1, status=503)
    resp = await client.post(f"/api/v1/bookings/{booking['id']}/payment-intents",
                             headers=buyer.headers)
    assert resp.status == 503
    db = client.app[SERVICES].db
    assert await db.fetchval("SELECT status FROM payments_intents") == "failed"
    # A process that died between writing an intent and asking the provider leaves it
    # "created" with no order: the poll fails it once it is old.
    await db.execute("UPDATE payments_intents SET status = 'created',"
                     " created_at = now() - interval '20 minutes'")
    ctx = pay_ctx(client)
    assert (await reconcile.poll(ctx)).failed_orderless == 1
    assert await db.fetchval("SELECT status FROM payments_intents") == "failed"

    # A refund whose sending failed for long (the provider was down past the bus's retries)
    # is queued again, and sent once.
    intent = await open_intent(client, buyer, booking["id"])
    await deliver(client, "razorpay", razorpay_sim.pay(intent["provider_order_id"]))
    await event_bus.drain()
    await client.post(f"/api/v1/bookings/{booking['id']}/cancel",
                      json={"reason_code": "other"}, headers=buyer.headers)
    razorpay_sim.fail_next(50, status=500)
    await event_bus.drain()
    assert await db.fetchval("SELECT provider_refund_id FROM payments_refunds") is None
    razorpay_sim.clear_faults()
    await db.execute("UPDATE payments_refunds SET updated_at = now() - interval '20 minutes'")
    assert (await reconcile.poll(ctx)).requeued_refunds == 1
    await event_bus.drain()
    assert await db.fetchval("SELECT provider_refund_id FROM payments_refunds") is not None
    assert len(razorpay_sim.refunds) == 1


async def test_settlement_lines_match_or_are_reported(
        client: Any, buyer: Any, hold: Any, razorpay_sim: Any, event_bus: Any,
        capsys: Any) -> None:
    booking = await hold(buyer)
    intent = await open_intent(client, buyer, booking["id"])
    await deliver(client, "razorpay", razorpay_sim.pay(intent["provider_order_id"]))
    await event_bus.drain()
    # A payment the provider settles that is not ours (made outside Propmubi).
    ctx = pay_ctx(client)
    stray = await ctx.state.providers["razorpay"].create_order(
        reference="outside", amount_minor=5000, currency="INR", idempotency_key="stray-1")
    razorpay_sim.pay(stray.order_id, "captured")
    day = dt.date(2026, 12, 1)
    razorpay_sim.settle(day)

    report = await reconcile.settle(ctx, day)
    assert (report.lines, report.matched) == (2, 1)
    assert [p["status"] for p in report.problems] == ["unknown"]
    db = client.app[SERVICES].db
    rows = await db.fetch("SELECT status, intent_id FROM payments_settlement_lines"
                          " ORDER BY status")
    assert [(r["status"], r["intent_id"] is not None) for r in rows] == [
        ("matched", True), ("unknown", False)]
    # Run again: the same lines, updated in place.
    await reconcile.settle(ctx, day)
    assert await db.fetchval("SELECT count(*) FROM payments_settlement_lines") == 2

    code = await cli.run(argparse.Namespace(payments_action="reconcile", day=day), ctx)
    assert code == 1
    out = capsys.readouterr().out
    assert "2 lines, 1 matched, 1 problems" in out and "unknown" in out
