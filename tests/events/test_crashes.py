"""Crash acceptance tests of the event bus: real worker processes, real kills.

Every test runs ``propmubi worker`` subprocesses against the test's own PostgreSQL database and
Redis key prefix, kills something (a worker with SIGKILL or SIGTERM, the relay between XADD
and COMMIT, Redis with SIGKILL, PostgreSQL with an immediate stop), and checks the bus's
promises afterwards: no event lost, no second effect (``tally_effects`` has no unique key, so a
double effect would show), nothing left pending.
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from propmubi import testing
from propmubi.config import Config
from propmubi.db import Database, admin_execute, quote_ident
from propmubi.embedded import die_with_parent
from propmubi.services import Services
from tests.busplugins.ledger import record

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
# The same plugin set the test database is migrated with (tests/events/conftest.py), else the
# worker would refuse to start on "pending" migrations.
MODULES = "tests.refplugin,tests.busplugins.ledger,tests.busplugins.tally,tests.busplugins.audit"
GROUPS = ("tally", "audit")
DEADLINE = 60.0  # seconds any awaited condition may take; never an assertion on durations


# -- processes ------------------------------------------------------------------------------

def bus_env(config: Config, **extra: str) -> dict[str, str]:
    """The environment of a worker or CLI subprocess for this test's database and prefix."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROPMUBI_")}
    env.update(
        PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p),
        PROPMUBI_DATABASE__URL=config.database.url,
        PROPMUBI_REDIS__URL=config.redis.url,
        PROPMUBI_REDIS__KEY_PREFIX=config.redis.key_prefix,
        PROPMUBI_PLUGINS__MODULES=MODULES,
        PROPMUBI_EVENTS__CLAIM_IDLE="1",
        PROPMUBI_EVENTS__RETRY_BASE="0.05",
        PROPMUBI_EVENTS__RETRY_SCAN="0.05",
        PROPMUBI_EVENTS__BLOCK_MS="100",
        PROPMUBI_LOGGING__JSON="false",
    )
    env.update(extra)
    return env


