"""Crash tests of the notifications plugin: real ``propmubi worker`` and ``propmubi scheduler``
processes on the test's database and Redis prefix, the providers' loopback simulators
(providers/simulators.py) as the SMS gateway, the SMTP relay and FCM, and a SIGKILL at a point
the simulator makes certain: it holds the worker's call, and the test kills the worker once the
call is in the simulator's hands.

How the product recovers (delivery.py): a worker claims a delivery in a committed transaction
(``sending``, with a lease) before it calls the provider, so a killed worker leaves it
``sending``. A restarted worker does not send it again (the event it is redelivered finds the
delivery ``sending``). Once the lease has run out, the scheduler's ``send_due`` job closes the
attempt as ``interrupted`` and settles it as the provider allows: ``http_sms`` is asked
whether it accepted the message (Twilio's Message list) and sends it only if not; ``fcm``
de-duplicates (the same collapse key), so the message is resent with the same
``Message.key``; ``smtp`` can do neither, so the e-mail is never resent and ends ``unknown``.
Here ``lease_seconds`` is short (twice ``send_timeout``, the shortest allowed),
and the scheduler, started with the fresh worker, has the job's next tick just after the lease
runs out (the job's next-run time, which every scheduler reads from Redis, set to then) rather
than up to 15 s later. No clock is faked: the processes run on real time.

1. ``test_worker_killed_before_the_sms_gateway_accepted_...``: the gateway holds the request
   before accepting anything; SIGKILL; the held request is dropped (nothing accepted). After a
   restart the gateway is asked, has nothing, and the SMS is sent: one SMS accepted, the
   delivery ``sent``, its attempts ``interrupted`` then ``sent``, both of the one delivery
   (one key), the same request twice on the wire.
2. ``test_worker_killed_after_the_provider_accepted_...`` (per channel): the provider accepts
   the message and withholds its answer; SIGKILL. After a restart: **SMS** is found by the
   lookup: exactly one SMS accepted, no second request to the send endpoint, the delivery
   ``sent`` with the gateway's sid and the attempt ``found``; **e-mail** is not resent: one
   message at the relay, the delivery ``unknown`` for staff; **push** is resent with the same
   collapse key (``collapse_key``, ``apns-collapse-id``): FCM gets it twice and the device
   shows one notification (it replaces the first). With ``resend_interrupted = false`` the SMS
   is neither asked about nor resent: the delivery ends ``unknown`` with one SMS accepted.
3. ``test_two_workers_...``: two workers share a backlog of 50 SMS notifications through a slow
   gateway; one is killed midway, with its request held before acceptance, and restarted:
   every one of the 50 messages accepted exactly once (the victim's after a lookup that found
   nothing).

Every wait is bounded (tests/processes.py's ``until``); no duration is asserted.
"""

from __future__ import annotations

import collections
import contextlib
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import attrs
import psutil
import pytest

from propmubi.actors import Actor
from propmubi.config import Config
from propmubi.db import Database
from propmubi.services import Services
from propmubi_plugins.notifications import api
from propmubi_plugins.notifications.models import NotifyIn
from propmubi_plugins.notifications.providers.fcm import apns_collapse_id
from propmubi_plugins.notifications.providers.smtp import message_id
from propmubi_plugins.notifications.state import Ctx
from tests.plugins.notifications.conftest import ASHA, DLT_ID, make_template, published
from tests.plugins.notifications.providers.simulators import (
    FcmSimulator,
    ServiceAccount,
    SmtpSimulator,
    TwilioSimulator,
)
from tests.processes import Processes, dead_letters, pending, settled, sigkill, until

pytestmark = pytest.mark.slow

CALLER = Actor.system("leads")
GROUP = "notifications"  # the plugin's consumer group
SEND_DUE = "notifications.send_due"
#: ``send_timeout`` of the processes, and the shortest lease it allows.
SEND_TIMEOUT = 2
LEASE = 2 * SEND_TIMEOUT
#: The providers' own timeout, under ``send_timeout``: a held call is still waiting (the
#: worker is still inside the provider) when the test kills the worker.
PROVIDER_TIMEOUT = 1.5
BACKLOG = 50


