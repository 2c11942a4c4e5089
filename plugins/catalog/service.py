"""The catalogue rules."""

from __future__ import annotations

from propmubi.context import Services


async def start(services: Services) -> None:
    """Prepare this process's catalogue runtime."""


async def stop(services: Services) -> None:
    """Forget this process's catalogue runtime."""
