"""``propmubi plugin new NAME``: start a plugin from the skeleton.

Writes ``plugins/NAME/`` (every role file of a plugin, each saying in its docstring what
belongs in it), ``tests/plugins/NAME/`` (passing tests of all of it) and registers the plugin
in pyproject.toml (its entry point; and the import-linter independence contract's modules
when that contract lists plugins one by one). docs/plugins.md explains each file.

The command opens no database or Redis (``needs_services=False``): it only writes files into
a checkout, found from the current directory unless ``--root`` names it.
"""

from __future__ import annotations

import argparse
import importlib
import re
import string
import sys
import tomllib
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import attrs

from propmubi.types import CliCommand, PluginInfo

__all__ = ["ScaffoldError", "command", "create_plugin", "find_root", "render"]

#: Printed last: the entry point is only seen once the package is reinstalled.
NEXT_STEP = "run `make test` (it reinstalls the package, so the new entry point is seen)"


class ScaffoldError(Exception):
    """The plugin cannot be created; the message says why, in one line."""


@attrs.frozen
class Created:
    """What :func:`create_plugin` did: files written (relative to the root), and notes."""

    files: list[str]
    notes: list[str]


def _is_checkout(folder: Path) -> bool:
    pyproject = folder / "pyproject.toml"
    if not pyproject.is_file() or not (folder / "plugins").is_dir():
        return False
    try:
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
        return False
    return bool(data.get("project", {}).get("name") == "propmubi")


def find_root(start: Path) -> Path:
    """The nearest folder at or above ``start`` holding propmubi's pyproject.toml and a
    ``plugins/`` folder.

    :raises ScaffoldError: there is none.
    """
    start = start.resolve()
    for folder in (start, *start.parents):
        if _is_checkout(folder):
            return folder
    raise ScaffoldError(f"no propmubi checkout at or above {start} (a folder with propmubi's "
                        "pyproject.toml and plugins/); run it there or pass --root")


def _core_names() -> set[str]:
    from propmubi.plugins import CORE_PLUGINS

    return {importlib.import_module(path).propmubi_plugin_info().name for path in CORE_PLUGINS}


def check_name(name: str, root: Path) -> None:
    """Refuse a name a plugin cannot have, or one already taken in ``root`` or installed.

    :raises ScaffoldError: saying why.
    """
    try:
        PluginInfo(name=name)
    except ValueError as exc:
        raise ScaffoldError(str(exc.args[0] if exc.args else exc)) from None
    if name in _core_names():
        raise ScaffoldError(f"plugin name {name!r} is taken by the core")
    for folder in (root / "plugins" / name, root / "tests" / "plugins" / name):
        if folder.exists():
            raise ScaffoldError(f"{folder} already exists")
    installed = {ep.name: ep.value for ep in entry_points(group="propmubi.plugins")}
    if name in installed:
        raise ScaffoldError(f"an installed plugin is already named {name!r} "
                            f"(entry point {name} = {installed[name]})")


def render(text: str, name: str) -> str:
    """A skeleton text (or path) with the plugin's name filled in."""
    words = name.split("_")
    return string.Template(text).substitute(
        name=name, NAME=name.upper(), Name="".join(w.capitalize() for w in words),
        title=" ".join(words).capitalize())


def _wrap_imports(text: str) -> str:
    """Wrap a ``from x import a, b`` line longer than 100 characters as ruff's isort does
    (one name per line, in parentheses): a long plugin name makes some imports that long."""
    lines = []
    for line in text.splitlines(keepends=True):
        found = re.fullmatch(r"from (\S+) import ([^(]+)\n", line)
        if found is None or len(line) <= 101:
            lines.append(line)
            continue
        names = "".join(f"    {n.strip()},\n" for n in found[2].split(","))
        lines.append(f"from {found[1]} import (\n{names})\n")
    return "".join(lines)


def create_plugin(root: Path, name: str) -> Created:
    """Write the plugin ``name``'s files and tests into the checkout ``root`` and register it
    in its pyproject.toml. Nothing is written when a check fails.

    :raises ScaffoldError: the name is refused or taken, or pyproject.toml cannot be edited.
    """
    from propmubi.scaffold.pyproject import PyprojectError, add_plugin
    from propmubi.scaffold.skeleton import PLUGIN_FILES
    from propmubi.scaffold.skeleton_tests import TEST_FILES

    check_name(name, root)
    pyproject = root / "pyproject.toml"
    try:
        registered, notes = add_plugin(pyproject.read_text(encoding="utf-8"), name)
    except PyprojectError as exc:
        raise ScaffoldError(str(exc)) from None
    files = [(render(path, name), render(text, name)) for path, text in
             (*PLUGIN_FILES, *TEST_FILES)]
    files = [(path, _wrap_imports(text) if path.endswith(".py") else text)
             for path, text in files]
    for path, text in files:
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    pyproject.write_text(registered, encoding="utf-8")
    return Created(files=[path for path, _ in files], notes=notes)


def configure(parser: argparse.ArgumentParser) -> None:
    """``propmubi plugin new NAME [--root DIR]``."""
    actions = parser.add_subparsers(dest="plugin_action", required=True, metavar="ACTION")
    new = actions.add_parser("new", help="write a new plugin's skeleton and tests, and "
                             "register its entry point")
    new.add_argument("name", metavar="NAME",
                     help="the plugin's name: lowercase letters, digits and underscores")
    new.add_argument("--root", type=Path, default=None,
                     help="the checkout to write into (default: the one holding the current "
                     "directory)")


async def run(args: argparse.Namespace, ctx: Any) -> int:
    """Run ``propmubi plugin new`` (``ctx`` is None: the command opens no services)."""
    try:
        root = args.root.resolve() if args.root is not None else find_root(Path.cwd())
        if args.root is not None and not _is_checkout(root):
            raise ScaffoldError(f"{root} is not a propmubi checkout (no pyproject.toml of "
                                "propmubi with a plugins/ folder)")
        created = create_plugin(root, args.name)
    except (ScaffoldError, OSError) as exc:
        print(f"propmubi plugin new: {' '.join(str(exc).split())}", file=sys.stderr)
        return 1
    print(f"created the plugin {args.name!r} in {root}:")
    for path in created.files:
        print(f"  {path}")
    for note in created.notes:
        print(note)
    print(NEXT_STEP)
    return 0


def command() -> CliCommand:
    """The ``plugin`` command, contributed by the core plugin."""
    return CliCommand(name="plugin", help="start a new plugin (propmubi plugin new NAME)",
                      configure=configure, run=run, needs_services=False)
