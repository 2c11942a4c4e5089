"""systemd integration of the long-lived roles: readiness and status notifications, the
watchdog, and graceful stops on SIGTERM/SIGINT. Everything is a no-op outside systemd."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
from collections.abc import Callable

__all__ = ["sd_notify", "stop_on_signals", "watchdog", "watchdog_interval"]

log = logging.getLogger("propmubi.server")


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


async def watchdog(done: asyncio.Event) -> None:
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


def stop_on_signals(stop: asyncio.Event) -> Callable[[], None]:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    def remove() -> None:
        # A second SIGTERM/SIGINT during the drain now stops the process at once.
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)

    return remove
