"""Demo data for ``propmubi dev`` and ``propmubi seed``: reproducible, and safe to run twice.

Demo rows are made through the service, as the system, so they obey the rules and publish
their events like any other; a second run finds them by their titles and adds nothing.
``scale`` 1.0 is the full demo size; ``propmubi dev`` seeds a small fraction.
"""

from __future__ import annotations

from propmubi.actors import Actor
from propmubi_plugins.bookings import service, store
from propmubi_plugins.bookings.models import ItemIn
from propmubi_plugins.bookings.state import Ctx

#: Demo items at scale 1.0.
FULL_SIZE = 100


async def seed(ctx: Ctx, scale: float) -> None:
    """Create the demo items that do not exist yet."""
    titles = [f"Demo item {n}" for n in range(1, max(1, round(FULL_SIZE * scale)) + 1)]
    existing = await store.titles_among(ctx.db, titles)
    actor = Actor.system("seed")
    for title in titles:
        if title not in existing:
            await service.create_item(ctx, actor, ItemIn(title=title, note="A demo item."))
