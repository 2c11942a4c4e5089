"""What a buyer reads: search and feed hits with their cover photo (following the gallery's
order), a project's page with its photos and towers, units in the order a buyer reads them, and
an unknown amenity in a search refused rather than matching nothing.

Everything goes through the real application (PostgreSQL, Redis, the search cache, the local
media storage under the test's ``tmp_path``).
"""

from __future__ import annotations

import io

from PIL import Image

from propmubi_plugins.catalog.media import service as media_service
from propmubi_plugins.catalog.media.models import PhotoUpload
from tests.plugins.catalog import media_helpers
from tests.plugins.catalog.conftest import API, catalog_ctx, tiny_jpeg, unit_body
from tests.plugins.catalog.media_helpers import PROBLEM

# Each test stores its media under its own tmp_path (and no rate limits, known auth keys).
config_overrides = media_helpers.config_overrides

SEARCH = f"{API}/projects/search"
FEED = f"{API}/projects/feed"


async def _add_photo(client, owner, project, alt_text):
    ctx = catalog_ctx(client)
    access = await media_service.manage_access(ctx, owner.actor, project_id=project["id"])
    return await media_service.upload(ctx, owner.actor, access,
                                      PhotoUpload(data=tiny_jpeg(), alt_text=alt_text))


async def _hits(client, url, **params):
    response = await client.get(url, params=params)
    assert response.status == 200, await response.text()
    return {hit["name"]: hit for hit in (await response.json())["items"]}


async def _assert_serves_image(client, url):
    response = await client.get(url)
    assert response.status == 200, url
    assert response.content_type.startswith("image/"), response.content_type
    Image.open(io.BytesIO(await response.read())).verify()  # a decodable image


async def test_hits_carry_their_cover_and_follow_the_gallery_order(client, builder,
                                                                    make_project):
    # make_project's one photo is "The entrance"; a second one goes after it.
    with_photos = await make_project(builder, moderation="published", name="Photo Heights")
    lobby = await _add_photo(client, builder, with_photos, "The lobby")
    await make_project(builder, moderation="published", photos=False, name="Bare Towers")

    for url, params in ((SEARCH, {"city": "Pune"}), (FEED, {"city": "Pune"})):
        hits = await _hits(client, url, **params)
        assert set(hits) == {"Photo Heights", "Bare Towers"}, url
        assert hits["Bare Towers"]["cover"] is None, url
        cover = hits["Photo Heights"]["cover"]
        assert cover["alt_text"] == "The entrance", url
        assert set(cover) == {"thumb", "web", "alt_text"}
        assert cover["thumb"] != cover["web"]
        await _assert_serves_image(client, cover["thumb"])
        await _assert_serves_image(client, cover["web"])

    # The lobby moves to the front of the gallery: it is the cover now, at once (the cached
    # answers of both endpoints are stale after the gallery change).
    response = await client.patch(f"{API}/photos/{lobby['id']}", json={"position": 0},
                                  headers=builder.headers)
    assert response.status == 200, await response.text()
    gallery = await (await client.get(f"{API}/projects/{with_photos['id']}/photos")).json()
    for url in (SEARCH, FEED):
        cover = (await _hits(client, url, city="Pune"))["Photo Heights"]["cover"]
        assert cover["alt_text"] == "The lobby", url
        assert cover["thumb"] == gallery[0]["urls"]["thumb"], url
        assert cover["web"] == gallery[0]["urls"]["web"], url
        await _assert_serves_image(client, cover["web"])

    # The new cover's text changes: the hits follow too; deleting both photos leaves no cover.
    response = await client.patch(f"{API}/photos/{lobby['id']}",
                                  json={"alt_text": "The lobby at night"},
                                  headers=builder.headers)
    assert response.status == 200, await response.text()
    for url in (SEARCH, FEED):
        cover = (await _hits(client, url, city="Pune"))["Photo Heights"]["cover"]
        assert cover["alt_text"] == "The lobby at night", url
    for photo in gallery:
        response = await client.delete(f"{API}/photos/{photo['id']}", headers=builder.headers)
        assert response.status == 204, await response.text()
    for url in (SEARCH, FEED):
        assert (await _hits(client, url, city="Pune"))["Photo Heights"]["cover"] is None, url


