"""A stateful model of holds, payments, cancellations and refunds, checked against the real app.

Hypothesis drives random sequences over two units and three buyers: hold, extend and release
holds (also as another buyer), open payment intents, deliver the sandbox provider's signed
webhooks over HTTP (captured, failed, authorised; several copies at once; the same webhook
again later), pay LATE (the hold's ``expires_at`` moved into the past first, then maybe the
sweeper, maybe another buyer holding the unit, then the capture), run the expiry sweeper,
cancel confirmed bookings, let the sandbox "bank" pay out pending refunds, pause the worker
and drain the event bus. Every answer is compared with a model where the model is certain
(it is everywhere: the only asynchronous part, the worker, runs only when the test drains
the bus, and the model applies the same queued events, in the same order, at that moment).

After every step, read from the database:

- *always* (also while the worker is paused): at most one live booking per unit and the
  catalogue's unit status agrees with it; every intent's refunds never exceed its capture and
  ``refunded_minor`` is the sum of its refunds; a booking's ``captured_minor`` is the sum of
  the payments it accepted; the money balances: everything captured is kept by a booking or
  refunded (pending or processed); a refused capture is refunded in full in the same
  transaction; a booking's ``refunded_minor`` is what its *cancellation's* refunds paid out;
- *at rest* (the bus drained: every provider event applied, every decided refund sent to the
  provider): a cancelled booking's refunds add up to its ``refund_minor`` and fee + refund =
  captured, so every captured paisa sits with a confirmed booking, a cancellation fee or a
  refund;
- the database equals the model: every booking's status, amounts and extensions; every
  intent's status, amounts and booking outcome; every refund's reason, amount and status.

"At rest" deliberately does not require the refunds to be paid out (they wait for the
provider's webhook); the ``settle_everything`` rule pays every pending refund out and checks
that nothing is left pending and every cancelled booking with money to return is refunded.

How it is driven is the auth machine's way (``tests/plugins/auth/test_auth_state_machine.py``):
the state machine runs in a worker thread and submits each step's coroutine to the test's
loop. Each example gets a new published project (so new units) and three new buyers, and
ends with the bus drained, pending refunds paid out and stale holds swept; the data of
earlier examples stays, so the database invariants are checked over everything, globally.

Debugging: replaying a failure against a database that kept the earlier examples' data may
not take the same path, so hypothesis can report a ``FlakyStrategyDefinition`` instead of the
failure itself. Add ``verbosity=Verbosity.debug`` to the settings below: every example's steps
are printed, and the first failing one ends with its assertion. (This is how the machine found
that a refused payment's refund, processed after a cancellation, was counted as paying out the
cancellation.)
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from collections import Counter
from collections.abc import Coroutine
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
    run_state_machine_as_test,
)

from propmubi.web.appkeys import SERVICES
from propmubi_plugins.bookings import service as bookings_service
from propmubi_plugins.payments import sandbox_flow
from propmubi_plugins.payments.providers.sandbox import sandbox_payment_id, sandbox_webhook
from tests.plugins.payments.conftest import API, pay_ctx

BUYERS = 3
UNITS = ("A-101", "A-201")
LIVE = ("held", "payment_pending", "paid", "confirmed")
EXPIRING = ("held", "payment_pending")
MAX_EXTENSIONS = 2  # the default plugins.bookings.max_extensions
#: The catalogue status of a unit by its live booking's status (none: available).
UNIT_STATUS = {"held": "held", "payment_pending": "held", "paid": "held", "confirmed": "booked",
               None: "available"}
#: Booking terms without a free cancellation window: fee = max(fixed, 1 % of the price).
FEE_TERMS = {"amount_kind": "percent", "amount_bps": 1000, "free_cancel_hours": 0,
             "fee_fixed_minor": 10_000_00, "fee_bps": 100}
#: Whether another buyer tries it (a 404, nothing changes): now and then.
OTHER = st.sampled_from([False, False, False, True])
STATS: Counter = Counter()
STEP_TIMEOUT = 120.0  # seconds one step may take before the test fails (a hang, not a figure)


# -------------------------------------------------------------------------------------------------
# The model
# -------------------------------------------------------------------------------------------------


@attrs.define(eq=False)
class Booking:
    id: str
    buyer: int
    unit: int
    price: int
    amount_due: int
    status: str = "held"
    stale: bool = False  # expires_at moved into the past (matters while held/payment pending)
    extensions: int = 0
    captured: int = 0
    fee: int | None = None
    refund_due: int | None = None  # refund_minor, once cancelled
    refunded: int = 0
    intents: list[Intent] = attrs.Factory(list)

    @property
    def is_stale(self) -> bool:
        return self.status in EXPIRING and self.stale

    def __repr__(self) -> str:
        return (f"Booking(buyer {self.buyer}, unit {self.unit}, {self.status}"
                f"{', stale' if self.is_stale else ''}, {self.id[-6:]})")


@attrs.define(eq=False)
class Intent:
    id: str
    booking: Booking
    order_id: str
    amount: int
    status: str = "created"
    captured: int = 0
    refunded: int = 0  # pending and processed refunds, as payments_intents counts them
    outcome: str | None = None

    def __repr__(self) -> str:
        return f"Intent({self.booking!r}, {self.status}, {self.id[-6:]})"


@attrs.define(eq=False)
class Refund:
    intent: Intent
    amount: int
    reason: str
    status: str = "pending"
    sent: bool = False  # the worker asked the provider (it has a provider refund id)


@attrs.define(eq=False)
class Webhook:
    intent: Intent
    kind: str
    body: bytes
    headers: dict[str, str]

    def __repr__(self) -> str:
        return f"Webhook({self.kind}, {self.intent!r})"


# -------------------------------------------------------------------------------------------------
# Talking to the app (coroutines run on the test's loop)
# -------------------------------------------------------------------------------------------------


async def call(client: Any, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
    async with client.request(method, path, **kwargs) as response:
        text = await response.text()
        body = await response.json(content_type=None) if text else None
        return response.status, body


async def gather(*coros: Coroutine[Any, Any, Any]) -> list[Any]:
    return await asyncio.gather(*coros)


def by_id(rows: list[Any]) -> dict[str, dict[str, Any]]:
    """Rows by id, every uuid as a string (the model's ids are strings)."""
    return {str(r["id"]): {k: str(v) if isinstance(v, uuid.UUID) else v for k, v in r.items()}
            for r in rows}


@attrs.frozen
class Snapshot:
    bookings: dict[str, dict[str, Any]]
    intents: dict[str, dict[str, Any]]
    refunds: dict[str, dict[str, Any]]
    units: dict[str, str]
    unprocessed_events: int
    #: What bookings recorded of each processed refund: refund id -> (amount, cancellation).
    booking_refunds: dict[str, tuple[int, bool]]


async def snapshot(db: Any) -> Snapshot:
    """Every booking, intent, refund and unit (all examples'), and the provider events not
    applied yet; read in one repeatable-read snapshot."""
    async with db.transaction() as tx:
        await tx.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        bookings = await tx.fetch(
            "SELECT id, unit_id, status, captured_minor, refunded_minor, fee_minor,"
            " refund_minor, extensions_used FROM bookings_bookings")
        intents = await tx.fetch(
            "SELECT id, booking_id, status, amount_minor, captured_minor, refunded_minor,"
            " booking_outcome FROM payments_intents")
        refunds = await tx.fetch(
            "SELECT id, intent_id, booking_id, amount_minor, status, reason,"
            " provider_refund_id FROM payments_refunds")
        units = await tx.fetch("SELECT id, status FROM catalog_units")
        unprocessed = await tx.fetchval(
            "SELECT count(*) FROM payments_events WHERE processed_at IS NULL")
        recorded = await tx.fetch(
            "SELECT refund_id, amount_minor, cancellation FROM bookings_refunds")
    return Snapshot(by_id(bookings), by_id(intents), by_id(refunds),
                    {str(u["id"]): u["status"] for u in units}, int(unprocessed),
                    {str(r["refund_id"]): (r["amount_minor"], r["cancellation"])
                     for r in recorded})


async def new_example(client: Any, builder: Any, make_user: Any, make_project: Any
                      ) -> tuple[list[Any], list[tuple[str, int]], str]:
    """Three new buyers and a new published project: ``(buyers, [(unit id, price)], project
    id)``."""
    project = await make_project(builder, moderation="published")
    buyers = [await make_user() for _ in range(BUYERS)]
    status, body = await call(client, "GET", f"{API}/projects/{project['id']}/units")
    assert status == 200, body
    items = body["items"] if isinstance(body, dict) else body
    units = [next((u["id"], u["price_minor"]) for u in items if u["code"] == code)
             for code in UNITS]
    return buyers, units, str(project["id"])


# -------------------------------------------------------------------------------------------------
# The state machine
# -------------------------------------------------------------------------------------------------


class BookingsAndPayments(RuleBasedStateMachine):
    bookings = Bundle("bookings")

    def __init__(self, client: Any, loop: asyncio.AbstractEventLoop, event_bus: Any,
                 builder: Any, make_user: Any, make_project: Any) -> None:
        super().__init__()
        self.client = client
        self.loop = loop
        self.bus = event_bus
        self.builder = builder
        self.db = client.app[SERVICES].db
        self.pay_ctx = pay_ctx(client)
        self.bookings_ctx = client.app[SERVICES].context("bookings")
        self.secret = self.pay_ctx.state.providers["sandbox"].settings.webhook_secret
        self.buyers, units, self.project_id = self.run(
            new_example(client, builder, make_user, make_project))
        self.unit_ids = [u for u, _ in units]
        self.prices = [p for _, p in units]
        self.free_window = True
        self.all_bookings: list[Booking] = []
        self.all_intents: list[Intent] = []
        self.refunds: list[Refund] = []
        self.webhooks: list[Webhook] = []
        # What the worker will apply when the bus is drained, in order.
        self.queue: list[tuple[str, Any]] = []
        self.paused = False

    def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(STEP_TIMEOUT)

    def api(self, method: str, path: str, buyer: int, **kwargs: Any) -> tuple[int, Any]:
        status, body = self.run(call(self.client, method, API + path,
                                     headers=self.buyers[buyer].headers, **kwargs))
        assert status < 500, (method, path, status, body)
        return status, body

    @staticmethod
    def refused(status: int, body: Any, code: int, slug: str) -> None:
        assert status == code, (status, body)
        assert body["type"].endswith("/" + slug), body

    def live_on(self, unit: int) -> Booking | None:
        live = [b for b in self.all_bookings if b.unit == unit and b.status in LIVE]
        assert len(live) <= 1, live
        return live[0] if live else None

    # --- The worker ------------------------------------------------------------------------------

    def drain_now(self) -> None:
        """Run the worker until nothing is left, and apply the same events to the model."""
        self.run(self.bus.drain())
        queue, self.queue = self.queue, []
        authorized: list[Intent] = []
        for kind, item in queue:
            if kind == "payment":
                if self.apply_payment(item):
                    authorized.append(item.intent)
            elif kind == "cancelled":
                self.apply_cancellation(item)
            else:
                self.apply_refund_processed(item)
        # Each authorisation's event asks the worker to capture the payment (the next round of
        # the drain, after everything queued before it); the provider's answer is then applied
        # like a captured webhook (the round after), unless the intent moved on meanwhile.
        for intent in authorized:
            if intent.status == "authorized":
                self.apply_capture(intent)
        for refund in self.refunds:  # the refunds requested meanwhile went to the provider
            refund.sent = True
        self.paused = False

    def apply_payment(self, webhook: Webhook) -> bool:
        """Apply a payment webhook; whether it authorised the payment (the worker captures
        it next)."""
        intent, kind = webhook.intent, webhook.kind
        if kind == "payment.failed":
            if intent.status == "created":
                intent.status = "failed"
        elif kind == "payment.authorized":
            if intent.status in ("created", "failed"):
                intent.status = "authorized"
                return True
        else:
            self.apply_capture(intent)
        return False

    def apply_capture(self, intent: Intent) -> None:
        if intent.status == "captured":
            return
        intent.status, intent.captured = "captured", intent.amount
        booking = intent.booking
        if booking.status in EXPIRING:  # even past its expires_at, before it was expired
            outcome = "confirmed"
        elif booking.status in ("expired", "released"):  # a late payment
            outcome = "confirmed" if self.live_on(booking.unit) is None else "unit-taken"
        elif booking.status in ("paid", "confirmed"):
            outcome = "already-paid"
        else:
            outcome = "booking-closed"
        intent.outcome = outcome
        if outcome == "confirmed":
            booking.status, booking.captured = "confirmed", booking.captured + intent.amount
        else:  # refunded in full, in the same transaction
            self.refunds.append(Refund(intent, intent.amount, outcome))
            intent.refunded += intent.amount

    def apply_cancellation(self, booking: Booking) -> None:
        """The cancellation's refund across the booking's captured intents, in id order."""
        remaining = booking.refund_due or 0
        for intent in sorted(booking.intents, key=lambda i: i.id):
            if remaining <= 0:
                break
            take = min(remaining, intent.captured - intent.refunded)
            if intent.captured > 0 and take > 0:
                self.refunds.append(Refund(intent, take, "cancellation"))
                intent.refunded += take
                remaining -= take

    def apply_refund_processed(self, refund: Refund) -> None:
        if refund.status != "pending":
            return  # a second refund.processed webhook of the same refund
        refund.status = "processed"
        booking = refund.intent.booking
        # Only a cancellation's refund pays out what the cancellation owes the buyer; the
        # refund of a payment the booking refused gives back that payment, nothing more.
        if refund.reason == "cancellation" and booking.status == "cancelled":
            booking.refunded += refund.amount
            if booking.refunded >= (booking.refund_due or 0):
                booking.status = "refunded"

    def settle_refunds(self) -> None:
        """The sandbox "bank" pays out every sent refund, then the worker applies it."""
        self.drain_now()
        for intent in [i for i in self.all_intents
                       if any(r.intent is i and r.status == "pending" for r in self.refunds)]:
            self.process_refunds_of(intent)
        self.drain_now()

    # --- Setup -----------------------------------------------------------------------------------

    @initialize(free_window=st.booleans())
    def terms(self, free_window: bool) -> None:
        """The project's default terms (48 free hours) or no free window (a fee)."""
        self.free_window = free_window
        if not free_window:
            status, body = self.run(call(
                self.client, "PUT", f"{API}/projects/{self.project_id}/booking-terms",
                json=FEE_TERMS, headers=self.builder.headers))
            assert status == 200, (status, body)

    def teardown(self) -> None:
        STATS["examples"] += 1
        for b in self.all_bookings:
            STATS["booking:" + b.status] += 1
        for i in self.all_intents:
            STATS["intent:" + i.status + ":" + str(i.outcome)] += 1
        for r in self.refunds:
            STATS["refund:" + r.reason + ":" + r.status] += 1
        # Every example ends settled: the bus drained, every refund paid out (in the order of
        # the intents, whatever order their refunds were decided in) and, unless a step
        # already failed, checked. Then the stale holds are swept, so that the next example
        # starts with none (the sweeper counts every stale hold in the database).
        self.settle_refunds()
        if sys.exc_info()[0] is None:
            self.check_settled()
        self.run(bookings_service.expire_holds(self.bookings_ctx))
        self.run(self.bus.drain())

    # --- Holds -----------------------------------------------------------------------------------

    def take_hold(self, buyer: int, unit: int) -> Booking | None:
        """POST /holds (checked against the model); the new booking, or None when refused."""
        current = self.live_on(unit)
        status, body = self.api("POST", "/holds", buyer, json={"unit_id": self.unit_ids[unit]})
        if current is not None and not current.is_stale:
            self.refused(status, body, 409, "unit-unavailable")
            return None
        assert status == 201, (status, body)
        if current is not None:  # a stale hold is expired by the next hold of its unit
            current.status = "expired"
        price = self.prices[unit]
        assert (body["status"], body["unit_id"], body["price_minor"]) == (
            "held", self.unit_ids[unit], price), body
        assert body["amount_due_minor"] == price // 10 and body["captured_minor"] == 0, body
        assert body["extensions_left"] == MAX_EXTENSIONS, body
        assert all(body["id"] != b.id for b in self.all_bookings)
        booking = Booking(body["id"], buyer, unit, price, body["amount_due_minor"])
        self.all_bookings.append(booking)
        return booking

    @rule(target=bookings, buyer=st.integers(0, BUYERS - 1), unit=st.integers(0, 1))
    def hold(self, buyer: int, unit: int) -> Any:
        booking = self.take_hold(buyer, unit)
        return multiple() if booking is None else booking

    @rule(target=bookings, buyer=st.integers(0, BUYERS - 1), unit=st.integers(0, 1),
          attempts=st.lists(st.sampled_from(["captured", "failed", "authorized"]),
                            max_size=3))
    def buy(self, buyer: int, unit: int, attempts: list[str]) -> Any:
        """The usual buyer: hold a unit and go to pay at once; each attempt opens (or gets
        back) an intent and the provider answers; the worker runs in between unless it is
        paused (so after a failure the next attempt is a new intent)."""
        booking = self.take_hold(buyer, unit)
        if booking is None:
            return multiple()
        for n, outcome in enumerate(attempts):
            if n and not self.paused:
                self.drain_now()
            intent = self.open_intent(booking, other=False)
            if intent is None:  # paid already
                break
            self.deliver(intent, f"payment.{outcome}", 1)
        return booking

    def who(self, booking: Booking, other: bool) -> int:
        return (booking.buyer + 1) % BUYERS if other else booking.buyer

    @rule(booking=bookings, release=st.booleans(), other=OTHER)
    def extend_or_release(self, booking: Booking, release: bool, other: bool) -> None:
        """POST /holds/{id}/extend or DELETE /holds/{id}, on any booking."""
        path = f"/holds/{booking.id}" + ("" if release else "/extend")
        status, body = self.api("DELETE" if release else "POST", path, self.who(booking, other))
        if other:
            assert status == 404, (status, body)
            return
        if booking.is_stale:  # expired first, and that commits before the refusal
            booking.status = "expired"
        if booking.status == "expired":
            self.refused(status, body, 409, "hold-expired")
        elif booking.status != "held":
            self.refused(status, body, 409, "booking-not-held")
        elif release:
            assert status == 204, (status, body)
            booking.status = "released"
        elif booking.extensions >= MAX_EXTENSIONS:
            self.refused(status, body, 409, "extension-limit")
        else:
            assert status == 200, (status, body)
            booking.extensions += 1
            assert body["status"] == "held", body
            assert body["extensions_left"] == MAX_EXTENSIONS - booking.extensions, body

    def make_stale(self, bookings: list[Booking]) -> None:
        """Move ``expires_at`` into the past (nobody has expired them yet)."""
        for booking in bookings:
            self.run(self.db.execute(
                "UPDATE bookings_bookings SET expires_at = now() - interval '1 minute'"
                " WHERE id = %s", (booking.id,)))
            booking.stale = True

    def sweep_now(self) -> None:
        stale = [b for b in self.all_bookings if b.is_stale]
        expired = self.run(bookings_service.expire_holds(self.bookings_ctx))
        assert expired == len(stale), (expired, stale)
        for booking in stale:
            booking.status = "expired"

    @rule(data=st.data(), sweep=st.booleans())
    def time_passes(self, data: st.DataObject, sweep: bool) -> None:
        """Some holds (or pending payments) run out; maybe the sweeper runs
        (``service.expire_holds``), else they stay stale until something touches them."""
        running = [b for b in self.all_bookings if b.status in EXPIRING and not b.stale]
        if running:
            self.make_stale(data.draw(st.lists(st.sampled_from(running), unique=True,
                                               min_size=0 if sweep else 1, max_size=2)))
        if sweep:
            self.sweep_now()

    # --- Payments --------------------------------------------------------------------------------

    def open_intent(self, booking: Booking, other: bool) -> Intent | None:
        """POST /bookings/{id}/payment-intents (checked); the intent (new, or the open one
        given back), or None when refused."""
        status, body = self.api("POST", f"/bookings/{booking.id}/payment-intents",
                                self.who(booking, other))
        if other:
            assert status == 404, (status, body)
            return None
        if booking.status == "expired" or booking.is_stale:
            # A stale hold is expired in the intent's transaction, which the refusal rolls
            # back: it stays stale (the sweeper, a read or another write expires it).
            self.refused(status, body, 409, "hold-expired")
            return None
        if booking.status not in EXPIRING:
            self.refused(status, body, 409, "booking-not-payable")
            return None
        assert status == 201, (status, body)
        booking.status = "payment_pending"
        still_open = [i for i in booking.intents if i.status == "created"]
        if still_open:  # a second tap gets the open intent back
            assert body["id"] == still_open[-1].id, (body, still_open)
            return still_open[-1]
        assert all(body["id"] != i.id for i in self.all_intents)
        assert (body["status"], body["amount_minor"], body["provider"]) == (
            "created", booking.amount_due, "sandbox"), body
        intent = Intent(body["id"], booking, body["client"]["order_id"], body["amount_minor"])
        booking.intents.append(intent)
        self.all_intents.append(intent)
        return intent

    @rule(booking=bookings, other=OTHER)
    def pay_for(self, booking: Booking, other: bool) -> None:
        """Open a payment intent on any booking (refused unless a running hold or pending
        payment; a second tap gets the open intent back)."""
        self.open_intent(booking, other)

    def post_webhooks(self, webhook: Webhook, copies: int) -> list[bool]:
        """Deliver ``copies`` of a webhook at once; the answers' ``duplicate`` flags."""
        answers = self.run(gather(*(
            call(self.client, "POST", f"{API}/payments/webhooks/sandbox", data=webhook.body,
                 headers=webhook.headers) for _ in range(copies))))
        assert all(status == 200 for status, _ in answers), answers
        return sorted(body["duplicate"] for _, body in answers)

    def deliver(self, intent: Intent, kind: str, copies: int) -> None:
        """A new provider event for ``intent`` (``copies`` deliveries of it at once)."""
        body, headers = sandbox_webhook(
            self.secret, kind=kind, order_id=intent.order_id,
            payment_id=sandbox_payment_id(intent.order_id), amount_minor=intent.amount,
            currency="INR")
        webhook = Webhook(intent, kind, body, headers)
        assert self.post_webhooks(webhook, copies) == [False] + [True] * (copies - 1)
        self.webhooks.append(webhook)
        self.queue.append(("payment", webhook))

    @precondition(lambda self: self.all_intents)
    @rule(data=st.data(), which=st.sampled_from(["waiting", "second", "any"]),
          outcome=st.sampled_from(["captured", "failed", "authorized"]),
          copies=st.integers(1, 3))
    def provider_reports(self, data: st.DataObject, which: str, outcome: str,
                         copies: int) -> None:
        """The provider reports a payment (copies of its webhook at once): one whose booking
        waits for it, a second payment of a booking paid by another intent, or any (a second
        capture, a capture after a failure or after the hold ran out, a failure after a
        capture...)."""
        if which == "waiting":
            candidates = [i for i in self.all_intents if i.status in ("created", "failed")
                          and i.booking.status in EXPIRING]
        elif which == "second":
            candidates = [i for i in self.all_intents if i.status != "captured" and any(
                j.status == "captured" for j in i.booking.intents)]
        else:
            candidates = []
        intent = data.draw(st.sampled_from(candidates or self.all_intents))
        self.deliver(intent, f"payment.{outcome}", copies)

    @precondition(lambda self: self.webhooks)
    @rule(data=st.data(), copies=st.integers(1, 3))
    def provider_retries(self, data: st.DataObject, copies: int) -> None:
        """The provider sends a webhook again (copies at once): no effect."""
        webhook = data.draw(st.sampled_from(self.webhooks))
        assert self.post_webhooks(webhook, copies) == [True] * copies

    @precondition(lambda self: any(i.status != "captured" and i.booking.status in EXPIRING
                                   for i in self.all_intents))
    @rule(target=bookings, data=st.data(), sweep=st.booleans(),
          rival=st.none() | st.integers(0, BUYERS - 1), copies=st.integers(1, 2))
    def late_payment(self, data: st.DataObject, sweep: bool, rival: int | None,
                     copies: int) -> Any:
        """The hold runs out, maybe the sweeper expires it, maybe someone (even the same
        buyer) holds the unit again; then the payment is captured."""
        intent = data.draw(st.sampled_from([
            i for i in self.all_intents
            if i.status != "captured" and i.booking.status in EXPIRING]))
        self.make_stale([intent.booking])
        if sweep:
            self.sweep_now()
        taken = None if rival is None else self.take_hold(rival, intent.booking.unit)
        self.deliver(intent, "payment.captured", copies)
        return multiple() if taken is None else taken

    # --- Cancellations and refunds ---------------------------------------------------------------

    def cancel_booking(self, booking: Booking, other: bool) -> None:
        status, body = self.api("POST", f"/bookings/{booking.id}/cancel",
                                self.who(booking, other), json={"reason_code": "changed_mind"})
        if other:
            assert status == 404, (status, body)
            return
        if booking.status != "confirmed":
            self.refused(status, body, 409, "booking-not-cancellable")
            return
        assert status == 200, (status, body)
        fee = 0 if self.free_window else max(FEE_TERMS["fee_fixed_minor"],
                                             (booking.price * FEE_TERMS["fee_bps"] + 5_000)
                                             // 10_000)
        refund = max(0, booking.captured - fee)
        assert (body["status"], body["fee_minor"], body["refund_minor"]) == (
            "cancelled", booking.captured - refund, refund), (body, booking.captured, fee)
        booking.status, booking.fee, booking.refund_due = "cancelled", body["fee_minor"], refund
        self.queue.append(("cancelled", booking))

    @rule(booking=bookings, other=OTHER)
    def cancel(self, booking: Booking, other: bool) -> None:
        """Cancel any booking (refused unless confirmed)."""
        self.cancel_booking(booking, other)

    @precondition(lambda self: any(b.status == "confirmed" for b in self.all_bookings))
    @rule(data=st.data())
    def cancel_a_confirmed_booking(self, data: st.DataObject) -> None:
        self.cancel_booking(data.draw(st.sampled_from(
            [b for b in self.all_bookings if b.status == "confirmed"])), False)

    def process_refunds_of(self, intent: Intent) -> None:
        self.run(sandbox_flow.complete(self.pay_ctx, intent.id, "refunds", time.time()))
        # One refund.processed webhook per refund waiting at the provider (sent, pending).
        self.queue.extend(("refund", r) for r in self.refunds
                          if r.intent is intent and r.status == "pending" and r.sent)

    @precondition(lambda self: any(r.status == "pending" for r in self.refunds))
    @rule(data=st.data())
    def the_bank_pays_refunds(self, data: st.DataObject) -> None:
        """The sandbox pays out the sent refunds of one payment (its refund.processed
        webhooks; the worker applies them when it runs)."""
        pending = {id(r.intent) for r in self.refunds if r.status == "pending"}
        self.process_refunds_of(data.draw(st.sampled_from(
            [i for i in self.all_intents if id(i) in pending])))

    @precondition(lambda self: self.refunds)
    @rule()
    def settle_everything(self) -> None:
        """Drain, pay out every refund, drain: then nothing is pending anywhere, and every
        captured payment rests with a confirmed booking, a cancellation fee, or a refund paid
        out."""
        self.settle_refunds()
        self.check_settled()

    def check_settled(self) -> None:
        assert all(r.status == "processed" for r in self.refunds), self.refunds
        for booking in self.all_bookings:
            assert booking.status != "cancelled" or booking.refund_due == 0, booking
        snap = self.run(snapshot(self.db))
        pending = [r for r in snap.refunds.values() if r["status"] == "pending"]
        assert not pending, pending
        for row in snap.bookings.values():
            if row["status"] == "cancelled":
                assert row["refund_minor"] == 0, row  # refunded, or nothing to refund
        self.the_database_agrees()

    # --- The worker's own pace -------------------------------------------------------------------

    @rule(pause=st.booleans())
    def worker(self, pause: bool) -> None:
        """The worker stops (events wait, and invariants are checked without draining), or
        runs again and catches up."""
        if pause:
            self.paused = True
        else:
            self.drain_now()

    # --- Invariants ------------------------------------------------------------------------------

    @invariant()
    def the_database_agrees(self) -> None:
        STATS["checks"] += 1
        if not self.paused:
            self.drain_now()
        snap = self.run(snapshot(self.db))
        check_always(snap)
        self.check_model(snap)
        if not self.queue and all(r.sent for r in self.refunds):
            check_at_rest(snap)

    def check_model(self, snap: Snapshot) -> None:
        for b in self.all_bookings:
            row = snap.bookings[b.id]
            assert (row["status"], row["captured_minor"], row["refunded_minor"],
                    row["fee_minor"], row["refund_minor"], row["extensions_used"]) == (
                b.status, b.captured, b.refunded, b.fee, b.refund_due, b.extensions), (b, row)
        for unit, unit_id in enumerate(self.unit_ids):
            live = self.live_on(unit)
            assert snap.units[unit_id] == UNIT_STATUS[live and live.status], (unit, live)
        for i in self.all_intents:
            row = snap.intents[i.id]
            assert (row["status"], row["captured_minor"], row["refunded_minor"],
                    row["booking_outcome"]) == (i.status, i.captured, i.refunded, i.outcome), (
                i, row)
        mine = {i.id for i in self.all_intents}
        stored = Counter((r["intent_id"], r["reason"], r["amount_minor"], r["status"],
                          r["provider_refund_id"] is not None)
                         for r in snap.refunds.values() if r["intent_id"] in mine)
        modelled = Counter((r.intent.id, r.reason, r.amount, r.status, r.sent)
                           for r in self.refunds)
        assert stored == modelled, (stored, modelled)


def check_always(snap: Snapshot) -> None:
    """What holds at every moment, whatever the worker has done so far (every example's
    data)."""
    live: dict[str, list[dict[str, Any]]] = {}
    for b in snap.bookings.values():
        if b["status"] in LIVE:
            live.setdefault(b["unit_id"], []).append(b)
    for unit_id, status in snap.units.items():
        on_unit = live.get(unit_id, [])
        assert len(on_unit) <= 1, on_unit  # never oversold
        expected = UNIT_STATUS[on_unit[0]["status"] if on_unit else None]
        assert status == expected, (unit_id, status, on_unit)

    refunds_of: dict[str, list[dict[str, Any]]] = {}
    paid_out: dict[str, int] = {}  # by booking: what its cancellation's refunds paid out
    for r in snap.refunds.values():
        refunds_of.setdefault(r["intent_id"], []).append(r)
        if r["reason"] == "cancellation" and r["status"] == "processed":
            paid_out[r["booking_id"]] = paid_out.get(r["booking_id"], 0) + r["amount_minor"]
    accepted: dict[str, int] = {}
    for i in snap.intents.values():
        captured, refunded = i["captured_minor"], i["refunded_minor"]
        assert 0 <= refunded <= captured, i
        assert (captured > 0) == (i["status"] == "captured"), i
        assert captured in (0, i["amount_minor"]), i
        assert (i["booking_outcome"] is not None) == (i["status"] == "captured"), i
        counted = [r for r in refunds_of.get(i["id"], []) if r["status"] != "failed"]
        assert refunded == sum(r["amount_minor"] for r in counted), (i, counted)
        if i["booking_outcome"] == "confirmed":
            accepted[i["booking_id"]] = accepted.get(i["booking_id"], 0) + captured
            booking = snap.bookings[i["booking_id"]]
            assert booking["status"] in ("confirmed", "cancelled", "refunded"), (i, booking)
        elif i["booking_outcome"] is not None:
            # A payment the booking refused is refunded in full, in the same transaction.
            assert [(r["reason"], r["amount_minor"]) for r in counted] == [
                (i["booking_outcome"], captured)], (i, counted)

    # Bookings record each processed refund once, as a cancellation's refund exactly when it
    # is one (a refund of a payment the booking refused pays nothing of a cancellation back).
    assert snap.booking_refunds == {
        rid: (r["amount_minor"], r["reason"] == "cancellation")
        for rid, r in snap.refunds.items() if r["status"] == "processed"}, (
        "bookings_refunds does not match the processed refunds and their reasons",
        snap.booking_refunds, snap.refunds)

    kept_by_bookings = 0
    for b in snap.bookings.values():
        assert b["captured_minor"] == accepted.get(b["id"], 0), b
        assert (b["captured_minor"] > 0) == (
            b["status"] in ("confirmed", "cancelled", "refunded")), b
        kept_by_bookings += b["captured_minor"]
        # What a booking says it paid back is what its cancellation's refunds paid out.
        assert b["refunded_minor"] == paid_out.get(b["id"], 0), (
            "booking.refunded_minor is not what its cancellation refunds paid out", b,
            [r for r in snap.refunds.values() if r["booking_id"] == b["id"]])
        if b["status"] == "refunded":
            assert b["refunded_minor"] >= b["refund_minor"] > 0, b
        elif b["status"] == "cancelled":
            assert b["refunded_minor"] < b["refund_minor"] or b["refund_minor"] == 0, b

    # The money balances: every captured paisa is kept by a booking, or refunded (pending or
    # processed) because the booking refused it.
    captured_total = sum(i["captured_minor"] for i in snap.intents.values())
    refused_refunds = sum(r["amount_minor"] for r in snap.refunds.values()
                          if r["reason"] != "cancellation" and r["status"] != "failed")
    assert captured_total == kept_by_bookings + refused_refunds, (
        captured_total, kept_by_bookings, refused_refunds)


def check_at_rest(snap: Snapshot) -> None:
    """What holds once the worker caught up: every provider event applied, every refund sent,
    every cancellation's refund decided. Then everything captured is kept by a confirmed
    booking or a cancellation's fee, or refunded (pending at the provider, or processed)."""
    assert snap.unprocessed_events == 0, snap.unprocessed_events
    unsent = [r for r in snap.refunds.values()
              if r["status"] == "pending" and r["provider_refund_id"] is None]
    assert not unsent, unsent
    decided: dict[str, int] = {}  # by booking: its cancellation's refunds
    for r in snap.refunds.values():
        if r["reason"] == "cancellation" and r["status"] != "failed":
            decided[r["booking_id"]] = decided.get(r["booking_id"], 0) + r["amount_minor"]
    kept = 0
    for b in snap.bookings.values():
        if b["status"] == "confirmed":
            kept += b["captured_minor"]
        elif b["status"] in ("cancelled", "refunded"):
            assert b["fee_minor"] + b["refund_minor"] == b["captured_minor"], b
            assert decided.get(b["id"], 0) == b["refund_minor"], (b, decided.get(b["id"]))
            kept += b["fee_minor"]
    refunded = sum(r["amount_minor"] for r in snap.refunds.values() if r["status"] != "failed")
    captured = sum(i["captured_minor"] for i in snap.intents.values())
    assert captured == kept + refunded, (captured, kept, refunded)
    for i in snap.intents.values():  # no captured payment without a booking or a refund
        if i["status"] == "captured" and i["booking_outcome"] != "confirmed":
            assert i["refunded_minor"] == i["captured_minor"], i


# A hang guard, not a figure: about 15 s on an idle 2-core machine, several times that when
# every core is busy.
@pytest.mark.timeout(600)
async def test_bookings_and_payments_match_the_model(client: Any, builder: Any, make_user: Any,
                                                     make_project: Any, event_bus: Any) -> None:
    loop = asyncio.get_running_loop()
    run_settings = settings(max_examples=30, stateful_step_count=40, deadline=None,
                            database=None, phases=[Phase.generate], report_multiple_bugs=False,
                            suppress_health_check=[HealthCheck.too_slow,
                                                   HealthCheck.filter_too_much])
    await asyncio.to_thread(
        run_state_machine_as_test,
        lambda: BookingsAndPayments(client, loop, event_bus, builder, make_user, make_project),
        settings=run_settings)
    print("\n".join(f"{name}: {count}" for name, count in sorted(STATS.items())))
