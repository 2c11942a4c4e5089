"""Photo uploads end to end (real app, PostgreSQL, Redis, local storage): content checks,
limits, metadata stripping, renditions and who may upload."""

from __future__ import annotations

import io

import pytest
from PIL import ExifTags, Image

from propmubi.web.appkeys import SERVICES
from tests.plugins.catalog import media_helpers
from tests.plugins.catalog.media_helpers import (
    API,
    MAX_UPLOAD,
    PROBLEM,
    encode,
    gradient,
    insert_project,
    jpeg_with_gps,
    png_bomb,
    stored_files,
    upload,
    uploaded,
)

# The media fixtures (they replace the catalogue conftest's config_overrides).
config_overrides = media_helpers.config_overrides
people = media_helpers.people

async def fetch(client, url: str) -> bytes:
    response = await client.get(url)
    assert response.status == 200, url
    return await response.read()


async def problem(response, status: int) -> dict:
    assert response.status == status, await response.text()
    assert response.content_type == PROBLEM
    return await response.json(content_type=PROBLEM)


async def media_rows(client) -> int:
    return await client.app[SERVICES].db.fetchval("SELECT count(*) FROM catalog_media")


async def test_upload_strips_exif_orients_and_makes_renditions(client, people, tmp_path):
    project = await insert_project(client, people.builder)
    original = jpeg_with_gps((2400, 1200), orientation=6)  # shown upright as 1200 x 2400
    photo = await uploaded(client, project.id, people.builder, original,
                           alt_text="  Living room with east windows  ")
    assert photo["alt_text"] == "Living room with east windows"
    assert (photo["width"], photo["height"]) == (1200, 2400)
    assert photo["content_type"] == "image/jpeg"
    assert photo["bytes"] == len(original)
    assert photo["position"] == 0
    assert photo["unit_id"] is None

    expected = {"original": ((1200, 2400), "JPEG"), "web": ((800, 1600), "WEBP"),
                "thumb": ((160, 320), "WEBP")}
    for name, (size, fmt) in expected.items():
        url = photo["urls"][name]
        assert url.startswith(f"/media/projects/{project.id}/photos/{photo['id']}/")
        image = Image.open(io.BytesIO(await fetch(client, url)))
        image.load()  # decodes completely
        assert (image.size, image.format) == (size, fmt), name
        exif = image.getexif()
        assert not exif.get_ifd(ExifTags.IFD.GPSInfo), name
        assert len(exif) == 0, name
        assert "exif" not in image.info and "xmp" not in image.info, name
        assert b"TestCam" not in await fetch(client, url)
        assert b"Secret Owner" not in await fetch(client, url)

    # Three objects on disk, under the project's prefix, no temporary files left behind.
    files = stored_files(tmp_path / "media")
    assert len(files) == 3
    assert all(f.relative_to(tmp_path / "media").parts[:2] == ("projects", str(project.id))
               for f in files)


@pytest.mark.parametrize("fmt, content_type, mode", [
    ("PNG", "image/png", "RGBA"),
    ("WEBP", "image/webp", "RGB"),
    ("PNG", "image/png", "L"),
])
async def test_png_and_webp_are_accepted(client, people, fmt, content_type, mode):
    project = await insert_project(client, people.builder)
    photo = await uploaded(client, project.id, people.builder,
                           encode(gradient((640, 480), mode), fmt))
    assert photo["content_type"] == content_type
    web = Image.open(io.BytesIO(await fetch(client, photo["urls"]["web"])))
    assert web.size == (640, 480)  # never upscaled


async def test_type_is_checked_by_content_not_by_name_or_header(client, people):
    project = await insert_project(client, people.builder)
    # A PNG called photo.jpg and declared image/jpeg is still a PNG: fine.
    png = encode(gradient((50, 40)), "PNG")
    photo = await uploaded(client, project.id, people.builder, png, filename="photo.jpg",
                           content_type="image/jpeg")
    assert photo["content_type"] == "image/png"


