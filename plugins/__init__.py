"""Propmubi's domain plugins, installed as ``propmubi_plugins``; each registers under the
``propmubi.plugins`` entry-point group in pyproject.toml."""
