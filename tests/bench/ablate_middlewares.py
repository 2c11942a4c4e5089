"""Where the full stack's per-request cost goes: middlewares removed one at a time.

    .venv/bin/python tests/bench/ablate_middlewares.py [--route health|db] [--duration 5]

A companion of ``bench_http.py`` (same embedded servers, same two processes per target, same
wrk). Each configuration runs ``propmubi serve`` with some middlewares of
``propmubi.web.middlewares.build_middlewares`` left out (by function name), and reports req/s and
the server processes' CPU microseconds per request, which, unlike req/s, hardly moves with the
machine's other load. The difference to the full stack is what a middleware costs. Then it times
the edge middleware's individual operations in-process (``--micro``).

This is a measuring tool only: the served app is otherwise ``create_app``'s.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import signal
import sys
import tempfile
import time
import timeit
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parents[1]), str(HERE)]

import bench_http as bench  # noqa: E402

from propmubi.embedded import EmbeddedPostgres, EmbeddedRedis  # noqa: E402

CONFIGS: list[tuple[str, set[str]]] = [
    ("full stack", set()),
    ("without the edge middleware", {"edge"}),
]


def serve_without(drop: set[str], argv: list[str]) -> int:
    """Run ``propmubi`` with the named middlewares left out of the app."""
    import propmubi.app
    from propmubi.cli import main

    build = propmubi.app.build_middlewares

    def without(*args: object, **kwargs: object) -> list[object]:
        return [m for m in build(*args, **kwargs) if m.__name__ not in drop]  # type: ignore[arg-type]

    propmubi.app.build_middlewares = without  # type: ignore[assignment]
    return main(argv)


def micro() -> None:
    """Time the edge middleware's operations, in microseconds per call."""
    import uuid

    import uvloop
    from multidict import CIMultiDict

    from propmubi.observability import REQUEST_ID
    from propmubi.web import middlewares as mw

    number = 20_000

    def per_call(stmt: object) -> float:
        return min(timeit.repeat(stmt, number=number, repeat=5)) / number * 1e6  # type: ignore[arg-type]

    def headers() -> None:
        h = CIMultiDict({"Content-Type": "application/json"})
        h[mw.REQUEST_ID_HEADER] = "x" * 32
        for name, value in mw.SECURITY_HEADERS.items():
            h.setdefault(name, value)
        h.setdefault("Content-Security-Policy", mw.API_CSP)

    def contextvar() -> None:
        REQUEST_ID.reset(REQUEST_ID.set("x"))

    def metrics() -> None:
        mw.IN_FLIGHT.inc()
        mw.IN_FLIGHT.dec()
        mw.REQUESTS.labels("GET", "/health", 200).inc()
        mw.LATENCY.labels("GET", "/health").observe(0.001)

    async def noop() -> None:
        pass

    async def timeouts() -> float:
        async def once() -> None:
            async with asyncio.timeout(30):
                await noop()

        started = time.perf_counter()
        for _ in range(number):
            await once()
        return (time.perf_counter() - started) / number * 1e6

    async def bare_await() -> float:
        async def once() -> None:
            await noop()

        started = time.perf_counter()
        for _ in range(number):
            await once()
        return (time.perf_counter() - started) / number * 1e6

    rows = [
        ("uuid.uuid4().hex (request id)", per_call(lambda: uuid.uuid4().hex)),
        ("REQUEST_ID contextvar set + reset", per_call(contextvar)),
        ("metrics: in-flight inc/dec + counter + histogram", per_call(metrics)),
        ("  of which REQUESTS.labels(...).inc()",
         per_call(lambda: mw.REQUESTS.labels("GET", "/health", 200).inc())),
        ("  of which LATENCY.labels(...).observe()",
         per_call(lambda: mw.LATENCY.labels("GET", "/health").observe(0.001))),
        ("7 response headers set (request id, security, CSP)", per_call(headers)),
        ("asyncio.timeout() enter + exit (uvloop)",
         uvloop.run(timeouts()) - uvloop.run(bare_await())),
    ]
    print(f"\n{'edge middleware operation':<52} {'us/call':>8}")
    for name, value in rows:
        print(f"{name:<52} {value:>8.2f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--route", choices=["health", "db"], default="health")
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--micro", action="store_true", help="only the in-process timings")
    args = parser.parse_args()
    if args.micro:
        micro()
        return 0
    if not shutil.which("wrk"):
        print("wrk is needed (apt-get install wrk)", file=sys.stderr)
        return 1
    signal.signal(signal.SIGTERM, bench._sigterm)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    workdir = Path(tempfile.mkdtemp(prefix="propmubi-ablate-"))
    pg = EmbeddedPostgres(workdir / "pg", fast=True)
    redis = EmbeddedRedis(workdir / "redis", persistent=False)
    rows: dict[str, list[bench.Result]] = {}
    try:
        pg.start()
        redis_url = redis.start()
        assert pg.proc is not None and redis.proc is not None
        backends = [pg.proc.pid, redis.proc.pid]
        db_url = bench.prepare_database(pg, redis_url, 1000)
        targets = {}
        for label, drop in CONFIGS:
            target = bench.propmubi_target(f"ablate{len(targets)}", db_url, redis_url,
                                           bench.NEVER_LIMITED)
            target.command = [sys.executable, __file__, "--_serve", ",".join(sorted(drop)),
                              *target.command[target.command.index("serve"):]]
            targets[label] = target
        targets["bare aiohttp"] = bench.Target(
            "bare", [sys.executable, str(HERE / "bare_app.py"), "--host", bench.HOST, "--dsn",
                     db_url], bench.base_env(), bench.BARE_HEALTH, bench.BARE_NOTES)
        with contextlib.ExitStack() as stack:
            served = {label: stack.enter_context(bench.serving(t, bench.free_port(), workdir))
                      for label, t in targets.items()}
            for _ in range(args.rounds):
                for label, target in targets.items():
                    path = target.health if args.route == "health" else target.notes
                    rows.setdefault(label, []).append(bench.measure(
                        "wrk", label, args.route, served[label].base + path, args,
                        served[label].pids, backends))
    except KeyboardInterrupt:
        return 130
    finally:
        bench.stop_all()
        redis.stop()
        pg.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    results = {k: sorted(v, key=lambda r: r.server_us)[len(v) // 2] for k, v in rows.items()}
    full = results["full stack"].server_us
    print(f"\nGET {args.route}: wrk -t{args.threads} -c{args.connections} -d{args.duration}s, "
          "two processes each; CPU = both server processes")
    print(f"{'configuration':<36} {'req/s':>8} {'p99 ms':>7} {'srv CPU us/req':>14} "
          f"{'saved vs full':>13}")
    for label, r in results.items():
        print(f"{label:<36} {r.rps:>8.0f} {r.p99_ms:>7.2f} {r.server_us:>14.0f} "
              f"{full - r.server_us:>+13.0f}")
    micro()
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--_serve":
        sys.exit(serve_without(set(filter(None, sys.argv[2].split(","))), sys.argv[3:]))
    sys.exit(main())
