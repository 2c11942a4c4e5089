"""Registering a new plugin in pyproject.toml by editing its text, so that the file keeps its
comments, order and layout: an entry point, and (when the import-linter independence contract
lists the plugin packages one by one) a line in that contract's ``modules``.

Each edit is checked by parsing the result: the new file must be the old one plus exactly the
intended change, or nothing is written.
"""

from __future__ import annotations

import copy
import re
import tomllib
from typing import Any

__all__ = ["ENTRY_POINT_SECTION", "PyprojectError", "add_plugin", "matches"]

ENTRY_POINT_SECTION = 'project.entry-points."propmubi.plugins"'
_ENTRY_HEADER = re.compile(r'^\[project\.entry-points\."propmubi\.plugins"\]\s*(#.*)?$')
_HEADER = re.compile(r"^\s*\[")
_KEY = re.compile(r"^\s*([A-Za-z0-9_-]+)\s*=")
_PACKAGE = "propmubi_plugins"


class PyprojectError(ValueError):
    """pyproject.toml cannot be edited safely (its shape is not the expected one)."""


def matches(expression: str, module: str) -> bool:
    """Whether an import-linter module expression covers ``module`` (``*``: one name,
    ``**``: one or more)."""
    pattern = re.escape(expression).replace(r"\*\*", r"[^.]+(?:\.[^.]+)*").replace(r"\*",
                                                                                 "[^.]+")
    return re.fullmatch(pattern, module) is not None


def _add_entry_point(lines: list[str], name: str) -> list[str]:
    """Insert ``name = "propmubi_plugins.<name>"`` after the last entry of the entry-point
    table (the table is appended when the file has none)."""
    entry = f'{name} = "{_PACKAGE}.{name}"\n'
    start = next((i for i, line in enumerate(lines) if _ENTRY_HEADER.match(line)), None)
    if start is None:
        tail = [] if not lines or lines[-1].strip() == "" else ["\n"]
        return [*lines, *tail, f"[{ENTRY_POINT_SECTION}]\n", entry]
    end = next((i for i in range(start + 1, len(lines)) if _HEADER.match(lines[i])),
               len(lines))
    keys = [i for i in range(start + 1, end) if _KEY.match(lines[i])]
    at = keys[-1] + 1 if keys else start + 1
    return [*lines[:at], entry, *lines[at:]]


def _independence_block(lines: list[str]) -> tuple[int, int] | None:
    """The line range of the ``[[tool.importlinter.contracts]]`` table whose type is
    ``independence``; None when there is none."""
    starts = [i for i, line in enumerate(lines)
              if line.strip().startswith("[[tool.importlinter.contracts]]")]
    for start in starts:
        end = next((i for i in range(start + 1, len(lines)) if _HEADER.match(lines[i])),
                   len(lines))
        if any(re.match(r'^\s*type\s*=\s*"independence"', lines[i])
               for i in range(start + 1, end)):
            return start, end
    return None


def _add_module(lines: list[str], block: tuple[int, int], module: str) -> list[str]:
    """Append ``module`` to the ``modules = [...]`` array in ``block`` (one line or several)."""
    start, end = block
    first = next((i for i in range(start, end) if re.match(r"^\s*modules\s*=\s*\[", lines[i])),
                 None)
    if first is None:
        raise PyprojectError("the independence contract has no `modules = [` line")
    last = next((i for i in range(first, end) if "]" in lines[i].split("#")[0]), None)
    if last is None:
        raise PyprojectError("the independence contract's modules list does not end")
    if first == last:  # modules = ["a", "b"]
        line = lines[first]
        close = line.index("]", line.index("["))
        inner = line[line.index("[") + 1:close].rstrip()
        sep = "" if not inner.strip() else (" " if inner.endswith(",") else ", ")
        return [*lines[:first], f'{line[:close].rstrip()}{sep}"{module}"{line[close:]}',
                *lines[first + 1:]]
    items = [i for i in range(first + 1, last) if lines[i].strip().startswith('"')]
    indent = re.match(r"^\s*", lines[items[-1]] if items else "    ")[0]  # type: ignore[index]
    out = list(lines)
    if items and not out[items[-1]].split("#")[0].rstrip().endswith(","):
        line = out[items[-1]]
        end_of_item = len(line.split("#")[0].rstrip())  # a comma there keeps any comment
        out[items[-1]] = f"{line[:end_of_item]},{line[end_of_item:]}"
    out.insert(last, f'{indent}"{module}",\n')
    return out


def add_plugin(text: str, name: str) -> tuple[str, list[str]]:
    """The text of pyproject.toml with the plugin ``name`` registered, and what was done.

    :raises PyprojectError: the file does not parse, the edit would change something else, or
        the plugin's entry point is already there.
    """
    try:
        before = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PyprojectError(f"pyproject.toml does not parse: {exc}") from None
    module = f"{_PACKAGE}.{name}"
    entry_points = before.get("project", {}).get("entry-points", {}).get("propmubi.plugins", {})
    if name in entry_points:
        raise PyprojectError(f"pyproject.toml already has the entry point {name} = "
                             f"{entry_points[name]!r}")
    expected = copy.deepcopy(before)
    expected.setdefault("project", {}).setdefault("entry-points", {}).setdefault(
        "propmubi.plugins", {})[name] = module
    lines = _add_entry_point(text.splitlines(keepends=True), name)
    done = [f"pyproject.toml: entry point {name} = \"{module}\" in [{ENTRY_POINT_SECTION}]"]

    contracts = [c for c in before.get("tool", {}).get("importlinter", {}).get("contracts", [])
                 if c.get("type") == "independence"]
    if contracts:
        index = before["tool"]["importlinter"]["contracts"].index(contracts[0])
        listed: list[str] = contracts[0].get("modules", [])
        if any(matches(expression, module) for expression in listed):
            covered = next(e for e in listed if matches(e, module))
            done.append(f"pyproject.toml: the import-linter independence contract already "
                        f"covers {module} ({covered!r})")
        else:
            block = _independence_block(lines)
            if block is None:
                raise PyprojectError("the independence contract was not found in the text")
            lines = _add_module(lines, block, module)
            expected["tool"]["importlinter"]["contracts"][index]["modules"] = [*listed, module]
            done.append(f"pyproject.toml: {module} added to the import-linter independence "
                        "contract's modules")

    after_text = "".join(lines)
    try:
        after: Any = tomllib.loads(after_text)
    except tomllib.TOMLDecodeError as exc:
        raise PyprojectError(f"editing pyproject.toml would break it ({exc}); "
                             "register the plugin by hand") from None
    if after != expected:
        raise PyprojectError("editing pyproject.toml would change more than the plugin's "
                             "entries; register the plugin by hand")
    return after_text, done