class Workers:
    """Starts ``propmubi worker`` subprocesses; kills whatever is left at the end."""

    def __init__(self, config: Config, folder: Path) -> None:
        self.config = config
        self.folder = folder
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, **env: str) -> subprocess.Popen[bytes]:
        log_path = self.folder / f"worker-{len(self.procs)}.log"
        with open(log_path, "wb") as log_file:
            proc = subprocess.Popen(
                [sys.executable, "-m", "propmubi", "worker"], cwd=self.folder,
                env=bus_env(self.config, **env), stdin=subprocess.DEVNULL, stdout=log_file,
                stderr=subprocess.STDOUT,
                # Even if pytest itself is SIGKILLed, no worker outlives it.
                preexec_fn=die_with_parent(signal.SIGKILL))
        proc.log_path = log_path  # type: ignore[attr-defined]
        self.procs.append(proc)
        return proc

    def cli(self, *args: str) -> str:
        """Run ``propmubi <args>`` to completion; return its output (fails on a non-zero exit)."""
        result = subprocess.run([sys.executable, "-m", "propmubi", *args], cwd=self.folder,
                                env=bus_env(self.config), capture_output=True, text=True,
                                timeout=DEADLINE, check=False)
        assert result.returncode == 0, f"propmubi {' '.join(args)}:\n{result.stdout}\n" \
                                       f"{result.stderr}"
        return result.stdout

    def cleanup(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        for index, proc in enumerate(self.procs):  # shown by pytest when the test fails
            lines = proc.log_path.read_text(errors="replace").splitlines()  # type: ignore
            print(f"---- worker {index} (pid {proc.pid}, exit {proc.returncode}), last lines")
            print("\n".join(lines[-40:]))


@pytest.fixture
def workers(migrated: Config, tmp_path: Path) -> Iterator[Workers]:
    spawned = Workers(migrated, tmp_path)
    try:
        yield spawned
    finally:
        spawned.cleanup()


def consumer_of(proc: subprocess.Popen[bytes]) -> str:
    """The consumer name a worker process uses in every group (see ``consumer_name``)."""
    return f"{socket.gethostname()}:{proc.pid}"


def wait_exit(proc: subprocess.Popen[bytes]) -> int:
    return proc.wait(DEADLINE)


# -- observing ------------------------------------------------------------------------------

async def until(check: Callable[[], Awaitable[Any]], what: str, within: float = DEADLINE
                ) -> Any:
    """Poll ``check`` until it returns something truthy; errors (a server restarting) count
    as "not yet". Fails after ``within`` seconds."""
    deadline = time.monotonic() + within
    last: Any = None
    while True:
        try:
            result = await check()
        except Exception as exc:
            result, last = None, exc
        else:
            last = result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; last seen: {last!r}")
        await asyncio.sleep(0.05)


async def effects(db: Database) -> dict[str, collections.Counter[uuid.UUID]]:
    """Effect rows per group, counted per event."""
    rows = await db.fetch("SELECT handled_by, event_id FROM tally_effects")
    out: dict[str, collections.Counter[uuid.UUID]] = {g: collections.Counter() for g in GROUPS}
    for row in rows:
        out["audit" if row["handled_by"] == "audit" else "tally"][row["event_id"]] += 1
    return out


def all_handled(ids: list[uuid.UUID]) -> Callable[[Database], Awaitable[bool]]:
    async def check(db: Database) -> bool:
        found = await effects(db)
        return all(set(ids) <= set(found[g]) for g in GROUPS)
    return check


async def assert_exactly_once(db: Database, ids: list[uuid.UUID]) -> None:
    found = await effects(db)
    for group in GROUPS:
        assert set(found[group]) == set(ids), f"{group}: missing or unexpected effects"
        doubled = {i: n for i, n in found[group].items() if n != 1}
        assert not doubled, f"{group} handled events more than once: {doubled}"


async def pending(services: Services, group: str) -> int:
    """Entries read but not acknowledged by ``group``, over every stream it reads."""
    total = 0
    for stream in (services.keys.event_stream("ledger"), services.keys.replay_stream(group)):
        if await services.redis.exists(stream):
            groups = {g["name"]: g for g in await services.redis.xinfo_groups(stream)}
            if group in groups:
                total += int(groups[group]["pending"])
    return total


async def settled(services: Services) -> bool:
    """Every group has read everything on its streams (the ledger stream and its replay
    stream) and acknowledged all of it."""
    redis = services.redis
    for group in GROUPS:
        for stream in (services.keys.event_stream("ledger"), services.keys.replay_stream(group)):
            last = await redis.xrevrange(stream, count=1)
            if not last:
                continue
            groups = {g["name"]: g for g in await redis.xinfo_groups(stream)}
            if group not in groups or int(groups[group]["pending"]):
                return False
            if groups[group]["last-delivered-id"] != last[0][0]:
                return False
    return True


async def sleeping_handlers(db: Database) -> int:
    """Sessions idle in a transaction right after tally read its delay: mid-handler."""
    return await db.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND state = 'idle in transaction' AND query LIKE '%FROM tally_delay%'")


async def published(db: Database, ids: list[uuid.UUID]) -> bool:
    """The relay has put all these events on their stream."""
    return await db.fetchval("SELECT count(*) FROM core_outbox WHERE id = ANY(%s) "
                             "AND published_at IS NOT NULL", (ids,)) == len(ids)


async def publish_many(services: Services, count: int, accounts: int = 3,
                       db: Database | None = None) -> list[uuid.UUID]:
    owners = [uuid.uuid4() for _ in range(accounts)]
    ledger = services.context("ledger")
    return [await record(ledger, owners[n % accounts], n + 1, db=db) for n in range(count)]


# -- the tests ------------------------------------------------------------------------------

async def test_sigkill_mid_handler_is_claimed_and_completed_once(services, workers):
    await services.db.execute("INSERT INTO tally_delay (seconds) VALUES (60)")
    first, second = workers.start(), workers.start()
    by_consumer = {consumer_of(first): first, consumer_of(second): second}
    event_id = await record(services.context("ledger"), uuid.uuid4(), 7)
    stream = services.keys.event_stream("ledger")

    async def owner() -> str | None:
        info = await services.redis.xpending(stream, "tally")
        owners = [c["name"] for c in info["consumers"] if int(c["pending"])]
        return owners[0] if owners and await sleeping_handlers(services.db) else None

    victim_name = await until(owner, "a worker to be inside tally's handler")
    victim = by_consumer[victim_name]
    survivor = next(p for p in by_consumer.values() if p is not victim)
    await services.db.execute("DELETE FROM tally_delay")  # the survivor's run is quick
    victim.kill()
    assert wait_exit(victim) == -signal.SIGKILL

    async def completed() -> bool:
        found = await effects(services.db)
        return found["tally"][event_id] >= 1 and await pending(services, "tally") == 0

    await until(completed, "the survivor to claim and complete the event")
    assert survivor.poll() is None
    await until(lambda: settled(services), "every group to settle")
    await assert_exactly_once(services.db, [event_id])
    info = await services.redis.xpending(stream, "tally")
    assert info["pending"] == 0


async def test_sigterm_finishes_in_flight_batch_and_exits_cleanly(services, workers):
    await services.db.execute("INSERT INTO tally_delay (seconds) VALUES (0.2)")
    worker = workers.start()
    ids = await publish_many(services, 8)
    await until(lambda: sleeping_handlers(services.db), "tally to be inside a batch")
    worker.send_signal(signal.SIGTERM)
    assert wait_exit(worker) == 0
    stream = services.keys.event_stream("ledger")
    groups = {g["name"]: g for g in await services.redis.xinfo_groups(stream)}
    entries = await services.redis.xrange(stream)
    found = await effects(services.db)
    for group in GROUPS:
        assert await pending(services, group) == 0, f"{group} left entries pending"
        last = groups[group]["last-delivered-id"]
        delivered = {uuid.UUID(f["id"]) for i, f in entries
                     if tuple(map(int, i.split("-"))) <= tuple(map(int, last.split("-")))}
        assert delivered, f"{group} read nothing before the SIGTERM"
        assert set(found[group]) == delivered, f"{group}: effects differ from what it read"
        assert all(n == 1 for n in found[group].values())
    # A fresh worker handles the rest, and nothing twice.
    await services.db.execute("DELETE FROM tally_delay")
    workers.start()
    await until(lambda: all_handled(ids)(services.db), "a new worker to handle the rest")
    await until(lambda: settled(services), "every group to settle")
    await assert_exactly_once(services.db, ids)


async def test_relay_killed_between_xadd_and_commit_sends_again_without_double_effect(
        services, workers):
    crashing = workers.start(PROPMUBI_FAULT_RELAY_AFTER_XADD="sleep:60")
    account = uuid.uuid4()
    ids = [await record(services.context("ledger"), account, n) for n in (1, 2, 3)]
    stream = services.keys.event_stream("ledger")

    async def xadded_and_handled() -> bool:
        return (await services.redis.xlen(stream) == len(ids)
                and await all_handled(ids)(services.db))

    # The crashing worker's consumers handle the entries while its relay sits between XADD
    # and COMMIT, holding the outbox rows.
    await until(xadded_and_handled, "the first copies to be XADDed and handled")
    crashing.kill()
    assert wait_exit(crashing) == -signal.SIGKILL
    unpublished = await until(lambda: services.db.fetchval(
        "SELECT count(*) FROM core_outbox WHERE published_at IS NULL"), "the outbox rows")
    assert unpublished == len(ids)  # the marking never committed

    workers.start()

    async def resent() -> bool:
        return (await services.db.fetchval(
            "SELECT count(*) FROM core_outbox WHERE published_at IS NULL") == 0
            and await services.redis.xlen(stream) == 2 * len(ids)
            and await settled(services))

    await until(resent, "the relay to send the events again and the groups to settle")
    copies = collections.Counter(uuid.UUID(f["id"]) for _, f in
                                 await services.redis.xrange(stream))
    assert copies == dict.fromkeys(ids, 2)
    await assert_exactly_once(services.db, ids)
    sequences = await services.db.fetch(
        "SELECT sequence FROM tally_effects WHERE handled_by = 'audit' ORDER BY id")
    assert [r["sequence"] for r in sequences] == [1, 2, 3]


def _require_embedded(servers: testing.TestServers, which: str) -> Any:
    server = getattr(servers, which)
    if server is None:
        pytest.skip(f"the test {which} is external; only an embedded one can be killed")
    return server


async def test_redis_sigkill_then_replay_completes_every_effect_once(
        services, workers, test_servers):
    redis_server = _require_embedded(test_servers, "redis")
    since = (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)).isoformat()
    workers.start()
    before = await publish_many(services, 10)
    await until(lambda: all_handled(before)(services.db), "the first events to be handled")
    try:
        # tally sits in a slow handler while more events reach the stream unread: Redis takes
        # those to its grave (it runs without persistence and comes back empty).
        await services.db.execute("INSERT INTO tally_delay (seconds) VALUES (2)")
        blocker = await record(services.context("ledger"), uuid.uuid4(), 1)
        await until(lambda: sleeping_handlers(services.db), "tally to be inside its handler")
        unread = await publish_many(services, 9)
        await until(lambda: published(services.db, unread), "the relay to XADD them")
        redis_server.kill()
        await services.db.execute("DELETE FROM tally_delay")
        while_down = await publish_many(services, 10)  # the outbox does not need Redis
        await asyncio.sleep(0.5)  # the worker meets the dead Redis
    finally:
        if redis_server.proc is None:
            redis_server.start()  # same socket path: later tests use it as before
    # The running worker recovers by itself: new events flow again.
    after = await publish_many(services, 10)
    await until(lambda: all_handled(after + while_down)(services.db),
                "events published after the kill to be handled")
    assert not set(unread) & set((await effects(services.db))["tally"])  # lost with Redis
    # What Redis lost comes back from the event log; what was done is not done again.
    workers.cli("events", "replay", "--consumer", "tally", "--since", since)
    workers.cli("events", "replay", "--consumer", "audit", "--since", since)
    everything = [*before, blocker, *unread, *while_down, *after]
    await until(lambda: all_handled(everything)(services.db), "replay to complete the effects")
    await until(lambda: settled(services), "every group to settle")
    await assert_exactly_once(services.db, everything)


