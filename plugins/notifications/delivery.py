"""Sending: the delivery state machine, at most one delivered message per (notification,
channel).

A delivery is ``pending`` (or ``deferred``) until it is due. To send it, a worker **claims**
it in a committed transaction: the row is locked with ``FOR UPDATE SKIP LOCKED`` (two workers
never claim the same delivery), the rules are checked (opt-out, quiet hours, promotional
window, daily cap: each holds back promotional messages only; every non-critical message
counts against the cap), and it becomes ``sending`` with its attempt number, its provider and
a lease; an attempt row is written. Only then is the provider called, outside any transaction.
A second transaction records the outcome:

- accepted: ``sent`` (``notifications.message_delivered``);
- refused for good (``retryable=False``): ``failed`` (``notifications.message_failed``); a
  push refused for its token moves on to the next token, and a token the provider says is
  dead (``address_gone``) is deleted from the device registry;
- a definite, retryable failure: the next provider of the channel's chain at once; after the
  last one, the primary again after an exponential backoff;
- maybe sent (``maybe_sent=True``, or no answer within ``send_timeout``): the attempt is
  **ambiguous** and is settled as below.

A delivery whose recipient was erased (``masked_at``, see service.erase_user_in) is skipped
when it comes up again; error texts are stored with the address masked in them (privacy.py).
The console providers' messages are kept for the Dev outbox with the address masked, the
user id and a keyed hash of the address (so that an erasure finds them).

A worker that dies mid-send leaves the delivery ``sending``; once its lease has expired,
:func:`recover` closes the attempt as ``interrupted``: an ambiguous attempt too.

**Settling an ambiguous attempt** (the provider may have accepted the message). The delivery
is **pinned** to that provider (never handed to another one) and what happens next is the
provider's to say (``providers.base.settling``):

- it has a ``lookup`` (``http_sms``): the delivery is claimed again (after a backoff; at once
  after an interruption) and the provider is first asked whether it accepted the message
  since the first ambiguous attempt started (bounded by ``send_timeout``). Found: the
  delivery is ``sent`` with the provider's id and the attempt ``found``, nothing is resent.
  Not found: the message is sent in the same attempt, through the same provider, with the
  same key. The lookup failing: the attempt is ``lookup_failed`` and the delivery is asked
  again after a backoff, ``unknown`` once its attempts run out;
- it ``dedupes`` (``fcm``: the same collapse key shows one notification): resent through it
  with the same ``Message.key``, after a backoff (at once after an interruption);
- neither (``smtp``): ``unknown`` at once, never resent automatically (at most once); staff
  see why in the console's ledger.

A direct send (its body is not stored), a provider no longer configured, attempts run out or
``resend_interrupted = false`` (for interruptions) also end ``unknown``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import math
import time
import uuid
import zoneinfo
from typing import Any, cast

import attrs
import orjson
from prometheus_client import Counter, Histogram

from propmubi.actors import Actor
from propmubi.db import Tx
from propmubi_plugins.notifications import policy, privacy, store, templating, tokens
from propmubi_plugins.notifications.events import MessageDelivered, MessageFailed
from propmubi_plugins.notifications.models import PROMOTIONAL_CATEGORIES
from propmubi_plugins.notifications.providers.base import (
    Message,
    Provider,
    ProviderError,
    Receipt,
    SupportsLookup,
    settling,
)
from propmubi_plugins.notifications.settings import minutes_of
from propmubi_plugins.notifications.state import Ctx

__all__ = ["Claim", "Outcome", "decide", "deliver", "deliver_notification", "recover",
           "send_due"]

log = logging.getLogger(__name__)

MESSAGES = Counter("propmubi_notifications_messages_total",
                   "Deliveries that reached an end (sent, failed, unknown, skipped), by channel, "
                   "provider and outcome.", ["channel", "provider", "outcome"])
ATTEMPTS = Counter("propmubi_notifications_attempts_total",
                   "Provider calls, by channel, provider and result (sent, failed, retryable, "
                   "maybe_sent, interrupted, found, lookup_failed).",
                   ["channel", "provider", "result"])
ATTEMPT_SECONDS = Histogram("propmubi_notifications_attempt_duration_seconds",
                            "Time of one provider call.", ["channel", "provider"],
                            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))

#: The actor of the worker's and scheduler's changes.
SENDER = Actor.system("notifications")
#: Where unsubscribe links point (under the public URL).
UNSUBSCRIBE_PATH = "/api/v1/notifications/unsubscribe/"
#: Console messages kept for the Dev outbox page, and for how long.
DEV_OUTBOX_KEEP = 100
DEV_OUTBOX_TTL = 86_400
#: Tokens tried at most for one push beyond the attempts.
_EXTRA_STEPS = 10
#: Attempt results after which the provider may have accepted the message.
AMBIGUOUS = ("maybe_sent", "interrupted", "sending")


@attrs.frozen
class Claim:
    """A delivery this worker holds: send ``message`` through ``provider`` now."""

    delivery_id: uuid.UUID
    notification_id: uuid.UUID
    type: str
    user_id: uuid.UUID | None
    channel: str
    attempt_no: int
    provider: Provider
    message: Message
    direct: bool
    #: The address as the ledger keeps it (masked for a direct send; ``message.to`` is whole).
    address: str = ""
    #: Settle an ambiguous earlier attempt first: ask the provider (its ``lookup``) whether
    #: it accepted the message since then (the first ambiguous attempt's start); None: send.
    since: dt.datetime | None = None


@attrs.frozen
class Outcome:
    """What the provider call did."""

    receipt: Receipt | None = None
    error: str | None = None
    retryable: bool = False
    maybe_sent: bool = False
    duration_ms: int = 0
    #: The provider said the address no longer exists (an unregistered push token).
    address_gone: bool = False
    #: The receipt was found by the provider's lookup: nothing was sent by this attempt.
    found: bool = False
    #: The lookup failed: whether the provider accepted the message is still unknown (with
    #: ``maybe_sent``; nothing was sent by this attempt).
    lookup_failed: bool = False

    @property
    def result(self) -> str:
        """The attempt row's status."""
        if self.receipt is not None:
            return "found" if self.found else "sent"
        if self.lookup_failed:
            return "lookup_failed"
        if self.maybe_sent:
            return "maybe_sent"
        return "retryable" if self.retryable else "failed"


