"""The three long-lived roles of ``propmubi``: ``serve`` (web), ``worker`` (outbox relay and
event consumers) and ``scheduler`` (periodic jobs).

Each refuses to start on a schema that is behind (only ``propmubi migrate`` changes it), tells
systemd when it is ready (``Type=notify``), pings its watchdog, and stops gracefully on
SIGTERM or SIGINT (:mod:`propmubi.systemd`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiohttp import web

from propmubi import migrate
from propmubi.app import create_app
from propmubi.config import Config, ConfigError, parse_listen
from propmubi.events.bus import EventBus, check_eviction_policy
from propmubi.events.ops import group_stats
from propmubi.lifecycle import open_services
from propmubi.observability import serve_metrics
from propmubi.plugins import PluginSet
from propmubi.scheduler import Scheduler, collect_jobs
from propmubi.services import Services
from propmubi.systemd import sd_notify, stop_on_signals, watchdog
from propmubi.web.listeners import addresses, listen

__all__ = ["SchemaBehind", "check_listener", "check_schema", "run_scheduler", "run_web",
           "run_worker"]

log = logging.getLogger("propmubi.server")


class SchemaBehind(Exception):
    """The database schema is not what this code expects; the message says how to fix it."""


async def check_schema(config: Config, plugins: PluginSet) -> None:
    """Raise :class:`SchemaBehind` unless every migration is applied and unchanged."""
    state = await migrate.status(config.database.url, plugins)
    if state.changed:
        raise SchemaBehind(f"migration {state.changed[0].label} changed after it was applied; "
                           "restore the file")
    if state.pending:
        names = ", ".join(m.label for m in state.pending[:5])
        raise SchemaBehind(f"the database schema is behind ({len(state.pending)} pending: "
                           f"{names}); run `propmubi migrate up` first")


def check_listener(config: Config) -> None:
    """Refuse a unix socket without ``http.trust_forwarded``: every client would be the same
    unknown one, so per-IP rate limits and the console's lockout would be site-wide."""
    http = config.http
    if http.unix_socket and not http.trust_forwarded:
        raise ConfigError(
            "http.unix_socket is set but http.trust_forwarded is false: behind a unix socket "
            "every client's address is unknown, so per-IP rate limits and the console's "
            "sign-in lockout would treat all clients as one. Set http.trust_forwarded = true "
            "(PROPMUBI_HTTP__TRUST_FORWARDED=true) with a proxy in front that sets "
            "X-Forwarded-For (see deploy/nginx/propmubi.conf), or listen on TCP "
            "(http.host/http.port) instead")


async def run_web(config: Config, plugins: PluginSet) -> None:
    """Serve HTTP until SIGTERM/SIGINT, then stop accepting and drain in-flight requests.

    :raises ConfigError: before anything starts, for a listener that cannot work safely.
    """
    check_listener(config)
    await check_schema(config, plugins)
    app = create_app(config, plugins)
    http = config.http
    runner = web.AppRunner(app, shutdown_timeout=http.shutdown_grace, access_log=None,
                           handle_signals=False, keepalive_timeout=http.keepalive_timeout)
    await runner.setup()
    servers: list[asyncio.Server] = []
    metrics = None
    try:
        servers = await listen(runner, http)
        if config.metrics.listen:
            metrics_host, metrics_port = parse_listen(config.metrics.listen)
            metrics = await serve_metrics(metrics_port, metrics_host)
    except BaseException:
        for server in servers:
            server.close()
        await runner.cleanup()  # the pools opened by setup(); the caller reports the error
        raise
    names = addresses(servers)
    log.info("listening on %s", ", ".join(names), extra={"listen": names})
    if metrics is not None:
        log.info("serving /metrics on %s", config.metrics.listen)
    stop, done = asyncio.Event(), asyncio.Event()
    remove = stop_on_signals(stop)
    pinger = asyncio.create_task(watchdog(done))
    try:
        sd_notify("READY=1\nSTATUS=serving")
        await stop.wait()
        log.info("stopping: draining in-flight requests for up to %ss", http.shutdown_grace)
        sd_notify("STOPPING=1\nSTATUS=draining")
        remove()
    finally:
        # Stops listening first (new connections are refused), then waits for in-flight
        # requests up to shutdown_grace, then closes the pools.
        try:
            for server in servers:
                server.close()
            await runner.cleanup()
            if metrics is not None:
                await metrics.cleanup()
        finally:
            done.set()
            await pinger
    log.info("stopped")


async def run_scheduler(config: Config, plugins: PluginSet, metrics_port: int | None = None
                        ) -> None:
    """Run periodic jobs until SIGTERM/SIGINT; running jobs finish first.

    :param metrics_port: serve ``/metrics`` (job runs, failures, durations) on loopback.
    """
    await check_schema(config, plugins)
    metrics = await serve_metrics(metrics_port) if metrics_port else None
    try:
        await _schedule(config, plugins)
    finally:
        if metrics is not None:
            await metrics.cleanup()


async def _schedule(config: Config, plugins: PluginSet) -> None:
    async with open_services(config, plugins) as services:
        scheduler = Scheduler(services, collect_jobs(services))
        stop, done = asyncio.Event(), asyncio.Event()
        remove = stop_on_signals(stop)
        task = asyncio.create_task(scheduler.run())
        stopped = asyncio.create_task(stop.wait())
        pinger = asyncio.create_task(watchdog(done))
        try:
            sd_notify("READY=1\nSTATUS=scheduling")
            await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
            sd_notify("STOPPING=1\nSTATUS=finishing running jobs")
            remove()
            scheduler.stop()
            await task  # re-raises when the scheduler itself failed
        finally:
            stopped.cancel()
            done.set()
            await pinger
        log.info("stopped")


# -- worker ------------------------------------------------------------------------------------

STATS_EVERY = 5.0


async def _stats_loop(bus: EventBus, stop: asyncio.Event) -> None:
    while not stop.is_set():
        with contextlib.suppress(Exception):  # gauges are best effort; Redis may be away
            await group_stats(bus.services, bus.groups)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), STATS_EVERY)


async def run_worker(config: Config, plugins: PluginSet, metrics_port: int | None = None
                     ) -> None:
    """Relay and consume until SIGTERM/SIGINT; in-flight batches finish first."""
    await check_schema(config, plugins)
    async with open_services(config, plugins) as services:
        await _work(services, metrics_port)


async def _work(services: Services, metrics_port: int | None) -> None:
    await check_eviction_policy(services)
    bus = EventBus(services)
    log.info("worker %s: relay + %d consumer group(s): %s", bus.consumer.name, len(bus.groups),
             ", ".join(g.name for g in bus.groups) or "none")
    runner = await serve_metrics(metrics_port) if metrics_port else None
    stop = asyncio.Event()
    remove = stop_on_signals(stop)
    task = asyncio.create_task(bus.run())
    stats = asyncio.create_task(_stats_loop(bus, stop))
    sd_notify("READY=1\nSTATUS=relaying and consuming")
    stopper = asyncio.create_task(stop.wait())
    await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    sd_notify("STOPPING=1")
    log.info("worker stopping: finishing in-flight batches")
    stop.set()
    bus.stop()
    await task
    await stats
    remove()
    if runner is not None:
        await runner.cleanup()
    log.info("worker stopped")
