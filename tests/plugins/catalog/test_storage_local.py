"""The local storage backend (atomic files under one folder, no way out of it) and the
``/media/{key}`` route that serves it (immutable caching, ETag / 304, no traversal)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import attrs
import pytest

from propmubi.config import ConfigError
from propmubi_plugins.catalog.media import storage
from propmubi_plugins.catalog.media.storage import InvalidKey, LocalStorage, check_key
from propmubi_plugins.catalog.settings import CatalogSettings
from tests.plugins.catalog import media_helpers
from tests.plugins.catalog.media_helpers import encode, gradient, insert_project, uploaded

config_overrides = media_helpers.config_overrides
people = media_helpers.people


@pytest.fixture
def local(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "objects")


async def test_put_get_delete(local, tmp_path):
    await local.put("projects/p1/photos/x/web-1.webp", b"one", "image/webp")
    got = await local.get("projects/p1/photos/x/web-1.webp")
    assert (got.data, got.content_type) == (b"one", "image/webp")
    assert got.etag.startswith('"') and got.etag.endswith('"')
    await local.put("projects/p1/photos/x/web-1.webp", b"two", "image/webp")  # replaced whole
    assert (await local.get("projects/p1/photos/x/web-1.webp")).data == b"two"
    await local.delete("projects/p1/photos/x/web-1.webp")
    await local.delete("projects/p1/photos/x/web-1.webp")  # idempotent
    assert await local.get("projects/p1/photos/x/web-1.webp") is None
    # Emptied folders go too, the root stays.
    assert list((tmp_path / "objects").iterdir()) == []


async def test_delete_prefix_takes_exactly_the_prefix(local):
    for key in ("projects/a/photos/1/o.jpg", "projects/a/units/u/photos/2/t.webp",
                "projects/ab/photos/3/o.jpg", "projects/b/photos/4/o.jpg"):
        await local.put(key, b"x", "image/jpeg")
    assert await local.delete_prefix("projects/a/") == 2
    assert await local.delete_prefix("projects/a/") == 0  # idempotent
    assert await local.get("projects/ab/photos/3/o.jpg") is not None  # "a" is not "ab"
    assert await local.get("projects/b/photos/4/o.jpg") is not None
    with pytest.raises(InvalidKey):
        await local.delete_prefix("projects")  # a prefix is a folder
    with pytest.raises(InvalidKey):
        await local.delete_prefix("/")


async def test_writes_are_atomic_and_leave_no_temporary_files(local, tmp_path):
    data = os.urandom(256 * 1024)
    await asyncio.gather(*(local.put("projects/p/photos/1/o.jpg", data, "image/jpeg")
                           for _ in range(8)))
    files = [p for p in (tmp_path / "objects").rglob("*") if p.is_file()]
    assert [p.name for p in files] == ["o.jpg"]
    assert files[0].read_bytes() == data


@pytest.mark.parametrize("key", [
    "../etc/passwd", "projects/../../etc/passwd", "/etc/passwd", "projects//x", "projects/./x",
    "projects/x/", "", "projects\\..\\x", "projects/.hidden", "projects/x\x00y", "a" * 600,
    "projects/%2e%2e/x", "projects/ü",
])
async def test_keys_cannot_leave_the_folder(local, key):
    with pytest.raises(InvalidKey):
        check_key(key)
    with pytest.raises(InvalidKey):
        await local.put(key, b"x", "image/jpeg")
    with pytest.raises(InvalidKey):
        await local.get(key)


async def test_the_s3_backend_needs_a_bucket(services):
    # Factories read the consuming plugin's context: its settings, here without a bucket.
    with pytest.raises(ConfigError, match=r"plugins\.catalog\.s3_bucket"):
        storage.backends()["s3"](services.context("catalog"))


async def test_the_local_backend_defaults_to_var_media(services, config):
    bare = attrs.evolve(services.context("catalog"), settings=CatalogSettings())
    backend = storage.backends()["local"](bare)
    assert backend.root == (Path(config.app.var_dir) / "media").resolve()
    assert backend.url("projects/p/x.webp") == "/media/projects/p/x.webp"


# -- the /media route ---------------------------------------------------------------------------


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
