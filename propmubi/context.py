"""One context per plugin and process: the plugin's home for settings and state.

The core builds a :class:`PluginContext` for every enabled plugin when a process opens its
services (:func:`propmubi.lifecycle.open_services`) and hands it to everything the plugin
declared: its startup and cleanup hooks, route handlers and console pages that name a ``ctx``
parameter, dashboard widgets, jobs, CLI commands and event handlers (``delivery.ctx``). What
``propmubi_startup`` returns becomes ``ctx.state``; nothing else holds a plugin's per-process
state (no module-level registries).

A plugin types its context once, next to its settings::

    Ctx = PluginContext[CatalogSettings, CatalogState]

and every service function takes it first: ``async def create_project(ctx: Ctx, actor:
Actor, data: ProjectIn) -> ProjectOut``.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import attrs

from propmubi.events.outbox import publish as _publish
from propmubi.keys import Keys

if TYPE_CHECKING:
    import uuid

    from propmubi.config import Config
    from propmubi.db import Database, Tx
    from propmubi.redis import Redis
    from propmubi.services import Clock, Services
    from propmubi.storage import Storage

__all__ = ["PluginContext", "PluginKeys", "takes_ctx"]

SettingsT = TypeVar("SettingsT")
StateT = TypeVar("StateT")


@attrs.frozen
class PluginKeys:
    """Redis key names owned by one plugin: ``<prefix>p:<plugin>:<parts...>``
    (:meth:`propmubi.keys.Keys.plugin`, pre-bound to the plugin's name, so that two plugins can
    never write each other's keys)."""

    keys: Keys
    plugin: str

    def __call__(self, *parts: str) -> str:
        """The key made of ``parts`` under the plugin's namespace."""
        return self.keys.plugin(self.plugin, *parts)

    def pattern(self) -> str:
        """A SCAN pattern matching every key of the plugin."""
        return self.keys.plugin(self.plugin, "*")


@attrs.define(eq=False)
class PluginContext(Generic[SettingsT, StateT]):
    """What the core gives one plugin in one process.

    :ivar name: the plugin's name (its table, event and config prefix).
    :ivar settings: its ``[plugins.<name>]`` table, parsed once at start into its settings
        class (None when it declares none).
    :ivar services: the process's shared services (prefer the shortcuts below).
    :ivar keys: its Redis key namespace.
    :ivar log: its logger, ``propmubi.<name>``.
    :ivar state: what its ``propmubi_startup`` returned (None before startup, or when it
        returned nothing).
    """

    name: str
    settings: SettingsT
    services: Services
    keys: PluginKeys
    log: logging.Logger
    state: StateT = attrs.field(default=None)

    @classmethod
    def create(cls, name: str, settings: Any, services: Services) -> PluginContext[Any, Any]:
        """A fresh context, before its plugin's startup ran."""
        return cls(name=name, settings=settings, services=services,
                   keys=PluginKeys(services.keys, name),
                   log=logging.getLogger(f"propmubi.{name}"))

    @property
    def config(self) -> Config:
        """The process's validated configuration."""
        return self.services.config

    @property
    def db(self) -> Database:
        """The PostgreSQL pools (``async with ctx.db.transaction() as tx``)."""
        return self.services.db

    @property
    def redis(self) -> Redis:
        """The Redis client; name keys with :attr:`keys`."""
        return self.services.redis

    @property
    def storage(self) -> Storage:
        """The process's object storage (``[storage] backend``), shared by every plugin.

        A plugin's keys start with a top-level folder it owns, so that no plugin overwrites or
        deletes another's objects (the catalogue's are ``projects/...``); see
        :mod:`propmubi.storage` for the operations and the key rules.
        """
        return self.services.storage

    @property
    def clock(self) -> Clock:
        """The process's clock (UTC)."""
        return self.services.clock

    async def publish(self, tx: Tx, event: Any, *, actor: str | None = None,
                      correlation_id: str | None = None) -> uuid.UUID:
        """Record ``event`` in the outbox inside ``tx``: the one way to publish.

        The event reaches its stream after ``tx`` commits; a rolled-back transaction leaves
        no event. The correlation id defaults to the current request's (or job's, or handled
        event's) id.

        :param event: an instance of a class registered through ``propmubi_event_types`` by an
            enabled plugin (any plugin may publish any registered type; by convention a plugin
            publishes its own).
        :param actor: who caused it (``user:<id>``, ``staff:<id>``, ``system``, ...).
        :returns: the event's id (a UUIDv7).
        :raises propmubi.events.EventTypeError: the type is not registered.
        """
        return await _publish(self.services.events, tx, event, actor=actor,
                              correlation_id=correlation_id)

    def provider(self, hook: str, name: str, *, setting: str) -> Any:
        """Build the provider called ``name`` offered through ``hook``
        (``propmubi_sms_providers``, ``propmubi_payment_providers``, ...), passing this context
        to its factory.

        :param setting: the configuration key that chose ``name``, for the error message.
        :raises propmubi.config.ConfigError: nothing enabled offers ``name``.
        """
        return self.services.plugins.provider(hook, name, setting=setting)(self)


@functools.cache
def takes_ctx(func: Callable[..., Any]) -> bool:
    """Whether ``func`` (a route handler, console page or widget loader) names a ``ctx``
    parameter, and so receives its plugin's context. Decided once per function."""
    return "ctx" in inspect.signature(func).parameters
