"""Photos: upload checks, EXIF stripping, thumbnails and web sizes, galleries.

An upload is checked and converted in worker threads (:mod:`.images`, at most
``ctx.state.slots`` at a time), its three renditions are written to the process's object
storage (``ctx.storage``, under ``projects/<id>/``), and only then is the row inserted, with a
``catalog.project_updated`` event (``fields=["photos"]``) in the same transaction. A failed
insert removes the objects it wrote. Deleting a photo removes its row first and its objects
after the commit; deleting a project or units removes their objects when the events arrive
(``handlers.py``).

Who may do what: anyone sees the photos of a published project; its builder and staff see
and change those of any project; others' unpublished projects answer 404, a visible project
of someone else 403 on changes. As for every change of a project (``access.py``), a builder
needs verified KYC (403 ``kyc-required``) and cannot change the photos of a project in review
(409).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import uuid
from collections.abc import Mapping
from typing import Any

from propmubi.actors import Actor
from propmubi.db import ForeignKeyViolation, Tx
from propmubi.errors import (
    Conflict,
    FieldError,
    Forbidden,
    NotFound,
    UnsupportedMediaType,
    ValidationFailed,
)
from propmubi.ids import uuid7
from propmubi.storage import Storage
from propmubi_plugins.catalog import access as rules
from propmubi_plugins.catalog.media import images, store
from propmubi_plugins.catalog.media.models import (
    ALT_TEXT_MAX,
    GALLERY_MAX,
    PhotoPatch,
    PhotoUpload,
)
from propmubi_plugins.catalog.models import control_character_problem
from propmubi_plugins.catalog.state import Ctx

__all__ = ["ALT_TEXT_MAX", "GALLERY_MAX", "can_manage", "can_view", "check_alt_text", "delete",
           "gallery", "gallery_access", "manage_access", "photo", "update", "upload"]

log = logging.getLogger("propmubi.catalog.media")


# -------------------------------------------------------------------------------------------------
# Who may see and change what
# -------------------------------------------------------------------------------------------------


def can_manage(actor: Actor | None, access: Mapping[str, Any]) -> bool:
    """Staff, or the builder who owns the project."""
    if actor is None:
        return False
    owner = access.get("owner_user_id")
    return actor.is_staff or (actor.kind == "user" and owner is not None
                              and actor.id == str(owner))


def can_view(actor: Actor | None, access: Mapping[str, Any]) -> bool:
    """Anyone for a published project; its managers otherwise."""
    return access["moderation"] == "published" or can_manage(actor, access)


def _require_manager(actor: Actor, access: Mapping[str, Any] | None, what: str) -> None:
    if access is None or not can_view(actor, access):
        # Unpublished projects are not disclosed to other builders.
        raise NotFound(f"no such {what}")
    if not can_manage(actor, access):
        raise Forbidden("only the project's builder or staff may change its photos")


async def _access(ctx: Ctx, project_id: uuid.UUID | None, unit_id: uuid.UUID | None
                  ) -> dict[str, Any] | None:
    if unit_id is not None:
        return await store.unit_access(ctx.db, unit_id)
    return await store.project_access(ctx.db, project_id)  # type: ignore[arg-type]


async def gallery_access(ctx: Ctx, actor: Actor | None, project_id: uuid.UUID | None = None,
                         unit_id: uuid.UUID | None = None) -> dict[str, Any]:
    """The project (and unit) a gallery belongs to, if the actor may see it.

    :raises NotFound: no such project or unit, or one the actor may not see.
    """
    access = await _access(ctx, project_id, unit_id)
    if access is None or not can_view(actor, access):
        raise NotFound(f"no such {'unit' if unit_id is not None else 'project'}")
    return access


async def manage_access(ctx: Ctx, actor: Actor, project_id: uuid.UUID | None = None,
                        unit_id: uuid.UUID | None = None) -> dict[str, Any]:
    """Like :func:`gallery_access`, for changes: 403 for a visible project of someone else.

    Routes call it before reading an upload's body; its answer is :func:`upload`'s ``access``.
    """
    access = await _access(ctx, project_id, unit_id)
    _require_manager(actor, access, "unit" if unit_id is not None else "project")
    await _may_change(ctx, actor, access)  # type: ignore[arg-type]
    return access  # type: ignore[return-value]


async def _may_change(ctx: Ctx, actor: Actor, project: Mapping[str, Any]) -> None:
    """A builder's KYC is verified and the project is not in review."""
    await rules.require_verified_builder(ctx, ctx.db, actor)
    rules.refuse_in_review(actor, dict(project), ["photos"])


