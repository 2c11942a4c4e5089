"""Event bus benchmark: end-to-end throughput and latency through ONE worker process.

    .venv/bin/python tests/bench/bench_events.py [--events 50000] [--per-tx 1]
        [--compare-per-tx 10] [--handler sink|tally] [--fast] [--quick] [--profile 10]

It starts its own embedded PostgreSQL (durable settings by default: fsync and synchronous
commit on; ``--fast`` turns them off like the test suite does) and Redis (no persistence) in a
temporary folder, creates and migrates a database with the ``ledger`` test plugin (publisher)
and one subscriber, starts one ``propmubi worker`` subprocess (relay + the subscriber's
consumer group, default event settings), and measures the bus.

The subscriber (``--handler``) is by default ``sink`` (tests/bench/sink_plugin.py): ONE
statement per event, an INSERT into ``sink_effects``, so the figures are those of the bus
(outbox, relay, streams, consumer transaction), not of a test plugin. ``--handler tally`` is
the worst case kept as a variant: tests/busplugins/tally.py does four statements per event
(poison check, delay check, projection upsert, effect insert).

Each publishing transaction records ``--per-tx`` events (default 1: ``ledger.record``, one
INSERT + outbox row + NOTIFY, COMMIT; N > 1: ``ledger.record_many``, N such pairs then one
COMMIT). Phases:

(a) throughput: ``--events`` events published as fast as possible by ``--publishers``
    concurrent coroutines in this process, once with ``--per-tx`` events per transaction and
    once with ``--compare-per-tx`` (default 10; 0 skips it). End to end events/s = events
    handled / (last handler effect - first publish). The publish rate and the handler rate
    (effects / their own time span) are reported beside it, with the CPU each part
    (publisher, worker, PostgreSQL, Redis) spent per event and the events/s those CPU costs
    allow on this machine's cores at best.
(a2) backlog: the worker is stopped and ``--backlog`` events are published (half with each
    events-per-transaction setting): the publisher-only rate, with no worker competing for
    the CPU. A fresh worker then drains them: the worker's own capacity. ``--profile
    SECONDS`` runs py-spy on it meanwhile (bounded in time) and prints where its time goes.
(b) latency: a rate-limited publisher at ``--rate`` events/s (``--per-tx`` per transaction)
    for ``--seconds`` seconds; commit->handler latency per event = effect ``at``
    (``clock_timestamp()`` when the handler inserts its row) - ``core_outbox.occurred_at``
    (taken by ``publish()`` inside the publishing transaction, a round trip or two before its
    COMMIT), so it slightly over-states the true commit->handler time. Also: relay pickup =
    ``published_at`` (the relay transaction's start) - ``occurred_at``. Whether the publisher
    sustained the rate is printed (it shares the 2 cores with the worker and PostgreSQL).
    (b') repeats it at ``--context-rate``, for context.
(c) raw Redis baseline on the same server: redis-py asyncio XADD pipelined by 100, and
    XREADGROUP count=100 + XACK per batch, with entries shaped like the bus's envelopes.

After every phase it checks, over every event published so far, that each has exactly one
effect (no duplicate: count(*) = count(DISTINCT event_id); none missing; none unknown); a
failed check is printed and makes the exit status 1.

It prints a table and writes JSON to ``tests/bench/results/`` (git-ignored). Everything
listens on unix sockets; every load is bounded in time; the worker and both servers are
stopped at the end, also on Ctrl-C or SIGTERM (and die with this process if it is killed).

Aim (issue): >= 5,000 events/s end to end with one worker on a 2-core machine, and p99
commit->handler latency under 50 ms at 1,000 events/s.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, NamedTuple

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
if str(ROOT) not in sys.path:  # run as a script: make `tests.busplugins` importable
    sys.path.insert(0, str(ROOT))

import orjson  # noqa: E402
import redis.asyncio as aioredis  # noqa: E402

from propmubi import __version__, migrate  # noqa: E402
from propmubi.config import load_config  # noqa: E402
from propmubi.embedded import EmbeddedPostgres, EmbeddedRedis, die_with_parent  # noqa: E402
from propmubi.lifecycle import open_services  # noqa: E402
from propmubi.plugins import load_plugins  # noqa: E402
from propmubi.services import Services  # noqa: E402
from tests.busplugins.ledger import record, record_many  # noqa: E402


class Subscriber(NamedTuple):
    """The subscribing plugin under the bus: its group (plugin) name, module, effects table."""

    group: str
    module: str
    table: str
    statements: int  # SQL statements its handler runs per event


SUBSCRIBERS = {
    "sink": Subscriber("sink", "tests.bench.sink_plugin", "sink_effects", 1),
    "tally": Subscriber("tally", "tests.busplugins.tally", "tally_effects", 4),
}
PUBLISHER_MODULE = "tests.busplugins.ledger"
PREFIX = "bench:"
AIM_EVENTS_PER_S = 5000
AIM_P99_MS = 50.0
AIM_RATE = 1000.0
#: The rate-limited publisher "sustained" its rate when it reached this share of it ...
SUSTAINED_SHARE = 0.97
#: ... and at most this share of its transactions started over 50 ms late.
SUSTAINED_LATE_SHARE = 0.01
_children: list[subprocess.Popen[bytes]] = []
_worker_logs: dict[int, Path] = {}  # worker pid -> its log (to explain an early exit)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def bus_env(pg_url: str, redis_url: str, sub: Subscriber) -> dict[str, str]:
    return {
        "PROPMUBI_DATABASE__URL": pg_url,
        "PROPMUBI_REDIS__URL": redis_url,
        "PROPMUBI_REDIS__KEY_PREFIX": PREFIX,
        "PROPMUBI_PLUGINS__MODULES": f"{PUBLISHER_MODULE},{sub.module}",
        # Only these two: an installed domain plugin (entry point) would add its own tables,
        # consumer groups and start-up work to what is measured.
        "PROPMUBI_PLUGINS__ENABLED": f"ledger,{sub.group}",
        "PROPMUBI_LOGGING__JSON": "false",
        "PROPMUBI_LOGGING__LEVEL": "WARNING",
    }


def start_worker(env: dict[str, str], folder: Path) -> subprocess.Popen[bytes]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("PROPMUBI_")}
    full.update(env, PYTHONPATH=os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p))
    with open(folder / "worker.log", "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "propmubi", "worker"], cwd=folder,
                                env=full, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT,
                                preexec_fn=die_with_parent(signal.SIGKILL))
    _children.append(proc)
    _worker_logs[proc.pid] = folder / "worker.log"
    return proc


def machine_busy() -> float:
    """CPU seconds all cores spent busy so far, whoever used them (/proc/stat)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str]:
    """Fields of /proc/<pid>/stat after the command name (state is [0], ppid [1])."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def cpu_seconds(pid: int, children: bool = False) -> float:
    """User + system CPU time of a process so far (Linux /proc); with ``children``, plus that
    of its exited children it has waited for."""
    try:
        fields = _stat(pid)
    except OSError:
        return float("nan")
    ticks = int(fields[11]) + int(fields[12])
    if children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU seconds used so far by each part of the set-up: this process (the publisher), the
    worker, PostgreSQL (postmaster + live backends + the exited ones it reaped) and Redis;
    and, to tell a quiet machine from a busy one, what every other process used meanwhile."""

    PARTS = ("publisher", "worker", "postgres", "redis")

    def __init__(self, postgres_pid: int, redis_pid: int) -> None:
        self.postgres_pid = postgres_pid
        self.redis_pid = redis_pid
        self.worker_pid = 0

    def _postgres(self) -> float:
        total = cpu_seconds(self.postgres_pid, children=True)
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(OSError, IndexError, ValueError):
                    if int(_stat(int(entry.name))[1]) == self.postgres_pid:
                        total += cpu_seconds(int(entry.name))
        return total

    def snapshot(self) -> dict[str, float]:
        return {"publisher": time.process_time(), "worker": cpu_seconds(self.worker_pid),
                "postgres": self._postgres(), "redis": cpu_seconds(self.redis_pid),
                "_machine": machine_busy(), "_wall": time.monotonic()}

    @classmethod
    def shares(cls, before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
        """Cores used on average by each part and by every other process on the machine."""
        wall = max(1e-9, after["_wall"] - before["_wall"])
        used = {k: after[k] - before[k] for k in cls.PARTS}
        used = {k: 0.0 if v != v else v for k, v in used.items()}  # nan: the worker was down
        out = {k: round(v / wall, 3) for k, v in used.items()}
        others = after["_machine"] - before["_machine"] - sum(used.values())
        out["others"] = round(max(0.0, others) / wall, 3)
        return out

    @staticmethod
    def per_event(before: dict[str, float], after: dict[str, float], events: int
                  ) -> dict[str, float]:
        """Milliseconds of CPU per event by part, their total, and the events/s that total
        allows on this machine's cores if nothing else ran."""
        out = {k: round((after[k] - before[k]) * 1000 / max(1, events), 3)
               for k in CpuMeter.PARTS}
        out["total"] = round(sum(out.values()), 3)
        cores = os.cpu_count() or 1
        out["cpu_bound_ceiling_events_per_s"] = (round(cores * 1000 / out["total"])
                                                 if out["total"] > 0 else None)
        out["other_processes_cores"] = CpuMeter.shares(before, after)["others"]
        return out


async def publish_events(services: Services, owners: list[uuid.UUID], first: int, count: int
                         ) -> None:
    """Events ``first`` .. ``first + count - 1`` (amount = number + 1, account = number modulo
    the accounts) in ONE transaction: ``ledger.record`` for one, ``ledger.record_many`` for
    more, in account order (concurrent transactions then lock aggregates in the same order and
    cannot deadlock)."""
    ledger = services.context("ledger")
    if count == 1:
        await record(ledger, owners[first % len(owners)], first + 1)
        return
    entries = sorted(((owners[n % len(owners)], n + 1) for n in range(first, first + count)),
                     key=lambda entry: entry[0])
    await record_many(ledger, entries)


async def effects_mark(services: Services, sub: Subscriber) -> int:
    """The last effect row so far: a phase's effects are the rows after it."""
    return await services.db.fetchval(f"SELECT coalesce(max(id), 0) FROM {sub.table}")


async def wait_handled(services: Services, sub: Subscriber, mark: int, expected: int,
                       limit: float, worker: subprocess.Popen[bytes], interval: float = 0.2
                       ) -> int:
    """Poll until ``expected`` effects after ``mark`` exist, or ``limit`` passes (a cheap
    primary-key range count: the poll must not load the database it measures)."""
    deadline = time.monotonic() + limit
    while True:
        done = await services.db.fetchval(f"SELECT count(*) FROM {sub.table} WHERE id > %s",
                                          (mark,))
        if done >= expected or time.monotonic() > deadline:
            return done
        if worker.poll() is not None:
            log = _worker_logs.get(worker.pid)
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-25:]) if log else ""
            raise RuntimeError(f"the worker exited with {worker.returncode}; its log ends:\n"
                               f"{tail}")
        await asyncio.sleep(interval)