class _HeldBack(Exception):
    """The rules hold the delivery back (it was deferred or skipped)."""


# -- the loop -------------------------------------------------------------------------------------

async def deliver(ctx: Ctx, delivery_id: uuid.UUID, *, direct: Message | None = None,
                  deadline: float | None = None) -> None:
    """Send one delivery if it is due: claim, call, record, again while a fallback or the
    next token is to be tried at once.

    :param direct: the message of a direct send (``send_now``), which is not stored.
    :param deadline: a ``ctx.clock.monotonic()`` time after which no new call starts (an
        event handler's time limit); what is left waits for the ``send_due`` job.
    """
    for _ in range(ctx.settings.max_attempts + _EXTRA_STEPS):
        if deadline is not None and ctx.clock.monotonic() + ctx.settings.send_timeout > deadline:
            return
        held = await claim(ctx, delivery_id, direct)
        if held is None:
            return
        outcome = await call(ctx, held)
        if not await record(ctx, held, outcome):
            return


async def deliver_notification(ctx: Ctx, notification_id: uuid.UUID,
                               deadline: float | None = None) -> None:
    """Send every due delivery of a notification (the worker's handler)."""
    for row in await store.deliveries_of(ctx.db, notification_id):
        if row["status"] in ("pending", "deferred") and row["template_id"] is not None:
            await deliver(ctx, row["id"], deadline=deadline)


async def send_due(ctx: Ctx) -> int:
    """The ``send_due`` job: recover expired leases, then send what is due (retries after
    their backoff, deferred messages whose window opened); how many it tried."""
    await recover(ctx)
    ids = await store.due_deliveries(ctx.db, ctx.clock.now(), ctx.settings.batch_size)
    for delivery_id in ids:
        await deliver(ctx, delivery_id)
    return len(ids)


# -- claim ----------------------------------------------------------------------------------------

