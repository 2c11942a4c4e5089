"""A Razorpay-compatible client (REST API v1, JSON bodies, basic auth ``key_id:key_secret``).

* ``create_order``: ``POST /v1/orders`` with ``amount``, ``currency``, ``receipt`` (our
  reference) and ``notes``. Razorpay's orders API takes no idempotency key: a retried create
  may open a second order. That is harmless (an unpaid order expires and checkout only pays the
  order it was given); the idempotency key is stored in the order's notes, so duplicates can
  be told apart, and ``receipt`` is the handle to find our orders by.
* ``fetch``: ``GET /v1/orders/{id}`` and ``GET /v1/orders/{id}/payments``.
* ``capture``: ``POST /v1/payments/{id}/capture``; when Razorpay refuses it, the payment is
  read back, so a capture repeated after a lost answer returns the captured payment.
* ``refund``: ``POST /v1/payments/{id}/refund`` with the documented ``X-Refund-Idempotency``
  header (the same key and body give the same refund).
* ``settlements``: ``GET /v1/settlements/recon/combined?year=&month=&day=``, page by page.
* Webhooks: ``X-Razorpay-Signature`` is the hex HMAC-SHA256 of the raw body under the webhook
  secret; ``X-Razorpay-Event-Id`` is the event's id.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import re
from collections.abc import Mapping
from typing import Any

import aiohttp
import orjson

from propmubi_plugins.payments.providers.base import (
    ProviderError,
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
from propmubi_plugins.payments.providers.settings import RazorpaySettings
from propmubi_plugins.payments.providers.transport import ProviderHttp, read_answer, segment

__all__ = ["RazorpayProvider"]

#: Razorpay payment status -> normalised status. A refunded payment was captured (its refunds
#: are tracked on their own); ``created`` and ``pending`` are attempts still in progress.
_PAYMENT_STATUS = {"created": "attempted", "pending": "attempted", "authorized": "authorized",
                   "captured": "captured", "refunded": "captured", "failed": "failed"}
#: Which payment of an order speaks for it, best first.
_RANK = ("captured", "authorized", "attempted", "failed")
_ORDER_STATUS = {"created": "created", "attempted": "attempted", "paid": "captured"}
_REFUND_STATUS = {"pending": "pending", "processed": "processed", "failed": "failed"}
_PAYMENT_EVENTS = {"payment.authorized": "payment.authorized",
                   "payment.captured": "payment.captured",
                   "payment.failed": "payment.failed",
                   # Sent when the order's payment is captured; it carries that payment.
                   "order.paid": "payment.captured"}
_REFUND_EVENTS = {"refund.processed": "refund.processed", "refund.failed": "refund.failed"}
#: What Razorpay accepts in X-Refund-Idempotency: 10 or more of these characters.
_IDEMPOTENCY_KEY = re.compile(r"[A-Za-z0-9_-]{10,}")
_RECEIPT_MAX = 40


class RazorpayProvider:
    """The :class:`~propmubi_plugins.payments.providers.base.PaymentProvider` for Razorpay.

    :param session: an aiohttp session to share (the caller closes it); None: one of its own.
    """

    name = "razorpay"
    #: Items per page of the settlement recon listing (the API allows up to 1000).
    page_size = 1000

    def __init__(self, settings: RazorpaySettings,
                 session: aiohttp.ClientSession | None = None) -> None:
        self.settings = settings
        self.http = ProviderHttp(
            self.name, settings.base_url, timeout=settings.timeout, session=session,
            headers={"Authorization": aiohttp.encode_basic_auth(settings.key_id,
                                                                settings.key_secret)})

    async def close(self) -> None:
        """Close the HTTP session if this provider opened it."""
        await self.http.close()

    async def create_order(self, *, reference: str, amount_minor: int, currency: str,
                           idempotency_key: str) -> ProviderOrder:
        """``POST /v1/orders``; ``reference`` (at most 40 characters) is the receipt."""
        check_money(amount_minor, currency)
        if not reference or len(reference) > _RECEIPT_MAX:
            raise ValueError(f"a Razorpay receipt has 1 to {_RECEIPT_MAX} characters: "
                             f"{reference!r}")
        body = {"amount": amount_minor, "currency": currency, "receipt": reference,
                "notes": {"reference": reference, "idempotency_key": idempotency_key}}
        order = await self.http.request("create_order", "POST", "/v1/orders", json=body)
        order_id = read_answer(self.name, order, lambda o: str(o["id"]))
        return ProviderOrder(order_id=order_id, client={
            "key": self.settings.key_id, "order_id": order_id, "amount": amount_minor,
            "currency": currency})

    async def fetch(self, order_id: str) -> ProviderPayment:
        """The order and its payments; the best payment speaks for the order (captured, then
        authorized, then one in progress, then failed), the order itself while it has none."""
        path = f"/v1/orders/{segment(order_id)}"
        order = await self.http.request("fetch", "GET", path)
        listing = await self.http.request("fetch", "GET", f"{path}/payments")
        return read_answer(self.name, listing, lambda data: _order_state(order, data["items"]))

    async def capture(self, payment_id: str, amount_minor: int, currency: str
                      ) -> ProviderPayment:
        """``POST /v1/payments/{id}/capture`` of the authorized amount."""
        check_money(amount_minor, currency)
        try:
            payment = await self.http.request(
                "capture", "POST", f"/v1/payments/{segment(payment_id)}/capture",
                json={"amount": amount_minor, "currency": currency})
        except ProviderError as refused:
            if refused.status != 400:
                raise
            # Captured already (by an earlier attempt whose answer was lost)? Then that is
            # the answer; anything else keeps the refusal.
            try:
                payment = await self.http.request("capture", "GET",
                                                  f"/v1/payments/{segment(payment_id)}")
                state = read_answer(self.name, payment, _payment_state)
            except ProviderError:
                raise refused from None
            if (state.status != "captured" or state.amount_minor != amount_minor
                    or state.currency != currency):
                raise refused from None
            return state
        return read_answer(self.name, payment, _payment_state)

    async def refund(self, payment_id: str, amount_minor: int, *, idempotency_key: str
                     ) -> ProviderRefund:
        """``POST /v1/payments/{id}/refund`` with ``X-Refund-Idempotency``. A key Razorpay
        would refuse (shorter than 10, or other characters than letters, digits, ``-`` and
        ``_``) is replaced by its SHA-256 in hex, which is as unique and as repeatable."""
        if type(amount_minor) is not int or amount_minor <= 0:
            raise ValueError(f"amount_minor must be a positive int, not {amount_minor!r}")
        key = idempotency_key
        if not _IDEMPOTENCY_KEY.fullmatch(key):
            key = hashlib.sha256(key.encode()).hexdigest()
        refund = await self.http.request(
            "refund", "POST", f"/v1/payments/{segment(payment_id)}/refund",
            json={"amount": amount_minor, "speed": "normal"},
            headers={"X-Refund-Idempotency": key})
        return read_answer(self.name, refund, _refund_state)

    async def settlements(self, day: datetime.date) -> list[SettlementLine]:
        """The payments and refunds of the settlement recon of ``day``; transfers,
        adjustments and the like are left out. ``fee_minor`` is Razorpay's ``fee``, which
        includes the tax on it."""
        lines: list[SettlementLine] = []
        skip = 0
        while True:
            params = [("year", str(day.year)), ("month", f"{day.month:02d}"),
                      ("day", f"{day.day:02d}"), ("count", str(self.page_size)),
                      ("skip", str(skip))]
            page = await self.http.request("settlements", "GET",
                                           "/v1/settlements/recon/combined", params=params)
            items = read_answer(self.name, page, lambda p: list(p["items"]))
            lines.extend(read_answer(self.name, items, lambda rows: _settlement_lines(rows, day)))
            if len(items) < self.page_size:
                return lines
            skip += len(items)

    def verify_webhook(self, raw_body: bytes, headers: Mapping[str, str], *, now: float
                       ) -> WebhookEvent:
        """Check ``X-Razorpay-Signature`` against every configured webhook secret (any may
        match: rotation), then read the event. ``now`` is not used: Razorpay signs no time."""
        signature = header(headers, "X-Razorpay-Signature")
        if not signature:
            raise SignatureError("missing X-Razorpay-Signature header")
        event_id = header(headers, "X-Razorpay-Event-Id")
        if not event_id:
            raise SignatureError("missing X-Razorpay-Event-Id header")
        if not self.settings.webhook_secrets:
            raise SignatureError("no Razorpay webhook secret is configured")
        given = signature.strip().lower().encode("utf-8", "replace")
        matches = [hmac.compare_digest(hmac.new(secret.encode(), raw_body,
                                                hashlib.sha256).hexdigest().encode(), given)
                   for secret in self.settings.webhook_secrets]
        if not any(matches):
            raise SignatureError("bad X-Razorpay-Signature: no webhook secret matches")
        try:
            return _event(event_id, orjson.loads(raw_body))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise SignatureError(f"not a Razorpay event: {exc!r}") from exc


def _payment_state(payment: dict[str, Any]) -> ProviderPayment:
    return ProviderPayment(order_id=str(payment["order_id"]), payment_id=str(payment["id"]),
                           status=_PAYMENT_STATUS[payment["status"]],
                           amount_minor=minor_units(payment["amount"], "amount"),
                           currency=str(payment["currency"]).upper())


def _order_state(order: dict[str, Any], payments: list[dict[str, Any]]) -> ProviderPayment:
    states = sorted((_payment_state(p) for p in payments),
                    key=lambda s: _RANK.index(s.status))
    if states:
        return states[0]
    return ProviderPayment(order_id=str(order["id"]), payment_id=None,
                           status=_ORDER_STATUS[order["status"]],
                           amount_minor=minor_units(order["amount"], "amount"),
                           currency=str(order["currency"]).upper())


def _refund_state(refund: dict[str, Any]) -> ProviderRefund:
    return ProviderRefund(refund_id=str(refund["id"]), payment_id=str(refund["payment_id"]),
                          amount_minor=minor_units(refund["amount"], "amount"),
                          status=_REFUND_STATUS[refund["status"]])


def _settlement_lines(items: list[dict[str, Any]], day: datetime.date) -> list[SettlementLine]:
    return [SettlementLine(kind=item["type"], provider_id=str(item["entity_id"]),
                           amount_minor=minor_units(item["amount"], "amount"),
                           fee_minor=minor_units(item["fee"], "fee"),
                           currency=str(item["currency"]).upper(), settled_on=day)
            for item in items
            if item["type"] in ("payment", "refund") and item.get("settled", True)]


def _event(event_id: str, event: dict[str, Any]) -> WebhookEvent:
    raw_type = str(event["event"])
    payload = event["payload"]
    payment = (payload.get("payment") or {}).get("entity") or {}
    refund = (payload.get("refund") or {}).get("entity") or {}
    if raw_type in _REFUND_EVENTS:
        return WebhookEvent(
            event_id=event_id, kind=_REFUND_EVENTS[raw_type],
            order_id=payment.get("order_id"), payment_id=str(refund["payment_id"]),
            refund_id=str(refund["id"]), amount_minor=minor_units(refund["amount"], "amount"),
            currency=str(refund["currency"]).upper(), raw_type=raw_type)
    if raw_type in _PAYMENT_EVENTS:
        return WebhookEvent(
            event_id=event_id, kind=_PAYMENT_EVENTS[raw_type],
            order_id=str(payment["order_id"]), payment_id=str(payment["id"]), refund_id=None,
            amount_minor=minor_units(payment["amount"], "amount"),
            currency=str(payment["currency"]).upper(), raw_type=raw_type)
    return WebhookEvent(event_id=event_id, kind="other", order_id=payment.get("order_id"),
                        payment_id=payment.get("id"), refund_id=refund.get("id"),
                        amount_minor=None, currency=None, raw_type=raw_type)
