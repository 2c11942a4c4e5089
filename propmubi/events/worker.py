"""``propmubi worker``: the relay and every enabled plugin's consumers in one process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from propmubi.context import Services
from propmubi.events.bus import EventBus, check_eviction_policy
from propmubi.events.ops import group_stats
from propmubi.observability import serve_metrics

__all__ = ["run_worker"]

log = logging.getLogger("propmubi.worker")
STATS_EVERY = 5.0


async def _stats_loop(bus: EventBus, stop: asyncio.Event) -> None:
    while not stop.is_set():
        with contextlib.suppress(Exception):  # gauges are best effort; Redis may be away
            await group_stats(bus.services, bus.groups)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), STATS_EVERY)


async def run_worker(services: Services, metrics_port: int | None = None) -> int:
    """Run until SIGTERM/SIGINT; in-flight batches finish before it returns 0."""
    from propmubi.server import sd_notify

    await check_eviction_policy(services)
    bus = EventBus(services)
    log.info("worker %s: relay + %d consumer group(s): %s", bus.consumer.name, len(bus.groups),
             ", ".join(g.name for g in bus.groups) or "none")
    runner = await serve_metrics(metrics_port) if metrics_port else None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
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
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.remove_signal_handler(sig)
    if runner is not None:
        await runner.cleanup()
    log.info("worker stopped")
    return 0