@pytest.fixture
def ctx(services: Services) -> Ctx:
    """The plugin's context in the test process, on the real clock (the processes' time)."""
    return services.context("notifications")


@pytest.fixture
def procs(migrated: Config, tmp_path: Path) -> Iterator[Processes]:
    """The processes (every installed plugin, as deployed) read one event at a time, so that
    two workers share a backlog instead of one reading all of it."""
    with Processes.running(migrated, tmp_path, PROPMUBI_EVENTS__CONSUMER_BATCH="1") as spawned:
        yield spawned


def use_providers(procs: Processes, *, sms: TwilioSimulator | None = None,
                  smtp: SmtpSimulator | None = None, fcm: FcmSimulator | None = None,
                  **more: Any) -> None:
    """``[plugins.notifications]`` of the processes: each given simulator as its channel's only
    provider, a short lease, no daily cap (one recipient gets the whole backlog)."""
    main: dict[str, Any] = {"send_timeout": SEND_TIMEOUT, "lease_seconds": LEASE,
                            "daily_cap": 0, **more}
    tables: dict[str, dict[str, Any]] = {}
    if sms is not None:
        main["sms_providers"] = ["http_sms"]
        tables["plugins.notifications.http_sms"] = attrs.asdict(
            sms.settings(timeout=PROVIDER_TIMEOUT))
    if smtp is not None:
        main["email_providers"] = ["smtp"]
        tables["plugins.notifications.smtp"] = attrs.asdict(
            smtp.settings(timeout=PROVIDER_TIMEOUT))
    if fcm is not None:
        main["push_providers"] = ["fcm"]
        tables["plugins.notifications.fcm"] = attrs.asdict(
            fcm.settings(timeout=PROVIDER_TIMEOUT))
    procs.use_settings({"plugins.notifications": main, **tables})


def lead(n: int, channel: str) -> NotifyIn:
    """The ``n``-th "lead assigned" notification, on one channel, to addresses of its own."""
    return NotifyIn(type="lead_assigned", user_id=ASHA, phone=f"+9198123{n:05d}",
                    email=f"agent{n}@example.com", push_tokens=[f"device-token-{n}"],
                    variables={"name": f"Lead {n}", "project": "Palm Grove"},
                    channels=[channel])


async def delivery_of(db: Database, notification_id: Any) -> dict[str, Any]:
    (row,) = await db.fetch("SELECT * FROM notifications_deliveries WHERE notification_id = %s",
                            (notification_id,))
    return row


async def ledger(db: Database, delivery_id: Any) -> list[tuple[int, str, str]]:
    """A delivery's attempts: (number, provider, status)."""
    rows = await db.fetch("SELECT attempt_no, provider, status FROM notifications_attempts"
                          " WHERE delivery_id = %s ORDER BY attempt_no", (delivery_id,))
    return [(r["attempt_no"], r["provider"], r["status"]) for r in rows]


async def status_of(db: Database, delivery_id: Any) -> str:
    return str(await db.fetchval("SELECT status FROM notifications_deliveries WHERE id = %s",
                                 (delivery_id,)))


async def has_status(db: Database, delivery_id: Any, status: str) -> bool:
    return await status_of(db, delivery_id) == status


async def is_sent(db: Database, delivery_id: Any) -> bool:
    return await has_status(db, delivery_id, "sent")


async def tick_after_lease(procs: Processes, services: Services, db: Database,
                           delivery_id: Any) -> subprocess.Popen[bytes]:
    """A scheduler whose ``send_due`` tick falls just after the delivery's lease runs out:
    the job's next run, which every scheduler reads from Redis, set to then (the job's own
    ticks are 15 s apart)."""
    expires = await db.fetchval("SELECT lease_expires_at FROM notifications_deliveries"
                                " WHERE id = %s", (delivery_id,))
    await services.redis.set(services.keys.job_next_run(SEND_DUE),
                             repr(expires.timestamp() + 0.1))
    # It looks for due jobs every 0.1 s rather than every second.
    return procs.scheduler(PROPMUBI_SCHEDULER__TICK="0.1")


