"""The wheel carries every file the product reads at run time, and the product finds them there.

The core's ``migrations/`` and ``templates/`` sit at the top of the repository and each plugin
keeps its own; pyproject.toml ships them by convention, naming no plugin (see propmubi/paths.py).
These tests build the wheel from a copy of the working tree, check its file list, install it
into a fresh virtualenv and run ``propmubi migrate status`` there from an empty directory, so
the migration files it lists can only have come from the installed wheel.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from propmubi import testing
from propmubi.testing import create_database, drop_database

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
# Source folder -> where its files land in the wheel (pyproject.toml's package-dir).
LAYOUT = {
    "propmubi": "propmubi",
    "plugins": "propmubi_plugins",
    "migrations": "propmubi/core_migrations",
    "templates": "propmubi/core_templates",
}
SHIPPED = ("*.py", "*.sql", "*.html", "py.typed")


@attrs.frozen
class Built:
    """A wheel and the copy of the sources it was built from (the working tree may change
    while the tests run; expectations are taken from the copy)."""

    source: Path
    wheel: Path

    def plugins(self) -> list[str]:
        """The plugin packages under plugins/ (folders with an ``__init__.py``)."""
        return sorted(p.parent.name for p in (self.source / "plugins").glob("*/__init__.py"))

    def migrations(self) -> set[str]:
        """Every up migration, as ``migrate status`` labels it: ``<plugin>/<file>``."""
        folders = {"core": self.source / "migrations"} | {
            name: self.source / "plugins" / name / "migrations" for name in self.plugins()}
        return {f"{owner}/{p.name}" for owner, folder in folders.items()
                for p in folder.glob("*.sql") if not p.name.endswith(".down.sql")}


def run(*args: str | Path, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run a command to completion; it must succeed."""
    proc = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=300,
                          **kwargs)
    assert proc.returncode == 0, (proc.args, proc.stdout, proc.stderr)
    return proc


def _copy_ignore(folder: str, names: list[str]) -> set[str]:
    """Leave out the environment, VCS data, build output and caches: only the sources."""
    top = {".git", ".venv", "var", "build", "dist"} if Path(folder) == ROOT else set()
    return {n for n in names if n in top or n == "__pycache__" or n.endswith(".egg-info")}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """The project built as a wheel by pip, from a copy of the working tree.

    A copy, because pip builds in place and would leave build/ in the checkout. The build runs
    in pip's isolated environment with pyproject.toml's [build-system] requirements, as
    ``pip install -e .`` does (the project's venv carries no build backend of its own).
    """
    base = tmp_path_factory.mktemp("wheel")
    source = base / "source"
    shutil.copytree(ROOT, source, ignore=_copy_ignore)
    run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", base / "dist", source)
    (wheel,) = (base / "dist").glob("propmubi-*.whl")
    return Built(source, wheel)


def test_wheel_ships_every_source_and_data_file_and_nothing_else(built: Built) -> None:
    names = set(zipfile.ZipFile(built.wheel).namelist())
    expected = {f"{dest}/{path.relative_to(built.source / src).as_posix()}"
                for src, dest in LAYOUT.items()
                for pattern in SHIPPED for path in (built.source / src).rglob(pattern)}
    assert sorted(expected - names) == []
    # Nothing else: not tests/, docs/ or var/, whatever name they would be mapped to.
    package_files = {n for n in names if ".dist-info/" not in n}
    assert sorted(package_files - expected) == []
    # The core's and every plugin's migrations and templates are among them.
    for prefix in ["propmubi/core_migrations/", "propmubi/core_templates/"] + [
            f"propmubi_plugins/{p}/{kind}/" for p in built.plugins()
            for kind in ("migrations", "templates")
            if (built.source / "plugins" / p / kind).is_dir()]:
        assert any(n.startswith(prefix) for n in names), prefix
    assert "propmubi/core_migrations/0001_events.sql" in names
    assert "propmubi/core_templates/base.html" in names
    assert {n.split("/")[0] for n in package_files} == {"propmubi", "propmubi_plugins"}


@pytest.fixture
def installed(built: Built, tmp_path: Path) -> Path:
    """A fresh virtualenv holding the wheel; its dependencies are read from this process's
    site-packages folders (``.pth`` lines), so nothing is downloaded and the checkout is not on
    the path."""
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", venv)
    python = venv / "bin" / "python"
    run(sys.executable, "-m", "pip", "--python", python, "install", "--quiet", "--no-index",
        "--no-deps", built.wheel)
    purelib = run(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))")
    # Appended after the new venv's own site-packages: the wheel's propmubi (and its entry
    # points) come first; the .pth files in these folders (the editable finder) are not run.
    deps = [p for p in sys.path if Path(p).name in ("site-packages", "dist-packages")]
    (Path(purelib.stdout.strip()) / "_propmubi_deps.pth").write_text("\n".join(deps) + "\n")
    return venv


@pytest.fixture
def empty_url(test_servers: testing.TestServers) -> Iterator[str]:
    """A database with nothing in it, so that every migration file shows as pending."""
    name = f"propmubi_pkg_{uuid.uuid4().hex[:12]}"
    url = create_database(test_servers, name)
    yield url
    drop_database(test_servers, name)


def test_installed_wheel_finds_its_migrations_and_templates(
        built: Built, installed: Path, empty_url: str, test_servers: testing.TestServers,
        tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"  # no propmubi.toml, no checkout on the path
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("PROPMUBI_") and k not in ("PYTHONPATH", "PYTHONHOME")}
    env.update(PROPMUBI_DATABASE__URL=empty_url, PROPMUBI_REDIS__URL=test_servers.redis_url)

    where = run(installed / "bin" / "python", "-c",
                "from propmubi import paths; print(paths.CORE_MIGRATIONS); "
                "print(paths.CORE_TEMPLATES)", cwd=elsewhere, env=env)
    migrations, templates = (Path(line) for line in where.stdout.split())
    assert migrations.is_relative_to(installed) and templates.is_relative_to(installed)
    assert (migrations / "0001_events.sql").is_file() and (templates / "base.html").is_file()

    proc = subprocess.run([str(installed / "bin" / "propmubi"), "migrate", "status"],
                          cwd=elsewhere, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, (proc.stdout, proc.stderr)  # 1: migrations are pending
    pending = {line.split()[1] for line in proc.stdout.splitlines()
               if line.startswith("pending ")}
    expected = built.migrations()
    assert "core/0001_events.sql" in expected
    assert pending == expected, proc.stdout
