"""Opening and closing a process's services: pools, object storage, plugin contexts, startup
and cleanup."""

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
from propmubi.storage import create_storage

__all__ = ["open_services"]


@contextlib.asynccontextmanager
async def open_services(config: Config, plugins: PluginSet, *, lifecycle: bool = True
                        ) -> AsyncIterator[Services]:
    """Open the pools and the object storage, give every plugin its context, run the plugins'
    startup hooks (each result becomes that plugin's ``ctx.state``), and undo it all on exit
    (plugin cleanup first, then storage, Redis and the database).

    :param lifecycle: run ``propmubi_startup`` / ``propmubi_cleanup`` (CLI tools that only
        query may skip them; contexts then have no state).
    :raises ConfigError: ``storage.backend`` names nothing on offer (before anything opens).
    """
    catalog = EventCatalog.from_plugins(plugins)
    storage = create_storage(config, plugins)
    async with contextlib.AsyncExitStack() as opened:
        db = Database(config.database)
        await db.open()
        opened.push_async_callback(db.close)
        redis = create_redis(config.redis)
        opened.push_async_callback(redis.aclose)
        await storage.open()
        opened.push_async_callback(storage.close)
        services = Services(config=config, plugins=plugins, db=db, redis=redis,
                            storage=storage, keys=Keys(config.redis.key_prefix),
                            events=catalog)
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
                        services.contexts[plugin.name].state = await resolve(
                            startups[plugin.name])
                    started.append(plugin.name)
            yield services
        finally:
            if lifecycle:
                for plugin, result in plugins.call("propmubi_cleanup", reverse=True,
                                                   contexts=services.contexts):
                    if plugin.name in started:
                        await resolve(result)
