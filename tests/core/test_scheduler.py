"""The scheduler: tick arithmetic, job declarations, and leases across concurrent schedulers.

Every run is checked by invariants (no tick twice, no two runs overlapping, a lease respected)
rather than by exact counts or durations, so a loaded machine slows the tests without failing
them. This module is also a tiny plugin (``schedtest``, a slow job) that the subprocess tests
load into real ``propmubi scheduler`` processes by its dotted path.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import pytest
from prometheus_client import REGISTRY

import tests.refplugin
from propmubi import hookimpl
from propmubi.context import PluginContext
from propmubi.lifecycle import open_services
from propmubi.plugins import load_plugins
from propmubi.scheduler import Scheduler, collect_jobs, next_due
from propmubi.services import Services
from propmubi.types import Job, PluginInfo

if TYPE_CHECKING:
    from propmubi.testing import TestServers

ROOT = Path(__file__).resolve().parents[2]


async def _noop(ctx: PluginContext[None, None]) -> None:
    return None


def at(text: str) -> float:
    """Epoch seconds of an ISO-8601 UTC time."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC).timestamp()


def runs_total(job: str, outcome: str) -> float:
    return REGISTRY.get_sample_value("propmubi_scheduler_job_runs_total",
                                     {"job": job, "outcome": outcome}) or 0.0


async def eventually(predicate: Callable[[], bool], within: float = 20.0) -> None:
    """Wait until ``predicate()`` holds; the limit only prevents a hang."""
    deadline = time.monotonic() + within
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


# -------------------------------------------------------------------------------------------------
# next_due, Job, collect_jobs
# -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("every", "after", "expected"), [
    (10, 95.0, 100.0),
    (10, 100.0, 110.0),  # strictly after: a tick that is now is already taken
    (10, 99.999, 100.0),
    (60, at("2024-05-01T10:00:30"), at("2024-05-01T10:01:00")),
    (0.25, 1.1, 1.25),
])
def test_next_due_interval_is_the_next_multiple(every, after, expected):
    assert next_due(Job(name="j", run=_noop, every=every), after) == pytest.approx(expected)


def test_next_due_interval_survives_float_rounding():
    # 10.2 // 0.2 == 50.0 in floating point; a naive (k + 1) * every gives 10.2 back: the same
    # tick twice.
    job = Job(name="j", run=_noop, every=0.2)
    for k in range(1, 2000):
        tick = k * 0.2
        following = next_due(job, tick)
        assert following > tick
        assert following == pytest.approx((k + 1) * 0.2, abs=1e-6)
        assert next_due(job, tick - 0.01) == pytest.approx(tick, abs=1e-6)


def test_next_due_interval_agrees_across_callers():
    # Two schedulers looking at different moments inside one interval agree on the tick.
    job = Job(name="j", run=_noop, every=30)
    base = at("2024-05-01T12:00:00")
    assert {next_due(job, base + offset) for offset in (0.001, 7.5, 29.999)} == {base + 30}


@pytest.mark.parametrize(("cron", "after", "expected"), [
    ("*/15 * * * *", "2024-05-01T10:07:30", "2024-05-01T10:15:00"),
    ("*/15 * * * *", "2024-05-01T10:15:00", "2024-05-01T10:30:00"),
    ("* * * * *", "2024-05-01T09:59:59.500", "2024-05-01T10:00:00"),
    ("0 3 * * *", "2024-05-01T03:00:00.500", "2024-05-02T03:00:00"),
    ("0 0 1 * *", "2024-12-31T23:59:00", "2025-01-01T00:00:00"),
    ("30 2 * * 1", "2024-05-01T00:00:00", "2024-05-06T02:30:00"),  # the next Monday
])
def test_next_due_cron_is_utc_and_strictly_after(cron, after, expected):
    assert next_due(Job(name="j", run=_noop, cron=cron), at(after)) == at(expected)


@pytest.mark.parametrize("kwargs", [{}, {"every": 5, "cron": "* * * * *"}])
def test_job_needs_exactly_one_of_every_and_cron(kwargs):
    with pytest.raises(ValueError, match="exactly one"):
        Job(name="j", run=_noop, **kwargs)


