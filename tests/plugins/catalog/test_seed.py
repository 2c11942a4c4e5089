"""The demo catalogue: reproducible, idempotent, realistic, fast enough for the full scale."""

from __future__ import annotations

from propmubi_plugins.catalog import seed
from propmubi_plugins.catalog.access import can_see_project

COUNTS = ("SELECT (SELECT count(*) FROM catalog_builders) AS builders, "
          "(SELECT count(*) FROM catalog_projects) AS projects, "
          "(SELECT count(*) FROM catalog_towers) AS towers, "
          "(SELECT count(*) FROM catalog_units) AS units, "
          "(SELECT count(*) FROM catalog_project_reviews) AS reviews")


def test_counts_formula():
    assert seed.counts(1) == {"builders": 50, "projects": 2000, "units": 100_000}
    assert seed.counts(0.02) == {"builders": 1, "projects": 40, "units": 2000}
    assert seed.counts(0.0001) == {"builders": 1, "projects": 1, "units": 50}
    assert seed.counts(2) == {"builders": 100, "projects": 4000, "units": 200_000}


def test_rows_do_not_depend_on_the_scale():
    small = seed.project_rows(0, 5, 1)
    large = seed.project_rows(0, 5, 50)
    assert small[0]["id"] == large[0]["id"] and small[2]["price"] == large[2]["price"]
    projects, _, units, _ = seed.project_rows(0, 200, 50)
    assert len(units["id"]) == 200 * seed.UNITS_PER_PROJECT
    # Realistic: coordinates near the city, areas and prices plausible, mostly published.
    for lat, lng, city in zip(projects["lat"], projects["lng"], projects["city"], strict=True):
        _, _, localities = seed.CITIES[city]
        assert min(abs(lat - la) + abs(lng - ln) for _, la, ln in localities) < 0.03
    assert all(300 <= c <= 2600 for c in units["carpet"])
    assert all(s >= c for s, c in zip(units["super"], units["carpet"], strict=True))
    rupees_per_sqft = [p / 100 / c for p, c in zip(units["price"], units["carpet"], strict=True)]
    assert 3500 < min(rupees_per_sqft) and max(rupees_per_sqft) < 50_000
    share = projects["moderation"].count("published") / len(projects["moderation"])
    assert 0.7 < share < 0.95
    # Only verified builders have projects in review or published (one in ten is not).
    verified = seed.builder_rows(50)["verified"]
    assert verified.count(False) == 5 and verified[0]
    ids = seed.builder_rows(50)["id"]
    for builder_id, moderation in zip(projects["builder_id"], projects["moderation"],
                                      strict=True):
        if not verified[ids.index(builder_id)]:
            assert moderation == "draft"
    assert any(projects["featured"])
    assert len(set(zip(units["tower_id"], units["code"], strict=True))) == len(units["id"])


async def test_seed_is_reproducible_and_idempotent(services):
    ctx = services.context("catalog")
    new = await seed.seed(ctx, 0.02)
    assert new == {"builders": 1, "projects": 40, "towers": new["towers"], "units": 2000}
    first = await services.db.fetchrow(COUNTS)
    ids = await services.db.fetch("SELECT id, slug, price_min, units_total FROM "
                                  "catalog_projects ORDER BY id")
    again = await seed.seed(ctx, 0.02)
    assert again == {"builders": 0, "projects": 0, "towers": 0, "units": 0}
    assert await services.db.fetchrow(COUNTS) == first
    assert await services.db.fetch("SELECT id, slug, price_min, units_total FROM "
                                   "catalog_projects ORDER BY id") == ids
    assert first["units"] == 2000 and first["projects"] == 40
    # Derived columns are set, consistent with the units.
    wrong = await services.db.fetchval(
        "SELECT count(*) FROM catalog_projects p WHERE units_total <> "
        "(SELECT count(*) FROM catalog_units u WHERE u.project_id = p.id) "
        "OR price_min IS DISTINCT FROM (SELECT min(price_minor) FROM catalog_units u "
        "WHERE u.project_id = p.id AND status NOT IN ('sold', 'blocked'))")
    assert wrong == 0
    # A larger scale adds to the same rows.
    await seed.seed(ctx, 0.05)
    counts = await services.db.fetchrow(COUNTS)
    assert (counts["projects"], counts["units"]) == (100, 5000)


async def test_seeded_published_projects_are_public(client, services):
    await seed.seed(services.context("catalog"), 0.01)
    rows = await services.db.fetch("SELECT p.*, b.owner_user_id FROM catalog_projects p "
                                   "JOIN catalog_builders b ON b.id = p.builder_id")
    public = [r for r in rows if can_see_project(None, r)]
    assert public and all(r["moderation"] == "published" for r in public)
    hidden = [r for r in rows if r["moderation"] != "published"]
    for row in public[:2]:
        assert (await client.get(f"/api/v1/projects/{row['slug']}")).status == 200
    for row in hidden[:2]:
        assert (await client.get(f"/api/v1/projects/{row['slug']}")).status == 404
