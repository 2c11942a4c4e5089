"""Console pages of the KYC review queue, and its dashboard card."""

from __future__ import annotations

from propmubi.types import ConsolePage, ConsoleWidget


def pages() -> list[ConsolePage]:
    """The KYC queue's pages."""
    return []


def widgets() -> list[ConsoleWidget]:
    """The KYC dashboard cards."""
    return []
