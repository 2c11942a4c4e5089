"""Photos: upload checks, EXIF stripping, thumbnails and web sizes, galleries.

An upload is checked and converted in worker threads (:mod:`propmubi_plugins.catalog.images`,
at most ``_PROCESSING_SLOTS`` at a time), its three renditions are written to the storage
backend, and only then is the row inserted, with a ``catalog.project_updated`` event
(``fields=["photos"]``) in the same transaction. A failed insert removes the objects it wrote.
Deleting a photo removes its row first and its objects after the commit; deleting a project
removes everything under ``projects/<id>/`` when ``catalog.project_deleted`` arrives, and
deleting a unit (or a tower with its units) removes ``projects/<id>/units/<unit>/`` when
``catalog.units_deleted`` arrives.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import attrs
from PIL import Image

from propmubi.config import plugin_settings
from propmubi.context import Services
from propmubi.db import ForeignKeyViolation, Tx
from propmubi.errors import (
    Conflict,
    FieldError,
    Forbidden,
    NotFound,
    UnsupportedMediaType,
    ValidationFailed,
)
from propmubi.events import Delivery, publish
from propmubi.ids import uuid7
from propmubi.web.auth import ADMIN_ROLE, Principal
from propmubi_plugins.catalog import images, media_store
from propmubi_plugins.catalog.events import ProjectUpdated
from propmubi_plugins.catalog.settings import CatalogSettings
from propmubi_plugins.catalog.storage import Storage

log = logging.getLogger("propmubi.catalog.media")

#: Longest alternative text (screen readers read it whole; a caption belongs elsewhere).
ALT_TEXT_MAX = 300
#: Photos per gallery: galleries are answered whole, without pagination.
GALLERY_MAX = 100
#: Roles that manage any project's photos (admin passes every role check anyway).
STAFF_ROLES = frozenset({"staff", ADMIN_ROLE})
_PROCESSING_SLOTS = max(1, min(4, os.cpu_count() or 1))


@attrs.define
class MediaRuntime:
    """This process's storage backend, settings and processing slots."""

    settings: CatalogSettings
    storage: Storage
    slots: asyncio.Semaphore


_RUNTIMES: dict[int, MediaRuntime] = {}


def _backend(services: Services, name: str) -> Storage:
    return services.plugins.provider("propmubi_storage_backends", name,
                                     setting="plugins.catalog.storage_backend")(services.config)


async def start(services: Services) -> None:
    """Open this process's storage backend."""
    settings: CatalogSettings = plugin_settings(services.config, "catalog", CatalogSettings)
    storage = _backend(services, settings.storage_backend)
    await storage.open()
    # Pillow's own guard, as a second line behind the check of the header in images.py.
    Image.MAX_IMAGE_PIXELS = settings.max_image_pixels
    _RUNTIMES[id(services)] = MediaRuntime(settings=settings, storage=storage,
                                           slots=asyncio.Semaphore(_PROCESSING_SLOTS))


async def stop(services: Services) -> None:
    """Close this process's storage backend."""
    rt = _RUNTIMES.pop(id(services), None)
    if rt is not None:
        await rt.storage.close()


def runtime(services: Services) -> MediaRuntime:
    """The media runtime of the process that owns ``services``."""
    try:
        return _RUNTIMES[id(services)]
    except KeyError:
        raise RuntimeError("the catalogue's media runtime is not started") from None


# -------------------------------------------------------------------------------------------------
# Who may see and change what
# -------------------------------------------------------------------------------------------------


def is_staff(principal: Principal | None) -> bool:
    return principal is not None and bool(principal.roles & STAFF_ROLES)


def can_manage(principal: Principal | None, access: Mapping[str, Any]) -> bool:
    """Staff, or the builder who owns the project."""
    if principal is None:
        return False
    owner = access.get("owner_user_id")
    return is_staff(principal) or (owner is not None and principal.subject == str(owner))


def can_view(principal: Principal | None, access: Mapping[str, Any]) -> bool:
    """Anyone for a published project; its managers otherwise."""
    return access["moderation"] == "published" or can_manage(principal, access)