@pytest.mark.parametrize("cron", ["61 * * * *", "not a cron", "* * * *", ""])
def test_job_rejects_an_invalid_cron(cron):
    with pytest.raises(ValueError, match="invalid cron"):
        Job(name="j", run=_noop, cron=cron)


@pytest.mark.parametrize("every", [0, -1])
def test_job_rejects_a_non_positive_interval(every):
    with pytest.raises(ValueError, match="positive"):
        Job(name="j", run=_noop, every=every)


class _JobsPlugin:
    def __init__(self, name: str, jobs: list[Job]) -> None:
        self.name = name
        self.jobs = jobs

    @hookimpl
    def propmubi_plugin_info(self) -> PluginInfo:
        return PluginInfo(name=self.name)

    @hookimpl
    def propmubi_jobs(self) -> list[Job]:
        return self.jobs


async def test_collect_jobs_prefixes_names_with_the_plugin(services):
    other = _JobsPlugin("other", [Job(name="count_notes", run=_noop, cron="0 * * * *"),
                                  Job(name="trim", run=_noop, every=60)])
    plugins = load_plugins(services.config, extra=[tests.refplugin, other])
    jobs = collect_jobs(attrs.evolve(services, plugins=plugins))
    # Core plugins may contribute jobs of their own; these are the two test plugins'.
    ours = sorted(j.name for j in jobs if j.name.startswith(("other.", "reference.")))
    assert ours == ["other.count_notes", "other.trim", "reference.count_notes"]
    assert all(j.name.split(".", 1)[0] in {p.name for p in plugins} for j in jobs)
    trim = next(j for j in jobs if j.name == "other.trim")
    assert trim.every == 60 and trim.run is _noop


async def test_collect_jobs_rejects_duplicate_names(services):
    twice = _JobsPlugin("twice", [Job(name="sync", run=_noop, every=1),
                                  Job(name="sync", run=_noop, every=2)])
    plugins = load_plugins(services.config, extra=[tests.refplugin, twice])
    with pytest.raises(ValueError, match=r"twice\.sync"):
        collect_jobs(attrs.evolve(services, plugins=plugins))


# -------------------------------------------------------------------------------------------------
# Schedulers in this process, on the test's PostgreSQL and Redis
# -------------------------------------------------------------------------------------------------


@pytest.fixture
def config_overrides() -> dict[str, dict[str, Any]]:
    return {"scheduler": {"tick": 0.05, "lease_seconds": 1}}


@pytest.fixture
async def services_b(services: Services) -> AsyncIterator[Services]:
    """A second set of pools on the same database and Redis prefix (another VM, in effect)."""
    async with open_services(services.config, services.plugins, lifecycle=False) as other:
        yield other


@attrs.define
class Run:
    holder: str
    tick: float
    start: float
    end: float


@attrs.define
class Recorder:
    """A job that records each run's holder, scheduled tick, start and end."""

    name: str
    every: float
    seconds: Callable[[int], float] = lambda n: 0.0  # how long run number n sleeps
    fail: Callable[[int], bool] = lambda n: False
    holders: dict[int, str] = attrs.Factory(dict)  # id(services) -> scheduler's holder
    runs: list[Run] = attrs.Factory(list)
    started: list[float] = attrs.Factory(list)
    cancelled: int = 0
    active: int = 0
    max_active: int = 0

    def job(self, **options: Any) -> Job:
        return Job(name=self.name, run=self.run, every=self.every, plugin="core", **options)

    async def run(self, ctx: PluginContext[None, None]) -> None:
        services = ctx.services
        n = len(self.started)
        start = time.time()
        self.started.append(start)
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            # Under the lease the shared "next due" value is the tick this run is for.
            tick = float(await services.redis.get(services.keys.job_next_run(self.name)))
            await asyncio.sleep(self.seconds(n))
            if self.fail(n):
                raise RuntimeError(f"run {n} fails on purpose")
            self.runs.append(Run(self.holders.get(id(services), "?"), tick, start, time.time()))
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        finally:
            self.active -= 1


