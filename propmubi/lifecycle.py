"""Opening and closing a process's services: pools, plugin contexts, startup and cleanup."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from propmubi.config import Config
from propmubi.context import PluginContext
from propmubi.db import Database
from propmubi.events.catalog import EventCatalog
from propmubi.keys import Keys
from propmubi.pluginset import PluginSet, resolve
from propmubi.redis import create_redis
from propmubi.services import Services

__all__ = ["open_services"]


@contextlib.asynccontextmanager
async def open_services(config: Config, plugins: PluginSet, *, lifecycle: bool = True
                        ) -> AsyncIterator[Services]:
    """Open the pools, give every plugin its context, run the plugins' startup hooks (each
    result becomes that plugin's ``ctx.state``), and undo it all on exit.

    :param lifecycle: run ``propmubi_startup`` / ``propmubi_cleanup`` (CLI tools that only
        query may skip them; contexts then have no state).
    """
    catalog = EventCatalog.from_plugins(plugins)
    db = Database(config.database)
    await db.open()
    redis = create_redis(config.redis)
    services = Services(config=config, plugins=plugins, db=db, redis=redis,
                        keys=Keys(config.redis.key_prefix), events=catalog)
    for plugin in plugins:
        services.contexts[plugin.name] = PluginContext.create(plugin.name, plugin.settings,
                                                              services)
    started: list[str] = []
    try:
        if lifecycle:
            startups = {plugin.name: result for plugin, result
                        in plugins.call("propmubi_startup", contexts=services.contexts)}
            for plugin in plugins:
                if plugin.name in startups:
                    services.contexts[plugin.name].state = await resolve(startups[plugin.name])
                started.append(plugin.name)
        yield services
    finally:
        try:
            if lifecycle:
                for plugin, result in plugins.call("propmubi_cleanup", reverse=True,
                                                   contexts=services.contexts):
                    if plugin.name in started:
                        await resolve(result)
        finally:
            await redis.aclose()
            await db.close()
