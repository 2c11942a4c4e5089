"""Suggest: typo-tolerant completion over project names, localities and builder names."""

from __future__ import annotations

import pytest

from tests.plugins.catalog.search_data import insert_builder, insert_project

SUGGEST = "/api/v1/projects/suggest"


@pytest.fixture
async def names(services):
    async with services.db.transaction() as tx:
        prestige = await insert_builder(tx, "Prestige Group", verified=True)
        godrej = await insert_builder(tx, "Godrej Properties")
        await insert_builder(tx, "Prestine Homes")  # no published project: never suggested
        await insert_project(tx, prestige, name="Prestige Lakeside Habitat",
                             locality="Whitefield", city="Bengaluru")
        await insert_project(tx, prestige, name="Prestige Falcon City",
                             locality="Kanakapura Road", city="Bengaluru")
        await insert_project(tx, godrej, name="Godrej Woods", locality="Sector 43",
                             city="Noida")
        await insert_project(tx, godrej, name="Godrej Élan", locality="Whitefield",
                             city="Bengaluru")
        await insert_project(tx, godrej, name="Prestige Secret Draft", moderation="draft")


async def suggest(client, q, status=200, **params):
    response = await client.get(SUGGEST, params={"q": q, **params})
    body = await response.json()
    assert response.status == status, body
    return body


async def test_typos_find_names_of_every_kind(client, names):
    items = (await suggest(client, "prestge"))["items"]
    labels = [(i["kind"], i["label"]) for i in items]
    assert ("project", "Prestige Lakeside Habitat") in labels
    assert ("project", "Prestige Falcon City") in labels
    assert ("builder", "Prestige Group") in labels
    assert all("Draft" not in label and label != "Prestine Homes" for _, label in labels)
    localities = (await suggest(client, "whitefeild"))["items"]
    assert [(i["kind"], i["label"], i["city"], i["id"]) for i in localities] == [
        ("locality", "Whitefield", "Bengaluru", None)]  # one entry for two projects
    assert (await suggest(client, "godrej"))["items"][0]["kind"] in ("project", "builder")


async def test_prefix_ranks_first_and_answers_carry_ids(client, names):
    items = (await suggest(client, "go"))["items"]
    assert items and all(i["label"].lower().startswith("go") for i in items[:3])
    builder = next(i for i in items if i["kind"] == "builder")
    assert builder["label"] == "Godrej Properties" and builder["id"] and builder["slug"]
    project = next(i for i in items if i["kind"] == "project")
    assert project["id"] and project["slug"].startswith("p-") and project["city"]
    scores = [i["score"] for i in items]
    assert all(s > 0 for s in scores)


async def test_accents_and_case_do_not_matter(client, names):
    assert [i["label"] for i in (await suggest(client, "ELAN"))["items"]] == ["Godrej Élan"]
    first = (await suggest(client, "godrej élan"))["items"][0]
    assert first["label"] == "Godrej Élan"


async def test_at_most_ten_and_the_limit(client, services):
    async with services.db.transaction() as tx:
        builder = await insert_builder(tx, "Many Builders")
        for i in range(15):
            await insert_project(tx, builder, name=f"Sunrise Towers {i}", locality=f"Loc {i}")
    assert len((await suggest(client, "sunrise"))["items"]) == 10
    assert len((await suggest(client, "sunrise", limit=3))["items"]) == 3
    assert (await suggest(client, "zzzzqqq"))["items"] == []


async def test_bad_queries_are_422(client):
    for params, field in (({"q": "a"}, "q"), ({"q": " a "}, "q"), ({"q": "x" * 65}, "q"),
                          ({}, "q"), ({"q": "ab", "limit": 11}, "limit"),
                          ({"q": "ab", "limit": 0}, "limit")):
        response = await client.get(SUGGEST, params=params)
        body = await response.json()
        assert response.status == 422, params
        assert [e["field"] for e in body["errors"]] == [field], params
