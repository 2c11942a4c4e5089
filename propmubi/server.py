"""Running the long-lived roles: ``serve`` (web) and ``scheduler``, with systemd integration.

Both refuse to start on a schema that is behind (only ``propmubi migrate`` changes it), tell
systemd when they are ready (``Type=notify``), ping its watchdog, and stop gracefully on
SIGTERM or SIGINT.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
from collections.abc import Callable

from aiohttp import web

from propmubi import migrate
from propmubi.app import create_app
from propmubi.config import Config
from propmubi.context import open_services
from propmubi.observability import serve_metrics
from propmubi.plugins import PluginSet
from propmubi.scheduler import Scheduler, collect_jobs

__all__ = ["SchemaBehind", "check_schema", "run_scheduler", "run_web", "sd_notify",
           "watchdog_interval"]

log = logging.getLogger("propmubi.server")


class SchemaBehind(Exception):
    """The database schema is not what this code expects; the message says how to fix it."""


def sd_notify(message: str, *, wait: float = 2.0) -> bool:
    """Send a state line to systemd's notify socket; a no-op outside ``Type=notify`` units.

    Never raises: a notify socket that went away must not take the service down with it.
    A datagram socket blocks the sender while the receiver's queue is full, and this runs on
    the event loop: state changes wait at most ``wait`` seconds, watchdog pings
    (``wait=0``) are dropped instead (the next one follows within half the interval).
    """
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):  # abstract namespace socket
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.settimeout(wait)
            sock.connect(address)
            sock.sendall(message.encode())
    except OSError as exc:  # timeouts and a full queue (BlockingIOError) included
        level = logging.DEBUG if message == "WATCHDOG=1" else logging.WARNING
        log.log(level, "could not notify systemd (%s): %s", message.split("\n")[0], exc)
        return False
    return True


def watchdog_interval() -> float | None:
    """Seconds between watchdog pings (half of ``WatchdogSec=``), or None when not asked.

    Like ``sd_watchdog_enabled()``, ignores a ``WATCHDOG_USEC`` meant for another process
    (``WATCHDOG_PID`` names the main process; children inherit the environment).
    """
    try:
        usec = int(os.environ.get("WATCHDOG_USEC", "0") or 0)
        pid = int(os.environ.get("WATCHDOG_PID", "0") or 0)
    except ValueError:
        return None
    if usec <= 0 or (pid and pid != os.getpid()):
        return None
    return usec / 2_000_000


async def _watchdog(done: asyncio.Event) -> None:
    """Ping systemd's watchdog until ``done`` is set.

    ``done`` is set only once the process has finished its work, draining included: systemd
    keeps the watchdog armed while a unit stops, and a drain longer than ``WatchdogSec=``
    without pings would be cut by SIGABRT.
    """
    interval = watchdog_interval()
    if interval is None:
        return
    # A wedged event loop stops pinging and systemd restarts us.
    while not done.is_set():
        sd_notify("WATCHDOG=1", wait=0)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), interval)


def _stop_on_signals(stop: asyncio.Event) -> Callable[[], None]:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    def remove() -> None:
        # A second SIGTERM/SIGINT during the drain now stops the process at once.
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)

    return remove


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


async def run_web(config: Config, plugins: PluginSet) -> None:
    """Serve HTTP until SIGTERM/SIGINT, then stop accepting and drain in-flight requests."""
    await check_schema(config, plugins)
    app = create_app(config, plugins)
    http = config.http
    runner = web.AppRunner(app, shutdown_timeout=http.shutdown_grace, access_log=None,
                           handle_signals=False)
    await runner.setup()
    if http.unix_socket:
        site: web.BaseSite = web.UnixSite(runner, http.unix_socket)
    else:
        site = web.TCPSite(runner, http.host, http.port, reuse_port=http.reuse_port or None,
                           backlog=1024)
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()  # the pools opened by setup(); the caller reports the error
        raise
    names = [f"http://{a[0]}:{a[1]}" if isinstance(a, tuple) else str(a)
             for a in runner.addresses]
    log.info("listening on %s", ", ".join(names), extra={"listen": names})
    stop, done = asyncio.Event(), asyncio.Event()
    remove = _stop_on_signals(stop)
    watchdog = asyncio.create_task(_watchdog(done))
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
            await runner.cleanup()
        finally:
            done.set()
            await watchdog
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
        remove = _stop_on_signals(stop)
        task = asyncio.create_task(scheduler.run())
        stopped = asyncio.create_task(stop.wait())
        watchdog = asyncio.create_task(_watchdog(done))
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
            await watchdog
        log.info("stopped")
