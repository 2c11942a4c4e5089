"""Test data for search, suggest, feed and cache tests, inserted with plain SQL (the
catalogue's service is not what these tests are about), and a Python model of what a search
must answer, to check the database against."""

from __future__ import annotations

import datetime as dt
import math
import random
import uuid
from typing import Any

import orjson

CITIES = {
    "Bengaluru": (12.97, 77.59, ["Whitefield", "Koramangala", "Hebbal", "Sarjapur Road"]),
    "Pune": (18.52, 73.86, ["Baner", "Hinjewadi", "Kharadi"]),
    "Mumbai": (19.08, 72.88, ["Powai", "Thane West", "Andheri"]),
    "Chennai": (13.08, 80.27, ["Adyar", "Velachery"]),
}
AMENITIES = ["swimming_pool", "gym", "clubhouse", "landscaped_garden", "security_24x7",
             "covered_parking", "school_nearby"]
STATUSES = ["upcoming", "under_construction", "ready"]
WORDS = ["Green", "Lake", "Palm", "Royal", "Sky", "River", "Oak", "Sunrise", "Silver", "Maple"]
NOUNS = ["Residency", "Heights", "Gardens", "Towers", "Enclave", "Meadows", "Vista"]
EARTH_RADIUS_M = 6378168.0  # earthdistance's earth()
NOW = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
LAKH = 1_00_000_00  # one lakh rupees in paise

_INSERT_BUILDER = """
INSERT INTO catalog_builders (id, name, slug, verified, description)
VALUES (%(id)s, %(name)s, %(slug)s, %(verified)s, '')
"""
_INSERT_PROJECT = """
INSERT INTO catalog_projects (id, builder_id, slug, name, city, locality, lat, lng, status,
    possession_date, amenities, description, moderation, featured, currency, price_min,
    price_max, bedrooms, units_total, units_available, published_at)
VALUES (%(id)s, %(builder_id)s, %(slug)s, %(name)s, %(city)s, %(locality)s, %(lat)s, %(lng)s,
    %(status)s, %(possession_date)s, %(amenities)s, %(description)s, %(moderation)s,
    %(featured)s, 'INR', %(price_min)s, %(price_max)s, %(bedrooms)s::smallint[],
    %(units_total)s, %(units_available)s, %(published_at)s)
"""


async def insert_builder(tx: Any, name: str, verified: bool = False) -> dict[str, Any]:
    """A builder row (as a dict)."""
    row = {"id": uuid.uuid4(), "name": name, "verified": verified,
           "slug": f"b-{uuid.uuid4().hex[:12]}"}
    await tx.execute(_INSERT_BUILDER, row)
    return row


