"""The sandbox's "bank": in development, staff complete a sandbox payment or its refunds
from the payment's console page. Each button makes the webhook the sandbox provider would
send, signed with this process's sandbox secret, and feeds it through the same path as a
real provider's webhook (verify, store once, apply in the worker). Never in production: the
sandbox provider is not built there.
"""

from __future__ import annotations

import uuid
from typing import Any

from propmubi.errors import BadRequest, Conflict, NotFound
from propmubi_plugins.payments import service, store
from propmubi_plugins.payments.providers.sandbox import sandbox_payment_id, sandbox_webhook
from propmubi_plugins.payments.state import Ctx

#: What a button may do to a payment.
PAYMENT_OUTCOMES = {"captured": "payment.captured", "failed": "payment.failed",
                    "authorized": "payment.authorized"}


def available(ctx: Ctx, intent: dict[str, Any]) -> bool:
    """Whether this payment can be completed from the console (a sandbox intent here)."""
    return intent["provider"] == "sandbox" and "sandbox" in ctx.state.providers


async def complete(ctx: Ctx, intent_id: uuid.UUID, outcome: str, now: float) -> str:
    """Send the sandbox webhook for ``outcome`` (``captured``, ``failed``, ``authorized`` or
    ``refunds``: every sent, pending refund processed); what was done, for a flash message.

    :raises NotFound: no such intent. :raises Conflict: not a sandbox intent, or no order.
    :raises BadRequest: an unknown outcome.
    """
    intent = await store.intent(ctx.db, intent_id)
    if intent is None:
        raise NotFound("no such payment")
    if not available(ctx, intent) or not intent["provider_order_id"]:
        raise Conflict("only a sandbox payment with an order can be completed here")
    provider = ctx.state.providers["sandbox"]
    secret = provider.settings.webhook_secret  # type: ignore[attr-defined]
    order_id = intent["provider_order_id"]
    common = {"order_id": order_id, "payment_id": sandbox_payment_id(order_id),
              "currency": intent["currency"]}
    if outcome in PAYMENT_OUTCOMES:
        body, headers = sandbox_webhook(secret, kind=PAYMENT_OUTCOMES[outcome],
                                        amount_minor=intent["amount_minor"], **common)
        await service.ingest_webhook(ctx, "sandbox", body, headers, now)
        return f"Sandbox: the payment was {outcome}; the worker applies it in a moment."
    if outcome != "refunds":
        raise BadRequest(f"unknown sandbox outcome {outcome!r}")
    sent = [r for r in await store.refunds_of_booking(ctx.db, intent["booking_id"])
            if r["intent_id"] == intent["id"] and r["status"] == "pending"
            and r["provider_refund_id"]]
    for refund in sent:
        body, headers = sandbox_webhook(secret, kind="refund.processed",
                                        amount_minor=refund["amount_minor"],
                                        refund_id=refund["provider_refund_id"], **common)
        await service.ingest_webhook(ctx, "sandbox", body, headers, now)
    if not sent:
        return "Sandbox: no refund of this payment is waiting at the provider."
    return f"Sandbox: {len(sent)} refund(s) processed; the worker applies it in a moment."
