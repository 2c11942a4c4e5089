"""Storage backends for uploaded media (``local`` and ``s3``), offered through
``propmubi_storage_backends``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def backends() -> Mapping[str, Any]:
    """Backend name -> factory."""
    return {}