async def verify(services: Services, sub: Subscriber, after: str) -> dict[str, Any]:
    """Exactly one effect per event published so far: no duplicate, none missing, none for
    an unknown event. Run once a phase's events are all handled (or its wait gave up)."""
    row = await services.db.fetchrow(
        f"""
        SELECT (SELECT count(*) FROM core_outbox) AS events,
               (SELECT count(*) FROM {sub.table}) AS effects,
               (SELECT count(DISTINCT event_id) FROM {sub.table}) AS distinct_effects,
               (SELECT count(*) FROM core_outbox o WHERE NOT EXISTS (
                    SELECT 1 FROM {sub.table} e WHERE e.event_id = o.id)) AS missing,
               (SELECT count(*) FROM {sub.table} e WHERE NOT EXISTS (
                    SELECT 1 FROM core_outbox o WHERE o.id = e.event_id)) AS unknown
        """)
    check = {"after": after, "events": row["events"], "effects": row["effects"],
             "duplicates": row["effects"] - row["distinct_effects"],
             "missing": row["missing"], "unknown": row["unknown"]}
    check["ok"] = check["duplicates"] == check["missing"] == check["unknown"] == 0
    if not check["ok"]:
        print(f"CORRECTNESS CHECK FAILED after {after}: {check}", file=sys.stderr, flush=True)
    return check


