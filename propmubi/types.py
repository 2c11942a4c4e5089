"""The small value types that plugins hand to the core through hooks."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:
    from propmubi.context import Services

__all__ = ["CliCommand", "ConsolePage", "Job", "PluginInfo"]


_NAME = re.compile(r"[a-z][a-z0-9_]{0,30}")


def _plugin_name(instance: Any, attribute: attrs.Attribute, value: str) -> None:
    # The name prefixes tables, events and Redis streams, so it must be a plain identifier;
    # "__" would be ambiguous in PROPMUBI_PLUGINS__<NAME>__<KEY>.
    if not isinstance(value, str) or not _NAME.fullmatch(value) or "__" in value:
        raise ValueError(f"plugin name {value!r} must be lowercase letters, digits and single "
                         "underscores, starting with a letter, at most 31 characters")


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
    ``run`` receives the :class:`~propmubi.context.Services` and is awaited; a raised exception is
    logged and counted, and the job runs again at its next tick.
    """

    name: str
    run: Callable[[Services], Awaitable[Any]]
    every: float | None = None
    cron: str | None = None
    # A run longer than this is cancelled; it also bounds how long the lease is held.
    timeout: float = 300.0

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

    ``handler`` is an aiohttp handler; the console shell wraps it with login and role checks.
    A ``public`` page (the sign-in form) skips them; it still gets the session and CSRF checks.
    """

    path: str
    handler: Callable[..., Awaitable[Any]]
    name: str
    method: str = "GET"
    nav_label: str | None = None
    nav_order: int = 100
    role: str = "staff"
    public: bool = False


@attrs.frozen
class ConsoleWidget:
    """A card on the console dashboard.

    ``load(request)`` returns the template context of ``template`` (a plugin template such as
    ``"auth/widget.html"``); the dashboard renders each widget the user may see, by ``order``.
    A widget whose ``load`` fails shows an error in its card instead of breaking the page.
    """

    name: str
    title: str
    template: str
    load: Callable[..., Awaitable[dict[str, Any]]]
    order: int = 100
    role: str = "staff"


@attrs.frozen
class CliCommand:
    """A ``propmubi <name>`` sub-command contributed by a plugin.

    ``configure`` receives the argparse sub-parser to add arguments to; ``run`` receives the parsed
    arguments and the :class:`~propmubi.context.Services` and returns an exit code.
    """

    name: str
    help: str
    configure: Callable[[Any], None]
    run: Callable[[Any, Services], Awaitable[int]]


def template_dir(module_file: str) -> Path:
    """The ``templates/`` folder next to a plugin's ``__init__.py``."""
    return Path(module_file).parent / "templates"
