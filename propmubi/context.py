"""The services one process shares: configuration, plugins, database, Redis, key names."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import attrs

from propmubi.config import Config
from propmubi.db import Database
from propmubi.events.catalog import EventCatalog
from propmubi.keys import Keys
from propmubi.plugins import PluginSet, resolve
from propmubi.redis import Redis, create_redis

__all__ = ["Services", "open_services"]


@attrs.define
class Services:
    """What every role (web, scheduler, worker, CLI) hands to plugin code."""

    config: Config
    plugins: PluginSet
    db: Database
    redis: Redis
    keys: Keys


@contextlib.asynccontextmanager
async def open_services(config: Config, plugins: PluginSet, *, lifecycle: bool = True
                        ) -> AsyncIterator[Services]:
    """Open the pools, run the plugins' startup hooks, and undo both on exit.

    :param lifecycle: run ``propmubi_startup`` / ``propmubi_cleanup`` (CLI tools that only
        query may skip them).
    """
    catalog = EventCatalog.from_plugins(plugins)
    db = Database(config.database)
    db.catalog = catalog
    await db.open()
    redis = create_redis(config.redis)
    services = Services(config=config, plugins=plugins, db=db, redis=redis,
                        keys=Keys(config.redis.key_prefix))
    started = []
    try:
        if lifecycle:
            for plugin, result in plugins.call("propmubi_startup", services=services):
                await resolve(result)
                started.append(plugin.name)
        yield services
    finally:
        try:
            if lifecycle:
                for plugin, result in plugins.call("propmubi_cleanup", reverse=True,
                                                   services=services):
                    if plugin.name in started:
                        await resolve(result)
        finally:
            await redis.aclose()
            await db.close()
