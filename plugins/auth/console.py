"""Console pages of the auth plugin: users, and (from kyc_console) the KYC review queue."""

from __future__ import annotations

from propmubi.types import ConsolePage, ConsoleWidget
from propmubi_plugins.auth import kyc_console


def pages() -> list[ConsolePage]:
    """Every auth console page."""
    return [*kyc_console.pages()]


def widgets() -> list[ConsoleWidget]:
    """Every auth dashboard card."""
    return [*kyc_console.widgets()]