async def claim(ctx: Ctx, delivery_id: uuid.UUID, direct: Message | None = None
                ) -> Claim | None:
    """Claim the delivery for one attempt (committed before the provider is called); None
    when it is not due, held by another worker, already done, or held back by the rules."""
    async with ctx.db.transaction() as tx:
        try:
            return await _claim_in(ctx, tx, delivery_id, direct)
        except _HeldBack:
            return None  # deferred or skipped: that change commits


async def _claim_in(ctx: Ctx, tx: Tx, delivery_id: uuid.UUID, direct: Message | None
                    ) -> Claim | None:
    settings = ctx.settings
    now = ctx.clock.now()
    row = await store.lock_delivery(tx, delivery_id, ("pending", "deferred"),
                                    None if direct is not None else now)
    if row is None:
        return None
    if direct is None and row["masked_at"] is not None:
        await _skip(ctx, tx, row, now, "the recipient's account was erased")
    if direct is None:
        await _rules(ctx, tx, row, now)
        message = await _message(ctx, tx, row, now)
    else:
        message = direct
    provider = _provider_for(ctx, row)
    if provider is None:
        await _finish(ctx, tx, row, "unknown", now,
                      f"pinned to {row['provider']}, which is no longer configured for this "
                      "channel: it may have sent the message")
        return None
    since = None
    if row["pinned"]:
        # An earlier attempt may have been accepted: settle it (see the module).
        how = settling(provider)
        if how is None:
            await _finish(ctx, tx, row, "unknown", now, _cannot_settle(provider.name))
            return None
        if how == "lookup":
            since = await _ambiguous_since(tx, row, provider.name)
    attempt_no = row["attempts"] + 1
    counted = (policy.local_day(now, _zone(row))
               if row["kind"] != "critical" and row["user_id"] is not None else None)
    await store.set_delivery(
        tx, delivery_id, status="sending", attempts=attempt_no, provider=provider.name,
        lease_expires_at=now + dt.timedelta(seconds=settings.lease_seconds),
        counted_on=counted, updated_at=now)
    address = row["addresses"][row["address_index"]]
    await store.insert_attempt(tx, delivery_id, attempt_no, provider.name, address, now)
    return Claim(delivery_id=delivery_id, notification_id=row["notification_id"],
                 type=row["type"], user_id=row["user_id"], channel=row["channel"],
                 attempt_no=attempt_no, provider=provider, message=message,
                 direct=direct is not None, address=address, since=since)


async def _ambiguous_since(tx: Tx, row: dict[str, Any], provider: str) -> dt.datetime:
    """When the first attempt through ``provider`` that may have been accepted started (the
    delivery's creation when none is recorded): what a lookup looks back to."""
    starts = [a["started_at"] for a in await store.attempts_of(tx, row["id"])
              if a["provider"] == provider and a["status"] in AMBIGUOUS]
    return min(starts) if starts else row["created_at"]


def _cannot_settle(provider: str) -> str:
    """Why an ambiguous message of a provider that can neither be asked nor de-duplicates
    is ``unknown``."""
    return (f"{provider} may have accepted it, and it can neither be asked whether it did nor "
            "merge a resend into one message: not resent, so that the recipient never gets "
            f"it twice. Check {provider}'s own records (its logs, searched for the message "
            "key) before sending anything again")


def _zone(row: dict[str, Any]) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(row.get("time_zone") or "UTC")


def _provider_for(ctx: Ctx, row: dict[str, Any]) -> Provider | None:
    """The provider of this attempt: the pinned one (or None when it is gone), the one the
    last outcome chose, or the primary."""
    named = ctx.state.provider(row["channel"], row["provider"]) if row["provider"] else None
    if row["pinned"]:
        return named
    return named or ctx.state.providers[row["channel"]][0]


