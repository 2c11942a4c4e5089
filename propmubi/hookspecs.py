"""Every hook a Propmubi plugin may implement.

A plugin is a module (or object) with functions named after these specs and marked with
``propmubi.hookimpl``. Hooks **register; they don't act**: they return data, callables or
awaitables, and the core awaits whatever I/O they hand back. The core calls each hook plugin by
plugin in dependency order (a plugin after everything it ``requires``), so results can be traced
to the plugin that gave them.

Hooks are grouped by the stage of the process lifecycle in which the core calls them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pluggy

from propmubi import PROJECT_NAME

if TYPE_CHECKING:
    from propmubi.config import Config
    from propmubi.context import PluginContext
    from propmubi.types import CliCommand, ConsolePage, ConsoleWidget, Job, PluginInfo
    from propmubi.web.routing import Routes

# pluggy only reads a spec's name, signature and docstring, never calls it: each body raises
# rather than ending without the value its return type promises.
hookspec = pluggy.HookspecMarker(PROJECT_NAME)

#: What ``propmubi_event_handlers`` maps an event type to: one handler or several, in order.
Handlers = Callable[..., Awaitable[Any]] | Sequence[Callable[..., Awaitable[Any]]]

# -------------------------------------------------------------------------------------------------
# Registration: called when the plugin manager loads, before anything else.
# -------------------------------------------------------------------------------------------------


@hookspec
def propmubi_plugin_info() -> PluginInfo:
    """Say who the plugin is and which plugins it needs.

    Every plugin must implement this hook.

    :returns: a :class:`propmubi.types.PluginInfo`; ``requires`` lists plugin names that must be
        enabled too. A missing or cyclic requirement stops the process at start with a message
        naming the plugins.
    """
    raise NotImplementedError


@hookspec
def propmubi_settings_class() -> type | None:
    """Give the attrs class that validates the plugin's ``[plugins.<name>]`` table.

    :returns: an attrs class whose fields all have defaults, or None when the plugin has no
        settings. A bad value fails at start naming ``plugins.<name>.<key>``.
    """
    raise NotImplementedError


@hookspec
def propmubi_cli_commands() -> list[CliCommand]:
    """Add ``propmubi`` sub-commands.

    :returns: a list of :class:`propmubi.types.CliCommand`; names must not clash with the core's
        or another plugin's. ``run(args, ctx)`` receives the plugin's started context.
    """
    raise NotImplementedError


# -------------------------------------------------------------------------------------------------
# Schema: called by ``propmubi migrate`` and by the readiness check.
# -------------------------------------------------------------------------------------------------


@hookspec
def propmubi_migrations() -> Path | None:
    """Point to the plugin's migrations folder.

    The folder holds ``NNNN_<what>.sql`` files (and optional ``NNNN_<what>.down.sql``), applied in
    version order, each in its own transaction, after the core's and after those of every plugin
    this one requires.

    :returns: the folder, or None when the plugin has no tables.
    """
    raise NotImplementedError


# -------------------------------------------------------------------------------------------------
# Web: called once by ``create_app``.
# -------------------------------------------------------------------------------------------------


@hookspec
def propmubi_api_routes(config: Config) -> Routes | None:
    """Declare the plugin's JSON API.

    :param config: the validated configuration.
    :returns: a :class:`propmubi.web.routing.Routes` table; its paths are mounted under
        ``/api/v1``, and its declarations feed the OpenAPI document. A handler that names a
        ``ctx`` parameter receives the plugin's :class:`~propmubi.context.PluginContext`.
    """
    raise NotImplementedError


@hookspec
def propmubi_http_routes(config: Config) -> Routes | None:
    """Declare routes mounted at the site root (outside ``/api/v1``), such as ``/health``.

    Meant for operational endpoints; domain APIs belong in :func:`propmubi_api_routes`.

    :param config: the validated configuration.
    :returns: a :class:`propmubi.web.routing.Routes` table, or None.
    """
    raise NotImplementedError


@hookspec
def propmubi_middlewares(config: Config) -> list[Callable[..., Awaitable[Any]]]:
    """Add aiohttp middlewares (authentication, say).

    They run inside the core's edge middleware (so errors they raise become problem+json and
    are logged with the request id) and before rate limiting and the route timeout (so an
    authentication middleware can set ``request[propmubi.web.appkeys.SUBJECT]`` for
    per-subject limits).

    :param config: the validated configuration.
    :returns: a list of ``@web.middleware`` functions, applied in the order given.
    """
    raise NotImplementedError


@hookspec
def propmubi_console_pages() -> list[ConsolePage]:
    """Contribute staff console pages and their navigation entries.

    :returns: a list of :class:`propmubi.types.ConsolePage`; paths are mounted under ``/console``.
        A page handler that names a ``ctx`` parameter receives the plugin's context.
    """
    raise NotImplementedError


@hookspec
def propmubi_console_widgets() -> list[ConsoleWidget]:
    """Contribute cards to the console dashboard (counts, queues, health).

    :returns: a list of :class:`propmubi.types.ConsoleWidget`; each is loaded
        (``load(request, ctx)``) when the dashboard is opened by a user with the widget's role.
    """
    raise NotImplementedError


@hookspec
def propmubi_actor_names() -> Mapping[str, Callable[..., Awaitable[Mapping[str, str]]]]:
    """Offer display names for the actors of a kind, so that console pages show names.

    History rows and events record who acted as ``<kind>:<id>``
    (:attr:`propmubi.actors.Actor.ref`); :func:`propmubi.console.names.actor_names` turns such
    references into names with the resolver of their kind.

    :returns: a mapping from actor kind (``user``, ``staff``) to an async resolver
        ``(db, ids) -> {id: name}``: ``db`` is the process's
        :class:`~propmubi.db.Database`, ``ids`` the ids as text (not necessarily valid for
        the kind); an id the resolver does not know is left out of its result.
    """
    raise NotImplementedError


@hookspec
def propmubi_template_dirs() -> list[Path]:
    """Add folders to the template search path.

    A plugin's templates live in ``templates/<plugin name>/`` inside such a folder so that names
    never collide; the core's templates are reachable as ``default:<name>``.

    :returns: a list of folders.
    """
    raise NotImplementedError


# -------------------------------------------------------------------------------------------------
# Events: called by the event bus when the web app or the worker starts.
# -------------------------------------------------------------------------------------------------


@hookspec
def propmubi_event_types() -> list[type]:
    """Register the event classes the plugin publishes (its part of the event catalog).

    Each is a frozen attrs class with a class attribute ``type`` named
    ``<plugin>.<past_tense>`` and an integer ``version``. Publishing an unregistered type fails.

    :returns: a list of event classes.
    """
    raise NotImplementedError


@hookspec
def propmubi_event_handlers() -> Mapping[str, Handlers]:
    """Subscribe to events.

    The plugin becomes one consumer group on the bus; each worker process is a consumer in it.

    :returns: a mapping from event type (``"crm.lead_assigned"``) to an async handler
        ``handler(tx, delivery)``, or a sequence of them. The handlers of one event run in the
        order given, in one database transaction that also records the event as processed for
        the plugin: all of them take effect, or (one raised) none, and the delivery is retried.
        ``delivery.ctx`` is the plugin's context.
    """
    raise NotImplementedError


# -------------------------------------------------------------------------------------------------
# Jobs: called by ``propmubi scheduler``.
# -------------------------------------------------------------------------------------------------


@hookspec
def propmubi_jobs() -> list[Job]:
    """Register periodic jobs.

    :returns: a list of :class:`propmubi.types.Job`. Job names are prefixed with the plugin's
        name by the scheduler; a Redis lease makes each tick run once across all schedulers.
        ``run(ctx)`` receives the plugin's started context.
    """
    raise NotImplementedError


# -------------------------------------------------------------------------------------------------
# Process lifecycle: called by every role (web, worker, scheduler) after pools open.
# -------------------------------------------------------------------------------------------------


@hookspec
def propmubi_startup(ctx: PluginContext[Any, Any]) -> Any:
    """Prepare the plugin's per-process state once the database and Redis are reachable.

    :param ctx: the plugin's context (settings parsed, services open; ``ctx.state`` is None).
    :returns: the plugin's state, an awaitable of it, or a callable returning either (the
        core resolves it, in dependency order, and stores it as ``ctx.state``); None when the
        plugin keeps no state. Raise :class:`~propmubi.config.ConfigError` to refuse to start.
    """
    raise NotImplementedError


@hookspec
def propmubi_cleanup(ctx: PluginContext[Any, Any]) -> Awaitable[None] | None:
    """Release what :func:`propmubi_startup` acquired (found in ``ctx.state``).

    Called in reverse dependency order before the pools close, only for plugins whose startup
    succeeded.

    :param ctx: the plugin's context.
    :returns: an awaitable (or a callable returning one) the core awaits, or None.
    """
    raise NotImplementedError


@hookspec
def propmubi_seed(ctx: PluginContext[Any, Any], scale: float) -> Awaitable[None] | None:
    """Create demo data for ``propmubi dev`` and ``propmubi seed``.

    Must be reproducible and safe to run twice (skip what exists).

    :param ctx: the plugin's started context.
    :param scale: 1.0 is the documented full demo size; ``dev`` uses a small fraction.
    :returns: an awaitable the core awaits, or None.
    """
    raise NotImplementedError


# -------------------------------------------------------------------------------------------------
# Providers: registries that let a plugin supply an implementation another plugin chooses by name.
# -------------------------------------------------------------------------------------------------


@hookspec
def propmubi_sms_providers() -> Mapping[str, Callable[..., Any]]:
    """Offer SMS providers.

    :returns: a mapping from provider name to a factory; the consuming plugin picks one by the name
        in its settings (:meth:`~propmubi.context.PluginContext.provider`). A factory takes the
        consuming plugin's context (raising :class:`~propmubi.config.ConfigError` when it must
        not run there) and returns an object with ``async send(to: str, body: str) -> None``,
        ``to`` in E.164.
    """
    raise NotImplementedError


@hookspec
def propmubi_notification_providers() -> Mapping[str, Callable[..., Any]]:
    """Offer notification providers (SMS, e-mail, push senders).

    :returns: a mapping from provider name to a factory taking the notifications plugin's
        context and returning a provider as ``propmubi_plugins.notifications.providers.base``
        describes it (``name``, ``channel``, ``async send(message) -> Receipt``).
    """
    raise NotImplementedError


@hookspec
def propmubi_payment_providers() -> Mapping[str, Callable[..., Any]]:
    """Offer payment providers.

    :returns: a mapping from provider name to a factory taking the consuming plugin's context.
    """
    raise NotImplementedError


@hookspec
def propmubi_storage_backends() -> Mapping[str, Callable[..., Any]]:
    """Offer object storage backends besides the core's ``local`` and ``s3``.

    The process opens the one named by ``[storage] backend`` with its services, and every
    plugin uses it as ``ctx.storage``.

    :returns: a mapping from backend name to a factory taking the
        :class:`~propmubi.config.StorageSection` (``local_dir`` already defaulted to
        ``<app.var_dir>/media``) and returning a :class:`propmubi.storage.Storage` (``open()``,
        ``close()`` and the object operations). A factory only builds: the core calls
        ``open()`` after the pools, and ``propmubi check`` calls the factory too. It may raise
        :class:`~propmubi.config.ConfigError` naming a ``storage.<key>``. A name the core or
        another plugin offers already stops the process at start.
    """
    raise NotImplementedError
