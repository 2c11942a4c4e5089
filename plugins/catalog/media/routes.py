"""Photo galleries of projects and units (``/api/v1``), and ``/media/{key}`` for stored objects.

Uploads are ``multipart/form-data`` with the parts ``file`` (a JPEG, PNG or WebP image, checked
by its content), ``alt_text`` (required) and ``position`` (optional, 0-based; default: last).
The file part is read as a stream and refused with 413 once it passes
``plugins.catalog.max_upload_bytes``.
"""

from __future__ import annotations

import uuid
from typing import Any

from aiohttp import BodyPartReader, web

from propmubi.errors import (
    BadRequest,
    FieldError,
    NotFound,
    PayloadTooLarge,
    UnsupportedMediaType,
    ValidationFailed,
)
from propmubi.storage import InvalidKey, LocalStorage, check_key, content_type_of
from propmubi.web.auth import actor_of, signed_in
from propmubi.web.routing import Routes, json_response
from propmubi_plugins.catalog.media import service
from propmubi_plugins.catalog.media.models import (
    GALLERY_MAX,
    KeyParams,
    Photo,
    PhotoForm,
    PhotoPatch,
    PhotoUpload,
    PhotoUrls,
)
from propmubi_plugins.catalog.models import Id
from propmubi_plugins.catalog.state import Ctx

routes = Routes(tags=["catalog"])
#: Mounted at the site root: the objects of the process's storage (``ctx.storage``) when it
#: has no public URL of its own (the local backend, S3 without s3_public_base_url).
http_routes = Routes(tags=["media"])

MANAGERS = ["builder", "staff"]
#: Room for the multipart framing and the small fields around the file.
FORM_OVERHEAD = 64 * 1024
_FIELD_MAX = 4096
_PARTS_MAX = 8
_CHUNK = 64 * 1024
IMMUTABLE = "public, max-age=31536000, immutable"


def photo_out(ctx: Ctx, row: dict[str, Any]) -> Photo:
    """A photo row as the API shows it (URLs from the storage backend)."""
    storage = ctx.storage
    return Photo(
        id=row["id"], project_id=row["project_id"], unit_id=row["unit_id"],
        position=row["position"], alt_text=row["alt_text"], content_type=row["content_type"],
        width=row["width"], height=row["height"], bytes=row["bytes"], sha256=row["sha256"],
        urls=PhotoUrls(original=storage.url(row["original_key"]),
                       web=storage.url(row["web_key"]), thumb=storage.url(row["thumb_key"])),
        created_at=row["created_at"], updated_at=row["updated_at"])


# -------------------------------------------------------------------------------------------------
# Reading the upload
# -------------------------------------------------------------------------------------------------


async def _read_text(part: BodyPartReader, name: str) -> str:
    raw = bytearray()
    while chunk := await part.read_chunk(_FIELD_MAX):
        raw += chunk
        if len(raw) > _FIELD_MAX:
            raise ValidationFailed([FieldError("body", name, f"at most {_FIELD_MAX} bytes")])
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ValidationFailed([FieldError("body", name, "not UTF-8 text")]) from None


async def _read_file(part: BodyPartReader, limit: int) -> bytes:
    data = bytearray()
    while chunk := await part.read_chunk(_CHUNK):
        data += chunk
        if len(data) > limit:
            # Refused as soon as the stream passes the limit: never buffered unbounded.
            raise PayloadTooLarge(f"file: a photo may be at most {limit} bytes")
    return bytes(data)


async def read_upload(request: web.Request, limit: int) -> PhotoUpload:
    """The upload's parts, checked (every bad field listed at once).

    :raises UnsupportedMediaType: not ``multipart/form-data``.
    :raises PayloadTooLarge: the file (or the declared body) is over ``limit``.
    :raises ValidationFailed: missing or bad fields.
    """
    if request.content_type != "multipart/form-data":
        raise UnsupportedMediaType("expected Content-Type: multipart/form-data with a file part, "
                                   f"got {request.content_type or 'none'}")
    if request.content_length is not None and request.content_length > limit + FORM_OVERHEAD:
        raise PayloadTooLarge(f"the body is {request.content_length} bytes; a photo may be at "
                              f"most {limit} bytes")
    try:
        reader = await request.multipart()
    except (ValueError, AssertionError, KeyError) as exc:
        raise BadRequest(f"malformed multipart body: {exc}") from None
    fields: dict[str, str] = {}
    data: bytes | None = None
    errors: list[FieldError] = []
    try:
        for _ in range(_PARTS_MAX + 1):
            part = await reader.next()
            if part is None:
                break
            if not isinstance(part, BodyPartReader):
                raise BadRequest("nested multipart bodies are not accepted")
            name = part.name or ""
            if name == "file":
                if data is not None:
                    errors.append(FieldError("body", "file", "give one file per upload"))
                    await part.release()
                else:
                    data = await _read_file(part, limit)
            elif name in ("alt_text", "position"):
                fields[name] = await _read_text(part, name)
            else:
                errors.append(FieldError("body", name or "(unnamed)", "unknown field"))
                await part.release()
        else:
            raise BadRequest(f"at most {_PARTS_MAX} parts are accepted")
    except ValueError as exc:  # aiohttp's complaints about broken framing
        raise BadRequest(f"malformed multipart body: {exc}") from None
    if not data:
        errors.append(FieldError("body", "file", "required: a JPEG, PNG or WebP image"
                                 if data is None else "the file is empty"))
    alt_text = ""
    try:
        alt_text = service.check_alt_text(fields.get("alt_text"))
    except ValidationFailed as exc:
        errors += exc.extra["errors"]
    position: int | None = None
    if fields.get("position", "").strip():
        raw = fields["position"].strip()
        if not raw.isascii() or not raw.isdigit() or int(raw) > GALLERY_MAX:
            errors.append(FieldError("body", "position",
                                     f"expected an integer from 0 to {GALLERY_MAX}"))
        else:
            position = int(raw)
    if errors:
        raise ValidationFailed(errors)
    return PhotoUpload(data=data, alt_text=alt_text, position=position)  # type: ignore[arg-type]


