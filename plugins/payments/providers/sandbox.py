"""A development provider that makes no network call and stores nothing.

Ids are derived from the idempotency key (``sandbox_order_<hex>``, ``sandbox_refund_<hex>``),
so the same key gives the same id. The sandbox cannot know what happened to an order: every
outcome arrives as a webhook that a developer's tool produces with :func:`sandbox_webhook`
(signed like Razorpay's: hex HMAC-SHA256 of the raw body, header ``X-Sandbox-Signature``, the
event id in ``X-Sandbox-Event-Id``). So:

* ``fetch`` always answers ``created``, amount 0 in ``XXX`` (ISO 4217's "no currency"): the
  sandbox does not know the amount, and a poll must not change anything;
* ``capture`` answers ``captured`` for the amount asked;
* ``refund`` answers ``pending``; the ``refund.processed`` webhook comes from the tool;
* ``settlements`` is always empty: nothing is settled in the sandbox.

Nothing stops it in production but the configuration: the payments plugin should refuse it
there.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import secrets
from collections.abc import Mapping
from typing import Any

import orjson

from propmubi_plugins.payments.providers.base import (
    WEBHOOK_KINDS,
    ProviderOrder,
    ProviderPayment,
    ProviderRefund,
    SettlementLine,
    SignatureError,
    WebhookEvent,
    check_money,
    header,
    minor_units,
)
from propmubi_plugins.payments.providers.settings import SandboxSettings

__all__ = ["SandboxProvider", "sandbox_payment_id", "sandbox_webhook"]

_ORDER = "sandbox_order_"
_PAYMENT = "sandbox_pay_"
SIGNATURE_HEADER = "X-Sandbox-Signature"
EVENT_ID_HEADER = "X-Sandbox-Event-Id"


def _derived(prefix: str, key: str) -> str:
    return prefix + hashlib.sha256(key.encode()).hexdigest()[:20]


def _sign(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def sandbox_payment_id(order_id: str) -> str:
    """The payment id the dev tools give an order's payment (``sandbox_pay_<hex>``)."""
    return _PAYMENT + order_id.removeprefix(_ORDER)


def sandbox_webhook(secret: str, *, kind: str, order_id: str, payment_id: str,
                    amount_minor: int, currency: str, refund_id: str | None = None
                    ) -> tuple[bytes, dict[str, str]]:
    """A body and headers that :meth:`SandboxProvider.verify_webhook` accepts.

    :param kind: one of the normalised webhook kinds (``payment.captured``...); the
        ``refund.*`` kinds need ``refund_id``.
    :returns: the raw body to POST and its headers (signature, event id, content type).
    """
    if kind not in WEBHOOK_KINDS:
        raise ValueError(f"unknown webhook kind {kind!r}")
    if kind.startswith("refund.") and not refund_id:
        raise ValueError(f"a {kind} webhook needs refund_id")
    check_money(amount_minor, currency)
    event_id = "sandbox_evt_" + secrets.token_hex(10)
    body = orjson.dumps({"id": event_id, "kind": kind, "order_id": order_id,
                         "payment_id": payment_id, "refund_id": refund_id,
                         "amount_minor": amount_minor, "currency": currency})
    return body, {"Content-Type": "application/json", EVENT_ID_HEADER: event_id,
                  SIGNATURE_HEADER: _sign(secret, body)}


class SandboxProvider:
    """The :class:`~propmubi_plugins.payments.providers.base.PaymentProvider` for
    development: pure functions of its arguments (see the module's docstring)."""

    name = "sandbox"

    def __init__(self, settings: SandboxSettings) -> None:
        self.settings = settings

    async def close(self) -> None:
        """Nothing to release."""

    async def create_order(self, *, reference: str, amount_minor: int, currency: str,
                           idempotency_key: str) -> ProviderOrder:
        """An order id derived from ``idempotency_key``; the client gets the order's data."""
        check_money(amount_minor, currency)
        order_id = _derived(_ORDER, idempotency_key)
        return ProviderOrder(order_id=order_id, client={
            "sandbox": True, "order_id": order_id, "payment_id": sandbox_payment_id(order_id),
            "reference": reference, "amount": amount_minor, "currency": currency})

    async def fetch(self, order_id: str) -> ProviderPayment:
        """Always ``created``, amount 0 in ``XXX``: outcomes come only as webhooks."""
        return ProviderPayment(order_id=order_id, payment_id=None, status="created",
                               amount_minor=0, currency="XXX")

    async def capture(self, payment_id: str, amount_minor: int, currency: str
                      ) -> ProviderPayment:
        """``captured`` for the amount asked; the order id is read back from a payment id
        made by :func:`sandbox_payment_id` (another id stands for itself)."""
        check_money(amount_minor, currency)
        order_id = (_ORDER + payment_id.removeprefix(_PAYMENT)
                    if payment_id.startswith(_PAYMENT) else payment_id)
        return ProviderPayment(order_id=order_id, payment_id=payment_id, status="captured",
                               amount_minor=amount_minor, currency=currency)

    async def refund(self, payment_id: str, amount_minor: int, *, idempotency_key: str
                     ) -> ProviderRefund:
        """A ``pending`` refund whose id is derived from ``idempotency_key``."""
        if type(amount_minor) is not int or amount_minor <= 0:
            raise ValueError(f"amount_minor must be a positive int, not {amount_minor!r}")
        return ProviderRefund(refund_id=_derived("sandbox_refund_", idempotency_key),
                              payment_id=payment_id, amount_minor=amount_minor,
                              status="pending")

    async def settlements(self, day: datetime.date) -> list[SettlementLine]:
        """Always empty: the sandbox settles nothing."""
        return []

    def verify_webhook(self, raw_body: bytes, headers: Mapping[str, str], *, now: float
                       ) -> WebhookEvent:
        """Check ``X-Sandbox-Signature`` (hex HMAC-SHA256 of the raw body); ``now`` is not
        used."""
        signature = header(headers, SIGNATURE_HEADER)
        if not signature:
            raise SignatureError(f"missing {SIGNATURE_HEADER} header")
        event_id = header(headers, EVENT_ID_HEADER)
        if not event_id:
            raise SignatureError(f"missing {EVENT_ID_HEADER} header")
        if not self.settings.webhook_secret:
            raise SignatureError("no sandbox webhook secret is configured")
        expected = _sign(self.settings.webhook_secret, raw_body).encode()
        if not hmac.compare_digest(expected, signature.strip().lower().encode("utf-8",
                                                                              "replace")):
            raise SignatureError(f"bad {SIGNATURE_HEADER}")
        try:
            event: dict[str, Any] = orjson.loads(raw_body)
            amount = event.get("amount_minor")
            kind = event["kind"]
            return WebhookEvent(
                event_id=event_id, kind=kind if kind in WEBHOOK_KINDS else "other",
                order_id=event.get("order_id"), payment_id=event.get("payment_id"),
                refund_id=event.get("refund_id"),
                amount_minor=None if amount is None else minor_units(amount, "amount_minor"),
                currency=event.get("currency"), raw_type=str(kind))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise SignatureError(f"not a sandbox event: {exc!r}") from exc
