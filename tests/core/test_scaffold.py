"""``propmubi plugin new``: the skeleton it writes passes ruff and its own tests, and the plugin
is registered in pyproject.toml without disturbing the rest of the file.

The end-to-end test works on a copy of the working tree (``git ls-files --cached --others
--exclude-standard``: tracked and new files, not ignored ones, so uncommitted work is in it),
runs ``python -m propmubi plugin new scaffold_probe --root <copy>`` there and then runs the
generated tests in a pytest process of their own, inside the copy.

How the copy's code is what runs: the import name ``propmubi_plugins`` is the folder
``plugins/`` under another name, a mapping made by setuptools (``package-dir``); the editable
install of the venv makes it for the checkout only. In the copy, a symlink ``propmubi_plugins ->
plugins`` at its top plus ``PYTHONPATH=<copy>`` makes the same mapping: the path finder comes
before the editable finder on ``sys.meta_path``, so ``propmubi``, ``propmubi_plugins`` and
``tests`` are all imported from the copy (the installed entry points, auth and catalog, load
from it too). The venv supplies the third-party packages only. Nothing is installed, so the
new plugin is no entry point there: the generated conftest loads it explicitly
(``extra_plugins``), as it does in a checkout before ``make test`` reinstalls the package. The
generated tests run unchanged, against the session's PostgreSQL and Redis.
"""

from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from propmubi import scaffold, testing
from propmubi.scaffold.pyproject import PyprojectError, add_plugin, matches

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
#: The longest name a plugin may have: long lines must still pass ruff.
LONG_NAME = "a" * 10 + "_" + "b" * 10 + "_" + "c" * 9

#: The plugin the test writes: a name of its own, so that a checkout in which someone already
#: ran `propmubi plugin new demo` (the guide's example) is no obstacle.
NAME = "scaffold_probe"
#: What the scaffold must write for it.
DEMO_FILES = [
    *(f"plugins/{NAME}/{f}.py" for f in ("__init__", "settings", "state", "models", "events",
                                          "handlers", "service", "store", "routes", "console",
                                          "seed", "api")),
    f"plugins/{NAME}/migrations/0001_{NAME}.sql",
    f"plugins/{NAME}/migrations/0001_{NAME}.down.sql",
    f"plugins/{NAME}/templates/{NAME}/items.html",
    *(f"tests/plugins/{NAME}/{f}.py" for f in ("__init__", "conftest", "test_routes",
                                                "test_service", "test_events", "test_console")),
]


