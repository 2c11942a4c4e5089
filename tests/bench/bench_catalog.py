"""Catalogue benchmark: search, suggest, feed and project detail, cold and warm cache.

    .venv/bin/python tests/bench/bench_catalog.py [--scale 1] [--duration 15]
    (or: make bench-catalog)

It starts its own embedded PostgreSQL and Redis in a temporary folder, migrates a database with
the ``auth`` and ``catalog`` plugins, seeds the demo catalogue (``propmubi seed --scale N``;
scale 1: 50 builders, 2,000 projects, 100,000 units), reads a sample of published projects,
builder names and localities back, and builds deterministic pools of request paths from them:

- search (50% of the mix): city, locality, BHK, price ranges in paise, amenities, status,
  possession date, verified builder, a radius around a locality, a polygon, text queries
  (builder names, project names, locality prefixes), sorts and page sizes;
- suggest (20%): prefixes of project, locality and builder names, some with a typo;
- feed (20%): a city (and a page size);
- detail (10%): ``/projects/{id}`` or ``/projects/{slug}``.

Then two ``propmubi serve --reuse-port`` processes (rate limiting off) are driven by
``wrk -t2 -c100`` with ``catalog_mix.lua``, which takes each request's path from a pool file.

Per endpoint latency. wrk's latency histogram is global, and its Lua ``response()`` hook has
neither a clock nor the request it answers, so the per endpoint figures come from one wrk run
per endpoint (its own pool), and the mix's total throughput (and its global percentiles) from
one more run over the mixed pool. A Python load generator could time each request of the mix,
but on a 2-core box it would take the CPU the servers need and measure itself.

Cold and warm. Answers of search, suggest and feed are cached in Redis under a key that holds
the catalogue's cache generations (see plugins/catalog/cache.py):

- COLD: pools of distinct requests (search ~15,000, suggest ~8,000; feed has only 9 cities x
  50 page sizes), walked in order, each wrk thread its own share; and during the run this
  script bumps the global cache generation every 20 ms (what a catalogue change does), so
  that even a repeated request (a feed, or a pool run through) misses. Every search, suggest
  and feed request is then computed by PostgreSQL and stored (a miss costs the SET too).
- WARM: a pass over the 2,000-path mixed pool first (which is also where every answer's status
  is checked), then runs picking at random from that pool: every cached answer is a hit. The
  cache's TTL (``cache_ttl``, 60 s) is shorter than the warm runs together, so each warm run's
  pool is requested once more just before it.

Latency at -c100 on a 2-core box is mostly queueing (Little's law: p50 ~ 100 / req/s), so search
and the mix are also run at ``--light-connections`` (4): the latency of a request that does not
wait behind a hundred others.

The hit ratio of each run is measured, not assumed: Redis ``INFO commandstats`` deltas
(every lookup is one GET, every miss one SET; nothing else in this setup uses GET/SET).
Project detail is not cached: cold and warm differ only by PostgreSQL's own buffers.

Before any load, every path of the warm pool and 1,500 of the cold pools are requested once
and their statuses checked. Any non-2xx answer (there, or counted by wrk) fails the run (exit
status 1) with example URLs and bodies. It prints a
table (scenario, endpoint, req/s, p50/p95/p99, non-2xx, hit ratio, CPU per request), the mix's
req/s cold and warm, the aims (search p95 < 50 ms warm, < 150 ms cold; mix > 1,500 req/s warm
with two web processes), the load average, and the plans of the slowest search shapes
(each warm-pool search shape is timed alone with the cache bypassed; the SQL the slowest ones
run is captured and shown with EXPLAIN ANALYZE), and writes JSON to
``tests/bench/results/``. Process handling is bench_http.py's (imported): every child is
stopped at the end, also on Ctrl-C or SIGTERM; everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import platform
import random
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
for folder in (ROOT, HERE):  # run as a script: make `tests` and bench_http importable
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

import bench_http as bh  # noqa: E402

from propmubi import __version__, migrate  # noqa: E402
from propmubi.config import load_config  # noqa: E402
from propmubi.embedded import EmbeddedPostgres, EmbeddedRedis  # noqa: E402
from propmubi.lifecycle import open_services  # noqa: E402
from propmubi.plugins import load_plugins  # noqa: E402
from propmubi_plugins.auth.settings import generate_signing_key  # noqa: E402
from propmubi_plugins.catalog.models import AMENITIES  # noqa: E402
from propmubi_plugins.catalog.seed import CITIES  # noqa: E402

say = bh.say
HOST = bh.HOST
API = "/api/v1/projects"
KEY_PREFIX = "bench-catalog:"
ENDPOINTS = ("search", "suggest", "feed", "detail")
MIX = {"search": 0.50, "suggest": 0.20, "feed": 0.20, "detail": 0.10}
SEARCH_P95_WARM_MS, SEARCH_P95_COLD_MS, MIX_RPS_WARM = 50.0, 150.0, 1500.0
BUMP_EVERY = 0.020  # seconds between generation bumps during cold runs


# -------------------------------------------------------------------------------------------------
# Database
# -------------------------------------------------------------------------------------------------


def catalog_environ(db_url: str, redis_url: str, signing_key: str, otp_secret: str
                    ) -> dict[str, str]:
    return {
        "PROPMUBI_DATABASE__URL": db_url,
        "PROPMUBI_REDIS__URL": redis_url,
        "PROPMUBI_REDIS__KEY_PREFIX": KEY_PREFIX,
        "PROPMUBI_PLUGINS__ENABLED": '["auth", "catalog"]',
        "PROPMUBI_PLUGINS__AUTH__SIGNING_KEY": signing_key,
        "PROPMUBI_PLUGINS__AUTH__OTP_SECRET": otp_secret,
    }


def prepare_database(pg: EmbeddedPostgres, environ: dict[str, str], scale: float,
                     workdir: Path) -> dict[str, Any]:
    config = load_config(environ=environ, use_default_path=False)
    plugins = load_plugins(config)
    asyncio.run(migrate.up(config.database.url, plugins))
    started = time.monotonic()
    # The real command, as an operator runs it.
    log = workdir / "seed.log"
    with open(log, "wb") as out:
        proc = bh.spawn([*bh.propmubi_command()[:-4], "seed", "--scale", str(scale)],
                        env=bh.base_env() | environ | {"PROPMUBI_LOGGING__LEVEL": "WARNING"},
                        cwd=workdir, stdout=out)
        try:
            code = proc.wait(timeout=1200)
        finally:
            bh.stop([proc])
    if code != 0:
        raise RuntimeError(f"propmubi seed failed ({code}):\n{log.read_text()[-3000:]}")
    seconds = time.monotonic() - started

    async def sample() -> dict[str, Any]:
        async with open_services(config, plugins, lifecycle=False) as services:
            db = services.db
            await db.execute("ANALYZE")
            projects = await db.fetch(
                "SELECT p.id::text AS id, p.slug, p.name, p.city, p.locality, p.lat, p.lng, "
                "b.name AS builder FROM catalog_projects p "
                "JOIN catalog_builders b ON b.id = p.builder_id "
                "WHERE p.moderation = 'published' ORDER BY p.id")
            prices = await db.fetch(
                "SELECT p.city, u.bedrooms, "
                "percentile_disc(0.1) WITHIN GROUP (ORDER BY u.price_minor) AS low, "
                "percentile_disc(0.5) WITHIN GROUP (ORDER BY u.price_minor) AS mid, "
                "percentile_disc(0.9) WITHIN GROUP (ORDER BY u.price_minor) AS high "
                "FROM catalog_units u JOIN catalog_projects p ON p.id = u.project_id "
                "GROUP BY 1, 2")
            counts = {
                "builders": await db.fetchval("SELECT count(*) FROM catalog_builders"),
                "projects": await db.fetchval("SELECT count(*) FROM catalog_projects"),
                "published": await db.fetchval("SELECT count(*) FROM catalog_projects "
                                               "WHERE moderation = 'published'"),
                "units": await db.fetchval("SELECT count(*) FROM catalog_units"),
            }
            return {"projects": [dict(r) for r in projects],
                    "prices": [dict(r) for r in prices], "counts": counts}

    data = asyncio.run(sample())
    data["seed_seconds"] = seconds
    say(f"database migrated and seeded at scale {scale} in {seconds:.1f} s: {data['counts']}")
    return data


# -------------------------------------------------------------------------------------------------
# Request pools
# -------------------------------------------------------------------------------------------------


def _qs(pairs: Sequence[tuple[str, Any]]) -> str:
    return urllib.parse.urlencode([(k, str(v).lower() if isinstance(v, bool) else v)
                                   for k, v in pairs])


class PoolMaker:
    """Deterministic generators of request paths, from the seeded catalogue."""

    def __init__(self, data: dict[str, Any], seed: int) -> None:
        self.rng = random.Random(seed)
        self.projects = data["projects"]
        self.by_city: dict[str, list[dict[str, Any]]] = {}
        for p in self.projects:
            self.by_city.setdefault(p["city"], []).append(p)
        self.cities = sorted(self.by_city)
        self.prices = {(r["city"], r["bedrooms"]): r for r in data["prices"]}
        self.builders = sorted({p["builder"] for p in self.projects})
        self.names = sorted({p["name"] for p in self.projects})
        self.localities = {c: [(name, lat, lng) for name, lat, lng in CITIES[c][2]]
                           for c in self.cities}

    def _price_range(self, city: str, bhks: list[int]) -> tuple[int | None, int | None]:
        rng = self.rng
        rows = [self.prices[(city, b)] for b in bhks if (city, b) in self.prices]
        if not rows:
            rows = [r for (c, _), r in self.prices.items() if c == city]
        low = min(r["low"] for r in rows)
        high = max(r["high"] for r in rows)
        step = 100_000 * 100  # one lakh rupees, in paise
        lo = (low + int(rng.random() * (high - low) * 0.5)) // step * step
        hi = (lo + int((high - lo) * rng.uniform(0.3, 1.0))) // step * step + step
        shape = rng.random()
        if shape < 0.3:
            return None, hi  # "under X"
        if shape < 0.4:
            return lo, None
        return lo, hi

    def search(self) -> str:
        rng = self.rng
        city = rng.choice(self.cities)
        pairs: list[tuple[str, Any]] = []
        shape = rng.random()
        bhks = sorted(rng.sample([1, 2, 3, 4], rng.choice((1, 1, 1, 2))))
        if shape < 0.30:  # city + BHK + budget, the most common listing search
            pairs.append(("city", city))
            pairs += [("bhk", b) for b in bhks]
            lo, hi = self._price_range(city, bhks)
            if lo is not None:
                pairs.append(("price_min", lo))
            if hi is not None:
                pairs.append(("price_max", hi))
            if rng.random() < 0.4:
                pairs.append(("sort", rng.choice(("price_asc", "price_desc", "newest"))))
        elif shape < 0.45:  # city + locality (+ BHK, status)
            pairs.append(("city", city))
            locs = sorted({name for name, _, _ in rng.sample(self.localities[city],
                                                             rng.choice((1, 1, 2)))})
            pairs += [("locality", loc) for loc in locs]
            if rng.random() < 0.6:
                pairs += [("bhk", b) for b in bhks]
            if rng.random() < 0.4:
                pairs.append(("status", rng.choice(("ready", "under_construction"))))
        elif shape < 0.62:  # text: builder name, project name, locality prefix
            kind = rng.random()
            if kind < 0.35:
                q = rng.choice(self.builders).split()[0]
            elif kind < 0.65:
                q = rng.choice(self.names)
            else:
                loc = rng.choice(self.localities[city])[0]
                q = loc[:max(3, int(len(loc) * rng.uniform(0.5, 1.0)))]
            pairs.append(("q", q))
            if rng.random() < 0.5:
                pairs.append(("city", city))
            if rng.random() < 0.3:
                pairs += [("bhk", b) for b in bhks]
        elif shape < 0.77:  # radius around a locality, nearest first
            _, lat, lng = rng.choice(self.localities[city])
            pairs += [("lat", round(lat + rng.uniform(-0.01, 0.01), 4)),
                      ("lng", round(lng + rng.uniform(-0.01, 0.01), 4)),
                      ("radius_km", rng.choice((2, 3, 5, 8, 10, 15)))]
            if rng.random() < 0.6:
                pairs.append(("sort", "distance"))
            if rng.random() < 0.5:
                pairs += [("bhk", b) for b in bhks]
        elif shape < 0.87:  # amenities + status (+ possession)
            pairs.append(("city", city))
            pairs += [("amenities", a) for a in sorted(rng.sample(AMENITIES,
                                                                  rng.choice((1, 2, 3))))]
            if rng.random() < 0.5:
                pairs.append(("status", "under_construction"))
                pairs.append(("possession_before",
                              f"{rng.randrange(2026, 2031)}-{rng.randrange(1, 13):02d}-01"))
        elif shape < 0.94:  # verified builders, ready to move
            pairs += [("city", city), ("verified_builder", True)]
            if rng.random() < 0.6:
                pairs.append(("status", "ready"))
            pairs += [("bhk", b) for b in bhks]
        else:  # polygon: a box around a locality
            _, lat, lng = rng.choice(self.localities[city])
            d = rng.choice((0.02, 0.03, 0.05))
            box = [(lat - d, lng - d), (lat - d, lng + d), (lat + d, lng + d), (lat + d, lng - d)]
            pairs.append(("polygon", ";".join(f"{a:.4f},{b:.4f}" for a, b in box)))
            if rng.random() < 0.4:
                pairs += [("bhk", b) for b in bhks]
        if rng.random() < 0.15:
            pairs.append(("limit", rng.choice((10, 30, 50))))
        return f"{API}/search?{_qs(pairs)}"

    def suggest(self, vary_limit: bool = False) -> str:
        rng = self.rng
        kind = rng.random()
        if kind < 0.4:
            source = rng.choice(self.names)
        elif kind < 0.75:
            source = rng.choice(self.localities[rng.choice(self.cities)])[0]
        else:
            source = rng.choice(self.builders)
        q = source[:rng.randrange(min(3, len(source)), len(source) + 1)].rstrip()
        if len(q) >= 4 and rng.random() < 0.3:  # a typo: swap, drop or replace one letter
            i = rng.randrange(1, len(q) - 1)
            typo = rng.random()
            if typo < 0.33:
                q = q[:i] + q[i + 1] + q[i] + q[i + 2:]
            elif typo < 0.66:
                q = q[:i] + q[i + 1:]
            else:
                q = q[:i] + rng.choice("aeiourstn") + q[i + 1:]
        if rng.random() < 0.5:
            q = q.lower()
        pairs: list[tuple[str, Any]] = [("q", q)]
        if vary_limit and rng.random() < 0.7:
            pairs.append(("limit", rng.randrange(1, 11)))
        return f"{API}/suggest?{_qs(pairs)}"

    def feed(self, vary_limit: bool = False) -> str:
        city = self.rng.choice(self.cities)
        pairs: list[tuple[str, Any]] = [("city", city)]
        if vary_limit:
            pairs.append(("limit", self.rng.randrange(1, 51)))
        elif self.rng.random() < 0.2:
            pairs.append(("limit", self.rng.choice((10, 50))))
        return f"{API}/feed?{_qs(pairs)}"

    def detail(self) -> str:
        p = self.rng.choice(self.projects)
        return f"{API}/{p['id'] if self.rng.random() < 0.5 else p['slug']}"

    def distinct(self, endpoint: str, count: int, **kw: Any) -> list[str]:
        """Up to ``count`` distinct paths (fewer when the endpoint has fewer)."""
        seen: dict[str, None] = {}
        misses = 0
        while len(seen) < count and misses < 20 * count:
            path = getattr(self, endpoint)(**kw)
            if path in seen:
                misses += 1
            seen[path] = None
        return list(seen)


def mixed(pools: dict[str, list[str]], total: int, rng: random.Random) -> list[str]:
    """``total`` paths in the MIX's proportions, interleaved in a deterministic order."""
    out: list[str] = []
    for endpoint, share in MIX.items():
        pool = pools[endpoint]
        n = round(total * share)
        out += [pool[i % len(pool)] for i in range(n)]
    rng.shuffle(out)
    return out


