"""Auth benchmark: access-token verification and refresh-token rotation, on this machine.

    .venv/bin/python tests/bench/bench_auth.py      (or: make bench-auth)

It starts its own embedded PostgreSQL and Redis in a temporary folder, migrates a database with
the ``auth`` plugin, and starts TWO ``propmubi serve --reuse-port`` processes on one loopback
port (rate limiting off: the refresh route's own ``60/minute`` per IP would refuse almost every
request of a load test from one address). Both processes share one signing key and OTP secret,
as a production deployment does. Then:

- one user signs in through the real OTP flow (``POST /auth/otp``; the console SMS provider
  logs the code, read back from the servers' logs; ``POST /auth/otp/verify``), which checks
  the stack end to end and gives the access token for the first scenario;
- ``--tokens`` sessions (one refresh token each, spread over ``--users`` users) are created
  directly in the database in bulk (only SHA-256 hashes are stored, as the service does), and
  the tokens written to a file, one per line.

Measured with ``wrk -t2 -c64 -d10s --latency`` (the same settings as bench_http.py):

(a) ``GET /api/v1/me`` with a valid ``Authorization: Bearer`` access token: the ES256
    verification in the middleware, the role check and two small SELECTs; and ``GET /health``
    on the same processes in the same run, as the baseline;
(b) ``POST /api/v1/auth/refresh``: each refresh token works once, so a wrk Lua script gives
    every request a fresh one, each wrk thread reading its own share of the token file; a
    refresh is one transaction (rotate, touch the session, roles, insert the new token) plus
    an ES256 signature. Warm-up uses its own tokens. After the run, the database must show
    exactly as many exchanged tokens as 2xx answers, and the pool must not have run dry.

It prints req/s, p50/p95/p99 and server CPU per request, and writes JSON to
``tests/bench/results/`` (git-ignored). Process handling is bench_http.py's (imported): every
child is stopped at the end, also on Ctrl-C or SIGTERM, and dies with this process; everything
listens on 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import platform
import re
import shutil
import signal
import sys
import tempfile
import time
import urllib.error
import urllib.request
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
from propmubi.ids import uuid7  # noqa: E402
from propmubi.lifecycle import open_services  # noqa: E402
from propmubi.plugins import load_plugins  # noqa: E402
from propmubi_plugins.auth.settings import generate_signing_key  # noqa: E402
from propmubi_plugins.auth.tokens import hash_refresh_token, new_refresh_token  # noqa: E402

say = bh.say
HOST = bh.HOST
HEALTH = "/health"
ME = "/api/v1/me"
REFRESH = "/api/v1/auth/refresh"
OTP_PHONE = "+919812345678"
SEEDED_PHONES = "+9170"  # the bulk-created users' numbers start so
BATCH = 5000
WARMUP_2XX: dict[str, int] = {}  # 2xx answers of each route's warm-up

# Each wrk thread takes every n-th line of the token file (n = threads), so no token is sent
# twice; past the end of its share a thread sends a dead token (a 401, counted as non-2xx).
REFRESH_LUA = """
local threads = 0
function setup(thread)
  thread:set("thread_id", threads)
  threads = threads + 1
end

