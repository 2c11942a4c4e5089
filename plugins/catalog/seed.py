"""``propmubi seed --scale N``: reproducible demo catalogue."""

from __future__ import annotations

from propmubi.context import Services


async def seed(services: Services, scale: float) -> None:
    """Create the demo catalogue (idempotent)."""
