"""What the worker does with a stored provider event and a decided refund.

A provider event moves an intent only forward: created → attempted → authorized → captured,
and created/attempted → failed. A ``payment.failed`` after an authorisation or a capture
changes nothing; a ``payment.authorized`` or ``payment.captured`` after a failure is a late
authorisation and is accepted (the money is real). A capture asks the booking in the same
transaction (``bookings.api.record_payment_in``): confirmed, or refused (the unit went to
someone else, the booking was already paid or is closed), and then the whole payment is
refunded automatically, in that same transaction's refund row. So a captured payment always
ends in a confirmed booking or a refund, and the buyer is told by the events.

Each stored event is applied once (its row records when and with what outcome); a refund is
sent with its own id as the provider's idempotency key, so a retry after a crash cannot
refund twice.
"""

from __future__ import annotations

import uuid
from typing import Any

from propmubi.actors import Actor
from propmubi.db import Tx
from propmubi_plugins.bookings import api as bookings
from propmubi_plugins.payments import store
from propmubi_plugins.payments.events import (
    PaymentAuthorized,
    PaymentCaptured,
    PaymentFailed,
    RefundFailed,
    RefundProcessed,
)
from propmubi_plugins.payments.providers.base import ProviderError, WebhookEvent
from propmubi_plugins.payments.service import refund_in, store_event_in
from propmubi_plugins.payments.state import Ctx

#: Who acts when the worker applies provider events.
SYSTEM = Actor.system("payments")


async def apply_event_in(ctx: Ctx, tx: Tx, row_id: uuid.UUID) -> str | None:
    """Apply a stored provider event once; its outcome (None when already applied)."""
    row = await store.event_for_update(tx, row_id)
    if row is None or row["processed_at"] is not None:
        return None
    kind = row["kind"]
    if kind.startswith("payment."):
        outcome, intent_id = await _payment_event(ctx, tx, row)
    elif kind.startswith("refund."):
        outcome, intent_id = await _refund_event(ctx, tx, row)
    else:
        outcome, intent_id = f"ignored: {row['raw_type']} is not acted on", None
    await store.mark_event(tx, row_id, outcome, intent_id, ctx.clock.now())
    return outcome


async def _payment_event(ctx: Ctx, tx: Tx, row: dict[str, Any]
                         ) -> tuple[str, uuid.UUID | None]:
    intent = await store.intent_by_provider_ids(tx, row["provider"], row["order_id"],
                                                row["payment_id"])
    if intent is None:
        return "ignored: no intent of ours has this order or payment", None
    now, kind, status = ctx.clock.now(), row["kind"], intent["status"]
    ids: dict[str, Any] = {}
    if row["payment_id"] and intent["provider_payment_id"] != row["payment_id"]:
        ids["provider_payment_id"] = row["payment_id"]
    refs = {"intent_id": intent["id"], "booking_id": intent["booking_id"]}
    if kind == "payment.failed":
        if status not in ("created", "attempted"):
            return f"ignored: a failure after {status}", intent["id"]
        await store.update_intent(tx, intent["id"], now, status="failed",
                                  failure_reason="the provider reported the payment failed",
                                  **ids)
        await ctx.publish(tx, PaymentFailed(**refs), actor=SYSTEM.ref)
        return "failed", intent["id"]
    if kind == "payment.authorized":
        if status not in ("created", "attempted", "failed"):
            return f"ignored: an authorisation after {status}", intent["id"]
        await store.update_intent(tx, intent["id"], now, status="authorized", **ids)
        await ctx.publish(tx, PaymentAuthorized(**refs), actor=SYSTEM.ref)
        return "authorized" if status != "failed" else "authorized late", intent["id"]
    if kind == "payment.captured":
        if status == "captured":
            return "ignored: already captured", intent["id"]
        return await _captured(ctx, tx, intent, row, ids), intent["id"]
    return f"ignored: {kind} while {status}", intent["id"]


async def _captured(ctx: Ctx, tx: Tx, intent: dict[str, Any], row: dict[str, Any],
                    ids: dict[str, Any]) -> str:
    amount = row["amount_minor"] if row["amount_minor"] else intent["amount_minor"]
    if row["currency"] and row["currency"].upper() != intent["currency"]:
        ctx.log.error("payments: intent %s captured in %s, opened in %s", intent["id"],
                      row["currency"], intent["currency"])
    intent = await store.update_intent(tx, intent["id"], ctx.clock.now(), status="captured",
                                       captured_minor=amount, **ids)
    outcome = await bookings.record_payment_in(
        ctx, tx, SYSTEM, intent["booking_id"], payment_id=intent["id"], amount_minor=amount,
        currency=intent["currency"])
    said = "confirmed" if outcome.confirmed else (outcome.reason or "refused")
    intent = await store.update_intent(tx, intent["id"], ctx.clock.now(), booking_outcome=said)
    await ctx.publish(tx, PaymentCaptured(
        intent_id=intent["id"], booking_id=intent["booking_id"], amount_minor=amount,
        currency=intent["currency"], booking_outcome=said), actor=SYSTEM.ref)
    if outcome.confirmed:
        return "captured: booking confirmed"
    await refund_in(ctx, tx, SYSTEM, intent, amount, said, f"refused:{intent['id']}")
    return f"captured: booking refused it ({said}), refunded in full"