async def _upload(request: web.Request, ctx: Ctx, project_id: uuid.UUID | None,
                  unit_id: uuid.UUID | None) -> web.Response:
    actor = signed_in(request)
    # Who may upload is settled before a byte of the body is read.
    access = await service.manage_access(ctx, actor, project_id=project_id, unit_id=unit_id)
    upload = await read_upload(request, ctx.settings.max_upload_bytes)
    photo = photo_out(ctx, await service.upload(ctx, actor, access, upload))
    return json_response(photo, 201, headers={"Location": f"/api/v1/photos/{photo.id}"})


@routes.post("/projects/{id}/photos", params=Id, response=Photo, status=201,
             roles=MANAGERS, max_body=False, form=PhotoForm, errors=(404, 409, 413, 415),
             rate_limit="60/minute", timeout=120)
async def upload_project_photo(request: web.Request, ctx: Ctx, params: Id) -> web.Response:
    """Add a photo to a project's gallery (multipart: file, alt_text, position)."""
    return await _upload(request, ctx, params.id, None)


@routes.post("/units/{id}/photos", params=Id, response=Photo, status=201,
             roles=MANAGERS, max_body=False, form=PhotoForm, errors=(404, 409, 413, 415),
             rate_limit="60/minute", timeout=120)
async def upload_unit_photo(request: web.Request, ctx: Ctx, params: Id) -> web.Response:
    """Add a photo to a unit's gallery (multipart: file, alt_text, position)."""
    return await _upload(request, ctx, None, params.id)


# -------------------------------------------------------------------------------------------------
# Galleries
# -------------------------------------------------------------------------------------------------


@routes.get("/projects/{id}/photos", params=Id, response=list[Photo], errors=(404,))
async def list_project_photos(request: web.Request, ctx: Ctx, params: Id) -> list[Photo]:
    """A project's gallery in order (public once the project is published)."""
    rows = await service.gallery(ctx, actor_of(request), project_id=params.id)
    return [photo_out(ctx, row) for row in rows]


@routes.get("/units/{id}/photos", params=Id, response=list[Photo], errors=(404,))
async def list_unit_photos(request: web.Request, ctx: Ctx, params: Id) -> list[Photo]:
    """A unit's gallery in order (public once its project is published)."""
    rows = await service.gallery(ctx, actor_of(request), unit_id=params.id)
    return [photo_out(ctx, row) for row in rows]


@routes.get("/photos/{id}", params=Id, response=Photo, errors=(404,))
async def get_photo(request: web.Request, ctx: Ctx, params: Id) -> Photo:
    """One photo (public once its project is published)."""
    return photo_out(ctx, await service.photo(ctx, actor_of(request), params.id))


@routes.patch("/photos/{id}", params=Id, body=PhotoPatch, response=Photo,
              roles=MANAGERS, errors=(404,))
async def update_photo(request: web.Request, ctx: Ctx, params: Id, body: PhotoPatch) -> Photo:
    """Change a photo's alternative text or its place in the gallery (others shift)."""
    if body.alt_text is None and body.position is None:
        raise ValidationFailed([FieldError("body", "", "give alt_text and/or position")])
    return photo_out(ctx, await service.update(ctx, signed_in(request), params.id, body))


@routes.delete("/photos/{id}", params=Id, status=204, roles=MANAGERS, errors=(404,))
async def delete_photo(request: web.Request, ctx: Ctx, params: Id) -> None:
    """Remove a photo and its stored images; the gallery closes the gap."""
    await service.delete(ctx, signed_in(request), params.id)


# -------------------------------------------------------------------------------------------------
# Stored objects
# -------------------------------------------------------------------------------------------------


@http_routes.get("/media/{key:.+}", params=KeyParams, content_type="image/webp",
                 errors=(304, 404), rate_limit=False)
async def serve_media(request: web.Request, ctx: Ctx, params: KeyParams
                      ) -> web.StreamResponse:
    """A stored photo rendition. Keys never change content, so caches keep it for a year;
    ``ETag`` / ``If-None-Match`` answer 304."""
    try:
        key = check_key(params.key)
    except InvalidKey:
        raise NotFound("no such object") from None
    storage = ctx.storage
    headers = {"Cache-Control": IMMUTABLE}
    if isinstance(storage, LocalStorage):
        path = storage.path(key)
        if not path.is_file():
            raise NotFound("no such object")
        # aiohttp's file response: sendfile, ETag / If-None-Match, Last-Modified, ranges.
        response = web.FileResponse(path, headers=headers)
        response.content_type = content_type_of(key)
        return response
    stored = await storage.get(key)
    if stored is None:
        raise NotFound("no such object")
    headers["ETag"] = stored.etag
    if _matches(request.headers.get("If-None-Match", ""), stored.etag):
        return web.Response(status=304, headers=headers)
    return web.Response(body=stored.data, content_type=stored.content_type, headers=headers)


def _matches(header: str, etag: str) -> bool:
    """Whether ``If-None-Match`` names ``etag`` (weak comparison, as RFC 9110 wants for it)."""
    tags = {t.strip().removeprefix("W/") for t in header.split(",") if t.strip()}
    return "*" in tags or etag.removeprefix("W/") in tags
