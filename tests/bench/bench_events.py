"""Event bus benchmark: end-to-end throughput and latency through ONE worker process.

    .venv/bin/python tests/bench/bench_events.py [--events 50000] [--fast] [--quick]

It starts its own embedded PostgreSQL (durable settings by default: fsync and synchronous
commit on; ``--fast`` turns them off like the test suite does) and Redis (no persistence) in a
temporary folder, creates and migrates a database with the ``ledger`` (publisher) and ``tally``
(subscriber) test plugins, starts one ``propmubi worker`` subprocess (relay + the tally consumer
group, default event settings), and measures:

(a) throughput: ``--events`` events published as fast as possible by ``--publishers``
    concurrent coroutines in this process, each event in its own transaction
    (``ledger.record``: INSERT + outbox row + NOTIFY, COMMIT). End to end events/s =
    events handled / (last handler effect - first publish). The publish rate alone and the
    handler rate alone (effects / their own time span) are reported beside it, with the CPU
    each part (publisher, worker, PostgreSQL, Redis) spent per event and the events/s those
    CPU costs allow on this machine's cores at best.
(a2) backlog: the worker is stopped, ``--backlog`` events are published, and a fresh worker
    drains them: the worker's own capacity, with nothing competing for the CPU but
    PostgreSQL. ``--profile SECONDS`` runs py-spy on it meanwhile (bounded in time) and prints
    where its time goes.
(b) latency: a rate-limited publisher at ``--rate`` events/s for ``--seconds`` seconds;
    commit->handler latency per event = ``tally_effects.at`` (``clock_timestamp()`` when the
    handler inserts its row) - ``core_outbox.occurred_at`` (taken by ``publish()`` inside the
    publishing transaction, a round trip or two before its COMMIT), so it slightly
    over-states the true commit->handler time. Also: relay pickup = ``published_at`` (the
    relay transaction's start) - ``occurred_at``. (b') repeats it at ``--context-rate``, a
    rate a small machine sustains, for context.
(c) raw Redis baseline on the same server: redis-py asyncio XADD pipelined by 100, and
    XREADGROUP count=100 + XACK per batch, with entries shaped like the bus's envelopes.

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
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
if str(ROOT) not in sys.path:  # run as a script: make `tests.busplugins` importable
    sys.path.insert(0, str(ROOT))

import orjson  # noqa: E402
import redis.asyncio as aioredis  # noqa: E402

from propmubi import __version__, migrate  # noqa: E402
from propmubi.config import load_config  # noqa: E402
from propmubi.context import Services, open_services  # noqa: E402
from propmubi.embedded import EmbeddedPostgres, EmbeddedRedis, die_with_parent  # noqa: E402
from propmubi.plugins import load_plugins  # noqa: E402
from tests.busplugins.ledger import record  # noqa: E402

MODULES = "tests.busplugins.ledger,tests.busplugins.tally"
PREFIX = "bench:"
AIM_EVENTS_PER_S = 5000
AIM_P99_MS = 50.0
_children: list[subprocess.Popen[bytes]] = []


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def bus_env(pg_url: str, redis_url: str) -> dict[str, str]:
    return {
        "PROPMUBI_DATABASE__URL": pg_url,
        "PROPMUBI_REDIS__URL": redis_url,
        "PROPMUBI_REDIS__KEY_PREFIX": PREFIX,
        "PROPMUBI_PLUGINS__MODULES": MODULES,
        "PROPMUBI_LOGGING__JSON": "false",
        "PROPMUBI_LOGGING__LEVEL": "WARNING",
    }


def start_worker(env: dict[str, str], folder: Path) -> subprocess.Popen[bytes]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("PROPMUBI_")}
    full.update(env, PYTHONPATH=os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p))
    with open(folder / "worker.log", "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "propmubi", "worker"], cwd=folder,
                                env=full, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT,
                                preexec_fn=die_with_parent(signal.SIGKILL))
    _children.append(proc)
    return proc


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
    worker, PostgreSQL (postmaster + live backends + the exited ones it reaped) and Redis."""

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
                "postgres": self._postgres(), "redis": cpu_seconds(self.redis_pid)}

    @staticmethod
    def per_event(before: dict[str, float], after: dict[str, float], events: int
                  ) -> dict[str, float]:
        """Milliseconds of CPU per event by part, their total, and the events/s that total
        allows on this machine's cores if nothing else ran."""
        out = {k: round((after[k] - before[k]) * 1000 / max(1, events), 3) for k in before}
        out["total"] = round(sum(out.values()), 3)
        cores = os.cpu_count() or 1
        out["cpu_bound_ceiling_events_per_s"] = (round(cores * 1000 / out["total"])
                                                 if out["total"] > 0 else None)
        return out