def endpoint_of(path: str) -> str:
    rest = path[len(API) + 1:].split("?")[0]
    return rest if rest in ("search", "suggest", "feed") else "detail"


# -------------------------------------------------------------------------------------------------
# Checking answers, and warming the cache
# -------------------------------------------------------------------------------------------------


async def _fetch_all(base: str, paths: Sequence[str], concurrency: int
                     ) -> list[tuple[str, int, bytes, float]]:
    import aiohttp

    out: list[tuple[str, int, bytes, float]] = []
    queue = list(reversed(paths))
    async with aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=concurrency),
            timeout=aiohttp.ClientTimeout(total=60)) as session:
        async def worker() -> None:
            while queue:
                path = queue.pop()
                started = time.perf_counter()
                async with session.get(base + path) as resp:
                    body = await resp.read()
                out.append((path, resp.status, body, time.perf_counter() - started))

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return out


def check_paths(base: str, paths: Sequence[str], label: str, concurrency: int = 8
                ) -> list[tuple[str, int, bytes, float]]:
    """GET every path once; returns the answers (and says how many were not 2xx)."""
    started = time.monotonic()
    answers = asyncio.run(_fetch_all(base, paths, concurrency))
    bad = [a for a in answers if not 200 <= a[1] < 300]
    say(f"{label}: {len(answers)} requests in {time.monotonic() - started:.1f} s, "
        f"{len(bad)} non-2xx")
    for path, status, body, _ in bad[:5]:
        say(f"  NON-2XX {status} GET {path}\n    {body[:400]!r}")
    return answers


