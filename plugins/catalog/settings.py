"""The ``[plugins.catalog]`` settings."""

from __future__ import annotations

from typing import Any

import attrs


def _positive(instance: Any, attribute: attrs.Attribute, value: float) -> None:
    if value <= 0:
        raise ValueError("must be greater than 0")


@attrs.frozen
class CatalogSettings:
    """Search cache, media and storage settings."""

    # Seconds a cached search, suggest or feed answer lives (events invalidate earlier).
    cache_ttl: int = attrs.field(default=60, validator=_positive)

    # A propmubi_storage_backends name: "local" (files under <var_dir>/media, served by the
    # web process) or "s3" (any S3-compatible service).
    storage_backend: str = "local"
    # The local backend's folder; empty: <app.var_dir>/media.
    media_dir: str = ""
    # Largest accepted photo upload, and largest decoded image (decompression-bomb guard).
    max_upload_bytes: int = attrs.field(default=15 * 1024 * 1024, validator=_positive)
    max_image_pixels: int = attrs.field(default=40_000_000, validator=_positive)

    # The "s3" backend.
    s3_endpoint_url: str = ""
    s3_region: str = "us-east-1"
    s3_bucket: str = ""
    s3_access_key_id: str = ""
    s3_secret_access_key: str = attrs.field(default="", metadata={"secret": True})
    # Public base URL of stored objects (a CDN, say); empty: served through the API.
    s3_public_base_url: str = ""
