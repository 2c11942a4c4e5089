"""Reconciliation: what the provider knows that our webhooks did not tell us.

- ``poll`` (every minute, and ``propmubi payments poll``): asks the provider about intents
  still open ``stuck_after_minutes`` after their last change, and feeds what it learns through
  the webhook path (a stored event with a ``poll:`` id, applied by the worker), so a lost
  webhook cannot leave a captured payment unconfirmed. An intent whose provider order was
  never made fails; a refund still unsent is queued again (the provider's idempotency key is
  the refund's id, so it is sent once).
- ``settle`` (nightly for yesterday, and ``propmubi payments reconcile --day``): matches every
  line of each provider's settlement report to exactly one payment or refund of ours and
  records the differences (unknown id, amount mismatch, a payment we do not hold as
  captured), which the console's reconciliation page lists.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import attrs

from propmubi_plugins.payments import store
from propmubi_plugins.payments.events import RefundRequested
from propmubi_plugins.payments.providers.base import ProviderError, WebhookEvent
from propmubi_plugins.payments.service import store_event_in
from propmubi_plugins.payments.state import Ctx

#: Intents asked about per run and provider.
POLL_BATCH = 100
#: An intent is asked about for this long after it was opened; a buyer who never paid
#: leaves an intent that stays "created" and is not asked about for ever.
POLL_FOR = dt.timedelta(days=1)


@attrs.frozen
class PollReport:
    asked: int
    news: int
    failed_orderless: int
    requeued_refunds: int


async def poll(ctx: Ctx) -> PollReport:
    """Ask providers about stuck intents; fail orderless ones; queue unsent refunds."""
    now = ctx.clock.now()
    before = now - dt.timedelta(minutes=ctx.settings.stuck_after_minutes)
    asked = news = 0
    since = now - POLL_FOR
    for intent in await store.stuck_intents(ctx.db, before, since, POLL_BATCH):
        provider = ctx.state.providers.get(intent["provider"])
        if provider is None:
            continue
        asked += 1
        try:
            seen = await provider.fetch(intent["provider_order_id"])
        except ProviderError as exc:
            ctx.log.warning("payments poll: %s about %s: %s", intent["provider"],
                            intent["provider_order_id"], exc)
            continue
        if seen.status not in ("authorized", "captured", "failed") or (
                seen.status == intent["status"]):
            continue  # nothing a webhook would have said (created, attempted, no news)
        event = WebhookEvent(
            event_id=f"poll:{seen.order_id}:{seen.status}:{seen.payment_id or ''}",
            kind=f"payment.{seen.status}", order_id=seen.order_id, payment_id=seen.payment_id,
            refund_id=None, amount_minor=seen.amount_minor, currency=seen.currency,
            raw_type=f"poll.{seen.status}")
        async with ctx.db.transaction() as tx:
            news += await store_event_in(ctx, tx, intent["provider"], event,
                                         b'{"source": "poll"}')
    failed = 0
    for intent in await store.orderless_intents(ctx.db, before):
        async with ctx.db.transaction() as tx:
            locked = await store.intent_for_update(tx, intent["id"])
            if locked and locked["provider_order_id"] is None and locked["status"] == "created":
                await store.update_intent(tx, intent["id"], now, status="failed",
                                          failure_reason="no provider order was made")
                failed += 1
    requeued = await _requeue_refunds(ctx, before)
    return PollReport(asked=asked, news=news, failed_orderless=failed,
                      requeued_refunds=requeued)


async def _requeue_refunds(ctx: Ctx, before: dt.datetime) -> int:
    rows = await ctx.db.fetch(
        "SELECT id, intent_id, booking_id, amount_minor, currency, reason FROM payments_refunds"
        " WHERE status = 'pending' AND provider_refund_id IS NULL AND updated_at < %s"
        " ORDER BY updated_at LIMIT %s", (before, POLL_BATCH))
    for row in rows:
        async with ctx.db.transaction() as tx:
            await tx.execute("UPDATE payments_refunds SET updated_at = %s WHERE id = %s",
                             (ctx.clock.now(), row["id"]))
            await ctx.publish(tx, RefundRequested(
                refund_id=row["id"], intent_id=row["intent_id"], booking_id=row["booking_id"],
                amount_minor=row["amount_minor"], currency=row["currency"],
                reason=row["reason"]), actor="system:payments-poll")
    return len(rows)


@attrs.frozen
class SettleReport:
    day: dt.date
    lines: int
    matched: int
    problems: list[dict[str, Any]]


async def settle(ctx: Ctx, day: dt.date) -> SettleReport:
    """Match each provider's settlement lines of ``day``; record and return the problems."""
    lines = matched = 0
    problems: list[dict[str, Any]] = []
    for name, provider in ctx.state.providers.items():
        for line in await provider.settlements(day):
            lines += 1
            status, detail, intent_id, refund_id = await _match(ctx, name, line)
            matched += status == "matched"
            async with ctx.db.transaction() as tx:
                await store.upsert_settlement_line(tx, name, line, intent_id, refund_id,
                                                   status, detail, ctx.clock.now())
            if status != "matched":
                problems.append({"provider": name, "kind": line.kind,
                                 "provider_id": line.provider_id, "status": status,
                                 "detail": detail})
    return SettleReport(day=day, lines=lines, matched=matched, problems=problems)


async def _match(ctx: Ctx, provider: str, line: Any) -> tuple[str, str, Any, Any]:
    if line.kind == "payment":
        intent = await store.intent_by_payment_id(ctx.db, provider, line.provider_id)
        if intent is None:
            return "unknown", "no payment of ours has this id", None, None
        if intent["status"] != "captured":
            return ("not-captured", f"we hold this payment as {intent['status']}",
                    intent["id"], None)
        if (intent["captured_minor"], intent["currency"]) != (line.amount_minor,
                                                              line.currency):
            return ("amount-mismatch", f"settled {line.amount_minor} {line.currency}, captured"
                    f" {intent['captured_minor']} {intent['currency']}", intent["id"], None)
        return "matched", "", intent["id"], None
    refund = await store.refund_by_provider_ref(ctx.db, provider, line.provider_id)
    if refund is None:
        return "unknown", "no refund of ours has this id", None, None
    if refund["amount_minor"] != abs(line.amount_minor):
        return ("amount-mismatch", f"settled {line.amount_minor}, refunded"
                f" {refund['amount_minor']}", refund["intent_id"], refund["id"])
    return "matched", "", refund["intent_id"], refund["id"]


async def poll_job(ctx: Ctx) -> None:
    """The scheduler's minute job."""
    report = await poll(ctx)
    if report.asked or report.failed_orderless or report.requeued_refunds:
        ctx.log.info("payments poll: %s", attrs.asdict(report))


async def settle_job(ctx: Ctx) -> None:
    """The scheduler's nightly job: yesterday (UTC)."""
    report = await settle(ctx, ctx.clock.now().date() - dt.timedelta(days=1))
    log = ctx.log.warning if report.problems else ctx.log.info
    log("payments settlement %s: %d lines, %d matched, %d problems", report.day,
        report.lines, report.matched, len(report.problems))
