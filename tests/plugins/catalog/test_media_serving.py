"""The catalogue's ``/media/{key}`` route on the local storage backend (the core's
``[storage]``, here under the test's ``tmp_path``): immutable caching, ETag / 304, no traversal.

The backend itself is tested with the core (tests/core/test_storage_local.py).
"""

from __future__ import annotations

import pytest

from tests.plugins.catalog import media_helpers
from tests.plugins.catalog.media_helpers import encode, gradient, insert_project, uploaded

config_overrides = media_helpers.config_overrides
people = media_helpers.people


async def test_media_is_served_immutable_with_etag_and_304(client, people):
    project = await insert_project(client, people.builder, moderation="published")
    photo = await uploaded(client, project.id, people.builder, encode(gradient((60, 40)), "PNG"))
    url = photo["urls"]["thumb"]
    response = await client.get(url)
    assert response.status == 200
    assert response.content_type == "image/webp"
    assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    etag = response.headers["ETag"]
    body = await response.read()
    again = await client.get(url, headers={"If-None-Match": etag})
    assert again.status == 304
    assert await again.read() == b""
    assert (await client.get(url, headers={"If-None-Match": '"other"'})).status == 200
    head = await client.head(url)
    assert head.status == 200
    assert int(head.headers["Content-Length"]) == len(body)
    original = await client.get(photo["urls"]["original"])
    assert original.content_type == "image/png"


async def test_photos_are_stored_under_the_catalogue_folder(client, people, tmp_path):
    project = await insert_project(client, people.builder)
    photo = await uploaded(client, project.id, people.builder, encode(gradient((60, 40)), "PNG"))
    stored = media_helpers.stored_files(tmp_path / "media")
    assert len(stored) == 3
    assert all(p.relative_to(tmp_path / "media").parts[:4]
               == ("projects", str(project.id), "photos", photo["id"]) for p in stored)


@pytest.mark.parametrize("path", [
    "/media/../propmubi.toml", "/media/%2e%2e/%2e%2e/etc/passwd", "/media/projects/..%2f..%2fx",
    "/media/..%5c..%5cx", "/media/projects/nothing-here.webp", "/media/projects",
    "/media/.tmp-x",
])
async def test_media_refuses_traversal_and_unknown_keys(client, tmp_path, path):
    (tmp_path / "secret.txt").write_text("secret")
    (tmp_path / "media" / "projects").mkdir(parents=True)
    response = await client.get(path)
    assert response.status in (404, 400), path
    assert b"secret" not in await response.read()


async def test_media_of_a_deleted_photo_is_gone(client, people):
    project = await insert_project(client, people.builder)
    photo = await uploaded(client, project.id, people.builder, encode(gradient((60, 40)), "PNG"))
    await client.delete(f"/api/v1/photos/{photo['id']}", headers=people.builder.headers)
    assert (await client.get(photo["urls"]["web"])).status == 404
