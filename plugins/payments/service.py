"""The payments plugin's operations: open an intent, take a provider's webhook, refund.

The rules:

- An intent collects a booking's amount through one provider, for its whole life. The
  booking must be the caller's and still held (``bookings.api.start_payment_in`` moves it to
  payment pending and checks that in our transaction). A booking with an open intent gets
  that intent back, so a double tap does not open two orders.
- RERA section 13: what was captured plus the new intent never exceeds the booking's
  ``rera_cap_minor`` (10 % of the unit's price, rounded down; no agreement for sale is
  recorded yet); such an intent is refused with 422 ``rera-cap-exceeded``.
- The provider's order is made outside any transaction (no row stays locked while a provider
  answers), then recorded. A provider whose circuit is open gets no new intents: they go to
  ``fallback_provider``, or the caller gets 503 with ``Retry-After``.
- A webhook is verified over its raw bytes, stored once per provider event id and published
  for the worker (``payments.webhook_received``) in one transaction: the answer is fast, and
  an event is either stored and queued, or not stored (the provider sends it again).
- A refund is a row written with what caused it (an admin, a cancellation, a payment the
  booking refused), counted against the intent at once so refunds never exceed what was
  captured (a database CHECK as well), and sent to the provider by the worker.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import orjson

from propmubi.actors import Actor
from propmubi.breaker import CircuitOpen
from propmubi.db import Tx
from propmubi.errors import BadRequest, Forbidden, NotFound
from propmubi.ids import uuid7
from propmubi_plugins.bookings import api as bookings
from propmubi_plugins.payments import store
from propmubi_plugins.payments.errors import (
    BadSignature,
    ProviderUnavailable,
    RefundTooLarge,
    ReraCapExceeded,
)
from propmubi_plugins.payments.events import IntentCreated, RefundRequested, WebhookReceived
from propmubi_plugins.payments.models import IntentOut, RefundIn, RefundOut, intent_out, refund_out
from propmubi_plugins.payments.providers.base import ProviderError, SignatureError, WebhookEvent
from propmubi_plugins.payments.state import Ctx

#: How long a caller waits before trying a new intent again when no provider can take it.
RETRY_AFTER = "30"


def choose_provider(ctx: Ctx) -> str:
    """The provider a new intent goes to: the primary unless its circuit is open, then the
    fallback. :raises ProviderUnavailable: both are open (or there is no fallback)."""
    for name in (ctx.settings.provider, ctx.settings.fallback_provider):
        if name and name in ctx.state.providers and ctx.state.breakers[name].state != "open":
            return name
    raise ProviderUnavailable("no payment provider can take a new payment now; try again "
                              "shortly", headers={"Retry-After": RETRY_AFTER})


async def create_intent(ctx: Ctx, actor: Actor, booking_id: uuid.UUID) -> IntentOut:
    """Open (or return the open) payment intent for the caller's held booking.

    :raises NotFound: no such booking of the caller's.
    :raises Conflict: the hold expired, or the booking cannot be paid now.
    :raises ReraCapExceeded: the amount would pass the RERA advance limit.
    :raises ProviderUnavailable: no provider can take it (503, ``Retry-After``).
    """
    name = choose_provider(ctx)
    async with ctx.db.transaction() as tx:
        booking = await bookings.start_payment_in(ctx, tx, actor, booking_id)
        existing = await store.open_intent_of_booking(tx, booking_id)
        if existing is not None and existing["provider"] in ctx.state.providers:
            return intent_out(existing)
        amount = booking["amount_due_minor"] - booking["captured_minor"]
        cap = booking["rera_cap_minor"]  # 10 % of the price, rounded down
        if booking["captured_minor"] + amount > cap:
            raise ReraCapExceeded(
                f"collecting {amount} paise would bring this booking to "
                f"{booking['captured_minor'] + amount} paise, above the RERA limit of {cap} "
                f"paise (10 % of the unit's price) before an agreement for sale is "
                f"registered", cap_minor=cap)
        row = await store.insert_intent(tx, uuid7(), booking_id, booking["buyer_id"], name,
                                        amount, booking["currency"], ctx.clock.now())
    return await _open_order(ctx, actor, row)


async def _open_order(ctx: Ctx, actor: Actor, row: dict[str, Any]) -> IntentOut:
    """Ask the intent's provider for an order and record it; a failure fails the intent."""
    name = row["provider"]
    provider = ctx.state.providers[name]
    try:
        async with ctx.state.breakers[name].call():
            order = await provider.create_order(
                reference=str(row["id"]), amount_minor=row["amount_minor"],
                currency=row["currency"], idempotency_key=f"intent:{row['id']}")
    except (ProviderError, CircuitOpen) as exc:
        ctx.log.warning("payments: %s refused a new order: %s", name, exc)
        async with ctx.db.transaction() as tx:
            await store.update_intent(tx, row["id"], ctx.clock.now(), status="failed",
                                      failure_reason=f"order not created: {exc}"[:500])
        raise ProviderUnavailable(f"the payment provider did not answer ({name}); try again "
                                  "shortly", headers={"Retry-After": RETRY_AFTER}) from exc
    async with ctx.db.transaction() as tx:
        row = await store.update_intent(tx, row["id"], ctx.clock.now(),
                                        provider_order_id=order.order_id,
                                        client=_json(order.client))
        await ctx.publish(tx, IntentCreated(
            intent_id=row["id"], booking_id=row["booking_id"], provider=name,
            amount_minor=row["amount_minor"], currency=row["currency"]), actor=actor.ref)
    return intent_out(row)


