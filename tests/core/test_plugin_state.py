"""Plugins keep per-process state in their context (``ctx.state``), never in module globals.

A module-level registry (a dict filled at start-up and keyed by process, services or database)
outlives the process it was filled for, leaks between tests and between the apps of one
process, and hides who owns what. This check fails on the shapes such registries take: a
module-level empty container or mapping, and any ``global`` statement.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import propmubi_plugins

PLUGINS = Path(propmubi_plugins.__file__).parent

#: Calls that build an (empty) mutable container at import time (not "Counter": that name
#: is prometheus_client's metric, which is fine at module level).
_CONTAINER_CALLS = {"dict", "list", "set", "defaultdict", "OrderedDict",
                    "WeakKeyDictionary", "WeakValueDictionary", "WeakSet", "deque"}


def _call_name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Call):
        func = node.func
        return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    return None


def problems(source: str, filename: str = "<module>") -> list[str]:
    """Module-level mutable state in ``source``: ``line: what``."""
    tree = ast.parse(source, filename)
    found = []
    for node in tree.body:
        value = node.value if isinstance(node, (ast.Assign, ast.AnnAssign)) else None
        empty_literal = (isinstance(value, (ast.Dict, ast.List, ast.Set))
                         and not getattr(value, "keys", getattr(value, "elts", None)))
        if empty_literal or (value is not None and _call_name(value) in _CONTAINER_CALLS):
            found.append(f"{node.lineno}: module-level container {ast.unparse(node)[:60]!r}")
    for node in ast.walk(tree):
        if isinstance(node, ast.Global):
            found.append(f"{node.lineno}: global {', '.join(node.names)}")
    return found


@pytest.mark.parametrize("path", sorted(PLUGINS.rglob("*.py")),
                         ids=lambda p: str(p.relative_to(PLUGINS)))
def test_plugin_modules_hold_no_mutable_state(path: Path) -> None:
    found = problems(path.read_text(), str(path))
    assert not found, (f"{path.relative_to(PLUGINS)} keeps state at module level; keep it in "
                       f"the plugin's context (ctx.state): {found}")


def test_the_check_finds_registries() -> None:
    assert problems("_RUNTIMES: dict[int, object] = {}\n")
    assert problems("import weakref\n_BY_DB = weakref.WeakKeyDictionary()\n")
    assert problems("def f():\n    global X\n")
    assert not problems("EVENT_TYPES = [A, B]\nLIMIT = 5\nNAMES = frozenset({'a'})\n")