async def _refund_event(ctx: Ctx, tx: Tx, row: dict[str, Any]
                        ) -> tuple[str, uuid.UUID | None]:
    refund = None
    if row["refund_id"]:
        refund = await store.refund_by_provider_id(tx, row["provider"], row["refund_id"])
    if refund is None and row["payment_id"]:
        # The webhook may beat the answer to our refund call: match the pending refund of
        # that payment with the same amount that has no provider id yet.
        refund = await _unanswered_refund(tx, row)
    if refund is None:
        return "ignored: no refund of ours has this id", None
    if refund["status"] != "pending":
        return f"ignored: the refund is already {refund['status']}", refund["intent_id"]
    processed = row["kind"] == "refund.processed"
    if row["kind"] not in ("refund.processed", "refund.failed"):
        return f"ignored: {row['kind']}", refund["intent_id"]
    await settle_refund_in(ctx, tx, refund, processed, row["refund_id"])
    return ("refund processed" if processed else "refund failed"), refund["intent_id"]


async def _unanswered_refund(tx: Tx, row: dict[str, Any]) -> dict[str, Any] | None:
    intent = await store.intent_by_provider_ids(tx, row["provider"], None, row["payment_id"])
    if intent is None:
        return None
    for refund in await store.refunds_of_booking(tx, intent["booking_id"]):
        if (refund["intent_id"] == intent["id"] and refund["status"] == "pending"
                and refund["provider_refund_id"] is None
                and row["amount_minor"] in (None, refund["amount_minor"])):
            return await store.refund_for_update(tx, refund["id"])
    return None


async def settle_refund_in(ctx: Ctx, tx: Tx, refund: dict[str, Any], processed: bool,
                           provider_refund_id: str | None,
                           failure: str = "the provider reported the refund failed") -> None:
    """A pending refund is processed (the booking learns of it) or failed (its amount is
    released from the intent, staff see it)."""
    now = ctx.clock.now()
    ids = {"provider_refund_id": provider_refund_id} if provider_refund_id else {}
    refs = {"refund_id": refund["id"], "intent_id": refund["intent_id"],
            "booking_id": refund["booking_id"], "amount_minor": refund["amount_minor"],
            "currency": refund["currency"]}
    if processed:
        await store.update_refund(tx, refund["id"], now, status="processed", **ids)
        await bookings.record_refund_in(ctx, tx, SYSTEM, refund["booking_id"],
                                        refund_id=refund["id"],
                                        amount_minor=refund["amount_minor"],
                                        cancellation=refund["reason"] == "cancellation")
        await ctx.publish(tx, RefundProcessed(**refs), actor=SYSTEM.ref)
        return
    await store.update_refund(tx, refund["id"], now, status="failed", failure_reason=failure,
                              **ids)
    intent = await store.intent_for_update(tx, refund["intent_id"])
    assert intent is not None
    await store.update_intent(tx, intent["id"], now,
                              refunded_minor=intent["refunded_minor"] - refund["amount_minor"])
    await ctx.publish(tx, RefundFailed(**refs), actor=SYSTEM.ref)


async def capture_in(ctx: Ctx, tx: Tx, intent_id: uuid.UUID) -> None:
    """Capture an authorised payment (a provider set to capture by hand, or a late
    authorisation). What the provider answers goes through the webhook path as a stored
    ``capture:`` event, so the booking learns of it exactly as of a webhook; the provider's
    own ``payment.captured`` webhook then changes nothing. A provider that is down raises (the
    bus retries); one that refuses leaves the intent authorised for the poll and staff."""
    intent = await store.intent_for_update(tx, intent_id)
    if intent is None or intent["status"] != "authorized" or not intent["provider_payment_id"]:
        return
    provider = ctx.state.providers.get(intent["provider"])
    if provider is None:
        raise RuntimeError(f"intent {intent_id}: provider {intent['provider']!r} is not "
                           "configured in this process")
    try:
        seen = await provider.capture(intent["provider_payment_id"], intent["amount_minor"],
                                      intent["currency"])
    except ProviderError as exc:
        if exc.retryable:
            raise
        ctx.log.error("payments: %s refused to capture %s: %s", intent["provider"],
                      intent["provider_payment_id"], exc)
        return
    if seen.status != "captured":
        return
    event = WebhookEvent(
        event_id=f"capture:{intent['provider_payment_id']}", kind="payment.captured",
        order_id=intent["provider_order_id"], payment_id=intent["provider_payment_id"],
        refund_id=None, amount_minor=seen.amount_minor or intent["amount_minor"],
        currency=intent["currency"], raw_type="capture")
    await store_event_in(ctx, tx, intent["provider"], event, b'{"source": "capture"}')


async def send_refund_in(ctx: Ctx, tx: Tx, refund_id: uuid.UUID) -> None:
    """Ask the provider for a pending refund (its id is the idempotency key). A provider
    that is down raises, so the bus retries later; one that refuses fails the refund."""
    refund = await store.refund_for_update(tx, refund_id)
    if refund is None or refund["status"] != "pending" or refund["provider_refund_id"]:
        return
    intent = await store.intent(tx, refund["intent_id"])
    assert intent is not None
    provider = ctx.state.providers.get(refund["provider"])
    if provider is None:
        raise RuntimeError(f"refund {refund_id}: provider {refund['provider']!r} is not "
                           "configured in this process")
    try:
        result = await provider.refund(intent["provider_payment_id"], refund["amount_minor"],
                                       idempotency_key=f"refund:{refund_id}")
    except ProviderError as exc:
        if exc.retryable:
            raise
        await settle_refund_in(ctx, tx, refund, False, None, f"refused: {exc}"[:500])
        return
    if result.status == "pending":
        await store.update_refund(tx, refund_id, ctx.clock.now(),
                                  provider_refund_id=result.refund_id)
    else:
        await settle_refund_in(ctx, tx, refund, result.status == "processed", result.refund_id)
