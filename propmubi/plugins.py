"""The pluggy plugin manager: discovery by entry point, the enable list, dependency order."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Iterable, Iterator, Sequence
from importlib.metadata import entry_points
from typing import Any

import attrs
import pluggy

from propmubi import PROJECT_NAME, hookspecs
from propmubi.config import Config, ConfigError, plugin_settings
from propmubi.types import PluginInfo

__all__ = [
    "CORE_PLUGINS",
    "ENTRY_POINT_GROUP",
    "LoadedPlugin",
    "PluginError",
    "PluginSet",
    "load_plugins",
    "resolve",
]

ENTRY_POINT_GROUP = "propmubi.plugins"
# The core's own features register through the same manager as any domain plugin, so the
# plugin API is exercised every day; they cannot be disabled.
CORE_PLUGINS = ("propmubi.core_plugin",)


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


@attrs.frozen
class Candidate:
    obj: Any
    source: str
    core: bool = False


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

    def call(self, hook: str, *, reverse: bool = False, **kwargs: Any
             ) -> list[tuple[LoadedPlugin, Any]]:
        """Call ``hook`` on every plugin implementing it, in dependency order.

        :param hook: the hook's name, e.g. ``"propmubi_jobs"``.
        :param reverse: call dependants first (for cleanup).
        :param kwargs: the hook's arguments; each implementation receives the ones it names.
        :returns: ``(plugin, result)`` pairs, skipping implementations that returned None.
        """
        impls = {id(i.plugin): i for i in getattr(self.pm.hook, hook).get_hookimpls()}
        out = []
        for plugin in reversed(self.plugins) if reverse else self.plugins:
            impl = impls.get(id(plugin.obj))
            if impl is None:
                continue
            result = impl.function(**{k: kwargs[k] for k in impl.argnames if k in kwargs})
            if result is not None:
                out.append((plugin, result))
        return out


def _import(path: str, source: str) -> Any:
    try:
        return importlib.import_module(path)
    except ImportError as exc:
        raise PluginError(f"plugin module {path!r} ({source}) cannot be imported: {exc}") from None


def _candidates(config: Config, extra: Sequence[Any]) -> list[Candidate]:
    found = [Candidate(_import(path, "core"), "core", core=True) for path in CORE_PLUGINS]
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        try:
            obj = ep.load()
        except Exception as exc:  # a broken third-party plugin must name itself
            raise PluginError(f"plugin entry point {ep.name!r} ({ep.value}) failed to load: "
                              f"{exc}") from None
        found.append(Candidate(obj, f"entry point {ep.name} = {ep.value}"))
    for path in config.plugins.modules:
        found.append(Candidate(_import(path, "plugins.modules"), f"module {path}"))
    for obj in extra:
        found.append(Candidate(obj, f"object {getattr(obj, '__name__', obj)!r}"))
    return found


def _info(candidate: Candidate) -> PluginInfo:
    func = getattr(candidate.obj, "propmubi_plugin_info", None)
    if func is None:
        raise PluginError(f"{candidate.source} does not implement propmubi_plugin_info")
    info = func()
    if not isinstance(info, PluginInfo):
        raise PluginError(f"{candidate.source}: propmubi_plugin_info must return a PluginInfo")
    return info


def _dependency_order(infos: dict[str, PluginInfo], core: Iterable[str]) -> list[str]:
    """Core plugins first, then each plugin after all it requires (ties broken by name)."""
    order: list[str] = list(core)
    state: dict[str, str] = {name: "done" for name in order}

    def visit(name: str, chain: list[str]) -> None:
        if state.get(name) == "done":
            return
        if state.get(name) == "visiting":
            cycle = [*chain[chain.index(name):], name]
            raise PluginError(f"plugins require each other in a cycle: {' -> '.join(cycle)}")
        state[name] = "visiting"
        for dep in infos[name].requires:
            visit(dep, [*chain, name])
        state[name] = "done"
        order.append(name)

    for name in sorted(infos):
        visit(name, [])
    return order


def load_plugins(config: Config, extra: Sequence[Any] = ()) -> PluginSet:
    """Discover, select, order, validate and register the plugins for this configuration.

    :param config: decides which plugins run (``[plugins] enabled``, ``modules``, settings).
    :param extra: plugin objects registered as if installed (used by tests).
    :returns: the :class:`PluginSet`.
    :raises PluginError: naming the plugins at fault.
    """
    candidates: dict[str, tuple[Candidate, PluginInfo]] = {}
    for cand in _candidates(config, extra):
        info = _info(cand)
        if info.name in candidates:
            raise PluginError(f"two plugins are named {info.name!r}: "
                              f"{candidates[info.name][0].source} and {cand.source}")
        candidates[info.name] = (cand, info)

    wanted = set(config.plugins.enabled)
    unknown = sorted(wanted - set(candidates))
    if unknown:
        raise PluginError(f"plugins.enabled names plugins that are not installed: "
                          f"{', '.join(unknown)} (installed: {', '.join(sorted(candidates))})")
    skipped = []
    enabled: dict[str, tuple[Candidate, PluginInfo]] = {}
    for name, (cand, info) in candidates.items():
        if cand.core or not wanted or name in wanted:
            enabled[name] = (cand, info)
        else:
            skipped.append((name, cand.source, "not in plugins.enabled"))

    for name, (_, info) in sorted(enabled.items()):
        missing = [dep for dep in info.requires if dep not in enabled]
        if missing:
            raise PluginError(f"plugin {name!r} requires {', '.join(missing)}, which "
                              f"{'is' if len(missing) == 1 else 'are'} not enabled")

    core = [n for n, (c, _) in enabled.items() if c.core]
    order = _dependency_order({n: i for n, (_, i) in enabled.items()}, core)

    pm = pluggy.PluginManager(PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    loaded = []
    for name in order:
        cand, info = enabled[name]
        pm.register(cand.obj, name=name)
        settings_cls = getattr(cand.obj, "propmubi_settings_class", lambda: None)()
        settings = plugin_settings(config, name, settings_cls) if settings_cls else None
        loaded.append(LoadedPlugin(info=info, obj=cand.obj, source=cand.source,
                                   settings=settings))
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(f"plugin {exc.plugin!r} implements an unknown hook: {exc}") from None
    stray = set(config.plugins.settings) - set(enabled) - {s[0] for s in skipped}
    if stray:
        raise PluginError(f"[plugins.{sorted(stray)[0]}] configures a plugin that is not installed")
    return PluginSet(pm, loaded, skipped)
