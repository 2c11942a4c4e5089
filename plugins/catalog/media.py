"""Photos: upload checks, EXIF stripping, thumbnails and web sizes, galleries."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from propmubi.context import Services


async def start(services: Services) -> None:
    """Open this process's storage backend."""


async def stop(services: Services) -> None:
    """Close this process's storage backend."""


def handlers() -> Mapping[str, Callable[..., Awaitable[Any]]]:
    """Event type -> handler (a deleted project's objects are removed)."""
    return {}
