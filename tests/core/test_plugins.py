"""The plugin manager: discovery, the enable list, requirements, order, validation, calls."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import tests.refplugin
from propmubi import hookimpl
from propmubi.app import create_app
from propmubi.config import Config, ConfigError, load_config
from propmubi.lifecycle import open_services
from propmubi.migrate import migrations_for
from propmubi.plugins import CORE_PLUGINS, PluginError, PluginSet, load_plugins, resolve
from propmubi.scheduler import collect_jobs
from propmubi.types import PluginInfo
from propmubi.web.appkeys import OPENAPI


def plugin(name: str, requires: tuple[str, ...] = (), **hooks: Any) -> SimpleNamespace:
    """A plugin object: ``propmubi_plugin_info`` plus the given functions, all marked."""
    obj = SimpleNamespace(__name__=f"test-{name}")
    obj.propmubi_plugin_info = hookimpl(lambda: PluginInfo(name=name, requires=requires))
    for hook, func in hooks.items():
        setattr(obj, hook, hookimpl(func))
    return obj


def base_config(**sections: dict[str, Any]) -> Config:
    config = load_config(None, {}, use_default_path=False)
    return config.evolve(**sections) if sections else config


def names(plugins: PluginSet) -> list[str]:
    return [p.name for p in plugins]


def own(plugins: PluginSet) -> list[str]:
    """The names after the core plugins (which always run, first)."""
    core = [p.name for p in plugins if p.source == "core"]
    assert names(plugins)[:len(core)] == core
    return names(plugins)[len(core):]


@pytest.fixture(autouse=True)
def only_test_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hide this distribution's own domain plugins (auth, ...): these tests count and name
    plugins, and must not change whenever a domain plugin is added."""
    import propmubi.plugins

    real = propmubi.plugins.entry_points

    def entry_points(**kwargs: Any) -> Any:
        return [ep for ep in real(**kwargs) if not ep.value.startswith("propmubi_plugins.")]

    monkeypatch.setattr(propmubi.plugins, "entry_points", entry_points)