def unique_name(what: str) -> str:
    # Metrics are per process: a unique job name keeps each test's counts apart.
    return f"test.{what}_{uuid.uuid4().hex[:8]}"


@contextlib.asynccontextmanager
async def running(*schedulers: Scheduler) -> AsyncIterator[list[asyncio.Task[None]]]:
    tasks = [asyncio.create_task(s.run()) for s in schedulers]
    try:
        yield tasks
    finally:
        for scheduler in schedulers:
            scheduler.stop()
        async with asyncio.timeout(30):
            await asyncio.gather(*tasks)


def assert_ticks_once_without_overlap(runs: list[Run], every: float) -> None:
    ticks = [r.tick for r in runs]
    assert len(set(ticks)) == len(ticks), f"a tick ran twice: {sorted(ticks)}"
    ordered = sorted(runs, key=lambda r: r.start)
    assert [r.tick for r in ordered] == sorted(ticks), "ticks ran out of order"
    for earlier, later in itertools.pairwise(ordered):
        assert later.start >= earlier.end, f"runs overlap: {earlier} and {later}"
    for run in runs:
        assert run.start >= run.tick - 0.01, f"a run started before its tick: {run}"
        assert abs(run.tick / every - round(run.tick / every)) < 1e-6, f"unaligned tick {run}"


async def test_two_schedulers_run_each_tick_once(services, services_b):
    rec = Recorder(unique_name("fast"), every=0.2, seconds=lambda n: 0.03)
    job = rec.job()
    a = Scheduler(services, [job], holder="holder-a")
    b = Scheduler(services_b, [job], holder="holder-b")
    rec.holders = {id(services): a.holder, id(services_b): b.holder}
    async with running(a, b):
        await asyncio.sleep(2.2)
        await eventually(lambda: len(rec.runs) >= 3)
    assert_ticks_once_without_overlap(rec.runs, 0.2)
    assert rec.max_active == 1
    by_holder = {h: sum(r.holder == h for r in rec.runs) for h in ("holder-a", "holder-b")}
    assert sum(by_holder.values()) == len(rec.runs) == runs_total(job.name, "ok")
    assert len(rec.started) == len(rec.runs)
    # Both schedulers are done with the job: no lease left behind.
    assert await services.redis.get(services.keys.job_lease(job.name)) is None


async def test_first_run_waits_for_the_first_aligned_tick(services):
    rec = Recorder(unique_name("first"), every=0.5)
    started = time.time()
    async with running(Scheduler(services, [rec.job()])):
        await eventually(lambda: len(rec.runs) >= 1)
    first = rec.runs[0]
    assert first.tick > started  # not "whenever the scheduler happened to start"
    assert_ticks_once_without_overlap(rec.runs, 0.5)


async def test_missed_ticks_run_once_then_the_schedule_resumes(services):
    rec = Recorder(unique_name("missed"), every=0.2)
    long_ago = (int(time.time() / 0.2) - 500) * 0.2  # 500 ticks ago: nobody ran them
    await services.redis.set(services.keys.job_next_run(rec.name), repr(long_ago))
    started = time.time()
    async with running(Scheduler(services, [rec.job()])):
        await eventually(lambda: len(rec.runs) >= 2)
    assert rec.runs[0].tick == long_ago
    assert all(r.tick > started for r in rec.runs[1:])  # no catch-up storm
    assert_ticks_once_without_overlap(rec.runs, 0.2)


async def test_a_failing_job_is_logged_counted_and_runs_again(services, caplog):
    rec = Recorder(unique_name("failing"), every=0.2, fail=lambda n: n == 0)
    job = rec.job()
    async with running(Scheduler(services, [job])):
        await eventually(lambda: len(rec.runs) >= 1)
    assert runs_total(job.name, "error") == 1
    assert runs_total(job.name, "ok") == len(rec.runs) >= 1
    failed = [r for r in caplog.records if r.levelname == "ERROR" and job.name in r.getMessage()]
    assert failed and failed[0].exc_info is not None
    assert "run 0 fails on purpose" in str(failed[0].exc_info[1])
    assert rec.runs[0].start > rec.started[0]  # the next tick, after the failure
    assert_ticks_once_without_overlap(rec.runs, 0.2)