async def _rules(ctx: Ctx, tx: Tx, row: dict[str, Any], now: dt.datetime) -> None:
    """Opt-outs, quiet hours, the promotional window and the daily cap, all of which hold
    back promotional messages only; raise :class:`_HeldBack` (after deferring or skipping the
    delivery, which commits) when one does. Transactional and critical messages and messages
    to no user pass."""
    settings = ctx.settings
    user_id = row["user_id"]
    if row["kind"] == "critical" or user_id is None:
        return
    zone = _zone(row)
    promotional = row["kind"] == "promotional"
    if promotional:
        if await store.is_opted_out(tx, user_id, row["category"], row["channel"]):
            await _skip(ctx, tx, row, now, f"opted out of {row['category']} on "
                                           f"{row['channel']}")
        quiet = policy.Window(minutes_of(settings.quiet_hours_start),
                              minutes_of(settings.quiet_hours_end), zone)
        window = policy.Window(minutes_of(settings.promotional_start),
                               minutes_of(settings.promotional_end),
                               zoneinfo.ZoneInfo(settings.promotional_time_zone))
        when = policy.next_allowed(now, quiet, window)
        if when is None:
            await _skip(ctx, tx, row, now, f"quiet hours in {zone.key} never meet the "
                                           "promotional window")
        elif when > now:
            await _defer(tx, row, now, when, "promotional: waits for the promotional window "
                         "outside the recipient's quiet hours")
    if settings.daily_cap and promotional:
        # Every non-critical message of the day counts (its ``counted_on``, set at the
        # claim), but only a promotional one is held back: a transactional message (a new
        # lead, a visit) is never late because of marketing or a busy day.
        await store.lock_user_cap(tx, user_id)
        if await store.counted_today(tx, user_id, policy.local_day(now, zone)) \
                >= settings.daily_cap:
            await _skip(ctx, tx, row, now, f"daily cap of {settings.daily_cap} reached")


async def _defer(tx: Tx, row: dict[str, Any], now: dt.datetime, until: dt.datetime,
                 reason: str) -> None:
    await store.set_delivery(tx, row["id"], status="deferred", next_attempt_at=until,
                             reason=reason, updated_at=now)
    raise _HeldBack


async def _skip(ctx: Ctx, tx: Tx, row: dict[str, Any], now: dt.datetime, reason: str) -> None:
    await store.set_delivery(tx, row["id"], status="skipped", reason=reason, updated_at=now)
    MESSAGES.labels(row["channel"], row["provider"] or "", "skipped").inc()
    raise _HeldBack


async def _message(ctx: Ctx, tx: Tx, row: dict[str, Any], now: dt.datetime) -> Message:
    """The message of a templated delivery, rendered now (a template edited since the
    request applies); a template switched off skips it, one that cannot be rendered fails
    it."""
    template = await store.template(tx, row["template_id"])
    if template is None or not template["active"]:
        await _skip(ctx, tx, row, now, "its template is switched off")
        raise AssertionError("unreachable")
    values = {str(k): str(v) for k, v in (row["variables"] or {}).items()}
    try:
        body = templating.render(template["body"], values)
        subject = (templating.render(template["subject"], values)
                   if template["subject"] else None)
    except KeyError as exc:
        await _finish(ctx, tx, row, "failed", now,
                      f"the template needs {{#{exc.args[0]}#}} and the request gave no value")
        raise _HeldBack from None
    data: dict[str, str] = {"notification_id": str(row["notification_id"]),
                            "type": row["type"], "category": row["category"]}
    if (row["channel"] == "email" and row["category"] in PROMOTIONAL_CATEGORIES
            and row["user_id"] is not None):
        link = unsubscribe_url(ctx, row["user_id"], row["category"])
        data["list_unsubscribe"] = link
        body = f"{body}\n\n--\nUnsubscribe: {link}"
    return Message(key=row["message_key"], channel=row["channel"],
                   to=row["addresses"][row["address_index"]], body=body, subject=subject,
                   template_id=template["dlt_template_id"], data=data)


def unsubscribe_url(ctx: Ctx, user_id: uuid.UUID, category: str) -> str:
    """The one-click unsubscribe link of a user and category."""
    token = tokens.sign(ctx.state.unsubscribe_key, user_id, category)
    return f"{ctx.state.public_url}{UNSUBSCRIBE_PATH}{token}"


# -- call -----------------------------------------------------------------------------------------

