"""Webhook signature vectors for each provider: what is accepted, what is refused and why.

The webhooks come from the simulators, signed exactly as the providers sign them; the
provider objects verify them without any network (``verify_webhook`` is pure).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp import web
from hypothesis import given
from hypothesis import strategies as st

from propmubi_plugins.payments.providers import (
    RazorpayProvider,
    RazorpaySettings,
    SandboxProvider,
    SandboxSettings,
    SignatureError,
    StripeProvider,
    StripeSettings,
    WebhookEvent,
    sandbox_webhook,
)
from tests.plugins.payments.simulators import RazorpaySimulator, StripeSimulator, Webhook

NOW = 1_741_950_000
RAZORPAY = RazorpaySimulator(webhook_secret="rzp-new-secret")
STRIPE = StripeSimulator(webhook_secret="whsec_new", clock=lambda: NOW)

PAYMENT = {"id": "pay_29QQoUBi66xm2f", "entity": "payment", "amount": 150000,
           "currency": "INR", "status": "captured", "order_id": "order_9A33XWu170gUtm",
           "captured": True, "method": "card"}
REFUND = {"id": "rfnd_FS8TWyPrCsa0OB", "entity": "refund", "amount": 50000, "currency": "INR",
          "payment_id": "pay_29QQoUBi66xm2f", "status": "processed"}
INTENT = {"id": "pi_3MtwBwLkdIwHu7ix28a3tqPa", "object": "payment_intent", "amount": 150000,
          "amount_capturable": 0, "amount_received": 150000, "currency": "inr",
          "status": "succeeded"}
STRIPE_REFUND = {"id": "re_1Nispe2eZvKYlo2Cd31jOCgZ", "object": "refund", "amount": 50000,
                 "currency": "inr", "payment_intent": INTENT["id"], "status": "succeeded"}


def razorpay(*secrets: str) -> RazorpayProvider:
    return RazorpayProvider(RazorpaySettings(key_id="k", key_secret="s",
                                             webhook_secrets=secrets or ("rzp-new-secret",)))


def stripe(*secrets: str, tolerance: int = 300) -> StripeProvider:
    return StripeProvider(StripeSettings(secret_key="sk", publishable_key="pk",
                                         webhook_secrets=secrets or ("whsec_new",),
                                         tolerance=tolerance))


RAZORPAY_HOOK = RAZORPAY.webhook("payment.captured", payment=PAYMENT)
STRIPE_HOOK = STRIPE.webhook("payment_intent.succeeded", INTENT)
# Each provider's verify, as a function of (body, headers).
VERIFIERS: dict[str, tuple[Webhook, Callable[[bytes, dict[str, str]], WebhookEvent]]] = {
    "razorpay": (RAZORPAY_HOOK, lambda b, h: razorpay().verify_webhook(b, h, now=NOW)),
    "stripe": (STRIPE_HOOK, lambda b, h: stripe().verify_webhook(b, h, now=NOW)),
}


# -- both providers ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", VERIFIERS)
def test_the_signed_body_is_accepted(name: str) -> None:
    hook, verify = VERIFIERS[name]
    event = verify(hook.body, hook.headers)
    assert event.kind == "payment.captured"
    assert (event.amount_minor, event.currency, event.event_id) == (150000, "INR",
                                                                    hook.event_id)


@pytest.mark.parametrize("name", VERIFIERS)
def test_header_names_are_matched_whatever_their_case(name: str) -> None:
    hook, verify = VERIFIERS[name]
    assert verify(hook.body, {k.lower(): v for k, v in hook.headers.items()})


@pytest.mark.parametrize("name", VERIFIERS)
def test_one_changed_byte_is_refused(name: str) -> None:
    hook, verify = VERIFIERS[name]
    body = hook.body.replace(b"150000", b"150001", 1)
    with pytest.raises(SignatureError, match="bad"):
        verify(body, hook.headers)


@pytest.mark.parametrize("name", VERIFIERS)
def test_the_same_data_serialised_again_is_refused(name: str) -> None:
    hook, verify = VERIFIERS[name]
    again = json.dumps(json.loads(hook.body), indent=2).encode()
    assert json.loads(again) == json.loads(hook.body) and again != hook.body
    with pytest.raises(SignatureError, match="bad"):
        verify(again, hook.headers)


@pytest.mark.parametrize(("name", "header"), [("razorpay", "X-Razorpay-Signature"),
                                              ("razorpay", "X-Razorpay-Event-Id"),
                                              ("stripe", "Stripe-Signature")])
def test_a_missing_header_is_refused(name: str, header: str) -> None:
    hook, verify = VERIFIERS[name]
    headers = {k: v for k, v in hook.headers.items() if k != header}
    with pytest.raises(SignatureError, match=f"missing {header}"):
        verify(hook.body, headers)


def test_a_wrong_secret_is_refused() -> None:
    with pytest.raises(SignatureError, match="no webhook secret matches"):
        razorpay("another").verify_webhook(RAZORPAY_HOOK.body, RAZORPAY_HOOK.headers, now=NOW)
    with pytest.raises(SignatureError, match="no v1 signature matches"):
        stripe("whsec_other").verify_webhook(STRIPE_HOOK.body, STRIPE_HOOK.headers, now=NOW)


def test_no_configured_secret_refuses_everything() -> None:
    provider = RazorpayProvider(RazorpaySettings(key_id="k", key_secret="s"))
    with pytest.raises(SignatureError, match="no Razorpay webhook secret"):
        provider.verify_webhook(RAZORPAY_HOOK.body, RAZORPAY_HOOK.headers, now=NOW)


@given(data=st.data())
def test_any_single_byte_flip_is_refused(data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(sorted(VERIFIERS)))
    hook, verify = VERIFIERS[name]
    index = data.draw(st.integers(0, len(hook.body) - 1))
    flip = data.draw(st.integers(1, 255))
    body = bytearray(hook.body)
    body[index] ^= flip
    with pytest.raises(SignatureError):
        verify(bytes(body), hook.headers)


# -- Razorpay ---------------------------------------------------------------------------------
def test_razorpay_old_and_new_secrets_both_verify_during_rotation() -> None:
    old = RazorpaySimulator(webhook_secret="rzp-old-secret").webhook("payment.captured",
                                                                      payment=PAYMENT)
    rotating = razorpay("rzp-new-secret", "rzp-old-secret")
    assert rotating.verify_webhook(old.body, old.headers, now=NOW).payment_id == PAYMENT["id"]
    assert rotating.verify_webhook(RAZORPAY_HOOK.body, RAZORPAY_HOOK.headers, now=NOW)
    with pytest.raises(SignatureError):
        razorpay("rzp-new-secret").verify_webhook(old.body, old.headers, now=NOW)


@pytest.mark.parametrize(("event", "entities", "expected"), [
    ("payment.authorized", {"payment": {**PAYMENT, "status": "authorized"}},
     ("payment.authorized", "order_9A33XWu170gUtm", "pay_29QQoUBi66xm2f", None, 150000)),
    ("payment.failed", {"payment": {**PAYMENT, "status": "failed"}},
     ("payment.failed", "order_9A33XWu170gUtm", "pay_29QQoUBi66xm2f", None, 150000)),
    ("order.paid", {"payment": PAYMENT, "order": {"id": "order_9A33XWu170gUtm"}},
     ("payment.captured", "order_9A33XWu170gUtm", "pay_29QQoUBi66xm2f", None, 150000)),
    ("refund.processed", {"refund": REFUND, "payment": PAYMENT},
     ("refund.processed", "order_9A33XWu170gUtm", "pay_29QQoUBi66xm2f",
      "rfnd_FS8TWyPrCsa0OB", 50000)),
    ("refund.failed", {"refund": {**REFUND, "status": "failed"}},
     ("refund.failed", None, "pay_29QQoUBi66xm2f", "rfnd_FS8TWyPrCsa0OB", 50000)),
    ("payment.dispute.created", {"payment": PAYMENT},
     ("other", "order_9A33XWu170gUtm", "pay_29QQoUBi66xm2f", None, None)),
])
def test_razorpay_events_are_normalised(event: str, entities: dict[str, Any],
                                        expected: tuple[Any, ...]) -> None:
    hook = RAZORPAY.webhook(event, **entities)
    got = razorpay().verify_webhook(hook.body, hook.headers, now=NOW)
    assert (got.kind, got.order_id, got.payment_id, got.refund_id, got.amount_minor) == expected
    assert got.raw_type == event


# -- Stripe -----------------------------------------------------------------------------------
@pytest.mark.parametrize(("age", "accepted"), [(299, True), (300, True), (301, False),
                                               (-301, False)])
def test_stripe_timestamp_tolerance(age: int, accepted: bool) -> None:
    hook = STRIPE.webhook("payment_intent.succeeded", INTENT, timestamp=NOW - age)
    if accepted:
        assert stripe().verify_webhook(hook.body, hook.headers, now=NOW)
    else:
        with pytest.raises(SignatureError, match="outside the tolerance"):
            stripe().verify_webhook(hook.body, hook.headers, now=NOW)


def test_stripe_tolerance_is_configurable() -> None:
    hook = STRIPE.webhook("payment_intent.succeeded", INTENT, timestamp=NOW - 1000)
    assert stripe(tolerance=1200).verify_webhook(hook.body, hook.headers, now=NOW)


def test_stripe_any_matching_v1_of_several_is_enough() -> None:
    header = STRIPE.sign(STRIPE_HOOK.body, timestamp=NOW, secrets=["whsec_other", "whsec_new"])
    assert header.count("v1=") == 2
    assert stripe().verify_webhook(STRIPE_HOOK.body, {"Stripe-Signature": header}, now=NOW)
    # And a v0 (or any other scheme) is ignored, not checked.
    with_v0 = f"{header},v0=deadbeef"
    assert stripe().verify_webhook(STRIPE_HOOK.body, {"Stripe-Signature": with_v0}, now=NOW)


def test_stripe_old_and_new_secrets_both_verify_during_rotation() -> None:
    rotating = stripe("whsec_new", "whsec_old")
    old = STRIPE.sign(STRIPE_HOOK.body, timestamp=NOW, secrets=["whsec_old"])
    assert rotating.verify_webhook(STRIPE_HOOK.body, {"Stripe-Signature": old}, now=NOW)
    assert rotating.verify_webhook(STRIPE_HOOK.body, STRIPE_HOOK.headers, now=NOW)


@pytest.mark.parametrize(("header", "why"), [
    ("v1=abc", "no timestamp"), ("t=abc,v1=abc", "no timestamp"),
    (f"t={NOW}", "no v1 signature"), (f"t={NOW},v0=abc", "no v1 signature"),
])
def test_stripe_malformed_signature_headers_are_refused(header: str, why: str) -> None:
    with pytest.raises(SignatureError, match=why):
        stripe().verify_webhook(STRIPE_HOOK.body, {"Stripe-Signature": header}, now=NOW)


def test_stripe_the_timestamp_is_part_of_what_is_signed() -> None:
    signature = STRIPE_HOOK.headers["Stripe-Signature"].split(",", 1)[1]
    moved = f"t={NOW + 1},{signature}"
    with pytest.raises(SignatureError, match="bad"):
        stripe().verify_webhook(STRIPE_HOOK.body, {"Stripe-Signature": moved}, now=NOW)


@pytest.mark.parametrize(("event_type", "obj", "expected"), [
    ("payment_intent.amount_capturable_updated",
     {**INTENT, "status": "requires_capture", "amount_capturable": 150000,
      "amount_received": 0},
     ("payment.authorized", INTENT["id"], INTENT["id"], None, 150000)),
    ("payment_intent.payment_failed", {**INTENT, "status": "requires_payment_method"},
     ("payment.failed", INTENT["id"], INTENT["id"], None, 150000)),
    ("refund.updated", STRIPE_REFUND,
     ("refund.processed", INTENT["id"], INTENT["id"], STRIPE_REFUND["id"], 50000)),
    ("refund.failed", {**STRIPE_REFUND, "status": "failed"},
     ("refund.failed", INTENT["id"], INTENT["id"], STRIPE_REFUND["id"], 50000)),
    ("refund.created", {**STRIPE_REFUND, "status": "pending"},
     ("other", INTENT["id"], INTENT["id"], STRIPE_REFUND["id"], 50000)),
    ("charge.refunded", {"id": "ch_1", "object": "charge", "payment_intent": INTENT["id"],
                         "amount_refunded": 50000, "currency": "inr"},
     ("other", INTENT["id"], INTENT["id"], None, None)),
    ("customer.created", {"id": "cus_1", "object": "customer"},
     ("other", None, None, None, None)),
])
def test_stripe_events_are_normalised(event_type: str, obj: dict[str, Any],
                                      expected: tuple[Any, ...]) -> None:
    hook = STRIPE.webhook(event_type, obj)
    got = stripe().verify_webhook(hook.body, hook.headers, now=NOW)
    assert (got.kind, got.order_id, got.payment_id, got.refund_id, got.amount_minor) == expected
    assert (got.raw_type, got.event_id) == (event_type, hook.event_id)


# -- sandbox ----------------------------------------------------------------------------------
def test_sandbox_webhooks_round_trip_and_refuse_tampering() -> None:
    provider = SandboxProvider(SandboxSettings(webhook_secret="dev-secret"))
    body, headers = sandbox_webhook("dev-secret", kind="refund.processed",
                                    order_id="sandbox_order_ab", payment_id="sandbox_pay_ab",
                                    amount_minor=5000, currency="INR",
                                    refund_id="sandbox_refund_cd")
    event = provider.verify_webhook(body, headers, now=NOW)
    assert (event.kind, event.refund_id, event.amount_minor, event.currency) == (
        "refund.processed", "sandbox_refund_cd", 5000, "INR")
    assert event.event_id == headers["X-Sandbox-Event-Id"]
    with pytest.raises(SignatureError, match="bad"):
        provider.verify_webhook(body.replace(b"5000", b"9000"), headers, now=NOW)
    with pytest.raises(SignatureError, match="bad"):
        other, other_headers = sandbox_webhook("not-the-secret", kind="payment.captured",
                                               order_id="o", payment_id="p",
                                               amount_minor=1, currency="INR")
        provider.verify_webhook(other, other_headers, now=NOW)
    with pytest.raises(SignatureError, match="missing X-Sandbox-Signature"):
        provider.verify_webhook(body, {"X-Sandbox-Event-Id": "e"}, now=NOW)


# -- over HTTP --------------------------------------------------------------------------------
async def test_a_delivered_webhook_verifies_from_the_raw_request_body() -> None:
    """``deliver`` POSTs the exact bytes; an endpoint verifying ``await request.read()``
    accepts them."""
    provider = razorpay()
    seen: list[WebhookEvent] = []

    async def endpoint(request: web.Request) -> web.Response:
        try:
            seen.append(provider.verify_webhook(await request.read(), request.headers,
                                                now=NOW))
        except SignatureError as exc:
            return web.Response(status=400, text=str(exc))
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/hooks/razorpay", endpoint)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/hooks/razorpay"
    try:
        assert await RAZORPAY.deliver(url, RAZORPAY_HOOK) == (200, "ok")
        forged = Webhook(RAZORPAY_HOOK.event_id, RAZORPAY_HOOK.event_type,
                         RAZORPAY_HOOK.body + b" ", RAZORPAY_HOOK.headers)
        status, text = await RAZORPAY.deliver(url, forged)
        assert status == 400 and "bad X-Razorpay-Signature" in text
    finally:
        await runner.cleanup()
    assert [e.event_id for e in seen] == [RAZORPAY_HOOK.event_id]
