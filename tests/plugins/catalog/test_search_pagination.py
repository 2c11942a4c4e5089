"""Keyset pagination: walking every page while projects are inserted between fetches neither
repeats nor skips a project that existed when the walk began."""

from __future__ import annotations

import datetime as dt
import itertools
import random

import pytest

from tests.plugins.catalog.search_data import (
    LAKH,
    build_dataset,
    insert_builder,
    insert_project,
    search,
    walk,
)


@pytest.fixture
async def dataset(services):
    return await build_dataset(services)


WALKS = [
    {"sort": "newest", "city": "Pune"},
    {"sort": "price_asc", "city": "Pune"},
    {"sort": "price_desc", "city": "Bengaluru"},
    {"sort": "distance", "lat": 12.97, "lng": 77.59, "radius_km": 30},
    {"sort": "relevance", "q": "residency"},
]


async def test_pages_are_stable_under_inserts(client, services, dataset):
    rng = random.Random(5)
    counter = itertools.count()
    async with services.db.transaction() as tx:
        builder = await insert_builder(tx, "Interleaved Builders")

    async def insert_some() -> None:
        # Newer and older, cheaper and dearer, nearer and farther, matching the text or not.
        async with services.db.transaction() as tx:
            for _ in range(3):
                n = next(counter)
                low = rng.randrange(30, 800) * LAKH
                await insert_project(
                    tx, builder, name=f"Inserted Residency {n}",
                    city=rng.choice(["Pune", "Bengaluru"]),
                    lat=12.97 + rng.uniform(-0.5, 0.5), lng=77.59 + rng.uniform(-0.5, 0.5),
                    price_min=low, price_max=low + rng.randrange(0, 100) * LAKH, bedrooms=[2],
                    published_at=dt.datetime.now(dt.UTC) - dt.timedelta(
                        days=rng.choice([0, 30, 3000])))

    for params in WALKS:
        before = await walk(client, {**params, "limit": 50})
        walked = await walk(client, {**params, "limit": 8}, between=insert_some)
        ids = [i["id"] for i in walked]
        assert len(ids) == len(set(ids)), ("duplicates", params)
        missing = {i["id"] for i in before} - set(ids)
        assert not missing, ("skipped", params, missing)
        assert len(before) > 16, params  # the walk really crossed pages


async def test_cursor_of_another_search_or_tampered_is_422(client, dataset):
    page = await search(client, {"sort": "newest", "limit": 5})
    cursor = page["next_cursor"]
    assert cursor
    for params in ({"sort": "price_asc"}, {"sort": "newest", "city": "Pune"}):
        body = await search(client, {**params, "cursor": cursor}, status=422)
        assert [e["field"] for e in body["errors"]] == ["cursor"], params
        assert "another search" in body["errors"][0]["message"]
    for bad in ("x", cursor[:-3], cursor + "AAAA", "W1siYSJdXQ", "e30"):
        body = await search(client, {"sort": "newest", "cursor": bad}, status=422)
        assert [e["field"] for e in body["errors"]] == ["cursor"], bad
    # A different page size is the same search: the cursor goes on.
    nxt = await search(client, {"sort": "newest", "limit": 10, "cursor": cursor})
    assert nxt["items"][0]["id"] not in {i["id"] for i in page["items"]}
