"""Flash-sale benchmark: 1,000 buyers race for the 100 units of one project, then pay.

    .venv/bin/python tests/bench/bench_bookings.py [--buyers 1000] [--units 100]
        [--connections 100] [--redeliveries 3] [--durable] [--rate-limit off]
    (or: make bench-bookings)

It starts its own embedded PostgreSQL (``fsync`` off like the other benchmarks; ``--durable``
turns it back on; ``pg_stat_statements`` preloaded) and Redis in a temporary folder, migrates a
database with the ``auth``, ``catalog``, ``bookings`` and ``payments`` plugins, and seeds,
through the catalogue's own service functions: one builder, one published project, one tower
and exactly ``--units`` available units; and ``--buyers`` buyers (rows in ``auth_users`` with
the ``buyer`` role, as the auth plugin's tests make them). Each buyer's access token is minted
in this process with the auth plugin's key ring, built from the same signing key the servers are
given (``PROPMUBI_PLUGINS__AUTH__SIGNING_KEY``). The sandbox payment provider's webhook secret is
set (in a configuration file named by ``PROPMUBI_CONFIG``: no environment variable reaches a
nested table's key) so that this script can sign the webhooks the sandbox "bank" would send.

Then it starts one ``propmubi worker`` (outbox relay and every consumer) and two ``propmubi serve
--reuse-port`` web processes on one loopback port. Rate limiting stays ON (every request pays
for its Redis check, as in production) with limits no request reaches: all the load comes from
one address, where real buyers come from a thousand (``--rate-limit off`` removes the check).
Phases, each at ``--connections`` concurrent connections:

1. warm-up (not measured): ``GET /health`` and ``GET /api/v1/projects/{id}``, so both web
   processes have opened their database pools;
2. flash sale: each buyer ``POST /api/v1/holds {"unit_id"}`` on a unit chosen at random among
   the project's units; on a 409 it tries up to two other units chosen at random (never one it
   tried), and gives up after the third refusal or on any other answer. Each of the
   ``--connections`` client coroutines takes the next buyer from a queue and plays that buyer's
   attempts one after the other on its own keep-alive connection;
3. payment intents: each buyer who got a 201 ``POST /api/v1/bookings/{id}/payment-intents``
   (provider ``sandbox``: it makes no network call); timed, reported for context;
4. webhooks: for each intent, a ``payment.captured`` webhook signed with
   ``propmubi_plugins.payments.providers.sandbox.sandbox_webhook`` (bodies and signatures are
   made before the clock starts) is POSTed to ``/api/v1/payments/webhooks/sandbox``: the first
   deliveries are the measured figure; then ``--redeliveries`` copies of each (the same event
   id, as a provider retrying after a timeout sends them), shuffled, reported separately (the
   duplicate path: stored once, answered ``duplicate: true``);
5. confirmation: at most ``--confirm-timeout`` seconds (60) for the worker to confirm every
   paid booking (polling the database); the webhook-to-applied lag comes from
   ``payments_events`` (``processed_at - received_at``, both PostgreSQL's clock);
6. baseline: ``GET /health`` on the same two processes at the same concurrency, as many requests
   as the flash sale made, so that the ratios mean something on a noisy machine.

Then it checks the database: exactly ``--units`` units of the project held or booked in
``catalog_units``; exactly ``--units`` live bookings (held, payment_pending, paid or confirmed);
no unit with two live bookings; every captured intent's booking confirmed (and its unit booked);
one stored provider event per first delivery, all applied, no refund; and the API's answers
(``--units`` 201s whose booking ids are the live bookings, only 201/409 to holds, every intent
201, every webhook 200). Any failed check makes the exit status 1.

How latency is measured. The load generator is a separate Python process (asyncio + aiohttp; a
Python client is fine here: the whole run is a burst of a few thousand requests, and every
request's own answer matters, which wrk's global histogram cannot give per outcome). A
request's latency is ``time.perf_counter()`` from just before the client sends it to when its
whole body has been read: it includes the client's own event loop delays, and the client shares
the machine's cores with the servers, the worker, PostgreSQL and Redis (its CPU time is
reported). With 100 connections, latency is mostly queueing (Little's law: p50 is about
connections / req/s); the baseline's figures show how much of it the machine itself adds. Hold
latency is given for 201s, 409s and both together. req/s = requests / the phase's wall time.

It prints the figures, the CPU each phase cost per request (web processes, worker,
PostgreSQL + Redis, the load generator), the aims (hold p95 < 50 ms, webhook p99 < 100 ms at
this load) and whether they were met, the load average before and after, the statements that
took the most time in PostgreSQL during each phase (``pg_stat_statements``, reset before each
one; lock waits count in a statement's time), the worker's consumer figures (handler batch
times, deliveries retried and skipped as duplicates: its ``/metrics``), warnings and errors in
the web processes' and worker's logs, and writes JSON to
``tests/bench/results/bench_bookings-<UTC timestamp>.json`` (and ``bench_bookings-latest.json``;
the folder is git-ignored). Process handling is bench_http.py's (imported): every child (web
processes, worker, load generator, PostgreSQL, Redis) is stopped at the end, also on Ctrl-C or
SIGTERM, and dies with this process; everything listens on 127.0.0.1 or unix sockets only.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import datetime as dt
import json
import math
import os
import platform
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
for folder in (ROOT, HERE):  # run as a script: make `tests` and bench_http importable
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

import bench_http as bh  # noqa: E402

from propmubi import __version__, migrate  # noqa: E402
from propmubi.actors import Actor  # noqa: E402
from propmubi.config import load_config  # noqa: E402
from propmubi.embedded import PG_PORT, EmbeddedPostgres, EmbeddedRedis  # noqa: E402
from propmubi.ids import uuid7  # noqa: E402
from propmubi.lifecycle import open_services  # noqa: E402
from propmubi.plugins import load_plugins  # noqa: E402
from propmubi_plugins.auth.settings import generate_signing_key  # noqa: E402

say = bh.say
HOST = bh.HOST
API = "/api/v1"
HOLDS = f"{API}/holds"
WEBHOOK = f"{API}/payments/webhooks/sandbox"
KEY_PREFIX = "bench-bookings:"
PLUGINS = ("auth", "catalog", "bookings", "payments")
LIVE = ("held", "payment_pending", "paid", "confirmed")
HOLD_ATTEMPTS = 3  # the first choice and, after a 409, two other units
HOLD_P95_MS, WEBHOOK_P99_MS = 50.0, 100.0
UNIT_PRICE_MINOR = 85_00_000_00  # 85 lakh rupees, in paise
BUYER_PHONES = "+9171"  # the seeded buyers' numbers start so
BATCH = 5000
BENCH_SQL = "/* bench */ "  # marks this script's own queries (left out of the statement stats)


# -------------------------------------------------------------------------------------------------
# Database: pg_stat_statements, schema and seed
# -------------------------------------------------------------------------------------------------


def bookings_environ(db_url: str, redis_url: str, signing_key: str, otp_secret: str,
                     webhook_secret: str, workdir: Path) -> dict[str, str]:
    """The configuration shared by this script, the web processes and the worker.

    The sandbox's webhook secret is a key of a nested table (``[plugins.payments.sandbox]``),
    which no ``PROPMUBI_*`` variable can reach (``PROPMUBI_PLUGINS__PAYMENTS__SANDBOX__
    WEBHOOK_SECRET`` is refused: the configuration takes ``PROPMUBI_PLUGINS__<NAME>__<KEY>``
    only), so it goes in a small configuration file named by ``PROPMUBI_CONFIG``.
    """
    config_file = workdir / "propmubi-bench.toml"
    config_file.write_text("[plugins.payments.sandbox]\n"
                           f"webhook_secret = {json.dumps(webhook_secret)}\n")
    config_file.chmod(0o600)
    return {
        "PROPMUBI_CONFIG": str(config_file),
        "PROPMUBI_DATABASE__URL": db_url,
        "PROPMUBI_REDIS__URL": redis_url,
        "PROPMUBI_REDIS__KEY_PREFIX": KEY_PREFIX,
        "PROPMUBI_APP__VAR_DIR": str(workdir / "var"),  # media and such: not the repository's
        "PROPMUBI_PLUGINS__ENABLED": json.dumps(list(PLUGINS)),
        "PROPMUBI_PLUGINS__AUTH__SIGNING_KEY": signing_key,
        "PROPMUBI_PLUGINS__AUTH__OTP_SECRET": otp_secret,
        "PROPMUBI_PLUGINS__AUTH__ACCESS_TTL": "3600",  # tokens outlive the run
        "PROPMUBI_PLUGINS__PAYMENTS__PROVIDER": "sandbox",
    }


def preload_pg_stat_statements(pg: EmbeddedPostgres) -> None:
    """``shared_preload_libraries = 'pg_stat_statements'`` (ALTER SYSTEM), then a restart:
    :class:`EmbeddedPostgres` takes no extra settings, and this folder is thrown away."""
    result = subprocess.run(
        [str(pg.bin_dir / "psql"), "-h", str(pg.socket_dir), "-p", str(PG_PORT), "-U",
         "postgres", "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-qc",
         "ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'"],
        capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"ALTER SYSTEM failed: {result.stderr.strip()}")
    pg.stop()
    pg.start()


async def _seed(config: Any, units: int, buyers: int) -> dict[str, Any]:
    """The project (through the catalogue's service, as a staff member would publish it), its
    units, the buyers (auth rows, as bench_auth.py makes them) and their access tokens."""
    from propmubi_plugins.catalog import models as catalog_models
    from propmubi_plugins.catalog import service as catalog
    from propmubi_plugins.catalog.units import models as units_models
    from propmubi_plugins.catalog.units import service as units_service

    plugins = load_plugins(config)
    await migrate.up(config.database.url, plugins)
    staff = Actor.system("bench-seed")
    per_floor = 4
    async with open_services(config, plugins) as services:  # with the plugins' state
        db = services.db
        await db.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        ctx = services.context("catalog")
        builder = await catalog.create_builder(
            ctx, staff, catalog_models.BuilderIn(name="Flash Sale Developers"))
        project = await catalog.create_project(ctx, staff, catalog_models.ProjectIn(
            name="Flash Heights", city="Pune", locality="Baner",
            address="Survey 12, Baner Road", lat=18.559, lng=73.786,
            rera_number="P52100099999", status="under_construction",
            amenities=["gym"], description="The flash sale of the bookings benchmark.",
            builder_id=builder["id"]))
        floors = max(1, math.ceil(units / per_floor))
        tower = await units_service.create_tower(
            ctx, staff, project["id"], units_models.TowerIn(name="A", floors=floors))
        for n in range(units):
            floor, number = n // per_floor + 1, n % per_floor + 1
            await units_service.create_unit(ctx, staff, tower["id"], units_models.UnitIn(
                code=f"A-{floor}{number:02d}", unit_type="2BHK", bedrooms=2,
                carpet_area_sqft=720.5, super_area_sqft=1010, floor=floor, facing="E",
                price_minor=UNIT_PRICE_MINOR + n * 10_000_00, currency="INR",
                status="available"))
        # Staff may send a project to review without a photo; then publish it.
        await catalog.submit_project(ctx, staff, project["id"])
        await catalog.publish_project(ctx, staff, project["id"])

        user_ids = [uuid7() for _ in range(buyers)]
        for start in range(0, buyers, BATCH):
            ids = user_ids[start:start + BATCH]
            phones = [f"{BUYER_PHONES}{start + n:08d}" for n in range(len(ids))]
            await db.execute("INSERT INTO auth_users (id, phone) "
                             "SELECT * FROM unnest(%s::uuid[], %s::text[])", (ids, phones))
            await db.execute("INSERT INTO auth_user_roles (user_id, role) "
                             "SELECT unnest(%s::uuid[]), 'buyer'", (ids,))
        # The servers' key ring has the same signing key: the servers accept these tokens.
        keyring = services.context("auth").state.keyring
        tokens = [keyring.issue(str(uid), ("buyer",), None)[0] for uid in user_ids]
        await db.execute("ANALYZE")
        unit_rows = await db.fetch(
            "SELECT id::text AS id, status FROM catalog_units WHERE project_id = %s ORDER BY code",
            (project["id"],))
        published = await db.fetchval(
            "SELECT moderation FROM catalog_projects WHERE id = %s", (project["id"],))
    if len(unit_rows) != units or any(r["status"] != "available" for r in unit_rows):
        raise RuntimeError(f"seed: expected {units} available units, got "
                           f"{collections.Counter(r['status'] for r in unit_rows)}")
    if published != "published":
        raise RuntimeError(f"seed: the project is {published}, not published")
    return {"project_id": str(project["id"]), "unit_ids": [r["id"] for r in unit_rows],
            "buyer_ids": [str(u) for u in user_ids], "tokens": tokens}


# -------------------------------------------------------------------------------------------------
# The load generator (its own process: ``bench_bookings.py --_load SPEC OUT``)
# -------------------------------------------------------------------------------------------------


async def _drive(connections: int, jobs: Sequence[Any],
                 play: Callable[[Any, Any, float], Awaitable[None]]) -> dict[str, Any]:
    """Run ``play(session, job, started)`` for every job, ``connections`` at a time (one
    keep-alive connection per client coroutine); the phase's wall time and client CPU."""
    import aiohttp

    queue = collections.deque(jobs)
    connector = aiohttp.TCPConnector(limit=connections, force_close=False)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        async def client() -> None:
            while queue:
                await play(session, queue.popleft(), started)

        cpu = time.process_time()
        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(connections)))
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu
    return {"seconds": elapsed, "client_cpu_seconds": cpu}