async def effects_mark(services: Services) -> int:
    """The last effect row so far: a phase's effects are the rows after it."""
    return await services.db.fetchval("SELECT coalesce(max(id), 0) FROM tally_effects")


async def wait_handled(services: Services, mark: int, expected: int, limit: float,
                       worker: subprocess.Popen[bytes], interval: float = 0.2) -> int:
    """Poll until ``expected`` effects after ``mark`` exist, or ``limit`` passes (a cheap
    primary-key range count: the poll must not load the database it measures)."""
    deadline = time.monotonic() + limit
    while True:
        done = await services.db.fetchval("SELECT count(*) FROM tally_effects WHERE id > %s",
                                          (mark,))
        if done >= expected or time.monotonic() > deadline:
            return done
        if worker.poll() is not None:
            raise RuntimeError(f"the worker exited with {worker.returncode}")
        await asyncio.sleep(interval)


async def batch_sizes(services: Services, since: dt.datetime) -> dict[str, float]:
    """Average events per relay transaction and per consumer transaction (each stamps its
    rows with its own ``now()``: the transaction's start)."""
    row = await services.db.fetchrow(
        "SELECT count(*) AS n, count(DISTINCT o.published_at) AS relay, "
        "count(DISTINCT p.processed_at) AS consumer FROM core_outbox o "
        "JOIN core_processed_events p ON p.event_id = o.id AND p.consumer = 'tally' "
        "WHERE o.occurred_at >= %s", (since,))
    return {"relay": round(row["n"] / max(1, row["relay"]), 1),
            "consumer": round(row["n"] / max(1, row["consumer"]), 1)}


async def phase_throughput(services: Services, worker: subprocess.Popen[bytes], events: int,
                           publishers: int, accounts: int, limit: float, meter: CpuMeter
                           ) -> dict[str, Any]:
    owners = [uuid.uuid4() for _ in range(accounts)]
    numbers = iter(range(events))
    since = dt.datetime.now(dt.UTC)
    mark = await effects_mark(services)
    cpu0 = meter.snapshot()
    deadline = time.monotonic() + limit

    async def publisher() -> int:
        sent = 0
        for n in numbers:  # shared: each number is taken by exactly one coroutine
            if time.monotonic() > deadline:
                break
            await record(services.db, owners[n % accounts], n + 1)
            sent += 1
        return sent

    started = time.perf_counter()
    sent = sum(await asyncio.gather(*[publisher() for _ in range(publishers)]))
    publish_s = time.perf_counter() - started
    handled = await wait_handled(services, mark, sent, max(5.0, deadline - time.monotonic()),
                                 worker)
    cpu = meter.per_event(cpu0, meter.snapshot(), handled)
    row = await services.db.fetchrow(
        "SELECT min(o.occurred_at) AS first_publish, max(e.at) AS last_effect, "
        "min(e.at) AS first_effect, count(*) AS n, count(DISTINCT e.event_id) AS distinct_n "
        "FROM tally_effects e JOIN core_outbox o ON o.id = e.event_id "
        "WHERE o.occurred_at >= %s", (since,))
    span = (row["last_effect"] - row["first_publish"]).total_seconds()
    handler_span = (row["last_effect"] - row["first_effect"]).total_seconds()
    return {
        "events_published": sent, "events_handled": handled,
        "double_effects": row["n"] - row["distinct_n"],
        "publish_seconds": round(publish_s, 3),
        "publish_events_per_s": round(sent / publish_s, 1),
        "end_to_end_seconds": round(span, 3),
        "end_to_end_events_per_s": round(handled / span, 1) if span > 0 else None,
        "handler_events_per_s": round(handled / handler_span, 1) if handler_span > 0 else None,
        "cpu_ms_per_event": cpu,
        "events_per_transaction": await batch_sizes(services, since),
        "publishers": publishers, "accounts": accounts,
    }


