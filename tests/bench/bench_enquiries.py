"""Enquiry benchmark: N buyers enquire about one project at C connections; every lead is
routed to an advisor, who is notified by SMS, push and e-mail.

    .venv/bin/python tests/bench/bench_enquiries.py [--buyers 400] [--connections 50]
        [--advisors 8] [--repeat 0.1] [--settle-timeout 60] [--keep]
    (or: make bench-enquiries)

It starts its own embedded PostgreSQL (``fsync`` off, as the other benchmarks) and Redis in a
temporary folder, migrates a database with ``auth``, ``catalog``, ``agents``,
``notifications`` and ``crm``, and seeds: one published project (Pune), the notifications
plugin's starting templates (``lead_assigned`` on sms, push and e-mail), ``--advisors``
active advisors of equal capacity (agents rows as the agents seed makes them: KYC verified,
a verified registration, territory Pune, an accepted listing; each with a registered push
device) and ``--buyers`` buyers (auth rows with tokens minted by the servers' key ring).
Notifications go through the console providers; the daily cap is off (an advisor receives
far more than ten messages a day here).

Then one ``propmubi worker`` and two ``propmubi serve --reuse-port`` processes start, and the
script waits until the CRM's routing copy holds every advisor (the agents events relayed).
Phases, at ``--connections`` connections from a separate load process:

1. warm-up (not measured): ``GET /health`` and ``GET /api/v1/crm/stages``;
2. enquiries: each buyer ``POST /api/v1/enquiries`` with their own phone; a ``--repeat``
   share of them enquire a second time right after (the dedup path: it joins the lead);
3. settling: at most ``--settle-timeout`` seconds until every lead is assigned and every
   ``lead_assigned`` delivery is ``sent``;
4. baseline: as many ``GET /health`` at the same concurrency.

Figures: enquiries/s over the HTTP phase; enquiries/s end to end (from the phase's start to
the last delivery's ``sent_at``: HTTP 2xx -> lead assigned -> notification sent);
p50/p95/p99 of the HTTP call, of enquiry -> assignment (the first enquiry's ``created_at`` to
the lead's ``assigned_at``, read from the database; routing is in the enquiry's transaction,
so this is small by design) and of enquiry -> last message sent (``sent_at``); the baseline's.

Checks (exit status 1 if any fails): every answer 202; every enquiry stored, each buyer one
lead (the repeats joined it); every lead assigned; among the equal-capacity advisors
max - min leads <= 1; every lead exactly one ``lead_assigned`` notification with exactly one
delivery per channel (sms, push, email), all sent.

Results go to ``tests/bench/results/bench_enquiries-<UTC timestamp>.json`` and
``bench_enquiries-latest.json`` (git-ignored). Process handling is bench_http.py's: every
child stops at the end, on Ctrl-C or SIGTERM, and dies with this process; everything listens on
127.0.0.1 or unix sockets.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import datetime as dt
import json
import os
import random
import shutil
import signal
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
for folder in (ROOT, HERE):  # run as a script: `tests` and the bench modules importable
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

import bench_bookings as bb  # noqa: E402
import bench_http as bh  # noqa: E402

from propmubi import __version__, migrate  # noqa: E402
from propmubi.actors import Actor  # noqa: E402
from propmubi.config import load_config  # noqa: E402
from propmubi.embedded import EmbeddedPostgres, EmbeddedRedis  # noqa: E402
from propmubi.ids import uuid7  # noqa: E402
from propmubi.lifecycle import open_services  # noqa: E402
from propmubi.plugins import load_plugins  # noqa: E402
from propmubi.types import Principal  # noqa: E402
from propmubi_plugins.auth.settings import generate_signing_key  # noqa: E402

say = bh.say
HOST = bh.HOST
API = "/api/v1"
PLUGINS = ("auth", "catalog", "agents", "notifications", "crm")
CHANNELS = ("email", "push", "sms")
KEY_PREFIX = "bench-enquiries:"
CAPACITY = 1000


def environ_of(db_url: str, redis_url: str, workdir: Path) -> dict[str, str]:
    """The configuration shared by this script, the web processes and the worker."""
    return {
        "PROPMUBI_DATABASE__URL": db_url,
        "PROPMUBI_REDIS__URL": redis_url,
        "PROPMUBI_REDIS__KEY_PREFIX": KEY_PREFIX,
        "PROPMUBI_APP__VAR_DIR": str(workdir / "var"),
        "PROPMUBI_PLUGINS__ENABLED": json.dumps(list(PLUGINS)),
        "PROPMUBI_PLUGINS__AUTH__SIGNING_KEY": generate_signing_key(),
        "PROPMUBI_PLUGINS__AUTH__OTP_SECRET": os.urandom(24).hex(),
        "PROPMUBI_PLUGINS__AUTH__ACCESS_TTL": "3600",
        "PROPMUBI_PLUGINS__NOTIFICATIONS__DAILY_CAP": "0",
        "PROPMUBI_PLUGINS__NOTIFICATIONS__UNSUBSCRIBE_SECRET": os.urandom(24).hex(),
        # One address plays every buyer: limits no request reaches.
        "PROPMUBI_PLUGINS__CRM__ENQUIRY_PER_IP": "1000000000/minute",
        "PROPMUBI_PLUGINS__CRM__ENQUIRY_PER_PHONE": "1000000/minute",
    }


# --------------------------------------------------------------------------------------------
# Seed
# --------------------------------------------------------------------------------------------


async def _seed(config: Any, buyers: int, advisors: int) -> dict[str, Any]:
    from propmubi_plugins.agents import service as agents_service
    from propmubi_plugins.agents import store as agents_store
    from propmubi_plugins.agents.models import fold
    from propmubi_plugins.catalog import models as catalog_models
    from propmubi_plugins.catalog import service as catalog
    from propmubi_plugins.notifications import seed as notifications_seed
    from propmubi_plugins.notifications import service as notifications_service
    from propmubi_plugins.notifications.models import DeviceIn

    plugins = load_plugins(config)
    await migrate.up(config.database.url, plugins)
    system = Actor.system("bench-seed")
    async with open_services(config, plugins) as services:
        db = services.db
        ctx = services.context("catalog")
        builder = await catalog.create_builder(ctx, system, catalog_models.BuilderIn(
            name="Enquiry Developers"))
        project = await catalog.create_project(ctx, system, catalog_models.ProjectIn(
            name="Enquiry Heights", city="Pune", locality="Baner",
            address="Survey 12, Baner Road", lat=18.559, lng=73.786,
            rera_number="P52100088888", status="under_construction", amenities=["gym"],
            description="The project of the enquiry benchmark.", builder_id=builder["id"]))
        await catalog.submit_project(ctx, system, project["id"])
        await catalog.publish_project(ctx, system, project["id"])
        await notifications_seed.seed(services.context("notifications"), 1.0)

        agents = services.context("agents")
        notifications = services.context("notifications")
        today = agents_service.today_of(agents)
        now = agents.clock.now()
        advisor_ids = []
        for n in range(advisors):
            agent_id, user_id = uuid7(), uuid7()
            await db.execute("INSERT INTO auth_users (id, phone) VALUES (%s, %s)",
                             (user_id, f"+9197{n:08d}"))
            await db.execute("INSERT INTO auth_user_roles (user_id, role) VALUES (%s, 'agent')",
                             (user_id,))
            async with agents.db.transaction() as tx:
                await agents_store.insert_agent(tx, {
                    "id": agent_id, "user_id": user_id, "display_name": f"Advisor {n}",
                    "phone": f"+9197{n:08d}", "email": f"advisor{n}@example.com",
                    "languages": ["English"], "capacity": CAPACITY, "created_by": system.ref,
                    "now": now})
                await agents_store.record_kyc(tx, user_id, "verified", 0)
                await agents_store.insert_registration(
                    tx, uuid7(), agent_id, f"A518{n:08d}", "MH", today - dt.timedelta(days=30),
                    today + dt.timedelta(days=4 * 365), "verified", now, system.ref)
                await agents_store.replace_territories(tx, agent_id, [
                    ("Pune", "", fold("Pune"), "")])
                listing = uuid7()
                await agents_store.request_listing(tx, listing, agent_id, project["id"], now)
                await agents_store.decide_listing(tx, listing, "accepted", None, now,
                                                  system.ref)
                row = await agents_store.agent(tx, agent_id, lock=True)
                assert row is not None
                await agents_service.refresh_in(agents, tx, system, row)
            await notifications_service.register_device(
                notifications, Actor.user(Principal(subject=str(user_id),
                                                    roles=frozenset({"agent"}))),
                DeviceIn(token=f"bench-device-{n:04d}-{user_id.hex}", platform="android"))
            advisor_ids.append(str(agent_id))

        user_ids = [uuid7() for _ in range(buyers)]
        phones = [f"+9198{n:08d}" for n in range(buyers)]
        await db.execute("INSERT INTO auth_users (id, phone) "
                         "SELECT * FROM unnest(%s::uuid[], %s::text[])", (user_ids, phones))
        await db.execute("INSERT INTO auth_user_roles (user_id, role) "
                         "SELECT unnest(%s::uuid[]), 'buyer'", (user_ids,))
        keyring = services.context("auth").state.keyring
        tokens = [keyring.issue(str(uid), ("buyer",), None)[0] for uid in user_ids]
        await db.execute("ANALYZE")
    return {"project_id": str(project["id"]), "advisor_ids": advisor_ids, "tokens": tokens,
            "phones": phones}


# --------------------------------------------------------------------------------------------
# The load generator (its own process: ``bench_enquiries.py --_load SPEC OUT``)
# --------------------------------------------------------------------------------------------


async def _phase_enquiries(spec: dict[str, Any]) -> dict[str, Any]:
    base, tokens, phones = spec["base"], spec["tokens"], spec["phones"]
    repeats = set(random.Random(spec["seed"]).sample(range(len(tokens)),
                                                     round(len(tokens) * spec["repeat"])))
    records: list[dict[str, Any]] = []

    async def play(session: Any, buyer: int, started: float) -> None:
        headers = {"Authorization": f"Bearer {tokens[buyer]}",
                   "Content-Type": "application/json"}
        body = json.dumps({"project_id": spec["project_id"], "name": f"Buyer {buyer}",
                           "phone": phones[buyer], "message": "Is a 2 BHK available?",
                           "source": "website"}).encode()
        for attempt in range(2 if buyer in repeats else 1):
            r = await bb._request(session, "POST", base + f"{API}/enquiries", started,
                                  headers=headers, data=body)
            record = {"buyer": buyer, "attempt": attempt, "status": r["status"], "ms": r["ms"],
                      "error": r["error"]}
            if r["status"] == 202:
                answer = json.loads(r["body"])
                record.update(enquiry_id=answer["enquiry_id"], lead_id=answer["lead_id"])
            else:
                record["body"] = r["body"][:300].decode(errors="replace")
            records.append(record)

    wall = time.time()
    return await bb._drive(spec["connections"], range(len(tokens)), play) | {
        "records": records, "wall_start": wall}


async def _phase_gets(spec: dict[str, Any]) -> dict[str, Any]:
    return await bb._phase_gets(spec)


PHASES = {"enquiries": _phase_enquiries, "gets": _phase_gets}


def _load_main(spec_path: str, out_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text())
    result = asyncio.run(PHASES[spec["phase"]](spec))
    Path(out_path).write_text(json.dumps(result))


def run_load(phase: str, spec: dict[str, Any], workdir: Path, label: str,
             timeout: float = 300) -> dict[str, Any]:
    """One phase in a load generator process (bounded in time); its records."""
    spec_path, out_path = workdir / f"load-{label}.json", workdir / f"load-{label}-out.json"
    spec_path.write_text(json.dumps(spec | {"phase": phase}))
    log = workdir / f"load-{label}.log"
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


# --------------------------------------------------------------------------------------------
# The database afterwards
# --------------------------------------------------------------------------------------------


async def _routed(db: Any) -> int:
    return int(await db.fetchval("SELECT count(*) FROM crm_agents WHERE active"))


async def _settled(db: Any, project_id: str) -> tuple[int, int, int]:
    """(leads, leads assigned, lead_assigned deliveries sent)."""
    leads = await db.fetchrow(
        "SELECT count(*) AS n, count(agent_id) AS assigned FROM crm_leads WHERE project_id = %s",
        (uuid.UUID(project_id),))
    sent = await db.fetchval(
        "SELECT count(*) FROM notifications_deliveries d JOIN notifications_notifications n"
        " ON n.id = d.notification_id WHERE n.type = 'lead_assigned' AND d.status = 'sent'")
    return int(leads["n"]), int(leads["assigned"]), int(sent)


async def _facts(db: Any, project_id: str) -> dict[str, Any]:
    leads = await db.fetch(
        "SELECT l.id, l.agent_id, l.assigned_at,"
        " (SELECT min(e.created_at) FROM crm_enquiries e WHERE e.lead_id = l.id) AS enquired_at,"
        " (SELECT count(*) FROM crm_enquiries e WHERE e.lead_id = l.id) AS enquiries"
        " FROM crm_leads l WHERE l.project_id = %s", (uuid.UUID(project_id),))
    notes = await db.fetch(
        "SELECT n.dedupe_key, array_agg(d.channel ORDER BY d.channel) AS channels,"
        " array_agg(d.status ORDER BY d.channel) AS statuses, max(d.sent_at) AS last_sent"
        " FROM notifications_notifications n JOIN notifications_deliveries d"
        " ON d.notification_id = n.id WHERE n.type = 'lead_assigned' GROUP BY n.id")
    per_agent = await db.fetch(
        "SELECT a.agent_id, count(l.id) AS leads FROM crm_agents a LEFT JOIN crm_leads l"
        " ON l.agent_id = a.agent_id GROUP BY a.agent_id")
    enquiries = await db.fetchval("SELECT count(*) FROM crm_enquiries WHERE project_id = %s",
                                  (uuid.UUID(project_id),))
    return {"leads": [dict(r) for r in leads], "notifications": [dict(r) for r in notes],
            "per_agent": {str(r["agent_id"]): int(r["leads"]) for r in per_agent},
            "enquiries": int(enquiries)}


def check_everything(facts: dict[str, Any], records: list[dict[str, Any]], buyers: int,
                     advisors: int) -> list[dict[str, Any]]:
    checks: list[dict[str, Any]] = []

    def check(what: str, expected: Any, measured: Any, ok: bool | None = None) -> None:
        checks.append({"check": what, "expected": expected, "measured": measured,
                       "ok": (expected == measured) if ok is None else ok})

    statuses = collections.Counter(r["status"] for r in records)
    check("every enquiry answered 202", {202: len(records)}, dict(statuses))
    check("every enquiry stored", len(records), facts["enquiries"])
    leads = facts["leads"]
    check("each buyer one lead (repeats joined it)", buyers, len(leads))
    by_lead = collections.Counter(r["lead_id"] for r in records if r["status"] == 202)
    check("each answer's lead has the enquiries answered for it", True,
          all(by_lead[str(lead["id"])] == lead["enquiries"] for lead in leads))
    repeat_leads = {r["lead_id"] for r in records if r["attempt"] == 1}
    first_leads = {r["lead_id"]: r for r in records if r["attempt"] == 0}
    check("every repeat joined its first enquiry's lead", True,
          repeat_leads <= set(first_leads))
    check("every lead assigned", len(leads), sum(1 for lead in leads if lead["agent_id"]))
    counts = [n for n in facts["per_agent"].values()]
    check("advisors routed to", advisors, len(counts))
    check("max - min leads among equal-capacity advisors <= 1", "<= 1",
          max(counts) - min(counts) if counts else None,
          ok=bool(counts) and max(counts) - min(counts) <= 1)
    notes = facts["notifications"]
    keys = collections.Counter(n["dedupe_key"].split(":")[2] for n in notes)
    check("one lead_assigned notification per lead", len(leads), len(keys))
    check("no lead notified twice", 1, max(keys.values()) if keys else None,
          ok=not keys or max(keys.values()) == 1)
    check("exactly one delivery per channel, each sent", True,
          all(tuple(n["channels"]) == CHANNELS and set(n["statuses"]) == {"sent"}
              for n in notes))
    return checks


def _ms(delta: dt.timedelta) -> float:
    return delta.total_seconds() * 1000


def _stats(values: list[float]) -> dict[str, float]:
    return {"count": len(values), "p50_ms": bb.percentile(values, 50),
            "p95_ms": bb.percentile(values, 95), "p99_ms": bb.percentile(values, 99),
            "max_ms": max(values) if values else float("nan")}


# --------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--buyers", type=int, default=400)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--advisors", type=int, default=8)
    parser.add_argument("--repeat", type=float, default=0.1,
                        help="share of buyers who enquire a second time (dedup)")
    parser.add_argument("--settle-timeout", type=float, default=60.0)
    parser.add_argument("--seed", type=int, default=20250602)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args(argv)
    if args.buyers < 1 or args.advisors < 1 or not 0 <= args.repeat <= 1:
        parser.error("need a buyer, an advisor, and --repeat between 0 and 1")

    signal.signal(signal.SIGTERM, bh._sigterm)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    loads: dict[str, Any] = {"start": os.getloadavg()}
    workdir = Path(tempfile.mkdtemp(prefix="propmubi-bench-enquiries-"))
    pg = EmbeddedPostgres(workdir / "pg", fast=True)
    redis = EmbeddedRedis(workdir / "redis", persistent=False)
    database: bb.Database | None = None
    result: dict[str, Any] = {}
    try:
        pg.start()
        redis_url = redis.start()
        environ = environ_of(pg.createdb("propmubi_bench_enquiries"), redis_url, workdir)
        config = load_config(environ=environ)
        began = time.monotonic()
        data = asyncio.run(_seed(config, args.buyers, args.advisors))
        say(f"migrated and seeded in {time.monotonic() - began:.1f} s: {args.advisors} "
            f"advisors, {args.buyers} buyers")
        database = bb.Database(config)
        env = bh.base_env() | environ | {
            "PROPMUBI_HTTP__ACCESS_LOG": "false", "PROPMUBI_LOGGING__LEVEL": "WARNING",
            "PROPMUBI_LOGGING__JSON": "false", "PROPMUBI_RATELIMIT__ENABLED": "true",
            "PROPMUBI_RATELIMIT__PER_IP": "1000000000/minute",
            "PROPMUBI_RATELIMIT__IP_CEILING_FACTOR": "1000000"}
        metrics_port = bh.free_port()
        with open(workdir / "worker.log", "wb") as worker_log:
            worker = bh.spawn([*bh.propmubi_command()[:-4], "worker", "--metrics-port",
                               str(metrics_port)], env=env, cwd=workdir, stdout=worker_log)
        deadline = time.monotonic() + 60
        while database.run(_routed(database.services.db)) < args.advisors:
            if worker.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the worker did not copy the advisors within 60 s:\n"
                                   f"{(workdir / 'worker.log').read_text()[-3000:]}")
            time.sleep(0.2)
        say(f"worker running (pid {worker.pid}); the CRM routes to {args.advisors} advisors")

        target = bh.Target("enquiries", bh.propmubi_command(), env, "/health", "")
        with bh.serving(target, bh.free_port(), workdir) as served:
            common = {"base": served.base, "connections": args.connections, "seed": args.seed}
            run_load("gets", common | {"count": 500, "paths": ["/health", f"{API}/crm/stages"]},
                     workdir, "warm-up")
            loads["before enquiries"] = os.getloadavg()
            phase = run_load("enquiries", common | {
                "project_id": data["project_id"], "tokens": data["tokens"],
                "phones": data["phones"], "repeat": args.repeat}, workdir, "enquiries")
            records = phase["records"]
            say(f"enquiries: {len(records)} requests in {phase['seconds']:.2f} s")
            settle_deadline = time.monotonic() + args.settle_timeout
            while True:
                leads, assigned, sent = database.run(_settled(database.services.db,
                                                              data["project_id"]))
                if leads and assigned == leads and sent >= leads * len(CHANNELS):
                    break
                if time.monotonic() > settle_deadline:
                    say(f"not settled after {args.settle_timeout} s: {assigned}/{leads} "
                        f"assigned, {sent} deliveries sent")
                    break
                time.sleep(0.2)
            loads["after enquiries"] = os.getloadavg()
            health = run_load("gets", common | {"count": len(records), "paths": ["/health"]},
                              workdir, "baseline")
            facts = database.run(_facts(database.services.db, data["project_id"]))
        checks = check_everything(facts, records, args.buyers, args.advisors)
        assignment = [_ms(r["assigned_at"] - r["enquired_at"]) for r in facts["leads"]
                      if r["assigned_at"] is not None]
        lead_enquired = {str(r["id"]): r["enquired_at"] for r in facts["leads"]}
        notified = [_ms(n["last_sent"] - lead_enquired[n["dedupe_key"].split(":")[2]])
                    for n in facts["notifications"]
                    if n["last_sent"] is not None
                    and n["dedupe_key"].split(":")[2] in lead_enquired]
        last_sent = max((n["last_sent"] for n in facts["notifications"] if n["last_sent"]),
                        default=None)
        e2e_seconds = (last_sent.timestamp() - phase["wall_start"]) if last_sent else None
        result = {
            "http": bb.summary(records, phase["seconds"]),
            "end_to_end": {"seconds": e2e_seconds,
                           "enquiries_per_s": len(records) / e2e_seconds if e2e_seconds
                           else None},
            "enquiry_to_assignment": _stats(assignment),
            "enquiry_to_notification_sent": _stats(notified),
            "baseline_health": bb.summary(health["records"], health["seconds"]),
            "client_cpu_seconds": phase["client_cpu_seconds"],
            "checks": checks, "per_agent": facts["per_agent"]}
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
    return report(args, result, loads)


def report(args: argparse.Namespace, result: dict[str, Any], loads: dict[str, Any]) -> int:
    http, base = result["http"], result["baseline_health"]
    e2e = result["end_to_end"]

    def row(name: str, s: dict[str, Any]) -> str:
        return (f"  {name:<34} p50 {s['p50_ms']:8.1f}  p95 {s['p95_ms']:8.1f}  "
                f"p99 {s['p99_ms']:8.1f}  max {s['max_ms']:8.1f} ms")

    print(f"\npropmubi {__version__}: {args.buyers} buyers ({args.repeat:.0%} enquire twice), "
          f"{args.connections} connections, {args.advisors} advisors, two web processes + one "
          "worker, console notification providers")
    print(f"HTTP enquiries: {http['requests']} in {http['seconds']:.2f} s = "
          f"{http['rps']:.1f}/s;  baseline GET /health: {base['rps']:.1f}/s")
    if e2e["seconds"]:
        print(f"end to end (2xx -> assigned -> 3 messages sent): {e2e['seconds']:.2f} s = "
              f"{e2e['enquiries_per_s']:.1f} enquiries/s")
    print(row("HTTP POST /enquiries", http))
    print(row("baseline GET /health", base))
    print(row("enquiry -> assignment (database)", result["enquiry_to_assignment"]))
    print(row("enquiry -> last message sent", result["enquiry_to_notification_sent"]))
    print("load average: " + "; ".join(f"{k} {v[0]:.2f} {v[1]:.2f} {v[2]:.2f}"
                                       for k, v in loads.items()))
    failed = [c for c in result["checks"] if not c["ok"]]
    for c in result["checks"]:
        print(f"  [{'ok' if c['ok'] else 'FAIL'}] {c['check']}: {c['measured']}")
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    out = {"version": __version__, "args": vars(args), "loadavg": loads, **result}
    bh.RESULTS.mkdir(exist_ok=True)
    for path in (bh.RESULTS / f"bench_enquiries-{stamp}.json",
                 bh.RESULTS / "bench_enquiries-latest.json"):
        path.write_text(json.dumps(out, indent=2, default=str))
    say(f"results written to {bh.RESULTS / f'bench_enquiries-{stamp}.json'}")
    return 1 if failed else 0


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--_load":
        _load_main(sys.argv[2], sys.argv[3])
    else:
        sys.exit(main())
