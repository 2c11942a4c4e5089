"""The enabled plugins of a process, in dependency order, and how the core calls their hooks.

Loading them (discovery, the enable list, validation) is :mod:`propmubi.plugins`; this module
is what the rest of the core holds on to once they are loaded.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator, Mapping
from typing import Any

import attrs
import pluggy

from propmubi.config import ConfigError
from propmubi.types import PluginInfo

__all__ = ["LoadedPlugin", "PluginError", "PluginSet", "resolve"]


class PluginError(ConfigError):
    """A plugin cannot be loaded: missing, cyclic, duplicated or malformed."""


@attrs.frozen
class LoadedPlugin:
    """One enabled plugin: its info, the object holding its hooks, and where it came from."""

    info: PluginInfo
    obj: Any
    source: str
    settings: Any = None

    @property
    def name(self) -> str:
        return self.info.name


async def resolve(value: Any) -> Any:
    """Await what a hook handed back: a value, an awaitable, or a callable returning either."""
    if callable(value) and not inspect.isclass(value):
        value = value()
    if inspect.isawaitable(value):
        value = await value
    return value


class PluginSet:
    """The enabled plugins in dependency order, and a way to call a hook on each of them."""

    def __init__(self, pm: pluggy.PluginManager, plugins: list[LoadedPlugin],
                 skipped: list[tuple[str, str, str]]) -> None:
        self.pm = pm
        self.plugins = plugins
        # (name, source, why it is not running), for `propmubi plugins`.
        self.skipped = skipped
        self._by_name = {p.name: p for p in plugins}

    def __iter__(self) -> Iterator[LoadedPlugin]:
        return iter(self.plugins)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def get(self, name: str) -> LoadedPlugin:
        """The enabled plugin called ``name``; KeyError when it is not enabled."""
        return self._by_name[name]

    def call(self, hook: str, *, reverse: bool = False,
             contexts: Mapping[str, Any] | None = None, **kwargs: Any
             ) -> list[tuple[LoadedPlugin, Any]]:
        """Call ``hook`` on every plugin implementing it, in dependency order.

        :param hook: the hook's name, e.g. ``"propmubi_jobs"``.
        :param reverse: call dependants first (for cleanup).
        :param contexts: the process's plugin contexts by name; each implementation that takes
            ``ctx`` receives its own plugin's.
        :param kwargs: the hook's arguments; each implementation receives the ones it names.
        :returns: ``(plugin, result)`` pairs, skipping implementations that returned None.
        """
        impls = {id(i.plugin): i for i in getattr(self.pm.hook, hook).get_hookimpls()}
        out = []
        for plugin in reversed(self.plugins) if reverse else self.plugins:
            impl = impls.get(id(plugin.obj))
            if impl is None:
                continue
            if contexts is not None:
                kwargs["ctx"] = contexts[plugin.name]
            result = impl.function(**{k: kwargs[k] for k in impl.argnames if k in kwargs})
            if result is not None:
                out.append((plugin, result))
        return out

    def provider(self, hook: str, name: str, *, setting: str) -> Any:
        """The factory called ``name`` among those offered through a provider hook
        (``propmubi_sms_providers``, ``propmubi_payment_providers``, ...); plugins build one
        with :meth:`propmubi.context.PluginContext.provider`.

        :param setting: the configuration key that chose ``name``, for the error message.
        :raises ConfigError: no enabled plugin offers ``name`` (the message lists what is).
        """
        factories: dict[str, Any] = {}
        for _, offered in self.call(hook):
            factories.update(offered)
        if name not in factories:
            raise ConfigError(f"{setting}: nothing named {name!r} is offered by {hook} "
                              f"(offered: {', '.join(sorted(factories)) or 'none'})")
        return factories[name]