async def call(ctx: Ctx, claim: Claim) -> Outcome:
    """Call the provider (bounded by ``send_timeout``); never raises for its failures. The
    address is masked in the error text (providers often quote what they refused): the
    ledger and the events never hold it in free text."""
    started = time.monotonic()
    provider = claim.provider
    settled = await _look_up(ctx, claim) if claim.since is not None else None
    if settled is not None:
        outcome = settled
    else:
        outcome = await _send(ctx, claim)
    elapsed = time.monotonic() - started
    ATTEMPT_SECONDS.labels(claim.channel, provider.name).observe(elapsed)
    ATTEMPTS.labels(claim.channel, provider.name, outcome.result).inc()
    error = privacy.redact(outcome.error, claim.channel, [claim.message.to])
    return attrs.evolve(outcome, error=error, duration_ms=int(elapsed * 1000))


async def _look_up(ctx: Ctx, claim: Claim) -> Outcome | None:
    """Ask the provider whether it accepted the message since ``claim.since`` (bounded by
    ``send_timeout``): an outcome when it did (``found``) or could not tell
    (``lookup_failed``); None when it certainly has not (send it now)."""
    provider = claim.provider
    assert claim.since is not None
    lookup = cast(SupportsLookup, provider).lookup  # settling() said it has one
    try:
        async with asyncio.timeout(ctx.settings.send_timeout):
            receipt = await lookup(claim.message, claim.since)
    except ProviderError as exc:
        error = f"could not ask {provider.name} whether it accepted it: {exc}"
    except TimeoutError:
        error = (f"could not ask {provider.name} whether it accepted it: no answer within "
                 f"{ctx.settings.send_timeout} s")
    except Exception as exc:  # a provider's bug: still unknown
        log.exception("notifications: provider %s's lookup raised", provider.name)
        error = (f"could not ask {provider.name} whether it accepted it: "
                 f"{type(exc).__name__}: {exc}")
    else:
        if receipt is None:
            log.info("notifications: %s has no %s: sending it", provider.name,
                     claim.message.key)
            return None
        return Outcome(receipt=receipt, found=True)
    return Outcome(error=error, retryable=True, maybe_sent=True, lookup_failed=True)


async def _send(ctx: Ctx, claim: Claim) -> Outcome:
    """One send through the claim's provider (bounded by ``send_timeout``)."""
    provider = claim.provider
    try:
        async with asyncio.timeout(ctx.settings.send_timeout):
            receipt = await provider.send(claim.message)
        outcome = Outcome(receipt=receipt)
    except ProviderError as exc:
        outcome = Outcome(error=str(exc) or type(exc).__name__, retryable=exc.retryable,
                          maybe_sent=exc.maybe_sent,
                          address_gone=getattr(exc, "address_gone", False))
    except TimeoutError:
        outcome = Outcome(error=f"no answer within {ctx.settings.send_timeout} s",
                          retryable=True, maybe_sent=True)
    except Exception as exc:
        # A provider's bug: whether it sent anything is unknown.
        log.exception("notifications: provider %s raised", provider.name)
        outcome = Outcome(error=f"{type(exc).__name__}: {exc}", retryable=True,
                          maybe_sent=True)
    return outcome


# -- record ---------------------------------------------------------------------------------------