def _json(value: Mapping[str, Any]) -> str:
    return orjson.dumps(dict(value)).decode()


async def get_intent(ctx: Ctx, actor: Actor, intent_id: uuid.UUID) -> IntentOut:
    """An intent of the caller's (staff see every intent). :raises NotFound: otherwise."""
    row = await store.intent(ctx.db, intent_id)
    if row is None or not (actor.is_staff or row["buyer_id"] == actor.user_id):
        raise NotFound(f"no payment intent {intent_id}")
    return intent_out(row)


async def ingest_webhook(ctx: Ctx, provider_name: str, body: bytes,
                         headers: Mapping[str, str], now: float) -> bool:
    """Verify and store a provider's webhook; True when it was new (queued for the worker).

    :raises NotFound: that provider is not configured here.
    :raises BadSignature: the signature, its timestamp or a header does not verify.
    """
    provider = ctx.state.providers.get(provider_name)
    if provider is None:
        raise NotFound(f"no payment provider {provider_name!r} is configured")
    try:
        event = provider.verify_webhook(body, headers, now=now)
    except SignatureError as exc:
        raise BadSignature(str(exc)) from exc
    async with ctx.db.transaction() as tx:
        return await store_event_in(ctx, tx, provider_name, event, body)


async def store_event_in(ctx: Ctx, tx: Tx, provider_name: str, event: WebhookEvent,
                         body: bytes) -> bool:
    """Store a provider event once and queue it for the worker; False for a duplicate."""
    row_id = uuid7()
    if not await store.insert_event(tx, row_id, provider_name, event, body, ctx.clock.now()):
        return False
    await ctx.publish(tx, WebhookReceived(event_row_id=row_id, provider=provider_name),
                      actor=f"system:{provider_name}")
    return True


async def request_refund(ctx: Ctx, actor: Actor, intent_id: uuid.UUID, data: RefundIn,
                         key: str) -> RefundOut:
    """Refund part or all of a captured intent (admins); the same ``key`` refunds once.

    :raises Forbidden: the actor is not an admin.
    :raises NotFound: no such intent.
    :raises RefundTooLarge: more than is left of what was captured.
    """
    if not (actor.kind == "system" or actor.has_any(["admin"])):
        raise Forbidden("only an admin issues refunds")
    if not key:
        raise BadRequest("a refund needs an Idempotency-Key header", field="Idempotency-Key")
    async with ctx.db.transaction() as tx:
        done = await store.refund_by_key(tx, f"manual:{key}")
        if done is not None:
            return refund_out(done)
        intent = await store.intent_for_update(tx, intent_id)
        if intent is None:
            raise NotFound(f"no payment intent {intent_id}")
        row = await refund_in(ctx, tx, actor, intent, data.amount_minor, data.reason,
                              f"manual:{key}")
        assert row is not None  # the key was free, checked above under the intent's lock
        return refund_out(row)


async def refund_in(ctx: Ctx, tx: Tx, actor: Actor, intent: dict[str, Any], amount: int,
                    reason: str, key: str) -> dict[str, Any] | None:
    """Write a pending refund of a locked intent and queue it; None when ``key`` already made
    one. :raises RefundTooLarge: above what is left of the captured amount."""
    left = intent["captured_minor"] - intent["refunded_minor"]
    if amount > left:
        raise RefundTooLarge(f"at most {left} paise of this payment can still be refunded",
                             left_minor=left)
    row = await store.insert_refund(tx, uuid7(), intent, amount, reason, key, actor.ref,
                                    ctx.clock.now())
    if row is None:
        return None
    await store.update_intent(tx, intent["id"], ctx.clock.now(),
                              refunded_minor=intent["refunded_minor"] + amount)
    await ctx.publish(tx, RefundRequested(
        refund_id=row["id"], intent_id=intent["id"], booking_id=intent["booking_id"],
        amount_minor=amount, currency=intent["currency"], reason=reason), actor=actor.ref)
    return row


async def refunds_for_cancellation_in(ctx: Ctx, tx: Tx, actor: Actor, booking_id: uuid.UUID,
                                      refund_minor: int) -> list[dict[str, Any]]:
    """Refund ``refund_minor`` of a cancelled booking across its captured intents (locked
    in id order); once per booking and intent, however often it runs."""
    made = []
    remaining = refund_minor
    for intent in await store.captured_intents_for_update(tx, booking_id):
        if remaining <= 0:
            break
        key = f"cancel:{booking_id}:{intent['id']}"
        done = await store.refund_by_key(tx, key)
        if done is not None:
            remaining -= done["amount_minor"]
            continue
        take = min(remaining, intent["captured_minor"] - intent["refunded_minor"])
        if take > 0:
            row = await refund_in(ctx, tx, actor, intent, take, "cancellation", key)
            if row is not None:
                made.append(row)
            remaining -= take
    if remaining > 0:
        ctx.log.error("payments: booking %s was to refund %d paise more than it has captured",
                      booking_id, remaining)
    return made


async def intent_detail(ctx: Ctx, intent_id: uuid.UUID) -> dict[str, Any] | None:
    """An intent with its provider events and refunds (the console)."""
    intent = await store.intent(ctx.db, intent_id)
    if intent is None:
        return None
    events = await store.events_of_intent(ctx.db, intent)
    refunds = [r for r in await store.refunds_of_booking(ctx.db, intent["booking_id"])
               if r["intent_id"] == intent_id]
    return {"intent": intent, "events": events, "refunds": refunds}