async def kill_in_the_call(sim: Any, victim: subprocess.Popen[bytes]) -> Any:
    """SIGKILL ``victim`` while ``sim`` holds its call; once the simulator sees the connection
    gone, let the held call go on (a caller gone before acceptance is dropped). The held
    call."""
    (held,) = sim.holding
    sigkill(victim)
    await until(lambda: ready(not held.connected), "the simulator to see the caller gone")
    sim.release()
    return held


async def ready(value: Any) -> Any:
    """``value``, for :func:`until` (a condition the test process holds itself)."""
    return value


def local_ports(pid: int) -> set[int]:
    """The local TCP ports of a process's connections."""
    with contextlib.suppress(psutil.Error):
        return {c.laddr.port for c in psutil.Process(pid).net_connections(kind="tcp")
                if c.laddr}
    return set()


# -- 1. killed while the SMS gateway holds the request, before it accepted it ------------------

async def test_worker_killed_before_the_sms_gateway_accepted_sends_it_once_after_restart(
        ctx: Ctx, services: Services, procs: Processes) -> None:
    db = ctx.db
    async with TwilioSimulator.running() as sms:
        use_providers(procs, sms=sms)
        await make_template(ctx)
        sms.hold()
        victim = procs.worker()
        out = await api.notify(ctx, CALLER, lead(1, "sms"))
        await until(lambda: ready(sms.holding), "the worker's request to be held by the gateway")
        row = await delivery_of(db, out.id)
        assert (row["status"], row["attempts"], row["provider"]) == ("sending", 1, "http_sms")
        assert await ledger(db, row["id"]) == [(1, "http_sms", "sending")]

        await kill_in_the_call(sms, victim)
        await until(lambda: ready(sms.dropped), "the gateway to drop the dead caller's request")
        assert sms.accepted == []  # the gateway never accepted it
        assert await status_of(db, row["id"]) == "sending"

        procs.worker()
        await tick_after_lease(procs, services, db, row["id"])
        await until(lambda: is_sent(db, row["id"]), "the scheduler to resend the message")
        await until(lambda: settled(services, GROUP),
                    "the fresh worker to take over and finish the killed worker's event")

        (accepted,) = sms.accepted  # delivered exactly once
        assert accepted["form"]["To"] == "+919812300001"
        assert accepted["form"]["Body"] == "New lead Lead 1 for Palm Grove."
        # The scheduler asked the gateway first (it had nothing), by recipient, sender and day.
        (lookup,) = sms.lookups
        assert (lookup["query"]["To"], lookup["query"]["From"]) == ("+919812300001", "PRPMBI")
        # Two requests, the same both times (Twilio's API has no place for the key): the
        # killed worker's, dropped, and the scheduler's send after the lookup. The fresh
        # worker's rerun of the event found the delivery being sent and sent nothing.
        first, second = (r["form"] for r in sms.received)
        assert first == second == accepted["form"]
        assert first["DltTemplateId"] == DLT_ID
        done = await delivery_of(db, out.id)
        assert (done["status"], done["attempts"], done["provider"], done["pinned"]) \
            == ("sent", 2, "http_sms", True)
        assert done["provider_message_id"] == accepted["sid"]
        # One delivery, one key, for both attempts.
        assert done["message_key"] == row["message_key"] == f"{out.id}:sms"
        assert await ledger(db, row["id"]) == [(1, "http_sms", "interrupted"),
                                               (2, "http_sms", "sent")]
        delivered = await published(ctx, "notifications.message_delivered")
        assert [(d["delivery_id"], d["attempts"]) for d in delivered] == [(str(row["id"]), 2)]
        assert await published(ctx, "notifications.message_failed") == []
        assert await dead_letters(services) == 0 and await pending(services, GROUP) == 0


# -- 2. killed after the provider accepted, while its answer is withheld ----------------------