async def batch_sizes(services: Services, sub: Subscriber, since: dt.datetime
                      ) -> dict[str, float]:
    """Average events per relay transaction and per consumer transaction (each stamps its
    rows with its own ``now()``: the transaction's start)."""
    row = await services.db.fetchrow(
        "SELECT count(*) AS n, count(DISTINCT o.published_at) AS relay, "
        "count(DISTINCT p.processed_at) AS consumer FROM core_outbox o "
        "JOIN core_processed_events p ON p.event_id = o.id AND p.consumer = %s "
        "WHERE o.occurred_at >= %s", (sub.group, since))
    return {"relay": round(row["n"] / max(1, row["relay"]), 1),
            "consumer": round(row["n"] / max(1, row["consumer"]), 1)}


async def phase_throughput(services: Services, sub: Subscriber,
                           worker: subprocess.Popen[bytes], events: int, per_tx: int,
                           publishers: int, accounts: int, limit: float, meter: CpuMeter
                           ) -> dict[str, Any]:
    owners = [uuid.uuid4() for _ in range(accounts)]
    firsts = iter(range(0, events, per_tx))
    since = dt.datetime.now(dt.UTC)
    mark = await effects_mark(services, sub)
    cpu0 = meter.snapshot()
    deadline = time.monotonic() + limit

    async def publisher() -> int:
        sent = 0
        for first in firsts:  # shared: each batch is taken by exactly one coroutine
            if time.monotonic() > deadline:
                break
            count = min(per_tx, events - first)
            await publish_events(services, owners, first, count)
            sent += count
        return sent

    started = time.perf_counter()
    sent = sum(await asyncio.gather(*[publisher() for _ in range(publishers)]))
    publish_s = time.perf_counter() - started
    handled = await wait_handled(services, sub, mark, sent,
                                 max(5.0, deadline - time.monotonic()), worker)
    cpu = meter.per_event(cpu0, meter.snapshot(), handled)
    row = await services.db.fetchrow(
        "SELECT min(o.occurred_at) AS first_publish, max(e.at) AS last_effect, "
        "min(e.at) AS first_effect, count(*) AS n, count(DISTINCT e.event_id) AS distinct_n "
        f"FROM {sub.table} e JOIN core_outbox o ON o.id = e.event_id "
        "WHERE o.occurred_at >= %s", (since,))
    span = (row["last_effect"] - row["first_publish"]).total_seconds()
    handler_span = (row["last_effect"] - row["first_effect"]).total_seconds()
    return {
        "events_per_publishing_transaction": per_tx,
        "events_published": sent, "events_handled": handled,
        "double_effects": row["n"] - row["distinct_n"],
        "publish_seconds": round(publish_s, 3),
        "publish_events_per_s": round(sent / publish_s, 1),
        "end_to_end_seconds": round(span, 3),
        "end_to_end_events_per_s": round(handled / span, 1) if span > 0 else None,
        "handler_events_per_s": round(handled / handler_span, 1) if handler_span > 0 else None,
        "cpu_ms_per_event": cpu,
        "events_per_transaction": await batch_sizes(services, sub, since),
        "publishers": publishers, "accounts": accounts,
    }


