"""Logging (one JSON object a line, with the request id) and the Prometheus registry helpers."""

from __future__ import annotations

import contextvars
import logging
import sys
import time
from typing import Any, TextIO

import orjson
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily

__all__ = [
    "REQUEST_ID",
    "JsonFormatter",
    "PoolCollector",
    "configure_logging",
    "render_metrics",
    "serve_metrics",
]

#: The current request's id (or a job's / event's correlation id); every log line carries it.
REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id",
                                                                       default=None)

_RESERVED = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON line: ts, level, logger, msg, request_id and any extras."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        request_id = REQUEST_ID.get()
        if request_id:
            out["request_id"] = request_id
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(out, default=str).decode()


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        request_id = REQUEST_ID.get()
        return f"{line} [{request_id}]" if request_id else line


def configure_logging(level: str = "INFO", json: bool = True, *,
                      stream: TextIO | None = None) -> None:
    """Send every log record to ``stream``, formatted for journald (JSON) or for a terminal.

    :param stream: stdout by default (the servers: journald reads it); the CLI's other commands
        pass stderr, so that their stdout carries only their output (``propmubi events catalog
        | jq``).
    """
    handler = logging.StreamHandler(sys.stdout if stream is None else stream)
    handler.setFormatter(JsonFormatter() if json else _TextFormatter(
        "%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # aiohttp's own access logger is replaced by ours (it lacks the route and the request id).
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


class PoolCollector:
    """Exposes ``stats()`` as ``propmubi_<area>_pool_connections`` gauges at scrape time."""

    def __init__(self, area: str, stats: Any) -> None:
        self.area = area
        self.stats = stats

    def collect(self) -> Any:
        gauge = GaugeMetricFamily(f"propmubi_{self.area}_pool_connections",
                                  f"{self.area} pool connections by pool and state.",
                                  labels=["pool", "state"])
        for pool, values in self.stats().items():
            for state, value in values.items():
                gauge.add_metric([pool, state], value)
        yield gauge


def render_metrics(registry: CollectorRegistry = REGISTRY) -> bytes:
    """The Prometheus text exposition of ``registry``."""
    return generate_latest(registry)


async def serve_metrics(port: int, host: str = "127.0.0.1") -> Any:
    """Serve ``/metrics`` and ``/health`` on ``host:port`` for a process that serves no HTTP
    of its own (worker, scheduler); returns the runner, whose ``cleanup()`` stops it."""
    from aiohttp import web


    async def metrics(request: web.Request) -> web.Response:
        return web.Response(body=render_metrics(), headers={
            "Content-Type": "text/plain; version=0.0.4; charset=utf-8"})

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/health", health)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
