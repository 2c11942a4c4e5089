"""The S3 backend against moto's S3-compatible server on 127.0.0.1 (no other network): the
object operations, and uploads, serving and project deletion with ``storage_backend = "s3"``."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from propmubi_plugins.catalog.events import ProjectDeleted
from propmubi_plugins.catalog.media.storage import InvalidKey, S3Storage
from tests.plugins.catalog import media_helpers
from tests.plugins.catalog.media_helpers import (
    S3_CREDENTIALS,
    encode,
    gradient,
    insert_project,
    jpeg_with_gps,
    media_settings,
    s3_objects,
    stored_files,
    uploaded,
)

people = media_helpers.people
s3_endpoint = media_helpers.s3_endpoint
s3_bucket = media_helpers.s3_bucket


@pytest.fixture
async def s3(s3_endpoint: str, s3_bucket: str) -> Any:
    backend = S3Storage(bucket=s3_bucket, region="us-east-1", endpoint_url=s3_endpoint,
                        access_key_id="testing", secret_access_key="testing")
    await backend.open()
    yield backend
    await backend.close()


async def test_put_get_delete(s3, s3_endpoint, s3_bucket):
    await s3.put("projects/p/photos/1/web-abc.webp", b"RIFFdata", "image/webp")
    got = await s3.get("projects/p/photos/1/web-abc.webp")
    assert (got.data, got.content_type) == (b"RIFFdata", "image/webp")
    assert got.etag.startswith('"')
    assert await s3.get("projects/p/photos/1/missing.webp") is None
    await s3.delete("projects/p/photos/1/web-abc.webp")
    await s3.delete("projects/p/photos/1/web-abc.webp")  # idempotent
    assert await s3.get("projects/p/photos/1/web-abc.webp") is None
    assert s3_objects(s3_endpoint, s3_bucket) == []


async def test_objects_are_marked_immutable(s3, s3_endpoint, s3_bucket):
    import boto3

    await s3.put("projects/p/x.jpg", b"\xff\xd8", "image/jpeg")
    head = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing"
                        ).head_object(Bucket=s3_bucket, Key="projects/p/x.jpg")
    assert head["CacheControl"] == "public, max-age=31536000, immutable"
    assert head["ContentType"] == "image/jpeg"


async def test_delete_prefix_pages_through_many_objects(s3, s3_endpoint, s3_bucket):
    # More than one list page and one delete batch (1,000 each).
    for start in range(0, 1005, 50):
        await asyncio.gather(*(s3.put(f"projects/a/photos/{i}/t.webp", b"x", "image/webp")
                               for i in range(start, min(start + 50, 1005))))
    await s3.put("projects/ab/photos/1/t.webp", b"x", "image/webp")
    await s3.put("projects/b/photos/1/t.webp", b"x", "image/webp")
    assert await s3.delete_prefix("projects/a/") == 1005
    assert await s3.delete_prefix("projects/a/") == 0
    assert s3_objects(s3_endpoint, s3_bucket) == ["projects/ab/photos/1/t.webp",
                                                  "projects/b/photos/1/t.webp"]
    with pytest.raises(InvalidKey):
        await s3.delete_prefix("projects")


async def test_urls_use_the_public_base_when_set(s3_endpoint, s3_bucket):
    backend = S3Storage(bucket=s3_bucket, region="us-east-1", endpoint_url=s3_endpoint,
                        access_key_id="testing", secret_access_key="testing",
                        public_base_url="https://cdn.example/media/")
    assert backend.url("projects/p/x.webp") == "https://cdn.example/media/projects/p/x.webp"
    backend.public_base_url = ""
    assert backend.url("projects/p/x.webp") == "/media/projects/p/x.webp"


# -- the application with storage_backend = "s3" ------------------------------------------------


@pytest.fixture
def config_overrides(tmp_path: Path, s3_endpoint: str, s3_bucket: str
                     ) -> dict[str, Any]:
    return media_settings(tmp_path, storage_backend="s3", s3_endpoint_url=s3_endpoint,
                          s3_bucket=s3_bucket, **S3_CREDENTIALS)


async def test_an_upload_goes_to_s3_and_is_served_through_the_api(
        client, people, tmp_path, s3_endpoint, s3_bucket):
    project = await insert_project(client, people.builder, moderation="published")
    photo = await uploaded(client, project.id, people.builder, jpeg_with_gps((900, 600)))
    keys = s3_objects(s3_endpoint, s3_bucket)
    assert len(keys) == 3
    assert all(k.startswith(f"projects/{project.id}/photos/{photo['id']}/") for k in keys)
    assert stored_files(tmp_path / "media") == []  # nothing local

    response = await client.get(photo["urls"]["web"])
    assert response.status == 200
    assert response.content_type == "image/webp"
    assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    image = Image.open(io.BytesIO(await response.read()))
    assert image.size == (600, 900)  # orientation 6 applied
    assert not image.getexif()
    etag = response.headers["ETag"]
    assert (await client.get(photo["urls"]["web"],
                             headers={"If-None-Match": etag})).status == 304
    assert (await client.get(f"/media/projects/{project.id}/nothing.webp")).status == 404

    response = await client.delete(f"/api/v1/photos/{photo['id']}",
                                   headers=people.builder.headers)
    assert response.status == 204
    assert s3_objects(s3_endpoint, s3_bucket) == []


async def test_a_deleted_project_is_removed_from_s3(client, people, services, event_bus,
                                                    s3_endpoint, s3_bucket):
    doomed = await insert_project(client, people.builder)
    kept = await insert_project(client, people.builder)
    await uploaded(client, doomed.id, people.builder, encode(gradient((50, 50)), "PNG"))
    await uploaded(client, kept.id, people.builder, encode(gradient((50, 50)), "PNG"))
    assert len(s3_objects(s3_endpoint, s3_bucket)) == 6
    async with services.db.transaction() as tx:
        await tx.execute("DELETE FROM catalog_projects WHERE id = %s", (doomed.id,))
        await services.context("catalog").publish(
            tx, ProjectDeleted(project_id=doomed.id, builder_id=doomed.builder_id))
    await event_bus.drain()
    keys = s3_objects(s3_endpoint, s3_bucket)
    assert len(keys) == 3
    assert all(k.startswith(f"projects/{kept.id}/") for k in keys)
