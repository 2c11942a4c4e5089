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
from propmubi.plugins import PluginSet
from propmubi.scheduler import Scheduler, collect_jobs

__all__ = ["SchemaBehind", "check_schema", "run_scheduler", "run_web", "sd_notify"]

log = logging.getLogger("propmubi.server")


class SchemaBehind(Exception):
    """The database schema is not what this code expects; the message says how to fix it."""


def sd_notify(message: str) -> bool:
    """Send a state line to systemd's notify socket; a no-op outside ``Type=notify`` units."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):  # abstract namespace socket
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.connect(address)
        sock.sendall(message.encode())
    return True


async def _watchdog(stop: asyncio.Event) -> None:
    usec = int(os.environ.get("WATCHDOG_USEC", "0") or 0)
    if not usec:
        return
    # Ping at half the interval; a wedged event loop stops pinging and systemd restarts us.
    while not stop.is_set():
        sd_notify("WATCHDOG=1")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), usec / 2_000_000)


def _stop_on_signals(stop: asyncio.Event) -> Callable[[], None]:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    def remove() -> None:
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
    await site.start()
    names = [f"http://{a[0]}:{a[1]}" if isinstance(a, tuple) else str(a)
             for a in runner.addresses]
    log.info("listening on %s", ", ".join(names), extra={"listen": names})
    stop = asyncio.Event()
    remove = _stop_on_signals(stop)
    sd_notify("READY=1\nSTATUS=serving")
    watchdog = asyncio.create_task(_watchdog(stop))
    await stop.wait()
    log.info("stopping: draining in-flight requests for up to %ss", http.shutdown_grace)
    sd_notify("STOPPING=1")
    remove()
    await runner.cleanup()
    await watchdog
    log.info("stopped")


async def run_scheduler(config: Config, plugins: PluginSet) -> None:
    """Run periodic jobs until SIGTERM/SIGINT; running jobs finish first."""
    await check_schema(config, plugins)
    async with open_services(config, plugins) as services:
        scheduler = Scheduler(services, collect_jobs(services))
        stop = asyncio.Event()
        remove = _stop_on_signals(stop)
        task = asyncio.create_task(scheduler.run())
        sd_notify("READY=1\nSTATUS=scheduling")
        watchdog = asyncio.create_task(_watchdog(stop))
        await asyncio.wait({task, asyncio.create_task(stop.wait())},
                                     return_when=asyncio.FIRST_COMPLETED)
        sd_notify("STOPPING=1")
        scheduler.stop()
        stop.set()
        remove()
        await task
        await watchdog
