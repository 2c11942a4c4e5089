"""A Stripe-compatible client (form-encoded bodies, ``Authorization: Bearer <secret key>``,
an ``Idempotency-Key`` header on every POST).

* ``create_order``: ``POST /v1/payment_intents`` (``amount``, ``currency`` in lower case,
  ``metadata[reference]``, ``automatic_payment_methods[enabled]``, ``capture_method``); the
  intent is the order and also the payment: ``pi_...`` is both ids.
* ``fetch``: ``GET /v1/payment_intents/{id}``.
* ``capture``: ``POST /v1/payment_intents/{id}/capture`` with ``amount_to_capture``; its
  idempotency key is derived from the intent and the amount, so a repeat replays the answer.
* ``refund``: ``POST /v1/refunds`` (``payment_intent``, ``amount``).
* ``settlements``: ``GET /v1/balance_transactions`` created during the day (UTC), following
  ``has_more``, with ``expand[]=data.source`` to map charges to their payment intents.
* Webhooks: ``Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>...]``; each ``v1`` is the hex
  HMAC-SHA256 of ``"<t>." + raw body`` under an endpoint secret.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

import aiohttp
import orjson

from propmubi_plugins.payments.providers.base import (
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
from propmubi_plugins.payments.providers.settings import StripeSettings
from propmubi_plugins.payments.providers.transport import ProviderHttp, read_answer, segment

__all__ = ["StripeProvider"]

_INTENT_STATUS = {"requires_payment_method": "created", "requires_confirmation": "attempted",
                  "requires_action": "attempted", "processing": "attempted",
                  "requires_capture": "authorized", "succeeded": "captured",
                  "canceled": "failed"}
_REFUND_STATUS = {"pending": "pending", "requires_action": "pending",
                  "succeeded": "processed", "failed": "failed", "canceled": "failed"}
_INTENT_EVENTS = {"payment_intent.succeeded": "payment.captured",
                  "payment_intent.amount_capturable_updated": "payment.authorized",
                  "payment_intent.payment_failed": "payment.failed",
                  "payment_intent.canceled": "payment.failed"}
#: Events whose object is a Refund; its status says processed or failed.
_REFUND_EVENTS = frozenset({"refund.created", "refund.updated", "refund.failed",
                            "charge.refund.updated"})
_SETTLED_KINDS = {"charge": "payment", "payment": "payment",
                  "refund": "refund", "payment_refund": "refund"}


class StripeProvider:
    """The :class:`~propmubi_plugins.payments.providers.base.PaymentProvider` for Stripe.

    :param session: an aiohttp session to share (the caller closes it); None: one of its own.
    """

    name = "stripe"
    #: Objects per page of the balance transactions listing (the API allows up to 100).
    page_size = 100

    def __init__(self, settings: StripeSettings,
                 session: aiohttp.ClientSession | None = None) -> None:
        self.settings = settings
        self.http = ProviderHttp(self.name, settings.base_url, timeout=settings.timeout,
                                 session=session,
                                 headers={"Authorization": f"Bearer {settings.secret_key}"})

    async def close(self) -> None:
        """Close the HTTP session if this provider opened it."""
        await self.http.close()

    async def _post(self, operation: str, path: str, form: list[tuple[str, str]],
                    idempotency_key: str) -> dict[str, Any]:
        return await self.http.request(operation, "POST", path, form=form,
                                       headers={"Idempotency-Key": idempotency_key})

    async def create_order(self, *, reference: str, amount_minor: int, currency: str,
                           idempotency_key: str) -> ProviderOrder:
        """``POST /v1/payment_intents``; the checkout gets the client secret and the
        publishable key."""
        check_money(amount_minor, currency)
        form = [("amount", str(amount_minor)), ("currency", currency.lower()),
                ("metadata[reference]", reference),
                ("automatic_payment_methods[enabled]", "true"),
                ("capture_method", self.settings.capture_method)]
        intent = await self._post("create_order", "/v1/payment_intents", form,
                                  idempotency_key)
        order_id, secret = read_answer(self.name, intent,
                                       lambda i: (str(i["id"]), str(i["client_secret"])))
        return ProviderOrder(order_id=order_id, client={
            "client_secret": secret, "publishable_key": self.settings.publishable_key,
            "amount": amount_minor, "currency": currency})

    async def fetch(self, order_id: str) -> ProviderPayment:
        """``GET /v1/payment_intents/{id}``. An intent back at ``requires_payment_method``
        after a declined attempt (``last_payment_error`` set) reads as ``failed``."""
        path = f"/v1/payment_intents/{segment(order_id)}"
        intent = await self.http.request("fetch", "GET", path)
        return read_answer(self.name, intent, _intent_state)

    async def capture(self, payment_id: str, amount_minor: int, currency: str
                      ) -> ProviderPayment:
        """``POST /v1/payment_intents/{id}/capture``. Stripe's capture takes no currency:
        the answer carries the intent's, for the caller to compare with ``currency``."""
        check_money(amount_minor, currency)
        path = f"/v1/payment_intents/{segment(payment_id)}/capture"
        intent = await self._post("capture", path, [("amount_to_capture", str(amount_minor))],
                                  f"capture-{payment_id}-{amount_minor}")
        return read_answer(self.name, intent, _intent_state)

    async def refund(self, payment_id: str, amount_minor: int, *, idempotency_key: str
                     ) -> ProviderRefund:
        """``POST /v1/refunds`` for the intent; Stripe replays the first answer for a
        repeated idempotency key."""
        if type(amount_minor) is not int or amount_minor <= 0:
            raise ValueError(f"amount_minor must be a positive int, not {amount_minor!r}")
        refund = await self._post("refund", "/v1/refunds",
                                  [("payment_intent", payment_id),
                                   ("amount", str(amount_minor))], idempotency_key)
        return read_answer(self.name, refund, _refund_state)

    async def settlements(self, day: datetime.date) -> list[SettlementLine]:
        """Balance transactions created on ``day`` (UTC) of the charge and refund types:
        a charge line names its payment intent, a refund line its refund (``re_...``);
        amounts are positive, ``fee_minor`` is Stripe's ``fee``."""
        start = int(datetime.datetime.combine(day, datetime.time(),
                                              datetime.UTC).timestamp())
        base = [("created[gte]", str(start)), ("created[lt]", str(start + 86400)),
                ("limit", str(self.page_size)), ("expand[]", "data.source")]
        lines: list[SettlementLine] = []
        after: str | None = None
        while True:
            params = base + ([("starting_after", after)] if after else [])
            page = await self.http.request("settlements", "GET", "/v1/balance_transactions",
                                           params=params)
            rows, more = read_answer(self.name, page,
                                     lambda p: (list(p["data"]), bool(p["has_more"])))
            lines.extend(read_answer(self.name, rows, lambda r: _settlement_lines(r, day)))
            if not more or not rows:
                return lines
            after = str(rows[-1]["id"])

    def verify_webhook(self, raw_body: bytes, headers: Mapping[str, str], *, now: float
                       ) -> WebhookEvent:
        """Check ``Stripe-Signature``: valid when any ``v1`` matches any configured secret
        and the signed timestamp is within ``tolerance`` seconds of ``now`` (unix time)."""
        value = header(headers, "Stripe-Signature")
        if not value:
            raise SignatureError("missing Stripe-Signature header")
        timestamp, signatures = _parse_signature(value)
        if not self.settings.webhook_secrets:
            raise SignatureError("no Stripe webhook secret is configured")
        signed = timestamp.encode() + b"." + raw_body
        expected = [hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest().encode()
                    for secret in self.settings.webhook_secrets]
        matches = [hmac.compare_digest(want, given)
                   for want in expected for given in signatures]
        if not any(matches):
            raise SignatureError("bad Stripe-Signature: no v1 signature matches a secret")
        if abs(now - int(timestamp)) > self.settings.tolerance:
            raise SignatureError(f"Stripe-Signature timestamp {timestamp} is outside the "
                                 f"tolerance of {self.settings.tolerance} s")
        try:
            return _event(orjson.loads(raw_body))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise SignatureError(f"not a Stripe event: {exc!r}") from exc


