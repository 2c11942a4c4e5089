"""Periodic jobs with Redis leases: each tick of a job runs once, whatever the number of
schedulers (one per VM), and a crashed holder's lease expires so another scheduler takes over.

For each due job a scheduler takes the job's lease (``SET NX PX``), re-reads the shared "next
due" time under the lease, runs the job while a heartbeat extends the lease, stores the next due
time, then releases the lease. Leases are short (``scheduler.lease_seconds``) and renewed, so a
crash is noticed quickly even for long jobs. A job first runs at its first tick after it is first
seen (never at an arbitrary start-up time: a monthly cron job must not run on every deploy); a
tick missed while no scheduler ran is run once, late, then the schedule resumes.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import logging
import math
import os
import socket
import time
import uuid
from typing import cast

import attrs
from croniter import croniter
from prometheus_client import Counter, Gauge, Histogram

from propmubi.observability import REQUEST_ID
from propmubi.services import Services
from propmubi.types import Job

__all__ = ["Scheduler", "collect_jobs", "next_due"]

log = logging.getLogger(__name__)

RUNS = Counter("propmubi_scheduler_job_runs_total", "Job runs by job and outcome.",
               ["job", "outcome"])
DURATION = Histogram("propmubi_scheduler_job_duration_seconds", "Job run time by job.", ["job"],
                     buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900))
LAST_SUCCESS = Gauge("propmubi_scheduler_job_last_success_timestamp_seconds",
                     "When each job last succeeded on this scheduler.", ["job"])

# Compare-and-delete / compare-and-extend: only the holder may touch its lease.
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""
_EXTEND = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end
return 0
"""


def collect_jobs(services: Services) -> list[Job]:
    """Every enabled plugin's jobs, named ``<plugin>.<job>``.

    :raises ValueError: when two jobs end up with the same name.
    """
    jobs = []
    for plugin, plugin_jobs in services.plugins.call("propmubi_jobs"):
        for job in plugin_jobs:
            jobs.append(attrs.evolve(job, name=f"{plugin.name}.{job.name}", plugin=plugin.name))
    names = [j.name for j in jobs]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        raise ValueError(f"job names must be unique: {', '.join(sorted(duplicates))}")
    return jobs


def next_due(job: Job, after: float) -> float:
    """The first time strictly after ``after`` (epoch seconds) at which ``job`` is due."""
    if job.every is not None:
        # Aligned to multiples of the interval, so every scheduler agrees on the ticks. The
        # index is corrected both ways because float division can land one step off (with
        # every=0.2, 10.2 // 0.2 == 50.0 would give 10.2 again: the same tick twice).
        k = math.floor(after / job.every)
        while k * job.every <= after:
            k += 1
        while (k - 1) * job.every > after:
            k -= 1
        return k * job.every
    base = dt.datetime.fromtimestamp(after, dt.UTC)
    # Job ensures exactly one of every and cron is set.
    return croniter(cast(str, job.cron), base).get_next(float)


