"""Pytest fixtures for Propmubi's tests and for third-party plugins' tests.

Enable with ``pytest_plugins = ["propmubi.testing"]`` in a ``conftest.py``. Tests talk to real
PostgreSQL and Redis: the servers named by ``PROPMUBI_TEST_DATABASE_URL`` /
``PROPMUBI_TEST_REDIS_URL``, else embedded ones started once per session. Each test gets its own
database, cloned from a migrated template (fast), and its own Redis key prefix.

Override the ``extra_plugins`` fixture to choose the plugin objects a test loads, and
``config_overrides`` to change configuration sections.
"""

from __future__ import annotations

import asyncio
import html
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from aiohttp import web

from propmubi import hookimpl, migrate
from propmubi.config import Config, load_config
from propmubi.db import admin_execute, quote_ident, with_database
from propmubi.embedded import EmbeddedPostgres, EmbeddedRedis
from propmubi.lifecycle import open_services
from propmubi.plugins import PluginSet, load_plugins
from propmubi.services import Services
from propmubi.types import PluginInfo, Principal
from propmubi.web.appkeys import PRINCIPAL, SUBJECT

__all__ = ["ROLES_HEADER", "STAFF_PASSWORD", "TEST_USER_ID", "StandInAuth", "TestServers",
           "csrf_of", "make_config", "make_staff", "sign_in"]


@attrs.define
class TestServers:
    """The PostgreSQL and Redis of this test session."""

    __test__ = False  # not a test class, despite its name

    database_url: str  # an administrative database on the server (creates and drops others)
    redis_url: str
    postgres: EmbeddedPostgres | None = None
    redis: EmbeddedRedis | None = None


def make_config(database_url: str, redis_url: str, key_prefix: str, **sections: dict[str, Any]
                ) -> Config:
    """A test configuration: given servers, quiet logs, no config file, no env overrides.

    Redis's bounds are generous: production's (0.1 s for caches, 1 s for sessions) are for a
    Redis that hangs, and a loaded test machine (every core busy, a Redis per worker) can be
    that slow to answer a healthy one. The tests of a hung Redis set their own bounds."""
    base = load_config(environ={}, use_default_path=False)
    config = base.evolve(
        app={"environment": "test"},
        database={"url": database_url, "pool_min": 0, "pool_max": 8},
        redis={"url": redis_url, "key_prefix": key_prefix, "fast_timeout": 5.0,
               "record_timeout": 10.0},
        http={"port": 0, "access_log": False},
    )
    return config.evolve(**sections) if sections else config


@pytest.fixture(scope="session")
def test_servers() -> Iterator[TestServers]:
    """Real PostgreSQL and Redis for the whole session."""
    db_url = os.environ.get("PROPMUBI_TEST_DATABASE_URL")
    redis_url = os.environ.get("PROPMUBI_TEST_REDIS_URL")
    folder = Path(tempfile.mkdtemp(prefix="propmubi-test-"))
    postgres = redis = None
    try:
        if not db_url:
            postgres = EmbeddedPostgres(folder / "pg", fast=True)
            db_url = postgres.start()
        if not redis_url:
            redis = EmbeddedRedis(folder / "redis", persistent=False)
            redis_url = redis.start()
        yield TestServers(db_url, redis_url, postgres, redis)
    finally:
        if redis is not None:
            redis.stop()
        if postgres is not None:
            postgres.stop()
        shutil.rmtree(folder, ignore_errors=True)


def create_database(servers: TestServers, name: str, template: str | None = None) -> str:
    """Create a database on the test server; return its URL."""
    statement = f"CREATE DATABASE {quote_ident(name)}"
    if template:
        statement += f" TEMPLATE {quote_ident(template)}"
    admin_execute(servers.database_url, statement)
    return with_database(servers.database_url, name)


def drop_database(servers: TestServers, name: str) -> None:
    """Drop a test database, disconnecting whoever is still on it."""
    admin_execute(servers.database_url,
                  f"DROP DATABASE IF EXISTS {quote_ident(name)} WITH (FORCE)")


@pytest.fixture
def extra_plugins() -> list[Any]:
    """Plugin objects loaded in addition to installed ones (override per module or test)."""
    return []


@pytest.fixture
def config_overrides() -> dict[str, dict[str, Any]]:
    """Configuration sections to change for a test: ``{"http": {"request_timeout": 1}}``."""
    return {}


@pytest.fixture(scope="session")
def template_plugins() -> list[Any]:
    """Plugin objects whose migrations the template database carries (override in conftest)."""
    return []


@pytest.fixture(scope="session")
def template_database(test_servers: TestServers, template_plugins: list[Any]) -> Iterator[str]:
    """A database migrated once per session; every test database is a clone of it."""
    name = f"propmubi_tmpl_{uuid.uuid4().hex[:8]}"
    url = create_database(test_servers, name)
    config = make_config(url, test_servers.redis_url, "template:")
    asyncio.run(migrate.up(url, load_plugins(config, extra=template_plugins)))
    yield name
    drop_database(test_servers, name)