async def phase_backlog(services: Services, worker: subprocess.Popen[bytes],
                        env: dict[str, str], folder: Path, args: argparse.Namespace,
                        meter: CpuMeter) -> tuple[dict[str, Any], subprocess.Popen[bytes]]:
    """The worker's own capacity: stop it, publish a backlog, start a fresh worker and time
    how fast it relays and handles the backlog (the publisher no longer competes for CPU)."""
    worker.send_signal(signal.SIGTERM)
    await asyncio.to_thread(worker.wait, 60)
    owners = [uuid.uuid4() for _ in range(args.accounts)]
    numbers = iter(range(args.backlog))

    async def publisher() -> None:
        for n in numbers:
            await record(services.db, owners[n % args.accounts], n + 1)

    since = dt.datetime.now(dt.UTC)
    mark = await effects_mark(services)
    await asyncio.gather(*[publisher() for _ in range(args.publishers)])
    worker = start_worker(env, folder)
    meter.worker_pid = worker.pid
    # CPU (and the profile) from the first effect on: the interpreter's start-up is not the
    # bus's cost.
    await wait_handled(services, mark, 1, args.limit, worker, interval=0.01)
    cpu0 = meter.snapshot()
    profiler = start_profiler(worker, folder, args.profile) if args.profile else None
    handled = await wait_handled(services, mark, args.backlog, args.limit, worker)
    cpu1 = meter.snapshot()
    cpu = cpu1["worker"] - cpu0["worker"]
    row = await services.db.fetchrow(
        "SELECT min(e.at) AS first_effect, max(e.at) AS last_effect, "
        "count(*) - count(DISTINCT e.event_id) AS doubled "
        "FROM tally_effects e JOIN core_outbox o ON o.id = e.event_id "
        "WHERE o.occurred_at >= %s", (since,))
    span = (row["last_effect"] - row["first_effect"]).total_seconds()
    result = {
        "events": args.backlog, "events_handled": handled, "double_effects": row["doubled"],
        "drain_seconds": round(span, 3),
        "worker_events_per_s": round(handled / span, 1) if span > 0 else None,
        "cpu_ms_per_event": meter.per_event(cpu0, cpu1, handled),
        "events_per_transaction": await batch_sizes(services, since),
        "worker_cpu_share": round(cpu / span, 3) if span > 0 else None,
    }
    if profiler is not None:
        result["profile"] = await finish_profiler(profiler, folder)
    return result, worker


