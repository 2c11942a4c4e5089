"""Fixtures and builders for the media tests: callers with tokens, projects and units inserted
with SQL (the media tests need no project API), images made with Pillow, and an S3 service
(moto's server on 127.0.0.1, from :mod:`tests.s3_helpers`).

A media test module imports what it uses; ``config_overrides`` here replaces the catalogue
conftest's so that each test stores its media under its own ``tmp_path``.
"""

from __future__ import annotations

import io
import struct
import uuid
import zlib
from pathlib import Path
from typing import Any

import aiohttp
import attrs
import pytest
from PIL import ExifTags, Image

from propmubi.ids import uuid7
from propmubi.web.appkeys import SERVICES
from propmubi_plugins.catalog import store as catalog_store
from tests import s3_helpers
from tests.plugins.auth.conftest import AUTH_SETTINGS

API = "/api/v1"
PROBLEM = "application/problem+json"
MAX_UPLOAD = 1_000_000
MAX_PIXELS = 5_000_000


def media_settings(tmp_path: Path, *, storage: dict[str, Any] | None = None, **changes: Any
                   ) -> dict[str, dict[str, Any]]:
    """``config_overrides`` for media tests: known auth keys, no rate limits, the local storage
    under ``tmp_path`` (``storage`` changes ``[storage]`` keys), small limits (so that tests
    stay fast); ``changes`` are ``[plugins.catalog]`` keys."""
    catalog = {"max_upload_bytes": MAX_UPLOAD, "max_image_pixels": MAX_PIXELS, **changes}
    return {"plugins": {"settings": {"auth": dict(AUTH_SETTINGS), "catalog": catalog}},
            "storage": {"local_dir": str(tmp_path / "media"), **(storage or {})},
            "ratelimit": {"enabled": False}}


@pytest.fixture
def config_overrides(tmp_path: Path, request: Any) -> dict[str, dict[str, Any]]:
    """:func:`media_settings`; indirect parametrisation adds sections (``{"http": {...}}``)."""
    return {**media_settings(tmp_path), **getattr(request, "param", {})}


# -------------------------------------------------------------------------------------------------
# Callers and catalogue rows
# -------------------------------------------------------------------------------------------------


@attrs.frozen
class Caller:
    id: uuid.UUID
    headers: dict[str, str]


@attrs.frozen
class People:
    builder: Caller
    other_builder: Caller
    staff: Caller
    admin: Caller
    buyer: Caller
    anonymous: Caller


def token_for(client: Any, user_id: uuid.UUID, *roles: str) -> dict[str, str]:
    """Bearer headers for a token signed by the app's own key ring."""
    keyring = client.app[SERVICES].context("auth").state.keyring
    token, _ = keyring.issue(str(user_id), ("buyer", *roles), None)
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def people(client: Any) -> People:
    """Callers with tokens; the builders' KYC is verified (as the catalogue's handler records
    it), so they may change their projects."""
    def make(*roles: str) -> Caller:
        user_id = uuid7()
        return Caller(user_id, token_for(client, user_id, *roles))

    found = People(builder=make("builder"), other_builder=make("builder"), staff=make("staff"),
                   admin=make("admin"), buyer=make(), anonymous=Caller(uuid.UUID(int=0), {}))
    async with client.app[SERVICES].db.transaction() as tx:
        for builder in (found.builder, found.other_builder):
            await catalog_store.record_builder_kyc(tx, builder.id, "verified", 1)
    return found


@attrs.frozen
class Project:
    id: uuid.UUID
    builder_id: uuid.UUID
    unit_id: uuid.UUID


async def insert_project(client: Any, owner: Caller | None, moderation: str = "draft"
                         ) -> Project:
    """A builder (owned by ``owner``), a project, a tower and one unit, straight in SQL."""
    db = client.app[SERVICES].db
    builder_id, project_id, tower_id, unit_id = uuid7(), uuid7(), uuid7(), uuid7()
    async with db.transaction() as tx:
        existing = await tx.fetchval(
            "SELECT id FROM catalog_builders WHERE owner_user_id = %s",
            (owner.id if owner else None,)) if owner else None
        if existing:
            builder_id = existing
        else:
            await tx.execute(
                "INSERT INTO catalog_builders (id, owner_user_id, name, slug) "
                "VALUES (%s, %s, %s, %s)",
                (builder_id, owner.id if owner else None, "Skyline", f"skyline-{builder_id}"))
        await tx.execute(
            """INSERT INTO catalog_projects (id, builder_id, slug, name, city, locality, lat, lng,
                                             moderation)
               VALUES (%s, %s, %s, 'Green Meadows', 'Pune', 'Baner', 18.559, 73.786, %s)""",
            (project_id, builder_id, f"green-meadows-{project_id}", moderation))
        await tx.execute("INSERT INTO catalog_towers (id, project_id, name, floors) "
                         "VALUES (%s, %s, 'A', 10)", (tower_id, project_id))
        await tx.execute(
            """INSERT INTO catalog_units (id, project_id, tower_id, code, unit_type, bedrooms,
                                          carpet_area_sqft, floor, price_minor)
               VALUES (%s, %s, %s, 'A-101', '2BHK', 2, 720.5, 1, 8500000000)""",
            (unit_id, project_id, tower_id))
    return Project(id=project_id, builder_id=builder_id, unit_id=unit_id)


