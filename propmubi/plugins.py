"""Loading the plugins: discovery by entry point, the enable list, dependency order, hook
validation. What is loaded is a :class:`~propmubi.pluginset.PluginSet`."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Iterable, Sequence
from importlib.metadata import entry_points
from typing import Any

import attrs
import pluggy

from propmubi import PROJECT_NAME, hookspecs
from propmubi.config import Config, ConfigError, plugin_settings
from propmubi.pluginset import LoadedPlugin, PluginError, PluginSet, resolve
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
CORE_PLUGINS = ("propmubi.core_plugin", "propmubi.events.plugin", "propmubi.console.plugin")


@attrs.frozen
class Candidate:
    obj: Any
    source: str
    core: bool = False


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
        label = getattr(obj, "__name__", None) or type(obj).__name__
        found.append(Candidate(obj, f"object {label}"))
    return found


def _info(candidate: Candidate) -> PluginInfo:
    func = getattr(candidate.obj, "propmubi_plugin_info", None)
    if func is None:
        raise PluginError(f"{candidate.source} does not implement propmubi_plugin_info")
    try:
        info = func()
    except Exception as exc:  # e.g. a PluginInfo name that fails validation
        raise PluginError(f"{candidate.source}: propmubi_plugin_info failed: "
                          f"{type(exc).__name__}: {_one_line(exc)}") from None
    if not isinstance(info, PluginInfo):
        raise PluginError(f"{candidate.source}: propmubi_plugin_info must return a PluginInfo")
    return info


def _one_line(exc: BaseException) -> str:
    # attrs validators raise ValueError(message, attribute, ...): the message is enough.
    text = exc.args[0] if exc.args and isinstance(exc.args[0], str) else str(exc)
    return " ".join(text.split())


def _check_hooks(pm: pluggy.PluginManager, name: str, obj: Any) -> None:
    """Refuse what pluggy would silently ignore or only catch later: an unmarked or misspelt
    hook, and wrappers (:meth:`PluginSet.call` calls implementations plainly)."""
    for attr in dir(obj):
        if not attr.startswith("propmubi_") or not inspect.isroutine(getattr(obj, attr, None)):
            continue
        if not hasattr(hookspecs, attr):
            raise PluginError(f"plugin {name!r} implements an unknown hook {attr!r} "
                              "(hook names are listed in propmubi.hookspecs)")
        opts = pm.parse_hookimpl_opts(obj, attr)
        if opts is None:
            raise PluginError(f"plugin {name!r}: {attr} is not marked with @propmubi.hookimpl")
        if opts.get("wrapper") or opts.get("hookwrapper"):
            raise PluginError(f"plugin {name!r}: {attr} is a wrapper; propmubi hooks take "
                              "plain implementations")


def _settings(config: Config, name: str, obj: Any) -> Any:
    func = getattr(obj, "propmubi_settings_class", None)
    cls = func() if func is not None else None
    if cls is None:
        table = config.plugins.settings.get(name)
        if table:
            raise ConfigError(f"plugins.{name}.{sorted(table)[0]}: unknown key "
                              f"(plugin {name!r} takes no settings)")
        return None
    if not attrs.has(cls):
        raise PluginError(f"plugin {name!r}: propmubi_settings_class must return an attrs class")
    return plugin_settings(config, name, cls)


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
        if info.name in candidates and candidates[info.name][0].obj is cand.obj:
            continue  # the same module reached twice (entry point and plugins.modules, say)
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
        for dep in info.requires:
            if dep not in candidates:
                raise PluginError(f"plugin {name!r} requires {dep!r}, which is not installed")
            if dep not in enabled:
                raise PluginError(f"plugin {name!r} requires {dep!r}, which is not enabled "
                                  f"(add it to plugins.enabled)")

    core = [n for n, (c, _) in enabled.items() if c.core]
    order = _dependency_order({n: i for n, (_, i) in enabled.items()}, core)

    pm = pluggy.PluginManager(PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    loaded = []
    for name in order:
        cand, info = enabled[name]
        _check_hooks(pm, name, cand.obj)
        try:
            pm.register(cand.obj, name=name)
        except pluggy.PluginValidationError as exc:  # e.g. an argument the spec does not have
            raise PluginError(f"plugin {name!r}: {_one_line(exc)}") from None
        loaded.append(LoadedPlugin(info=info, obj=cand.obj, source=cand.source,
                                   settings=_settings(config, name, cand.obj)))
    try:
        pm.check_pending()  # pluggy's own net, behind _check_hooks
    except pluggy.PluginValidationError as exc:
        raise PluginError(f"plugin {pm.get_name(exc.plugin)!r}: {_one_line(exc)}") from None
    stray = set(config.plugins.settings) - set(enabled) - {s[0] for s in skipped}
    if stray:
        raise PluginError(f"[plugins.{sorted(stray)[0]}] configures a plugin that is not installed")
    return PluginSet(pm, loaded, skipped)