async def _request(session: Any, method: str, url: str, started: float, *,
                   data: bytes | None = None, headers: dict[str, str] | None = None
                   ) -> dict[str, Any]:
    """One timed request: status, ms (send to whole body read), at_ms (its end, from the
    phase's start) and the body (bytes; status 0 and ``error`` when the request failed)."""
    import aiohttp

    began = time.perf_counter()
    try:
        async with session.request(method, url, data=data, headers=headers) as resp:
            body = await resp.read()
            status = resp.status
        error = None
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        body, status, error = b"", 0, f"{type(exc).__name__}: {exc}"
    ended = time.perf_counter()
    return {"status": status, "ms": (ended - began) * 1000, "at_ms": (ended - started) * 1000,
            "body": body, "error": error}


def _problem_type(body: bytes) -> str | None:
    with contextlib.suppress(ValueError, AttributeError):
        kind = json.loads(body).get("type")
        return str(kind).rsplit("/", 1)[-1] if kind else None
    return None


async def _phase_gets(spec: dict[str, Any]) -> dict[str, Any]:
    """``spec["count"]`` GETs of ``spec["paths"]`` (round robin)."""
    base, paths, records = spec["base"], spec["paths"], []

    async def play(session: Any, n: int, started: float) -> None:
        r = await _request(session, "GET", base + paths[n % len(paths)], started)
        records.append({"status": r["status"], "ms": r["ms"], "error": r["error"]})

    return await _drive(spec["connections"], range(spec["count"]), play) | {"records": records}


