"""Builder profiles: validation, public reads, the verified badge set through api.py."""

from __future__ import annotations

import pytest

from propmubi.actors import Actor
from propmubi_plugins.catalog import api
from tests.plugins.catalog.conftest import API


@pytest.mark.parametrize(("field", "value"), [
    ("name", ""), ("name", "x" * 201), ("website", "ftp://x"), ("rera_promoter_id", "!"),
    ("description", 5), ("owner_user_id", "me"),
])
async def test_bad_builder_fields(client, services, make_user, field, value):
    user = await make_user("builder")
    response = await client.post(f"{API}/builders", json={"name": "Acme", field: value},
                                 headers=user.headers)
    assert response.status == 422
    assert field in {e["field"] for e in (await response.json())["errors"]}
    assert await services.db.fetchval("SELECT count(*) FROM catalog_builders") == 0


async def test_verified_follows_the_api_not_the_owner(client, services, builder):
    response = await client.patch(f"{API}/builders/me", json={"verified": True},
                                  headers=builder.headers)
    assert response.status == 422
    ctx = services.context("catalog")
    async with services.db.transaction() as tx:
        assert await api.set_builder_verified(ctx, tx, Actor.system("legal"),
                                              builder.builder_id, True)
    body = await (await client.get(f"{API}/builders/{builder.builder_id}")).json()
    assert body["verified"] is True and body["name"] == "Skyline Developers"
    assert "owner_user_id" not in body
    async with services.db.transaction() as tx:
        assert not await api.set_builder_verified(
            ctx, tx, Actor.system("legal"), "0190a0a0-0000-7000-8000-000000000000", True)
    assert (await client.get(f"{API}/builders/0190a0a0-0000-7000-8000-000000000000")
            ).status == 404


async def test_api_set_unit_status(client, services, event_bus, builder, make_project):
    project = await make_project(builder, moderation="published")
    unit = (await services.db.fetch("SELECT id FROM catalog_units WHERE project_id = %s",
                                    (project["id"],)))[0]
    async with services.db.transaction() as tx:
        row = await api.set_unit_status(services.context("catalog"), tx,
                                        Actor.system("bookings"), unit["id"], "held")
    assert row["status"] == "held"
    # The project's row is not locked by another plugin's write: its counts follow from the
    # event, in the worker.
    assert (await api.project(services.db, project["id"]))["units_available"] == 2
    await event_bus.drain()
    assert (await api.project(services.db, project["id"]))["units_available"] == 1
    event = await services.db.fetchrow(
        "SELECT payload, actor FROM core_outbox WHERE type = 'catalog.unit_status_changed'")
    assert event["actor"] == "system:bookings"
    assert event["payload"]["new_status"] == "held"


async def test_an_erased_user_no_longer_manages_the_builder(client, services, event_bus,
                                                            builder):
    response = await client.delete("/api/v1/me", headers=builder.headers)
    assert response.status == 204
    await event_bus.drain()
    row = await services.db.fetchrow("SELECT name, owner_user_id FROM catalog_builders "
                                     "WHERE id = %s", (builder.builder_id,))
    assert row["name"] == "Skyline Developers" and row["owner_user_id"] is None
