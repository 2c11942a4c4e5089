"""Where the core's SQL migrations and Jinja templates are, installed or in a checkout.

They live at the top of the repository, in ``migrations/`` and ``templates/``, next to the
plugins rather than inside the ``propmubi`` package. The wheel ships them inside the package as
``propmubi/core_migrations/`` and ``propmubi/core_templates/`` (``[tool.setuptools.package-dir]``
in pyproject.toml). An editable install (``pip install -e .``, what ``make dev`` and ``make test``
use) imports ``propmubi`` from the checkout, where those folders are not inside the package but
one level up.

The lookup is by file system rather than through ``importlib.resources``: setuptools' editable
finder does not resolve a folder without ``__init__.py`` mapped outside its parent package
(pypa/setuptools#4943), so ``propmubi.core_migrations`` is not importable in an editable install.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["CORE_MIGRATIONS", "CORE_TEMPLATES"]

_PACKAGE = Path(__file__).parent


def _data_folder(installed: str, checkout: str) -> Path:
    """The folder as the wheel installs it if present, else the checkout's top-level folder."""
    inside = _PACKAGE / installed
    return inside if inside.is_dir() else _PACKAGE.parent / checkout


#: The core's ``NNNN_<what>.sql`` files (see :mod:`propmubi.migrate`).
CORE_MIGRATIONS: Path = _data_folder("core_migrations", "migrations")
#: The core's templates (``base.html``, ``macros.html``, ``console/``).
CORE_TEMPLATES: Path = _data_folder("core_templates", "templates")
