"""Demo booking terms for the demo catalogue; no demo bookings (holds are short-lived, and a
demo unit stays available for whoever tries the flow).

The catalogue's seed names its demo projects by UUIDv5 of their position (``project:<n>`` in
its namespace, repeated here); each one that exists gets one of a few sets of terms, chosen by
its position. Terms a project already has are kept, so a second run adds nothing.
"""

from __future__ import annotations

import uuid
from typing import Any

from propmubi.actors import Actor
from propmubi_plugins.bookings.state import Ctx
from propmubi_plugins.bookings.terms import store
from propmubi_plugins.catalog import api as catalog

#: The namespace and full size of the catalogue's demo projects (its ``seed.py``).
CATALOG_SEED_NAMESPACE = uuid.UUID("6f1d1c1e-8a55-4c5e-9a7e-2f0c7b7d5e01")
CATALOG_SEED_PROJECTS = 2000

#: The demo terms, by project position modulo their number.
DEMO_TERMS: tuple[dict[str, Any], ...] = (
    {"amount_kind": "percent", "amount_minor": None, "amount_bps": 1000,
     "free_cancel_hours": 48, "fee_fixed_minor": 10_000_00, "fee_bps": 200},
    {"amount_kind": "percent", "amount_minor": None, "amount_bps": 500,
     "free_cancel_hours": 72, "fee_fixed_minor": 25_000_00, "fee_bps": 100},
    {"amount_kind": "fixed", "amount_minor": 2_00_000_00, "amount_bps": None,
     "free_cancel_hours": 24, "fee_fixed_minor": 50_000_00, "fee_bps": 300},
)


def demo_project_id(position: int) -> uuid.UUID:
    """The id the catalogue's seed gives its demo project at ``position``."""
    return uuid.uuid5(CATALOG_SEED_NAMESPACE, f"project:{position}")


async def seed(ctx: Ctx, scale: float) -> int:
    """Give the demo projects that exist their demo terms; how many were new."""
    actor = Actor.system("seed")
    added = 0
    async with ctx.db.transaction() as tx:
        for n in range(max(1, round(CATALOG_SEED_PROJECTS * scale))):
            project_id = demo_project_id(n)
            if await catalog.project(tx, project_id) is None:
                continue
            added += await store.insert_missing(tx, project_id, DEMO_TERMS[n % len(DEMO_TERMS)],
                                                actor.ref, ctx.clock.now())
    ctx.log.info("bookings seed (scale %s): terms for %d projects", scale, added)
    return added