@pytest.mark.parametrize("payload", [
    b"just some text, not an image at all\n",
    b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><script>alert(1)'
    b"</script></svg>",
    b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF",
    b"<!doctype html><html><body onload=alert(1)></body></html>",
    b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + b"\x00" * 40,  # a zip
    encode(gradient((20, 20)), "GIF"),  # an image, but not one we take
])
async def test_other_types_are_refused_and_nothing_is_stored(client, people, tmp_path, payload):
    project = await insert_project(client, people.builder)
    response = await upload(client, project.id, people.builder, payload,
                            filename="photo.jpg", content_type="image/jpeg")
    doc = await problem(response, 415)
    assert doc["type"].endswith("/unsupported-media-type")
    assert "file" in doc["detail"]
    assert await media_rows(client) == 0
    assert stored_files(tmp_path / "media") == []


async def test_a_truncated_image_is_422(client, people, tmp_path):
    project = await insert_project(client, people.builder)
    whole = encode(gradient((800, 600)), "JPEG", quality=95)
    doc = await problem(await upload(client, project.id, people.builder,
                                     whole[: len(whole) // 2]), 422)
    assert [e["field"] for e in doc["errors"]] == ["file"]
    assert await media_rows(client) == 0
    assert stored_files(tmp_path / "media") == []


@pytest.mark.parametrize("bomb", [png_bomb(30000, 30000), png_bomb(2500, 2500)])
async def test_a_decompression_bomb_is_422_and_nothing_is_stored(client, people, tmp_path,
                                                                 bomb):
    # 900 megapixels (past Pillow's own hard limit too) and 6.25 (past our 5 megapixels).
    assert len(bomb) < 5000
    project = await insert_project(client, people.builder)
    doc = await problem(await upload(client, project.id, people.builder, bomb,
                                     filename="bomb.png", content_type="image/png"), 422)
    assert doc["errors"][0]["field"] == "file"
    assert "pixels" in doc["errors"][0]["message"]
    assert await media_rows(client) == 0
    assert stored_files(tmp_path / "media") == []


async def test_an_oversize_upload_is_413_declared_or_streamed(client, people, tmp_path):
    project = await insert_project(client, people.builder)
    big = b"\xff\xd8\xff" + b"\x00" * (MAX_UPLOAD + 10)
    doc = await problem(await upload(client, project.id, people.builder, big), 413)
    assert doc["type"].endswith("/payload-too-large")

    # Chunked (no Content-Length): cut while streaming.
    async def chunks():
        boundary = b"--XyZ\r\n"
        yield boundary + b'Content-Disposition: form-data; name="alt_text"\r\n\r\nRoom\r\n'
        yield boundary + (b'Content-Disposition: form-data; name="file"; filename="a.jpg"\r\n'
                          b"Content-Type: image/jpeg\r\n\r\n")
        for _ in range(MAX_UPLOAD // 65536 + 4):
            yield b"\x00" * 65536
        yield b"\r\n--XyZ--\r\n"

    response = await client.post(f"{API}/projects/{project.id}/photos", data=chunks(),
                                 headers={**people.builder.headers,
                                          "Content-Type": "multipart/form-data; boundary=XyZ"})
    await problem(response, 413)
    assert await media_rows(client) == 0
    assert stored_files(tmp_path / "media") == []


@pytest.mark.parametrize("config_overrides", [{"http": {"max_body_bytes": 50_000}}],
                         indirect=True)
async def test_the_upload_limit_is_the_catalogue_setting_not_the_http_one(client, people):
    # The route streams its body under plugins.catalog.max_upload_bytes, not under the (here
    # tiny) http.max_body_bytes that JSON routes keep.
    project = await insert_project(client, people.builder)
    data = encode(Image.effect_noise((400, 400), 100).convert("RGB"), "PNG")
    assert 100_000 < len(data) < MAX_UPLOAD, len(data)
    await uploaded(client, project.id, people.builder, data)
    response = await client.patch(f"{API}/photos/00000000-0000-0000-0000-000000000000",
                                  json={"alt_text": "x" * 60_000},
                                  headers=people.builder.headers)
    await problem(response, 413)


@pytest.mark.parametrize("fields, bad", [
    ({"alt_text": None}, ["alt_text"]),
    ({"alt_text": "   "}, ["alt_text"]),
    ({"alt_text": "x" * 301}, ["alt_text"]),
    ({"position": "first"}, ["position"]),
    ({"position": "-1"}, ["position"]),
    ({"alt_text": None, "position": "x"}, ["alt_text", "position"]),
])
async def test_bad_fields_are_422_naming_them(client, people, fields, bad):
    project = await insert_project(client, people.builder)
    doc = await problem(await upload(client, project.id, people.builder,
                                     encode(gradient((30, 30)), "PNG"), **fields), 422)
    assert sorted(e["field"] for e in doc["errors"]) == bad
    assert all(e["in"] == "body" for e in doc["errors"])
    assert await media_rows(client) == 0


async def test_a_missing_file_or_a_json_body_is_refused(client, people):
    project = await insert_project(client, people.builder)
    doc = await problem(await upload(client, project.id, people.builder, None), 422)
    assert [e["field"] for e in doc["errors"]] == ["file"]
    response = await client.post(f"{API}/projects/{project.id}/photos",
                                 json={"alt_text": "x"}, headers=people.builder.headers)
    await problem(response, 415)


async def test_who_may_upload(client, people):
    png = encode(gradient((30, 30)), "PNG")
    draft = await insert_project(client, people.builder)
    published = await insert_project(client, people.builder, moderation="published")
    await problem(await upload(client, draft.id, people.anonymous, png), 401)
    await problem(await upload(client, draft.id, people.buyer, png), 403)
    # Another builder: a draft is not even disclosed; a published project is refused.
    await problem(await upload(client, draft.id, people.other_builder, png), 404)
    await problem(await upload(client, published.id, people.other_builder, png), 403)
    await problem(await upload(client, "00000000-0000-0000-0000-000000000000",
                               people.builder, png), 404)
    for who in (people.builder, people.staff, people.admin):
        await uploaded(client, draft.id, who, png)
    assert await media_rows(client) == 3


async def test_unit_photos_live_under_their_project(client, people, tmp_path):
    project = await insert_project(client, people.builder)
    response = await upload(client, project.unit_id, people.builder,
                            encode(gradient((30, 30)), "PNG"), unit=True)
    assert response.status == 201, await response.text()
    photo = await response.json()
    assert photo["unit_id"] == str(project.unit_id)
    assert photo["project_id"] == str(project.id)
    assert photo["urls"]["web"].startswith(
        f"/media/projects/{project.id}/units/{project.unit_id}/photos/")
    unit_gallery = await (await client.get(f"{API}/units/{project.unit_id}/photos",
                                           headers=people.builder.headers)).json()
    project_gallery = await (await client.get(f"{API}/projects/{project.id}/photos",
                                              headers=people.builder.headers)).json()
    assert [p["id"] for p in unit_gallery] == [photo["id"]]
    assert project_gallery == []
    await problem(await upload(client, project.unit_id, people.other_builder,
                               encode(gradient((30, 30)), "PNG"), unit=True), 404)


@pytest.mark.parametrize("content_type, body", [
    ("multipart/form-data", b"--x\r\nno boundary declared\r\n"),
    ("multipart/form-data; boundary=XyZ", b"garbage without any boundary at all"),
    ("multipart/form-data; boundary=XyZ", b"--XyZ\r\nContent-Disposition: form-data; "
                                          b'name="file"\r\n\r\nunterminated'),
    ("multipart/form-data; boundary=XyZ", b"--XyZ\r\nContent-Type: multipart/mixed; "
                                          b"boundary=in\r\n\r\n--in\r\n\r\nx\r\n--in--\r\n"
                                          b"\r\n--XyZ--\r\n"),
    ("multipart/form-data; boundary=XyZ", b"--XyZ--\r\n"),
    ("multipart/form-data; boundary=XyZ", b"".join(
        b'--XyZ\r\nContent-Disposition: form-data; name="alt_text"\r\n\r\nx\r\n'
        for _ in range(20)) + b"--XyZ--\r\n"),
    ("multipart/form-data; boundary=XyZ", b'--XyZ\r\nContent-Disposition: form-data; '
                                          b'name="alt_text"\r\n\r\n\xff\xfe\r\n--XyZ--\r\n'),
    ("multipart/form-data; boundary=XyZ", b'--XyZ\r\nContent-Disposition: form-data; '
                                          b'name="colour"\r\n\r\nred\r\n--XyZ--\r\n'),
])
async def test_malformed_multipart_is_a_4xx_never_a_5xx(client, people, content_type, body):
    project = await insert_project(client, people.builder)
    response = await client.post(f"{API}/projects/{project.id}/photos", data=body,
                                 headers={**people.builder.headers, "Content-Type": content_type})
    assert 400 <= response.status < 500, await response.text()
    assert response.content_type == PROBLEM
    assert await media_rows(client) == 0