async def test_postgres_immediate_stop_loses_nothing_and_worker_recovers(
        services, workers, test_servers, template_database):
    postgres = _require_embedded(test_servers, "postgres")
    name = await services.db.fetchval("SELECT current_database()")
    # The session-wide server runs with synchronous_commit=off (fast tests), which lets an
    # immediate stop drop the last ~0.6 s of "committed" transactions. Production settings
    # for this database, so that "committed" means durable; sessions opened later use them.
    admin_execute(test_servers.database_url,
                  f"ALTER DATABASE {quote_ident(name)} SET synchronous_commit = on")
    before_db = Database(services.config.database)
    await before_db.open()
    try:
        assert await before_db.fetchval("SHOW synchronous_commit") == "on"
        workers.start()
        settled_ids = await publish_many(services, 10, db=before_db)
        await until(lambda: all_handled(settled_ids)(before_db), "the first events")
        # tally now takes a while per event, so the stop finds it inside a batch.
        await before_db.execute("INSERT INTO tally_delay (seconds) VALUES (0.1)")
        in_flight = await publish_many(services, 10, db=before_db)
        await until(lambda: sleeping_handlers(before_db), "tally to be inside a batch")
    finally:
        try:
            postgres.stop(mode="immediate")
            # Down for longer than the retries' backoff (0.05 s doubling) takes to use up
            # max_deliveries: an outage must not send events to the dead letters.
            await asyncio.sleep(3)
        finally:
            postgres.start()  # from the main thread: the server's parent-death signal
        await before_db.close()
    after_db = Database(services.config.database)
    await after_db.open()
    try:
        names = {r["datname"] for r in await until(
            lambda: after_db.fetch("SELECT datname FROM pg_database"), "PostgreSQL")}
        assert {name, template_database} <= names  # crash recovery kept both
        assert await after_db.fetchval(
            "SELECT count(*) FROM core_outbox WHERE id = ANY(%s)",
            (settled_ids + in_flight,)) == 20  # committed means kept
        after = await publish_many(services, 10, db=after_db)
        everything = settled_ids + in_flight + after
        await until(lambda: all_handled(everything)(after_db),
                    "the worker to recover and handle every event")
        await until(lambda: settled(services), "every group to settle")
        await assert_exactly_once(after_db, everything)
        for group in GROUPS:
            assert await services.redis.xlen(services.keys.dead_letters(group)) == 0
    finally:
        await after_db.close()
