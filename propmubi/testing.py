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
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from propmubi import migrate
from propmubi.config import Config, load_config
from propmubi.db import admin_execute, quote_ident, with_database
from propmubi.embedded import EmbeddedPostgres, EmbeddedRedis
from propmubi.lifecycle import open_services
from propmubi.plugins import PluginSet, load_plugins
from propmubi.services import Services

__all__ = ["TestServers", "make_config"]


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
    """A test configuration: given servers, quiet logs, no config file, no env overrides."""
    base = load_config(environ={}, use_default_path=False)
    config = base.evolve(
        app={"environment": "test"},
        database={"url": database_url, "pool_min": 0, "pool_max": 8},
        redis={"url": redis_url, "key_prefix": key_prefix},
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