async def _phase_holds(spec: dict[str, Any]) -> dict[str, Any]:
    """The flash sale: each buyer tries up to HOLD_ATTEMPTS distinct random units."""
    base, units, tokens = spec["base"], spec["unit_ids"], spec["tokens"]
    rng = random.Random(spec["seed"])
    # Each buyer's choices, decided before the clock starts (the same for a given seed).
    choices = [rng.sample(units, min(HOLD_ATTEMPTS, len(units))) for _ in tokens]
    records: list[dict[str, Any]] = []

    async def play(session: Any, buyer: int, started: float) -> None:
        headers = {"Authorization": f"Bearer {tokens[buyer]}",
                   "Content-Type": "application/json"}
        for attempt, unit in enumerate(choices[buyer], 1):
            r = await _request(session, "POST", base + HOLDS, started, headers=headers,
                               data=json.dumps({"unit_id": unit}).encode())
            record = {"buyer": buyer, "attempt": attempt, "unit_id": unit,
                      "status": r["status"], "ms": r["ms"], "at_ms": r["at_ms"],
                      "error": r["error"]}
            records.append(record)
            if r["status"] == 201:
                record["booking_id"] = json.loads(r["body"])["id"]
                return
            record["problem"] = _problem_type(r["body"])
            if r["status"] != 409:
                record["body"] = r["body"][:300].decode(errors="replace")
                return

    return await _drive(spec["connections"], range(len(tokens)), play) | {"records": records}


async def _phase_intents(spec: dict[str, Any]) -> dict[str, Any]:
    """A payment intent for each held booking, by its buyer."""
    base, tokens, records = spec["base"], spec["tokens"], []

    async def play(session: Any, job: tuple[int, str], started: float) -> None:
        buyer, booking_id = job
        r = await _request(session, "POST", f"{base}{API}/bookings/{booking_id}/payment-intents",
                           started, headers={"Authorization": f"Bearer {tokens[buyer]}"})
        record = {"buyer": buyer, "booking_id": booking_id, "status": r["status"],
                  "ms": r["ms"], "error": r["error"]}
        if r["status"] == 201:
            intent = json.loads(r["body"])
            record.update({k: intent[k] for k in ("id", "provider", "provider_order_id",
                                                  "amount_minor", "currency")})
        else:
            record["body"] = r["body"][:300].decode(errors="replace")
        records.append(record)

    jobs = [tuple(j) for j in spec["holds"]]
    return await _drive(spec["connections"], jobs, play) | {"records": records}