function init(args)
  local path, count = args[1], tonumber(args[2])
  tokens, next_token = {}, 0
  local n = 0
  for line in io.lines(path) do
    if n %% count == thread_id then tokens[#tokens + 1] = line end
    n = n + 1
  end
end

function request()
  next_token = next_token + 1
  local token = tokens[next_token] or "pool-exhausted"
  return wrk.format("POST", "%(path)s", {["Content-Type"] = "application/json"},
                    '{"refresh_token":"' .. token .. '"}')
end

dofile("%(report)s")
"""


# -------------------------------------------------------------------------------------------------
# Database and servers
# -------------------------------------------------------------------------------------------------


def auth_environ(db_url: str, redis_url: str, signing_key: str, otp_secret: str
                 ) -> dict[str, str]:
    return {
        "PROPMUBI_DATABASE__URL": db_url,
        "PROPMUBI_REDIS__URL": redis_url,
        "PROPMUBI_PLUGINS__ENABLED": '["auth"]',
        "PROPMUBI_PLUGINS__AUTH__SIGNING_KEY": signing_key,
        "PROPMUBI_PLUGINS__AUTH__OTP_SECRET": otp_secret,
        "PROPMUBI_PLUGINS__AUTH__ACCESS_TTL": "3600",
    }


async def _seed(config: Any, tokens: int, users: int) -> list[str]:
    """``tokens`` live sessions with one refresh token each, over ``users`` buyers; the
    tokens (in the clear: only this benchmark ever sees them)."""
    plugins = load_plugins(config)
    await migrate.up(config.database.url, plugins)
    user_ids = [uuid7() for _ in range(users)]
    clear = [new_refresh_token() for _ in range(tokens)]
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    async with open_services(config, plugins, lifecycle=False) as services:
        db = services.db
        for start in range(0, users, BATCH):
            ids = user_ids[start:start + BATCH]
            phones = [f"{SEEDED_PHONES}{start + n:08d}" for n in range(len(ids))]
            await db.execute("INSERT INTO auth_users (id, phone) "
                             "SELECT * FROM unnest(%s::uuid[], %s::text[])", (ids, phones))
            await db.execute("INSERT INTO auth_user_roles (user_id, role) "
                             "SELECT unnest(%s::uuid[]), 'buyer'", (ids,))
        for start in range(0, tokens, BATCH):
            chunk = clear[start:start + BATCH]
            owners = [user_ids[(start + n) % users] for n in range(len(chunk))]
            sessions = [uuid7() for _ in chunk]
            await db.execute(
                "INSERT INTO auth_sessions (id, user_id, device) "
                "SELECT s, u, 'bench' FROM unnest(%s::uuid[], %s::uuid[]) AS t(s, u)",
                (sessions, owners))
            await db.execute(
                "INSERT INTO auth_refresh_tokens (id, family_id, user_id, token_hash, "
                "expires_at) SELECT i, f, u, h, %s "
                "FROM unnest(%s::uuid[], %s::uuid[], %s::uuid[], %s::bytea[]) AS t(i, f, u, h)",
                (expires, [uuid7() for _ in chunk], sessions, owners,
                 [hash_refresh_token(t) for t in chunk]))
        await db.execute("ANALYZE")
    return clear


def prepare_database(pg: EmbeddedPostgres, redis_url: str, signing_key: str, otp_secret: str,
                     tokens: int, users: int) -> tuple[str, list[str]]:
    url = pg.createdb("propmubi_bench_auth")
    config = load_config(environ=auth_environ(url, redis_url, signing_key, otp_secret),
                         use_default_path=False)
    started = time.monotonic()
    clear = asyncio.run(_seed(config, tokens, users))
    say(f"database migrated; {tokens} sessions with a refresh token over {users} users "
        f"({time.monotonic() - started:.1f} s)")
    return url, clear


def auth_target(db_url: str, redis_url: str, signing_key: str, otp_secret: str) -> bh.Target:
    env = bh.base_env() | auth_environ(db_url, redis_url, signing_key, otp_secret) | {
        "PROPMUBI_REDIS__KEY_PREFIX": "bench-auth:",
        "PROPMUBI_HTTP__ACCESS_LOG": "false",
        # WARNING keeps the console SMS provider's line (the OTP) and little else.
        "PROPMUBI_LOGGING__LEVEL": "WARNING",
        "PROPMUBI_LOGGING__JSON": "false",
        "PROPMUBI_RATELIMIT__ENABLED": "false",
    }
    return bh.Target("auth", bh.propmubi_command(), env, HEALTH, ME)


def post(url: str, body: dict[str, Any], timeout: float = 10.0) -> tuple[int, Any]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            data = resp.read()
            return resp.status, json.loads(data) if data else None
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def get_json(url: str, token: str) -> tuple[int, Any]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def otp_sign_in(base: str, workdir: Path) -> dict[str, Any]:
    """The real flow: request a code, read it from the console SMS line in the servers' logs
    (either process may have served the request), verify it."""
    pattern = re.compile(re.escape(f"console SMS to {OTP_PHONE}: ") + r"(\d{6}) ")
    seen = {log: len(pattern.findall(log.read_text(errors="replace")))
            for log in workdir.glob("auth-*.log")}
    status, challenge = post(base + "/api/v1/auth/otp", {"phone": OTP_PHONE})
    deadline = time.monotonic() + 10
    if status != 202:
        raise RuntimeError(f"POST /auth/otp answered {status}: {challenge}")
    code = None
    while code is None:
        for log in sorted(workdir.glob("auth-*.log")):
            found = pattern.findall(log.read_text(errors="replace"))
            if len(found) > seen.get(log, 0):
                code = found[-1]
        if code is None:
            if time.monotonic() > deadline:
                raise RuntimeError("no console SMS line with the code in the servers' logs")
            time.sleep(0.05)
    status, tokens = post(base + "/api/v1/auth/otp/verify",
                          {"challenge_id": challenge["challenge_id"], "code": code,
                           "device": "bench"})
    if status != 200:
        raise RuntimeError(f"POST /auth/otp/verify answered {status}: {tokens}")
    return tokens


def sanity_checks(base: str, signed_in: dict[str, Any], spare: str) -> None:
    """What the load will do, once by hand: /me answers the signed-in user, a refresh token
    works once, and presenting it again is refused."""
    status, me = get_json(base + ME, signed_in["access_token"])
    if status != 200 or me["id"] != signed_in["user_id"]:
        raise RuntimeError(f"GET {ME} answered {status}: {me}")
    for token in (signed_in["refresh_token"], spare):
        status, body = post(base + REFRESH, {"refresh_token": token})
        if status != 200:
            raise RuntimeError(f"POST {REFRESH} answered {status}: {body}")
        status, body = post(base + REFRESH, {"refresh_token": token})
        if status != 401:
            raise RuntimeError(f"a reused refresh token answered {status}: {body}")
    say("checked: OTP sign-in, /me, one refresh per token, reuse refused")


# -------------------------------------------------------------------------------------------------
# Load
# -------------------------------------------------------------------------------------------------


run_wrk = bh.run_wrk


def measure(label: str, route: str, url: str, args: argparse.Namespace, servers: list[int],
            backends: list[int], *, warmup: dict[str, Any] | None = None,
            **wrk: Any) -> bh.Result:
    """One wrk run (after a warm-up with ``warmup``'s overrides, when asked)."""
    if args.warmup:
        warm = run_wrk(url, args.warmup, args.threads, args.connections,
                       **(wrk | (warmup or {})))
        WARMUP_2XX[route] = warm["requests"] - warm["status_errors"]
    server_before, backend_before = bh._cpu(servers), bh._cpu(backends)
    data = run_wrk(url, args.duration, args.threads, args.connections, **wrk)
    server_after, backend_after = bh._cpu(servers), bh._cpu(backends)
    result = bh.Result(
        target=label, route=route, requests=data["requests"],
        seconds=data["duration_us"] / 1e6, p50_ms=data["p50_us"] / 1000,
        p95_ms=data["p95_us"] / 1000, p99_ms=data["p99_us"] / 1000,
        max_ms=data["max_us"] / 1000, non_2xx=data["status_errors"],
        socket_errors=(data["connect_errors"] + data["read_errors"] + data["write_errors"]
                       + data["timeouts"]),
        tool="wrk", server_cpu=bh._delta(server_before, server_after),
        backend_cpu=bh._delta(backend_before, backend_after), raw=data.get("raw", ""))
    say(f"{label:<30} {result.rps:>8.0f} req/s  p50 {result.p50_ms:.2f} ms  "
        f"p99 {result.p99_ms:.1f} ms  server CPU {result.server_us:.0f} us/req"
        + (f"  non-2xx {result.non_2xx}" if result.non_2xx else ""))
    return result


async def _exchanged(db_url: str, redis_url: str, signing_key: str, otp_secret: str) -> int:
    config = load_config(environ=auth_environ(db_url, redis_url, signing_key, otp_secret),
                         use_default_path=False)
    async with open_services(config, load_plugins(config), lifecycle=False) as services:
        return await services.db.fetchval(
            "SELECT count(*) FROM auth_refresh_tokens t JOIN auth_users u ON u.id = t.user_id "
            "WHERE t.rotated_at IS NOT NULL AND u.phone LIKE %s", (SEEDED_PHONES + "%",))


def table(results: list[bh.Result], baseline: bh.Result) -> str:
    head = (f"{'scenario':<40} {'req/s':>8} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} "
            f"{'non-2xx':>8} {'vs /health':>10} {'srv CPU us/req':>14} {'pg+redis us/req':>15}")
    lines = [head, "-" * len(head)]
    for r in results:
        ratio = f"{r.rps / baseline.rps:.0%}" if baseline.rps else ""
        lines.append(f"{r.target:<40} {r.rps:>8.0f} {r.p50_ms:>7.2f} {r.p95_ms:>7.2f} "
                     f"{r.p99_ms:>7.2f} {r.non_2xx:>8} {ratio:>10} {r.server_us:>14.0f} "
                     f"{r.backend_us:>15.0f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=10, help="seconds per measured run")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of warm-up per run")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--tokens", type=int, default=60000,
                        help="refresh tokens for the measured refresh run (one per request)")
    parser.add_argument("--warmup-tokens", type=int, default=15000,
                        help="refresh tokens for its warm-up")
    parser.add_argument("--users", type=int, default=1000, help="users owning the sessions")
    args = parser.parse_args(argv)
    if not shutil.which("wrk"):
        parser.error("wrk is not installed (apt-get install wrk)")

    signal.signal(signal.SIGTERM, bh._sigterm)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    workdir = Path(tempfile.mkdtemp(prefix="propmubi-bench-auth-"))
    pg = EmbeddedPostgres(workdir / "pg", fast=True)
    redis = EmbeddedRedis(workdir / "redis", persistent=False)
    signing_key = generate_signing_key()
    otp_secret = os.urandom(24).hex()
    results: list[bh.Result] = []
    checks: dict[str, Any] = {}
    try:
        say(f"embedded PostgreSQL + Redis in {workdir}")
        pg.start()
        redis_url = redis.start()
        assert pg.proc is not None and redis.proc is not None
        backends = [pg.proc.pid, redis.proc.pid]
        # One spare token for the sanity check, then the warm-up's, then the measured run's.
        db_url, clear = prepare_database(pg, redis_url, signing_key, otp_secret,
                                         1 + args.warmup_tokens + args.tokens, args.users)
        spare, warm, measured = (clear[0], clear[1:1 + args.warmup_tokens],
                                 clear[1 + args.warmup_tokens:])
        files = {}
        for name, tokens in (("warmup", warm), ("measured", measured)):
            files[name] = workdir / f"refresh-tokens-{name}.txt"
            files[name].write_text("\n".join(tokens) + "\n")
        lua = workdir / "refresh.lua"
        lua.write_text(REFRESH_LUA % {"path": REFRESH, "report": HERE / "report.lua"})
        del clear, warm, measured

        target = auth_target(db_url, redis_url, signing_key, otp_secret)
        with bh.serving(target, bh.free_port(), workdir) as served:
            signed_in = otp_sign_in(served.base, workdir)
            say(f"signed in {OTP_PHONE} through the OTP flow (code read from the server log)")
            sanity_checks(served.base, signed_in, spare)
            # A fresh sign-in (the checks revoked the first session by replaying its token;
            # its access token would still work, but this one is the ordinary case).
            signed_in = otp_sign_in(served.base, workdir)
            bearer = {"Authorization": f"Bearer {signed_in['access_token']}"}

            health = measure("GET /health (baseline)", "health", served.base + HEALTH, args,
                             served.pids, backends)
            me = measure("GET /api/v1/me (Bearer ES256)", "me", served.base + ME, args,
                         served.pids, backends, headers=bearer)
            refresh = measure(
                "POST /api/v1/auth/refresh (rotation)", "refresh", served.base + REFRESH,
                args, served.pids, backends, script=lua,
                script_args=[str(files["measured"]), str(args.threads)],
                warmup={"script_args": [str(files["warmup"]), str(args.threads)]})
            results = [health, me, refresh]
        exchanged = asyncio.run(_exchanged(db_url, redis_url, signing_key, otp_secret))
        ok_refreshes = refresh.requests - refresh.non_2xx
        # Seeded tokens exchanged: the sanity check's spare one, the warm-up's, the run's;
        # plus up to one request per connection in flight when each wrk run stopped (served,
        # but not counted by wrk).
        expected = 1 + WARMUP_2XX.get("refresh", 0) + ok_refreshes
        in_flight = args.connections * (2 if args.warmup else 1)
        checks = {"exchanged_in_database": exchanged, "exchanged_expected": expected,
                  "exchanged_expected_max": expected + in_flight,
                  "refresh_2xx_measured": ok_refreshes,
                  "refresh_2xx_warmup": WARMUP_2XX.get("refresh", 0),
                  "measured_tokens": args.tokens, "warmup_tokens": args.warmup_tokens,
                  "pool_ran_dry": (refresh.requests + args.connections > args.tokens
                                   or WARMUP_2XX.get("refresh", 0) + args.connections
                                   > args.warmup_tokens),
                  "refresh_non_2xx": refresh.non_2xx}
    except KeyboardInterrupt:
        say("interrupted; stopping everything")
        return 130
    finally:
        bh.stop_all()
        redis.stop()
        pg.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    print()
    print(f"wrk -t{args.threads} -c{args.connections} -d{args.duration}s --latency, two "
          f"`propmubi serve` processes (SO_REUSEPORT), rate limiting off, {os.cpu_count()} "
          f"CPUs, Python {platform.python_version()}, load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(table(results, health))
    print(f"refresh: {checks['refresh_2xx_measured']} tokens exchanged in the measured run "
          f"(pool {args.tokens}), {checks['refresh_2xx_warmup']} in the warm-up (pool "
          f"{args.warmup_tokens}); exchanged in the database: "
          f"{checks['exchanged_in_database']} (expected {checks['exchanged_expected']} + up "
          f"to {checks['exchanged_expected_max'] - checks['exchanged_expected']} in flight at "
          f"the ends of the runs); "
          f"a pool ran dry: {checks['pool_ran_dry']}")
    status = 0
    if checks["pool_ran_dry"] or refresh.non_2xx or me.non_2xx or health.non_2xx:
        say("WARNING: non-2xx answers under load (or a token pool ran dry: raise --tokens)")
        status = 1
    if not (checks["exchanged_expected"] <= checks["exchanged_in_database"]
            <= checks["exchanged_expected_max"]):
        say("WARNING: the database does not show one exchange per 2xx refresh")
        status = 1
    results_dir = bh.RESULTS
    results_dir.mkdir(exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    document = {
        "when": stamp, "propmubi": __version__, "python": platform.python_version(),
        "cpus": os.cpu_count(), "machine": platform.machine(), "tool": "wrk",
        "threads": args.threads, "connections": args.connections, "duration": args.duration,
        "warmup": args.warmup, "load_average": os.getloadavg(), "users": args.users,
        "results": [bh._as_json(r) for r in results],
        "ratios_vs_health": {r.route: r.rps / health.rps for r in results if health.rps},
        "checks": checks,
        "raw": {r.route: r.raw for r in results},
    }
    for path in (results_dir / f"bench_auth-{stamp}.json",
                 results_dir / "bench_auth-latest.json"):
        path.write_text(json.dumps(document, indent=2))
    say(f"results written to {results_dir / f'bench_auth-{stamp}.json'}")
    return status


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        sys.exit(main())
