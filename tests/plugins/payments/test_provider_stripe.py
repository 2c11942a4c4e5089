"""The Stripe client against the Stripe simulator (a real HTTP server on loopback)."""

from __future__ import annotations

import datetime
import time
from collections.abc import AsyncIterator
from urllib.parse import parse_qsl

import pytest

from propmubi.config import ConfigError
from propmubi_plugins.payments.providers import (
    ProviderError,
    SettlementLine,
    StripeProvider,
    StripeSettings,
    build,
)
from tests.plugins.payments.simulators import StripeSimulator, fixtures

stripe_sim = fixtures.stripe_sim  # the fixture, by name

DAY = datetime.date(2025, 3, 14)


@pytest.fixture
async def provider(stripe_sim: StripeSimulator) -> AsyncIterator[StripeProvider]:
    provider = StripeProvider(stripe_sim.settings(capture_method="manual"))
    yield provider
    await provider.close()


async def new_intent(provider: StripeProvider, amount: int = 150000, key: str = "create-1"
                     ) -> str:
    order = await provider.create_order(reference="intent-1", amount_minor=amount,
                                        currency="INR", idempotency_key=key)
    return order.order_id


async def test_create_sends_the_documented_form_and_gives_checkout_no_secret_key(
        provider: StripeProvider, stripe_sim: StripeSimulator) -> None:
    order = await provider.create_order(reference="intent-42", amount_minor=250000,
                                        currency="INR", idempotency_key="key-intent-42")
    intent = stripe_sim.intents[order.order_id]
    assert order.client == {"client_secret": intent["client_secret"],
                            "publishable_key": stripe_sim.publishable_key,
                            "amount": 250000, "currency": "INR"}
    assert stripe_sim.secret_key not in str(order.client)
    call = stripe_sim.calls("POST", "/v1/payment_intents")[0]
    assert call.headers["Idempotency-Key"] == "key-intent-42"
    assert call.headers["Authorization"] == f"Bearer {stripe_sim.secret_key}"
    assert dict(parse_qsl(call.body.decode())) == {
        "amount": "250000", "currency": "inr", "metadata[reference]": "intent-42",
        "automatic_payment_methods[enabled]": "true", "capture_method": "manual"}


async def test_the_same_idempotency_key_creates_one_intent(provider: StripeProvider,
                                                           stripe_sim: StripeSimulator) -> None:
    first = await new_intent(provider, key="same-key")
    second = await new_intent(provider, key="same-key")
    assert first == second and len(stripe_sim.intents) == 1


async def test_fetch_follows_the_intent(provider: StripeProvider,
                                        stripe_sim: StripeSimulator) -> None:
    intent_id = await new_intent(provider)
    created = await provider.fetch(intent_id)
    assert (created.status, created.payment_id, created.amount_minor, created.currency) == (
        "created", None, 150000, "INR")
    stripe_sim.pay(intent_id, "failed")
    assert (await provider.fetch(intent_id)).status == "failed"
    stripe_sim.pay(intent_id, "captured")
    paid = await provider.fetch(intent_id)
    assert (paid.status, paid.payment_id, paid.amount_minor) == ("captured", intent_id, 150000)


async def test_capture_an_authorized_intent(provider: StripeProvider,
                                            stripe_sim: StripeSimulator) -> None:
    intent_id = await new_intent(provider)
    stripe_sim.pay(intent_id, "authorized")
    assert (await provider.fetch(intent_id)).status == "authorized"
    captured = await provider.capture(intent_id, 150000, "INR")
    assert (captured.status, captured.amount_minor, captured.currency) == ("captured", 150000,
                                                                           "INR")
    # The repeat carries the same idempotency key: Stripe replays the first answer.
    assert await provider.capture(intent_id, 150000, "INR") == captured
    calls = stripe_sim.calls("POST", f"/v1/payment_intents/{intent_id}/capture")
    keys = [c.headers["Idempotency-Key"] for c in calls]
    assert keys == [f"capture-{intent_id}-150000"] * 2
    assert stripe_sim.webhooks[-1].event_type == "payment_intent.succeeded"