async def phase_backlog(services: Services, sub: Subscriber, worker: subprocess.Popen[bytes],
                        env: dict[str, str], folder: Path, args: argparse.Namespace,
                        meter: CpuMeter) -> tuple[dict[str, Any], subprocess.Popen[bytes]]:
    """The publisher alone, then the worker alone: stop the worker, publish a backlog (one
    part per events-per-transaction setting, each timed: nothing competes with the publisher
    but PostgreSQL), start a fresh worker and time how fast it relays and handles the
    backlog (the publisher no longer competes for CPU)."""
    worker.send_signal(signal.SIGTERM)
    await asyncio.to_thread(worker.wait, 60)
    shapes = per_tx_settings(args)
    since = dt.datetime.now(dt.UTC)
    mark = await effects_mark(services, sub)
    publisher_alone = {}
    for per_tx in shapes:
        owners = [uuid.uuid4() for _ in range(args.accounts)]
        events = args.backlog // len(shapes)
        firsts = iter(range(0, events, per_tx))

        async def publisher(per_tx: int = per_tx, owners: list[uuid.UUID] = owners,
                            events: int = events, firsts: Any = firsts) -> None:
            for first in firsts:
                await publish_events(services, owners, first, min(per_tx, events - first))

        cpu0 = meter.snapshot()
        started = time.perf_counter()
        await asyncio.gather(*[publisher() for _ in range(args.publishers)])
        seconds = time.perf_counter() - started
        cpu = meter.per_event(cpu0, meter.snapshot(), events)
        publisher_alone[f"per_tx_{per_tx}"] = {
            "per_tx": per_tx, "events": events, "seconds": round(seconds, 3),
            "events_per_s": round(events / seconds, 1),
            "cpu_ms_per_event": {"publisher": cpu["publisher"], "postgres": cpu["postgres"]},
            "other_processes_cores": cpu["other_processes_cores"]}
    total = sum(p["events"] for p in publisher_alone.values())
    worker = start_worker(env, folder)
    meter.worker_pid = worker.pid
    # CPU (and the profile) from the first effect on: the interpreter's start-up is not the
    # bus's cost.
    await wait_handled(services, sub, mark, 1, args.limit, worker, interval=0.01)
    cpu0 = meter.snapshot()
    profiler = start_profiler(worker, folder, args.profile) if args.profile else None
    handled = await wait_handled(services, sub, mark, total, args.limit, worker)
    cpu1 = meter.snapshot()
    cpu = cpu1["worker"] - cpu0["worker"]
    row = await services.db.fetchrow(
        "SELECT min(e.at) AS first_effect, max(e.at) AS last_effect, "
        "count(*) - count(DISTINCT e.event_id) AS doubled "
        f"FROM {sub.table} e JOIN core_outbox o ON o.id = e.event_id "
        "WHERE o.occurred_at >= %s", (since,))
    span = (row["last_effect"] - row["first_effect"]).total_seconds()
    result = {
        "events": total, "events_handled": handled, "double_effects": row["doubled"],
        "publisher_alone": publisher_alone,
        "drain_seconds": round(span, 3),
        "worker_events_per_s": round(handled / span, 1) if span > 0 else None,
        "cpu_ms_per_event": meter.per_event(cpu0, cpu1, handled),
        "events_per_transaction": await batch_sizes(services, sub, since),
        "worker_cpu_share": round(cpu / span, 3) if span > 0 else None,
    }
    if profiler is not None:
        result["profile"] = await finish_profiler(profiler, folder)
    return result, worker


async def phase_latency(services: Services, sub: Subscriber, worker: subprocess.Popen[bytes],
                        rate: float, seconds: float, per_tx: int, accounts: int,
                        meter: CpuMeter) -> dict[str, Any]:
    owners = [uuid.uuid4() for _ in range(accounts)]
    total = int(rate * seconds)
    since = dt.datetime.now(dt.UTC)
    mark = await effects_mark(services, sub)
    gate = asyncio.Semaphore(64)  # transactions in flight; more means we are not keeping up
    tasks: set[asyncio.Task[Any]] = set()
    behind = 0
    transactions = 0
    cpu0 = meter.snapshot()

    async def one(first: int) -> None:
        try:
            await publish_events(services, owners, first, min(per_tx, total - first))
        finally:
            gate.release()

    start = time.monotonic() + 0.05
    for first in range(0, total, per_tx):
        delay = start + first / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        elif delay < -0.05:
            behind += 1
        await gate.acquire()
        task = asyncio.create_task(one(first))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        transactions += 1
    await asyncio.gather(*tasks)
    publish_s = time.monotonic() - start
    cpu1 = meter.snapshot()
    handled = await wait_handled(services, sub, mark, total, 60.0, worker)
    row = await services.db.fetchrow(
        f"""
        SELECT count(*) AS n,
               percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY
                   extract(epoch FROM e.at - o.occurred_at)) AS handler,
               max(extract(epoch FROM e.at - o.occurred_at)) AS handler_max,
               percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY
                   extract(epoch FROM o.published_at - o.occurred_at)) AS pickup
        FROM {sub.table} e JOIN core_outbox o ON o.id = e.event_id
        WHERE o.occurred_at >= %s
        """, (since,))
    ms = [round(float(v) * 1000, 2) for v in row["handler"]]
    pickup = [round(float(v) * 1000, 2) for v in row["pickup"]]
    achieved = total / publish_s
    sustained = (achieved >= SUSTAINED_SHARE * rate
                 and behind <= SUSTAINED_LATE_SHARE * transactions)
    return {
        "target_rate": rate, "seconds": seconds, "events_per_publishing_transaction": per_tx,
        "events_published": total,
        "achieved_publish_rate": round(achieved, 1),
        "transactions_late_over_50ms": behind, "transactions": transactions,
        "rate_sustained": sustained, "events_handled": handled,
        "latency_ms": {"p50": ms[0], "p95": ms[1], "p99": ms[2],
                       "max": round(float(row["handler_max"]) * 1000, 2)},
        "relay_pickup_ms": {"p50": pickup[0], "p95": pickup[1], "p99": pickup[2]},
        "events_per_transaction": await batch_sizes(services, sub, since),
        "cpu_share_while_publishing": CpuMeter.shares(cpu0, cpu1),
    }