async def test_a_job_past_its_timeout_is_cancelled(services, caplog):
    rec = Recorder(unique_name("slow"), every=0.2, seconds=lambda n: 30.0)
    job = rec.job(timeout=0.3)
    async with running(Scheduler(services, [job])):
        await eventually(lambda: runs_total(job.name, "timeout") >= 2)
    assert rec.cancelled >= 2 and not rec.runs
    assert runs_total(job.name, "ok") == runs_total(job.name, "error") == 0
    assert any("timed out" in r.getMessage() for r in caplog.records)
    # Each timed-out run still advanced the schedule: the second was for a later tick.
    assert rec.started[1] - rec.started[0] >= 0.2 - 0.01


async def test_a_crashed_holders_lease_blocks_until_it_expires(services):
    rec = Recorder(unique_name("orphan"), every=0.2)
    lease = services.keys.job_lease(rec.name)
    # A scheduler died mid-run: its lease stays until it expires, and the tick is still due.
    overdue = (int(time.time() / 0.2) - 1) * 0.2
    await services.redis.set(services.keys.job_next_run(rec.name), repr(overdue))
    before = time.time()
    await services.redis.set(lease, "dead-holder", px=1500)
    async with running(Scheduler(services, [rec.job()], holder="survivor")):
        await asyncio.sleep(0.8)
        # Nothing ran while the lease lasted (by the clock, not by how long the sleep took).
        assert all(start >= before + 1.5 - 0.002 for start in rec.started)
        if time.time() < before + 1.4:
            assert await services.redis.get(lease) == "dead-holder"
        await eventually(lambda: len(rec.runs) >= 2)
    # The lease expired no earlier than 1.5 s after `before` (Redis expiry is to the ms).
    assert rec.started[0] >= before + 1.5 - 0.002
    assert_ticks_once_without_overlap(rec.runs, 0.2)


async def test_the_heartbeat_keeps_a_long_run_leased(services, services_b):
    # The first run lasts more than twice the 1 s lease: only the heartbeat keeps the other
    # scheduler, which looks every 50 ms, from starting the job meanwhile.
    rec = Recorder(unique_name("long"), every=0.2, seconds=lambda n: 2.3 if n == 0 else 0.01)
    job = rec.job()
    a = Scheduler(services, [job], holder="holder-a")
    b = Scheduler(services_b, [job], holder="holder-b")
    rec.holders = {id(services): a.holder, id(services_b): b.holder}
    lease = services.keys.job_lease(job.name)
    async with running(a, b):
        await eventually(lambda: len(rec.started) >= 1)
        holder = await services.redis.get(lease)
        assert holder in (a.holder, b.holder)
        while not rec.runs:  # the long run: the lease stays with its holder throughout
            assert await services.redis.get(lease) == holder
            await asyncio.sleep(0.1)
        await eventually(lambda: len(rec.runs) >= 3)
    assert rec.runs[0].end - rec.runs[0].start >= 2.3
    assert rec.max_active == 1
    assert runs_total(job.name, "lease_lost") == 0
    assert_ticks_once_without_overlap(rec.runs, 0.2)


async def test_a_run_that_loses_its_lease_is_cancelled(services):
    rec = Recorder(unique_name("usurped"), every=0.2, seconds=lambda n: 30.0 if n == 0 else 0)
    job = rec.job()
    lease, due_key = services.keys.job_lease(job.name), services.keys.job_next_run(job.name)
    async with running(Scheduler(services, [job], holder="holder-a")):
        await eventually(lambda: len(rec.started) >= 1)
        tick = await services.redis.get(due_key)
        # Redis lost the key (failover, flush) and another scheduler took it.
        await services.redis.set(lease, "holder-b", px=1000)
        await eventually(lambda: rec.cancelled == 1)
        # The due time now belongs to the new holder: the loser leaves it alone.
        assert await services.redis.get(due_key) == tick
        await eventually(lambda: len(rec.runs) >= 1)
    assert runs_total(job.name, "lease_lost") == 1
    assert rec.runs[0].start >= rec.started[0]


