"""Crash tests of bookings and payments: real ``propmubi worker`` and ``propmubi serve``
processes on the test's own database and Redis prefix, killed with SIGKILL at a chosen point.

The point of each kill is made certain, not guessed: the test holds a row lock in an open
transaction so that the process is provably stuck inside its transaction (or the provider
simulator holds the HTTP call), then kills it, releases the lock and restarts.

1. ``test_worker_killed_mid_capture_...``: the web app (the test client) stores a signed
   sandbox ``payment.captured`` webhook with no worker running. A worker starts and applies
   it; the test's lock on the booking row stops it inside ``record_payment_in``, after it has
   read the event and already marked the intent captured in its open transaction. SIGKILL.
   A fresh worker finishes the work. Checked: one ``payments.payment_captured`` event, the
   intent captured once, the booking confirmed once (one payment recorded, one ``paid`` and
   one ``confirmed`` history row), the stored event processed once, nothing dead-lettered,
   nothing pending in the payments group.
2. ``test_worker_killed_while_sending_a_refund_...`` (twice): a confirmed booking paid through
   the Razorpay simulator is cancelled; the worker sends the refund and the simulator holds
   the call, either before doing anything (``hang_next``) or after making the refund (the
   answer is lost). SIGKILL, a fresh worker sends it again. Checked: the provider made exactly
   one refund (it dedupes by ``X-Refund-Idempotency``, and both calls carried the same key),
   our refund row carries that refund's id, and its ``refund.processed`` webhook refunds the
   booking.
3. ``test_serve_killed_during_holds_...``: 50 buyers hold 50 units at once through a
   ``propmubi serve`` process. The 25 units of one project are stuck halfway (the test locks
   their rows in the catalogue, which a hold locks after writing the booking and its history,
   before the unit's status and the event); the other project's 25 commit. SIGKILL. Checked
   before and after a restart: no half-written hold (a booking, its history row, the unit's ``held``
   status and its two events exist together or not at all), at most one live booking per
   unit, and a buyer can hold a stuck unit afterwards while a held one stays refused.

Every wait is bounded by :data:`DEADLINE`; no duration is asserted. The processes and the
waits are ``tests/processes.py``'s.
"""

from __future__ import annotations

import asyncio
import collections
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import attrs
import pytest
from aiohttp import web

from propmubi.config import Config
from propmubi.db import Database
from propmubi.web.appkeys import SERVICES
from propmubi_plugins.payments.providers.sandbox import sandbox_payment_id, sandbox_webhook
from tests.plugins.catalog.conftest import unit_body
from tests.plugins.payments.conftest import API, deliver, open_intent, pay_ctx
from tests.plugins.payments.simulators.razorpay import RazorpaySimulator
from tests.processes import (
    DEADLINE,
    Processes,
    consumer_of,
    dead_letters,
    pending,
    settled,
    sigkill,
    until,
)

pytestmark = pytest.mark.slow

LIVE = ("held", "payment_pending", "paid", "confirmed")


@pytest.fixture
def procs(migrated: Config, tmp_path: Path) -> Iterator[Processes]:
    # A process the test keeps waiting on a row lock must not give up by itself first.
    with Processes.running(migrated, tmp_path,
                           PROPMUBI_PLUGINS__BOOKINGS__LOCK_TIMEOUT_MS="60000") as spawned:
        yield spawned


# -- observing ------------------------------------------------------------------------------

async def outbox_count(db: Database, event_type: str, **payload: Any) -> int:
    where = "".join(f" AND payload->>'{k}' = %s" for k in payload)
    return int(await db.fetchval(f"SELECT count(*) FROM core_outbox WHERE type = %s{where}",
                                 (event_type, *map(str, payload.values()))))


async def lock_waiters(db: Database) -> list[dict[str, Any]]:
    """Sessions of this database waiting for a lock: what they run, and whether their
    transaction has written anything yet (PostgreSQL gives it an xid at the first write)."""
    return await db.fetch(
        "SELECT pid, query, backend_xid IS NOT NULL AS wrote FROM pg_stat_activity "
        "WHERE datname = current_database() AND wait_event_type = 'Lock'")


