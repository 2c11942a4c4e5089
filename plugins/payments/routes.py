"""The payments plugin's JSON API, mounted under ``/api/v1``.

- ``POST /bookings/{booking_id}/payment-intents``: the buyer opens (or gets back the open)
  intent of a held booking, with the provider's checkout data.
- ``GET /payments/intents/{intent_id}``: the buyer's intent and where it stands.
- ``POST /payments/webhooks/{provider}``: a provider's signed event; 200 once stored (a
  duplicate is 200 too), 400 when the signature does not verify.
- ``POST /payments/intents/{intent_id}/refunds``: an admin refunds part or all of a payment.
"""

from __future__ import annotations

import time

from aiohttp import web

from propmubi.actors import Actor
from propmubi.web.appkeys import PRINCIPAL
from propmubi.web.routing import Routes
from propmubi_plugins.payments import service
from propmubi_plugins.payments.models import (
    BookingId,
    IntentId,
    IntentOut,
    ProviderName,
    RefundIn,
    RefundOut,
    WebhookAck,
)
from propmubi_plugins.payments.state import Ctx

routes = Routes(tags=["payments"])


@routes.post("/bookings/{booking_id}/payment-intents", params=BookingId, response=IntentOut,
             status=201, roles=["*"], errors=[404, 409, 422, 503], rate_limit="30/minute",
             idempotent=True)
async def create_intent(request: web.Request, ctx: Ctx, params: BookingId) -> IntentOut:
    """Open a payment intent for the caller's held booking (the open one if there is one).

    Refused with 409 when the hold expired or the booking cannot be paid, 422
    ``rera-cap-exceeded`` above the RERA advance limit, 503 with ``Retry-After`` when no
    provider can take it.
    """
    return await service.create_intent(ctx, Actor.user(request[PRINCIPAL]), params.booking_id)


@routes.get("/payments/intents/{intent_id}", params=IntentId, response=IntentOut,
            roles=["*"], errors=[404])
async def get_intent(request: web.Request, ctx: Ctx, params: IntentId) -> IntentOut:
    """One of the caller's payment intents."""
    return await service.get_intent(ctx, Actor.user(request[PRINCIPAL]), params.intent_id)


@routes.post("/payments/webhooks/{provider}", params=ProviderName, response=WebhookAck,
             errors=[400, 404], rate_limit=False)
async def webhook(request: web.Request, ctx: Ctx, params: ProviderName) -> WebhookAck:
    """A payment provider's signed event (Razorpay: ``X-Razorpay-Signature``; Stripe:
    ``Stripe-Signature``). Verified over the raw body, stored once per event id and applied
    by the worker; answered as soon as it is stored."""
    body = await request.read()
    new = await service.ingest_webhook(ctx, params.provider, body, request.headers,
                                       time.time())
    return WebhookAck(received=True, duplicate=not new)


@routes.post("/payments/intents/{intent_id}/refunds", params=IntentId, body=RefundIn,
             response=RefundOut, status=201, roles=["admin"], errors=[400, 404, 422],
             idempotent=True)
async def refund(request: web.Request, ctx: Ctx, params: IntentId, body: RefundIn
                 ) -> RefundOut:
    """Refund part or all of a captured payment (admins; needs an ``Idempotency-Key``)."""
    return await service.request_refund(ctx, Actor.user(request[PRINCIPAL]), params.intent_id,
                                        body, request.headers.get("Idempotency-Key", ""))