# -------------------------------------------------------------------------------------------------
# Images
# -------------------------------------------------------------------------------------------------


def gradient(size: tuple[int, int], mode: str = "RGB") -> Image.Image:
    """A smooth image (compresses small, decodes exactly enough to compare sizes)."""
    image = Image.linear_gradient("L").resize(size)
    if mode == "L":
        return image
    rgb = Image.merge("RGB", (image, image.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
                              Image.new("L", size, 128)))
    if mode == "RGBA":
        rgb.putalpha(Image.new("L", size, 200))
    return rgb


def encode(image: Image.Image, fmt: str, **params: Any) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **params)
    return out.getvalue()


def jpeg_with_gps(size: tuple[int, int] = (400, 200), orientation: int = 6) -> bytes:
    """A JPEG with EXIF: camera, owner, GPS position and an orientation (6: rotate 90 CW)."""
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "TestCam"
    exif[ExifTags.Base.Artist] = "Secret Owner"
    exif[ExifTags.Base.Orientation] = orientation
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (18.0, 33.0, 12.5)
    gps[ExifTags.GPS.GPSLongitudeRef] = "E"
    gps[ExifTags.GPS.GPSLongitude] = (73.0, 47.0, 9.0)
    data = encode(gradient(size), "JPEG", exif=exif, quality=90)
    # The fixture itself carries what must be stripped.
    assert Image.open(io.BytesIO(data)).getexif().get_ifd(ExifTags.IFD.GPSInfo)
    return data


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(
        ">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def png_bomb(width: int = 30000, height: int = 30000) -> bytes:
    """A PNG of a few hundred bytes whose header claims ``width`` x ``height`` 1-bit pixels
    (a decompression bomb: all zeros compress to almost nothing)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    row = b"\x00" * (1 + (width + 7) // 8)
    compressor = zlib.compressobj(9)
    idat = compressor.compress(row * 16) + compressor.flush()  # a few rows are enough to open
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat)
            + _chunk(b"IEND", b""))


def form(data: bytes | None, alt_text: str | None = "A sunny living room",
         position: int | str | None = None, filename: str = "photo.jpg",
         content_type: str = "image/jpeg") -> aiohttp.FormData:
    """A multipart upload body."""
    body = aiohttp.FormData(default_to_multipart=True)
    if data is not None:
        body.add_field("file", data, filename=filename, content_type=content_type)
    if alt_text is not None:
        body.add_field("alt_text", alt_text)
    if position is not None:
        body.add_field("position", str(position))
    return body


async def upload(client: Any, project_id: uuid.UUID, who: Caller, data: bytes | None,
                 *, unit: bool = False, **fields: Any) -> aiohttp.ClientResponse:
    path = f"{API}/{'units' if unit else 'projects'}/{project_id}/photos"
    return await client.post(path, data=form(data, **fields), headers=who.headers)


async def uploaded(client: Any, project_id: uuid.UUID, who: Caller, data: bytes,
                   **fields: Any) -> dict[str, Any]:
    response = await upload(client, project_id, who, data, **fields)
    assert response.status == 201, await response.text()
    return await response.json()


def stored_files(root: Path) -> list[Path]:
    """Every object file under the local backend's folder (temporary files included)."""
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


# -------------------------------------------------------------------------------------------------
# S3 (moto's server on loopback): the shared helpers, under the names media tests import
# -------------------------------------------------------------------------------------------------

s3_endpoint = s3_helpers.s3_endpoint
s3_bucket = s3_helpers.s3_bucket
s3_objects = s3_helpers.s3_objects
S3_CREDENTIALS = s3_helpers.S3_CREDENTIALS
