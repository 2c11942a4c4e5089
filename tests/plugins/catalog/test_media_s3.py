"""The catalogue's photos with ``[storage] backend = "s3"`` (moto's S3-compatible server on
127.0.0.1, no other network): uploads, serving through ``/media/`` and project deletion.

The S3 backend itself is tested with the core (tests/core/test_storage_s3.py).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from propmubi_plugins.catalog.events import ProjectDeleted
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
def config_overrides(tmp_path: Path, s3_endpoint: str, s3_bucket: str
                     ) -> dict[str, Any]:
    return media_settings(tmp_path, storage={"backend": "s3", "s3_endpoint_url": s3_endpoint,
                                             "s3_bucket": s3_bucket, **S3_CREDENTIALS})


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