def _parse_signature(value: str) -> tuple[str, list[bytes]]:
    """``t`` and the ``v1`` signatures of a Stripe-Signature header (other schemes are
    ignored, as Stripe documents)."""
    timestamp = ""
    signatures: list[bytes] = []
    for item in value.split(","):
        key, _, text = item.strip().partition("=")
        if key == "t":
            timestamp = text
        elif key == "v1" and text:
            signatures.append(text.lower().encode("utf-8", "replace"))
    if not timestamp.isascii() or not timestamp.isdigit():
        raise SignatureError("Stripe-Signature has no timestamp (t=)")
    if not signatures:
        raise SignatureError("Stripe-Signature has no v1 signature")
    return timestamp, signatures


def _intent_state(intent: dict[str, Any]) -> ProviderPayment:
    status = _INTENT_STATUS[intent["status"]]
    if status == "created" and intent.get("last_payment_error"):
        status = "failed"
    amount = minor_units(intent["amount"], "amount")
    if status == "captured":
        amount = minor_units(intent["amount_received"], "amount_received")
    return ProviderPayment(order_id=str(intent["id"]),
                           payment_id=None if status == "created" else str(intent["id"]),
                           status=status, amount_minor=amount,
                           currency=str(intent["currency"]).upper())


def _refund_state(refund: dict[str, Any]) -> ProviderRefund:
    return ProviderRefund(refund_id=str(refund["id"]), payment_id=str(refund["payment_intent"]),
                          amount_minor=minor_units(refund["amount"], "amount"),
                          status=_REFUND_STATUS[refund["status"]])