async def test_refund_with_the_same_idempotency_key_makes_one_refund(
        provider: StripeProvider, stripe_sim: StripeSimulator) -> None:
    intent_id = await new_intent(provider)
    stripe_sim.pay(intent_id, "captured")
    first = await provider.refund(intent_id, 50000, idempotency_key="refund-1")
    second = await provider.refund(intent_id, 50000, idempotency_key="refund-1")
    assert first == second
    assert (first.status, first.amount_minor, first.payment_id) == ("pending", 50000,
                                                                     intent_id)
    assert len(stripe_sim.refunds) == 1
    with pytest.raises(ProviderError) as caught:
        await provider.refund(intent_id, 1000, idempotency_key="refund-1")
    assert (caught.value.retryable, caught.value.code) == (False, "idempotency_error")
    assert len(stripe_sim.refunds) == 1


async def test_settlements_follow_has_more_and_name_intents_and_refunds(
        provider: StripeProvider, stripe_sim: StripeSimulator) -> None:
    first = await new_intent(provider, 100000, key="k1")
    second = await new_intent(provider, 20000, key="k2")
    stripe_sim.pay(first, "captured")
    stripe_sim.pay(second, "captured")
    refund = await provider.refund(first, 30000, idempotency_key="refund-of-first")
    stripe_sim.process_refund(refund.refund_id)
    stripe_sim.settle(DAY)
    stripe_sim.pay(await new_intent(provider, key="k3"), "captured")
    stripe_sim.settle(DAY + datetime.timedelta(days=1))

    provider.page_size = 2
    lines = await provider.settlements(DAY)
    assert sorted(lines, key=lambda line: line.amount_minor) == [
        SettlementLine("payment", second, 20000, 610, "INR", DAY),
        SettlementLine("refund", refund.refund_id, 30000, 0, "INR", DAY),
        SettlementLine("payment", first, 100000, 2930, "INR", DAY),
    ]
    pages = stripe_sim.calls("GET", "/v1/balance_transactions")
    assert [c.query.get("starting_after") is not None for c in pages] == [False, True]
    start = int(datetime.datetime(2025, 3, 14, tzinfo=datetime.UTC).timestamp())
    assert (pages[0].query["created[gte]"], pages[0].query["created[lt]"]) == (
        str(start), str(start + 86400))
    assert await provider.settlements(DAY - datetime.timedelta(days=1)) == []


async def test_a_wrong_key_is_a_final_error_with_stripes_message(
        stripe_sim: StripeSimulator) -> None:
    provider = StripeProvider(stripe_sim.settings(secret_key="sk_test_wrong1234"))
    try:
        with pytest.raises(ProviderError) as caught:
            await new_intent(provider)
    finally:
        await provider.close()
    assert (caught.value.retryable, caught.value.status, caught.value.code) == (
        False, 401, "invalid_request_error")
    assert "Invalid API Key provided: sk_test_****1234" in str(caught.value)


async def test_a_server_error_is_retryable_and_not_replayed(
        provider: StripeProvider, stripe_sim: StripeSimulator) -> None:
    stripe_sim.fail_next(1, status=500)
    with pytest.raises(ProviderError) as caught:
        await new_intent(provider, key="retry-me")
    assert (caught.value.retryable, caught.value.status, caught.value.code) == (
        True, 500, "api_error")
    assert await new_intent(provider, key="retry-me")  # the retry with the key works
    assert len(stripe_sim.intents) == 1


async def test_a_hanging_provider_times_out_as_retryable(stripe_sim: StripeSimulator) -> None:
    provider = StripeProvider(stripe_sim.settings(timeout=0.3))
    stripe_sim.hang_next()
    started = time.monotonic()
    try:
        with pytest.raises(ProviderError) as caught:
            await provider.fetch("pi_x")
    finally:
        await provider.close()
    assert caught.value.retryable is True
    assert time.monotonic() - started < 2


async def test_an_unknown_intent_is_a_final_error(provider: StripeProvider) -> None:
    with pytest.raises(ProviderError) as caught:
        await provider.fetch("pi_missing")
    assert (caught.value.retryable, caught.value.status, caught.value.code) == (
        False, 404, "resource_missing")


def test_build_refuses_missing_keys() -> None:
    with pytest.raises(ConfigError, match="needs webhook_secrets"):
        build("stripe", StripeSettings(secret_key="sk_live_x"), None)
    with pytest.raises(ConfigError, match="needs secret_key"):
        build("stripe", StripeSettings(webhook_secrets=("whsec",)), None)
    provider = build("stripe", StripeSettings(secret_key="sk", publishable_key="pk",
                                              webhook_secrets=("whsec",)), None)
    assert isinstance(provider, StripeProvider)
