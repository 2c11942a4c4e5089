"""The small value types that plugins hand to the core through hooks."""

from __future__ import annotations

import keyword
import re
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from pathlib import Path
from typing import Any

import attrs

__all__ = ["ADMIN_ROLE", "ANY_ROLE", "CliCommand", "ConsolePage", "ConsoleWidget", "Job",
           "PluginInfo", "Principal", "RateLimit"]


_NAME = re.compile(r"[a-z][a-z0-9_]{0,30}")


def _plugin_name(instance: Any, attribute: attrs.Attribute[Any], value: str) -> None:
    # The name prefixes tables, events and Redis streams, so it must be a plain identifier;
    # "__" would be ambiguous in PROPMUBI_PLUGINS__<NAME>__<KEY>.
    if not isinstance(value, str) or not _NAME.fullmatch(value) or "__" in value:
        raise ValueError(f"plugin name {value!r} must be lowercase letters, digits and single "
                         "underscores, starting with a letter, at most 31 characters")
    # It is also the package name (propmubi_plugins.<name>), which a keyword cannot be.
    if keyword.iskeyword(value):
        raise ValueError(f"plugin name {value!r} is a Python keyword")


def _names(value: Any) -> tuple[str, ...]:
    # requires="auth" would otherwise become ("a", "u", "t", "h").
    return (value,) if isinstance(value, str) else tuple(value)


@attrs.frozen
class PluginInfo:
    """Who a plugin is and what it needs.

    :ivar name: the plugin's name: its table prefix, event prefix and config section.
    :ivar requires: names of plugins that must be enabled and set up (migrated, started) first.
    """

    name: str = attrs.field(validator=_plugin_name)
    version: str = "0.0.0"
    requires: tuple[str, ...] = attrs.field(default=(), converter=_names)
    description: str = ""


@attrs.frozen
class Job:
    """A periodic job run by ``propmubi scheduler``.

    Exactly one of ``every`` (seconds) and ``cron`` (a five-field cron expression, UTC) is set.
    ``run`` receives the plugin's :class:`~propmubi.context.PluginContext` and is awaited; a
    raised exception is logged and counted, and the job runs again at its next tick.
    """

    name: str
    run: Callable[[Any], Coroutine[Any, Any, Any]]  # an async def: it becomes a task
    every: float | None = None
    cron: str | None = None
    # A run longer than this is cancelled; it also bounds how long the lease is held.
    timeout: float = 300.0
    #: The plugin whose context ``run`` receives; filled in by the core from the hook's owner.
    plugin: str = ""

    def __attrs_post_init__(self) -> None:
        if (self.every is None) == (self.cron is None):
            raise ValueError(f"job {self.name}: set exactly one of every= and cron=")
        if self.every is not None and self.every <= 0:
            raise ValueError(f"job {self.name}: every= must be positive")
        if self.timeout <= 0:
            raise ValueError(f"job {self.name}: timeout= must be positive")
        if self.cron is not None:
            from croniter import croniter

            if not croniter.is_valid(self.cron):
                raise ValueError(f"job {self.name}: invalid cron expression {self.cron!r}")


@attrs.frozen
class ConsolePage:
    """A console page and, when ``nav_label`` is set, its navigation entry.

    ``handler`` is an aiohttp handler, called with the plugin's context too when it names a
    ``ctx`` parameter; the console shell wraps it with login and role checks. A ``public`` page
    (the sign-in form) skips them; it still gets the session and CSRF checks. ``plugin`` is
    filled in by the core.

    ``max_body`` is the bytes of body the page accepts instead of ``[http] max_body_bytes``
    (a form that uploads files): a byte count, or a callable given the plugin's context when
    the application starts (a limit from the plugin's settings). A larger body gets 413.
    """

    path: str
    handler: Callable[..., Awaitable[Any]]
    name: str
    method: str = "GET"
    nav_label: str | None = None
    nav_order: int = 100
    role: str = "staff"
    public: bool = False
    plugin: str = ""
    max_body: int | Callable[[Any], int] | None = None


@attrs.frozen
class ConsoleWidget:
    """A card on the console dashboard.

    ``load(request)`` (``load(request, ctx)`` when it names ``ctx``) returns the template
    context of ``template`` (a plugin template such as ``"auth/widget.html"``); the dashboard
    renders each widget the user may see, by ``order``. A widget whose ``load`` fails shows an
    error in its card instead of breaking the page. ``plugin`` is filled in by the core.
    """

    name: str
    title: str
    template: str
    load: Callable[..., Awaitable[dict[str, Any]]]
    order: int = 100
    role: str = "staff"
    plugin: str = ""


@attrs.frozen
class CliCommand:
    """A ``propmubi <name>`` sub-command contributed by a plugin.

    ``configure`` receives the argparse sub-parser to add arguments to; ``run`` receives the parsed
    arguments and the plugin's started :class:`~propmubi.context.PluginContext` and returns an
    exit code.
    """

    name: str
    help: str
    configure: Callable[[Any], None]
    run: Callable[[Any, Any], Awaitable[int]]
    #: False: the command opens no database or Redis (``ctx`` is None), e.g. a listing of
    #: what the plugins declare.
    needs_services: bool = True


def template_dir(module_file: str) -> Path:
    """The ``templates/`` folder next to a plugin's ``__init__.py``."""
    return Path(module_file).parent / "templates"


_PERIODS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}


@attrs.frozen
class RateLimit:
    """``count`` requests per ``period`` seconds."""

    count: int
    period: int

    @classmethod
    def parse(cls, text: str) -> RateLimit:
        """Parse ``"30/minute"`` (or ``second``, ``hour``, ``day``; also ``"30/10s"``)."""
        match = re.fullmatch(r"\s*(\d+)\s*/\s*(?:(\d+)\s*s|(second|minute|hour|day))\s*", text)
        if not match or int(match[1]) <= 0:
            raise ValueError(f"rate limit {text!r} is not '<count>/<second|minute|hour|day>'")
        period = int(match[2]) if match[2] else _PERIODS[match[3]]
        if period <= 0:
            raise ValueError(f"rate limit {text!r} has a zero period")
        return cls(int(match[1]), period)

    def __str__(self) -> str:
        return f"{self.count}/{self.period}s"


#: In ``roles=``: any authenticated caller, whatever their roles.
ANY_ROLE = "*"
#: The role that passes every role check.
ADMIN_ROLE = "admin"


def _role_set(roles: Iterable[str]) -> frozenset[str]:
    # A typed converter: mypy's attrs plugin cannot solve the generic `converter=frozenset`.
    return frozenset(roles)


@attrs.frozen
class Principal:
    """An authenticated caller.

    :ivar subject: the caller's stable id (a user id).
    :ivar roles: the caller's role names.
    :ivar session: the sign-in session the credentials belong to, when there is one.
    """

    subject: str
    roles: frozenset[str] = attrs.field(default=frozenset(), converter=_role_set)
    session: str | None = None

    def has_any(self, roles: Iterable[str]) -> bool:
        """Whether this caller satisfies a requirement of any of ``roles``."""
        wanted = set(roles)
        return ANY_ROLE in wanted or ADMIN_ROLE in self.roles or bool(wanted & self.roles)
