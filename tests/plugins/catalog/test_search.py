"""Search filters, sorts, facets and full text, checked against a Python model of the same
generated projects."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from propmubi_plugins.catalog.search.service import PRICE_BUCKETS
from tests.plugins.catalog.search_data import (
    build_dataset,
    expected_facets,
    expected_matches,
    haversine_m,
    insert_builder,
    insert_project,
    search,
    walk,
)


@pytest.fixture
async def dataset(services):
    return await build_dataset(services)


CRORE = 1_00_00_000_00  # one crore rupees in paise

FILTERS: list[dict[str, Any]] = [
    {},
    {"city": ["Pune"]},
    {"city": ["pune", "MUMBAI"]},
    {"locality": ["Whitefield", "baner"]},
    {"price_min": 3 * CRORE},
    {"price_max": 2 * CRORE},
    {"price_min": 2 * CRORE, "price_max": 4 * CRORE},
    {"bhk": [2]},
    {"bhk": [4, 5]},
    {"status": ["ready"]},
    {"status": ["upcoming", "under_construction"]},
    {"amenities": ["gym"]},
    {"amenities": ["gym", "swimming_pool"]},
    {"verified_builder": True},
    {"verified_builder": False},
    {"city": ["Bengaluru"], "bhk": [2, 3], "price_max": 5 * CRORE, "status": ["ready"],
     "amenities": ["landscaped_garden"], "verified_builder": False,
     "locality": ["Whitefield", "Hebbal"]},
]


def _facets_as_dicts(facets: dict[str, Any]) -> dict[str, dict[Any, int]]:
    out = {name: {f["value"]: f["count"] for f in facets[key]}
           for name, key in (("city", "city"), ("locality", "locality"), ("bhk", "bhk"),
                             ("status", "status"), ("amenities", "amenities"),
                             ("verified", "verified_builder"))}
    out["price"] = {i: b["count"] for i, b in enumerate(facets["price"]) if b["count"]}
    return out


async def test_filters_items_total_and_disjunctive_facets(client, dataset):
    # One test over every filter set: the data set is built once.
    for filters in FILTERS:
        expected = expected_matches(dataset, filters)
        assert expected or filters == FILTERS[-1], filters
        items = await walk(client, {**filters, "limit": 50})
        assert sorted(i["id"] for i in items) == sorted(str(p["id"]) for p in expected), filters
        body = await search(client, {**filters, "limit": 1})
        assert body["total"] == len(expected), filters
        assert _facets_as_dicts(body["facets"]) == expected_facets(
            dataset, filters, PRICE_BUCKETS), filters


async def test_possession_before_is_on_or_before(client, dataset):
    day = dt.date(2027, 6, 30)
    expected = expected_matches(
        dataset, {}, lambda p: p["possession_date"] is not None and p["possession_date"] <= day)
    items = await walk(client, {"possession_before": day.isoformat(), "limit": 50})
    assert sorted(i["id"] for i in items) == sorted(str(p["id"]) for p in expected)
    body = await search(client, {"possession_before": day.isoformat(), "bhk": 2})
    assert body["facets"]["bhk"] == [
        {"value": b, "count": n} for b, n in sorted(expected_facets(
            dataset, {"bhk": [2]}, PRICE_BUCKETS,
            lambda p: p["possession_date"] is not None
            and p["possession_date"] <= day)["bhk"].items())]


def _published(dataset):
    return [p for p in dataset if p["moderation"] == "published"]


SORTS = {
    # Projects without a price sort last either way; equal keys are ordered by id.
    "newest": (lambda p: (p["published_at"], p["id"].hex), True),
    "price_asc": (lambda p: (p["price_min"] if p["price_min"] is not None else 2**63,
                             p["id"].hex), False),
    "price_desc": (lambda p: (p["price_max"] if p["price_max"] is not None else -1,
                              p["id"].hex), True),
}


async def test_sorts_walk_every_page_in_order(client, dataset):
    # Prices repeat (300 projects, 770 possible prices): the id tie-break crosses pages.
    for sort, (key, descending) in SORTS.items():
        items = await walk(client, {"sort": sort, "limit": 37})
        expected = sorted(_published(dataset), key=key, reverse=descending)
        assert [i["id"] for i in items] == [str(p["id"]) for p in expected], sort


async def test_distance_sort_and_distance_km(client, dataset):
    centre = {"lat": 12.97, "lng": 77.59, "radius_km": 40}
    items = await walk(client, {**centre, "sort": "distance", "limit": 25})
    expected = sorted(
        (p for p in _published(dataset)
         if haversine_m(12.97, 77.59, p["lat"], p["lng"]) <= 40_000),
        key=lambda p: haversine_m(12.97, 77.59, p["lat"], p["lng"]))
    assert [i["id"] for i in items] == [str(p["id"]) for p in expected]
    for item, project in zip(items, expected, strict=True):
        assert item["distance_km"] == pytest.approx(
            haversine_m(12.97, 77.59, project["lat"], project["lng"]) / 1000, abs=0.002)
    distances = [i["distance_km"] for i in items]
    assert distances == sorted(distances)


async def test_without_a_point_there_is_no_distance(client, dataset):
    body = await search(client, {"city": "Pune"})
    assert all(i["distance_km"] is None for i in body["items"])


async def test_item_shape(client, services):
    async with services.db.transaction() as tx:
        builder = await insert_builder(tx, "Shape Builders", verified=True)
        project = await insert_project(
            tx, builder, name="Shape Towers", city="Goa", locality="Panjim", lat=15.49,
            lng=73.82, status="ready", possession_date=dt.date(2027, 3, 31),
            price_min=60 * 10**7, price_max=90 * 10**7, bedrooms=[2, 3], units_available=4,
            amenities=["swimming_pool"], featured=True)
    body = await search(client, {"city": "goa"})
    assert body["items"] == [{
        "id": str(project["id"]), "slug": project["slug"], "name": "Shape Towers",
        "builder": {"id": str(builder["id"]), "name": "Shape Builders",
                    "slug": builder["slug"], "verified": True},
        "city": "Goa", "locality": "Panjim", "lat": 15.49, "lng": 73.82, "status": "ready",
        "possession_date": "2027-03-31", "price_min": 60 * 10**7, "price_max": 90 * 10**7,
        "currency": "INR", "bedrooms": [2, 3], "units_available": 4, "featured": True,
        "distance_km": None, "cover": None}]
    assert body["total"] == 1 and body["next_cursor"] is None


async def test_only_published_projects_are_found(client, services):
    async with services.db.transaction() as tx:
        builder = await insert_builder(tx, "Moderation Builders")
        for state in ("draft", "in_review", "rejected", "published"):
            await insert_project(tx, builder, name=f"Hidden {state}", moderation=state)
    body = await search(client, {"q": "hidden"})
    assert [i["name"] for i in body["items"]] == ["Hidden published"]
    assert body["total"] == 1


# --- full text --------------------------------------------------------------------------------

@pytest.fixture
async def texts(services):
    async with services.db.transaction() as tx:
        prestige = await insert_builder(tx, "Prestige Group", verified=True)
        other = await insert_builder(tx, "Sobha Limited")
        rows = {
            "lakeside": await insert_project(
                tx, prestige, name="Lakeside Habitat", locality="Varthur",
                description="Homes by the lake with a clubhouse."),
            "cafe": await insert_project(
                tx, other, name="Résidence Café Élysée", locality="Indiranagar",
                city="Bengaluru", description="Near metro."),
            "whitefield": await insert_project(
                tx, other, name="Sobha Dream Acres", locality="Whitefield",
                description="Large township."),
            "described": await insert_project(
                tx, other, name="Quiet Corner", locality="Hebbal",
                description="A habitat for birds next door."),
            "pune": await insert_project(
                tx, other, name="Hill View", locality="Baner", city="Pune",
                description="Views of the habitat hills."),
        }
    return rows


async def _names(client, **params):
    body = await search(client, params)
    return [i["name"] for i in body["items"]]


async def test_text_matches_name_locality_builder_and_city(client, texts):
    assert await _names(client, q="lakeside") == ["Lakeside Habitat"]
    assert await _names(client, q="whitefield") == ["Sobha Dream Acres"]
    assert await _names(client, q="prestige") == ["Lakeside Habitat"]
    assert await _names(client, q="pune") == ["Hill View"]


async def test_text_is_unaccented_both_ways(client, texts):
    assert await _names(client, q="residence cafe") == ["Résidence Café Élysée"]
    assert await _names(client, q="ÉLYSÉE") == ["Résidence Café Élysée"]
    assert await _names(client, q="Lakesidé") == ["Lakeside Habitat"]


async def test_last_word_matches_as_prefix(client, texts):
    assert await _names(client, q="lakes") == ["Lakeside Habitat"]
    assert await _names(client, q="sobha dre") == ["Sobha Dream Acres"]
    # Not a prefix inside a quoted phrase.
    assert await _names(client, q='"lakes"') == []


async def test_web_search_syntax(client, texts):
    assert await _names(client, q="habitat -birds", sort="newest") != []
    names = await _names(client, q="habitat -birds")
    assert "Quiet Corner" not in names and "Lakeside Habitat" in names
    assert sorted(await _names(client, q="lakeside or whitefield")) == [
        "Lakeside Habitat", "Sobha Dream Acres"]
    assert await _names(client, q='"dream acres"') == ["Sobha Dream Acres"]


async def test_relevance_ranks_name_above_description(client, texts):
    names = await _names(client, q="habitat")
    assert names[0] == "Lakeside Habitat"
    assert set(names) == {"Lakeside Habitat", "Quiet Corner", "Hill View"}


async def test_builder_rename_reindexes_its_projects(client, services, texts):
    await services.db.execute("UPDATE catalog_builders SET name = 'Brigade Estates' "
                              "WHERE name = 'Prestige Group'")
    # (Queries not asked before: no cached answer is involved.)
    assert await _names(client, q="brigade") == ["Lakeside Habitat"]
    assert await _names(client, q="prestige estates") == []


async def test_editing_a_project_reindexes_it(client, services, texts):
    await services.db.execute("UPDATE catalog_projects SET name = 'Marina Bay' "
                              "WHERE id = %s", (texts["pune"]["id"],))
    assert await _names(client, q="marina") == ["Marina Bay"]


async def test_text_combines_with_filters_and_other_sorts(client, texts):
    assert await _names(client, q="habitat", city="Pune") == ["Hill View"]
    names = await _names(client, q="habitat", sort="newest")
    assert set(names) == {"Lakeside Habitat", "Quiet Corner", "Hill View"}
