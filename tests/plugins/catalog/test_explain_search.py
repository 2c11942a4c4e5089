"""Every search shape finds its rows through the index meant for it, on a catalogue of the
seed's size (2,000 projects, 100,000 units) built once for this module with generate_series.

Plans are read with ``EXPLAIN (FORMAT JSON)`` and sequential scans priced out: a plan that
still scans the table means no index fits. Node types and index names are checked, never
timings.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from propmubi.config import DatabaseSection
from propmubi.db import Database, admin_execute
from propmubi.testing import TestServers, create_database, drop_database
from propmubi_plugins.catalog.search import service as search
from propmubi_plugins.catalog.search import store as search_store
from propmubi_plugins.catalog.search.models import SearchQuery

BUILD = """
INSERT INTO catalog_builders (id, name, slug, verified)
SELECT ('00000000-0000-4000-8000-' || lpad(to_hex(i), 12, '0'))::uuid,
       (ARRAY['Prestige', 'Sobha', 'Brigade', 'Godrej', 'Lodha'])[1 + i % 5] || ' Estates ' || i,
       'builder-' || i, i % 3 = 0
  FROM generate_series(1, 200) AS i;

-- The derived columns (price range, bedrooms, unit counts) are set here rather than
-- aggregated from the units: an UPDATE of every project would double the build time.
INSERT INTO catalog_projects (id, builder_id, slug, name, city, locality, lat, lng, status,
    possession_date, amenities, description, moderation, featured, published_at, price_min,
    price_max, bedrooms, units_total, units_available)
SELECT ('00000000-0000-4000-9000-' || lpad(to_hex(i), 12, '0'))::uuid,
       ('00000000-0000-4000-8000-' || lpad(to_hex(1 + i % 200), 12, '0'))::uuid,
       'project-' || i,
       (ARRAY['Green', 'Lake', 'Palm', 'Royal', 'Sky', 'River', 'Oak', 'Sunrise'])[1 + i % 8]
         || ' ' || (ARRAY['Residency', 'Heights', 'Gardens', 'Towers', 'Enclave'])[1 + (i / 8) % 5]
         || ' ' || i,
       'City ' || i % 40, 'Locality ' || i % 40 || '-' || i % 7,
       8 + (i % 40) * 0.5 + (i % 97) * 0.004, 70 + (i % 40) * 0.3 + (i % 89) * 0.004,
       (ARRAY['upcoming', 'under_construction', 'ready'])[1 + i % 3],
       DATE '2026-01-01' + (i % 1500),
       CASE i % 3 WHEN 0 THEN ARRAY['gym', 'pool'] WHEN 1 THEN ARRAY['park', 'gym']
                  ELSE ARRAY['clubhouse', 'security'] END,
       'Homes with a view, project number ' || i,
       CASE WHEN i % 10 = 0 THEN 'draft' ELSE 'published' END, i % 25 = 0,
       TIMESTAMPTZ '2026-01-01' + i * INTERVAL '37 minutes',
       (30 + i % 500) * 10000000::bigint, (60 + i % 500 + i % 300) * 10000000::bigint,
       ARRAY[1 + i % 3, 2 + i % 3]::smallint[], 50, 20
  FROM generate_series(1, 2000) AS i;

INSERT INTO catalog_towers (id, project_id, name, floors)
SELECT gen_random_uuid(), id, 'A', 25 FROM catalog_projects;

INSERT INTO catalog_units (id, project_id, tower_id, code, unit_type, bedrooms,
    carpet_area_sqft, floor, price_minor, status)
SELECT gen_random_uuid(), t.project_id, t.id, 'A-' || n, (1 + n % 4) || 'BHK', 1 + n % 4,
       450 + n * 15, n % 25, (40 + n * 3) * 10000000::bigint,
       (ARRAY['available', 'available', 'held', 'booked', 'sold'])[1 + n % 5]
  FROM catalog_towers t, generate_series(1, 50) AS n;