def signed_webhooks(secret: str, intents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A signed ``payment.captured`` webhook for each intent, as the sandbox "bank" sends it:
    the booking it pays for, the raw body (text) and the headers."""
    from propmubi_plugins.payments.providers.sandbox import sandbox_payment_id, sandbox_webhook

    out = []
    for intent in intents:
        order = intent["provider_order_id"]
        body, headers = sandbox_webhook(
            secret, kind="payment.captured", order_id=order,
            payment_id=sandbox_payment_id(order), amount_minor=intent["amount_minor"],
            currency=intent["currency"])
        out.append({"booking_id": intent["booking_id"], "body": body.decode(),
                    "headers": headers})
    return out


async def _phase_webhooks(spec: dict[str, Any]) -> dict[str, Any]:
    """POST each of ``spec["webhooks"]`` (signed beforehand) once, in the given order."""
    base, records = spec["base"], []

    async def play(session: Any, hook: dict[str, Any], started: float) -> None:
        r = await _request(session, "POST", base + WEBHOOK, started,
                           data=hook["body"].encode(), headers=hook["headers"])
        record = {"booking_id": hook["booking_id"], "status": r["status"], "ms": r["ms"],
                  "error": r["error"]}
        if r["status"] == 200:
            record["duplicate"] = json.loads(r["body"]).get("duplicate")
        else:
            record["body"] = r["body"][:300].decode(errors="replace")
        records.append(record)

    return await _drive(spec["connections"], spec["webhooks"], play) | {"records": records}


PHASES = {"gets": _phase_gets, "holds": _phase_holds, "intents": _phase_intents,
          "webhooks": _phase_webhooks}


def _load_main(spec_path: str, out_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text())
    result = asyncio.run(PHASES[spec["phase"]](spec))
    Path(out_path).write_text(json.dumps(result))


def run_load(phase: str, spec: dict[str, Any], workdir: Path, label: str | None = None,
             timeout: float = 600) -> dict[str, Any]:
    """Run one phase in a load generator process (bounded in time); its records."""
    name = (label or phase).replace(" ", "-")
    spec_path, out_path = workdir / f"load-{name}.json", workdir / f"load-{name}-out.json"
    spec_path.write_text(json.dumps(spec | {"phase": phase}))
    out_path.unlink(missing_ok=True)
    log = workdir / f"load-{name}.log"
    with open(log, "wb") as out:
        proc = bh.spawn([sys.executable, str(Path(__file__).resolve()), "--_load",
                         str(spec_path), str(out_path)], env=bh.base_env(), stdout=out)
        try:
            code = proc.wait(timeout=timeout)
        finally:
            bh.stop([proc])
    if code != 0 or not out_path.exists():
        raise RuntimeError(f"load generator ({phase}) failed ({code}):\n"
                           f"{log.read_text(errors='replace')[-3000:]}")
    return json.loads(out_path.read_text())


# -------------------------------------------------------------------------------------------------
# Measures: latency summaries, CPU, statement statistics, logs
# -------------------------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100) of ``values``; nan when there are none."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))]


def summary(records: Sequence[dict[str, Any]], seconds: float | None = None) -> dict[str, Any]:
    ms = [r["ms"] for r in records]
    out = {"requests": len(ms), "p50_ms": percentile(ms, 50), "p95_ms": percentile(ms, 95),
           "p99_ms": percentile(ms, 99), "max_ms": max(ms) if ms else math.nan}
    if seconds is not None:
        out["seconds"] = seconds
        out["rps"] = len(ms) / seconds if seconds else math.nan
    return out


class CpuMeter:
    """CPU seconds spent by the web processes, the worker and PostgreSQL + Redis between
    :meth:`start` and :meth:`stop` (bench_http's per-process accounting)."""

    def __init__(self, servers: list[int], worker: list[int], backends: list[int]) -> None:
        self.groups = {"web": servers, "worker": worker, "pg+redis": backends}
        self.before: dict[str, dict[int, float]] = {}

    def start(self) -> None:
        self.before = {name: bh._cpu(pids) for name, pids in self.groups.items()}

    def stop(self) -> dict[str, float]:
        return {name: bh._delta(self.before[name], bh._cpu(pids))
                for name, pids in self.groups.items()}


async def _statements(db: Any, top: int) -> list[dict[str, Any]]:
    rows = await db.fetch(
        BENCH_SQL + "SELECT calls, total_exec_time, mean_exec_time, max_exec_time, rows, "
        "query FROM pg_stat_statements WHERE query NOT LIKE %s "
        "AND dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) "
        "ORDER BY total_exec_time DESC LIMIT %s", (BENCH_SQL.strip() + "%", top))
    return [{"calls": r["calls"], "total_ms": round(r["total_exec_time"], 1),
             "mean_ms": round(r["mean_exec_time"], 3), "max_ms": round(r["max_exec_time"], 1),
             "rows": r["rows"], "query": " ".join(r["query"].split())} for r in rows]


class Database:
    """This script's own connection to the bench database (checks and statistics), in an
    event loop of its own (the load runs in other processes)."""

    def __init__(self, config: Any) -> None:
        self.config = config
        self.loop = asyncio.new_event_loop()
        self._stack = contextlib.AsyncExitStack()
        self.services = self.loop.run_until_complete(self._stack.enter_async_context(
            open_services(config, load_plugins(config), lifecycle=False)))

    def run(self, coro: Awaitable[Any]) -> Any:
        return self.loop.run_until_complete(coro)

    def reset_statements(self) -> None:
        self.run(self.services.db.execute(BENCH_SQL + "SELECT pg_stat_statements_reset()"))

    def statements(self, top: int = 10) -> list[dict[str, Any]]:
        return self.run(_statements(self.services.db, top))

    def close(self) -> None:
        self.run(self._stack.aclose())
        self.loop.close()


LOG_LINE = re.compile(r"\b(WARNING|ERROR|CRITICAL|Traceback)\b")


def log_problems(workdir: Path) -> dict[str, Any]:
    """Warning and error lines of the web processes' and the worker's logs (counts by file,
    and a few examples)."""
    found: dict[str, Any] = {}
    for log in sorted(workdir.glob("*.log")):
        if not log.name.startswith(("bookings-", "worker")):
            continue
        lines = [line for line in log.read_text(errors="replace").splitlines()
                 if LOG_LINE.search(line)]
        if lines:
            found[log.name] = {"count": len(lines), "examples": [x[:400] for x in lines[:5]]}
    return found


WORKER_METRIC = re.compile(
    r'^propmubi_events_(handler_duration_seconds_sum|handler_duration_seconds_count|'
    r'retried_total|duplicates_total|failed_total|dead_lettered_total)'
    r'\{group="([^"]+)"[^}]*\} (\S+)$', re.M)


def worker_metrics(metrics_port: int) -> dict[str, Any]:
    """The worker's consumer groups so far (its ``/metrics``): handler batches (count, mean
    duration), and deliveries retried, skipped as duplicates, failed and dead-lettered;
    empty when it cannot be read."""
    try:
        status, body = bh.get(f"http://{HOST}:{metrics_port}/metrics", timeout=5)
    except OSError:
        return {}
    if status != 200:
        return {}
    found: dict[str, dict[str, float]] = collections.defaultdict(
        lambda: collections.defaultdict(float))
    for name, group, value in WORKER_METRIC.findall(body.decode(errors="replace")):
        found[group][name.removesuffix("_total")] += float(value)
    out = {}
    for group, v in sorted(found.items()):
        count = v.pop("handler_duration_seconds_count", 0.0)
        total = v.pop("handler_duration_seconds_sum", 0.0)
        out[group] = {"batches": count, "batch_mean_ms": total / count * 1000 if count else 0.0,
                      **{k: v.get(k, 0.0) for k in ("retried", "duplicates", "failed",
                                                      "dead_lettered")}}
    return out


# -------------------------------------------------------------------------------------------------
# Confirmation and the database checks
# -------------------------------------------------------------------------------------------------


async def _confirmed(db: Any, booking_ids: list[str]) -> int:
    return int(await db.fetchval(
        BENCH_SQL + "SELECT count(*) FROM bookings_bookings WHERE id = ANY(%s::uuid[]) "
        "AND status = 'confirmed'", (booking_ids,)))


def wait_confirmed(database: Database, booking_ids: list[str], timeout: float
                   ) -> tuple[int, float]:
    """Poll until every booking is confirmed or ``timeout`` passes; (confirmed, seconds)."""
    started = time.monotonic()
    while True:
        done = database.run(_confirmed(database.services.db, booking_ids))
        waited = time.monotonic() - started
        if done >= len(booking_ids) or waited > timeout:
            return done, waited
        time.sleep(0.2)


async def _facts(db: Any, project_id: str) -> dict[str, Any]:
    q = BENCH_SQL
    live = list(LIVE)
    lags = await db.fetch(
        q + "SELECT extract(epoch FROM processed_at - received_at) * 1000 AS ms "
        "FROM payments_events WHERE processed_at IS NOT NULL")
    return {
        "units_total": await db.fetchval(
            q + "SELECT count(*) FROM catalog_units WHERE project_id = %s", (project_id,)),
        "units_by_status": {r["status"]: r["n"] for r in await db.fetch(
            q + "SELECT status, count(*) AS n FROM catalog_units WHERE project_id = %s "
            "GROUP BY status", (project_id,))},
        "bookings_by_status": {r["status"]: r["n"] for r in await db.fetch(
            q + "SELECT status, count(*) AS n FROM bookings_bookings GROUP BY status")},
        "live_booking_ids": sorted(str(r["id"]) for r in await db.fetch(
            q + "SELECT id FROM bookings_bookings WHERE status = ANY(%s)", (live,))),
        "units_with_two_live_bookings": await db.fetchval(
            q + "SELECT count(*) FROM (SELECT unit_id FROM bookings_bookings "
            "WHERE status = ANY(%s) GROUP BY unit_id HAVING count(*) > 1) d", (live,)),
        "intents_by_status": {r["status"]: r["n"] for r in await db.fetch(
            q + "SELECT status, count(*) AS n FROM payments_intents GROUP BY status")},
        "captured_not_confirmed": await db.fetchval(
            q + "SELECT count(*) FROM payments_intents i "
            "JOIN bookings_bookings b ON b.id = i.booking_id "
            "WHERE i.status = 'captured' AND b.status <> 'confirmed'"),
        "confirmed_unit_not_booked": await db.fetchval(
            q + "SELECT count(*) FROM bookings_bookings b JOIN catalog_units u "
            "ON u.id = b.unit_id WHERE b.status = 'confirmed' AND u.status <> 'booked'"),
        "provider_events": await db.fetchval(q + "SELECT count(*) FROM payments_events"),
        "provider_events_unapplied": await db.fetchval(
            q + "SELECT count(*) FROM payments_events WHERE processed_at IS NULL"),
        "provider_event_outcomes": {r["outcome"]: r["n"] for r in await db.fetch(
            q + "SELECT outcome, count(*) AS n FROM payments_events GROUP BY outcome")},
        "refunds": await db.fetchval(q + "SELECT count(*) FROM payments_refunds"),
        "webhook_to_applied_ms": [float(r["ms"]) for r in lags],
    }


def check_everything(facts: dict[str, Any], units: int, holds: list[dict[str, Any]],
                     intents: list[dict[str, Any]], webhooks: list[dict[str, Any]],
                     redeliveries: list[dict[str, Any]], confirmed: int) -> list[dict[str, Any]]:
    """Each check: what, expected, measured, ok."""
    held = [r for r in holds if r["status"] == 201]
    live_ids = facts["live_booking_ids"]
    taken = sum(n for s, n in facts["units_by_status"].items() if s in ("held", "booked"))
    checks = []

    def check(what: str, expected: Any, measured: Any, ok: bool | None = None) -> None:
        checks.append({"check": what, "expected": expected, "measured": measured,
                       "ok": measured == expected if ok is None else ok})

    check("units of the project", units, facts["units_total"])
    check("units held or booked in catalog_units", units, taken)
    check("live bookings (held/payment_pending/paid/confirmed)", units, len(live_ids))
    check("units with two live bookings", 0, facts["units_with_two_live_bookings"])
    check("holds answered 201", units, len(held))
    check("201 booking ids = the live bookings", True,
          sorted(r["booking_id"] for r in held) == live_ids)
    check("hold answers other than 201/409", 0,
          sum(1 for r in holds if r["status"] not in (201, 409)))
    check("payment intents answered 201", len(held),
          sum(1 for r in intents if r["status"] == 201))
    check("first webhook deliveries answered 200 (not duplicate)", len(intents),
          sum(1 for r in webhooks if r["status"] == 200 and r.get("duplicate") is False))
    check("redeliveries answered 200 duplicate", len(redeliveries),
          sum(1 for r in redeliveries if r["status"] == 200 and r.get("duplicate") is True))
    check("bookings confirmed within the wait", len(intents), confirmed)
    check("captured intents", len(intents), facts["intents_by_status"].get("captured", 0))
    check("captured intents whose booking is not confirmed", 0,
          facts["captured_not_confirmed"])
    check("confirmed bookings whose unit is not booked", 0, facts["confirmed_unit_not_booked"])
    check("provider events stored (one per first delivery)", len(webhooks),
          facts["provider_events"])
    check("provider events not applied", 0, facts["provider_events_unapplied"])
    check("refunds", 0, facts["refunds"])
    return checks


# -------------------------------------------------------------------------------------------------
# Report
# -------------------------------------------------------------------------------------------------


def _fmt(value: float, digits: int = 1) -> str:
    return "-" if value != value else f"{value:.{digits}f}"


def latency_table(rows: list[tuple[str, dict[str, Any]]]) -> str:
    head = (f"{'requests':<44} {'count':>6} {'req/s':>7} {'p50 ms':>8} {'p95 ms':>8} "
            f"{'p99 ms':>8} {'max ms':>8}")
    lines = [head, "-" * len(head)]
    for label, s in rows:
        rps = _fmt(s["rps"], 0) if "rps" in s else ""
        lines.append(f"{label:<44} {s['requests']:>6} {rps:>7} {_fmt(s['p50_ms']):>8} "
                     f"{_fmt(s['p95_ms']):>8} {_fmt(s['p99_ms']):>8} {_fmt(s['max_ms']):>8}")
    return "\n".join(lines)


def _no_nan(value: Any) -> Any:
    """``value`` with every NaN (a figure of no requests) as null: strict JSON."""
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, dict):
        return {k: _no_nan(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_no_nan(v) for v in value]
    return value


def _load(values: Sequence[float]) -> str:
    return " ".join(f"{x:.2f}" for x in values)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--buyers", type=int, default=1000)
    parser.add_argument("--units", type=int, default=100)
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--redeliveries", type=int, default=3,
                        help="duplicate copies of each webhook sent after the first deliveries")
    parser.add_argument("--confirm-timeout", type=float, default=60.0,
                        help="seconds to wait for the worker to confirm the paid bookings")
    parser.add_argument("--seed", type=int, default=20261205, help="the buyers' random choices")
    parser.add_argument("--durable", action="store_true",
                        help="PostgreSQL with fsync and synchronous commit on")
    parser.add_argument("--rate-limit", choices=["on", "off"], default="on",
                        help="on: the Redis check on every request, with limits never reached")
    parser.add_argument("--keep", action="store_true",
                        help="keep the temporary folder (logs, load records) afterwards")
    args = parser.parse_args(argv)
    if args.units < 1 or args.buyers < args.units:
        parser.error("need at least one unit and at least as many buyers as units")

    signal.signal(signal.SIGTERM, bh._sigterm)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    load_at_start = os.getloadavg()
    workdir = Path(tempfile.mkdtemp(prefix="propmubi-bench-bookings-"))
    pg = EmbeddedPostgres(workdir / "pg", fast=not args.durable)
    redis = EmbeddedRedis(workdir / "redis", persistent=False)
    database: Database | None = None
    phases: dict[str, Any] = {}
    cpu: dict[str, dict[str, float]] = {}
    loads: dict[str, Any] = {"start": load_at_start}
    statements: dict[str, list[dict[str, Any]]] = {}
    facts: dict[str, Any] = {}
    checks: list[dict[str, Any]] = []
    logs: dict[str, Any] = {}
    handlers: dict[str, Any] = {}
    confirmed, waited = 0, 0.0
    try:
        say(f"embedded PostgreSQL + Redis in {workdir}")
        pg.start()
        preload_pg_stat_statements(pg)
        redis_url = redis.start()
        assert pg.proc is not None and redis.proc is not None
        backends = [pg.proc.pid, redis.proc.pid]
        db_url = pg.createdb("propmubi_bench_bookings")
        secret = "bench-" + os.urandom(16).hex()
        environ = bookings_environ(db_url, redis_url, generate_signing_key(),
                                   os.urandom(24).hex(), secret, workdir)
        config = load_config(environ=environ)  # the file PROPMUBI_CONFIG names
        started = time.monotonic()
        data = asyncio.run(_seed(config, args.units, args.buyers))
        say(f"migrated and seeded in {time.monotonic() - started:.1f} s: project "
            f"{data['project_id']}, {len(data['unit_ids'])} available units, "
            f"{len(data['tokens'])} buyers with tokens")
        database = Database(config)

        env = bh.base_env() | environ | {
            "PROPMUBI_HTTP__ACCESS_LOG": "false",
            "PROPMUBI_LOGGING__LEVEL": "WARNING",
            "PROPMUBI_LOGGING__JSON": "false",
            "PROPMUBI_RATELIMIT__ENABLED": "true" if args.rate_limit == "on" else "false",
            # One address plays a thousand buyers: limits no request reaches.
            "PROPMUBI_RATELIMIT__PER_IP": "1000000000/minute",
            "PROPMUBI_RATELIMIT__IP_CEILING_FACTOR": "1000000",
        }
        metrics_port = bh.free_port()
        with open(workdir / "worker.log", "wb") as worker_log:
            worker = bh.spawn([*bh.propmubi_command()[:-4], "worker", "--metrics-port",
                               str(metrics_port)], env=env, cwd=workdir, stdout=worker_log)
        deadline = time.monotonic() + 60
        while not _answers(f"http://{HOST}:{metrics_port}/health"):
            if worker.poll() is not None:
                raise RuntimeError(f"the worker exited with {worker.returncode}:\n"
                                   f"{(workdir / 'worker.log').read_text()[-3000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError("the worker did not answer /health within 60 s")
            time.sleep(0.2)
        say(f"worker running (pid {worker.pid})")

        target = bh.Target("bookings", bh.propmubi_command(), env, "/health", "")
        with bh.serving(target, bh.free_port(), workdir) as served:
            base = served.base
            say(f"two web processes on {base} (pids {served.pids})")
            meter = CpuMeter(served.pids, [worker.pid], backends)
            common = {"base": base, "connections": args.connections, "seed": args.seed}

            run_load("gets", common | {"count": 1000, "paths": [
                "/health", f"{API}/projects/{data['project_id']}"]}, workdir, "warm-up")
            say("warm-up done (1,000 GETs)")

            def measured(name: str, phase: str, spec: dict[str, Any]) -> dict[str, Any]:
                loads[f"before {name}"] = os.getloadavg()
                meter.start()
                out = run_load(phase, spec, workdir, name)
                cpu[name] = meter.stop()
                loads[f"after {name}"] = os.getloadavg()
                return out

            # 2. The flash sale.
            database.reset_statements()
            flash = measured("flash sale", "holds", common | {
                "unit_ids": data["unit_ids"], "tokens": data["tokens"]})
            statements["flash sale"] = database.statements()
            holds = flash["records"]
            held = [r for r in holds if r["status"] == 201]
            counts = collections.Counter(r["status"] for r in holds)
            say(f"flash sale: {len(holds)} hold requests in {flash['seconds']:.2f} s, "
                f"answers {dict(sorted(counts.items()))}")

            # 3-4. Payment intents, then the webhooks, then the worker's confirmations.
            database.reset_statements()
            intents = measured("payment intents", "intents", common | {
                "tokens": data["tokens"], "holds": [(r["buyer"], r["booking_id"])
                                                    for r in held]})
            opened = [r for r in intents["records"] if r["status"] == 201]
            say(f"payment intents: {len(opened)} of {len(held)} answered 201 in "
                f"{intents['seconds']:.2f} s")
            statements["payment intents"] = database.statements()
            hooks = signed_webhooks(secret, opened)
            database.reset_statements()
            webhooks = measured("webhooks", "webhooks", common | {"webhooks": hooks})
            statements["webhooks (first deliveries)"] = database.statements()
            copies = hooks * args.redeliveries  # a provider retrying: the same event ids
            random.Random(args.seed).shuffle(copies)
            database.reset_statements()
            redeliveries = measured("redeliveries", "webhooks", common | {
                "webhooks": copies}) if copies else {"records": [], "seconds": 0.0,
                                                     "client_cpu_seconds": 0.0}
            meter.start()
            confirmed, waited = wait_confirmed(
                database, [r["booking_id"] for r in opened], args.confirm_timeout)
            cpu["confirmation wait"] = meter.stop()
            statements["redeliveries and the rest of the confirmations"] = \
                database.statements()
            handlers = worker_metrics(metrics_port)
            say(f"webhooks: {len(webhooks['records'])} first deliveries in "
                f"{webhooks['seconds']:.2f} s, {len(copies)} redeliveries; {confirmed} of "
                f"{len(opened)} bookings confirmed {waited:.1f} s after the last one")

            # 6. The baseline: as many GET /health as the flash sale made requests.
            health = measured("baseline", "gets", common | {
                "count": len(holds), "paths": ["/health"]})
            phases = {"flash sale": flash, "payment intents": intents, "webhooks": webhooks,
                      "redeliveries": redeliveries, "baseline": health}

            facts = database.run(_facts(database.services.db, data["project_id"]))
            checks = check_everything(
                facts, args.units, holds, intents["records"], webhooks["records"],
                redeliveries["records"], confirmed)
        logs = log_problems(workdir)
    except KeyboardInterrupt:
        say("interrupted; stopping everything")
        return 130
    finally:
        if database is not None:
            with contextlib.suppress(Exception):
                database.close()
        bh.stop_all()
        redis.stop()
        pg.stop()
        if args.keep:
            say(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    loads["end"] = os.getloadavg()
    return report(args, phases, cpu, loads, statements, facts, checks, logs, handlers,
                  confirmed, waited)


def _answers(url: str) -> bool:
    """Whether ``url`` answers 200 now (a refused connection: not yet)."""
    try:
        return bh.get(url, timeout=2)[0] == 200
    except OSError:
        return False


def report(args: argparse.Namespace, phases: dict[str, Any], cpu: dict[str, dict[str, float]],
           loads: dict[str, Any], statements: dict[str, list[dict[str, Any]]],
           facts: dict[str, Any], checks: list[dict[str, Any]], logs: dict[str, Any],
           handlers: dict[str, Any], confirmed: int, waited: float) -> int:
    flash, health = phases["flash sale"], phases["baseline"]
    holds = flash["records"]
    ok201 = [r for r in holds if r["status"] == 201]
    ok409 = [r for r in holds if r["status"] == 409]
    s = {
        "hold (all)": summary(holds, flash["seconds"]),
        "hold 201": summary(ok201),
        "hold 409": summary(ok409),
        "payment intent": summary(phases["payment intents"]["records"],
                                  phases["payment intents"]["seconds"]),
        "webhook (first delivery)": summary(phases["webhooks"]["records"],
                                            phases["webhooks"]["seconds"]),
        "webhook (redelivery: duplicate)": summary(phases["redeliveries"]["records"],
                                                   phases["redeliveries"]["seconds"]),
        "baseline GET /health": summary(health["records"], health["seconds"]),
    }
    sold_out_ms = max((r["at_ms"] for r in ok201), default=math.nan)
    counts = collections.Counter(str(r["status"]) for r in holds)
    attempts = collections.Counter(r["attempt"] for r in holds)
    problems = collections.Counter(r.get("problem") for r in ok409)
    lag = facts.get("webhook_to_applied_ms", [])
    hold, hook, base = s["hold (all)"], s["webhook (first delivery)"], s["baseline GET /health"]
    ratios = {
        "hold req/s / health req/s": hold["rps"] / base["rps"],
        "hold p95 / health p95": hold["p95_ms"] / base["p95_ms"],
        "webhook req/s / health req/s": hook["rps"] / base["rps"],
        "webhook p99 / health p99": hook["p99_ms"] / base["p99_ms"],
    }
    aims = [
        {"aim": f"hold p95 < {HOLD_P95_MS:.0f} ms (all holds, c{args.connections})",
         "measured": hold["p95_ms"], "met": hold["p95_ms"] < HOLD_P95_MS},
        {"aim": f"webhook p99 < {WEBHOOK_P99_MS:.0f} ms (first deliveries, "
                f"c{args.connections})",
         "measured": hook["p99_ms"], "met": hook["p99_ms"] < WEBHOOK_P99_MS},
    ]
    # CPU per request of each measured phase: where the time of a request goes.
    per_request = {}
    for name, used in cpu.items():
        n = len(phases[name]["records"]) if name in phases else 0
        per_request[name] = {k: v / n * 1e6 for k, v in used.items()} if n else {}
        if n:
            per_request[name]["load generator"] = phases[name]["client_cpu_seconds"] / n * 1e6

    print()
    print(f"flash sale: {args.buyers} buyers, {args.units} units, {args.connections} "
          f"connections, two web processes (SO_REUSEPORT) + one worker, rate limiting "
          f"{args.rate_limit}, PostgreSQL {'durable' if args.durable else 'fsync off'}, "
          f"{os.cpu_count()} CPUs, Python {platform.python_version()}, Python aiohttp client")
    print(f"load average at start {_load(loads['start'])}; before the flash sale "
          f"{_load(loads['before flash sale'])}; after it {_load(loads['after flash sale'])}; "
          f"at the end {_load(loads['end'])}")
    print(latency_table(list(s.items())))
    print(f"hold answers: {dict(sorted(counts.items()))} (by attempt: "
          f"{dict(sorted(attempts.items()))}; 409 types: {dict(problems)})")
    print(f"holds/s: {hold['rps']:.0f} requests/s; the {len(ok201)} units were all held "
          f"{sold_out_ms / 1000:.2f} s after the first request (the flash phase lasted "
          f"{flash['seconds']:.2f} s)")
    print(f"webhook -> applied by the worker (payments_events processed_at - received_at): p50 "
          f"{_fmt(percentile(lag, 50))} ms, p95 {_fmt(percentile(lag, 95))} ms, max "
          f"{_fmt(max(lag) if lag else math.nan)} ms; {confirmed} bookings confirmed, the "
          f"last {waited:.1f} s after the last webhook")
    if handlers:
        print("worker, by consumer group (its /metrics): " + "; ".join(
            f"{g}: {h['batches']:.0f} batches x {h['batch_mean_ms']:.1f} ms, retried "
            f"{h['retried']:.0f}, duplicates {h['duplicates']:.0f}, failed {h['failed']:.0f}, "
            f"dead {h['dead_lettered']:.0f}" for g, h in handlers.items()))
    print("ratios: " + ", ".join(f"{k} {v:.2f}" for k, v in ratios.items()))
    print("CPU per request, microseconds (web = both web processes):")
    for name, used in per_request.items():
        if used:
            print(f"  {name:<16} " + "  ".join(f"{k} {v:.0f}" for k, v in used.items()))
    for a in aims:
        print(f"aim: {a['aim']:<48} measured {_fmt(a['measured']):>7} ms  "
              f"{'MET' if a['met'] else 'NOT MET'}")
    for phase, rows in statements.items():
        print(f"\nPostgreSQL statements by total time, {phase} (pg_stat_statements):")
        for r in rows[:5]:
            print(f"  {r['total_ms']:>9.1f} ms total {r['calls']:>6} calls "
                  f"{r['mean_ms']:>8.3f} ms mean {r['max_ms']:>8.1f} ms max  "
                  f"{r['query'][:100]}")
    if logs:
        print("\nwarnings and errors in the logs:")
        for name, found in logs.items():
            print(f"  {name}: {found['count']} lines, e.g. {found['examples'][0][:200]}")
    print("\nchecks:")
    for c in checks:
        print(f"  {'ok  ' if c['ok'] else 'FAIL'} {c['check']}: expected {c['expected']}, "
              f"measured {c['measured']}")
    failed = [c for c in checks if not c["ok"]]

    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    document = {
        "when": stamp, "propmubi": __version__, "python": platform.python_version(),
        "cpus": os.cpu_count(), "machine": platform.machine(), "tool": "python aiohttp",
        "buyers": args.buyers, "units": args.units, "connections": args.connections,
        "redeliveries": args.redeliveries, "rate_limit": args.rate_limit,
        "durable": args.durable, "seed": args.seed,
        "load_average": loads, "summaries": s, "ratios": ratios, "aims": aims,
        "hold_answers": dict(counts), "hold_attempts": {str(k): v for k, v in attempts.items()},
        "sold_out_ms": sold_out_ms,
        "webhook_to_applied_ms": {"p50": percentile(lag, 50), "p95": percentile(lag, 95),
                                  "max": max(lag) if lag else None},
        "confirmed": confirmed, "confirmation_wait_seconds": waited,
        "worker_handlers": handlers, "cpu_seconds": cpu, "cpu_us_per_request": per_request,
        "statements": statements, "log_problems": logs,
        "facts": {k: v for k, v in facts.items()
                  if k not in ("live_booking_ids", "webhook_to_applied_ms")},
        "checks": checks, "failed": bool(failed),
        "other_hold_answers": [r for r in holds if r["status"] not in (201, 409)][:20],
    }
    bh.RESULTS.mkdir(exist_ok=True)
    for path in (bh.RESULTS / f"bench_bookings-{stamp}.json",
                 bh.RESULTS / "bench_bookings-latest.json"):
        path.write_text(json.dumps(_no_nan(document), indent=2, default=str))
    say(f"results written to {bh.RESULTS / f'bench_bookings-{stamp}.json'}")
    if failed:
        say(f"{len(failed)} check(s) FAILED")
    return 1 if failed else 0


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--_load":
        _load_main(sys.argv[2], sys.argv[3])
        sys.exit(0)
    with contextlib.suppress(BrokenPipeError):
        sys.exit(main())
