"""The catalogue rules."""

from __future__ import annotations

from propmubi.context import Services
from propmubi_plugins.catalog import cache, media


async def start(services: Services) -> None:
    """Prepare this process's catalogue runtime: the media backend and the search cache."""
    await media.start(services)
    await cache.start(services)


async def stop(services: Services) -> None:
    """Forget this process's catalogue runtime."""
    await cache.stop(services)
    await media.stop(services)
