"""A Stripe API simulator on loopback, speaking the documented form-encoded requests and
JSON objects.

Routes: ``POST /v1/payment_intents``, ``GET /v1/payment_intents/{id}``,
``POST /v1/payment_intents/{id}/capture``, ``POST /v1/refunds``, ``GET /v1/refunds/{id}``,
``GET /v1/balance_transactions`` (``created[gte|gt|lt|lte]``, ``limit``, ``starting_after``,
``expand[]=data.source``; newest first, ``has_more``). Bearer auth with the simulator's
secret key; a wrong one is a 401 in Stripe's error format. Every POST honours
``Idempotency-Key``: the same key and parameters replay the first answer, other parameters
with the key are a 400 ``idempotency_error``.

The test drives Stripe's side: :meth:`pay`, :meth:`process_refund`, :meth:`settle`; each
returns the webhook Stripe would send (``Stripe-Signature: t=...,v1=...``), also kept in
:attr:`webhooks`.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import time
from collections.abc import Callable, Sequence
from typing import Any

from aiohttp import web

from propmubi_plugins.payments.providers.settings import StripeSettings
from tests.plugins.payments.simulators.server import (
    LoopbackServer,
    Webhook,
    json_body,
    random_id,
)

__all__ = ["StripeSimulator"]


class StripeSimulator(LoopbackServer):
    """Stripe, in memory.

    :param fee_bps: the fee on a settled charge, in basis points (plus ``fee_fixed``).
    :param clock: unix seconds, for the webhooks' signed timestamps and objects' ``created``.
    """

    def __init__(self, *, secret_key: str = "sk_test_simulator",
                 publishable_key: str = "pk_test_simulator",
                 webhook_secret: str = "whsec_simulator", fee_bps: int = 290,
                 fee_fixed: int = 30, clock: Callable[[], float] = time.time) -> None:
        super().__init__()
        self.secret_key = secret_key
        self.publishable_key = publishable_key
        self.webhook_secret = webhook_secret
        self.fee_bps = fee_bps
        self.fee_fixed = fee_fixed
        self.clock = clock
        self.intents: dict[str, dict[str, Any]] = {}
        self.charges: dict[str, dict[str, Any]] = {}
        self.refunds: dict[str, dict[str, Any]] = {}
        self.balance: list[dict[str, Any]] = []  # balance transactions, oldest first
        self._idempotent: dict[str, tuple[str, list[tuple[str, str]], int, bytes]] = {}

    def settings(self, **changes: Any) -> StripeSettings:
        """Provider settings that talk to this simulator (a 2 s timeout), with ``changes``."""
        values: dict[str, Any] = {"base_url": self.base_url, "secret_key": self.secret_key,
                                  "publishable_key": self.publishable_key,
                                  "webhook_secrets": (self.webhook_secret,), "timeout": 2.0}
        return StripeSettings(**{**values, **changes})

    # -- the server ---------------------------------------------------------------------------
    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/payment_intents", self._idempotent_post(self._create_intent))
        app.router.add_get("/v1/payment_intents/{id}", self._get_intent)
        app.router.add_post("/v1/payment_intents/{id}/capture",
                            self._idempotent_post(self._capture))
        app.router.add_post("/v1/refunds", self._idempotent_post(self._create_refund))
        app.router.add_get("/v1/refunds/{id}", self._get_refund)
        app.router.add_get("/v1/balance_transactions", self._balance_transactions)

    def authenticate(self, request: web.Request) -> web.Response | None:
        given = request.headers.get("Authorization", "")
        if not given:
            return self.error(401, "You did not provide an API key.")
        if not hmac.compare_digest(given, f"Bearer {self.secret_key}"):
            shown = given.removeprefix("Bearer ")[-4:]
            return self.error(401, f"Invalid API Key provided: sk_test_****{shown}")
        return None

    def error(self, status: int, message: str, **fields: Any) -> web.Response:
        kind = fields.pop("type", "api_error" if status >= 500 else "invalid_request_error")
        return web.json_response({"error": {"type": kind, "message": message, **fields}},
                                 status=status)

    def _idempotent_post(self, handler: Callable[[web.Request, dict[str, str]], Any]
                         ) -> Callable[[web.Request], Any]:
        async def post(request: web.Request) -> web.StreamResponse:
            form = [(k, str(v)) for k, v in (await request.post()).items()]
            key = request.headers.get("Idempotency-Key")
            if key is not None and key in self._idempotent:
                path, params, status, body = self._idempotent[key]
                if (path, params) != (request.path, form):
                    return self.error(400, "Keys for idempotent requests can only be used "
                                           "with the same parameters they were first used "
                                           "with.", type="idempotency_error")
                return web.Response(body=body, status=status,
                                    content_type="application/json",
                                    headers={"Idempotent-Replayed": "true"})
            response: web.Response = await handler(request, dict(form))
            if key is not None and response.status < 500:
                assert isinstance(response.body, bytes)
                self._idempotent[key] = (request.path, form, response.status, response.body)
            return response
        return post

    async def _create_intent(self, request: web.Request, form: dict[str, str]
                             ) -> web.Response:
        amount = _integer(form.get("amount"))
        if amount is None or amount < 1:
            return self.error(400, f"Invalid integer: {form.get('amount')}", param="amount")
        currency = form.get("currency", "")
        if len(currency) != 3 or currency != currency.lower():
            return self.error(400, f"Invalid currency: {currency}", param="currency")
        capture = form.get("capture_method", "automatic_async")
        intent_id = random_id("pi_", 24)
        intent = {"id": intent_id, "object": "payment_intent", "amount": amount,
                  "amount_capturable": 0, "amount_received": 0, "currency": currency,
                  "capture_method": capture, "client_secret": f"{intent_id}_secret_"
                  + random_id("", 25), "created": int(self.clock()), "latest_charge": None,
                  "last_payment_error": None, "livemode": False,
                  "metadata": {k[len("metadata["):-1]: v for k, v in form.items()
                               if k.startswith("metadata[")},
                  "automatic_payment_methods": (
                      {"enabled": True}
                      if form.get("automatic_payment_methods[enabled]") == "true" else None),
                  "status": "requires_payment_method"}
        self.intents[intent_id] = intent
        return web.json_response(intent)

    async def _get_intent(self, request: web.Request) -> web.Response:
        intent = self.intents.get(request.match_info["id"])
        if intent is None:
            return self._missing("payment_intent", request.match_info["id"])
        return web.json_response(intent)

    async def _capture(self, request: web.Request, form: dict[str, str]) -> web.Response:
        intent = self.intents.get(request.match_info["id"])
        if intent is None:
            return self._missing("payment_intent", request.match_info["id"])
        if intent["status"] != "requires_capture":
            return self.error(400, "This PaymentIntent could not be captured because it has "
                                   f"a status of {intent['status']}.",
                              code="payment_intent_unexpected_state")
        amount = _integer(form.get("amount_to_capture", str(intent["amount_capturable"])))
        if amount is None or not 0 < amount <= intent["amount_capturable"]:
            return self.error(400, "The amount to capture is invalid.",
                              param="amount_to_capture")
        self._succeed(intent, amount)
        self._emit(self.webhook("payment_intent.succeeded", intent))
        return web.json_response(intent)

    async def _create_refund(self, request: web.Request, form: dict[str, str]
                             ) -> web.Response:
        intent = self.intents.get(form.get("payment_intent", ""))
        if intent is None:
            return self._missing("payment_intent", form.get("payment_intent", ""))
        if intent["status"] != "succeeded":
            return self.error(400, f"This PaymentIntent ({intent['id']}) does not have a "
                                   "successful charge to refund.", code="charge_not_refundable")
        charge = self.charges[intent["latest_charge"]]
        left = charge["amount_captured"] - charge["amount_refunded"]
        amount = _integer(form.get("amount", str(left)))
        if amount is None or not 0 < amount <= left:
            return self.error(400, f"Refund amount ({amount}) is greater than unrefunded "
                                   f"amount on charge ({left})", param="amount")
        refund = {"id": random_id("re_", 24), "object": "refund", "amount": amount,
                  "charge": charge["id"], "created": int(self.clock()),
                  "currency": intent["currency"], "payment_intent": intent["id"],
                  "reason": None, "status": "pending", "metadata": {},
                  "balance_transaction": None}
        self.refunds[refund["id"]] = refund
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] == charge["amount_captured"]
        self._emit(self.webhook("refund.created", refund))
        return web.json_response(refund)

    async def _get_refund(self, request: web.Request) -> web.Response:
        refund = self.refunds.get(request.match_info["id"])
        if refund is None:
            return self._missing("refund", request.match_info["id"])
        return web.json_response(refund)

    async def _balance_transactions(self, request: web.Request) -> web.Response:
        query = request.query
        limit = _integer(query.get("limit", "10"))
        if limit is None or not 1 <= limit <= 100:
            return self.error(400, "Invalid limit: must be between 1 and 100", param="limit")
        rows = list(reversed(self.balance))  # newest first, as Stripe lists them
        for op, test in (("gte", int.__ge__), ("gt", int.__gt__), ("lt", int.__lt__),
                         ("lte", int.__le__)):
            bound = _integer(query.get(f"created[{op}]"))
            if bound is not None:
                rows = [r for r in rows if test(r["created"], bound)]
        after = query.get("starting_after")
        if after:
            ids = [r["id"] for r in rows]
            if after not in ids:
                return self._missing("balance_transaction", after)
            rows = rows[ids.index(after) + 1:]
        page, more = rows[:limit], len(rows) > limit
        if "data.source" in query.getall("expand[]", []):
            page = [{**r, "source": self._source(r["source"])} for r in page]
        return web.json_response({"object": "list", "data": page, "has_more": more,
                                  "url": "/v1/balance_transactions"})

    def _missing(self, kind: str, given: str) -> web.Response:
        return self.error(404, f"No such {kind}: '{given}'", code="resource_missing")

    def _source(self, source_id: str) -> dict[str, Any]:
        return self.charges.get(source_id) or self.refunds[source_id]

    # -- what the test drives -----------------------------------------------------------------
    def pay(self, intent_id: str, outcome: str = "captured") -> Webhook:
        """The customer paying the intent: ``captured`` (``payment_intent.succeeded``),
        ``authorized`` (``requires_capture``; the intent must have capture_method=manual) or
        ``failed`` (``payment_intent.payment_failed``); returns the webhook."""
        intent = self.intents[intent_id]
        if outcome == "captured":
            self._succeed(intent, intent["amount"])
            return self._emit(self.webhook("payment_intent.succeeded", intent))
        if outcome == "authorized":
            if intent["capture_method"] != "manual":
                raise ValueError("only a capture_method=manual intent stops at authorized")
            intent.update(status="requires_capture", amount_capturable=intent["amount"])
            return self._emit(self.webhook("payment_intent.amount_capturable_updated", intent))
        if outcome == "failed":
            intent.update(status="requires_payment_method", last_payment_error={
                "type": "card_error", "code": "card_declined", "decline_code":
                "generic_decline", "message": "Your card was declined."})
            return self._emit(self.webhook("payment_intent.payment_failed", intent))
        raise ValueError(f"outcome must be captured, authorized or failed: {outcome!r}")

    def process_refund(self, refund_id: str, outcome: str = "succeeded") -> Webhook:
        """Stripe finishing a refund: ``succeeded`` or ``failed``; its ``refund.updated``
        (or ``refund.failed``) webhook."""
        refund = self.refunds[refund_id]
        if outcome not in ("succeeded", "failed"):
            raise ValueError(f"outcome must be succeeded or failed: {outcome!r}")
        refund["status"] = outcome
        if outcome == "failed":
            refund["failure_reason"] = "lost_or_stolen_card"
            self.charges[refund["charge"]]["amount_refunded"] -= refund["amount"]
        event = "refund.updated" if outcome == "succeeded" else "refund.failed"
        return self._emit(self.webhook(event, refund))

    def settle(self, day: datetime.date) -> list[dict[str, Any]]:
        """Balance transactions, created at noon UTC of ``day``, for every captured charge
        and succeeded refund that has none yet; the transactions added."""
        created = int(datetime.datetime.combine(day, datetime.time(12),
                                                datetime.UTC).timestamp())
        added = []
        for charge in self.charges.values():
            if charge["balance_transaction"] is None:
                fee = charge["amount_captured"] * self.fee_bps // 10000 + self.fee_fixed
                added.append(self._transaction(charge, "charge", charge["amount_captured"],
                                               fee, created))
        for refund in self.refunds.values():
            if refund["status"] == "succeeded" and refund["balance_transaction"] is None:
                added.append(self._transaction(refund, "refund", -refund["amount"], 0,
                                               created))
        return added

    def webhook(self, event_type: str, obj: dict[str, Any], *,
                timestamp: int | None = None) -> Webhook:
        """A signed event of ``event_type`` about ``obj`` (a copy of it, as of now)."""
        signed_at = int(self.clock()) if timestamp is None else timestamp
        event_id = random_id("evt_", 24)
        body = json_body({"id": event_id, "object": "event", "api_version": "2024-06-20",
                          "created": signed_at, "data": {"object": obj}, "livemode": False,
                          "pending_webhooks": 1,
                          "request": {"id": None, "idempotency_key": None},
                          "type": event_type})
        return Webhook(event_id=event_id, event_type=event_type, body=body, headers={
            "Content-Type": "application/json; charset=utf-8",
            "Stripe-Signature": self.sign(body, timestamp=signed_at)})

    def sign(self, body: bytes, *, timestamp: int | None = None,
             secrets: Sequence[str] | None = None) -> str:
        """A ``Stripe-Signature`` value: ``t=<timestamp>`` and one ``v1`` per secret (the
        simulator's by default)."""
        signed_at = int(self.clock()) if timestamp is None else timestamp
        parts = [f"t={signed_at}"]
        for secret in secrets if secrets is not None else (self.webhook_secret,):
            digest = hmac.new(secret.encode(), f"{signed_at}.".encode() + body,
                              hashlib.sha256).hexdigest()
            parts.append(f"v1={digest}")
        return ",".join(parts)

    # -- internals ----------------------------------------------------------------------------
    def _succeed(self, intent: dict[str, Any], amount: int) -> None:
        charge = {"id": random_id("ch_", 24), "object": "charge", "amount": intent["amount"],
                  "amount_captured": amount, "amount_refunded": 0,
                  "balance_transaction": None, "captured": True,
                  "created": int(self.clock()), "currency": intent["currency"],
                  "payment_intent": intent["id"], "refunded": False, "status": "succeeded"}
        self.charges[charge["id"]] = charge
        intent.update(status="succeeded", amount_received=amount, amount_capturable=0,
                      latest_charge=charge["id"], last_payment_error=None)

    def _transaction(self, source: dict[str, Any], kind: str, amount: int, fee: int,
                     created: int) -> dict[str, Any]:
        txn = {"id": random_id("txn_", 24), "object": "balance_transaction",
               "amount": amount, "available_on": created + 2 * 86400, "created": created,
               "currency": source["currency"], "description": None, "exchange_rate": None,
               "fee": fee, "fee_details": ([{"amount": fee, "application": None,
                                             "currency": source["currency"],
                                             "description": "Stripe processing fees",
                                             "type": "stripe_fee"}] if fee else []),
               "net": amount - fee, "reporting_category": kind, "source": source["id"],
               "status": "available", "type": kind}
        source["balance_transaction"] = txn["id"]
        self.balance.append(txn)
        return txn


def _integer(text: str | None) -> int | None:
    """A form integer, None when absent or not digits (Stripe refuses ``12.5``)."""
    if text is None or not text.isascii() or not text.lstrip("-").isdigit():
        return None
    return int(text)
