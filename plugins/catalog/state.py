"""The catalogue's per-process state: the photo processing slots.

Photos are stored in the process's shared object storage (``ctx.storage``, the core's
``[storage]``), under keys in the catalogue's own folder, ``projects/<id>/...``. The search
cache needs no state of its own: it lives in Redis under the context's keys and reads its TTL
from the settings (see ``search/cache.py``).
"""

from __future__ import annotations

import asyncio
import os

import attrs
from PIL import Image

from propmubi.context import PluginContext
from propmubi_plugins.catalog.settings import CatalogSettings

__all__ = ["CatalogState", "Ctx", "start"]

#: Photos converted at once by one process (each conversion takes a worker thread).
PROCESSING_SLOTS = max(1, min(4, os.cpu_count() or 1))


@attrs.define(eq=False)
class CatalogState:
    """What one process of the catalogue holds.

    :ivar slots: bounds the photo conversions running at once (CPU-bound, in threads).
    """

    slots: asyncio.Semaphore


Ctx = PluginContext[CatalogSettings, CatalogState]


async def start(ctx: Ctx) -> CatalogState:
    """The photo processing slots, and Pillow's pixel limit from the settings."""
    # Pillow's own guard, as a second line behind the check of the header in images.py.
    Image.MAX_IMAGE_PIXELS = ctx.settings.max_image_pixels
    return CatalogState(slots=asyncio.Semaphore(PROCESSING_SLOTS))