async def test_stop_lets_a_running_job_finish(services):
    rec = Recorder(unique_name("finishing"), every=0.2, seconds=lambda n: 0.6)
    job = rec.job()
    scheduler = Scheduler(services, [job])
    task = asyncio.create_task(scheduler.run())
    try:
        await eventually(lambda: len(rec.started) >= 1)
        scheduler.stop()
        async with asyncio.timeout(20):
            await task
    finally:
        scheduler.stop()
        await asyncio.wait({task}, timeout=20)
    assert len(rec.runs) == 1 and rec.cancelled == 0
    assert runs_total(job.name, "ok") == 1
    assert await services.redis.get(services.keys.job_lease(job.name)) is None
    upcoming = float(await services.redis.get(services.keys.job_next_run(job.name)))
    assert upcoming > rec.runs[0].tick


async def test_cancelling_the_scheduler_cancels_runs_and_frees_leases(services):
    rec = Recorder(unique_name("cancelled"), every=0.2, seconds=lambda n: 30.0)
    job = rec.job()
    task = asyncio.create_task(Scheduler(services, [job]).run())
    await eventually(lambda: len(rec.started) >= 1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        async with asyncio.timeout(20):
            await task
    assert rec.cancelled == 1
    assert await services.redis.get(services.keys.job_lease(job.name)) is None


# -------------------------------------------------------------------------------------------------
# Real `propmubi scheduler` processes
# -------------------------------------------------------------------------------------------------

#: How long each run of the ``schedtest.slow`` job takes (set in the subprocesses' environment).
SLOW_SECONDS_ENV = "PROPMUBI_TEST_SLOW_JOB_SECONDS"


@hookimpl
def propmubi_plugin_info() -> PluginInfo:
    return PluginInfo(name="schedtest", description="a slow job for the scheduler's tests")


async def _slow_job(ctx: PluginContext[None, None]) -> None:
    # Log "start"/"end" with this process's id and the tick to a Redis list the test reads.
    runs = ctx.keys("runs")
    tick = await ctx.redis.get(ctx.services.keys.job_next_run("schedtest.slow"))
    await ctx.redis.rpush(runs, f"start {os.getpid()} {tick} {time.time()!r}")
    await asyncio.sleep(float(os.environ.get(SLOW_SECONDS_ENV, "2")))
    await ctx.redis.rpush(runs, f"end {os.getpid()} {tick} {time.time()!r}")


@hookimpl
def propmubi_jobs() -> list[Job]:
    return [Job(name="slow", run=_slow_job, every=0.5)]


@attrs.define
class Proc:
    popen: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
def spawn(tmp_path: Path, test_servers: TestServers, database_url: str, redis_prefix: str
          ) -> Any:
    """Start ``propmubi scheduler`` processes on this test's database and Redis prefix."""
    procs: list[Proc] = []

    def start(modules: str, **env: str) -> Proc:
        environ = {k: v for k, v in os.environ.items() if not k.startswith("PROPMUBI_")}
        environ.update({
            "PYTHONPATH": str(ROOT),
            "PROPMUBI_DATABASE__URL": database_url,
            "PROPMUBI_DATABASE__POOL_MIN": "0",
            "PROPMUBI_REDIS__URL": test_servers.redis_url,
            "PROPMUBI_REDIS__KEY_PREFIX": redis_prefix,
            "PROPMUBI_PLUGINS__MODULES": modules,
            "PROPMUBI_SCHEDULER__TICK": "0.1",
            "PROPMUBI_LOGGING__JSON": "false",
            **env,
        })
        log = tmp_path / f"scheduler-{len(procs)}.log"
        with open(log, "wb") as out:
            popen = subprocess.Popen([sys.executable, "-m", "propmubi", "scheduler"],
                                     cwd=tmp_path, env=environ, stdin=subprocess.DEVNULL,
                                     stdout=out, stderr=subprocess.STDOUT)
        procs.append(Proc(popen, log))
        return procs[-1]

    yield start
    for proc in procs:
        if proc.popen.poll() is None:
            proc.popen.kill()
        proc.popen.wait(10)


async def wait_running(*procs: Proc) -> None:
    """Until each process has logged that its scheduler loop runs."""
    def ready() -> bool:
        for proc in procs:
            assert proc.popen.poll() is None, f"scheduler exited early:\n{proc.output()}"
        return all("running" in proc.output() for proc in procs)

    await eventually(ready, within=60)


async def terminate(*procs: Proc) -> None:
    for proc in procs:
        proc.popen.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            code = await asyncio.to_thread(proc.popen.wait, 60)
        except subprocess.TimeoutExpired:
            pytest.fail(f"scheduler {proc.popen.pid} did not stop on SIGTERM:\n{proc.output()}")
        assert code == 0, proc.output()


@pytest.mark.slow
async def test_two_scheduler_processes_share_the_reference_job(services, spawn):
    procs = [spawn("tests.refplugin"), spawn("tests.refplugin")]
    await wait_running(*procs)
    # A few runs with both schedulers up (waited for, not slept on: a count after a fixed
    # sleep depends on the machine's speed).
    deadline = time.monotonic() + 60
    while await services.db.fetchval("SELECT count(*) FROM reference_job_runs") < 3:
        assert time.monotonic() < deadline, "the reference job did not run three times"
        await asyncio.sleep(0.2)
    await terminate(*procs)
    row = await services.db.fetchrow(
        "SELECT count(*) AS runs, count(DISTINCT date_trunc('second', ran_at)) AS seconds "
        "FROM reference_job_runs")
    assert row["runs"] >= 2
    assert row["seconds"] == row["runs"], "two runs within one second-tick"
    for proc in procs:
        assert "Traceback" not in proc.output()


Event = tuple[str, int, float, float]  # what, pid, tick, time


async def slow_job_events(services: Services) -> list[Event]:
    raw = await services.redis.lrange(services.keys.plugin("schedtest", "runs"), 0, -1)
    return [(what, int(pid), float(tick), float(when))
            for what, pid, tick, when in (line.split() for line in raw)]


@pytest.mark.slow
async def test_a_killed_holder_mid_run_is_taken_over(services, spawn):
    modules = "tests.refplugin,tests.core.test_scheduler"
    env = {"PROPMUBI_SCHEDULER__LEASE_SECONDS": "1", SLOW_SECONDS_ENV: "2"}
    procs = [spawn(modules, **env), spawn(modules, **env)]
    await wait_running(*procs)
    events = await _poll_until(services, lambda ev: any(e[0] == "start" for e in ev))
    _, victim_pid, victim_tick, _ = next(e for e in events if e[0] == "start")
    victim = next(p for p in procs if p.popen.pid == victim_pid)
    survivor = next(p for p in procs if p.popen.pid != victim_pid)
    victim.popen.send_signal(signal.SIGKILL)
    killed_at = time.time()
    await asyncio.to_thread(victim.popen.wait, 10)
    assert ("end", victim_pid) not in {(e[0], e[1]) for e in events}, "killed after its run"

    events = await _poll_until(
        services, lambda ev: any(e[0] == "end" and e[1] == survivor.popen.pid for e in ev))
    await terminate(survivor)
    starts = [e for e in events if e[0] == "start"]
    # Nobody started while the victim held the lease; the survivor then re-ran the victim's
    # unfinished tick (the schedule had not advanced) and carried on.
    assert starts[0][1] == victim_pid and len([s for s in starts if s[3] < killed_at]) == 1
    taken_over = [s for s in starts if s[1] == survivor.popen.pid]
    assert taken_over and taken_over[0][3] > killed_at
    assert taken_over[0][2] >= victim_tick
    survivor_ticks = [s[2] for s in taken_over]
    assert len(set(survivor_ticks)) == len(survivor_ticks)


async def _poll_until(services: Services, predicate: Callable[[list[Event]], bool],
                      within: float = 30.0) -> list[Event]:
    deadline = time.monotonic() + within
    while True:
        events = await slow_job_events(services)
        if predicate(events):
            return events
        assert time.monotonic() < deadline, f"not reached; events: {events}"
        await asyncio.sleep(0.05)