# -------------------------------------------------------------------------------------------------
# Uploads
# -------------------------------------------------------------------------------------------------


def check_alt_text(value: str | None) -> str:
    """The trimmed alternative text.

    :raises ValidationFailed: naming ``alt_text`` when missing, blank or too long.
    """
    text = (value or "").strip()
    if not text:
        raise ValidationFailed([FieldError("body", "alt_text", "required: describe the photo "
                                           "for people who cannot see it")])
    if len(text) > ALT_TEXT_MAX:
        raise ValidationFailed([FieldError(
            "body", "alt_text", f"at most {ALT_TEXT_MAX} characters, got {len(text)}")])
    problem = control_character_problem(text)
    if problem:
        raise ValidationFailed([FieldError("body", "alt_text", problem)])
    return text


async def _process(ctx: Ctx, data: bytes) -> images.ProcessedImage:
    async with ctx.state.slots:
        try:
            return await asyncio.to_thread(images.process, data,
                                           ctx.settings.max_image_pixels)
        except images.UnsupportedImage as exc:
            raise UnsupportedMediaType(f"file: {exc}") from None
        except images.BadImage as exc:
            raise ValidationFailed([FieldError("body", "file", str(exc))]) from None


def _keys(project_id: uuid.UUID, unit_id: uuid.UUID | None, photo_id: uuid.UUID,
          processed: images.ProcessedImage) -> dict[str, str]:
    # Everything of a project lives under projects/<id>/ (one prefix deletion removes it);
    # names carry a digest of their bytes, so an object at a key never changes.
    folder = f"projects/{project_id}/"
    if unit_id is not None:
        folder += f"units/{unit_id}/"
    folder += f"photos/{photo_id}/"
    keys = {}
    for name in ("original", "web", "thumb"):
        rendition: images.Rendition = getattr(processed, name)
        digest = hashlib.sha256(rendition.data).hexdigest()[:16]
        keys[name] = f"{folder}{name}-{digest}.{rendition.extension}"
    return keys


async def _remove(storage: Storage, keys: list[str]) -> None:
    """Delete objects, logging (not raising) failures: used on paths already failing."""
    for key in keys:
        try:
            await storage.delete(key)
        except Exception:
            log.warning("could not delete media object %s", key, exc_info=True)


async def upload(ctx: Ctx, actor: Actor, access: Mapping[str, Any], data: PhotoUpload
                 ) -> dict[str, Any]:
    """Check, convert, store and record an uploaded photo; the new photo's row.

    :param access: from :func:`manage_access` (the project, and the unit for a unit gallery).
    :raises UnsupportedMediaType: not a JPEG, PNG or WebP by content.
    :raises ValidationFailed: a broken or over-large image (field ``file``).
    :raises Conflict: the gallery is full.
    :raises NotFound: the project or unit was deleted meanwhile.
    """
    storage = ctx.storage
    project_id: uuid.UUID = access["project_id"]
    unit_id: uuid.UUID | None = access.get("unit_id")
    processed = await _process(ctx, data.data)
    photo_id = uuid7()
    keys = _keys(project_id, unit_id, photo_id, processed)
    written: list[str] = []
    try:
        for name, key in keys.items():
            rendition: images.Rendition = getattr(processed, name)
            await storage.put(key, rendition.data, rendition.content_type)
            written.append(key)
        async with ctx.db.transaction() as tx:
            project = await store.lock_project(tx, project_id)
            if project is None:
                raise NotFound("no such project")
            rules.refuse_in_review(actor, project, ["photos"])  # submitted meanwhile
            size = await store.gallery_size(tx, project_id, unit_id)
            if size >= GALLERY_MAX:
                raise Conflict(f"a gallery holds at most {GALLERY_MAX} photos; delete some first")
            at = size if data.position is None else min(data.position, size)
            await store.make_room(tx, project_id, unit_id, at)
            try:
                row = await store.insert(tx, {
                    "id": photo_id, "project_id": project_id, "unit_id": unit_id,
                    "position": at, "alt_text": data.alt_text,
                    "original_key": keys["original"], "web_key": keys["web"],
                    "thumb_key": keys["thumb"], "content_type": processed.original.content_type,
                    "width": processed.original.width, "height": processed.original.height,
                    "bytes": len(data.data), "sha256": hashlib.sha256(data.data).hexdigest()})
            except ForeignKeyViolation:
                raise NotFound("no such unit") from None
            await _changed(ctx, tx, project, actor)
    except BaseException:
        await asyncio.shield(_remove(storage, written))
        raise
    return row


