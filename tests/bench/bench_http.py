"""HTTP benchmark: Propmubi's full stack against a bare aiohttp app, on this machine.

    .venv/bin/python tests/bench/bench_http.py      (or: make bench)

It starts its own embedded PostgreSQL and Redis in a temporary folder, migrates a database with
the reference plugin and seeds notes, then for each target starts TWO server processes sharing
one loopback port (SO_REUSEPORT) and drives them with ``wrk -t2 -c64 -d10s --latency``. Without
wrk it stops at once with a message (``make bench`` installs it: scripts/bench-system-deps);
``--load-tool python`` asks for the time-bounded Python load generator instead, which is itself
the bottleneck (compare ratios only). Measured:

- ``GET /health``: Propmubi's full middleware stack vs the bare app;
- the DB route, ``GET /api/v1/reference/notes?limit=20`` vs the bare app's ``/notes?limit=20``
  (same SELECT, same pool size, same JSON), with Propmubi's rate limiting on (a limit high
  enough never to refuse, so every request pays for the Redis check) and off; and with the
  default limits, where most requests are refused with 429 (reported for what it is).

Before loading, it checks that both apps answer byte-identical bodies. It prints a table
(req/s, p50, p95, p99, non-2xx, ratio full/bare) and writes it as JSON to
``tests/bench/results/`` (git-ignored). Every process it starts is stopped at the end, also on
Ctrl-C or SIGTERM; everything listens on 127.0.0.1 or unix sockets only.

The aim: the full stack keeps at least 80% of bare aiohttp's throughput.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import datetime as dt
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
if str(ROOT) not in sys.path:  # run as a script: make `tests.refplugin` importable
    sys.path.insert(0, str(ROOT))

import attrs  # noqa: E402

from propmubi import __version__, migrate  # noqa: E402
from propmubi.config import load_config  # noqa: E402
from propmubi.embedded import EmbeddedPostgres, EmbeddedRedis  # noqa: E402
from propmubi.lifecycle import open_services  # noqa: E402
from propmubi.plugins import load_plugins  # noqa: E402

RESULTS = HERE / "results"
HOST = "127.0.0.1"
FULL_HEALTH = "/health"
FULL_NOTES = "/api/v1/reference/notes?limit=20"
BARE_HEALTH = "/health"
BARE_NOTES = "/notes?limit=20"
NEVER_LIMITED = "1000000000/minute"  # rate limiting on, but no request is ever refused
TARGET_RATIO = 0.80
WRK_MISSING = ("wrk is not installed: `make bench` installs it (scripts/bench-system-deps, "
               "as root), or apt-get install wrk; `--load-tool python` measures with the much "
               "slower Python load generator instead")


def require_wrk() -> str:
    """wrk's path; exits with :data:`WRK_MISSING` when it is not installed (no silent
    fallback: a slower load generator would measure itself, not the servers)."""
    found = shutil.which("wrk")
    if found is None:
        raise SystemExit(f"bench: {WRK_MISSING}")
    return found


def say(message: str) -> None:
    print(f"[bench] {message}", flush=True)


# -------------------------------------------------------------------------------------------------
# Processes: every child is tracked, dies with us (PR_SET_PDEATHSIG), and is stopped at exit.
# -------------------------------------------------------------------------------------------------

_CHILDREN: list[subprocess.Popen[bytes]] = []


def _die_with_parent() -> None:
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG


def spawn(args: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None,
          stdout: Any = subprocess.DEVNULL) -> subprocess.Popen[bytes]:
    # A session of its own: Ctrl-C reaches only us, and we stop the children in order.
    proc = subprocess.Popen(args, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=stdout,
                            stderr=subprocess.STDOUT, start_new_session=True,
                            preexec_fn=_die_with_parent)
    _CHILDREN.append(proc)
    return proc


def stop(procs: list[subprocess.Popen[bytes]], grace: float = 15.0) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for proc in procs:
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc in _CHILDREN:
            _CHILDREN.remove(proc)


def stop_all() -> None:
    stop(list(_CHILDREN), grace=5.0)


def _sigterm(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # unwinds through every `finally`, like Ctrl-C


# -------------------------------------------------------------------------------------------------
# Servers under test
# -------------------------------------------------------------------------------------------------


@attrs.define
class Target:
    name: str
    command: list[str]
    env: dict[str, str]
    health: str
    notes: str


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def listening(pid: int, port: int) -> bool:
    import psutil

    try:
        conns = psutil.Process(pid).net_connections(kind="tcp")
    except psutil.Error:
        return False
    return any(c.status == psutil.CONN_LISTEN and c.laddr.port == port for c in conns)


def get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@attrs.define
class Served:
    base: str
    pids: list[int]


@contextlib.contextmanager
def serving(target: Target, port: int, workdir: Path) -> Iterator[Served]:
    """Two processes of ``target`` on one port; yields its URL and pids once both listen."""
    logs = []
    procs = []
    try:
        for n in range(2):
            log = open(workdir / f"{target.name}-{n}.log", "wb")
            logs.append(log)
            procs.append(spawn([*target.command, "--port", str(port)], env=target.env,
                               cwd=workdir, stdout=log))
        deadline = time.monotonic() + 60
        while not all(listening(p.pid, port) for p in procs):
            for proc, log in zip(procs, logs, strict=True):
                if proc.poll() is not None:
                    raise RuntimeError(f"{target.name} exited with {proc.returncode}:\n"
                                       f"{Path(log.name).read_text(errors='replace')[-3000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{target.name} did not listen within 60 s")
            time.sleep(0.1)
        base = f"http://{HOST}:{port}"
        status, body = get(base + target.health)
        if status != 200:
            raise RuntimeError(f"{target.name} {target.health} answered {status}: {body[:300]!r}")
        yield Served(base, [p.pid for p in procs])
    finally:
        stop(procs)
        for log in logs:
            log.close()


# -------------------------------------------------------------------------------------------------
# Load generation
# -------------------------------------------------------------------------------------------------


@attrs.define
class Result:
    target: str
    route: str
    requests: int
    seconds: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    non_2xx: int
    socket_errors: int
    tool: str
    # CPU seconds used during the measured run by the two server processes, and by PostgreSQL
    # and Redis together: unlike req/s, CPU per request barely moves with the machine's load.
    server_cpu: float = 0.0
    backend_cpu: float = 0.0
    raw: str = attrs.field(default="", repr=False)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def server_us(self) -> float:
        """Server CPU microseconds per request (both processes)."""
        return self.server_cpu / self.requests * 1e6 if self.requests else 0.0

    @property
    def backend_us(self) -> float:
        """PostgreSQL + Redis CPU microseconds per request."""
        return self.backend_cpu / self.requests * 1e6 if self.requests else 0.0


def run_wrk(url: str, duration: int, threads: int, connections: int, *,
            script: Path = HERE / "report.lua", script_args: Sequence[str] = (),
            headers: dict[str, str] | None = None, extra: Sequence[str] = (),
            env: dict[str, str] | None = None) -> dict[str, Any]:
    """One bounded wrk run; the JSON that ``report.lua`` prints (plus wrk's ``raw`` text).

    ``script`` may be another Lua script that ends by loading ``report.lua``; ``script_args``
    go after ``--``; ``extra`` are more wrk options (``--timeout 10s``).
    """
    args = [require_wrk(), f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency",
            *extra,
            "-s", str(script)]
    for name, value in (headers or {}).items():
        args += ["-H", f"{name}: {value}"]
    args.append(url)
    if script_args:
        args += ["--", *script_args]
    proc = spawn(args, env=env, stdout=subprocess.PIPE)
    try:
        out, _ = proc.communicate(timeout=duration + 60)  # wrk stops by itself after -d
    finally:
        stop([proc])
    text = out.decode(errors="replace")
    match = re.search(r"BENCH-JSON (\{.*\})", text)
    if proc.returncode != 0 or not match:
        raise RuntimeError(f"wrk failed ({proc.returncode}):\n{text}")
    data = json.loads(match[1])
    data["raw"] = text
    return data


def run_python_load(url: str, duration: int, threads: int, connections: int) -> dict[str, Any]:
    """The fallback when wrk is missing: ``threads`` processes of an aiohttp client."""
    per = max(1, connections // threads)
    procs = [spawn([sys.executable, __file__, "--_load", url, str(duration), str(per)],
                   stdout=subprocess.PIPE) for _ in range(threads)]
    parts = []
    try:
        for proc in procs:
            out, _ = proc.communicate(timeout=duration + 60)
            parts.append(json.loads(out.decode().strip().splitlines()[-1]))
    finally:
        stop(procs)
    latencies = sorted(v for p in parts for v in p["latencies_us"])

    def pct(q: float) -> int:
        return latencies[min(len(latencies) - 1, int(q / 100 * len(latencies)))] if latencies else 0

    return {"requests": sum(p["requests"] for p in parts),
            "duration_us": max(p["duration_us"] for p in parts),
            "p50_us": pct(50), "p95_us": pct(95), "p99_us": pct(99),
            "max_us": latencies[-1] if latencies else 0,
            "status_errors": sum(p["status_errors"] for p in parts),
            "connect_errors": 0, "read_errors": sum(p["errors"] for p in parts),
            "write_errors": 0, "timeouts": 0, "raw": "python load generator"}


def _load_main(url: str, duration: float, connections: int) -> None:
    import aiohttp

    async def main() -> dict[str, Any]:
        latencies: list[int] = []
        counts = {"status_errors": 0, "errors": 0}
        deadline = time.perf_counter() + duration
        connector = aiohttp.TCPConnector(limit=connections)
        async with aiohttp.ClientSession(connector=connector) as session:
            async def worker() -> None:
                while time.perf_counter() < deadline:
                    started = time.perf_counter()
                    try:
                        async with session.get(url) as resp:
                            await resp.read()
                            if resp.status >= 400:
                                counts["status_errors"] += 1
                    except (aiohttp.ClientError, OSError):
                        counts["errors"] += 1
                        continue
                    latencies.append(int((time.perf_counter() - started) * 1e6))

            began = time.perf_counter()
            async with asyncio.timeout(duration + 30):
                await asyncio.gather(*(worker() for _ in range(connections)))
            elapsed = time.perf_counter() - began
        return {"requests": len(latencies),
                "duration_us": int(elapsed * 1e6), "latencies_us": latencies, **counts}

    print(json.dumps(asyncio.run(main())))


def measure(tool: str, target: str, route: str, url: str, args: argparse.Namespace,
            servers: list[int], backends: list[int]) -> Result:
    runner = run_wrk if tool == "wrk" else run_python_load
    if args.warmup:
        runner(url, args.warmup, args.threads, args.connections)
    server_before, backend_before = _cpu(servers), _cpu(backends)
    data = runner(url, args.duration, args.threads, args.connections)
    server_after, backend_after = _cpu(servers), _cpu(backends)
    result = Result(
        target=target, route=route, requests=data["requests"],
        seconds=data["duration_us"] / 1e6, p50_ms=data["p50_us"] / 1000,
        p95_ms=data["p95_us"] / 1000, p99_ms=data["p99_us"] / 1000,
        max_ms=data["max_us"] / 1000, non_2xx=data["status_errors"],
        socket_errors=(data["connect_errors"] + data["read_errors"] + data["write_errors"]
                       + data["timeouts"]),
        tool=tool, server_cpu=_delta(server_before, server_after),
        backend_cpu=_delta(backend_before, backend_after), raw=data.get("raw", ""))
    say(f"{target:<34} {route:<6} {result.rps:>9.0f} req/s  p99 {result.p99_ms:.1f} ms  "
        f"server CPU {result.server_us:.0f} us/req"
        + (f"  non-2xx {result.non_2xx}" if result.non_2xx else ""))
    return result


def _cpu(pids: list[int]) -> dict[int, float]:
    """User + system CPU seconds of each of these processes and of their children (PostgreSQL's
    backends come and go as pools grow: a process is counted from when it is first seen)."""
    import psutil

    out: dict[int, float] = {}
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            proc = psutil.Process(pid)
            for each in [proc, *proc.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):
                    times = each.cpu_times()
                    out[each.pid] = times.user + times.system
    return out


def _delta(before: dict[int, float], after: dict[int, float]) -> float:
    return sum(value - before.get(pid, 0.0) for pid, value in after.items())


# -------------------------------------------------------------------------------------------------
# The run
# -------------------------------------------------------------------------------------------------


def prepare_database(pg: EmbeddedPostgres, redis_url: str, notes: int) -> str:
    import tests.refplugin.store as store

    url = pg.createdb("propmubi_bench")
    config = load_config(environ={"PROPMUBI_DATABASE__URL": url,
                                  "PROPMUBI_REDIS__URL": redis_url,
                                  "PROPMUBI_PLUGINS__MODULES": "tests.refplugin"},
                         use_default_path=False)
    plugins = load_plugins(config)

    async def run() -> int:
        await migrate.up(url, plugins)
        async with open_services(config, plugins, lifecycle=False) as services:
            await store.seed(services.db, notes)
            await services.db.execute("ANALYZE reference_notes")
            return await services.db.fetchval("SELECT count(*) FROM reference_notes")

    count = asyncio.run(run())
    say(f"database migrated; {count} notes")
    return url


def propmubi_command() -> list[str]:
    script = Path(sys.executable).with_name("propmubi")
    base = [str(script)] if script.exists() else [sys.executable, "-m", "propmubi"]
    return [*base, "serve", "--reuse-port", "--host", HOST]


def base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("PROPMUBI_") and k not in {"NOTIFY_SOCKET", "WATCHDOG_USEC"}}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    return env


def propmubi_target(name: str, db_url: str, redis_url: str, rate_limit: str | None
                    ) -> Target:
    env = base_env() | {
        "PROPMUBI_DATABASE__URL": db_url,
        "PROPMUBI_REDIS__URL": redis_url,
        "PROPMUBI_REDIS__KEY_PREFIX": f"bench-{name}:",
        "PROPMUBI_PLUGINS__MODULES": "tests.refplugin",
        "PROPMUBI_HTTP__ACCESS_LOG": "false",
        "PROPMUBI_LOGGING__LEVEL": "WARNING",
        "PROPMUBI_RATELIMIT__ENABLED": "false" if rate_limit is None else "true",
    }
    if rate_limit not in (None, "default"):
        env["PROPMUBI_RATELIMIT__PER_IP"] = rate_limit
    return Target(name, propmubi_command(), env, FULL_HEALTH, FULL_NOTES)


def check_same_bodies(bare: Target, bare_server: Served, full: Target, full_server: Served
                      ) -> bool:
    """Both apps must answer the same bytes, or the comparison means nothing."""
    same = True
    for bare_path, full_path in ((bare.health, full.health), (bare.notes, full.notes)):
        b_status, b_body = get(bare_server.base + bare_path)
        f_status, f_body = get(full_server.base + full_path)
        if (b_status, b_body) != (f_status, f_body):
            same = False
            say(f"WARNING: bodies differ for {full_path}: bare {b_status} {b_body[:120]!r} "
                f"vs full {f_status} {f_body[:120]!r}")
    return same


def table(results: list[Result], ratios: dict[str, tuple[float, float]]) -> str:
    head = (f"{'target':<34} {'route':<6} {'req/s':>8} {'p50 ms':>7} {'p95 ms':>7} "
            f"{'p99 ms':>7} {'non-2xx':>8} {'vs bare':>7} {'srv CPU us/req':>14} "
            f"{'pg+redis us/req':>15}")
    lines = [head, "-" * len(head)]
    bare = {r.route: r.rps for r in results if r.target == BARE}
    for r in results:
        ratio = f"{r.rps / bare[r.route]:.0%}" if bare.get(r.route) else ""
        lines.append(f"{r.target:<34} {r.route:<6} {r.rps:>8.0f} {r.p50_ms:>7.2f} "
                     f"{r.p95_ms:>7.2f} {r.p99_ms:>7.2f} {r.non_2xx:>8} {ratio:>7} "
                     f"{r.server_us:>14.0f} {r.backend_us:>15.0f}")
    lines.append("")
    lines.append(f"{'ratio full-stack/bare':<36} {'req/s':>7} {'by CPU/req':>11}  (aim: "
                 f">= {TARGET_RATIO:.0%})")
    for key, (measured, by_cpu) in ratios.items():
        verdict = "meets the aim" if measured >= TARGET_RATIO else "BELOW the aim"
        lines.append(f"{key:<36} {measured:>7.1%} {by_cpu:>11.1%}  {verdict}")
    lines.append("(by CPU/req: bare's CPU per request over the full stack's, servers plus "
                 "PostgreSQL and Redis; the throughput ratio a dedicated machine would show "
                 "when CPU is the bottleneck)")
    return "\n".join(lines)


BARE = "bare aiohttp"
RL_ON = "propmubi (rate limit on)"
RL_OFF = "propmubi (rate limit off)"
RL_DEFAULT = "propmubi (default limits: 429s)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=10, help="seconds per measured run")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of warm-up per run")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--notes", type=int, default=1000, help="notes to seed")
    parser.add_argument("--rounds", type=int, default=1,
                        help="repeat every run, interleaved, and keep each one's median "
                             "(steadier ratios on a busy machine)")
    parser.add_argument("--skip-default-limits", action="store_true",
                        help="skip the run with the default (429-ing) rate limits")
    parser.add_argument("--load-tool", choices=["wrk", "python"], default="wrk",
                        help="wrk (default; required unless python is asked for), or the "
                             "slower Python load generator")
    args = parser.parse_args(argv)

    tool = args.load_tool
    if tool == "wrk" and not shutil.which("wrk"):
        parser.exit(2, f"{parser.prog}: {WRK_MISSING}\n")
    if tool != "wrk":
        say("--load-tool python: the Python load generator is itself the bottleneck; compare "
            "ratios, not absolute numbers")
    signal.signal(signal.SIGTERM, _sigterm)
    # Even when started in the background (SIGINT ignored), Ctrl-C or kill -INT cleans up.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    workdir = Path(tempfile.mkdtemp(prefix="propmubi-bench-"))
    pg = EmbeddedPostgres(workdir / "pg", fast=True)
    redis = EmbeddedRedis(workdir / "redis", persistent=False)
    runs: dict[tuple[str, str], list[Result]] = {}
    try:
        say(f"embedded PostgreSQL + Redis in {workdir}")
        pg.start()
        redis_url = redis.start()
        assert pg.proc is not None and redis.proc is not None
        backends = [pg.proc.pid, redis.proc.pid]
        db_url = prepare_database(pg, redis_url, args.notes)
        targets = {
            BARE: Target("bare", [sys.executable, str(HERE / "bare_app.py"), "--host", HOST,
                                  "--dsn", db_url, "--pool-min", "2", "--pool-max", "16"],
                         base_env(), BARE_HEALTH, BARE_NOTES),
            RL_ON: propmubi_target("full-rl", db_url, redis_url, NEVER_LIMITED),
            RL_OFF: propmubi_target("full-norl", db_url, redis_url, None),
        }
        if not args.skip_default_limits:
            targets[RL_DEFAULT] = propmubi_target("full-rl-default", db_url, redis_url,
                                                  "default")
        plan = [(BARE, "health"), (RL_ON, "health"), (BARE, "db"), (RL_ON, "db"),
                (RL_OFF, "db")]
        if RL_DEFAULT in targets:
            plan.append((RL_DEFAULT, "db"))
        with contextlib.ExitStack() as stack:
            # Every target stays up for the whole run, so that rounds can interleave; an idle
            # server costs nothing.
            served = {label: stack.enter_context(serving(target, free_port(), workdir))
                      for label, target in targets.items()}
            same = check_same_bodies(targets[BARE], served[BARE], targets[RL_OFF],
                                     served[RL_OFF])
            say("bodies identical" if same else "bodies DIFFER (see above)")
            for n in range(args.rounds):
                if args.rounds > 1:
                    say(f"round {n + 1} of {args.rounds}")
                for label, route in plan:
                    target, server = targets[label], served[label]
                    path = target.health if route == "health" else target.notes
                    runs.setdefault((label, route), []).append(
                        measure(tool, label, route, server.base + path, args, server.pids,
                                backends))
    except KeyboardInterrupt:
        say("interrupted; stopping everything")
        return 130
    finally:
        stop_all()
        redis.stop()
        pg.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    results = [sorted(rs, key=lambda r: r.rps)[len(rs) // 2] for rs in runs.values()]
    by = {(r.target, r.route): r for r in results}

    def ratio(full: str, route: str) -> tuple[float, float]:
        f, b = by[(full, route)], by[(BARE, route)]
        return f.rps / b.rps, (b.server_us + b.backend_us) / (f.server_us + f.backend_us)

    ratios = {
        "GET /health": ratio(RL_ON, "health"),
        "DB route, rate limit on": ratio(RL_ON, "db"),
        "DB route, rate limit off": ratio(RL_OFF, "db"),
    }
    print()
    print(f"wrk -t{args.threads} -c{args.connections} -d{args.duration}s --latency, two "
          f"processes per target (SO_REUSEPORT), {os.cpu_count()} CPUs, Python "
          f"{platform.python_version()}, load tool: {tool}"
          + (f", median of {args.rounds} rounds" if args.rounds > 1 else ""))
    print(f"DB route: full {FULL_NOTES} vs bare {BARE_NOTES}; {args.notes} notes; "
          f"identical bodies: {same}")
    print(table(results, ratios))
    RESULTS.mkdir(exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    document = {
        "when": stamp, "propmubi": __version__, "python": platform.python_version(),
        "cpus": os.cpu_count(), "machine": platform.machine(), "tool": tool,
        "threads": args.threads, "connections": args.connections, "duration": args.duration,
        "rounds": args.rounds, "load_average": os.getloadavg(), "identical_bodies": same,
        "results": [_as_json(r) for r in results],
        "all_runs": [_as_json(r) for rs in runs.values() for r in rs],
        "ratios": {k: {"rps": v[0], "by_cpu": v[1]} for k, v in ratios.items()},
        "aim": TARGET_RATIO,
        "raw": {f"{r.target} {r.route}": r.raw for r in results},
    }
    for path in (RESULTS / f"bench-{stamp}.json", RESULTS / "latest.json"):
        path.write_text(json.dumps(document, indent=2))
    say(f"results written to {RESULTS / f'bench-{stamp}.json'}")
    return 0


def _as_json(r: Result) -> dict[str, Any]:
    return attrs.asdict(r, filter=lambda a, _: a.name != "raw") | {
        "rps": r.rps, "server_cpu_us_per_request": r.server_us,
        "backend_cpu_us_per_request": r.backend_us}


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--_load":
        _load_main(sys.argv[2], float(sys.argv[3]), int(sys.argv[4]))
        sys.exit(0)
    sys.exit(main())