@pytest.fixture
def database_url(test_servers: TestServers, template_database: str) -> Iterator[str]:
    """A fresh database for this test, cloned from the template (dropped afterwards)."""
    name = f"propmubi_t_{uuid.uuid4().hex[:12]}"
    url = create_database(test_servers, name, template=template_database)
    yield url
    drop_database(test_servers, name)


@pytest.fixture
def redis_prefix() -> str:
    """This test's own Redis key prefix."""
    return f"t{uuid.uuid4().hex[:10]}:"


@pytest.fixture
def config(test_servers: TestServers, database_url: str, redis_prefix: str,
           config_overrides: dict[str, dict[str, Any]]) -> Config:
    """The test's configuration (its own database and key prefix)."""
    return make_config(database_url, test_servers.redis_url, redis_prefix, **config_overrides)


@pytest.fixture
def plugins(config: Config, extra_plugins: list[Any]) -> PluginSet:
    """The loaded plugins for this test's configuration."""
    return load_plugins(config, extra=extra_plugins)


@pytest.fixture
async def migrated(config: Config, plugins: PluginSet) -> Config:
    """The test database with every enabled plugin's migrations applied (usually a no-op:
    the template has them)."""
    await migrate.up(config.database.url, plugins)
    return config


@pytest.fixture
async def services(migrated: Config, plugins: PluginSet) -> AsyncIterator[Services]:
    """Open pools and started plugins on a migrated test database."""
    async with open_services(migrated, plugins) as opened:
        yield opened
        await _delete_keys(opened)


async def _delete_keys(services: Services) -> None:
    keys = [k async for k in services.redis.scan_iter(match=services.keys.pattern(), count=500)]
    if keys:
        await services.redis.delete(*keys)


@pytest.fixture
async def event_bus(services: Services) -> Any:
    """The event bus of this test's plugins; ``await event_bus.drain()`` relays and handles
    every committed event now, so tests assert on effects without sleeping."""
    from propmubi.events.bus import EventBus

    return EventBus(services)


@pytest.fixture
async def client(migrated: Config, plugins: PluginSet, aiohttp_client: Any) -> Any:
    """An aiohttp test client on the full application (every middleware, real services)."""
    from propmubi.app import create_app

    app = create_app(migrated, plugins)
    test_client = await aiohttp_client(app)
    yield test_client
    await asyncio.sleep(0)


# -------------------------------------------------------------------------------------------------
# Signing in without the auth plugin, and into the console
# -------------------------------------------------------------------------------------------------

#: The request header that :class:`StandInAuth` reads: comma-separated role names.
ROLES_HEADER = "X-Test-Roles"
#: The user id :class:`StandInAuth` signs requests in as.
TEST_USER_ID = str(uuid.UUID(int=1))
#: The password :func:`make_staff` gives staff accounts.
STAFF_PASSWORD = "correct horse battery"


class StandInAuth:
    """A test plugin standing in for an authentication plugin: a request with
    ``X-Test-Roles: a,b`` is a signed-in user (:data:`TEST_USER_ID`) holding those roles.

    Lets a plugin's tests exercise the core's ``roles=`` checks without depending on the auth
    plugin: add ``StandInAuth()`` to ``extra_plugins`` (it is named ``stand_in_auth``).
    """

    @hookimpl
    def propmubi_plugin_info(self) -> PluginInfo:
        return PluginInfo(name="stand_in_auth", description="test sign-in by header")

    @hookimpl
    def propmubi_middlewares(self, config: Config) -> list[Any]:
        @web.middleware
        async def identify(request: web.Request,
                           handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                           ) -> web.StreamResponse:
            roles = request.headers.get(ROLES_HEADER)
            if roles is not None:
                request[PRINCIPAL] = Principal(TEST_USER_ID,
                                               [r for r in roles.split(",") if r])
                request[SUBJECT] = TEST_USER_ID
            return await handler(request)

        return [identify]


async def make_staff(services: Services, email: str = "sam@example.com",
                     name: str = "Sam Staff", roles: tuple[str, ...] = ("staff",)) -> Any:
    """A console staff account (password :data:`STAFF_PASSWORD`)."""
    from propmubi.console import accounts

    return await accounts.create_staff(services.db, email, name, STAFF_PASSWORD, list(roles))


def csrf_of(body: str) -> str:
    """The CSRF token of the first form in a console page."""
    from propmubi.console.sessions import CSRF_FIELD

    match = re.search(rf'name="{CSRF_FIELD}" value="([^"]+)"', body)
    assert match, body
    return html.unescape(match.group(1))


async def sign_in(client: Any, email: str = "sam@example.com", password: str = STAFF_PASSWORD,
                  next_path: str = "", token: str | None = None) -> Any:
    """Post the console's sign-in form (fetching a CSRF token first unless given); the
    response (303 on success)."""
    if token is None:
        page = await client.get("/console/login")
        token = csrf_of(await page.text())
    return await client.post("/console/login", allow_redirects=False, data={
        "csrf_token": token, "email": email, "password": password, "next": next_path})