# -------------------------------------------------------------------------------------------------
# Load
# -------------------------------------------------------------------------------------------------


def run_wrk(base: str, pool_file: Path, mode: str, duration: int, threads: int,
            connections: int) -> dict[str, Any]:
    return bh.run_wrk(base, duration, threads, connections, script=HERE / "catalog_mix.lua",
                      script_args=[str(pool_file), mode, str(threads)],
                      extra=["--timeout", "10s"],
                      env=bh.base_env() | {"BENCH_REPORT_LUA": str(HERE / "report.lua")})


class RedisProbe:
    """GET/SET call counts (cache lookups and misses), and the cold runs' generation bumps."""

    def __init__(self, redis_url: str) -> None:
        import redis

        self.client = redis.Redis.from_url(redis_url)
        self.gen_key = f"{KEY_PREFIX}p:catalog:gen"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.bumps = 0

    def calls(self) -> dict[str, int]:
        stats = self.client.info("commandstats")
        return {c: int(stats.get(f"cmdstat_{c}", {}).get("calls", 0)) for c in ("get", "set")}

    def _bump(self) -> None:
        while not self._stop.wait(BUMP_EVERY):
            self.client.incr(self.gen_key)
            self.bumps += 1

    def start_bumping(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._bump, daemon=True)
        self._thread.start()

    def stop_bumping(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None


def measure(scenario: str, endpoint: str, base: str, pool_file: Path, mode: str,
            args: argparse.Namespace, connections: int, servers: list[int],
            backends: list[int], probe: RedisProbe) -> tuple[bh.Result, dict[str, Any]]:
    cold = scenario.startswith("cold")
    before_calls = probe.calls()
    server_before, backend_before = bh._cpu(servers), bh._cpu(backends)
    load_before = os.getloadavg()
    if cold:
        probe.start_bumping()
    try:
        data = run_wrk(base, pool_file, mode, args.duration, min(args.threads, connections),
                       connections)
    finally:
        if cold:
            probe.stop_bumping()
    server_after, backend_after = bh._cpu(servers), bh._cpu(backends)
    after_calls = probe.calls()
    gets = after_calls["get"] - before_calls["get"]
    sets = after_calls["set"] - before_calls["set"]
    result = bh.Result(
        target=scenario, route=endpoint, requests=data["requests"],
        seconds=data["duration_us"] / 1e6, p50_ms=data["p50_us"] / 1000,
        p95_ms=data["p95_us"] / 1000, p99_ms=data["p99_us"] / 1000,
        max_ms=data["max_us"] / 1000, non_2xx=data["status_errors"],
        socket_errors=(data["connect_errors"] + data["read_errors"] + data["write_errors"]
                       + data["timeouts"]),
        tool="wrk", server_cpu=bh._delta(server_before, server_after),
        backend_cpu=bh._delta(backend_before, backend_after), raw=data.get("raw", ""))
    extra = {"cache_lookups": gets, "cache_misses": sets,
             "hit_ratio": (1 - sets / gets) if gets else None,
             "load_average_before": load_before, "load_average_after": os.getloadavg()}
    hit = "" if extra["hit_ratio"] is None else f"  hit {extra['hit_ratio']:.1%}"
    say(f"{scenario:<8} {endpoint:<8} {result.rps:>8.0f} req/s  p50 {result.p50_ms:.1f} ms  "
        f"p95 {result.p95_ms:.1f} ms  p99 {result.p99_ms:.1f} ms{hit}  "
        f"server CPU {result.server_us:.0f} us/req"
        + (f"  NON-2XX {result.non_2xx}" if result.non_2xx else "")
        + (f"  socket errors {result.socket_errors}" if result.socket_errors else ""))
    return result, extra


# -------------------------------------------------------------------------------------------------
# Slow shapes: EXPLAIN ANALYZE of the statement behind the slowest uncached searches
# -------------------------------------------------------------------------------------------------


def explain_slowest(environ: dict[str, str], base: str, paths: Sequence[str], probe: RedisProbe,
                    top: int) -> list[dict[str, Any]]:
    """Time each path alone with the cache bypassed (a bump before each), slowest first; then
    EXPLAIN ANALYZE the SQL that ``search.service.run_search`` / ``run_suggest`` / ``run_feed``
    run for the ``top`` slowest (captured by spying on the database in this process)."""
    timings = []
    for path in paths:
        probe.client.incr(probe.gen_key)
        started = time.perf_counter()
        status, _ = bh.get(base + path, timeout=30)
        timings.append((time.perf_counter() - started, status, path))
    timings.sort(reverse=True)
    config = load_config(environ=environ, use_default_path=False)
    plugins = load_plugins(config)
    out = []

    async def plans() -> None:
        from propmubi_plugins.catalog.search import service as search

        async with open_services(config, plugins, lifecycle=False) as services:
            # The catalogue's context without its state (no lifecycle): the answers are
            # computed straight from the database, as on a cache miss.
            db = services.context("catalog").db
            for seconds, status, path in timings[:top]:
                entry: dict[str, Any] = {"path": path, "ms_alone": round(seconds * 1000, 1),
                                         "status": status, "statements": []}
                captured: list[tuple[str, Any]] = []
                try:
                    captured = await _capture(db, _runner(search, db, path))
                    for sql, params in captured:
                        if not sql.lstrip().upper().startswith(("SELECT", "WITH")):
                            continue
                        rows = await db.fetch("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
                        text = "\n".join(next(iter(r.values())) for r in rows)
                        found = re.search(r"Execution Time: ([0-9.]+) ms", text)
                        entry["statements"].append(
                            {"sql": sql, "plan": text,
                             "execution_ms": float(found[1]) if found else None})
                except Exception as exc:  # a report, not a failure
                    entry["error"] = f"{type(exc).__name__}: {exc}"
                out.append(entry)

    asyncio.run(plans())
    return out


def _runner(search: Any, db: Any, path: str) -> Any:
    from propmubi_plugins.catalog.search.models import FeedQuery, SuggestQuery

    endpoint = endpoint_of(path)
    if endpoint == "search":
        plan = search.plan_search(search_query(path))
        return lambda: search.run_search(db, plan)
    raw = {k: v[0] for k, v in
           urllib.parse.parse_qs(urllib.parse.urlsplit(path).query).items()}
    if "limit" in raw:
        raw["limit"] = int(raw["limit"])
    if endpoint == "suggest":
        query = SuggestQuery(**raw)
        return lambda: search.run_suggest(db, query)
    query = FeedQuery(**raw)
    return lambda: search.run_feed(db, query)


async def _capture(db: Any, run: Any) -> list[tuple[str, Any]]:
    """The (SQL, params) pairs ``run()`` sends through ``db`` (every query goes through
    ``Database._run``)."""
    captured: list[tuple[str, Any]] = []
    original = db._run

    async def spy(kind: str, sql: str, params: Any, fetch: str, *a: Any, **kw: Any) -> Any:
        captured.append((sql, params))
        return await original(kind, sql, params, fetch, *a, **kw)

    db._run = spy
    try:
        await run()
    finally:
        del db._run
    return captured


def search_query(path: str) -> Any:
    """The ``SearchQuery`` a search path validates to (the few types its fields have)."""
    from propmubi_plugins.catalog.search.models import SearchQuery

    raw = urllib.parse.parse_qs(urllib.parse.urlsplit(path).query)
    lists = {"city", "locality", "bhk", "status", "amenities"}
    ints = {"price_min", "price_max", "bhk", "limit"}
    floats = {"lat", "lng", "radius_km"}
    kw: dict[str, Any] = {}
    for key, values in raw.items():
        conv: Any = (int if key in ints else float if key in floats
                     else (lambda v: v == "true") if key == "verified_builder"
                     else dt.date.fromisoformat if key == "possession_before" else str)
        kw[key] = [conv(v) for v in values] if key in lists else conv(values[0])
    return SearchQuery(**kw)


# -------------------------------------------------------------------------------------------------
# The run
# -------------------------------------------------------------------------------------------------


def table(results: list[tuple[bh.Result, dict[str, Any]]]) -> str:
    head = (f"{'scenario':<8} {'endpoint':<8} {'req/s':>8} {'p50 ms':>7} {'p95 ms':>7} "
            f"{'p99 ms':>7} {'max ms':>7} {'non-2xx':>7} {'sock err':>8} {'hit ratio':>9} "
            f"{'srv CPU us/req':>14} {'pg+redis us/req':>15}")
    lines = [head, "-" * len(head)]
    for r, extra in results:
        hit = "-" if extra["hit_ratio"] is None else f"{extra['hit_ratio']:.1%}"
        lines.append(f"{r.target:<8} {r.route:<8} {r.rps:>8.0f} {r.p50_ms:>7.1f} "
                     f"{r.p95_ms:>7.1f} {r.p99_ms:>7.1f} {r.max_ms:>7.0f} {r.non_2xx:>7} "
                     f"{r.socket_errors:>8} {hit:>9} {r.server_us:>14.0f} "
                     f"{r.backend_us:>15.0f}")
    return "\n".join(lines)


def write_pool(path: Path, paths: Sequence[str]) -> Path:
    path.write_text("".join(p + "\n" for p in paths))
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=1.0, help="propmubi seed --scale")
    parser.add_argument("--duration", type=int, default=15, help="seconds per measured run")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--pool", type=int, default=2000, help="paths in the warm pool")
    parser.add_argument("--cold-search", type=int, default=15000,
                        help="distinct search paths in the cold pool")
    parser.add_argument("--cold-suggest", type=int, default=8000,
                        help="distinct suggest paths in the cold pool")
    parser.add_argument("--seed", type=int, default=20261121, help="pool generator seed")
    parser.add_argument("--explain", type=int, default=3,
                        help="EXPLAIN ANALYZE the N slowest search shapes (0: skip)")
    parser.add_argument("--only", choices=["cold", "warm", "both"], default="both")
    parser.add_argument("--light-connections", type=int, default=4,
                        help="also run search and the mix at this concurrency (latency without "
                             "the queueing of -c100; 0: skip)")
    args = parser.parse_args(argv)
    if not shutil.which("wrk"):
        parser.error("wrk is not installed (apt-get install wrk)")

    signal.signal(signal.SIGTERM, bh._sigterm)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    workdir = Path(tempfile.mkdtemp(prefix="propmubi-bench-catalog-"))
    pg = EmbeddedPostgres(workdir / "pg", fast=True)
    redis = EmbeddedRedis(workdir / "redis", persistent=False)
    results: list[tuple[bh.Result, dict[str, Any]]] = []
    checks: dict[str, Any] = {}
    failures: list[str] = []
    slow: list[dict[str, Any]] = []
    try:
        say(f"embedded PostgreSQL + Redis in {workdir}")
        pg.start()
        redis_url = redis.start()
        assert pg.proc is not None and redis.proc is not None
        backends = [pg.proc.pid, redis.proc.pid]
        db_url = pg.createdb("propmubi_bench_catalog")
        environ = catalog_environ(db_url, redis_url, generate_signing_key(),
                                  os.urandom(24).hex())
        data = prepare_database(pg, environ, args.scale, workdir)

        maker = PoolMaker(data, args.seed)
        warm_pools = {"search": maker.distinct("search", round(args.pool * MIX["search"])),
                      "suggest": maker.distinct("suggest", round(args.pool * MIX["suggest"])),
                      "feed": [maker.feed() for _ in range(round(args.pool * MIX["feed"]))],
                      "detail": [maker.detail() for _ in range(round(args.pool * MIX["detail"]))]}
        warm_mix = mixed(warm_pools, args.pool, random.Random(args.seed))
        cold_pools = {"search": maker.distinct("search", args.cold_search),
                      "suggest": maker.distinct("suggest", args.cold_suggest, vary_limit=True),
                      "feed": maker.distinct("feed", 450, vary_limit=True),
                      "detail": maker.distinct("detail", 4 * len(data["projects"]))}
        cold_total = min(len(cold_pools["search"]) * 2, 40000)
        cold_mix = mixed(cold_pools, cold_total, random.Random(args.seed + 1))
        files = {}
        for name, pools in (("warm", warm_pools), ("cold", cold_pools)):
            for endpoint, paths in pools.items():
                files[(name, endpoint)] = write_pool(workdir / f"{name}-{endpoint}.txt", paths)
        files[("warm", "mix")] = write_pool(workdir / "warm-mix.txt", warm_mix)
        files[("cold", "mix")] = write_pool(workdir / "cold-mix.txt", cold_mix)
        keep = bh.RESULTS / "bench_catalog-pool.txt"
        bh.RESULTS.mkdir(exist_ok=True)
        shutil.copy(files[("warm", "mix")], keep)
        sizes = {n: ", ".join(f"{k} {len(v)}" for k, v in pools.items())
                 for n, pools in (("warm", warm_pools), ("cold", cold_pools))}
        say(f"pools: warm mix {len(warm_mix)} paths ({sizes['warm']}); "
            f"cold {sizes['cold']} distinct, "
            f"cold mix {len(cold_mix)}; warm mix pool kept in {keep}")

        env = bh.base_env() | environ | {
            "PROPMUBI_HTTP__ACCESS_LOG": "false",
            "PROPMUBI_LOGGING__LEVEL": "WARNING",
            "PROPMUBI_RATELIMIT__ENABLED": "false",
        }
        target = bh.Target("catalog", bh.propmubi_command(), env, "/health", "")
        probe = RedisProbe(redis_url)
        with bh.serving(target, bh.free_port(), workdir) as served:
            base = served.base
            say(f"two web processes on {base} (pids {served.pids})")
            # 1. Every warm-pool path answers 2xx (and this warms both processes' pools).
            answers = check_paths(base, warm_mix, "check of the warm pool")
            bad = [a for a in answers if not 200 <= a[1] < 300]
            # A sample of the cold pools, too (distinct shapes the warm pool may not have).
            sample = random.Random(1).sample(cold_mix, min(1500, len(cold_mix)))
            probe.client.incr(probe.gen_key)
            answers_cold = check_paths(base, sample, "check of a cold-pool sample")
            bad += [a for a in answers_cold if not 200 <= a[1] < 300]
            empty = sum(1 for p, s, b, _ in answers if endpoint_of(p) == "search"
                        and b.startswith(b"{") and json.loads(b).get("items") == [])
            checks["warm_pool_non_2xx"] = len([a for a in answers if not 200 <= a[1] < 300])
            checks["cold_sample_non_2xx"] = len([a for a in answers_cold
                                                 if not 200 <= a[1] < 300])
            checks["warm_pool_empty_searches"] = empty
            checks["non_2xx_examples"] = [
                {"path": p, "status": s, "body": b[:500].decode(errors="replace")}
                for p, s, b, _ in bad[:10]]
            say(f"searches of the warm pool with no hit: {empty} of "
                f"{len(warm_pools['search'])}")
            if bad:
                failures.append(f"{len(bad)} non-2xx answers before load, e.g. "
                                f"{bad[0][1]} GET {bad[0][0]}")

            plan: list[tuple[str, str, int]] = []
            light = [] if not args.light_connections else [
                ("search", args.light_connections), ("mix", args.light_connections)]
            for scenario in ("cold", "warm"):
                if args.only in (scenario, "both"):
                    plan += [(scenario, e, args.connections) for e in (*ENDPOINTS, "mix")]
                    plan += [(scenario, e, c) for e, c in light]
            warmed = False
            for scenario, endpoint, connections in plan:
                if scenario == "warm" and warmed:
                    # cache_ttl (60 s by default) is shorter than the runs together: warm the
                    # run's own pool again right before it (quick: ~1 s when mostly hits).
                    check_paths(base, Path(files[(scenario, endpoint)]).read_text().split(),
                                f"re-warm of the {endpoint} pool", 16)
                if scenario == "warm" and not warmed:
                    # The cold runs bumped the generation: warm every pool path again, twice
                    # (the second pass must be all hits).
                    check_paths(base, warm_mix, "warm-up pass over the warm pool", 16)
                    before = probe.calls()
                    check_paths(base, warm_mix, "second pass (should be all hits)", 16)
                    after = probe.calls()
                    checks["second_pass_misses"] = after["set"] - before["set"]
                    warmed = True
                mode = "seq" if scenario == "cold" else "random"
                label = scenario if connections == args.connections else \
                    f"{scenario}-c{connections}"
                r, extra = measure(label, endpoint, base, files[(scenario, endpoint)], mode,
                                   args, connections, served.pids, backends, probe)
                results.append((r, extra))
                if r.non_2xx or r.socket_errors:
                    failures.append(f"{scenario} {endpoint}: {r.non_2xx} non-2xx, "
                                    f"{r.socket_errors} socket errors")
            if any(r.non_2xx for r, _ in results):
                # Find the culprits: replay the pools whose runs had non-2xx answers.
                for r, _ in results:
                    if r.non_2xx:
                        probe.client.incr(probe.gen_key)
                        replay = check_paths(
                            base, Path(files[(r.target.split("-")[0], r.route)]
                                       ).read_text().split()[:5000],
                            f"replay of {r.target} {r.route}")
                        checks.setdefault("replay_non_2xx_examples", []).extend(
                            {"path": p, "status": s, "body": b[:500].decode(errors="replace")}
                            for p, s, b, _ in replay if not 200 <= s < 300)
            if args.explain:
                say("timing warm-pool search/suggest/feed shapes alone, cache bypassed ...")
                slow = [*explain_slowest(environ, base, warm_pools["search"][:300], probe,
                                         args.explain),
                        *explain_slowest(environ, base, warm_pools["suggest"][:150], probe, 2),
                        *explain_slowest(environ, base, sorted(set(warm_pools["feed"])), probe,
                                         1)]
    except KeyboardInterrupt:
        say("interrupted; stopping everything")
        return 130
    finally:
        bh.stop_all()
        redis.stop()
        pg.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    by = {(r.target, r.route): (r, e) for r, e in results}
    aims = []

    def aim(label: str, key: tuple[str, str], value: Any, ok: Any, unit: str) -> None:
        if key in by:
            aims.append({"aim": label, "measured": value(by[key][0]), "met": ok(by[key][0]),
                         "unit": unit})

    light_c = args.light_connections
    for sc, limit in (("warm", SEARCH_P95_WARM_MS), ("cold", SEARCH_P95_COLD_MS)):
        aim(f"search p95 < {limit:.0f} ms {sc} (c{args.connections})", (sc, "search"),
            lambda r: r.p95_ms, lambda r, limit=limit: r.p95_ms < limit, "ms")
        aim(f"search p95 < {limit:.0f} ms {sc} (c{light_c})", (f"{sc}-c{light_c}", "search"),
            lambda r: r.p95_ms, lambda r, limit=limit: r.p95_ms < limit, "ms")
    aim(f"mix > {MIX_RPS_WARM:.0f} req/s warm (2 web processes)", ("warm", "mix"),
        lambda r: r.rps, lambda r: r.rps > MIX_RPS_WARM, "req/s")

    print()
    print(f"wrk -t{args.threads} -c{args.connections} -d{args.duration}s, two web processes "
          f"(SO_REUSEPORT), rate limiting off, {os.cpu_count()} CPUs, Python "
          f"{platform.python_version()}, seed scale {args.scale} {data['counts']}; "
          f"load average now {os.getloadavg()}")
    print("per endpoint rows: one wrk run over that endpoint's pool; mix rows: one run over "
          "the mixed pool (search 50%, suggest 20%, feed 20%, detail 10%)")
    print(table(results))
    print("hit ratio: 1 - SETs/GETs in Redis over the run; about +-100 requests in flight at "
          "its start and end blur it by a few %, so cold runs read ~0% (even slightly below)")
    print()
    for key in (("cold", "mix"), ("warm", "mix")):
        if key in by:
            r, e = by[key]
            hit = "" if e["hit_ratio"] is None else f", cache hit ratio {e['hit_ratio']:.1%}"
            print(f"mixed total, {key[0]}: {r.rps:.0f} req/s (c{args.connections}{hit}; "
                  f"{r.server_us + r.backend_us:.0f} us CPU/req for servers+PG+Redis: "
                  f"{os.cpu_count() or 1} CPUs fully theirs would allow ~"
                  f"{(os.cpu_count() or 1) * 1e6 / max(1.0, r.server_us + r.backend_us):.0f} "
                  f"req/s)")
    for a in aims:
        print(f"aim: {a['aim']:<42} measured {a['measured']:>8.1f} {a['unit']:<6} "
              f"{'MET' if a['met'] else 'NOT MET'}")
    if slow:
        print()
        print("slowest shapes timed alone, cache bypassed (HTTP round trip; EXPLAIN ANALYZE "
              "execution time of each statement; plans in the JSON):")
        for s in slow:
            sql_ms = ", ".join(f"{st['execution_ms']:.1f}" for st in s["statements"]
                               if st.get("execution_ms") is not None)
            print(f"  {s['ms_alone']:>7.1f} ms  [SQL {sql_ms} ms]  {s['path']}"
                  + (f"  ({s['error']})" if s.get("error") else ""))
    if failures:
        print()
        for f in failures:
            print(f"FAILURE: {f}")
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    document = {
        "when": stamp, "propmubi": __version__, "python": platform.python_version(),
        "cpus": os.cpu_count(), "machine": platform.machine(), "tool": "wrk",
        "threads": args.threads, "connections": args.connections, "duration": args.duration,
        "scale": args.scale, "counts": data["counts"], "seed_seconds": data["seed_seconds"],
        "load_average": os.getloadavg(), "mix": MIX, "pool": args.pool,
        "cold_method": f"distinct paths walked in order + global cache generation bumped every "
                       f"{BUMP_EVERY * 1000:.0f} ms",
        "results": [bh._as_json(r) | e for r, e in results],
        "aims": aims, "checks": checks, "failures": failures, "slow_search_shapes": slow,
        "raw": {f"{r.target} {r.route}": r.raw for r, _ in results},
    }
    for path in (bh.RESULTS / f"bench_catalog-{stamp}.json",
                 bh.RESULTS / "bench_catalog-latest.json"):
        path.write_text(json.dumps(document, indent=2, default=str))
    say(f"results written to {bh.RESULTS / f'bench_catalog-{stamp}.json'}")
    return 1 if failures else 0


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        sys.exit(main())
