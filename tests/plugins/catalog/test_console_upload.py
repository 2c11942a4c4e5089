"""Photo uploads through the console's form take photos up to the catalogue's upload limit
(``plugins.catalog.max_upload_bytes``, 15 MiB by default), not the 1 MiB ``[http]
max_body_bytes`` of JSON bodies; a larger one is a 413 page and stores nothing."""

from __future__ import annotations

import io
import random
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from PIL import Image

from propmubi.testing import csrf_of, make_staff
from propmubi.testing import sign_in as console_sign_in
from tests.plugins.auth.conftest import AUTH_SETTINGS

HTML = {"Accept": "text/html"}
MiB = 1024 * 1024


@pytest.fixture
def config_overrides(tmp_path: Path, request: Any) -> dict[str, dict[str, Any]]:
    # The catalogue's own limits (15 MiB); photos stored under this test's folder.
    catalog = getattr(request, "param", {})
    return {"plugins": {"settings": {"auth": dict(AUTH_SETTINGS), "catalog": catalog}},
            "storage": {"local_dir": str(tmp_path / "media")},
            "ratelimit": {"enabled": False}}


def big_jpeg(min_bytes: int) -> bytes:
    """A real JPEG of at least ``min_bytes``: noise compresses badly (the same every run)."""
    rng = random.Random(7)
    side = 1000
    while True:
        pixels = rng.randbytes(side * side * 3)
        out = io.BytesIO()
        Image.frombytes("RGB", (side, side), pixels).save(out, "JPEG", quality=97)
        if len(out.getvalue()) >= min_bytes:
            return out.getvalue()
        side += 200


async def gallery(client: Any, services: Any, builder: Any, make_project: Any
                  ) -> tuple[uuid.UUID, str, str]:
    """A signed-in staff member on a project page: its id, path and the form's CSRF token."""
    project = await make_project(builder)
    await make_staff(services)
    assert (await console_sign_in(client)).status == 303
    path = f"/console/projects/{project['id']}"
    response = await client.get(path)
    assert response.status == 200
    return project["id"], path, csrf_of(await response.text())


def upload_form(token: str, data: bytes, alt: str = "Living room at dusk") -> aiohttp.FormData:
    form = aiohttp.FormData()
    form.add_field("csrf_token", token)
    form.add_field("file", io.BytesIO(data), filename="living.jpg", content_type="image/jpeg")
    form.add_field("alt_text", alt)
    return form


async def photos_of(services: Any, project_id: uuid.UUID) -> list[dict[str, Any]]:
    return await services.db.fetch(
        "SELECT alt_text, bytes, original_key FROM catalog_media WHERE project_id = %s "
        "ORDER BY position", (project_id,))


def stored(tmp_path: Path) -> list[Path]:
    return sorted(p for p in (tmp_path / "media").rglob("*") if p.is_file())


async def test_a_3_mib_photo_uploads_through_the_console_form(client, services, builder,
                                                              make_project, tmp_path):
    project_id, path, token = await gallery(client, services, builder, make_project)
    data = big_jpeg(3 * MiB)
    assert 3 * MiB <= len(data) < 15 * MiB
    before = len(await photos_of(services, project_id))
    response = await client.post(f"{path}/photos", data=upload_form(token, data),
                                 headers=HTML, allow_redirects=False)
    assert response.status == 303, await response.text()
    assert response.headers["Location"] == f"{path}#photos"
    photos = await photos_of(services, project_id)
    assert len(photos) == before + 1
    assert photos[-1]["alt_text"] == "Living room at dusk"
    assert stored(tmp_path)  # its web and thumbnail renditions are in the storage
    body = await (await client.get(path)).text()
    assert "Photo uploaded." in body and 'alt="Living room at dusk"' in body


@pytest.mark.parametrize("config_overrides", [{"max_upload_bytes": 2 * MiB}], indirect=True)
async def test_a_photo_over_the_limit_is_a_413_page_and_stores_nothing(
        client, services, builder, make_project, tmp_path):
    project_id, path, token = await gallery(client, services, builder, make_project)
    files, photos = stored(tmp_path), await photos_of(services, project_id)
    # Far over: refused from its declared length, before it is read.
    response = await client.post(f"{path}/photos", data=upload_form(token, big_jpeg(3 * MiB)),
                                 headers=HTML, allow_redirects=False)
    assert response.status == 413
    assert response.headers["Content-Type"].startswith("text/html")
    assert "Request body too large" in await response.text()
    # Just over (the form's other fields fit in the body): the page, with the message by the
    # file field, still 413.
    just_over = big_jpeg(1 * MiB)
    just_over += b"\0" * (2 * MiB + 1 - len(just_over))
    response = await client.post(f"{path}/photos", data=upload_form(token, just_over),
                                 headers=HTML, allow_redirects=False)
    body = await response.text()
    assert response.status == 413, body
    assert '<p class="field-error" id="file-error">a photo may be at most 2 MiB</p>' in body
    assert stored(tmp_path) == files
    assert await photos_of(services, project_id) == photos
