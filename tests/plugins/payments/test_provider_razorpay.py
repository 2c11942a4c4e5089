"""The Razorpay client against the Razorpay simulator (a real HTTP server on loopback)."""

from __future__ import annotations

import datetime
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest

from propmubi.config import ConfigError
from propmubi_plugins.payments.providers import (
    ProviderError,
    RazorpayProvider,
    RazorpaySettings,
    SettlementLine,
    build,
)
from tests.plugins.payments.simulators import RazorpaySimulator, fixtures

razorpay_sim = fixtures.razorpay_sim  # the fixture, by name

DAY = datetime.date(2025, 3, 14)


@pytest.fixture
async def provider(razorpay_sim: RazorpaySimulator) -> AsyncIterator[RazorpayProvider]:
    provider = RazorpayProvider(razorpay_sim.settings())
    yield provider
    await provider.close()


async def new_order(provider: RazorpayProvider, amount: int = 150000) -> str:
    order = await provider.create_order(reference="intent-1", amount_minor=amount,
                                        currency="INR", idempotency_key="create-intent-1")
    return order.order_id


async def test_create_order_sends_receipt_and_notes_and_gives_checkout_no_secret(
        provider: RazorpayProvider, razorpay_sim: RazorpaySimulator) -> None:
    order = await provider.create_order(reference="intent-42", amount_minor=250000,
                                        currency="INR", idempotency_key="key-intent-42")
    assert order.order_id.startswith("order_")
    assert order.client == {"key": razorpay_sim.key_id, "order_id": order.order_id,
                            "amount": 250000, "currency": "INR"}
    assert razorpay_sim.key_secret not in orjson.dumps(order.client).decode()
    sent = orjson.loads(razorpay_sim.calls("POST", "/v1/orders")[0].body)
    assert sent == {"amount": 250000, "currency": "INR", "receipt": "intent-42",
                    "notes": {"reference": "intent-42", "idempotency_key": "key-intent-42"}}


async def test_fetch_follows_the_order_and_its_best_payment(
        provider: RazorpayProvider, razorpay_sim: RazorpaySimulator) -> None:
    order_id = await new_order(provider)
    created = await provider.fetch(order_id)
    assert (created.status, created.payment_id, created.amount_minor, created.currency) == (
        "created", None, 150000, "INR")

    razorpay_sim.pay(order_id, "failed")
    failed = await provider.fetch(order_id)
    assert failed.status == "failed" and failed.payment_id is not None

    razorpay_sim.pay(order_id, "captured")
    paid = await provider.fetch(order_id)
    captured_id = next(p["id"] for p in razorpay_sim.payments_of(order_id)
                       if p["status"] == "captured")
    assert (paid.status, paid.payment_id, paid.amount_minor) == ("captured", captured_id,
                                                                 150000)


async def test_capture_an_authorized_payment_and_repeat_it(
        provider: RazorpayProvider, razorpay_sim: RazorpaySimulator) -> None:
    order_id = await new_order(provider)
    razorpay_sim.pay(order_id, "authorized")
    authorized = await provider.fetch(order_id)
    assert authorized.status == "authorized"
    assert authorized.payment_id is not None

    captured = await provider.capture(authorized.payment_id, 150000, "INR")
    assert (captured.status, captured.order_id) == ("captured", order_id)
    assert razorpay_sim.webhooks[-1].event_type == "payment.captured"
    # A repeat (the first answer lost) reads the payment back instead of failing.
    again = await provider.capture(authorized.payment_id, 150000, "INR")
    assert again == captured
    assert len(razorpay_sim.calls("POST", f"/v1/payments/{authorized.payment_id}/capture")) == 2


async def test_capture_of_another_amount_is_refused_for_good(
        provider: RazorpayProvider, razorpay_sim: RazorpaySimulator) -> None:
    order_id = await new_order(provider)
    razorpay_sim.pay(order_id, "authorized")
    payment_id = (await provider.fetch(order_id)).payment_id
    assert payment_id is not None
    with pytest.raises(ProviderError) as caught:
        await provider.capture(payment_id, 100, "INR")
    assert (caught.value.retryable, caught.value.status) == (False, 400)
    assert "equal to the amount authorized" in str(caught.value)


async def test_refund_with_the_same_idempotency_key_makes_one_refund(
        provider: RazorpayProvider, razorpay_sim: RazorpaySimulator) -> None:
    order_id = await new_order(provider)
    razorpay_sim.pay(order_id, "captured")
    payment_id = (await provider.fetch(order_id)).payment_id
    assert payment_id is not None

    first = await provider.refund(payment_id, 50000, idempotency_key="refund-0001-a")
    second = await provider.refund(payment_id, 50000, idempotency_key="refund-0001-a")
    assert first == second
    assert (first.status, first.amount_minor, first.payment_id) == ("pending", 50000,
                                                                     payment_id)
    assert len(razorpay_sim.refunds) == 1
    calls = razorpay_sim.calls("POST", f"/v1/payments/{payment_id}/refund")
    assert [c.headers["X-Refund-Idempotency"] for c in calls] == ["refund-0001-a"] * 2

    # Another amount under the same key is refused, not refunded.
    with pytest.raises(ProviderError) as caught:
        await provider.refund(payment_id, 1000, idempotency_key="refund-0001-a")
    assert caught.value.retryable is False
    assert len(razorpay_sim.refunds) == 1