async def test_a_project_page_has_its_photos_in_order_and_its_towers(client, builder,
                                                                     make_project):
    project = await make_project(builder, moderation="published", towers={"B": 4, "A": 12},
                                 units=[("A", unit_body("A-101")), ("B", unit_body("B-101")),
                                        ("B", unit_body("B-102"))])
    pool = await _add_photo(client, builder, project, "The pool")
    response = await client.patch(f"{API}/photos/{pool['id']}", json={"position": 0},
                                  headers=builder.headers)
    assert response.status == 200, await response.text()

    for ref in (project["id"], project["slug"]):
        response = await client.get(f"{API}/projects/{ref}")  # anonymous: published
        assert response.status == 200, await response.text()
        page = await response.json()
        assert page["id"] == str(project["id"]) and page["slug"] == project["slug"]
        assert [(p["alt_text"], p["position"]) for p in page["photos"]] == [
            ("The pool", 0), ("The entrance", 1)]
        assert page["photos"][0]["id"] == str(pool["id"])
        assert all(p["unit_id"] is None for p in page["photos"])
        await _assert_serves_image(client, page["photos"][0]["urls"]["thumb"])
        assert [(t["name"], t["floors"], t["units"]) for t in page["towers"]] == [
            ("A", 12, 1), ("B", 4, 2)]
        assert {t["project_id"] for t in page["towers"]} == {str(project["id"])}

    # A project without photos or towers has empty lists (not missing keys).
    bare = await make_project(builder, towers={}, units=[])
    page = await (await client.get(f"{API}/projects/{bare['id']}",
                                   headers=builder.headers)).json()
    assert (page["photos"], page["towers"]) == ([], [])


async def test_units_are_listed_by_tower_floor_and_code(client, builder, make_project):
    # Tower B is created before tower A, and the units in no particular order, so that neither
    # creation order nor ids match the reading order. Floor 10 sorts after floor 2 (as a
    # number), and a code sorts within its floor: A-1001 < A-201 as text, yet comes later.
    scrambled = [
        ("B", unit_body("B-201", floor=2)),
        ("A", unit_body("A-1001", floor=10)),
        ("A", unit_body("A-202", floor=2)),
        ("B", unit_body("B-001", floor=0)),
        ("A", unit_body("A-201", floor=2)),
        ("A", unit_body("A-B01", floor=-1)),
        ("B", unit_body("B-101", floor=1)),
        ("A", unit_body("A-101", floor=1)),
    ]
    project = await make_project(builder, moderation="published", towers={"B": 5, "A": 12},
                                 units=scrambled)
    expected = ["A-B01", "A-101", "A-201", "A-202", "A-1001", "B-001", "B-101", "B-201"]

    url = f"{API}/projects/{project['id']}/units"
    page = await (await client.get(url)).json()
    assert [u["code"] for u in page["items"]] == expected
    assert page["next_cursor"] is None

    # Page by page (the cursor keeps the same order), anonymously.
    seen, cursor = [], None
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        response = await client.get(url, params=params)
        assert response.status == 200, await response.text()
        body = await response.json()
        seen += [u["code"] for u in body["items"]]
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert seen == expected

    # One tower's units keep the same order.
    towers = {t["name"]: t["id"] for t in await (await client.get(
        f"{API}/projects/{project['id']}/towers")).json()}
    page = await (await client.get(url, params={"tower_id": towers["B"], "limit": 2})).json()
    assert [u["code"] for u in page["items"]] == ["B-001", "B-101"]


async def test_an_unknown_amenity_is_a_422_naming_the_field(client, builder, make_project):
    await make_project(builder, moderation="published", name="Gym Towers",
                       amenities=["gym", "swimming_pool"])
    response = await client.get(SEARCH, params=[("amenities", "gym"),
                                                ("amenities", "moon_base")])
    assert response.status == 422, await response.text()
    assert response.content_type == PROBLEM
    problem = await response.json()
    assert [(e["in"], e["field"]) for e in problem["errors"]] == [("query", "amenities")]
    assert "moon_base" in problem["errors"][0]["message"]

    # A known amenity filters as before.
    hits = await _hits(client, SEARCH, amenities="gym")
    assert list(hits) == ["Gym Towers"]
    assert await _hits(client, SEARCH, amenities="clubhouse") == {}


async def test_the_public_detail_is_cached_and_follows_every_change(client, services, builder,
                                                                     staff, make_project):
    project = await make_project(builder, moderation="published")
    url = f"{API}/projects/{project['id']}"
    first = await (await client.get(url)).json()
    assert first == await (await client.get(url)).json()  # the same answer again, cached
    hits = await services.redis.keys("*catalog:cache:detail:*")
    assert hits, "the anonymous read was not cached"
    # A change shows at once, for anonymous callers too.
    response = await client.patch(url, json={"description": "Now with a rooftop garden."},
                                  headers=staff.headers)
    assert response.status == 200, await response.text()
    assert (await (await client.get(url)).json())["description"] == "Now with a rooftop garden."
    # A project taken down is gone for anonymous callers at once; its builder still reads it
    # (never from the anonymous cache).
    response = await client.post(f"{url}/unpublish", json={"reason": "Fix the brochure."},
                                 headers=staff.headers)
    assert response.status == 200, await response.text()
    assert (await client.get(url)).status == 404
    mine = await client.get(url, headers=builder.headers)
    assert mine.status == 200 and (await mine.json())["moderation"] == "draft"