async def phase_raw_redis(url: str, entries: int, batch: int = 100) -> dict[str, Any]:
    redis = aioredis.from_url(url, decode_responses=True)
    key = f"{PREFIX}raw"
    fields = {"id": str(uuid.uuid4()), "type": "ledger.entry_recorded", "version": "1",
              "publisher": "ledger", "aggregate_id": str(uuid.uuid4()), "sequence": "1",
              "occurred_at": dt.datetime.now(dt.UTC).isoformat(), "correlation_id": "",
              "actor": "", "payload": orjson.dumps({"account_id": str(uuid.uuid4()),
                                                    "amount": 1}).decode()}
    try:
        await redis.delete(key)
        started = time.perf_counter()
        for _ in range(0, entries, batch):
            pipe = redis.pipeline(transaction=False)
            for _ in range(batch):
                pipe.xadd(key, fields)
            await pipe.execute()
        xadd_s = time.perf_counter() - started
        await redis.xgroup_create(key, "g", id="0")
        read = 0
        started = time.perf_counter()
        while True:
            response = await redis.xreadgroup("g", "c", {key: ">"}, count=batch)
            if not response:
                break
            ids = [entry_id for _, items in response for entry_id, _ in items]
            await redis.xack(key, "g", *ids)
            read += len(ids)
        read_s = time.perf_counter() - started
        return {"entries": entries, "batch": batch,
                "xadd_pipelined_per_s": round(entries / xadd_s, 1),
                "xreadgroup_xack_per_s": round(read / read_s, 1)}
    finally:
        await redis.delete(key)
        await redis.aclose()


def start_profiler(worker: subprocess.Popen[bytes], folder: Path, seconds: float
                   ) -> subprocess.Popen[bytes]:
    """py-spy on the worker for ``seconds`` (time-bounded), collapsed stacks to a file."""
    spy = Path(sys.executable).with_name("py-spy")
    proc = subprocess.Popen([str(spy), "record", "--pid", str(worker.pid), "--duration",
                             str(int(seconds)), "--rate", "250", "--nonblocking", "--format",
                             "raw", "--output", str(folder / "worker.folded")],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, preexec_fn=die_with_parent(signal.SIGINT))
    _children.append(proc)
    return proc


async def finish_profiler(proc: subprocess.Popen[bytes], folder: Path, top: int = 25
                          ) -> dict[str, Any]:
    """Self and inclusive sample shares per function from py-spy's collapsed stacks."""
    await asyncio.to_thread(proc.wait, 120)
    folded = folder / "worker.folded"
    self_n: dict[str, int] = {}
    incl_n: dict[str, int] = {}
    total = 0
    for line in folded.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        n = int(count)
        frames = [f.split(" (")[0] + " (" + f.rsplit("/", 1)[-1].split(":")[0]
                  if " (" in f else f for f in stack.split(";")]
        total += n
        self_n[frames[-1]] = self_n.get(frames[-1], 0) + n
        for frame in set(frames):
            incl_n[frame] = incl_n.get(frame, 0) + n
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    shutil.copy(folded, out / "bench_events-worker.folded")

    def share(table: dict[str, int]) -> list[tuple[str, float]]:
        ranked = sorted(table.items(), key=lambda kv: -kv[1])[:top]
        return [(name, round(100 * n / total, 1)) for name, n in ranked]

    return {"samples": total, "self_percent": share(self_n), "inclusive_percent": share(incl_n),
            "folded": str(out / "bench_events-worker.folded")}


def per_tx_settings(args: argparse.Namespace) -> list[int]:
    """The events-per-transaction settings phase (a) and the backlog run: ``--per-tx`` and,
    unless 0 or equal, ``--compare-per-tx``."""
    shapes = [args.per_tx]
    if args.compare_per_tx and args.compare_per_tx != args.per_tx:
        shapes.append(args.compare_per_tx)
    return shapes