@pytest.fixture
def importable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A folder on sys.path for modules (and dist-info) written by the test; forgotten after."""
    before = set(sys.modules)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in set(sys.modules) - before:
        del sys.modules[name]


# -------------------------------------------------------------------------------------------------
# Discovery and selection
# -------------------------------------------------------------------------------------------------


def test_core_only_by_default() -> None:
    plugins = load_plugins(base_config())
    assert len(names(plugins)) == len(CORE_PLUGINS)
    assert "core" in plugins
    assert {p.source for p in plugins} == {"core"}
    assert plugins.skipped == []
    # Core plugins cannot be disabled.
    assert names(load_plugins(base_config(plugins={"enabled": ["core"]}))) == names(plugins)


def test_empty_enabled_list_runs_every_installed_plugin() -> None:
    plugins = load_plugins(base_config(), extra=[plugin("a"), plugin("b")])
    assert own(plugins) == ["a", "b"]
    assert "a" in plugins and "zz" not in plugins
    with pytest.raises(KeyError):
        plugins.get("zz")


def test_enabled_list_selects_plugins_and_core_always_runs() -> None:
    config = base_config(plugins={"enabled": ["b"]})
    plugins = load_plugins(config, extra=[plugin("a"), plugin("b"), plugin("c")])
    assert own(plugins) == ["b"]
    assert [(name, why) for name, _, why in plugins.skipped] == [
        ("a", "not in plugins.enabled"), ("c", "not in plugins.enabled")]


def test_enabled_plugin_that_is_not_installed() -> None:
    config = base_config(plugins={"enabled": ["a", "payments"]})
    with pytest.raises(PluginError, match="payments") as info:
        load_plugins(config, extra=[plugin("a")])
    assert "plugins.enabled" in str(info.value)
    assert "installed: a, " in str(info.value)


def test_module_listed_in_plugins_modules(importable: Path) -> None:
    (importable / "shopplug.py").write_text(textwrap.dedent('''
        from propmubi import hookimpl
        from propmubi.types import PluginInfo

        @hookimpl
        def propmubi_plugin_info():
            return PluginInfo(name="shop", version="2.1.0", requires=("core",))
    '''))
    plugins = load_plugins(base_config(plugins={"modules": ["shopplug"]}))
    assert own(plugins) == ["shop"]
    shop = plugins.get("shop")
    assert (shop.info.version, shop.info.requires, shop.source) == \
        ("2.1.0", ("core",), "module shopplug")


def test_module_that_cannot_be_imported() -> None:
    with pytest.raises(PluginError, match=r"'no_such_plugin_module'.*plugins\.modules"):
        load_plugins(base_config(plugins={"modules": ["no_such_plugin_module"]}))


def test_installed_entry_points_are_discovered(importable: Path) -> None:
    (importable / "eplug.py").write_text(textwrap.dedent('''
        from propmubi import hookimpl
        from propmubi.types import PluginInfo

        @hookimpl
        def propmubi_plugin_info():
            return PluginInfo(name="eplug")
    '''))
    dist = importable / "eplug-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: eplug\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[propmubi.plugins]\neplug = eplug\n")
    plugins = load_plugins(base_config())
    assert own(plugins) == ["eplug"]
    assert plugins.get("eplug").source == "entry point eplug = eplug"
    # The same module also listed in plugins.modules is one plugin, not a duplicate.
    again = load_plugins(base_config(plugins={"modules": ["eplug"]}))
    assert own(again) == ["eplug"]
    # ... and it can be disabled like any other.
    off = load_plugins(base_config(plugins={"enabled": ["core"]}))
    assert own(off) == []
    assert [s[0] for s in off.skipped] == ["eplug"]


def test_entry_point_that_fails_to_load(importable: Path) -> None:
    (importable / "brokenplug.py").write_text("raise RuntimeError('half installed')\n")
    dist = importable / "brokenplug-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: brokenplug\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[propmubi.plugins]\nbroken = brokenplug\n")
    with pytest.raises(PluginError, match=r"'broken'.*half installed"):
        load_plugins(base_config())


def test_class_instance_as_plugin() -> None:
    class Shop:
        def __init__(self, greeting: str) -> None:
            self.greeting = greeting

        @hookimpl
        def propmubi_plugin_info(self) -> PluginInfo:
            return PluginInfo(name="shop")

        @hookimpl
        def propmubi_seed(self, scale: float) -> str:
            return f"{self.greeting} x{scale}"

    plugins = load_plugins(base_config(), extra=[Shop("hello")])
    assert plugins.get("shop").source == "object Shop"
    assert [(p.name, r) for p, r in plugins.call("propmubi_seed", scale=2)] == \
        [("shop", "hello x2")]


# -------------------------------------------------------------------------------------------------
# A disabled plugin contributes nothing
# -------------------------------------------------------------------------------------------------


REFERENCE_API = "/api/v1/reference/notes"


@pytest.mark.parametrize("enabled", [[], ["reference"], ["core"]])
def test_disabled_plugin_has_no_routes_pages_or_openapi(enabled: list[str]) -> None:
    config = base_config(plugins={"enabled": enabled})
    plugins = load_plugins(config, extra=[tests.refplugin])
    app = create_app(config, plugins)
    paths = {r.resource.canonical for r in app.router.routes() if r.resource is not None}
    running = "reference" in plugins
    assert running == (enabled != ["core"])
    assert (REFERENCE_API in paths) is running
    assert ("/console/reference/notes" in paths) is running
    assert (REFERENCE_API in app[OPENAPI]["paths"]) is running
    assert not running or all(p.startswith("/api/v1/") for p in app[OPENAPI]["paths"])
    # The core's own routes are there either way.
    assert {"/health", "/ready", "/metrics", "/api/v1/openapi.json"} <= paths


def test_disabled_plugin_has_no_migrations() -> None:
    on = load_plugins(base_config(), extra=[tests.refplugin])
    off = load_plugins(base_config(plugins={"enabled": ["core"]}), extra=[tests.refplugin])
    assert {m.plugin for m in migrations_for(on)} >= {"reference"}
    assert "reference" not in {m.plugin for m in migrations_for(off)}
    assert [m.label for m in migrations_for(off)] == \
        [m.label for m in migrations_for(on) if m.plugin != "reference"]


async def test_disabled_plugin_has_no_jobs(config: Config) -> None:
    found = {}
    for enabled in ([], ["core"]):
        plugins = load_plugins(config.evolve(plugins={"enabled": enabled}),
                               extra=[tests.refplugin])
        async with open_services(config, plugins, lifecycle=False) as services:
            found[tuple(enabled)] = [job.name for job in collect_jobs(services)]
    assert "reference.count_notes" in found[()]
    assert not [n for n in found[("core",)] if n.startswith("reference.")]


# -------------------------------------------------------------------------------------------------
# Requirements and order
# -------------------------------------------------------------------------------------------------


def test_dependency_order_core_first_then_requirements() -> None:
    extra = [plugin("zeta"), plugin("alpha", ("zeta", "mid")), plugin("mid", ("zeta",)),
             plugin("beta", ("core",))]
    order = own(load_plugins(base_config(), extra=extra))
    assert sorted(order) == ["alpha", "beta", "mid", "zeta"]
    for name, requires in (("alpha", ("zeta", "mid")), ("mid", ("zeta",))):
        assert all(order.index(dep) < order.index(name) for dep in requires)
    # Deterministic whatever the discovery order.
    assert own(load_plugins(base_config(), extra=extra[::-1])) == order


def test_requires_a_plugin_that_is_not_installed() -> None:
    with pytest.raises(PluginError) as info:
        load_plugins(base_config(), extra=[plugin("crm", ("auth",))])
    assert "'crm'" in str(info.value) and "'auth'" in str(info.value)
    assert "not installed" in str(info.value)


def test_requires_a_plugin_that_is_disabled() -> None:
    config = base_config(plugins={"enabled": ["crm"]})
    with pytest.raises(PluginError) as info:
        load_plugins(config, extra=[plugin("crm", ("auth",)), plugin("auth")])
    assert "'crm'" in str(info.value) and "'auth'" in str(info.value)
    assert "not enabled" in str(info.value)
    both = base_config(plugins={"enabled": ["crm", "auth"]})
    assert own(load_plugins(both, extra=[plugin("crm", ("auth",)), plugin("auth")])) == \
        ["auth", "crm"]


@pytest.mark.parametrize("name", ["", "Crm", "1crm", "crm-x", "crm__x", "c" * 32, "crm x",
                                  "class", "import"])
def test_plugin_names_are_plain_identifiers(name: str) -> None:
    with pytest.raises(ValueError, match="plugin name"):
        PluginInfo(name=name)


def test_requires_given_as_a_single_string() -> None:
    assert PluginInfo(name="crm", requires="auth").requires == ("auth",)
    assert PluginInfo(name="crm", requires=["auth", "catalog"]).requires == ("auth", "catalog")


@pytest.mark.parametrize(("extra", "cycle"), [
    ([plugin("a", ("a",))], "a -> a"),
    ([plugin("a", ("b",)), plugin("b", ("a",))], "a -> b -> a"),
    ([plugin("a", ("b",)), plugin("b", ("c",)), plugin("c", ("a",)), plugin("d", ("a",))],
     "a -> b -> c -> a"),
])
def test_cycle_is_named(extra: list[Any], cycle: str) -> None:
    with pytest.raises(PluginError, match="cycle") as info:
        load_plugins(base_config(), extra=extra)
    assert cycle in str(info.value)


# -------------------------------------------------------------------------------------------------
# Malformed plugins
# -------------------------------------------------------------------------------------------------


def test_duplicate_names() -> None:
    with pytest.raises(PluginError, match="two plugins are named 'a'"):
        load_plugins(base_config(), extra=[plugin("a"), plugin("a")])
    with pytest.raises(PluginError, match="'core'"):
        load_plugins(base_config(), extra=[plugin("core")])


def test_the_same_object_twice_is_one_plugin() -> None:
    assert own(load_plugins(base_config(), extra=[tests.refplugin, tests.refplugin])) == \
        ["reference"]


def test_unknown_hook_is_refused() -> None:
    with pytest.raises(PluginError, match=r"'a'.*unknown hook 'propmubi_bogus'"):
        load_plugins(base_config(), extra=[plugin("a", propmubi_bogus=lambda: 1)])


def test_unmarked_hook_is_refused() -> None:
    obj = plugin("a")
    obj.propmubi_jobs = lambda: []  # forgot @hookimpl: pluggy would silently skip it
    with pytest.raises(PluginError, match="propmubi_jobs is not marked"):
        load_plugins(base_config(), extra=[obj])


def test_unmarked_unknown_hook_is_refused() -> None:
    obj = plugin("a")
    obj.propmubi_jbos = lambda: []
    with pytest.raises(PluginError, match="unknown hook 'propmubi_jbos'"):
        load_plugins(base_config(), extra=[obj])


def test_hook_with_an_argument_the_spec_lacks() -> None:
    with pytest.raises(PluginError, match=r"'a'.*propmubi_jobs") as info:
        load_plugins(base_config(), extra=[plugin("a", propmubi_jobs=lambda ctx: [])])
    assert "\n" not in str(info.value)


def test_wrapper_hooks_are_refused() -> None:
    obj = plugin("a")
    obj.propmubi_jobs = hookimpl(wrapper=True)(lambda: (yield))
    with pytest.raises(PluginError, match="wrapper"):
        load_plugins(base_config(), extra=[obj])


def test_plugin_without_info() -> None:
    with pytest.raises(PluginError, match="propmubi_plugin_info"):
        load_plugins(base_config(), extra=[SimpleNamespace(__name__="anon")])


@pytest.mark.parametrize(("func", "words"), [
    (lambda: {"name": "a"}, "must return a PluginInfo"),
    (lambda: PluginInfo(name="Bad-Name"), "'Bad-Name'"),
    (lambda: 1 / 0, "ZeroDivisionError"),
])
def test_plugin_info_that_fails(func: Any, words: str) -> None:
    obj = SimpleNamespace(__name__="broken", propmubi_plugin_info=hookimpl(func))
    with pytest.raises(PluginError, match="object broken") as info:
        load_plugins(base_config(), extra=[obj])
    assert words in str(info.value)
    assert "\n" not in str(info.value)


def test_plugin_error_is_a_config_error() -> None:
    # The CLI reports both the same way (exit 2, one line).
    assert issubclass(PluginError, ConfigError)


# -------------------------------------------------------------------------------------------------
# PluginSet.call
# -------------------------------------------------------------------------------------------------


def test_call_passes_only_named_arguments_and_skips_none() -> None:
    seen = []

    def both(ctx: Any, scale: float) -> str:
        seen.append(("both", ctx, scale))
        return "both"

    def scale_only(scale: float) -> str:
        seen.append(("scale_only", scale))
        return "scale"

    def nothing() -> None:
        seen.append(("nothing",))

    extra = [plugin("p1", propmubi_seed=both), plugin("p2", ("p1",), propmubi_seed=scale_only),
             plugin("p3", ("p2",), propmubi_seed=nothing), plugin("p4", ("p3",))]
    plugins = load_plugins(base_config(), extra=extra)
    contexts = {name: f"ctx of {name}" for name in ("p1", "p2", "p3", "p4")}
    results = plugins.call("propmubi_seed", contexts=contexts, scale=0.5)
    assert [(p.name, r) for p, r in results] == [("p1", "both"), ("p2", "scale")]
    # None results are dropped, but the implementation still ran; p4 has no implementation.
    # Each implementation that takes ctx receives its own plugin's.
    assert seen == [("both", "ctx of p1", 0.5), ("scale_only", 0.5), ("nothing",)]


def test_call_reverse_runs_dependants_first() -> None:
    def returns(value: str) -> Any:
        return lambda: value

    extra = [plugin(n, req, propmubi_cleanup=returns(n))
             for n, req in (("c", ("b",)), ("a", ()), ("b", ("a",)))]
    plugins = load_plugins(base_config(), extra=extra)
    assert [r for _, r in plugins.call("propmubi_cleanup")] == ["a", "b", "c"]
    assert [r for _, r in plugins.call("propmubi_cleanup", reverse=True)] == \
        ["c", "b", "a"]


def test_call_of_a_hook_nobody_implements() -> None:
    plugins = load_plugins(base_config(), extra=[plugin("a")])
    assert plugins.call("propmubi_storage_backends") == []


def test_settings_are_attached_to_the_loaded_plugin() -> None:
    import attrs

    @attrs.frozen
    class Settings:
        level: int = 1

    config = base_config(plugins={"settings": {"a": {"level": "3"}}})
    plugins = load_plugins(config, extra=[plugin("a", propmubi_settings_class=lambda: Settings),
                                          plugin("b")])
    assert plugins.get("a").settings == Settings(level=3)
    assert plugins.get("b").settings is None


async def test_resolve_values_awaitables_and_callables() -> None:
    async def coro() -> int:
        return 2

    assert await resolve(1) == 1
    assert await resolve(coro()) == 2
    assert await resolve(coro) == 2
    assert await resolve(lambda: 3) == 3
    assert await resolve(None) is None
    assert await resolve(dict) is dict  # a class is a value, not a factory


def test_provider_lookup_across_plugins() -> None:
    def email() -> None: ...

    plugins = load_plugins(base_config(), extra=[
        plugin("a", propmubi_storage_backends=lambda: {"disk": email}),
        plugin("b", propmubi_storage_backends=lambda: {"s3": len})])
    assert plugins.provider("propmubi_storage_backends", "s3", setting="x.backend") is len
    with pytest.raises(ConfigError) as caught:
        plugins.provider("propmubi_storage_backends", "ftp", setting="plugins.x.backend")
    assert str(caught.value).startswith("plugins.x.backend: nothing named 'ftp'")
    assert "(offered: disk, s3)" in str(caught.value)
