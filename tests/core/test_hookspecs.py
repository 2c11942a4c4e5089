"""Every hook is named, typed and documented (pytest's hookspec.py is the model)."""

from __future__ import annotations

import inspect
import re
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pluggy
import pytest

import propmubi
from propmubi import PROJECT_NAME, hookspecs
from propmubi.config import Config
from propmubi.context import PluginContext
from propmubi.types import CliCommand, ConsolePage, ConsoleWidget, Job, PluginInfo
from propmubi.web.routing import Routes

SPEC_MARKER = f"{PROJECT_NAME}_spec"


def _specs() -> dict[str, Callable[..., Any]]:
    return {name: func for name, func in vars(hookspecs).items()
            if inspect.isfunction(func) and hasattr(func, SPEC_MARKER)}


SPECS = _specs()


def test_there_are_hooks_and_every_function_of_the_module_is_one() -> None:
    # The design names these; losing one would break plugins.
    assert {"propmubi_plugin_info", "propmubi_migrations", "propmubi_api_routes",
            "propmubi_console_pages", "propmubi_template_dirs", "propmubi_event_types",
            "propmubi_event_handlers", "propmubi_jobs", "propmubi_startup", "propmubi_cleanup",
            "propmubi_seed", "propmubi_settings_class", "propmubi_cli_commands"} <= set(SPECS)
    functions = {name for name, func in vars(hookspecs).items()
                 if inspect.isfunction(func) and func.__module__ == hookspecs.__name__}
    assert functions == set(SPECS), "a function in hookspecs is not marked @hookspec"


def test_pluggy_accepts_the_specs() -> None:
    pm = pluggy.PluginManager(PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    assert {name for name in SPECS if getattr(pm.hook, name).spec is not None} == set(SPECS)


@pytest.mark.parametrize("name", sorted(SPECS))
def test_hook_name_starts_with_propmubi(name: str) -> None:
    assert name.startswith("propmubi_")
    assert re.fullmatch(r"propmubi_[a-z][a-z0-9_]*", name)


@pytest.mark.parametrize("name", sorted(SPECS))
def test_hook_is_documented(name: str) -> None:
    func = SPECS[name]
    doc = inspect.getdoc(func)
    assert doc, f"{name} has no docstring"
    summary = doc.splitlines()[0]
    assert summary.endswith("."), f"{name}: the first line should be a sentence"
    assert re.search(r"^:returns: \S", doc, re.MULTILINE), f"{name} lacks a ':returns:' line"
    params = list(inspect.signature(func).parameters)
    documented = re.findall(r"^:param (\w+):", doc, re.MULTILINE)
    for param in params:
        assert param in documented, f"{name}: parameter {param!r} lacks ':param {param}:'"
    assert sorted(documented) == sorted(params), f"{name} documents parameters it does not take"


@pytest.mark.parametrize("name", sorted(SPECS))
def test_hook_is_fully_annotated(name: str) -> None:
    func = SPECS[name]
    signature = inspect.signature(func)
    assert signature.return_annotation is not inspect.Signature.empty, f"{name}: no return type"
    for param in signature.parameters.values():
        assert param.annotation is not inspect.Parameter.empty, f"{name}: {param.name} untyped"
        assert param.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD, \
            f"{name}: pluggy passes hook arguments by name; {param.name} must be a plain one"
    # The annotations name real types (those the module imports only for type checkers too).
    namespace = {**vars(hookspecs), "Config": Config, "PluginContext": PluginContext,
                 "CliCommand": CliCommand, "ConsolePage": ConsolePage,
                 "ConsoleWidget": ConsoleWidget, "Job": Job,
                 "PluginInfo": PluginInfo, "Routes": Routes}
    hints = typing.get_type_hints(func, globalns=namespace)
    assert set(hints) == {*signature.parameters, "return"}


def test_hooks_the_core_calls_are_specified() -> None:
    """A misspelt name in ``plugins.call("propmubi_...")`` would raise only when reached."""
    root = Path(propmubi.__file__).parent
    called = set()
    for path in root.rglob("*.py"):
        called |= set(re.findall(r"""\.call\(\s*["'](propmubi_\w+)["']""", path.read_text()))
    assert called, "no hook calls found: the pattern is stale"
    assert called - set(SPECS) == set()
