"""Project input validation: every bad field is a 422 naming it, and nothing is written; random
bodies never make the API fail."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.plugins.catalog.conftest import API, PROJECT

PROBLEM = "application/problem+json"

BAD_FIELDS = [
    ("lat", 90.5), ("lat", -91), ("lng", 180.01), ("lng", -200), ("lat", "north"),
    ("name", ""), ("name", "   "), ("name", "x" * 201), ("city", None), ("locality", 7),
    ("status", "finished"), ("amenities", ["gym", "helipad"]), ("amenities", ["gym", "gym"]),
    ("amenities", "gym"), ("possession_date", "2028-02-30"), ("possession_date", "1800-01-01"),
    ("rera_number", "!"), ("currency", "rupees"), ("builder_id", "not-a-uuid"),
    ("description", "x" * 10001), ("featured", True),
]


async def _project_count(services):
    return await services.db.fetchval("SELECT count(*) FROM catalog_projects")


@pytest.mark.parametrize(("field", "value"), BAD_FIELDS)
async def test_bad_fields_are_422_naming_the_field(client, services, builder, field, value):
    response = await client.post(f"{API}/projects", json={**PROJECT, field: value},
                                 headers=builder.headers)
    assert response.status == 422, await response.text()
    assert response.content_type == PROBLEM
    fields = {e["field"] for e in (await response.json())["errors"]}
    assert field in fields
    assert await _project_count(services) == 0


async def test_missing_required_fields(client, services, builder):
    response = await client.post(f"{API}/projects", json={"name": "Only a name"},
                                 headers=builder.headers)
    assert response.status == 422
    fields = {e["field"] for e in (await response.json())["errors"]}
    assert {"city", "locality", "lat", "lng"} <= fields


async def test_patch_validation_and_no_partial_write(client, services, builder, make_project):
    project = await make_project(builder)
    response = await client.patch(f"{API}/projects/{project['id']}",
                                  json={"description": "new", "lat": 123},
                                  headers=builder.headers)
    assert response.status == 422
    assert [e["field"] for e in (await response.json())["errors"]] == ["lat"]
    row = await services.db.fetchrow("SELECT description, lat FROM catalog_projects")
    assert row["description"] == project["description"] and row["lat"] == project["lat"]


async def test_vocabulary_and_unknown_project(client):
    vocabulary = await (await client.get(f"{API}/catalog/vocabulary")).json()
    assert "swimming_pool" in vocabulary["amenities"]
    assert vocabulary["unit_statuses"] == ["available", "held", "booked", "sold", "blocked"]
    assert (await client.get(f"{API}/projects/no-such-slug")).status == 404
    assert (await client.get(f"{API}/projects/0190a0a0-0000-7000-8000-000000000000")
            ).status == 404


TEXT = st.text(max_size=30)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=12,
)
FIELD_VALUES = {
    "name": TEXT | JSON, "city": TEXT, "locality": TEXT, "address": TEXT,
    "lat": st.floats(-100, 100) | JSON, "lng": st.floats(-200, 200) | JSON,
    "rera_number": TEXT | st.none(), "status": st.sampled_from(
        ["upcoming", "ready", "under_construction", "built"]) | JSON,
    "possession_date": st.dates().map(str) | TEXT | st.none(),
    "amenities": st.lists(st.sampled_from(["gym", "lift", "moat"]) | TEXT, max_size=5) | JSON,
    "description": TEXT, "currency": st.sampled_from(["INR", "USD", "inr"]) | TEXT,
    "builder_id": st.uuids().map(str) | TEXT | st.none(), "featured": JSON,
}
PROJECT_LIKE = st.fixed_dictionaries(
    {k: st.just(v) | FIELD_VALUES[k] for k, v in PROJECT.items() if k in FIELD_VALUES},
    optional={k: FIELD_VALUES[k] for k in ("currency", "builder_id", "featured")})
BODIES = st.one_of(PROJECT_LIKE, PROJECT_LIKE, JSON)
_seen = itertools.count()


@settings(max_examples=80, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(body=BODIES)
async def test_random_bodies_never_fail(client, builder, body):
    next(_seen)
    response = await client.post(f"{API}/projects", json=body, headers=builder.headers)
    assert response.status < 500, await response.text()
    if response.status != 201:
        assert response.content_type == PROBLEM