async def run(args: argparse.Namespace, pg: EmbeddedPostgres, redis_url: str, folder: Path,
              meter: CpuMeter) -> dict[str, Any]:
    # Ctrl-C / SIGTERM cancel this task: every phase unwinds through its own clean-up.
    task = asyncio.current_task()
    assert task is not None
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, task.cancel)
    sub = SUBSCRIBERS[args.handler]
    pg_url = pg.createdb("bench")
    env = bus_env(pg_url, redis_url, sub)
    config = load_config(environ=env, use_default_path=False)
    config = config.evolve(database={"pool_min": 0, "pool_max": args.publishers + 4})
    plugins = load_plugins(config)
    await migrate.up(pg_url, plugins)
    worker = start_worker(env, folder)
    meter.worker_pid = worker.pid
    results: dict[str, Any] = {"throughput": {}}
    checks: list[dict[str, Any]] = []
    results["checks"] = checks
    async with open_services(config, plugins) as services:
        # Warm up: the worker is up, its groups exist, connections are open.
        await phase_throughput(services, sub, worker, 500, args.per_tx, args.publishers,
                               args.accounts, 60.0, meter)
        checks.append(await verify(services, sub, "warm-up"))
        for per_tx in per_tx_settings(args):
            print(f"(a) throughput: {args.events} events, {per_tx} per transaction, "
                  f"{args.publishers} publishers ...", flush=True)
            results["throughput"][f"per_tx_{per_tx}"] = await phase_throughput(
                services, sub, worker, args.events, per_tx, args.publishers, args.accounts,
                args.limit, meter)
            checks.append(await verify(services, sub, f"(a) per-tx {per_tx}"))
        print(f"(a2) backlog: {args.backlog} events published with the worker stopped, then "
              "drained by a fresh worker ...", flush=True)
        results["backlog"], worker = await phase_backlog(services, sub, worker, env, folder,
                                                         args, meter)
        checks.append(await verify(services, sub, "(a2) backlog"))
        print(f"(b) latency: {args.rate:g} events/s for {args.seconds:g} s ...", flush=True)
        results["latency"] = await phase_latency(services, sub, worker, args.rate,
                                                 args.seconds, args.per_tx, args.accounts,
                                                 meter)
        checks.append(await verify(services, sub, f"(b) {args.rate:g}/s"))
        if args.context_rate:
            print(f"(b') latency: {args.context_rate:g} events/s for {args.seconds:g} s ...",
                  flush=True)
            results["latency_context"] = await phase_latency(
                services, sub, worker, args.context_rate, args.seconds, args.per_tx,
                args.accounts, meter)
            checks.append(await verify(services, sub, f"(b') {args.context_rate:g}/s"))
    print("(c) raw Redis baseline ...", flush=True)
    results["raw_redis"] = await phase_raw_redis(redis_url, args.raw_entries)
    worker.send_signal(signal.SIGTERM)
    results["worker_exit"] = await asyncio.to_thread(worker.wait, 30)
    return results


