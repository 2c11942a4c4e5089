"""The catalogue's per-process state: the media storage backend and the photo processing slots.

The search cache needs no state of its own: it lives in Redis under the context's keys and reads
its TTL from the settings (see ``search/cache.py``).
"""

from __future__ import annotations

import asyncio
import os

import attrs
from PIL import Image

from propmubi.context import PluginContext
from propmubi_plugins.catalog.media.storage import Storage
from propmubi_plugins.catalog.settings import CatalogSettings

__all__ = ["CatalogState", "Ctx", "start", "stop"]

#: Photos converted at once by one process (each conversion takes a worker thread).
PROCESSING_SLOTS = max(1, min(4, os.cpu_count() or 1))


@attrs.define(eq=False)
class CatalogState:
    """What one process of the catalogue holds.

    :ivar storage: the open media backend (``plugins.catalog.storage_backend``).
    :ivar slots: bounds the photo conversions running at once (CPU-bound, in threads).
    """

    storage: Storage
    slots: asyncio.Semaphore


Ctx = PluginContext[CatalogSettings, CatalogState]


async def start(ctx: Ctx) -> CatalogState:
    """Open the media storage backend chosen by the settings."""
    storage: Storage = ctx.provider("propmubi_storage_backends", ctx.settings.storage_backend,
                                    setting="plugins.catalog.storage_backend")
    await storage.open()
    # Pillow's own guard, as a second line behind the check of the header in images.py.
    Image.MAX_IMAGE_PIXELS = ctx.settings.max_image_pixels
    return CatalogState(storage=storage, slots=asyncio.Semaphore(PROCESSING_SLOTS))


async def stop(ctx: Ctx) -> None:
    """Close the media storage backend."""
    if ctx.state is not None:
        await ctx.state.storage.close()