async def no_dead_sessions(db: Database) -> bool:
    """No session but idle ones (ours) is left: the killed process's backends, which finish
    the statement they were waiting on, find their client gone and roll back, are gone."""
    busy = await db.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND backend_type = 'client backend' AND pid <> pg_backend_pid() AND state <> 'idle'")
    return busy == 0


@pytest.fixture
def payments_settings(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The sandbox, unless the test uses the Razorpay simulator ``sim``."""
    if "sim" not in request.fixturenames:
        return {"provider": "sandbox"}
    sim: RazorpaySimulator = request.getfixturevalue("sim")
    return {"provider": "razorpay", "razorpay": attrs.asdict(sim.settings())}


# -- 1. the worker killed between a webhook's storage and its effect ------------------------

async def test_worker_killed_mid_capture_applies_the_webhook_once_after_restart(
        client: Any, buyer: Any, hold: Any, procs: Processes) -> None:
    services = client.app[SERVICES]
    db = services.db
    booking = await hold(buyer)
    intent = await open_intent(client, buyer, booking["id"])
    order = intent["client"]["order_id"]
    secret = pay_ctx(client).state.providers["sandbox"].settings.webhook_secret
    body, headers = sandbox_webhook(secret, kind="payment.captured", order_id=order,
                                    payment_id=sandbox_payment_id(order),
                                    amount_minor=intent["amount_minor"], currency="INR")
    resp = await client.post(f"{API}/payments/webhooks/sandbox", data=body, headers=headers)
    assert resp.status == 200, await resp.text()
    assert await resp.json() == {"received": True, "duplicate": False}
    # Stored and queued, in one transaction, with no worker running.
    stored = await db.fetch("SELECT id, processed_at FROM payments_events")
    assert len(stored) == 1 and stored[0]["processed_at"] is None
    queued = await db.fetch("SELECT id FROM core_outbox WHERE type = 'payments.webhook_received'")
    assert len(queued) == 1
    event_id = queued[0]["id"]

    async with db.transaction() as tx:
        # The worker's capture handler will wait for this lock inside record_payment_in,
        # after it marked the intent captured in its own, open transaction.
        await tx.execute("SELECT id FROM bookings_bookings WHERE id = %s FOR UPDATE",
                         (booking["id"],))
        our_pid = await tx.fetchval("SELECT pg_backend_pid()")
        victim = procs.worker()
        payments_stream = services.keys.event_stream("payments")

        async def stuck_in_the_handler() -> list[dict[str, Any]] | None:
            blocked = await db.fetch(
                "SELECT pid, query FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))",
                (our_pid,))
            info = await services.redis.xpending(payments_stream, "payments")
            readers = {c["name"] for c in info["consumers"] if int(c["pending"])}
            return blocked if readers == {consumer_of(victim)} else None

        blocked = await until(stuck_in_the_handler,
                              "the worker to read the event and wait in its handler")
        assert len(blocked) == 1 and "FROM bookings_bookings" in blocked[0]["query"], blocked
        # Its transaction has already written the intent (an UPDATE's lock on the table).
        assert await db.fetchval(
            "SELECT count(*) FROM pg_locks WHERE pid = %s AND mode = 'RowExclusiveLock' "
            "AND relation = 'payments_intents'::regclass", (blocked[0]["pid"],)) == 1
        sigkill(victim)
        # Nothing of the handler's transaction committed.
        assert await db.fetchval("SELECT status FROM payments_intents WHERE id = %s",
                                 (intent["id"],)) == "created"
        assert await db.fetchval("SELECT processed_at FROM payments_events") is None
        assert await outbox_count(db, "payments.payment_captured") == 0
        assert await db.fetchval("SELECT count(*) FROM core_processed_events WHERE "
                                 "consumer = 'payments' AND event_id = %s", (event_id,)) == 0
    # The lock is released: the dead worker's session rolls back when it finds no client.

    procs.worker()

    async def confirmed() -> bool:
        status = await db.fetchval("SELECT status FROM bookings_bookings WHERE id = %s",
                                   (booking["id"],))
        return status == "confirmed" and await settled(services, "payments")

    await until(confirmed, "a fresh worker to confirm the booking and the group to settle")
    assert await outbox_count(db, "payments.payment_captured",
                              intent_id=intent["id"]) == 1
    assert await outbox_count(db, "payments.payment_captured") == 1
    paid = await db.fetchrow("SELECT status, captured_minor, booking_outcome "
                             "FROM payments_intents WHERE id = %s", (intent["id"],))
    assert dict(paid) == {"status": "captured", "captured_minor": intent["amount_minor"],
                          "booking_outcome": "confirmed"}
    done = await db.fetchrow("SELECT status, captured_minor FROM bookings_bookings "
                             "WHERE id = %s", (booking["id"],))
    assert dict(done) == {"status": "confirmed", "captured_minor": intent["amount_minor"]}
    assert await db.fetchval("SELECT count(*) FROM bookings_payments WHERE booking_id = %s",
                             (booking["id"],)) == 1
    moves = collections.Counter(r["to_status"] for r in await db.fetch(
        "SELECT to_status FROM bookings_history WHERE booking_id = %s", (booking["id"],)))
    assert moves["paid"] == 1 and moves["confirmed"] == 1
    event = await db.fetchrow("SELECT processed_at, outcome FROM payments_events")
    assert event["processed_at"] is not None
    assert event["outcome"] == "captured: booking confirmed"
    assert await db.fetchval("SELECT count(*) FROM core_processed_events WHERE "
                             "consumer = 'payments' AND event_id = %s", (event_id,)) == 1
    assert await outbox_count(db, "bookings.booking_confirmed") == 1
    assert await dead_letters(services) == 0
    assert await pending(services, "payments") == 0


# -- 2. the worker killed while the provider holds its refund call --------------------------

class LossyRazorpay(RazorpaySimulator):
    """The Razorpay simulator, which can also make the next refund and then never answer
    (the refund happened at the provider; the caller does not know)."""

    def __init__(self) -> None:
        super().__init__()
        self.lose_next_refund_answer = False

    async def _refund(self, request: web.Request) -> web.Response:
        answer = await super()._refund(request)
        if self.lose_next_refund_answer:
            self.lose_next_refund_answer = False
            await self._released.wait()  # until the simulator stops
        return answer


@pytest.fixture
async def sim() -> AsyncIterator[LossyRazorpay]:
    simulator = LossyRazorpay()
    await simulator.start()
    yield simulator
    await simulator.stop()


def refund_calls(sim: RazorpaySimulator) -> list[Any]:
    return [c for c in sim.calls("POST", "/v1/payments/") if c.path.endswith("/refund")]


@pytest.mark.parametrize("hang", ["before-refunding", "after-refunding"])
async def test_worker_killed_while_sending_a_refund_refunds_once_after_restart(
        client: Any, buyer: Any, hold: Any, sim: LossyRazorpay, procs: Processes,
        hang: str) -> None:
    services = client.app[SERVICES]
    db = services.db
    # The worker's own configuration: the same simulator, with a timeout long enough that
    # the held call is still waiting when the worker is killed.
    procs.use_settings({
        "plugins.payments": {"provider": "razorpay"},
        "plugins.payments.razorpay": attrs.asdict(sim.settings(timeout=120.0))})
    victim = procs.worker()
    booking = await hold(buyer)
    intent = await open_intent(client, buyer, booking["id"])
    await deliver(client, "razorpay", sim.pay(intent["client"]["order_id"], "captured"))
    await until(lambda: db.fetchval("SELECT status = 'confirmed' FROM bookings_bookings "
                                    "WHERE id = %s", (booking["id"],)),
                "the worker to confirm the booking")

    if hang == "before-refunding":
        sim.hang_next(1)
    else:
        sim.lose_next_refund_answer = True
    resp = await client.post(f"{API}/bookings/{booking['id']}/cancel",
                             json={"reason_code": "changed_mind"}, headers=buyer.headers)
    assert resp.status == 200, await resp.text()
    refund_minor = (await resp.json())["refund_minor"]
    assert refund_minor == intent["amount_minor"]  # inside the free cancellation window

    async def held_call() -> bool:
        made = len(sim.refunds) == (1 if hang == "after-refunding" else 0)
        return len(refund_calls(sim)) == 1 and made

    await until(held_call, "the worker's refund call to reach the provider")
    sigkill(victim)
    ours = await db.fetch("SELECT id, status, provider_refund_id, amount_minor "
                          "FROM payments_refunds")
    assert len(ours) == 1
    refund = ours[0]
    assert (refund["status"], refund["provider_refund_id"]) == ("pending", None)
    assert refund["amount_minor"] == refund_minor

    procs.worker()
    answered = await until(lambda: db.fetchval(
        "SELECT provider_refund_id FROM payments_refunds WHERE id = %s", (refund["id"],)),
        "a fresh worker to send the refund again and record the provider's answer")
    assert len(sim.refunds) == 1, "the provider refunded more than once"
    (made,) = sim.refunds.values()
    assert answered == made["id"] and made["amount"] == refund_minor
    keys = [c.headers.get("X-Refund-Idempotency") for c in refund_calls(sim)]
    assert len(keys) == 2 and keys[0] and keys[0] == keys[1]

    # The provider finishes the refund: the booking is refunded, once.
    await deliver(client, "razorpay", sim.process_refund(made["id"]))

    async def refunded() -> bool:
        status = await db.fetchval("SELECT status FROM bookings_bookings WHERE id = %s",
                                   (booking["id"],))
        return status == "refunded" and await settled(services, "payments")

    await until(refunded, "the refund to be processed and the booking refunded")
    assert await db.fetchval("SELECT status FROM payments_refunds WHERE id = %s",
                             (refund["id"],)) == "processed"
    assert await db.fetchval("SELECT refunded_minor FROM bookings_bookings WHERE id = %s",
                             (booking["id"],)) == refund_minor
    assert await db.fetchval("SELECT count(*) FROM bookings_refunds") == 1
    assert await outbox_count(db, "payments.refund_requested") == 1
    assert await outbox_count(db, "payments.refund_processed") == 1
    assert await dead_letters(services) == 0
    assert await pending(services, "payments") == 0


# -- 3. the web process killed while holds are in flight ------------------------------------

UNITS_PER_PROJECT = 25


async def check_holds(db: Database, unit_ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    """Assert that every hold of these units is whole and none is doubled; each unit's
    catalogue status."""
    units = {r["id"]: r["status"] for r in await db.fetch(
        "SELECT id, status FROM catalog_units WHERE id = ANY(%s)", (unit_ids,))}
    bookings = await db.fetch("SELECT id, unit_id, status FROM bookings_bookings "
                              "WHERE unit_id = ANY(%s)", (unit_ids,))
    live = collections.Counter(b["unit_id"] for b in bookings if b["status"] in LIVE)
    for unit_id, status in units.items():
        assert live[unit_id] <= 1, f"unit {unit_id} has {live[unit_id]} live bookings"
        assert status in ("available", "held"), f"unit {unit_id} is {status}"
        assert (status == "held") == (live[unit_id] == 1), \
            f"unit {unit_id} is {status} with {live[unit_id]} live booking(s)"
    # Nothing but holds happened to these bookings: each is one whole hold.
    assert all(b["status"] == "held" for b in bookings)
    booking_ids = [b["id"] for b in bookings]
    history = await db.fetch("SELECT booking_id, from_status, to_status FROM bookings_history "
                             "WHERE booking_id = ANY(%s)", (booking_ids,))
    assert sorted(h["booking_id"] for h in history) == sorted(booking_ids)
    assert all((h["from_status"], h["to_status"]) == (None, "held") for h in history)
    held_events = collections.Counter(uuid.UUID(r["b"]) for r in await db.fetch(
        "SELECT payload->>'booking_id' AS b FROM core_outbox WHERE type = 'bookings.unit_held'"))
    assert held_events == collections.Counter(booking_ids)
    status_events = collections.Counter(uuid.UUID(r["u"]) for r in await db.fetch(
        "SELECT payload->>'unit_id' AS u FROM core_outbox WHERE type = "
        "'catalog.unit_status_changed' AND payload->>'new_status' = 'held'"))
    assert status_events == collections.Counter(b["unit_id"] for b in bookings)
    return units


async def test_serve_killed_during_holds_leaves_no_half_written_hold(
        client: Any, builder: Any, make_project: Any, make_user: Any,
        procs: Processes) -> None:
    db = client.app[SERVICES].db
    units = [("A", unit_body(f"A-{n:02d}", floor=n)) for n in range(1, UNITS_PER_PROJECT + 1)]
    projects = [await make_project(builder, moderation="published",
                                   towers={"A": UNITS_PER_PROJECT}, units=units)
                for _ in range(2)]
    free_project, stuck_project = (p["id"] for p in projects)
    unit_ids = {p["id"]: [r["id"] for r in await db.fetch(
        "SELECT id FROM catalog_units WHERE project_id = %s ORDER BY code", (p["id"],))]
        for p in projects}
    every_unit = unit_ids[free_project] + unit_ids[stuck_project]
    buyers = [await make_user() for _ in every_unit]
    buyer_of = dict(zip(every_unit, buyers, strict=True))
    server, base = await procs.serve()

    async def take(session: aiohttp.ClientSession, unit_id: uuid.UUID) -> tuple[int, Any]:
        async with session.post(f"{base}{API}/holds", json={"unit_id": str(unit_id)},
                                headers=buyer_of[unit_id].headers) as resp:
            return resp.status, await resp.json(content_type=None)

    timeout = aiohttp.ClientTimeout(total=DEADLINE)
    connector = aiohttp.TCPConnector(limit=len(every_unit))
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session, \
            db.transaction() as tx:
        # A hold takes its unit's row lock after writing the booking and its history,
        # before the unit's status and the events: the stuck project's holds wait there.
        await tx.execute("SELECT id FROM catalog_units WHERE project_id = %s FOR UPDATE",
                         (stuck_project,))
        requests = [asyncio.create_task(take(session, u)) for u in every_unit]

        async def halfway() -> bool:
            committed = await db.fetchval("SELECT count(*) FROM bookings_bookings "
                                          "WHERE project_id = %s", (free_project,))
            waiting = await lock_waiters(db)
            return committed == UNITS_PER_PROJECT and len(waiting) == UNITS_PER_PROJECT \
                and waiting

        waiting = await until(halfway, "one project's holds to commit and the other's to "
                                       "wait halfway")
        # Each waits for its unit's row having written its booking and history rows.
        assert all(w["wrote"] and "FOR UPDATE OF u" in w["query"] for w in waiting), waiting
        sigkill(server)
        answers = await asyncio.gather(*requests, return_exceptions=True)
    # The lock is released; the killed server's sessions roll back.
    await until(lambda: no_dead_sessions(db), "the killed server's sessions to end")

    by_unit = dict(zip(every_unit, answers, strict=True))
    for unit_id in unit_ids[stuck_project]:
        assert not (isinstance(by_unit[unit_id], tuple) and by_unit[unit_id][0] == 201)
    statuses = await check_holds(db, every_unit)
    assert {statuses[u] for u in unit_ids[free_project]} == {"held"}
    assert {statuses[u] for u in unit_ids[stuck_project]} == {"available"}
    for answer in answers:  # what was answered 201 was committed
        if isinstance(answer, tuple) and answer[0] == 201:
            assert await db.fetchval("SELECT status FROM bookings_bookings WHERE id = %s",
                                     (answer[1]["id"],)) == "held"

    _, base = await procs.serve()
    again = unit_ids[stuck_project][0]
    async with aiohttp.ClientSession(timeout=timeout) as session:
        status, body = await take(session, again)
        assert status == 201, body
        assert body["unit_id"] == str(again) and body["status"] == "held"
        # A held unit stays refused after the restart.
        async with session.post(f"{base}{API}/holds",
                                json={"unit_id": str(unit_ids[free_project][0])},
                                headers=buyer_of[unit_ids[stuck_project][1]].headers) as resp:
            refusal = await resp.text()
            assert resp.status == 409 and "unit-unavailable" in refusal, refusal
    statuses = await check_holds(db, every_unit)
    assert statuses[again] == "held"
    assert sum(s == "held" for s in statuses.values()) == UNITS_PER_PROJECT + 1
