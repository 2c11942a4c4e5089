"""The import contracts in pyproject.toml say what the architecture says, and the code keeps them.

Plugins are independent of each other: the one allowed cross-plugin import is plugin <a> reading
``propmubi_plugins.<b>.api`` when <a> declares ``requires=("<b>", ...)``. The independence
contract must cover every plugin folder, each of its ``ignore_imports`` entries must be such a
declared dependency, and ``lint-imports`` must pass.
"""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "propmubi_plugins"


def plugin_requires() -> dict[str, tuple[str, ...]]:
    """Each plugin folder under plugins/ (one with an ``__init__.py``) -> its ``requires``."""
    names = sorted(p.parent.name for p in (ROOT / "plugins").glob("*/__init__.py"))
    return {name: tuple(importlib.import_module(f"{PACKAGE}.{name}")
                        .propmubi_plugin_info().requires) for name in names}


def matches(expression: str, module: str) -> bool:
    """import-linter's module expressions: ``*`` is one name, ``**`` one or more."""
    pattern = re.escape(expression).replace(r"\*\*", r"[^.]+(?:\.[^.]+)*").replace(r"\*", "[^.]+")
    return re.fullmatch(pattern, module) is not None


def contract_problems(importlinter: dict[str, Any], requires: dict[str, tuple[str, ...]]
                      ) -> list[str]:
    """What is wrong with the plugin independence contract, given each plugin's ``requires``."""
    contracts = [c for c in importlinter.get("contracts", []) if c["type"] == "independence"]
    if len(contracts) != 1:
        return [f"expected one independence contract, found {len(contracts)}"]
    contract = contracts[0]
    problems = [f"{PACKAGE}.{name} is not in the independence contract's modules"
                for name in requires
                if not any(matches(e, f"{PACKAGE}.{name}") for e in contract["modules"])]
    allowed = re.compile(rf"\s*{PACKAGE}\.(\w+)(?:\.[\w*]+)*\s*->\s*{PACKAGE}\.(\w+)\.api\s*")
    for entry in contract.get("ignore_imports", []):
        found = allowed.fullmatch(entry)
        if found is None:
            problems.append(f"{entry!r}: not of the form "
                            f"'{PACKAGE}.<a>[.<module>] -> {PACKAGE}.<b>.api'")
        elif found[1] == found[2] or found[2] not in requires.get(found[1], ()):
            problems.append(f"{entry!r}: {found[1]} does not require {found[2]}")
    return problems


def test_independence_contract_covers_every_plugin_and_only_declared_dependencies() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    requires = plugin_requires()
    assert {"auth", "catalog"} <= requires.keys()
    assert contract_problems(config, requires) == []


def test_contract_problems_are_found() -> None:
    """The check above can fail: each way of breaking the rule is reported."""
    requires = {"auth": (), "catalog": ("auth",), "crm": ("catalog",)}
    bad = {"contracts": [{
        "type": "independence",
        "modules": [f"{PACKAGE}.auth", f"{PACKAGE}.catalog"],  # crm left out
        "ignore_imports": [
            f"{PACKAGE}.catalog.service -> {PACKAGE}.auth.api",  # declared: fine
            f"{PACKAGE}.crm.** -> {PACKAGE}.catalog.api",  # declared: fine
            f"{PACKAGE}.auth.service -> {PACKAGE}.catalog.api",  # auth requires nothing
            f"{PACKAGE}.catalog.service -> {PACKAGE}.auth.store",  # not the api module
            f"{PACKAGE}.crm -> {PACKAGE}.auth.api",  # crm requires catalog only
        ],
    }]}
    problems = contract_problems(bad, requires)
    assert len(problems) == 4, problems
    assert "crm is not in" in problems[0]
    assert "auth does not require catalog" in problems[1]
    assert "not of the form" in problems[2]
    assert "crm does not require auth" in problems[3]
    good = {"contracts": [{"type": "independence", "modules": [f"{PACKAGE}.*"]}]}
    assert contract_problems(good, requires) == []


def test_lint_imports_passes() -> None:
    # From this venv's bin; no cache, so nothing is written into the checkout.
    proc = subprocess.run([str(Path(sys.executable).parent / "lint-imports"), "--no-cache",
                           "--no-logo"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
