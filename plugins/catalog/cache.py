"""The Redis cache of search, suggest and feed answers, and its invalidation by events."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from propmubi.context import Services


async def start(services: Services) -> None:
    """Prepare this process's cache."""


async def stop(services: Services) -> None:
    """Forget this process's cache."""


def handlers() -> Mapping[str, Callable[..., Awaitable[Any]]]:
    """Event type -> handler that invalidates cached answers."""
    return {}