def _require_manager(principal: Principal, access: Mapping[str, Any] | None, what: str) -> None:
    if access is None or not can_view(principal, access):
        # Unpublished projects are not disclosed to other builders.
        raise NotFound(f"no such {what}")
    if not can_manage(principal, access):
        raise Forbidden("only the project's builder or staff may change its photos")


async def gallery_access(services: Services, principal: Principal | None,
                         project_id: uuid.UUID | None = None,
                         unit_id: uuid.UUID | None = None) -> dict[str, Any]:
    """The project (and unit) a gallery belongs to, if the caller may see it.

    :raises NotFound: no such project or unit, or one the caller may not see.
    """
    if unit_id is not None:
        access = await media_store.unit_access(services.db, unit_id)
    else:
        access = await media_store.project_access(services.db, project_id)  # type: ignore[arg-type]
    what = "unit" if unit_id is not None else "project"
    if access is None or not can_view(principal, access):
        raise NotFound(f"no such {what}")
    return access


async def manage_access(services: Services, principal: Principal,
                        project_id: uuid.UUID | None = None,
                        unit_id: uuid.UUID | None = None) -> dict[str, Any]:
    """Like :func:`gallery_access`, for changes: 403 for a visible project of someone else."""
    if unit_id is not None:
        access = await media_store.unit_access(services.db, unit_id)
    else:
        access = await media_store.project_access(services.db, project_id)  # type: ignore[arg-type]
    _require_manager(principal, access, "unit" if unit_id is not None else "project")
    return access  # type: ignore[return-value]


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
    return text


async def _process(rt: MediaRuntime, data: bytes) -> images.ProcessedImage:
    async with rt.slots:
        try:
            return await asyncio.to_thread(images.process, data, rt.settings.max_image_pixels)
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


