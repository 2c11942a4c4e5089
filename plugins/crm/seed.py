"""Demo leads for ``propmubi dev`` and ``propmubi seed``: one enquiry on each of the first
published demo projects, made through the service as the system (so dedup, routing and events
are real). A project that already has a lead is skipped, so a second run adds nothing.

The catalogue's seed names its demo projects by UUIDv5 of their position (``project:<n>`` in
its namespace, repeated here, as the bookings seed does).
"""

from __future__ import annotations

import uuid

from propmubi.actors import Actor
from propmubi_plugins.catalog import api as catalog
from propmubi_plugins.crm import notify, phones, service, store
from propmubi_plugins.crm.state import Ctx

CATALOG_SEED_NAMESPACE = uuid.UUID("6f1d1c1e-8a55-4c5e-9a7e-2f0c7b7d5e01")
#: Demo projects looked at (at scale 1.0), and the demo buyers' names.
FULL_SIZE = 40
MIN_PROJECTS = 8
NAMES = ("Asha Rao", "Vikram Iyer", "Meera Nair", "Rohan Kulkarni", "Fatima Shaikh",
         "Arjun Mehta", "Kavya Reddy", "Imran Qureshi")
SOURCES = ("website", "app", "portal", "whatsapp", "call")


def demo_project_id(position: int) -> uuid.UUID:
    """The id the catalogue's seed gives its demo project at ``position``."""
    return uuid.uuid5(CATALOG_SEED_NAMESPACE, f"project:{position}")


async def seed(ctx: Ctx, scale: float) -> int:
    """Make the default message templates and the missing demo leads; how many leads were
    made."""
    await notify.ensure_templates(ctx)
    actor = Actor.system("seed")
    # At least MIN_PROJECTS looked at: the dev seed's small scale still shows a few leads.
    ids = [demo_project_id(n) for n in range(max(MIN_PROJECTS, round(FULL_SIZE * scale)))]
    done = await store.projects_with_leads(ctx.db, ids)
    made = 0
    for n, project_id in enumerate(ids):
        project = await catalog.project(ctx.db, project_id)
        if project_id in done or project is None or project["moderation"] != "published":
            continue
        phone = phones.normalise(f"+91 90000 {n:05d}", "IN")
        assert phone is not None
        values = {"name": NAMES[n % len(NAMES)], "source": SOURCES[n % len(SOURCES)],
                  "message": "Is a site visit possible this weekend?", "email": None}
        async with ctx.db.transaction() as tx:
            await service.ingest_in(ctx, tx, actor, values, phone, project, user_id=None,
                                    partner=None)
        made += 1
    ctx.log.info("crm seed (scale %s): %d demo leads", scale, made)
    return made
