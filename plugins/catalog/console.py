"""Console pages of the catalogue: builders, the moderation queue, projects, galleries."""

from __future__ import annotations

from propmubi.types import ConsolePage, ConsoleWidget


def pages() -> list[ConsolePage]:
    """Every catalogue console page."""
    return []


def widgets() -> list[ConsoleWidget]:
    """Catalogue dashboard cards."""
    return []