async def upload(services: Services, principal: Principal, access: Mapping[str, Any],
                 data: bytes, alt_text: str, position: int | None) -> dict[str, Any]:
    """Check, convert, store and record an uploaded photo; the new photo's row.

    :param access: from :func:`manage_access` (the project, and the unit for a unit gallery).
    :raises UnsupportedMediaType: not a JPEG, PNG or WebP by content.
    :raises ValidationFailed: a broken or over-large image (field ``file``).
    :raises Conflict: the gallery is full.
    :raises NotFound: the project or unit was deleted meanwhile.
    """
    rt = runtime(services)
    project_id: uuid.UUID = access["project_id"]
    unit_id: uuid.UUID | None = access.get("unit_id")
    processed = await _process(rt, data)
    photo_id = uuid7()
    keys = _keys(project_id, unit_id, photo_id, processed)
    written: list[str] = []
    try:
        for name, key in keys.items():
            rendition: images.Rendition = getattr(processed, name)
            await rt.storage.put(key, rendition.data, rendition.content_type)
            written.append(key)
        async with services.db.transaction() as tx:
            project = await media_store.lock_project(tx, project_id)
            if project is None:
                raise NotFound("no such project")
            size = await media_store.gallery_size(tx, project_id, unit_id)
            if size >= GALLERY_MAX:
                raise Conflict(f"a gallery holds at most {GALLERY_MAX} photos; delete some first")
            at = size if position is None else min(position, size)
            await media_store.make_room(tx, project_id, unit_id, at)
            try:
                row = await media_store.insert(tx, {
                    "id": photo_id, "project_id": project_id, "unit_id": unit_id,
                    "position": at, "alt_text": alt_text, "original_key": keys["original"],
                    "web_key": keys["web"], "thumb_key": keys["thumb"],
                    "content_type": processed.original.content_type,
                    "width": processed.original.width, "height": processed.original.height,
                    "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()})
            except ForeignKeyViolation:
                raise NotFound("no such unit") from None
            await _changed(tx, project, principal)
    except BaseException:
        await asyncio.shield(_remove(rt.storage, written))
        raise
    return row


async def _changed(tx: Tx, project: Mapping[str, Any], principal: Principal) -> None:
    await publish(tx, ProjectUpdated(project_id=project["id"], builder_id=project["builder_id"],
                                     fields=["photos"], moderation=project["moderation"]),
                  actor=f"user:{principal.subject}")


# -------------------------------------------------------------------------------------------------
# Galleries
# -------------------------------------------------------------------------------------------------


async def gallery(services: Services, project_id: uuid.UUID, unit_id: uuid.UUID | None
                  ) -> list[dict[str, Any]]:
    """The gallery in order (access already checked)."""
    return await media_store.gallery(services.db, project_id, unit_id)


async def photo_for(services: Services, principal: Principal | None, photo_id: uuid.UUID,
                    manage: bool) -> dict[str, Any]:
    """A photo the caller may see (``manage``: may change).

    :raises NotFound: no such photo, or one the caller may not see.
    :raises Forbidden: visible, but not the caller's to change.
    """
    row = await media_store.photo(services.db, photo_id)
    if manage:
        _require_manager(principal, row, "photo")  # type: ignore[arg-type]
    elif row is None or not can_view(principal, row):
        raise NotFound("no such photo")
    return row  # type: ignore[return-value]


async def update(services: Services, principal: Principal, photo_id: uuid.UUID,
                 alt_text: str | None, position: int | None) -> dict[str, Any]:
    """Change a photo's alternative text and/or its place in the gallery; the photo's row."""
    current = await photo_for(services, principal, photo_id, manage=True)
    async with services.db.transaction() as tx:
        project = await media_store.lock_project(tx, current["project_id"])
        row = await media_store.photo_for_update(tx, photo_id) if project else None
        if row is None:
            raise NotFound("no such photo")
        if alt_text is not None:
            await media_store.set_alt_text(tx, photo_id, check_alt_text(alt_text))
        if position is not None:
            size = await media_store.gallery_size(tx, row["project_id"], row["unit_id"])
            target = min(position, size - 1)
            if target != row["position"]:
                await media_store.move(tx, row, target)
        await _changed(tx, project, principal)  # type: ignore[arg-type]
    return await media_store.photo(services.db, photo_id)  # type: ignore[return-value]


async def delete(services: Services, principal: Principal, photo_id: uuid.UUID) -> None:
    """Remove a photo: its row (closing the gap in its gallery), then its objects."""
    current = await photo_for(services, principal, photo_id, manage=True)
    async with services.db.transaction() as tx:
        project = await media_store.lock_project(tx, current["project_id"])
        row = await media_store.photo_for_update(tx, photo_id) if project else None
        if row is None:
            raise NotFound("no such photo")
        await media_store.delete(tx, photo_id)
        await media_store.close_gap(tx, row["project_id"], row["unit_id"], row["position"])
        await _changed(tx, project, principal)  # type: ignore[arg-type]
    # After the commit: a row never points at a missing object; a failure here leaves an
    # orphan under the project's prefix, which the project's deletion still removes.
    await _remove(runtime(services).storage,
                  [row["original_key"], row["web_key"], row["thumb_key"]])


# -------------------------------------------------------------------------------------------------
# Events
# -------------------------------------------------------------------------------------------------


async def on_project_deleted(tx: Tx, delivery: Delivery) -> None:
    """Remove every object of the deleted project (idempotent: a second run finds none)."""
    project_id = delivery.event.project_id
    removed = await runtime(delivery.services).storage.delete_prefix(f"projects/{project_id}/")
    log.info("removed %d media objects of deleted project %s", removed, project_id)


async def on_units_deleted(tx: Tx, delivery: Delivery) -> None:
    """Remove the objects of each deleted unit's gallery (their rows went with the units)."""
    event = delivery.event
    storage = runtime(delivery.services).storage
    removed = 0
    for unit_id in event.unit_ids:
        removed += await storage.delete_prefix(f"projects/{event.project_id}/units/{unit_id}/")
    log.info("removed %d media objects of %d deleted unit(s) of project %s", removed,
             len(event.unit_ids), event.project_id)


def handlers() -> Mapping[str, Callable[..., Awaitable[Any]]]:
    """Event type -> handler (deleted projects' and units' objects are removed)."""
    return {"catalog.project_deleted": on_project_deleted,
            "catalog.units_deleted": on_units_deleted}

