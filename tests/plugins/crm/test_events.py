"""The agents plugin's events, consumed by the CRM through the real bus: its routing copy of
the advisors follows them, and a redelivery or an older event changes nothing.

The events are published as the agents plugin publishes them (its context, in a transaction),
with the classes the event catalog registered for their type names: the CRM and its tests
never import the agents plugin.
"""

from __future__ import annotations

import uuid
from typing import Any

from propmubi.validation import json_converter
from tests.plugins.crm.conftest import enquiry, send


async def publish(services: Any, type_name: str, payload: dict[str, Any]) -> None:
    """Publish an agents event (structured into its registered class) as the agents plugin."""
    event = json_converter.structure(payload, services.events.info(type_name).cls)
    agents = services.context("agents")
    async with agents.db.transaction() as tx:
        await agents.publish(tx, event, actor="system:test")


def routing(project_ids: list[Any], **changes: Any) -> dict[str, Any]:
    picture = {"status": "active", "active": True, "capacity": 5,
               "territories": [{"city": "Pune", "locality": None, "city_key": "pune",
                                "locality_key": None}],
               "listed_project_ids": [str(p) for p in project_ids],
               "holidays": [], "languages": ["en"]}
    picture.update(changes)
    return picture


async def copy(services: Any, agent_id: uuid.UUID) -> dict[str, Any] | None:
    return await services.db.fetchrow("SELECT * FROM crm_agents WHERE agent_id = %s",
                                      (agent_id,))


async def test_an_activated_agent_gets_leads_until_suspended(client, services, event_bus,
                                                             ctx, buyer, project):
    agent_id, user_id = uuid.uuid4(), uuid.uuid4()
    await publish(services, "agents.agent_activated", {
        "agent_id": str(agent_id), "user_id": str(user_id),
        "routing": routing([project["id"]])})
    await event_bus.drain()
    row = await copy(services, agent_id)
    assert row is not None and (row["active"], row["capacity"], row["user_id"]) == (
        True, 5, user_id)
    assert row["territories"] == [{"city": "pune", "locality": ""}]
    assert row["projects"] == [project["id"]]
    first = await send(client, buyer, enquiry(project, phone="98765 00001"))
    lead = await ctx.db.fetchrow("SELECT agent_id FROM crm_leads WHERE id = %s",
                                 (uuid.UUID(first["lead_id"]),))
    assert lead["agent_id"] == agent_id

    await publish(services, "agents.agent_suspended", {
        "agent_id": str(agent_id), "user_id": str(user_id), "reason": "staff",
        "status": "suspended"})
    await event_bus.drain()
    assert (await copy(services, agent_id))["active"] is False
    second = await send(client, buyer, enquiry(project, phone="98765 00002"))
    lead = await ctx.db.fetchrow("SELECT agent_id FROM crm_leads WHERE id = %s",
                                 (uuid.UUID(second["lead_id"]),))
    assert lead["agent_id"] is None


async def test_updates_and_listing_changes_replace_the_picture(services, event_bus, project):
    agent_id, user_id = uuid.uuid4(), uuid.uuid4()
    await publish(services, "agents.agent_activated", {
        "agent_id": str(agent_id), "user_id": str(user_id), "routing": routing([])})
    await publish(services, "agents.agent_updated", {
        "agent_id": str(agent_id), "user_id": str(user_id), "fields": ["capacity", "holidays"],
        "routing": routing([], capacity=0, holidays=[
            {"starts_on": "2025-06-01", "ends_on": "2025-06-03"}])})
    await publish(services, "agents.listing_changed", {
        "agent_id": str(agent_id), "user_id": str(user_id), "listing_id": str(uuid.uuid4()),
        "project_id": str(project["id"]), "status": "accepted",
        "routing": routing([project["id"]], capacity=0, holidays=[
            {"starts_on": "2025-06-01", "ends_on": "2025-06-03"}])})
    await event_bus.drain()
    row = await copy(services, agent_id)
    assert (row["capacity"], row["projects"]) == (0, [project["id"]])
    assert row["holidays"] == [{"starts_on": "2025-06-01", "ends_on": "2025-06-03"}]


async def test_a_redelivered_or_older_event_changes_nothing(services, event_bus):
    agent_id, user_id = uuid.uuid4(), uuid.uuid4()
    await publish(services, "agents.agent_activated", {
        "agent_id": str(agent_id), "user_id": str(user_id), "routing": routing([])})
    await publish(services, "agents.agent_suspended", {
        "agent_id": str(agent_id), "user_id": str(user_id), "reason": "kyc",
        "status": "pending"})
    await event_bus.drain()
    assert (await copy(services, agent_id))["active"] is False
    stream = services.keys.event_stream("agents")
    entries = await services.redis.xrange(stream)
    activated = next(f for _, f in entries if f[b"type" if b"type" in f else "type"]
                     in (b"agents.agent_activated", "agents.agent_activated"))
    await services.redis.xadd(stream, activated)  # the older event again, as after a crash
    await event_bus.drain()
    row = await copy(services, agent_id)
    assert row["active"] is False and row["sequence"] == 2