ANALYZE;  -- (VACUUM would need its own statement; the GIN indexes have no pending list)
"""


@pytest.fixture(scope="module")
def big_catalogue(test_servers: TestServers, template_database: str) -> Iterator[str]:
    """A database of its own for this module, filled once; its URL."""
    name = f"propmubi_explain_{uuid.uuid4().hex[:8]}"
    url = create_database(test_servers, name, template=template_database)
    try:
        admin_execute(url, BUILD)
        yield url
    finally:
        drop_database(test_servers, name)


@pytest.fixture
async def db(big_catalogue: str) -> Any:
    database = Database(DatabaseSection(url=big_catalogue, pool_min=0, pool_max=2))
    await database.open()
    yield database
    await database.close()


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


async def explain(db: Database, sql: str, params: Any) -> list[dict[str, Any]]:
    async with db.transaction() as tx:
        await tx.execute("SET LOCAL enable_seqscan = off")
        rows = await tx.fetch("EXPLAIN (FORMAT JSON) " + sql, params)
    plan = rows[0]["QUERY PLAN"]
    plan = orjson.loads(plan) if isinstance(plan, str) else plan
    return list(_nodes(plan[0]["Plan"]))


def indexes(nodes: list[dict[str, Any]]) -> set[str]:
    return {n["Index Name"] for n in nodes if "Index Name" in n}


def kinds(nodes: list[dict[str, Any]]) -> set[str]:
    return {n["Node Type"] for n in nodes}


def _items(**params: Any) -> tuple[str, dict[str, Any]]:
    return search_store.items_sql(search.plan_search(SearchQuery(**params)))


def _facets(**params: Any) -> tuple[str, dict[str, Any]]:
    plan = search.plan_search(SearchQuery(**params))
    return search_store.facets_sql(plan, [0], [1], search.FACET_TOP)


def _cursor(sort: str, key: str, **params: Any) -> str:
    fingerprint = search.plan_search(SearchQuery(sort=sort, **params)).fingerprint
    return search.encode_cursor(fingerprint, key, uuid.UUID(int=5))


async def test_the_catalogue_is_seed_sized(db):
    assert await db.fetchval("SELECT count(*) FROM catalog_units") == 100_000
    assert await db.fetchval("SELECT count(*) FROM catalog_projects") == 2_000


async def test_text_search_uses_the_tsvector_index(db):
    for sql, params in (_items(q="green residency"), _items(q="lake gard"),
                        _items(q="oak"), _facets(q="palm")):
        nodes = await explain(db, sql, params)
        assert "catalog_projects_search_idx" in indexes(nodes), nodes
        assert "Seq Scan" not in kinds(nodes)
    # Newest first: walking the newest index and stopping at the page size is as good.
    nodes = await explain(db, *_items(q="sunrise", sort="newest"))
    assert indexes(nodes) & {"catalog_projects_search_idx", "catalog_projects_newest_idx"}
    assert "Seq Scan" not in kinds(nodes)


async def test_city_bhk_price_filters_use_the_city_index(db):
    nodes = await explain(db, *_items(city=["City 7"], bhk=[2, 3], price_min=5 * 10**9,
                                      price_max=9 * 10**9))
    assert "catalog_projects_city_idx" in indexes(nodes), nodes
    assert "Seq Scan" not in kinds(nodes)


async def test_radius_uses_the_earth_index_and_rechecks_the_distance(db):
    for sort in ("distance", "newest"):
        nodes = await explain(db, *_items(lat=10.0, lng=71.0, radius_km=20, sort=sort))
        assert "catalog_projects_earth_idx" in indexes(nodes), nodes
        # earth_distance() is inlined: the recheck shows as sec_to_gc(cube_distance(...)).
        assert any(word in n.get("Filter", "") for n in nodes
                   for word in ("earth_distance", "cube_distance")), nodes
        assert "Seq Scan" not in kinds(nodes)


async def test_polygon_uses_the_point_index(db):
    nodes = await explain(db, *_items(polygon="9.9,70.9;9.9,71.4;10.4,71.4;10.4,70.9"))
    assert "catalog_projects_point_idx" in indexes(nodes), nodes
    assert "Seq Scan" not in kinds(nodes)


async def test_keyset_pages_read_their_sort_index_in_order(db):
    when = dt.datetime(2026, 1, 20, tzinfo=dt.UTC).isoformat()
    for sort, key, index in (("newest", when, "catalog_projects_newest_idx"),
                             ("price_asc", str(6 * 10**9), "catalog_projects_price_asc_idx"),
                             ("price_desc", str(6 * 10**9), "catalog_projects_price_desc_idx")):
        for cursor in (None, _cursor(sort, key)):
            nodes = await explain(db, *_items(sort=sort, cursor=cursor))
            assert index in indexes(nodes), (sort, nodes)
            assert "Sort" not in kinds(nodes), (sort, nodes)  # the index gives the order
            assert "Limit" in kinds(nodes)
            # each kept hit's cover comes from its gallery's index, already in order
            assert "catalog_media_project_gallery_idx" in indexes(nodes), (sort, nodes)


async def test_suggest_uses_the_trigram_indexes(db):
    sql, params = search_store.SUGGEST, {"q": "prestge", "prefix": "prestge%", "limit": 10,
                                         "per_kind": 3}
    nodes = await explain(db, sql, params)
    assert {"catalog_projects_name_trgm_idx", "catalog_projects_locality_trgm_idx",
            "catalog_builders_name_trgm_idx"} <= indexes(nodes), nodes


async def test_feed_reads_the_city_index_in_order(db):
    nodes = await explain(db, search_store.FEED, {"city": "City 3", "limit": 20})
    assert "catalog_projects_city_idx" in indexes(nodes), nodes
    # (With ~50 projects a city the planner may sort them rather than read the index in
    # order; either way only that city's rows are read.)
    assert "Seq Scan" not in kinds(nodes)