class Scheduler:
    """Runs the jobs of one process until :meth:`stop` is called."""

    def __init__(self, services: Services, jobs: list[Job], holder: str | None = None) -> None:
        self.services = services
        self.jobs = jobs
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        settings = services.config.scheduler
        self.tick = settings.tick
        self.lease_ms = settings.lease_seconds * 1000
        self._stopping = asyncio.Event()
        self._running: dict[str, asyncio.Task[None]] = {}
        self._local_next: dict[str, float] = {}
        self._release = services.redis.register_script(_RELEASE)
        self._extend = services.redis.register_script(_EXTEND)

    def stop(self) -> None:
        """Ask the loop to finish: no new runs start; running ones are awaited."""
        self._stopping.set()

    async def run(self) -> None:
        """Loop until stopped, starting each due job (without overlapping itself)."""
        log.info("scheduler %s running %d job(s): %s", self.holder, len(self.jobs),
                 ", ".join(j.name for j in self.jobs) or "none")
        try:
            while not self._stopping.is_set():
                now = time.time()
                for job in self.jobs:
                    if job.name in self._running or self._local_next.get(job.name, 0) > now:
                        continue
                    self._running[job.name] = asyncio.create_task(self._attempt(job))
                    self._running[job.name].add_done_callback(
                        functools.partial(self._forget, job.name))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), self.tick)
            if self._running:
                await asyncio.gather(*self._running.values(), return_exceptions=True)
        except asyncio.CancelledError:
            # Cancelled rather than stopped: cancel the runs too (each releases its lease).
            for task in list(self._running.values()):
                await _cancel_and_wait(task)
            raise

    def _forget(self, name: str, _task: asyncio.Task[None]) -> None:
        self._running.pop(name, None)

    async def _attempt(self, job: Job) -> None:
        redis, keys = self.services.redis, self.services.keys
        lease = keys.job_lease(job.name)
        try:
            if not await redis.set(lease, self.holder, nx=True, px=self.lease_ms):
                # Someone else holds it; look again soon (their run may be long, or they crashed).
                self._local_next[job.name] = time.time() + self.tick
                return
            try:
                due_key = keys.job_next_run(job.name)
                # A str: the client decodes responses.
                due = _parse_due(cast("str | None", await redis.get(due_key)))
                now = time.time()
                if due is None:
                    # Never scheduled (or the value is unreadable): wait for the first tick.
                    due = next_due(job, now)
                    await redis.set(due_key, repr(due))
                if now < due:
                    self._local_next[job.name] = due
                    return
                if await self._run_with_heartbeat(job, lease) == "lease_lost":
                    # Whoever holds the lease now owns the schedule; leave the due time alone.
                    self._local_next[job.name] = time.time() + self.tick
                    return
                upcoming = next_due(job, max(time.time(), due))
                await redis.set(due_key, repr(upcoming))
                self._local_next[job.name] = upcoming
            finally:
                await self._release(keys=[lease], args=[self.holder])
        except Exception:  # Redis trouble: log, and retry at the next tick
            log.exception("scheduler could not attempt job %s", job.name)
            self._local_next[job.name] = time.time() + self.tick

    async def _run_with_heartbeat(self, job: Job, lease: str) -> str:
        """Run ``job`` once, extending its lease meanwhile; count, log and return the outcome
        (``ok``, ``error``, ``timeout`` or ``lease_lost``).

        The run is cancelled when it exceeds ``job.timeout`` and when the lease is found lost
        (another scheduler may then start the same tick: two runs must not overlap).
        """
        finished = asyncio.Event()

        async def heartbeat() -> None:
            # Ended through ``finished`` rather than cancelled, so that its end never depends on
            # a cancellation reaching it through a Redis call.
            while True:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(finished.wait(), self.lease_ms / 3000)
                    return
                try:
                    kept = await self._extend(keys=[lease], args=[self.holder, self.lease_ms])
                except Exception:  # Redis hiccup: the lease still has time; try again
                    log.warning("could not extend the lease of job %s", job.name, exc_info=True)
                    continue
                if not kept:
                    log.error("lost the lease of job %s while running it; cancelling the run",
                              job.name)
                    return

        started = time.perf_counter()
        token = REQUEST_ID.set(f"job:{job.name}:{uuid.uuid4().hex[:12]}")
        # Both tasks copy the context now, so the job's log lines carry its correlation id.
        ctx = self.services.contexts[job.plugin]
        runner = asyncio.create_task(job.run(ctx), name=f"job:{job.name}")
        beat = asyncio.create_task(heartbeat(), name=f"lease:{job.name}")
        outcome = "ok"
        try:
            done, _ = await asyncio.wait({runner, beat}, timeout=job.timeout,
                                         return_when=asyncio.FIRST_COMPLETED)
            if runner not in done:
                outcome = "lease_lost" if beat in done else "timeout"
                await _cancel_and_wait(runner)
                if outcome == "timeout":
                    log.error("job %s timed out after %ss", job.name, job.timeout)
            elif runner.cancelled():
                outcome = "error"
                log.error("job %s was cancelled from within", job.name)
            elif (exc := runner.exception()) is not None:
                outcome = "error"
                log.error("job %s failed", job.name, exc_info=exc)
        finally:
            if not runner.done():  # the scheduler itself is being cancelled
                await _cancel_and_wait(runner)
                outcome = "cancelled"
            finished.set()
            await asyncio.wait({beat})  # it ends at once, or after the Redis call in progress
            RUNS.labels(job.name, outcome).inc()
            if outcome == "ok":
                LAST_SUCCESS.labels(job.name).set(time.time())
            DURATION.labels(job.name).observe(time.perf_counter() - started)
            REQUEST_ID.reset(token)
        return outcome


async def _cancel_and_wait(task: asyncio.Task[object]) -> None:
    """Cancel ``task`` and wait for it to end, without swallowing our own cancellation."""
    task.cancel()
    await asyncio.wait({task})
    if not task.cancelled():
        task.exception()  # retrieved: how a cancelled run ended is not news


def _parse_due(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        due = float(value)
    except ValueError:
        log.error("ignoring an unreadable next-run time %r", value)
        return None
    return due if math.isfinite(due) else None