async def record(ctx: Ctx, claim: Claim, outcome: Outcome) -> bool:
    """Record the outcome of a claimed attempt; True when the next attempt (a fallback
    provider, the next push token) is due at once."""
    settings = ctx.settings
    now = ctx.clock.now()
    again = False
    async with ctx.db.transaction() as tx:
        receipt = outcome.receipt
        await store.finish_attempt(tx, claim.delivery_id, claim.attempt_no, outcome.result,
                                   outcome.error,
                                   receipt.provider_message_id if receipt else None, now,
                                   outcome.duration_ms)
        row = await store.lock_delivery_wait(tx, claim.delivery_id)
        if row is None:
            return False
        row = {**row, "type": claim.type}
        if row["status"] != "sending" or row["attempts"] != claim.attempt_no:
            # Our lease ran out and the delivery was taken over: say what we know.
            log.warning("notifications: delivery %s attempt %s ended after its lease (%s)",
                        claim.delivery_id, claim.attempt_no, outcome.result)
            if receipt is not None and row["status"] in ("pending", "deferred"):
                await _sent(ctx, tx, row, receipt, now)
            return False
        if receipt is not None:
            await _sent(ctx, tx, row, receipt, now,
                        reason=(f"{claim.provider.name} had accepted it (found by asking it "
                                "after an attempt that may have been sent): not resent"
                                if outcome.found else None))
        elif outcome.maybe_sent:
            await _ambiguous(ctx, tx, row, claim, outcome, now)
        elif not outcome.retryable:
            if outcome.address_gone and claim.channel == "push":
                # The app was uninstalled: no notification will ever reach this token.
                await store.delete_device(tx, claim.message.to)
            tokens_left = row["address_index"] + 1 < len(row["addresses"])
            if tokens_left and claim.attempt_no < settings.max_attempts:
                await store.set_delivery(
                    tx, row["id"], status="pending", address_index=row["address_index"] + 1,
                    provider=None, lease_expires_at=None, counted_on=None, next_attempt_at=now,
                    reason=f"{claim.provider.name} refused the address: {outcome.error}",
                    updated_at=now)
                again = True
            else:
                await _finish(ctx, tx, row, "failed", now,
                              f"{claim.provider.name} refused it: {outcome.error}")
        elif claim.attempt_no >= settings.max_attempts:
            await _finish(ctx, tx, row, "failed", now, f"gave up after {claim.attempt_no} "
                          f"attempts; last: {claim.provider.name}: {outcome.error}")
        elif row["pinned"]:
            if claim.direct:
                await _finish(ctx, tx, row, "unknown", now, f"{outcome.error}")
            else:
                await _retry_later(ctx, tx, row, now, outcome.error, pinned=True)
        else:
            names = [p.name for p in ctx.state.providers[claim.channel]]
            position = names.index(claim.provider.name) if claim.provider.name in names else -1
            if position + 1 < len(names):
                await store.set_delivery(
                    tx, row["id"], status="pending", provider=names[position + 1],
                    lease_expires_at=None, counted_on=None, next_attempt_at=now,
                    reason=f"{claim.provider.name}: {outcome.error}; trying "
                           f"{names[position + 1]}", updated_at=now)
                again = True
            elif claim.direct:
                await _finish(ctx, tx, row, "failed", now,
                              f"every provider failed; last: {claim.provider.name}: "
                              f"{outcome.error}")
            else:
                await _retry_later(ctx, tx, row, now, outcome.error, pinned=False,
                                   provider=names[0], rounds=math.ceil(
                                       claim.attempt_no / max(1, len(names))))
    if receipt is not None and not outcome.found:
        await _dev_outbox(ctx, claim, now)
    return again


async def _ambiguous(ctx: Ctx, tx: Tx, row: dict[str, Any], claim: Claim, outcome: Outcome,
                     now: dt.datetime) -> None:
    """The attempt may have been accepted (or a lookup could not tell): pin the delivery
    and settle it later as the provider allows, or end it ``unknown`` (see the module)."""
    name = claim.provider.name
    how = settling(claim.provider)
    if claim.direct:
        await _finish(ctx, tx, row, "unknown", now, f"may have been sent by {name}: "
                      f"{outcome.error} (a direct send is never resent: its body is not "
                      "stored)")
    elif how is None:
        await _finish(ctx, tx, row, "unknown", now, f"{outcome.error}. {_cannot_settle(name)}")
    elif claim.attempt_no >= ctx.settings.max_attempts:
        await _finish(ctx, tx, row, "unknown", now,
                      f"may have been sent by {name}: {outcome.error}; gave up after "
                      f"{claim.attempt_no} attempts. Check {name}'s own records before "
                      "sending anything again")
    else:
        await _retry_later(ctx, tx, row, now, outcome.error, pinned=True,
                           settle="asked whether it accepted it" if how == "lookup"
                           else "resent with the same key (it de-duplicates)")


def backoff(ctx: Ctx, rounds: int) -> dt.timedelta:
    """The wait after ``rounds`` failed rounds: base, doubling, up to the cap."""
    settings = ctx.settings
    seconds = min(settings.backoff_cap, settings.backoff_base * 2 ** max(0, rounds - 1))
    return dt.timedelta(seconds=seconds)


