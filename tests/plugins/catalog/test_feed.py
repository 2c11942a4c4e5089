"""The city feed: published projects of a city, featured first, then newest."""

from __future__ import annotations

import datetime as dt

from tests.plugins.catalog.search_data import NOW, insert_builder, insert_project

FEED = "/api/v1/projects/feed"


async def test_featured_first_then_newest(client, services):
    async with services.db.transaction() as tx:
        builder = await insert_builder(tx, "Feed Builders", verified=True)
        for i, featured in enumerate([False, True, False, True, False, False]):
            await insert_project(tx, builder, name=f"P{i}", city="Pune", featured=featured,
                                 published_at=NOW - dt.timedelta(days=i))
        await insert_project(tx, builder, name="Elsewhere", city="Mumbai")
        await insert_project(tx, builder, name="Draft", city="Pune", moderation="draft")
        await insert_project(tx, builder, name="Unpublished", city="Pune",
                             moderation="in_review", featured=True)
    response = await client.get(FEED, params={"city": "pune"})
    body = await response.json()
    assert response.status == 200, body
    assert [i["name"] for i in body["items"]] == ["P1", "P3", "P0", "P2", "P4", "P5"]
    assert body["items"][0]["featured"] is True
    assert body["items"][0]["builder"]["verified"] is True
    limited = await (await client.get(FEED, params={"city": "Pune", "limit": 3})).json()
    assert [i["name"] for i in limited["items"]] == ["P1", "P3", "P0"]
    empty = await (await client.get(FEED, params={"city": "Atlantis"})).json()
    assert empty == {"items": []}


async def test_bad_feed_queries_are_422(client):
    for params, field in (({}, "city"), ({"city": " "}, "city"),
                          ({"city": "Pune", "limit": 0}, "limit"),
                          ({"city": "Pune", "limit": 51}, "limit")):
        response = await client.get(FEED, params=params)
        body = await response.json()
        assert response.status == 422, params
        assert [e["field"] for e in body["errors"]] == [field], params