async def phase_latency(services: Services, worker: subprocess.Popen[bytes], rate: float,
                        seconds: float, accounts: int, meter: CpuMeter) -> dict[str, Any]:
    owners = [uuid.uuid4() for _ in range(accounts)]
    total = int(rate * seconds)
    since = dt.datetime.now(dt.UTC)
    mark = await effects_mark(services)
    gate = asyncio.Semaphore(64)  # publishes in flight; more means we are not keeping up
    tasks: set[asyncio.Task[Any]] = set()
    behind = 0
    cpu0 = meter.snapshot()

    async def one(n: int) -> None:
        try:
            await record(services.db, owners[n % accounts], n + 1)
        finally:
            gate.release()

    start = time.monotonic() + 0.05
    for n in range(total):
        delay = start + n / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        elif delay < -0.05:
            behind += 1
        await gate.acquire()
        task = asyncio.create_task(one(n))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    await asyncio.gather(*tasks)
    publish_s = time.monotonic() - start
    cpu1 = meter.snapshot()
    handled = await wait_handled(services, mark, total, 60.0, worker)
    row = await services.db.fetchrow(
        """
        SELECT count(*) AS n,
               percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY
                   extract(epoch FROM e.at - o.occurred_at)) AS handler,
               max(extract(epoch FROM e.at - o.occurred_at)) AS handler_max,
               percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY
                   extract(epoch FROM o.published_at - o.occurred_at)) AS pickup
        FROM tally_effects e JOIN core_outbox o ON o.id = e.event_id
        WHERE o.occurred_at >= %s
        """, (since,))
    ms = [round(float(v) * 1000, 2) for v in row["handler"]]
    pickup = [round(float(v) * 1000, 2) for v in row["pickup"]]
    return {
        "target_rate": rate, "seconds": seconds, "events_published": total,
        "achieved_publish_rate": round(total / publish_s, 1),
        "publishes_late_over_50ms": behind, "events_handled": handled,
        "latency_ms": {"p50": ms[0], "p95": ms[1], "p99": ms[2],
                       "max": round(float(row["handler_max"]) * 1000, 2)},
        "relay_pickup_ms": {"p50": pickup[0], "p95": pickup[1], "p99": pickup[2]},
        "events_per_transaction": await batch_sizes(services, since),
        "cpu_share_while_publishing": {k: round((cpu1[k] - cpu0[k]) / publish_s, 3)
                                       for k in cpu0},
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


async def run(args: argparse.Namespace, pg: EmbeddedPostgres, redis_url: str, folder: Path,
              meter: CpuMeter) -> dict[str, Any]:
    # Ctrl-C / SIGTERM cancel this task: every phase unwinds through its own clean-up.
    task = asyncio.current_task()
    assert task is not None
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, task.cancel)
    pg_url = pg.createdb("bench")
    env = bus_env(pg_url, redis_url)
    config = load_config(environ=env, use_default_path=False)
    config = config.evolve(database={"pool_min": 0, "pool_max": args.publishers + 4})
    plugins = load_plugins(config)
    await migrate.up(pg_url, plugins)
    worker = start_worker(env, folder)
    meter.worker_pid = worker.pid
    results: dict[str, Any] = {}
    async with open_services(config, plugins) as services:
        # Warm up: the worker is up, its groups exist, connections are open.
        await phase_throughput(services, worker, 500, args.publishers, args.accounts, 60.0,
                               meter)
        print(f"warm-up done; (a) throughput: {args.events} events, {args.publishers} "
              "publishers ...", flush=True)
        results["throughput"] = await phase_throughput(
            services, worker, args.events, args.publishers, args.accounts, args.limit, meter)
        print(f"(a2) backlog: {args.backlog} events published with the worker stopped, then "
              "drained by a fresh worker ...", flush=True)
        results["backlog"], worker = await phase_backlog(services, worker, env, folder, args,
                                                         meter)
        print(f"(b) latency: {args.rate:g} events/s for {args.seconds:g} s ...", flush=True)
        results["latency"] = await phase_latency(services, worker, args.rate, args.seconds,
                                                 args.accounts, meter)
        if args.context_rate:
            print(f"(b') latency: {args.context_rate:g} events/s for {args.seconds:g} s ...",
                  flush=True)
            results["latency_context"] = await phase_latency(
                services, worker, args.context_rate, args.seconds, args.accounts, meter)
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


def _cpu_row(cpu: dict[str, Any]) -> str:
    return (f"{cpu['publisher']}/{cpu['worker']}/{cpu['postgres']}/{cpu['redis']} "
            f"= {cpu['total']}")


def _latency_rows(lat: dict[str, Any], label: str, aim: bool) -> list[tuple[str, ...]]:
    p99 = lat["latency_ms"]["p99"]
    return [
        (f"{label} latency at {lat['target_rate']:g}/s: p50 / p95 (ms)",
         f"{lat['latency_ms']['p50']} / {lat['latency_ms']['p95']}", "", ""),
        ("    handled / published", f"{lat['events_handled']}/{lat['events_published']}", "",
         ""),
        ("    p99 / max (ms)", f"{p99} / {lat['latency_ms']['max']}",
         f"p99 < {AIM_P99_MS:g}" if aim else "",
         ("met" if p99 < AIM_P99_MS else "MISSED") if aim else ""),
        ("    relay pickup p50 / p99 (ms)",
         f"{lat['relay_pickup_ms']['p50']} / {lat['relay_pickup_ms']['p99']}", "", ""),
        ("    events per relay / consumer transaction",
         f"{lat['events_per_transaction']['relay']} / "
         f"{lat['events_per_transaction']['consumer']}", "", ""),
        ("    achieved publish rate (events/s)", f"{lat['achieved_publish_rate']:,.0f}", "", ""),
        ("    CPU share: publisher/worker/pg/redis",
         "/".join(str(v) for v in lat["cpu_share_while_publishing"].values()), "", ""),
    ]


