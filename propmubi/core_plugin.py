"""The core's own endpoints, registered through the plugin manager like any plugin:
``/health``, ``/ready``, ``/metrics`` and ``/api/v1/openapi.json``; the ``propmubi plugin``
command (:mod:`propmubi.scaffold`); and the job that forgets expired idempotency keys."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import attrs
from aiohttp import web

from propmubi import __version__, hookimpl, migrate, scaffold
from propmubi.config import Config
from propmubi.context import PluginContext
from propmubi.observability import render_metrics
from propmubi.paths import CORE_MIGRATIONS
from propmubi.types import CliCommand, Job, PluginInfo
from propmubi.web import idempotency_store
from propmubi.web.appkeys import OPENAPI, PLUGINS, SERVICES
from propmubi.web.ratelimit import client_ip
from propmubi.web.routing import Routes, json_response

READY_CHECK_TIMEOUT = 2.0
# /ready runs its checks at most this often (s).
READY_CACHE_SECONDS = 1.0


@attrs.frozen
class Health:
    """The process is up."""

    status: str
    version: str


@attrs.frozen
class Check:
    """One dependency's state."""

    ok: bool
    detail: str = ""


@attrs.frozen
class Readiness:
    """Whether this process can serve traffic, and why not."""

    status: str
    checks: dict[str, Check]


@hookimpl
def propmubi_plugin_info() -> PluginInfo:
    return PluginInfo(name="core", version=__version__, description="health, readiness, metrics")


@hookimpl
def propmubi_migrations() -> Path:
    return CORE_MIGRATIONS


async def _check(name: str, probe: Any) -> tuple[str, Check]:
    try:
        async with asyncio.timeout(READY_CHECK_TIMEOUT):
            detail = await probe()
        return name, Check(ok=not detail, detail=detail or "")
    except TimeoutError:
        return name, Check(ok=False, detail=f"no answer within {READY_CHECK_TIMEOUT:g}s")
    except Exception as exc:  # any failure of a dependency means "not ready", with the reason
        return name, Check(ok=False, detail=f"{type(exc).__name__}: {exc}".strip())


class ReadyCache:
    """The last round of readiness checks, reused for ``ttl`` seconds: a flood of ``/ready``
    calls costs at most one round of database, Redis and migration checks per interval.
    Callers arriving while a round runs wait for that round instead of starting their own."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._round: asyncio.Future[dict[str, Check]] | None = None
        self._started = 0.0

    async def get(self, run: Callable[[], Awaitable[dict[str, Check]]], now: float
                  ) -> dict[str, Check]:
        """The current round's checks, starting a round with ``run()`` when the last one is
        older than ``ttl`` at ``now`` (monotonic seconds)."""
        current = self._round
        if current is None or (current.done() and now - self._started >= self.ttl):
            self._started = now
            current = self._round = asyncio.ensure_future(run())
        # Shielded: a caller that hangs up does not cancel the round the others wait for.
        return await asyncio.shield(current)


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address.strip().partition("%")[0]).is_loopback
    except ValueError:  # "unknown" (a unix socket peer) is not known to be local
        return False


def shown_to(checks: dict[str, Check], local: bool) -> dict[str, Check]:
    """The checks as a caller may see them: with their details (exception texts, migration
    names) on this machine only; anyone else learns only which check fails."""
    return checks if local else {name: Check(ok=c.ok) for name, c in checks.items()}


@hookimpl
def propmubi_http_routes(config: Config) -> Routes:
    routes = Routes(tags=["operations"])
    trust_forwarded = config.http.trust_forwarded

    @routes.get("/health", response=Health, rate_limit=False)
    async def health(request: web.Request) -> Health:
        """Liveness: the process answers."""
        return Health(status="ok", version=__version__)

    ready_checks = ReadyCache(READY_CACHE_SECONDS)

    @routes.get("/ready", response=Readiness, rate_limit=False, errors=[503])
    async def ready(request: web.Request) -> web.Response:
        """Readiness: PostgreSQL and Redis answer and the schema is current.

        Why a check fails is told to loopback callers only (behind a trusted proxy, the
        forwarded address counts): others see each check's ``ok`` and an empty ``detail``.
        The checks run at most once per second; callers meanwhile share their result."""
        services = request.app[SERVICES]

        async def database() -> str:
            await services.db.fetchval("SELECT 1")
            return ""

        async def redis() -> str:
            await services.redis.ping()
            return ""

        async def migrations() -> str:
            state = await migrate.pending(services.db, request.app[PLUGINS])
            parts = []
            if state.pending:
                parts.append(f"{len(state.pending)} pending: "
                             + ", ".join(m.label for m in state.pending[:5])
                             + "; run `propmubi migrate up`")
            if state.changed:
                parts.append("changed after applying: "
                             + ", ".join(m.label for m in state.changed[:5]))
            return "; ".join(parts)

        async def run_checks() -> dict[str, Check]:
            return dict(await asyncio.gather(_check("database", database),
                                             _check("redis", redis),
                                             _check("migrations", migrations)))

        checks = await ready_checks.get(run_checks, services.clock.monotonic())
        ok = all(c.ok for c in checks.values())
        checks = shown_to(checks, _is_loopback(client_ip(request, trust_forwarded)))
        return json_response(Readiness(status="ok" if ok else "unavailable", checks=checks),
                             status=200 if ok else 503)

    if not config.metrics.listen:  # else on a listener of its own (propmubi.roles.run_web)
        @routes.get("/metrics", rate_limit=False, content_type="text/plain")
        async def metrics(request: web.Request) -> web.Response:
            """Prometheus metrics of this process."""
            return web.Response(body=render_metrics(), headers={
                "Content-Type": "text/plain; version=0.0.4; charset=utf-8"})

    return routes


@hookimpl
def propmubi_api_routes(config: Config) -> Routes:
    routes = Routes(tags=["meta"])

    @routes.get("/openapi.json", rate_limit=False)
    async def openapi(request: web.Request) -> web.Response:
        """This API's OpenAPI 3.1 document."""
        return json_response(request.app[OPENAPI])

    return routes


@hookimpl
def propmubi_cli_commands() -> list[CliCommand]:
    return [scaffold.command()]


async def _purge_idempotency_keys(ctx: PluginContext[None, None]) -> None:
    await idempotency_store.purge(ctx.db)


@hookimpl
def propmubi_jobs() -> list[Job]:
    """Delete Idempotency-Key records past their expiry every ten minutes."""
    return [Job(name="purge_idempotency_keys", run=_purge_idempotency_keys, every=600.0)]