async def test_a_key_razorpay_would_refuse_is_sent_as_its_digest(
        provider: RazorpayProvider, razorpay_sim: RazorpaySimulator) -> None:
    order_id = await new_order(provider)
    razorpay_sim.pay(order_id, "captured")
    payment_id = (await provider.fetch(order_id)).payment_id
    assert payment_id is not None
    await provider.refund(payment_id, 100, idempotency_key="r:1")
    await provider.refund(payment_id, 100, idempotency_key="r:1")
    sent = {c.headers["X-Refund-Idempotency"] for c in razorpay_sim.calls("POST", "/v1/pay")}
    assert len(sent) == 1 and len(sent.pop()) == 64
    assert len(razorpay_sim.refunds) == 1


async def test_settlements_list_the_days_payments_and_refunds_page_by_page(
        provider: RazorpayProvider, razorpay_sim: RazorpaySimulator) -> None:
    first, second = await new_order(provider, 100000), await new_order(provider, 20000)
    razorpay_sim.pay(first, "captured")
    razorpay_sim.pay(second, "captured")
    pay_first = (await provider.fetch(first)).payment_id
    assert pay_first is not None
    refund = await provider.refund(pay_first, 30000, idempotency_key="refund-of-first")
    razorpay_sim.process_refund(refund.refund_id)
    razorpay_sim.settle(DAY)
    razorpay_sim.pay(await new_order(provider), "captured")
    razorpay_sim.settle(DAY + datetime.timedelta(days=1))

    provider.page_size = 2
    lines = await provider.settlements(DAY)
    assert sorted(lines, key=lambda line: line.amount_minor) == [
        SettlementLine("payment", (await provider.fetch(second)).payment_id or "", 20000, 472,
                       "INR", DAY),
        SettlementLine("refund", refund.refund_id, 30000, 0, "INR", DAY),
        SettlementLine("payment", pay_first, 100000, 2360, "INR", DAY),
    ]
    recon = razorpay_sim.calls("GET", "/v1/settlements/recon/combined")
    assert [(c.query["day"], c.query["skip"]) for c in recon] == [("14", "0"), ("14", "2")]
    assert await provider.settlements(DAY - datetime.timedelta(days=1)) == []


async def test_a_wrong_key_is_a_final_error_with_razorpays_description(
        razorpay_sim: RazorpaySimulator) -> None:
    provider = RazorpayProvider(razorpay_sim.settings(key_secret="wrong"))
    try:
        with pytest.raises(ProviderError) as caught:
            await new_order(provider)
    finally:
        await provider.close()
    assert (caught.value.retryable, caught.value.status, caught.value.code) == (
        False, 401, "BAD_REQUEST_ERROR")
    assert "Authentication failed" in str(caught.value)


async def test_a_server_error_is_retryable(provider: RazorpayProvider,
                                           razorpay_sim: RazorpaySimulator) -> None:
    razorpay_sim.fail_next(1, status=502)
    with pytest.raises(ProviderError) as caught:
        await new_order(provider)
    assert (caught.value.retryable, caught.value.status) == (True, 502)
    assert await new_order(provider)  # the next call goes through


async def test_a_hanging_provider_times_out_as_retryable(
        razorpay_sim: RazorpaySimulator) -> None:
    provider = RazorpayProvider(razorpay_sim.settings(timeout=0.3))
    razorpay_sim.hang_next()
    started = time.monotonic()
    try:
        with pytest.raises(ProviderError) as caught:
            await new_order(provider)
    finally:
        await provider.close()
    assert caught.value.retryable is True and caught.value.status is None
    assert time.monotonic() - started < 2


async def test_a_closed_port_is_retryable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    provider = RazorpayProvider(RazorpaySettings(base_url=f"http://127.0.0.1:{port}",
                                                 key_id="k", key_secret="s", timeout=1.0))
    try:
        with pytest.raises(ProviderError) as caught:
            await provider.fetch("order_x")
    finally:
        await provider.close()
    assert caught.value.retryable is True


async def test_money_must_be_integer_minor_units(provider: RazorpayProvider,
                                                 razorpay_sim: RazorpaySimulator) -> None:
    bad: list[tuple[Any, str]] = [(1500.0, "INR"), (True, "INR"), (0, "INR"), (100, "inr")]
    for amount, currency in bad:
        with pytest.raises(ValueError):
            await provider.create_order(reference="r", amount_minor=amount,
                                        currency=currency, idempotency_key="k")
    assert razorpay_sim.requests == []


async def test_a_shared_session_is_used_and_left_open(razorpay_sim: RazorpaySimulator) -> None:
    async with aiohttp.ClientSession() as session:
        provider = build("razorpay", razorpay_sim.settings(), session)
        await provider.create_order(reference="r", amount_minor=100, currency="INR",
                                    idempotency_key="k")
        await provider.close()
        assert not session.closed


def test_build_refuses_missing_keys_unknown_names_and_mismatched_settings() -> None:
    with pytest.raises(ConfigError, match="key_secret, webhook_secrets"):
        build("razorpay", RazorpaySettings(key_id="rzp_live_x"), None)
    with pytest.raises(ConfigError, match="unknown payment provider"):
        build("paypal", RazorpaySettings(), None)
    with pytest.raises(ConfigError, match="got RazorpaySettings"):
        build("stripe", RazorpaySettings(), None)
    provider = build("razorpay", RazorpaySettings(key_id="a", key_secret="b",
                                                  webhook_secrets=("c",)), None)
    assert isinstance(provider, RazorpayProvider)