def working_tree_copy(dest: Path) -> Path:
    """Copy the checkout's tracked and untracked, not ignored, files to ``dest``."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others",
                             "--exclude-standard"], cwd=ROOT, capture_output=True, check=True)
    for name in listed.stdout.decode().split("\0"):
        source = ROOT / name
        if name and source.is_file():  # deleted but not yet staged files are listed too
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    (dest / "propmubi_plugins").symlink_to("plugins", target_is_directory=True)
    return dest


def run(args: list[str | Path], cwd: Path, env: dict[str, str], timeout: float = 60
        ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


@pytest.mark.slow
def test_a_new_plugin_is_written_registered_linted_and_its_tests_pass(
        tmp_path: Path, test_servers: testing.TestServers) -> None:
    checkout = working_tree_copy(tmp_path / "checkout")
    pyproject_before = tomllib.loads((checkout / "pyproject.toml").read_text())
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROPMUBI_")}
    env.update(PYTHONPATH=str(checkout), PROPMUBI_TEST_DATABASE_URL=test_servers.database_url,
               PROPMUBI_TEST_REDIS_URL=test_servers.redis_url)

    created = run([sys.executable, "-m", "propmubi", "plugin", "new", NAME, "--root", checkout],
                  cwd=tmp_path, env=env)
    assert created.returncode == 0, created.stdout + created.stderr
    assert created.stdout.strip().splitlines()[-1] == scaffold.NEXT_STEP
    for name in DEMO_FILES:
        assert (checkout / name).is_file(), name
        assert name in created.stdout
    pyproject = tomllib.loads((checkout / "pyproject.toml").read_text())
    contract, = [c for c in pyproject["tool"]["importlinter"]["contracts"]
                 if c["type"] == "independence"]
    assert any(matches(e, f"propmubi_plugins.{NAME}") for e in contract["modules"])
    expected = copy.deepcopy(pyproject_before)
    expected["project"]["entry-points"]["propmubi.plugins"][NAME] = f"propmubi_plugins.{NAME}"
    expected_contract, = [c for c in expected["tool"]["importlinter"]["contracts"]
                          if c["type"] == "independence"]
    expected_contract["modules"] = contract["modules"]  # listed, or covered by a wildcard
    assert pyproject == expected

    # Found from the current directory (no --root); a taken name is refused in one line.
    again = run([sys.executable, "-m", "propmubi", "plugin", "new", NAME],
                cwd=checkout / "plugins", env=env)
    assert again.returncode == 1
    assert again.stderr.count("\n") == 1 and f"{NAME} already exists" in again.stderr
    # The longest possible name still gives files that ruff accepts.
    long = run([sys.executable, "-m", "propmubi", "plugin", "new", LONG_NAME], cwd=checkout,
               env=env)
    assert long.returncode == 0, long.stderr

    lint = run([BIN / "ruff", "check", "--no-cache", f"plugins/{NAME}", f"tests/plugins/{NAME}",
                f"plugins/{LONG_NAME}", f"tests/plugins/{LONG_NAME}"], cwd=checkout, env=env)
    assert lint.returncode == 0, lint.stdout + lint.stderr

    tests = run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                 f"tests/plugins/{NAME}"], cwd=checkout, env=env, timeout=300)
    assert tests.returncode == 0, tests.stdout[-5000:] + tests.stderr[-2000:]
    passed = re.search(r"(\d+) passed", tests.stdout)
    assert passed and int(passed[1]) >= 15, tests.stdout[-2000:]
    assert not re.search(r"\d+ (failed|errors?|skipped)", tests.stdout), tests.stdout[-2000:]


# -- The pieces, in process ------------------------------------------------------------------

PYPROJECT = '''\
[project]
name = "propmubi"

# Domain plugins register here.
[project.entry-points."propmubi.plugins"]
auth = "propmubi_plugins.auth"
catalog = "propmubi_plugins.catalog"  # needs auth

[tool.setuptools]
zip-safe = false

[[tool.importlinter.contracts]]
name = "The core knows no domain"
type = "forbidden"
source_modules = ["propmubi"]
forbidden_modules = ["propmubi_plugins"]

[[tool.importlinter.contracts]]
name = "Plugins are independent"
type = "independence"
MODULES
ignore_imports = []
'''


def pyproject_with(modules: str) -> str:
    return PYPROJECT.replace("MODULES", modules)


@pytest.mark.parametrize("modules", [
    'modules = ["propmubi_plugins.auth", "propmubi_plugins.catalog"]',
    'modules = [\n    "propmubi_plugins.auth",\n    "propmubi_plugins.catalog"  # needs auth\n]',
    'modules = [\n    "propmubi_plugins.auth",\n    "propmubi_plugins.catalog",\n]',
])
def test_listed_plugin_packages_get_the_new_one(modules: str) -> None:
    text = pyproject_with(modules)
    edited, done = add_plugin(text, "crm")
    data = tomllib.loads(edited)
    assert data["project"]["entry-points"]["propmubi.plugins"]["crm"] == "propmubi_plugins.crm"
    contract = data["tool"]["importlinter"]["contracts"][1]
    assert contract["modules"] == ["propmubi_plugins.auth", "propmubi_plugins.catalog",
                                   "propmubi_plugins.crm"]
    # Lines were added (and a comma after the last module): comments and layout are kept.
    def others(toml: str) -> list[str]:
        added = {'crm = "propmubi_plugins.crm"', '"propmubi_plugins.crm",'}
        return [line.replace(', "propmubi_plugins.crm"', "").replace('",', '"')
                for line in toml.splitlines() if line.strip() not in added]

    assert others(edited) == others(text)
    assert 'crm = "propmubi_plugins.crm"\n\n[tool.setuptools]' in edited
    assert "# needs auth" in edited and len(done) == 2


def test_a_wildcard_contract_is_left_alone() -> None:
    text = pyproject_with('modules = ["propmubi_plugins.*"]')
    edited, done = add_plugin(text, "crm")
    assert edited == text.replace('catalog = "propmubi_plugins.catalog"  # needs auth\n',
                                  'catalog = "propmubi_plugins.catalog"  # needs auth\n'
                                  'crm = "propmubi_plugins.crm"\n')
    assert "already covers propmubi_plugins.crm ('propmubi_plugins.*')" in done[1]


def test_an_existing_entry_point_is_refused() -> None:
    with pytest.raises(PyprojectError, match="already has the entry point auth"):
        add_plugin(pyproject_with('modules = ["propmubi_plugins.*"]'), "auth")


@pytest.mark.parametrize("name, why", [
    ("Crm", "must be lowercase"), ("9lives", "must be lowercase"), ("a__b", "single"),
    ("x" * 32, "at most 31"), ("class", "Python keyword"), ("console", "taken by the core"),
    ("bus", "taken by the core"), ("auth", "already exists"),
])
def test_names_a_plugin_cannot_have_are_refused(name: str, why: str, tmp_path: Path) -> None:
    (tmp_path / "plugins" / "auth").mkdir(parents=True)
    (tmp_path / "pyproject.toml").write_text(pyproject_with('modules = ["propmubi_plugins.*"]'))
    with pytest.raises(scaffold.ScaffoldError, match=why):
        scaffold.create_plugin(tmp_path, name)
    assert sorted(p.name for p in (tmp_path / "plugins").iterdir()) == ["auth"]


def test_the_checkout_is_found_from_below(tmp_path: Path) -> None:
    (tmp_path / "plugins").mkdir()
    (tmp_path / "pyproject.toml").write_text(pyproject_with('modules = ["propmubi_plugins.*"]'))
    below = tmp_path / "docs" / "deep"
    below.mkdir(parents=True)
    assert scaffold.find_root(below) == tmp_path.resolve()
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "other"\n')
    with pytest.raises(scaffold.ScaffoldError, match="no propmubi checkout"):
        scaffold.find_root(below)


def test_every_generated_line_fits_with_the_longest_name() -> None:
    """ruff's line limit, without ruff (the slow test runs ruff on the files)."""
    from propmubi.scaffold.skeleton import PLUGIN_FILES
    from propmubi.scaffold.skeleton_tests import TEST_FILES

    for path, text in (*PLUGIN_FILES, *TEST_FILES):
        if path.endswith(".py"):
            rendered = scaffold._wrap_imports(scaffold.render(text, LONG_NAME))
            too_long = [line for line in rendered.splitlines() if len(line) > 100]
            assert too_long == [], path