def _settlement_lines(rows: list[dict[str, Any]], day: datetime.date) -> list[SettlementLine]:
    lines: list[SettlementLine] = []
    for row in rows:
        kind = _SETTLED_KINDS.get(row["type"])
        if kind is None:
            continue
        source = row["source"]
        if isinstance(source, dict):
            provider_id = source["payment_intent"] if kind == "payment" else source["id"]
        else:
            provider_id = source
        lines.append(SettlementLine(kind=kind, provider_id=str(provider_id),
                                    amount_minor=abs(minor_units(row["amount"], "amount")),
                                    fee_minor=minor_units(row["fee"], "fee"),
                                    currency=str(row["currency"]).upper(), settled_on=day))
    return lines


def _event(event: dict[str, Any]) -> WebhookEvent:
    raw_type = str(event["type"])
    obj = event["data"]["object"]
    event_id = str(event["id"])
    currency = str(obj["currency"]).upper() if obj.get("currency") else None
    if raw_type in _INTENT_EVENTS:
        kind = _INTENT_EVENTS[raw_type]
        field = {"payment.captured": "amount_received",
                 "payment.authorized": "amount_capturable"}.get(kind, "amount")
        return WebhookEvent(event_id=event_id, kind=kind, order_id=str(obj["id"]),
                            payment_id=str(obj["id"]), refund_id=None,
                            amount_minor=minor_units(obj[field], field), currency=currency,
                            raw_type=raw_type)
    if raw_type in _REFUND_EVENTS:
        status = _REFUND_STATUS.get(obj["status"], "pending")
        kind = {"processed": "refund.processed", "failed": "refund.failed"}.get(status, "other")
        intent = obj.get("payment_intent")
        return WebhookEvent(event_id=event_id, kind=kind, order_id=intent, payment_id=intent,
                            refund_id=str(obj["id"]),
                            amount_minor=minor_units(obj["amount"], "amount"),
                            currency=currency, raw_type=raw_type)
    # charge.refunded among them: its Charge names no refund (refund.* events do).
    intent = obj.get("payment_intent") if obj.get("object") == "charge" else None
    return WebhookEvent(event_id=event_id, kind="other", order_id=intent, payment_id=intent,
                        refund_id=None, amount_minor=None, currency=None, raw_type=raw_type)
