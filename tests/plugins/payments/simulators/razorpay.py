"""A Razorpay API simulator on loopback, speaking the documented JSON formats.

Routes: ``POST /v1/orders``, ``GET /v1/orders/{id}``, ``GET /v1/orders/{id}/payments``,
``GET /v1/payments/{id}``, ``POST /v1/payments/{id}/capture``, ``POST /v1/payments/{id}/refund``
(``X-Refund-Idempotency``: the same key and body give the same refund, another body with the
key is a 400), ``GET /v1/refunds/{id}``, ``GET /v1/settlements/recon/combined``. Basic auth
with the simulator's key; a wrong one is a 401 in Razorpay's error format.

The test drives what Razorpay's side would do: :meth:`pay` (a customer's payment),
:meth:`process_refund`, :meth:`settle`. Each returns the webhook Razorpay would send
(``X-Razorpay-Signature``: hex HMAC-SHA256 of the body; ``X-Razorpay-Event-Id``), also kept
in :attr:`webhooks`; an API capture emits ``payment.captured`` there too.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import time
from typing import Any

import orjson
from aiohttp import web

from propmubi_plugins.payments.providers.settings import RazorpaySettings
from tests.plugins.payments.simulators.server import (
    LoopbackServer,
    Webhook,
    json_body,
    random_id,
)

__all__ = ["RazorpaySimulator"]


class RazorpaySimulator(LoopbackServer):
    """Razorpay, in memory.

    :param fee_bps: the fee on a settled payment, in basis points (tax included); refunds
        carry no fee.
    """

    def __init__(self, *, key_id: str = "rzp_test_simulator", key_secret: str = "sim-secret",
                 webhook_secret: str = "rzp-webhook-secret", fee_bps: int = 236) -> None:
        super().__init__()
        self.key_id = key_id
        self.key_secret = key_secret
        self.webhook_secret = webhook_secret
        self.fee_bps = fee_bps
        self.orders: dict[str, dict[str, Any]] = {}
        self.payments: dict[str, dict[str, Any]] = {}
        self.refunds: dict[str, dict[str, Any]] = {}
        self.recon: list[dict[str, Any]] = []  # settled items, as the recon API lists them
        self._refund_keys: dict[str, tuple[bytes, str]] = {}  # key -> (request, refund id)

    def settings(self, **changes: Any) -> RazorpaySettings:
        """Provider settings that talk to this simulator (a 2 s timeout), with ``changes``."""
        values: dict[str, Any] = {"base_url": self.base_url, "key_id": self.key_id,
                                  "key_secret": self.key_secret,
                                  "webhook_secrets": (self.webhook_secret,), "timeout": 2.0}
        return RazorpaySettings(**{**values, **changes})

    # -- the server ---------------------------------------------------------------------------
    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/orders", self._create_order)
        app.router.add_get("/v1/orders/{id}", self._get_order)
        app.router.add_get("/v1/orders/{id}/payments", self._order_payments)
        app.router.add_get("/v1/payments/{id}", self._get_payment)
        app.router.add_post("/v1/payments/{id}/capture", self._capture)
        app.router.add_post("/v1/payments/{id}/refund", self._refund)
        app.router.add_get("/v1/refunds/{id}", self._get_refund)
        app.router.add_get("/v1/settlements/recon/combined", self._recon)

    def authenticate(self, request: web.Request) -> web.Response | None:
        expected = "Basic " + base64.b64encode(
            f"{self.key_id}:{self.key_secret}".encode()).decode()
        if not hmac.compare_digest(request.headers.get("Authorization", ""), expected):
            return self.error(401, "Authentication failed")
        return None

    def error(self, status: int, message: str, **fields: Any) -> web.Response:
        code = "SERVER_ERROR" if status >= 500 else "BAD_REQUEST_ERROR"
        return web.json_response({"error": {
            "code": code, "description": message, "source": "NA", "step": "NA",
            "reason": "NA", "metadata": {}, "field": fields.get("field")}}, status=status)

    def _missing(self) -> web.Response:
        return self.error(400, "The id provided does not exist")

    async def _create_order(self, request: web.Request) -> web.Response:
        body = await _json(request)
        amount, currency = body.get("amount"), body.get("currency")
        if type(amount) is not int or amount < 100:
            return self.error(400, "The amount must be atleast INR 1.00", field="amount")
        if not isinstance(currency, str) or len(currency) != 3:
            return self.error(400, "The currency field is invalid", field="currency")
        order: dict[str, Any] = {"id": random_id("order_"), "entity": "order", "amount": amount,
                                 "amount_paid": 0, "amount_due": amount, "currency": currency,
                                 "receipt": body.get("receipt"), "offer_id": None,
                                 "status": "created", "attempts": 0,
                                 "notes": body.get("notes") or [], "created_at": _now()}
        self.orders[order["id"]] = order
        return web.json_response(order)

    async def _get_order(self, request: web.Request) -> web.Response:
        order = self.orders.get(request.match_info["id"])
        return web.json_response(order) if order else self._missing()

    async def _order_payments(self, request: web.Request) -> web.Response:
        order_id = request.match_info["id"]
        if order_id not in self.orders:
            return self._missing()
        items = self.payments_of(order_id)
        return web.json_response({"entity": "collection", "count": len(items), "items": items})

    async def _get_payment(self, request: web.Request) -> web.Response:
        payment = self.payments.get(request.match_info["id"])
        return web.json_response(payment) if payment else self._missing()

    async def _capture(self, request: web.Request) -> web.Response:
        payment = self.payments.get(request.match_info["id"])
        if payment is None:
            return self._missing()
        body = await _json(request)
        if payment["status"] == "captured":
            return self.error(400, "This payment has already been captured")
        if payment["status"] != "authorized":
            return self.error(400, "Only payments which have been authorized and not yet "
                                   "captured can be captured")
        if body.get("amount") != payment["amount"]:
            return self.error(400, "Capture amount must be equal to the amount authorized",
                              field="amount")
        if body.get("currency") != payment["currency"]:
            return self.error(400, "The currency should be same as the payment currency",
                              field="currency")
        self._mark_captured(payment)
        self._emit(self._payment_event("payment.captured", payment))
        return web.json_response(payment)

    async def _refund(self, request: web.Request) -> web.Response:
        payment = self.payments.get(request.match_info["id"])
        if payment is None:
            return self._missing()
        raw = await request.read()
        key = request.headers.get("X-Refund-Idempotency")
        if key is not None and key in self._refund_keys:
            first, refund_id = self._refund_keys[key]
            if first != raw:
                return self.error(400, "Different request with the same idempotency key has "
                                       "already been processed.")
            return web.json_response(self.refunds[refund_id])
        body = await _json(request)
        amount = body.get("amount", payment["amount"] - payment["amount_refunded"])
        if payment["status"] not in ("captured", "refunded"):
            return self.error(400, "The payment has not been captured")
        if type(amount) is not int or not 0 < amount <= (payment["amount"]
                                                          - payment["amount_refunded"]):
            return self.error(400, "The refund amount provided is greater than amount "
                                   "captured", field="amount")
        refund = {"id": random_id("rfnd_"), "entity": "refund", "amount": amount,
                  "currency": payment["currency"], "payment_id": payment["id"],
                  "notes": body.get("notes") or [], "receipt": body.get("receipt"),
                  "acquirer_data": {"arn": None}, "created_at": _now(), "batch_id": None,
                  "status": "pending", "speed_processed": "normal",
                  "speed_requested": body.get("speed", "normal")}
        self.refunds[refund["id"]] = refund
        payment["amount_refunded"] += amount
        payment["refund_status"] = ("full" if payment["amount_refunded"] == payment["amount"]
                                    else "partial")
        if key is not None:
            self._refund_keys[key] = (raw, refund["id"])
        return web.json_response(refund)

    async def _get_refund(self, request: web.Request) -> web.Response:
        refund = self.refunds.get(request.match_info["id"])
        return web.json_response(refund) if refund else self._missing()

    async def _recon(self, request: web.Request) -> web.Response:
        query = request.query
        try:
            year, month = int(query["year"]), int(query["month"])
            day = int(query["day"]) if "day" in query else None
            count, skip = int(query.get("count", "10")), int(query.get("skip", "0"))
        except (KeyError, ValueError):
            return self.error(400, "The year and month fields are required")
        if not 1 <= count <= 1000:
            return self.error(400, "The count must be between 1 and 1000", field="count")
        items = [item for item in self.recon
                 if _settled_day(item).year == year and _settled_day(item).month == month
                 and (day is None or _settled_day(item).day == day)]
        page = items[skip:skip + count]
        return web.json_response({"entity": "collection", "count": len(page), "items": page})

    # -- what the test drives -----------------------------------------------------------------
    def payments_of(self, order_id: str) -> list[dict[str, Any]]:
        """The order's payments, newest first."""
        found = [p for p in self.payments.values() if p["order_id"] == order_id]
        return sorted(found, key=lambda p: p["created_at"], reverse=True)

    def pay(self, order_id: str, outcome: str = "captured", *,
            amount: int | None = None) -> Webhook:
        """A customer's payment on the order: ``captured``, ``authorized`` (waits for a
        capture) or ``failed``; returns its ``payment.<outcome>`` webhook."""
        order = self.orders[order_id]
        if outcome not in ("captured", "authorized", "failed"):
            raise ValueError(f"outcome must be captured, authorized or failed: {outcome!r}")
        payment = {"id": random_id("pay_"), "entity": "payment",
                   "amount": order["amount"] if amount is None else amount,
                   "currency": order["currency"], "status": "authorized",
                   "order_id": order_id, "invoice_id": None, "international": False,
                   "method": "card", "amount_refunded": 0, "refund_status": None,
                   "captured": False, "description": None, "email": "buyer@example.com",
                   "contact": "+919999999999", "notes": [], "fee": None, "tax": None,
                   "error_code": None, "error_description": None, "error_source": None,
                   "error_step": None, "error_reason": None,
                   "created_at": _now() + len(self.payments)}
        self.payments[payment["id"]] = payment
        order["attempts"] += 1
        if order["status"] == "created":
            order["status"] = "attempted"
        if outcome == "failed":
            payment.update(status="failed", error_code="BAD_REQUEST_ERROR",
                           error_description="Payment failed", error_source="customer",
                           error_step="payment_authorization", error_reason="payment_failed")
        elif outcome == "captured":
            self._mark_captured(payment)
        return self._emit(self._payment_event(f"payment.{outcome}", payment))

    def process_refund(self, refund_id: str, outcome: str = "processed") -> Webhook:
        """Razorpay finishing a refund: ``processed`` or ``failed``; its webhook."""
        if outcome not in ("processed", "failed"):
            raise ValueError(f"outcome must be processed or failed: {outcome!r}")
        refund = self.refunds[refund_id]
        refund["status"] = outcome
        payment = self.payments[refund["payment_id"]]
        if outcome == "failed":
            payment["amount_refunded"] -= refund["amount"]
        elif payment["amount_refunded"] == payment["amount"]:
            payment["status"] = "refunded"
        return self._emit(self.webhook(f"refund.{outcome}", refund=refund, payment=payment))

    def settle(self, day: datetime.date) -> list[dict[str, Any]]:
        """Settle on ``day`` every captured payment and processed refund not settled yet;
        the recon items added (a payment's fee is ``fee_bps`` of it, tax included)."""
        settled_at = int(datetime.datetime.combine(
            day, datetime.time(12), datetime.UTC).timestamp())
        done = {item["entity_id"] for item in self.recon}
        setl = random_id("setl_")
        added = []
        for payment in self.payments.values():
            if payment["captured"] and payment["id"] not in done:
                fee = payment["amount"] * self.fee_bps // 10000
                tax = fee * 18 // 118
                added.append(self._recon_item(payment["id"], "payment", payment, settled_at,
                                              setl, credit=payment["amount"] - fee, debit=0,
                                              fee=fee, tax=tax))
        for refund in self.refunds.values():
            if refund["status"] == "processed" and refund["id"] not in done:
                payment = self.payments[refund["payment_id"]]
                added.append(self._recon_item(refund["id"], "refund", refund, settled_at, setl,
                                              credit=0, debit=refund["amount"], fee=0, tax=0,
                                              payment_id=payment["id"],
                                              order_id=payment["order_id"]))
        self.recon.extend(added)
        return added

    def webhook(self, event: str, **entities: dict[str, Any]) -> Webhook:
        """A signed webhook of ``event`` carrying these entities (``payment=``, ``order=``,
        ``refund=``), as Razorpay formats it."""
        payload = {name: {"entity": entity} for name, entity in entities.items()}
        body = json_body({"entity": "event", "account_id": "acc_Simulator0001",
                          "event": event, "contains": list(entities), "payload": payload,
                          "created_at": _now()})
        event_id = random_id("", 14)
        return Webhook(event_id=event_id, event_type=event, body=body, headers={
            "Content-Type": "application/json", "X-Razorpay-Event-Id": event_id,
            "X-Razorpay-Signature": self.sign(body)})

    def sign(self, body: bytes, secret: str | None = None) -> str:
        """``X-Razorpay-Signature`` of ``body`` (under the simulator's secret by default)."""
        key = (self.webhook_secret if secret is None else secret).encode()
        return hmac.new(key, body, hashlib.sha256).hexdigest()

    # -- internals ----------------------------------------------------------------------------
    def _mark_captured(self, payment: dict[str, Any]) -> None:
        fee = payment["amount"] * self.fee_bps // 10000
        payment.update(status="captured", captured=True, fee=fee, tax=fee * 18 // 118)
        order = self.orders[payment["order_id"]]
        order.update(status="paid", amount_paid=payment["amount"], amount_due=0)

    def _payment_event(self, event: str, payment: dict[str, Any]) -> Webhook:
        return self.webhook(event, payment=payment)

    def _recon_item(self, entity_id: str, kind: str, entity: dict[str, Any], settled_at: int,
                    settlement_id: str, *, credit: int, debit: int, fee: int, tax: int,
                    payment_id: str | None = None, order_id: str | None = None
                    ) -> dict[str, Any]:
        return {"entity_id": entity_id, "type": kind, "debit": debit, "credit": credit,
                "amount": entity["amount"], "currency": entity["currency"], "fee": fee,
                "tax": tax, "on_hold": False, "settled": True,
                "created_at": entity["created_at"], "settled_at": settled_at,
                "settlement_id": settlement_id, "posted_at": None, "credit_type": "default",
                "description": None, "notes": "{}", "payment_id": payment_id,
                "settlement_utr": random_id("", 16).lower(),
                "order_id": order_id or entity.get("order_id"), "order_receipt": None,
                "method": "card", "card_network": "Visa", "card_issuer": "HDFC",
                "card_type": "credit", "dispute_id": None}


async def _json(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    try:
        body = orjson.loads(raw) if raw else {}
    except orjson.JSONDecodeError:
        return {}
    return body if isinstance(body, dict) else {}


def _now() -> int:
    return int(time.time())


def _settled_day(item: dict[str, Any]) -> datetime.date:
    return datetime.datetime.fromtimestamp(item["settled_at"], datetime.UTC).date()
