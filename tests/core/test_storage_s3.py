"""The S3 backend against moto's S3-compatible server on 127.0.0.1 (no other network): the
object operations, and a process whose ``[storage] backend`` is ``"s3"``.

Uploads, serving and project deletion through the catalogue on S3 are tested with the catalogue
(tests/plugins/catalog/test_media_s3.py).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from propmubi.storage import InvalidKey, S3Storage
from tests import s3_helpers
from tests.s3_helpers import S3_CREDENTIALS, s3_objects

s3_endpoint = s3_helpers.s3_endpoint
s3_bucket = s3_helpers.s3_bucket


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


async def test_an_unopened_backend_says_so():
    backend = S3Storage(bucket="media", region="us-east-1", endpoint_url=None,
                        access_key_id="testing", secret_access_key="testing")
    with pytest.raises(RuntimeError, match="not open"):
        await backend.get("projects/p/x.webp")


# -- a process with backend = "s3" ----------------------------------------------------------------


@pytest.fixture
def config_overrides(s3_endpoint: str, s3_bucket: str) -> dict[str, Any]:
    return {"storage": {"backend": "s3", "s3_endpoint_url": s3_endpoint, "s3_bucket": s3_bucket,
                        **S3_CREDENTIALS}}


async def test_the_process_storage_is_the_configured_bucket(services, s3_endpoint, s3_bucket):
    storage = services.storage
    assert isinstance(storage, S3Storage)
    assert (storage.bucket, storage.endpoint_url) == (s3_bucket, s3_endpoint)
    ctx = services.context("reference")
    assert ctx.storage is storage
    await ctx.storage.put("reference/notes/1.txt", b"note", "text/plain")
    assert s3_objects(s3_endpoint, s3_bucket) == ["reference/notes/1.txt"]
    got = await storage.get("reference/notes/1.txt")
    assert (got.data, got.content_type) == (b"note", "text/plain")
    assert ctx.storage.url("reference/notes/1.txt") == "/media/reference/notes/1.txt"
