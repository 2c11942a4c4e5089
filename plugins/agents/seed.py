"""Demo agents for ``propmubi dev`` and ``propmubi seed``: reproducible, and safe to run twice.

The auth plugin seeds no users, so demo agents stand for demo users of their own: every id is
a UUIDv5 of the agent's position (``agent:<n>``, ``agent-user:<n>``), and a second run finds
them and adds nothing. Each works the city (and, one in two, the locality) of the catalogue's
demo project at the same position (its ids are the catalogue seed's UUIDv5s, repeated here as
bookings' seed does) and lists that project. Their agent KYC is recorded as verified (as if
auth had said so); the registrations are verified by ``system:seed``, except: the second
agent waits for verification (pending), the third's registration ends in 60 days (it shows in
the "expiring" queue), and the fourth is suspended. Statuses go through the service's
``refresh_in``, so history rows and events are real.
"""

from __future__ import annotations

import datetime as dt
import uuid

from propmubi.actors import Actor
from propmubi_plugins.agents import notify, service, store
from propmubi_plugins.agents.models import fold
from propmubi_plugins.agents.state import Ctx
from propmubi_plugins.catalog import api as catalog

#: The namespace of the catalogue seed's ids (its ``seed.py``), and this seed's own.
CATALOG_SEED_NAMESPACE = uuid.UUID("6f1d1c1e-8a55-4c5e-9a7e-2f0c7b7d5e01")
NAMESPACE = uuid.UUID("0d8f3a52-57a1-4c53-9a53-7a4d1f2b9c11")
#: Demo agents at scale 1.0 (at least four at any scale, so each case shows).
FULL_SIZE = 24
FIRST_NAMES = ("Asha", "Rohan", "Meera", "Vikram", "Priya", "Arjun", "Kavya", "Sanjay")
LAST_NAMES = ("Kulkarni", "Iyer", "Shah", "Reddy", "Nair", "Gupta")


def demo_agent_ids(position: int) -> tuple[uuid.UUID, uuid.UUID]:
    """The agent id and user id of the demo agent at ``position``."""
    return (uuid.uuid5(NAMESPACE, f"agent:{position}"),
            uuid.uuid5(NAMESPACE, f"agent-user:{position}"))


async def seed(ctx: Ctx, scale: float) -> int:
    """Create the default message templates and the demo agents that do not exist yet; how
    many agents were new."""
    await notify.ensure_templates(ctx)
    actor = Actor.system("seed")
    today = service.today_of(ctx)
    now = ctx.clock.now()
    added = 0
    for n in range(max(4, round(FULL_SIZE * scale))):
        agent_id, user_id = demo_agent_ids(n)
        async with ctx.db.transaction() as tx:
            if await store.agent(tx, agent_id) is not None:
                continue
            name = f"{FIRST_NAMES[n % len(FIRST_NAMES)]} {LAST_NAMES[n % len(LAST_NAMES)]}"
            if not await store.insert_agent(tx, {
                    "id": agent_id, "user_id": user_id, "display_name": name,
                    "phone": f"+9190000{n:05d}", "email": f"agent{n}@example.com",
                    "languages": ["English", "Hindi"] if n % 2 else ["English", "Marathi"],
                    "capacity": 5 + n % 10, "created_by": actor.ref, "now": now}):
                continue
            await store.add_history(tx, uuid.uuid5(NAMESPACE, f"history:{n}"), agent_id,
                                    None, "pending", "created", None, actor.ref, now)
            await store.record_kyc(tx, user_id, "verified", 0)
            until = today + dt.timedelta(days=60 if n == 2 else 4 * 365)
            await store.insert_registration(
                tx, uuid.uuid5(NAMESPACE, f"registration:{n}"), agent_id, f"A518{n:08d}", "MH",
                until - dt.timedelta(days=5 * 365), until,
                "submitted" if n == 1 else "verified", now, None if n == 1 else actor.ref)
            project = await catalog.project(tx, uuid.uuid5(CATALOG_SEED_NAMESPACE,
                                                           f"project:{n}"))
            if project is not None:
                locality = project["locality"] if n % 2 else ""
                await store.replace_territories(tx, agent_id, [
                    (project["city"], locality, fold(project["city"]), fold(locality))])
                await store.request_listing(tx, uuid.uuid5(NAMESPACE, f"listing:{n}"),
                                            agent_id, project["id"], now)
                await store.decide_listing(tx, uuid.uuid5(NAMESPACE, f"listing:{n}"),
                                           "accepted", None, now, actor.ref)
            if n == 3:
                await store.set_suspension(tx, agent_id, now, "demo: missed compliance call")
            row = await store.agent(tx, agent_id, lock=True)
            assert row is not None
            await service.refresh_in(ctx, tx, actor, row)
            added += 1
    ctx.log.info("agents seed (scale %s): %d demo agents", scale, added)
    return added