def project_row(builder: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """A project dict with defaults for every column the tests do not care about."""
    pid = fields.pop("id", None) or uuid.uuid4()
    row = {"id": pid, "builder_id": builder["id"], "builder_name": builder["name"],
           "verified": builder["verified"], "slug": f"p-{pid.hex[:16]}", "name": "Project",
           "city": "Bengaluru", "locality": "Whitefield", "lat": 12.97, "lng": 77.59,
           "status": "upcoming", "possession_date": None, "amenities": [], "description": "",
           "moderation": "published", "featured": False, "price_min": None,
           "price_max": None, "bedrooms": [], "units_total": 0, "units_available": 0,
           "published_at": NOW}
    row.update(fields)
    return row


async def insert_project(tx: Any, builder: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """Insert one project; return its dict (the model the tests compare with)."""
    row = project_row(builder, **fields)
    await tx.execute(_INSERT_PROJECT, row)
    return row


def generate(seed: int, n_projects: int, n_builders: int = 12) -> tuple[list[dict], list[dict]]:
    """Builders and projects with every attribute search filters on, spread at random."""
    rng = random.Random(seed)
    builders = [{"id": uuid.UUID(int=rng.getrandbits(128)), "name": f"{w} Builders {i}",
                 "verified": i % 3 == 0, "slug": f"b-{seed}-{i}"}
                for i, w in enumerate(rng.choices(WORDS, k=n_builders))]
    projects = []
    for i in range(n_projects):
        builder = rng.choice(builders)
        city = rng.choice(list(CITIES))
        lat0, lng0, localities = CITIES[city]
        priced = rng.random() < 0.9
        low = rng.randrange(30, 800) * LAKH if priced else None
        projects.append(project_row(
            builder, id=uuid.UUID(int=rng.getrandbits(128)),
            name=f"{rng.choice(WORDS)} {rng.choice(NOUNS)} {i}", city=city,
            locality=rng.choice(localities),
            lat=lat0 + rng.uniform(-0.4, 0.4), lng=lng0 + rng.uniform(-0.4, 0.4),
            status=rng.choice(STATUSES),
            possession_date=(dt.date(2026, 1, 1) + dt.timedelta(days=rng.randrange(0, 1500))
                             if rng.random() < 0.8 else None),
            amenities=sorted(rng.sample(AMENITIES, rng.randrange(0, 5))),
            moderation="published" if rng.random() < 0.9 else rng.choice(["draft", "in_review"]),
            featured=rng.random() < 0.1,
            price_min=low, price_max=low + rng.randrange(0, 300) * LAKH if priced else None,
            bedrooms=sorted(rng.sample([1, 2, 3, 4, 5], rng.randrange(1, 4))) if priced else [],
            units_total=10, units_available=rng.randrange(0, 10),
            published_at=NOW - dt.timedelta(minutes=rng.randrange(0, 500_000),
                                            microseconds=rng.randrange(0, 10**6))))
    return builders, projects


_PROJECT_COLUMNS = ("id, builder_id, slug, name, city, locality, lat, lng, status, "
                    "possession_date, amenities, description, moderation, featured, currency, "
                    "price_min, price_max, bedrooms, units_total, units_available, published_at")
_BULK_PROJECTS = f"""
INSERT INTO catalog_projects ({_PROJECT_COLUMNS})
SELECT {_PROJECT_COLUMNS} FROM json_populate_recordset(NULL::catalog_projects, %(rows)s::json)
"""
_BULK_BUILDERS = """
INSERT INTO catalog_builders (id, name, slug, verified)
SELECT id, name, slug, verified FROM json_populate_recordset(NULL::catalog_builders, %(rows)s::json)
"""


async def insert_dataset(services: Any, builders: list[dict], projects: list[dict]) -> None:
    """Insert generated builders and projects in one transaction (one statement each)."""
    rows = [{**p, "currency": "INR"} for p in projects]
    async with services.db.transaction() as tx:
        await tx.execute(_BULK_BUILDERS, {"rows": orjson.dumps(builders).decode()})
        await tx.execute(_BULK_PROJECTS, {"rows": orjson.dumps(rows).decode()})


async def build_dataset(services: Any) -> list[dict[str, Any]]:
    """300 generated projects (about 270 published) in 4 cities; returns the project dicts
    (test modules wrap this in a ``dataset`` fixture)."""
    builders, projects = generate(seed=20261121, n_projects=300)
    await insert_dataset(services, builders, projects)
    return projects


# --- the model ------------------------------------------------------------------------------

def haversine_m(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    """Great-circle distance on earthdistance's sphere."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lng2 - lng1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def point_in_polygon(lat: float, lng: float, polygon: list[tuple[float, float]]) -> bool:
    """Even-odd ray casting in the (lng, lat) plane."""
    inside = False
    n = len(polygon)
    for i in range(n):
        (ay, ax), (by, bx) = polygon[i], polygon[(i + 1) % n]
        if (ay > lat) != (by > lat):
            x = ax + (lat - ay) * (bx - ax) / (by - ay)
            if lng < x:
                inside = not inside
    return inside


FACET_NAMES = ("city", "locality", "bhk", "status", "price", "amenities", "verified")


def facet_checks(filters: dict[str, Any]) -> dict[str, Any]:
    """Facet name -> predicate over a project dict, for the active facet filters."""
    checks = {}
    if filters.get("city"):
        cities = {c.lower() for c in filters["city"]}
        checks["city"] = lambda p: p["city"].lower() in cities
    if filters.get("locality"):
        localities = {v.lower() for v in filters["locality"]}
        checks["locality"] = lambda p: p["locality"].lower() in localities
    if filters.get("bhk"):
        bhk = set(filters["bhk"])
        checks["bhk"] = lambda p: bool(bhk & set(p["bedrooms"]))
    if filters.get("status"):
        statuses = set(filters["status"])
        checks["status"] = lambda p: p["status"] in statuses
    if filters.get("price_min") is not None or filters.get("price_max") is not None:
        lo = filters.get("price_min") or 0
        hi = filters.get("price_max") if filters.get("price_max") is not None else 2**63
        checks["price"] = lambda p: (p["price_min"] is not None
                                     and p["price_max"] >= lo and p["price_min"] <= hi)
    if filters.get("amenities"):
        wanted = set(filters["amenities"])
        checks["amenities"] = lambda p: wanted <= set(p["amenities"])
    if filters.get("verified_builder") is not None:
        flag = filters["verified_builder"]
        checks["verified"] = lambda p: p["verified"] == flag
    return checks


def expected_matches(projects: list[dict], filters: dict[str, Any],
                     extra: Any = None) -> list[dict]:
    """Published projects passing every filter (``extra``: a non-facet predicate)."""
    checks = facet_checks(filters).values()
    return [p for p in projects if p["moderation"] == "published"
            and (extra is None or extra(p)) and all(c(p) for c in checks)]


def expected_facets(projects: list[dict], filters: dict[str, Any], buckets: Any,
                    extra: Any = None) -> dict[str, dict[Any, int]]:
    """Disjunctive facet counts: each facet over the projects passing every other filter."""
    checks = facet_checks(filters)
    out: dict[str, dict[Any, int]] = {name: {} for name in FACET_NAMES}
    for p in projects:
        if p["moderation"] != "published" or (extra is not None and not extra(p)):
            continue
        for facet in FACET_NAMES:
            if not all(check(p) for name, check in checks.items() if name != facet):
                continue
            counts = out[facet]
            if facet == "city":
                counts[p["city"]] = counts.get(p["city"], 0) + 1
            elif facet == "locality":
                counts[p["locality"]] = counts.get(p["locality"], 0) + 1
            elif facet == "bhk":
                for b in p["bedrooms"]:
                    counts[b] = counts.get(b, 0) + 1
            elif facet == "status":
                counts[p["status"]] = counts.get(p["status"], 0) + 1
            elif facet == "price":
                for i, (lo, hi) in enumerate(buckets):
                    if p["price_min"] is not None and p["price_max"] >= lo and (
                            hi is None or p["price_min"] <= hi):
                        counts[i] = counts.get(i, 0) + 1
            elif facet == "amenities":
                for a in p["amenities"]:
                    counts[a] = counts.get(a, 0) + 1
            else:
                counts[p["verified"]] = counts.get(p["verified"], 0) + 1
    return out


# --- the API ---------------------------------------------------------------------------------

SEARCH = "/api/v1/projects/search"


async def search(client: Any, params: dict[str, Any] | list[tuple[str, Any]],
                 status: int = 200) -> dict[str, Any]:
    """One search request; the JSON answer (asserting its status)."""
    response = await client.get(SEARCH, params=_query(params))
    body = await response.json()
    assert response.status == status, body
    return body


async def walk(client: Any, params: dict[str, Any] | list[tuple[str, Any]],
               between: Any = None) -> list[dict[str, Any]]:
    """Every item of a search, page by page (``between``: awaited after each page)."""
    items: list[dict[str, Any]] = []
    cursor = None
    for _ in range(1000):
        query = _query(params) + ([("cursor", cursor)] if cursor else [])
        body = await search(client, query)
        items += body["items"]
        cursor = body["next_cursor"]
        if cursor is None:
            return items
        if between is not None:
            await between()
    raise AssertionError("pagination did not end")


def _query(params: dict[str, Any] | list[tuple[str, Any]]) -> list[tuple[str, str]]:
    pairs = params.items() if isinstance(params, dict) else params
    out = []
    for key, value in pairs:
        for v in value if isinstance(value, list) else [value]:
            out.append((key, str(v).lower() if isinstance(v, bool) else str(v)))
    return out
