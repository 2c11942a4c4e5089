"""What the catalogue does when events arrive (its own, for caches; other plugins', later)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any


def handlers() -> Mapping[str, Callable[..., Awaitable[Any]]]:
    """Event type -> handler."""
    return {}