async def _changed(ctx: Ctx, tx: Tx, project: Mapping[str, Any], actor: Actor) -> None:
    # ``catalog.project_updated`` (photos), and the cached search and feed answers of the
    # project's city go stale at commit: a hit's cover is the first photo of the gallery.
    await rules.project_changed(ctx, tx, dict(project), ["photos"], actor)


# -------------------------------------------------------------------------------------------------
# Galleries
# -------------------------------------------------------------------------------------------------


async def gallery(ctx: Ctx, actor: Actor | None, project_id: uuid.UUID | None = None,
                  unit_id: uuid.UUID | None = None) -> list[dict[str, Any]]:
    """A project's own gallery (``project_id``) or a unit's (``unit_id``), in order.

    :raises NotFound: no such project or unit, or one the actor may not see.
    """
    access = await gallery_access(ctx, actor, project_id=project_id, unit_id=unit_id)
    return await store.gallery(ctx.db, access["project_id"], access.get("unit_id"))


async def photo(ctx: Ctx, actor: Actor | None, photo_id: uuid.UUID, *, manage: bool = False
                ) -> dict[str, Any]:
    """A photo the actor may see (``manage``: may change).

    :raises NotFound: no such photo, or one the actor may not see.
    :raises Forbidden: visible, but not the actor's to change.
    """
    row = await store.photo(ctx.db, photo_id)
    if manage:
        _require_manager(actor, row, "photo")  # type: ignore[arg-type]
        await _may_change(ctx, actor, row)  # type: ignore[arg-type]
    elif row is None or not can_view(actor, row):
        raise NotFound("no such photo")
    return row  # type: ignore[return-value]


async def _locked(tx: Tx, actor: Actor, current: Mapping[str, Any]
                  ) -> tuple[dict[str, Any], dict[str, Any]]:
    """The photo's project, locked for the change, and the photo's row read under that lock;
    404 when either went since ``current`` was read, 409 for a builder when it went to
    review."""
    project = await store.lock_project(tx, current["project_id"])
    row = await store.photo_for_update(tx, current["id"]) if project else None
    if project is None or row is None:
        raise NotFound("no such photo")
    rules.refuse_in_review(actor, project, ["photos"])
    return project, row


async def update(ctx: Ctx, actor: Actor, photo_id: uuid.UUID, data: PhotoPatch
                 ) -> dict[str, Any]:
    """Change a photo's alternative text and/or its place in the gallery; the photo's row."""
    current = await photo(ctx, actor, photo_id, manage=True)
    async with ctx.db.transaction() as tx:
        project, row = await _locked(tx, actor, current)
        if data.alt_text is not None:
            await store.set_alt_text(tx, photo_id, check_alt_text(data.alt_text))
        if data.position is not None:
            size = await store.gallery_size(tx, row["project_id"], row["unit_id"])
            target = min(data.position, size - 1)
            if target != row["position"]:
                await store.move(tx, row, target)
        await _changed(ctx, tx, project, actor)
    return await store.photo(ctx.db, photo_id)  # type: ignore[return-value]


async def delete(ctx: Ctx, actor: Actor, photo_id: uuid.UUID) -> None:
    """Remove a photo: its row (closing the gap in its gallery), then its objects."""
    current = await photo(ctx, actor, photo_id, manage=True)
    async with ctx.db.transaction() as tx:
        project, row = await _locked(tx, actor, current)
        await store.delete(tx, photo_id)
        await store.close_gap(tx, row["project_id"], row["unit_id"], row["position"])
        await _changed(ctx, tx, project, actor)
    # After the commit: a row never points at a missing object; a failure here leaves an
    # orphan under the project's prefix, which the project's deletion still removes.
    await _remove(ctx.storage, [row["original_key"], row["web_key"], row["thumb_key"]])
