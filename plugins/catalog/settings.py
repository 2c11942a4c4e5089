"""The ``[plugins.catalog]`` settings."""

from __future__ import annotations

from typing import Any

import attrs


def _positive(instance: Any, attribute: attrs.Attribute, value: float) -> None:
    if value <= 0:
        raise ValueError("must be greater than 0")


@attrs.frozen
class CatalogSettings:
    """Search cache, media limits and the builders' KYC gate (where media is stored is the
    core's ``[storage]``)."""

    # Seconds a cached search, suggest or feed answer lives (events invalidate earlier).
    cache_ttl: int = attrs.field(default=60, validator=_positive)

    # Largest accepted photo upload, and largest decoded image (decompression-bomb guard).
    max_upload_bytes: int = attrs.field(default=15 * 1024 * 1024, validator=_positive)
    max_image_pixels: int = attrs.field(default=40_000_000, validator=_positive)

    # Builders (API users with the builder role) may create and change projects, towers,
    # units and photos only once their builder KYC is verified (``auth.kyc_status_changed``);
    # staff are never gated. Off only for a development setup without KYC reviews.
    require_builder_kyc: bool = True
