"""Radius and polygon searches against a brute-force check (haversine, ray casting) over
randomly placed projects."""

from __future__ import annotations

import math
import random

from tests.plugins.catalog.search_data import (
    generate,
    haversine_m,
    insert_dataset,
    point_in_polygon,
    walk,
)

# (lat, lng) centres: Bengaluru, and one on the antimeridian (the box must wrap).
CENTRES = [(12.97, 77.59), (64.0, 179.9)]


async def _scatter(services, seed: int) -> list[dict]:
    rng = random.Random(seed)
    builders, projects = generate(seed, 600)
    for i, p in enumerate(projects):
        lat0, lng0 = CENTRES[i % 2]
        p["lat"] = lat0 + rng.uniform(-1.5, 1.5)
        lng = lng0 + rng.uniform(-1.5, 1.5) / math.cos(math.radians(lat0))
        p["lng"] = (lng + 180) % 360 - 180
    await insert_dataset(services, builders, projects)
    return [p for p in projects if p["moderation"] == "published"]


async def test_radius_matches_haversine(client, services):
    projects = await _scatter(services, 7)
    rng = random.Random(11)
    for centre_lat, centre_lng in CENTRES:
        for radius_km in (0.5, 5, 25, 60, 100, rng.uniform(1, 100)):
            lat = centre_lat + rng.uniform(-0.3, 0.3)
            lng = (centre_lng + rng.uniform(-0.3, 0.3) + 180) % 360 - 180
            params = {"lat": lat, "lng": lng, "radius_km": radius_km, "limit": 50}
            items = await walk(client, {**params, "sort": "distance"})
            found = {i["id"] for i in items}
            radius_m = radius_km * 1000
            for p in projects:
                d = haversine_m(lat, lng, p["lat"], p["lng"])
                if abs(d - radius_m) < 1:  # on the circle: either answer is right
                    continue
                assert (str(p["id"]) in found) == (d <= radius_m), (params, p["id"], d)
            assert [i["distance_km"] for i in items] == sorted(i["distance_km"] for i in items)
            # Without sort=distance the same set comes back (newest first).
            newest = await walk(client, {**params, "sort": "newest"})
            assert {i["id"] for i in newest} == found


def _star(rng: random.Random, lat0: float, lng0: float, n: int, size: float) -> list:
    """A simple (non-self-intersecting) polygon: vertices at increasing angles."""
    angles = sorted(rng.uniform(0, 2 * math.pi) for _ in range(n))
    return [(lat0 + math.sin(a) * size * rng.uniform(0.3, 1),
             lng0 + math.cos(a) * size * rng.uniform(0.3, 1)) for a in angles]


async def test_polygon_matches_ray_casting(client, services):
    projects = await _scatter(services, 8)
    rng = random.Random(12)
    for n in (3, 4, 7, 12, 50):
        polygon = _star(rng, 12.97 + rng.uniform(-0.5, 0.5), 77.59 + rng.uniform(-0.5, 0.5), n,
                        rng.uniform(0.2, 1.5))
        text = ";".join(f"{lat!r},{lng!r}" for lat, lng in polygon)
        items = await walk(client, {"polygon": text, "limit": 50})
        found = {i["id"] for i in items}
        expected = {str(p["id"]) for p in projects
                    if point_in_polygon(p["lat"], p["lng"], polygon)}
        assert found == expected, n
        assert all(i["distance_km"] is None for i in items)


async def test_polygon_may_be_closed_and_combines_with_filters(client, services):
    projects = await _scatter(services, 9)
    square = [(12.5, 77.2), (12.5, 78.0), (13.4, 78.0), (13.4, 77.2)]
    closed = ";".join(f"{a},{b}" for a, b in [*square, square[0]])
    items = await walk(client, {"polygon": closed, "status": "ready", "limit": 50})
    expected = {str(p["id"]) for p in projects if p["status"] == "ready"
                and point_in_polygon(p["lat"], p["lng"], square)}
    assert {i["id"] for i in items} == expected and expected