PROVIDER = {"sms": "http_sms", "email": "smtp", "push": "fcm"}
#: ``use_providers``' argument of each channel's simulator.
SERVICE = {"sms": "sms", "email": "smtp", "push": "fcm"}


@contextlib.asynccontextmanager
async def simulator(channel: str) -> AsyncIterator[Any]:
    """The loopback service of ``channel``."""
    if channel == "sms":
        async with TwilioSimulator.running() as sms:
            yield sms
    elif channel == "email":
        async with SmtpSimulator.running() as smtp:
            yield smtp
    else:
        async with FcmSimulator.running(ServiceAccount.generate()) as fcm:
            yield fcm


def accepted_by(sim: Any) -> list[Any]:
    """What the service accepted, in order (an e-mail: once queued at the end of DATA)."""
    return list(sim.received if isinstance(sim, SmtpSimulator) else sim.accepted)


@pytest.mark.parametrize(("channel", "resend"), [
    ("email", True), ("push", True), ("sms", True), ("sms", False),
], ids=["email-unknown-never-resent", "push-same-collapse-key", "sms-found-by-lookup",
        "sms-unknown-without-resend"])
async def test_worker_killed_after_the_provider_accepted_is_settled_without_a_second_message(
        ctx: Ctx, services: Services, procs: Processes, channel: str, resend: bool) -> None:
    db = ctx.db
    provider = PROVIDER[channel]
    async with simulator(channel) as sim:
        use_providers(procs, **{SERVICE[channel]: sim}, resend_interrupted=resend)
        await make_template(ctx, channel=channel)
        sim.accept_then_hold()
        victim = procs.worker()
        out = await api.notify(ctx, CALLER, lead(1, channel))
        await until(lambda: ready(sim.holding),
                    "the provider to accept the message and withhold its answer")
        assert len(accepted_by(sim)) == 1
        row = await delivery_of(db, out.id)
        key = row["message_key"]
        assert key == f"{out.id}:{channel}"
        assert (row["status"], row["attempts"], row["provider"]) == ("sending", 1, provider)

        await kill_in_the_call(sim, victim)
        procs.worker()
        await tick_after_lease(procs, services, db, row["id"])
        end = "sent" if channel != "email" and resend else "unknown"
        await until(lambda: has_status(db, row["id"], end),
                    f"the scheduler to recover the delivery ({end})")
        await until(lambda: settled(services, GROUP),
                    "the fresh worker to take over and finish the killed worker's event")
        done = await delivery_of(db, out.id)
        assert done["message_key"] == key

        if end == "unknown":
            # Not resent: one message, and staff see an unknown delivery saying why.
            assert len(accepted_by(sim)) == 1
            if channel == "sms":
                assert len(sim.received) == 1 and sim.lookups == []
                assert "resend_interrupted is off" in done["reason"]
            else:
                assert sim.data_seen == 1
                # Staff find it in the relay's logs by its Message-ID, the message key.
                assert accepted_by(sim)[0].message["Message-ID"] == message_id(key)
                assert "can neither be asked whether it did nor merge a resend" \
                    in done["reason"]
            assert (done["attempts"], done["provider"]) == (1, provider)
            assert await ledger(db, row["id"]) == [(1, provider, "interrupted")]
            (failed,) = await published(ctx, "notifications.message_failed")
            assert (failed["delivery_id"], failed["status"]) == (str(row["id"]), "unknown")
            assert await published(ctx, "notifications.message_delivered") == []
            return

        delivered = await published(ctx, "notifications.message_delivered")
        assert [(d["delivery_id"], d["attempts"]) for d in delivered] == [(str(row["id"]), 2)]
        assert await published(ctx, "notifications.message_failed") == []
        assert (done["attempts"], done["provider"], done["pinned"]) == (2, provider, True)
        if channel == "sms":
            # Found by asking the gateway: exactly one SMS, recorded with the gateway's sid;
            # no second request to the send endpoint.
            (accepted,) = sim.accepted
            assert len(sim.received) == 1 and len(sim.lookups) >= 1
            assert sim.lookups[0]["query"]["To"] == accepted["form"]["To"] == "+919812300001"
            assert done["provider_message_id"] == accepted["sid"]
            assert await ledger(db, row["id"]) == [(1, provider, "interrupted"),
                                                   (2, provider, "found")]
            return

        # Push: resent once more, through the same provider with the same key.
        assert await ledger(db, row["id"]) == [(1, provider, "interrupted"),
                                               (2, provider, "sent")]
        first, second = accepted_by(sim)  # FCM accepted it twice...
        for push in (first, second):
            # ... with the key as the collapse key both times: the device replaces the first
            # notification with the second instead of showing two.
            message = push["body"]["message"]
            assert message["token"] == "device-token-1"
            assert message["android"]["collapse_key"] == key
            assert message["apns"]["headers"]["apns-collapse-id"] == apns_collapse_id(key)
        assert first["body"] == second["body"]