def _run_loop(coro: Any) -> Any:
    """Like the ``propmubi`` processes: uvloop when installed."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


def _verdict(ok: bool) -> str:
    return "meets" if ok else "BELOW"


def _cpu_row(cpu: dict[str, Any]) -> str:
    return (f"{cpu['publisher']}/{cpu['worker']}/{cpu['postgres']}/{cpu['redis']} "
            f"= {cpu['total']}")


def _sustained(lat: dict[str, Any]) -> str:
    figures = (f"{lat['achieved_publish_rate']:,.0f}/s, "
               f"{lat['transactions_late_over_50ms']:,}/{lat['transactions']:,} late")
    return f"yes: {figures}" if lat["rate_sustained"] else f"NO: {figures}"


def _latency_rows(lat: dict[str, Any], label: str, aim: bool) -> list[tuple[str, ...]]:
    p99 = lat["latency_ms"]["p99"]
    at_aim = aim and lat["target_rate"] == AIM_RATE
    ok = p99 < AIM_P99_MS and lat["rate_sustained"]
    return [
        (f"{label} commit->handler at {lat['target_rate']:,.0f}/s, per-tx "
         f"{lat['events_per_publishing_transaction']}: p50 / p95 (ms)",
         f"{lat['latency_ms']['p50']} / {lat['latency_ms']['p95']}", "", ""),
        (f"    publisher sustained {lat['target_rate']:,.0f}/s? (achieved, tx > 50 ms late)",
         _sustained(lat), "", "" if lat["rate_sustained"] else "NOT SUSTAINED"),
        ("    p99 / max (ms)", f"{p99} / {lat['latency_ms']['max']}",
         f"p99 < {AIM_P99_MS:g}" if at_aim else "", _verdict(ok) if at_aim else ""),
        ("    handled / published", f"{lat['events_handled']}/{lat['events_published']}", "",
         ""),
        ("    relay pickup p50 / p99 (ms)",
         f"{lat['relay_pickup_ms']['p50']} / {lat['relay_pickup_ms']['p99']}", "", ""),
        ("    events per relay / consumer transaction",
         f"{lat['events_per_transaction']['relay']} / "
         f"{lat['events_per_transaction']['consumer']}", "", ""),
        ("    CPU share: publisher/worker/pg/redis/others (cores)",
         "/".join(str(v) for v in lat["cpu_share_while_publishing"].values()), "", ""),
    ]


def _throughput_rows(t: dict[str, Any]) -> list[tuple[str, ...]]:
    e2e = t["end_to_end_events_per_s"] or 0
    return [
        (f"(a) end to end, per-tx {t['events_per_publishing_transaction']} (events/s)",
         f"{e2e:,.0f}", f">= {AIM_EVENTS_PER_S:,}", _verdict(e2e >= AIM_EVENTS_PER_S)),
        ("    publish rate, worker running (events/s)", f"{t['publish_events_per_s']:,.0f}",
         "", ""),
        ("    handler rate, worker (events/s)", f"{t['handler_events_per_s'] or 0:,.0f}", "", ""),
        ("    handled / published, double effects",
         f"{t['events_handled']}/{t['events_published']}, {t['double_effects']}", "", ""),
        ("    CPU ms/event: publisher/worker/pg/redis", _cpu_row(t["cpu_ms_per_event"]), "",
         ""),
        ("    events per relay / consumer transaction",
         f"{t['events_per_transaction']['relay']} / {t['events_per_transaction']['consumer']}",
         "", ""),
        ("    CPU-bound ceiling on all cores (events/s)",
         f"{t['cpu_ms_per_event']['cpu_bound_ceiling_events_per_s'] or 0:,}", "", ""),
        ("    other processes' CPU meanwhile (cores)",
         f"{t['cpu_ms_per_event']['other_processes_cores']}", "", ""),
    ]


def verdicts(report: dict[str, Any]) -> list[str]:
    """One line per aim."""
    shapes = "; ".join(
        f"per-tx {t['events_per_publishing_transaction']}: "
        f"{t['end_to_end_events_per_s'] or 0:,.0f}/s "
        f"{_verdict((t['end_to_end_events_per_s'] or 0) >= AIM_EVENTS_PER_S)}"
        for t in report["throughput"].values())
    lines = [f"aim 1, >= {AIM_EVENTS_PER_S:,} events/s end to end with one worker: {shapes}"]
    lat = report["latency"]
    head = f"aim 2, p99 commit->handler < {AIM_P99_MS:g} ms at {AIM_RATE:,.0f} events/s: "
    p99 = lat["latency_ms"]["p99"]
    if lat["target_rate"] != AIM_RATE:
        lines.append(head + f"not measured (phase (b) ran at {lat['target_rate']:,.0f}/s)")
    elif not lat["rate_sustained"]:
        lines.append(head + f"BELOW: the publisher did not sustain the rate "
                     f"({lat['achieved_publish_rate']:,.0f}/s achieved); p99 {p99} ms at that")
    else:
        lines.append(head + f"{_verdict(p99 < AIM_P99_MS)}: p99 {p99} ms (rate sustained)")
    return lines


def table(report: dict[str, Any]) -> str:
    lat, raw, bl = report["latency"], report["raw_redis"], report["backlog"]
    checks = report["checks"]
    failed = [c for c in checks if not c["ok"]]
    rows = [row for t in report["throughput"].values() for row in _throughput_rows(t)]
    rows += [
        (f"(a2) publisher alone (worker stopped), per-tx {p['per_tx']} (events/s)",
         f"{p['events_per_s']:,.0f}", "", "")
        for p in bl["publisher_alone"].values()
    ]
    rows += [
        ("(a2) backlog drain, one worker alone (events/s)",
         f"{bl['worker_events_per_s'] or 0:,.0f}", "", ""),
        ("    CPU ms/event: worker / postgres / redis",
         f"{bl['cpu_ms_per_event']['worker']} / {bl['cpu_ms_per_event']['postgres']} / "
         f"{bl['cpu_ms_per_event']['redis']}", "", ""),
        ("    worker CPU share while draining (cores)", f"{bl['worker_cpu_share']}", "", ""),
        ("    other processes' CPU meanwhile (cores)",
         f"{bl['cpu_ms_per_event']['other_processes_cores']}", "", ""),
        ("    events per relay / consumer transaction",
         f"{bl['events_per_transaction']['relay']} / "
         f"{bl['events_per_transaction']['consumer']}", "", ""),
        ("    handled / backlog, double effects",
         f"{bl['events_handled']}/{bl['events']}, {bl['double_effects']}", "", ""),
        *_latency_rows(lat, "(b)", aim=True),
        *(_latency_rows(report["latency_context"], "(b')", aim=False)
          if "latency_context" in report else []),
        ("(c) raw XADD pipelined x100 (entries/s)", f"{raw['xadd_pipelined_per_s']:,.0f}", "",
         ""),
        ("    raw XREADGROUP+XACK x100 (entries/s)", f"{raw['xreadgroup_xack_per_s']:,.0f}", "",
         ""),
        (f"exactly one effect per event, after each of {len(checks)} phases",
         (f"FAILED after {', '.join(c['after'] for c in failed)}" if failed else
          f"ok: {checks[-1]['events']:,} events, 0 duplicates, 0 missing"), "",
         "FAILED" if failed else "ok"),
    ]
    width = max(len(r[0]) for r in rows)
    vwidth = max(26, *(len(r[1]) for r in rows))
    lines = [f"{'measure':<{width}}  {'value':>{vwidth}}  {'aim':>12}  result",
             "-" * (width + vwidth + 26)]
    lines += [f"{a:<{width}}  {b:>{vwidth}}  {c:>12}  {d}" for a, b, c, d in rows]
    lines += ["-" * (width + vwidth + 26)] + [f"VERDICT {line}" for line in verdicts(report)]
    return "\n".join(lines)


def _hiredis() -> bool:
    from redis.utils import HIREDIS_AVAILABLE

    return bool(HIREDIS_AVAILABLE)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--handler", choices=sorted(SUBSCRIBERS), default="sink",
                        help="the subscriber: sink (1 statement per event, the default) or "
                        "tally (4 statements per event: the worst case)")
    parser.add_argument("--events", type=int, default=50_000,
                        help="events in phase (a), for each events-per-transaction setting")
    parser.add_argument("--per-tx", type=int, default=1, metavar="N",
                        help="events per publishing transaction in phases (a), (a2), (b)")
    parser.add_argument("--compare-per-tx", type=int, default=10, metavar="M",
                        help="phases (a) and (a2) also run with M events per transaction "
                        "(0 skips)")
    parser.add_argument("--publishers", type=int, default=16,
                        help="concurrent publishing coroutines in phases (a) and (a2)")
    parser.add_argument("--accounts", type=int, default=1000, help="distinct aggregates")
    parser.add_argument("--rate", type=float, default=AIM_RATE, help="events/s in phase (b)")
    parser.add_argument("--context-rate", type=float, default=250.0,
                        help="(b') the same at a lower rate, for context; 0 skips it")
    parser.add_argument("--seconds", type=float, default=15.0, help="duration of phase (b)")
    parser.add_argument("--raw-entries", type=int, default=100_000, help="entries in (c)")
    parser.add_argument("--limit", type=float, default=300.0,
                        help="phase (a) gives up publishing and waiting after this many s")
    parser.add_argument("--fast", action="store_true",
                        help="PostgreSQL with fsync/synchronous_commit off (as in tests)")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: 5,000 events (a, a2), 3 s of (b), 10,000 in (c)")
    parser.add_argument("--profile", type=float, default=0.0, metavar="SECONDS",
                        help="py-spy the worker for this long during phase (a2)")
    parser.add_argument("--backlog", type=int, default=20_000, help="events in phase (a2)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()
    if args.per_tx < 1 or args.compare_per_tx < 0:
        parser.error("--per-tx must be >= 1 and --compare-per-tx >= 0")
    if args.quick:
        args.events, args.backlog, args.seconds, args.raw_entries = 5000, 5000, 3.0, 10_000
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)  # also when started with SIGINT ignored (`cmd &`)
    load_before = round(os.getloadavg()[0], 2)  # other work on the machine skews results
    folder = Path(tempfile.mkdtemp(prefix="propmubi-bench-events-"))
    pg = EmbeddedPostgres(folder / "pg", fast=args.fast)
    redis = EmbeddedRedis(folder / "redis", persistent=False)
    try:
        print(f"starting PostgreSQL ({'fast: fsync off' if args.fast else 'durable'}) and "
              f"Redis in {folder}", flush=True)
        pg.start()
        redis_url = redis.start()
        assert pg.proc is not None and redis.proc is not None
        meter = CpuMeter(pg.proc.pid, redis.proc.pid)
        results = _run_loop(run(args, pg, redis_url, folder, meter))
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("interrupted; cleaning up", file=sys.stderr)
        return 130
    finally:
        for proc in _children:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        redis.stop()
        pg.stop()
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    sub = SUBSCRIBERS[args.handler]
    report = {
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "propmubi": __version__, "python": platform.python_version(),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "postgres": "fast (fsync, synchronous_commit, full_page_writes off)" if args.fast
        else "durable (fsync on, synchronous_commit on)",
        "load_average_1m_before_after": [load_before, round(os.getloadavg()[0], 2)],
        "redis": "no persistence", "worker": "1 process, default [events] settings",
        "subscriber": {"plugin": sub.group, "module": sub.module, "effects": sub.table,
                       "statements_per_event": sub.statements},
        "publishers": f"{args.publishers} coroutines in the benchmark process",
        "per_tx": args.per_tx, "compare_per_tx": args.compare_per_tx,
        "hiredis": _hiredis(),
        "aims": {"end_to_end_events_per_s": AIM_EVENTS_PER_S, "p99_ms_at_1000_per_s":
                 AIM_P99_MS},
        **results,
    }
    print()
    print(f"subscriber {sub.group} ({sub.statements} statement(s) per event); PostgreSQL "
          f"{report['postgres']}; 1 worker; {report['publishers']}; load average before/after "
          f"{report['load_average_1m_before_after']}")
    print(table(report))
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    name = f"bench_events-{sub.group}-{stamp}.json"
    text = json.dumps(report, indent=2, default=str)
    (out / name).write_text(text)
    (out / "bench_events-latest.json").write_text(text)
    if "profile" in report["backlog"]:
        print("\nworker profile while draining the backlog (py-spy, % of samples), "
              "self / inclusive:")
        prof = report["backlog"]["profile"]
        for (a, pa), (b, pb) in zip(prof["self_percent"], prof["inclusive_percent"],
                                    strict=False):
            print(f"  {pa:5.1f}  {a[:60]:<60}  {pb:5.1f}  {b[:60]}")
    print(f"\nJSON: {out / name}")
    if any(not c["ok"] for c in report["checks"]):
        print("CORRECTNESS CHECK FAILED: see 'checks' in the JSON", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
