"""Galleries: order, reorder, alternative text, deletion, who may read, and a deleted project's
objects going away through the real event bus."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from propmubi.actors import Actor
from propmubi.errors import NotFound
from propmubi.types import Principal
from propmubi.web.appkeys import SERVICES
from propmubi_plugins.catalog.events import ProjectDeleted
from propmubi_plugins.catalog.media import service as media
from propmubi_plugins.catalog.media.models import PhotoUpload
from tests.plugins.catalog import media_helpers
from tests.plugins.catalog.media_helpers import (
    API,
    PROBLEM,
    encode,
    gradient,
    insert_project,
    stored_files,
    upload,
    uploaded,
)

config_overrides = media_helpers.config_overrides
people = media_helpers.people


def png(shade: int = 0) -> bytes:
    return encode(gradient((40 + shade, 30)), "PNG")


async def gallery(client, project_id, who=None, unit: bool = False) -> list[dict]:
    kind = "units" if unit else "projects"
    response = await client.get(f"{API}/{kind}/{project_id}/photos",
                                headers=who.headers if who else {})
    assert response.status == 200, await response.text()
    return await response.json()


async def alts(client, project_id, who) -> list[str]:
    photos = await gallery(client, project_id, who)
    assert [p["position"] for p in photos] == list(range(len(photos)))  # dense, in order
    return [p["alt_text"] for p in photos]


async def patch(client, photo_id, who, **body):
    return await client.patch(f"{API}/photos/{photo_id}", json=body, headers=who.headers)


@pytest.fixture
async def four(client, people):
    """A project with photos a, b, c, d in that order."""
    project = await insert_project(client, people.builder)
    photos = {}
    for i, name in enumerate("abcd"):
        photos[name] = await uploaded(client, project.id, people.builder, png(i), alt_text=name)
    return project, photos


async def test_uploads_append_or_insert_at_a_position(client, people, four):
    project, _ = four
    assert await alts(client, project.id, people.builder) == ["a", "b", "c", "d"]
    await uploaded(client, project.id, people.builder, png(9), alt_text="first", position=0)
    await uploaded(client, project.id, people.builder, png(8), alt_text="mid", position=2)
    await uploaded(client, project.id, people.builder, png(7), alt_text="last", position=99)
    assert await alts(client, project.id, people.builder) == [
        "first", "a", "mid", "b", "c", "d", "last"]


@pytest.mark.parametrize("name, position, expected", [
    ("a", 3, ["b", "c", "d", "a"]),
    ("d", 0, ["d", "a", "b", "c"]),
    ("b", 2, ["a", "c", "b", "d"]),
    ("c", 1, ["a", "c", "b", "d"]),
    ("b", 1, ["a", "b", "c", "d"]),
    ("a", 100, ["b", "c", "d", "a"]),  # past the end: last
])
async def test_reorder(client, people, four, name, position, expected):
    project, photos = four
    response = await patch(client, photos[name]["id"], people.builder, position=position)
    assert response.status == 200, await response.text()
    assert (await response.json())["position"] == expected.index(name)
    assert await alts(client, project.id, people.builder) == expected


async def test_alt_text_changes_and_is_checked(client, people, four):
    _, photos = four
    response = await patch(client, photos["a"]["id"], people.builder, alt_text="Kitchen")
    assert (await response.json())["alt_text"] == "Kitchen"
    for bad in ({"alt_text": ""}, {"alt_text": "x" * 301}, {"position": -1},
                {"alt_text": "   "}, {}):
        response = await patch(client, photos["a"]["id"], people.builder, **bad)
        assert response.status == 422, (bad, await response.text())
        doc = await response.json(content_type=PROBLEM)
        assert doc["errors"], bad


async def test_delete_removes_the_row_and_its_objects(client, people, four, tmp_path):
    project, photos = four
    root = tmp_path / "media"
    assert len(stored_files(root)) == 12
    response = await client.delete(f"{API}/photos/{photos['b']['id']}",
                                   headers=people.builder.headers)
    assert response.status == 204
    assert await alts(client, project.id, people.builder) == ["a", "c", "d"]
    assert len(stored_files(root)) == 9
    for url in photos["b"]["urls"].values():
        assert (await client.get(url)).status == 404
    response = await client.delete(f"{API}/photos/{photos['b']['id']}",
                                   headers=people.builder.headers)
    assert response.status == 404


async def test_changes_need_the_owner_or_staff(client, people, four):
    project, photos = four
    photo_id = photos["a"]["id"]
    assert (await client.patch(f"{API}/photos/{photo_id}", json={"alt_text": "x"})).status == 401
    assert (await patch(client, photo_id, people.buyer, alt_text="x")).status == 403
    assert (await patch(client, photo_id, people.other_builder, alt_text="x")).status == 404
    assert (await client.delete(f"{API}/photos/{photo_id}",
                                headers=people.other_builder.headers)).status == 404
    assert (await patch(client, photo_id, people.staff, alt_text="by staff")).status == 200
    assert (await patch(client, photo_id, people.admin, position=3)).status == 200
    assert await alts(client, project.id, people.builder) == ["b", "c", "d", "by staff"]
    # Published: the other builder may see it, still not change it.
    await client.app[SERVICES].db.execute(
        "UPDATE catalog_projects SET moderation = 'published' WHERE id = %s", (project.id,))
    assert (await patch(client, photo_id, people.other_builder, alt_text="x")).status == 403


async def test_public_reads_only_for_published_projects(client, people, four):
    project, photos = four
    for who in (None, people.buyer, people.other_builder):
        response = await client.get(f"{API}/projects/{project.id}/photos",
                                    headers=who.headers if who else {})
        assert response.status == 404
        response = await client.get(f"{API}/photos/{photos['a']['id']}",
                                    headers=who.headers if who else {})
        assert response.status == 404
    assert len(await gallery(client, project.id, people.staff)) == 4
    await client.app[SERVICES].db.execute(
        "UPDATE catalog_projects SET moderation = 'published' WHERE id = %s", (project.id,))
    assert await alts(client, project.id, None) == ["a", "b", "c", "d"]
    response = await client.get(f"{API}/photos/{photos['a']['id']}")
    assert (await response.json())["alt_text"] == "a"
    response = await client.get(f"{API}/projects/{uuid.uuid4()}/photos")
    assert response.status == 404


async def test_a_gallery_change_publishes_a_project_update(client, people):
    project = await insert_project(client, people.builder)
    photo = await uploaded(client, project.id, people.builder, png())
    await patch(client, photo["id"], people.builder, alt_text="New")
    await client.delete(f"{API}/photos/{photo['id']}", headers=people.builder.headers)
    rows = await client.app[SERVICES].db.fetch(
        "SELECT payload FROM core_outbox WHERE type = 'catalog.project_updated' "
        "ORDER BY position")
    assert [r["payload"]["fields"] for r in rows] == [["photos"]] * 3
    assert {r["payload"]["project_id"] for r in rows} == {str(project.id)}


async def test_a_failed_insert_removes_the_objects_it_wrote(client, people, tmp_path):
    # The project goes away between the access check and the insert: the renditions already
    # written are removed again.
    ctx = client.app[SERVICES].context("catalog")
    actor = Actor.user(Principal(str(people.builder.id), frozenset({"builder"})))
    project = await insert_project(client, people.builder)
    access = await media.manage_access(ctx, actor, project_id=project.id)
    await ctx.db.execute("DELETE FROM catalog_projects WHERE id = %s", (project.id,))
    with pytest.raises(NotFound):
        await media.upload(ctx, actor, access, PhotoUpload(data=png(), alt_text="Alt"))
    assert stored_files(tmp_path / "media") == []


async def test_deleting_a_project_removes_all_its_objects(client, people, services, event_bus,
                                                          tmp_path):
    root = tmp_path / "media"
    doomed = await insert_project(client, people.builder)
    kept = await insert_project(client, people.builder)
    await uploaded(client, doomed.id, people.builder, png(1))
    await uploaded(client, doomed.id, people.builder, png(2))
    response = await upload(client, doomed.unit_id, people.builder, png(3), unit=True)
    assert response.status == 201
    survivor = await uploaded(client, kept.id, people.builder, png(4))
    assert len(stored_files(root)) == 12

    async def delete_project() -> None:
        async with services.db.transaction() as tx:
            await tx.execute("DELETE FROM catalog_projects WHERE id = %s", (doomed.id,))
            await services.context("catalog").publish(
                tx, ProjectDeleted(project_id=doomed.id, builder_id=doomed.builder_id))

    await delete_project()
    await event_bus.drain()
    files = stored_files(root)
    assert len(files) == 3
    assert not (root / "projects" / str(doomed.id)).exists()
    assert all(str(kept.id) in str(f) for f in files)
    assert await services.db.fetchval(
        "SELECT count(*) FROM catalog_media WHERE project_id = %s", (doomed.id,)) == 0
    assert (await client.get(survivor["urls"]["web"])).status == 200

    # Idempotent: the same event again (a replay) finds nothing to remove and fails nothing.
    async with services.db.transaction() as tx:
        await services.context("catalog").publish(
            tx, ProjectDeleted(project_id=doomed.id, builder_id=doomed.builder_id))
    await event_bus.drain()
    assert len(stored_files(root)) == 3


async def test_deleting_a_unit_or_a_tower_removes_the_units_objects(client, people, services,
                                                                     event_bus, tmp_path):
    root = tmp_path / "media"
    project = await insert_project(client, people.builder)
    cover = await uploaded(client, project.id, people.builder, png(1))
    response = await upload(client, project.unit_id, people.builder, png(2), unit=True)
    assert response.status == 201
    # A second unit in the same tower, with a photo of its own.
    tower_id = await services.db.fetchval("SELECT tower_id FROM catalog_units WHERE id = %s",
                                          (project.unit_id,))
    response = await client.post(
        f"{API}/towers/{tower_id}/units", headers=people.builder.headers,
        json={"code": "A-102", "unit_type": "3BHK", "bedrooms": 3, "carpet_area_sqft": 900,
              "floor": 1, "price_minor": 9_000_000_00})
    assert response.status == 201, await response.text()
    second = (await response.json())["id"]
    response = await upload(client, second, people.builder, png(3), unit=True)
    assert response.status == 201
    units_folder = root / "projects" / str(project.id) / "units"
    assert {p.name for p in units_folder.iterdir()} == {str(project.unit_id), second}

    assert (await client.delete(f"{API}/units/{project.unit_id}",
                                headers=people.builder.headers)).status == 204
    await event_bus.drain()
    assert {p.name for p in units_folder.iterdir()} == {second}
    assert len(stored_files(root)) == 6  # the project's photo and the other unit's

    assert (await client.delete(f"{API}/towers/{tower_id}",
                                headers=people.builder.headers)).status == 204
    await event_bus.drain()
    assert [f for f in stored_files(root) if "units" in f.parts] == []
    assert len(stored_files(root)) == 3
    assert (await client.get(cover["urls"]["web"])).status == 200
    assert [p["id"] for p in await gallery(client, project.id, people.builder)] == [cover["id"]]


async def test_concurrent_uploads_keep_the_gallery_dense(client, people):
    project = await insert_project(client, people.builder)
    names = [f"photo {i}" for i in range(6)]
    await asyncio.gather(*(uploaded(client, project.id, people.builder, png(i), alt_text=name)
                           for i, name in enumerate(names)))
    assert sorted(await alts(client, project.id, people.builder)) == names