def table(report: dict[str, Any]) -> str:
    t, lat, raw = report["throughput"], report["latency"], report["raw_redis"]
    bl = report["backlog"]
    aim_t = t["end_to_end_events_per_s"] or 0
    rows = [
        ("(a) end-to-end throughput (events/s)", f"{aim_t:,.0f}",
         f">= {AIM_EVENTS_PER_S:,}", "met" if aim_t >= AIM_EVENTS_PER_S else "MISSED"),
        ("    publish rate, this process (events/s)", f"{t['publish_events_per_s']:,.0f}", "",
         ""),
        ("    handler rate, worker (events/s)", f"{t['handler_events_per_s'] or 0:,.0f}", "", ""),
        ("    handled / published, double effects",
         f"{t['events_handled']}/{t['events_published']}, {t['double_effects']}", "", ""),
        ("    CPU ms/event: publisher/worker/pg/redis", _cpu_row(t["cpu_ms_per_event"]), "",
         ""),
        ("    events per relay / consumer transaction",
         f"{t['events_per_transaction']['relay']} / {t['events_per_transaction']['consumer']}",
         "", ""),
        ("    CPU-bound ceiling on all cores (events/s)",
         f"{t['cpu_ms_per_event']['cpu_bound_ceiling_events_per_s']:,}", "", ""),
        ("(a2) backlog drain, one worker (events/s)", f"{bl['worker_events_per_s'] or 0:,.0f}",
         "", ""),
        ("    CPU ms/event: worker / postgres / redis",
         f"{bl['cpu_ms_per_event']['worker']} / {bl['cpu_ms_per_event']['postgres']} / "
         f"{bl['cpu_ms_per_event']['redis']}", "", ""),
        ("    worker CPU share while draining (cores)", f"{bl['worker_cpu_share']}", "", ""),
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
    ]
    width = max(len(r[0]) for r in rows)
    lines = [f"{'measure':<{width}}  {'value':>26}  {'aim':>12}  result", "-" * (width + 52)]
    lines += [f"{a:<{width}}  {b:>26}  {c:>12}  {d}" for a, b, c, d in rows]
    return "\n".join(lines)


def _hiredis() -> bool:
    from redis.utils import HIREDIS_AVAILABLE

    return bool(HIREDIS_AVAILABLE)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=50_000, help="events in phase (a)")
    parser.add_argument("--publishers", type=int, default=16,
                        help="concurrent publishing coroutines in phase (a)")
    parser.add_argument("--accounts", type=int, default=1000, help="distinct aggregates")
    parser.add_argument("--rate", type=float, default=1000.0, help="events/s in phase (b)")
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
    report = {
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "propmubi": __version__, "python": platform.python_version(),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "postgres": "fast (fsync, synchronous_commit, full_page_writes off)" if args.fast
        else "durable (fsync on, synchronous_commit on)",
        "load_average_1m_before_after": [load_before, round(os.getloadavg()[0], 2)],
        "redis": "no persistence", "worker": "1 process, default [events] settings",
        "hiredis": _hiredis(),
        "aims": {"end_to_end_events_per_s": AIM_EVENTS_PER_S, "p99_ms_at_1000_per_s":
                 AIM_P99_MS},
        **results,
    }
    print()
    print(table(report))
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    text = json.dumps(report, indent=2, default=str)
    (out / f"bench_events-{stamp}.json").write_text(text)
    (out / "bench_events-latest.json").write_text(text)
    if "profile" in report["backlog"]:
        print("\nworker profile while draining the backlog (py-spy, % of samples), "
              "self / inclusive:")
        prof = report["backlog"]["profile"]
        for (a, pa), (b, pb) in zip(prof["self_percent"], prof["inclusive_percent"],
                                    strict=False):
            print(f"  {pa:5.1f}  {a[:60]:<60}  {pb:5.1f}  {b[:60]}")
    print(f"\nJSON: {out / f'bench_events-{stamp}.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
