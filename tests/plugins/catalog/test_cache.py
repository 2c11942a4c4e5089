"""The search cache: hits and misses, invalidation through the real event bus and right after
a service's commit, city scoping, and answers from the database when Redis is down."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from prometheus_client import REGISTRY

from propmubi.config import RedisSection
from propmubi.redis import create_redis
from propmubi.web.appkeys import SERVICES
from propmubi_plugins.catalog.events import (
    PriceChanged,
    ProjectDeleted,
    ProjectPublished,
    ProjectUpdated,
    UnitStatusChanged,
)
from propmubi_plugins.catalog.search import cache
from tests.plugins.auth.conftest import AUTH_SETTINGS
from tests.plugins.catalog.search_data import insert_builder, insert_project, search

TTL = 30


@pytest.fixture
def config_overrides() -> dict[str, dict[str, Any]]:
    return {"plugins": {"settings": {"auth": dict(AUTH_SETTINGS),
                                     "catalog": {"cache_ttl": TTL}}},
            "ratelimit": {"enabled": False}}


def counted(endpoint: str, result: str) -> float:
    return REGISTRY.get_sample_value("propmubi_catalog_cache_requests_total",
                                     {"endpoint": endpoint, "result": result}) or 0.0


@pytest.fixture
async def two_cities(services):
    async with services.db.transaction() as tx:
        builder = await insert_builder(tx, "Cache Builders")
        pune = await insert_project(tx, builder, name="Pune One", city="Pune",
                                    units_available=5, price_min=10**9, price_max=2 * 10**9)
        mumbai = await insert_project(tx, builder, name="Mumbai One", city="Mumbai",
                                      units_available=7)
    return {"pune": pune, "mumbai": mumbai, "builder": builder}


async def _units(client, **params) -> dict[str, int]:
    body = await search(client, params)
    return {i["name"]: i["units_available"] for i in body["items"]}


async def _set_units(services, project, n: int) -> None:
    await services.db.execute("UPDATE catalog_projects SET units_available = %s WHERE id = %s",
                              (n, project["id"]))


async def test_second_request_is_a_hit_with_the_ttl(client, services, two_cities):
    misses, hits = counted("search", "miss"), counted("search", "hit")
    first = await client.get("/api/v1/projects/search", params=[("city", "Pune"), ("bhk", "2"),
                                                                 ("bhk", "3")])
    # The same search spelled differently (order, case) is the same answer.
    second = await client.get("/api/v1/projects/search", params=[("bhk", "3"), ("bhk", "2"),
                                                                  ("city", "PUNE")])
    assert await first.text() == await second.text()
    assert counted("search", "miss") == misses + 1
    assert counted("search", "hit") == hits + 1
    keys = [k async for k in services.redis.scan_iter(
        match=services.context("catalog").keys("cache", "search", "*"))]
    assert len(keys) == 1
    assert 0 < await services.redis.ttl(keys[0]) <= TTL
    for endpoint, path, params in (("suggest", "suggest", {"q": "pune"}),
                                   ("feed", "feed", {"city": "Pune"})):
        before = counted(endpoint, "hit"), counted(endpoint, "miss")
        await client.get(f"/api/v1/projects/{path}", params=params)
        await client.get(f"/api/v1/projects/{path}", params=params)
        assert (counted(endpoint, "hit"), counted(endpoint, "miss")) == (
            before[0] + 1, before[1] + 1)


async def test_unit_status_event_invalidates_through_the_bus(client, services, event_bus,
                                                             two_cities):
    pune = two_cities["pune"]
    assert await _units(client, city="Pune") == {"Pune One": 5}
    async with services.db.transaction() as tx:
        await services.context("catalog").publish(tx, UnitStatusChanged(
            project_id=pune["id"], unit_id=uuid.uuid4(), old_status="available",
            new_status="held"))
    # Until the event is handled, the cached answer stands (this proves it is cached).
    assert await _units(client, city="Pune") == {"Pune One": 5}
    await event_bus.drain()
    # The handler recomputed the project's counts from its units (this one has none).
    assert await _units(client, city="Pune") == {"Pune One": 0}


@pytest.mark.parametrize("make_event", [
    lambda p: PriceChanged(project_id=p["id"], unit_id=uuid.uuid4(), old_price_minor=1,
                           new_price_minor=2, currency="INR"),
    lambda p: ProjectUpdated(project_id=p["id"], builder_id=p["builder_id"], fields=["name"],
                             moderation="published"),
    lambda p: ProjectPublished(project_id=p["id"], builder_id=p["builder_id"], city=p["city"]),
    lambda p: ProjectDeleted(project_id=p["id"], builder_id=p["builder_id"]),
], ids=["price_changed", "project_updated", "project_published", "project_deleted"])
async def test_every_catalogue_event_invalidates(client, services, event_bus, two_cities,
                                                 make_event):
    pune = two_cities["pune"]
    assert await _units(client, city="Pune") == {"Pune One": 5}
    assert await _units(client) == {"Pune One": 5, "Mumbai One": 7}
    await _set_units(services, pune, 3)
    async with services.db.transaction() as tx:
        await services.context("catalog").publish(tx, make_event(pune))
    await event_bus.drain()
    assert await _units(client, city="Pune") == {"Pune One": 3}
    assert await _units(client) == {"Pune One": 3, "Mumbai One": 7}


async def test_a_change_in_one_city_keeps_other_cities_feeds_cached(client, services,
                                                                   event_bus, two_cities):
    pune, mumbai = two_cities["pune"], two_cities["mumbai"]
    feed = await (await client.get("/api/v1/projects/feed", params={"city": "Mumbai"})).text()
    assert await _units(client, city="Mumbai") == {"Mumbai One": 7}
    await _set_units(services, mumbai, 1)  # behind the cache's back: shows what is cached
    async with services.db.transaction() as tx:
        await services.context("catalog").publish(tx, UnitStatusChanged(
            project_id=pune["id"], unit_id=uuid.uuid4(), old_status="held",
            new_status="available"))
    await event_bus.drain()
    assert await (await client.get("/api/v1/projects/feed",
                                   params={"city": "mumbai"})).text() == feed
    # A search, even one on Mumbai, counts Pune in its city facet: recomputed.
    body = await search(client, {"city": "Mumbai"})
    assert {i["name"]: i["units_available"] for i in body["items"]} == {"Mumbai One": 1}
    assert {f["value"] for f in body["facets"]["city"]} == {"Pune", "Mumbai"}
    # Pune's counts were recomputed from its units (none) when its event was handled.
    assert await _units(client) == {"Pune One": 0, "Mumbai One": 1}


async def test_a_project_moving_city_invalidates_everything(client, services, event_bus,
                                                            two_cities):
    pune = two_cities["pune"]
    assert await _units(client, city="Pune") == {"Pune One": 5}
    assert await _units(client, city="Mumbai") == {"Mumbai One": 7}
    await services.db.execute("UPDATE catalog_projects SET city = 'Mumbai' WHERE id = %s",
                              (pune["id"],))
    async with services.db.transaction() as tx:
        await services.context("catalog").publish(tx, ProjectUpdated(
            project_id=pune["id"], builder_id=pune["builder_id"], fields=["city"],
            moderation="published"))
    await event_bus.drain()
    assert await _units(client, city="Pune") == {}
    assert await _units(client, city="Mumbai") == {"Pune One": 5, "Mumbai One": 7}


async def test_invalidate_after_commit_is_visible_at_once(client, services, two_cities):
    pune = two_cities["pune"]
    assert await _units(client, city="Pune") == {"Pune One": 5}
    assert await _units(client, q="pune") == {"Pune One": 5}
    async with services.db.transaction() as tx:
        await tx.execute("UPDATE catalog_projects SET units_available = 2 WHERE id = %s",
                         (pune["id"],))
        cache.invalidate_after_commit(services.context("catalog"), tx, "Pune")
        # Not before the commit: another request now would cache the old state again.
        assert await _units(client, city="Pune") == {"Pune One": 5}
    # No event handled: the service's own bump did it.
    assert await _units(client, city="Pune") == {"Pune One": 2}
    assert await _units(client, q="pune") == {"Pune One": 2}
    # The web application's own catalogue context invalidates the same cache.
    app_ctx = client.app[SERVICES].context("catalog")
    async with app_ctx.db.transaction() as tx:
        await tx.execute("UPDATE catalog_projects SET units_available = 1 WHERE id = %s",
                         (pune["id"],))
        cache.invalidate_after_commit(app_ctx, tx, "Pune")
    assert await _units(client, city="Pune") == {"Pune One": 1}


async def test_a_rolled_back_change_invalidates_nothing(client, services, two_cities):
    assert await _units(client, city="Pune") == {"Pune One": 5}
    gens = await services.redis.mget(services.context("catalog").keys("gen"),
                                     services.context("catalog").keys("gen", "any"))
    with pytest.raises(RuntimeError):
        async with services.db.transaction() as tx:
            cache.invalidate_after_commit(services.context("catalog"), tx, "Pune")
            raise RuntimeError("rolled back")
    assert await services.redis.mget(services.context("catalog").keys("gen"),
                                     services.context("catalog").keys("gen", "any")) == gens


async def test_redis_down_answers_from_the_database(client, services, two_cities):
    app_services = client.app[SERVICES]
    working = app_services.redis
    # Nothing listens on port 1: every command fails at once.
    app_services.redis = create_redis(RedisSection(url="redis://127.0.0.1:1/0",
                                                   socket_timeout=0.5))
    try:
        errors = counted("search", "error")
        assert await _units(client, city="Pune") == {"Pune One": 5}
        await _set_units(services, two_cities["pune"], 1)
        assert await _units(client, city="Pune") == {"Pune One": 1}
        assert counted("search", "error") == errors + 2
        for path, params in (("suggest", {"q": "pune"}), ("feed", {"city": "Pune"})):
            response = await client.get(f"/api/v1/projects/{path}", params=params)
            assert response.status == 200, await response.text()
        async with app_services.db.transaction() as tx:
            cache.invalidate_after_commit(app_services.context("catalog"), tx,
                                          "Pune")  # logged, not raised
    finally:
        await app_services.redis.aclose()
        app_services.redis = working


async def test_a_project_published_through_the_service_appears(client, event_bus, builder,
                                                               make_project):
    # The catalogue's own service: derived columns (prices, bedrooms) and events are real.
    params = {"city": "Pune", "bhk": 2, "price_max": 86_00_000_00}
    assert (await search(client, params))["items"] == []
    assert (await search(client, {"q": "skyline meadows"}))["items"] == []
    project = await make_project(builder, moderation="published")
    await event_bus.drain()
    found = await search(client, params)
    assert [i["id"] for i in found["items"]] == [str(project["id"])]
    assert found["items"][0]["price_min"] == 85_00_000_00
    assert found["items"][0]["builder"]["name"] == "Skyline Developers"
    assert [i["id"] for i in (await search(client, {"q": "skyline meadows"}))["items"]] == [
        str(project["id"])]
    assert (await search(client, {**params, "bhk": 3}))["items"] == []


async def test_a_unit_status_change_shows_in_cached_search_at_once(client, builder,
                                                                   make_project):
    # No worker drains the bus here: the service's after-commit invalidation alone must make
    # the change visible (the "within one second", with the worker lagging).
    project = await make_project(builder, moderation="published")
    params = {"city": "Pune", "bhk": 2}
    before = await search(client, params)
    assert before["items"][0]["units_available"] == 2
    assert (await search(client, params)) == before  # now cached
    units = await (await client.get(f"/api/v1/projects/{project['id']}/units",
                                    headers=builder.headers)).json()
    unit_id = units["items"][0]["id"]
    response = await client.patch(f"/api/v1/units/{unit_id}/status", json={"status": "sold"},
                                  headers=builder.headers)
    assert response.status == 200, await response.text()
    after = await search(client, params)
    assert after["items"][0]["units_available"] == 1