async def _retry_later(ctx: Ctx, tx: Tx, row: dict[str, Any], now: dt.datetime,
                       error: str | None, *, pinned: bool, provider: str | None = None,
                       rounds: int | None = None, settle: str | None = None) -> None:
    when = now + backoff(ctx, rounds if rounds is not None else row["attempts"])
    if settle is None and pinned:
        settle = ("asked whether it accepted it" if settling(
            ctx.state.provider(row["channel"], row["provider"] or "")) == "lookup"
            else "retried")
    await store.set_delivery(
        tx, row["id"], status="pending", pinned=pinned, provider=provider or row["provider"],
        lease_expires_at=None, next_attempt_at=when,
        counted_on=row["counted_on"] if pinned else None,
        reason=(f"{row['provider']}: {error}; "
                + (f"{settle} only through {row['provider']} (it may have accepted it)"
                   if pinned else "retried") + f" at {when:%H:%M:%S} UTC"),
        updated_at=now)


async def _sent(ctx: Ctx, tx: Tx, row: dict[str, Any], receipt: Receipt,
                now: dt.datetime, *, reason: str | None = None) -> None:
    await store.set_delivery(tx, row["id"], status="sent",
                             provider_message_id=receipt.provider_message_id, sent_at=now,
                             lease_expires_at=None, reason=reason, updated_at=now)
    MESSAGES.labels(row["channel"], row["provider"] or "", "sent").inc()
    await ctx.publish(tx, MessageDelivered(
        notification_id=row["notification_id"], delivery_id=row["id"], type=row["type"],
        user_id=row["user_id"], channel=row["channel"], provider=row["provider"] or "",
        attempts=row["attempts"]), actor=SENDER.ref)


async def _finish(ctx: Ctx, tx: Tx, row: dict[str, Any], status: str, now: dt.datetime,
                  reason: str) -> None:
    """End a delivery as ``failed`` or ``unknown`` and say so."""
    await store.set_delivery(tx, row["id"], status=status, reason=reason[:2000],
                             lease_expires_at=None,
                             counted_on=row["counted_on"] if status == "unknown" else None,
                             updated_at=now)
    MESSAGES.labels(row["channel"], row["provider"] or "", status).inc()
    await ctx.publish(tx, MessageFailed(
        notification_id=row["notification_id"], delivery_id=row["id"], type=row["type"],
        user_id=row["user_id"], channel=row["channel"], status=status, error=reason[:2000],
        attempts=row["attempts"]), actor=SENDER.ref)


async def decide(ctx: Ctx, tx: Tx, row: dict[str, Any], decision: str, now: dt.datetime
                 ) -> None:
    """Apply staff's decision about an ``unknown`` delivery (locked by the caller), made
    after checking the provider's own records: ``delivered`` (``sent``, and
    ``notifications.message_delivered``), ``failed`` (``failed``, and
    ``notifications.message_failed``), or ``resend``: due again at once through the
    channel's primary, not pinned (staff know the provider did not accept it), with the
    attempts left and at least one."""
    if decision == "delivered":
        await _sent(ctx, tx, row, Receipt(provider=row["provider"] or "",
                                          provider_message_id=row["provider_message_id"] or ""),
                    now, reason="staff confirmed it was delivered")
    elif decision == "failed":
        await _finish(ctx, tx, row, "failed", now, "staff confirmed it was not delivered")
    else:
        await store.set_delivery(
            tx, row["id"], status="pending", pinned=False, provider=None,
            lease_expires_at=None, counted_on=None, next_attempt_at=now,
            reason="staff confirmed it was not delivered: sent again", updated_at=now)


