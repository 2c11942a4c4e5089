"""The services one process shares: configuration, plugins, database, Redis, object storage,
key names, the event catalog, the clock, and one :class:`~propmubi.context.PluginContext` per
plugin."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import attrs

from propmubi.config import Config
from propmubi.db import Database
from propmubi.events.catalog import EventCatalog
from propmubi.keys import Keys
from propmubi.pluginset import PluginSet
from propmubi.redis import Redis
from propmubi.storage import Storage

__all__ = ["Clock", "Services"]


class Clock:
    """The time, in one place, so that every plugin reads it the same way (UTC, aware)."""

    def now(self) -> dt.datetime:
        """The current time as an aware UTC datetime."""
        return dt.datetime.now(dt.UTC)

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back, for durations and deadlines."""
        return time.monotonic()


@attrs.define(eq=False)
class Services:
    """What every role (web, scheduler, worker, CLI) shares, opened by
    :func:`propmubi.lifecycle.open_services`.

    Plugin code reaches these through its :class:`~propmubi.context.PluginContext`; the core's
    own code (middlewares, the bus, the scheduler) takes them directly.
    """

    config: Config
    plugins: PluginSet
    db: Database
    redis: Redis
    #: The open object storage backend (``[storage] backend``).
    storage: Storage
    keys: Keys
    events: EventCatalog
    clock: Clock = attrs.field(factory=Clock)
    #: Each enabled plugin's :class:`~propmubi.context.PluginContext`, by name (typed Any here
    #: because propmubi.context imports this module, not the other way round).
    contexts: dict[str, Any] = attrs.field(factory=dict)

    def context(self, plugin: str) -> Any:
        """The :class:`~propmubi.context.PluginContext` of the enabled plugin ``plugin``.

        :raises KeyError: no such plugin is enabled in this process.
        """
        return self.contexts[plugin]