# -- 3. two workers on a backlog, one killed midway -------------------------------------------

async def test_two_workers_one_killed_midway_send_each_of_50_sms_exactly_once(
        ctx: Ctx, services: Services, procs: Processes) -> None:
    db = ctx.db
    async with TwilioSimulator.running() as sms:
        sms.delay = 0.05  # a slow gateway
        use_providers(procs, sms=sms)
        await make_template(ctx)
        for n in range(BACKLOG):
            await api.notify(ctx, CALLER, lead(n, "sms"))
        deliveries = {r["addresses"][0]: r for r in await db.fetch(
            "SELECT id, addresses, message_key FROM notifications_deliveries")}
        assert len(deliveries) == BACKLOG

        procs.worker()
        victim = procs.worker()
        await until(lambda: ready(len(sms.accepted) >= BACKLOG // 3),
                    "the workers to send a third of the backlog")
        # The victim's next request is held before the gateway accepts it.
        sms.hold(None, caller=lambda peer: peer[1] in local_ports(victim.pid))
        await until(lambda: ready(sms.holding), "the victim's next request to be held")
        held = await kill_in_the_call(sms, victim)
        victim_delivery = deliveries[held.what["To"]]["id"]
        await until(lambda: ready(sms.dropped), "the gateway to drop the dead caller's request")
        assert sms.dropped == [held.what]
        assert await status_of(db, victim_delivery) == "sending"

        procs.worker()  # the victim restarted
        await tick_after_lease(procs, services, db, victim_delivery)

        async def all_sent() -> bool:
            sent = await db.fetchval("SELECT count(*) FROM notifications_deliveries"
                                     " WHERE status = 'sent'")
            return sent == BACKLOG and await settled(services, GROUP)

        await until(all_sent, "every message to be sent and every event handled")

        # Each message accepted exactly once, and recorded with the gateway's id.
        per_key = collections.Counter(deliveries[a["form"]["To"]]["message_key"]
                                      for a in sms.accepted)
        assert per_key == {r["message_key"]: 1 for r in deliveries.values()}
        sids = {a["form"]["To"]: a["sid"] for a in sms.accepted}
        recorded = {r["id"]: r["provider_message_id"] for r in await db.fetch(
            "SELECT id, provider_message_id FROM notifications_deliveries")}
        assert recorded == {r["id"]: sids[phone] for phone, r in deliveries.items()}
        assert len(sms.received) == BACKLOG + 1  # each once, and the dropped request
        # Only the victim's message was looked up (it had nothing), before it was sent.
        assert [q["query"]["To"] for q in sms.lookups] == [held.what["To"]]
        for phone, row in deliveries.items():
            assert await ledger(db, row["id"]) == (
                [(1, "http_sms", "interrupted"), (2, "http_sms", "sent")]
                if row["id"] == victim_delivery else [(1, "http_sms", "sent")]), phone
        delivered = collections.Counter(
            d["delivery_id"] for d in await published(ctx, "notifications.message_delivered"))
        assert delivered == {str(r["id"]): 1 for r in deliveries.values()}
        assert await published(ctx, "notifications.message_failed") == []
        assert await dead_letters(services) == 0 and await pending(services, GROUP) == 0