async def _dev_outbox(ctx: Ctx, claim: Claim, now: dt.datetime) -> None:
    """Keep what a console provider "sent" where the console's Dev outbox page reads it
    (every process: the worker sends, the web process shows it). Never in production."""
    if ctx.state.production or not claim.provider.name.startswith("console_"):
        return
    message = claim.message
    entry = orjson.dumps({
        "at": now.isoformat(), "channel": message.channel,
        "to": privacy.mask(message.channel, message.to),
        "to_hash": privacy.address_hash(ctx.state.unsubscribe_key, message.to),
        "user_id": str(claim.user_id) if claim.user_id else None,
        "subject": message.subject, "body": message.body,
        "provider": claim.provider.name, "key": message.key})
    key = ctx.keys("dev_outbox")
    try:
        pipe = ctx.redis.pipeline(transaction=True)
        pipe.lpush(key, entry)
        pipe.ltrim(key, 0, DEV_OUTBOX_KEEP - 1)
        pipe.expire(key, DEV_OUTBOX_TTL)
        await pipe.execute()
    except Exception:  # a development aid must never fail a send
        log.warning("notifications: could not keep a console message for the dev outbox",
                    exc_info=True)


async def scrub_dev_outbox(ctx: Ctx, user_id: uuid.UUID, addresses: list[str]) -> int:
    """Remove from the dev outbox every entry of a user, and every entry sent to one of
    ``addresses`` (a code sent before the account existed); how many."""
    key = ctx.keys("dev_outbox")
    hashes = {privacy.address_hash(ctx.state.unsubscribe_key, a) for a in addresses}
    removed = 0
    for raw in await ctx.redis.lrange(key, 0, -1):
        try:
            item = orjson.loads(raw)
        except orjson.JSONDecodeError:
            item = {}
        if item.get("user_id") == str(user_id) or item.get("to_hash") in hashes:
            value = raw.decode() if isinstance(raw, bytes) else raw  # orjson writes UTF-8
            removed += int(await ctx.redis.lrem(key, 0, value))
    return removed


async def dev_outbox(ctx: Ctx) -> list[dict[str, Any]]:
    """The last console messages, newest first."""
    entries = await ctx.redis.lrange(ctx.keys("dev_outbox"), 0, DEV_OUTBOX_KEEP - 1)
    out = []
    for entry in entries:
        item = orjson.loads(entry)
        item["at"] = dt.datetime.fromisoformat(item["at"])
        out.append(item)
    return out


# -- crashes --------------------------------------------------------------------------------------

async def recover(ctx: Ctx) -> int:
    """Deliveries left ``sending`` past their lease: their worker stopped mid-send, and the
    provider may have accepted the message. Each is pinned to that provider and due at once,
    to be settled as the provider allows (asked, or resent with the same key), or marked
    ``unknown`` (see the module docstring); how many."""
    settings = ctx.settings
    now = ctx.clock.now()
    async with ctx.db.transaction() as tx:
        rows = await store.lock_expired_leases(tx, now, settings.batch_size)
        for row in rows:
            await store.finish_attempt(tx, row["id"], row["attempts"], "interrupted",
                                       "the lease ran out while sending: the worker stopped "
                                       "mid-send", None, now, None)
            ATTEMPTS.labels(row["channel"], row["provider"] or "", "interrupted").inc()
            name = row["provider"] or ""
            provider = ctx.state.provider(row["channel"], name)
            how = settling(provider) if provider is not None else None
            why = None
            if provider is None:
                why = f"{name} is no longer configured for this channel"
            elif row["template_id"] is None:
                why = "a direct send is never resent (its body is not stored)"
            elif how is None:
                why = _cannot_settle(name)
            elif not settings.resend_interrupted:
                why = "resend_interrupted is off"
            elif row["attempts"] >= settings.max_attempts:
                why = f"its {row['attempts']} attempts ran out"
            if why is not None:
                if how is None and provider is not None:  # _cannot_settle says it all
                    reason = f"interrupted mid-send through {name}: {why}"
                else:
                    reason = (f"interrupted mid-send through {name}, which may have sent the "
                              f"message; not resent: {why}. Check with {name} before sending "
                              "anything again")
                await _finish(ctx, tx, row, "unknown", now, reason)
                continue
            await store.set_delivery(
                tx, row["id"], status="pending", pinned=True, lease_expires_at=None,
                next_attempt_at=now, updated_at=now,
                reason=(f"interrupted mid-send: {name} is asked whether it accepted it, and "
                        "it is sent only if not" if how == "lookup" else
                        f"interrupted mid-send: resent through {name} with the same key (it "
                        "de-duplicates)"))
    return len(rows)
