"""Console pages of the catalogue: the builder directory, the moderation queue with its public
preview and Publish / Reject decisions, project pages with a unit grid per tower, and photo
gallery management; plus the "Projects waiting for review" dashboard card.

Forms post and redirect (POST-redirect-GET) and work without JavaScript. Their fields are read
with :func:`propmubi.console.forms.read_form` into the classes of ``models.py`` and
``media/models.py``; a refused form re-renders its page with status 422 and each message next
to its field. Changes go through the catalogue's service and media functions as
``Actor.staff(<staff id>)`` (recorded as ``staff:<id>``), so the rules, the moderation history
and the events are the API's own.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from aiohttp import web

from propmubi.console.forms import FormErrors, read_form
from propmubi.console.pages import (
    cursor_of,
    flash,
    parse_cursor,
    path_uuid,
    render,
    see_other,
    staff_actor,
    staff_id,
)
from propmubi.errors import (
    Conflict,
    FieldError,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    UnsupportedMediaType,
    ValidationFailed,
)
from propmubi.types import ConsolePage, ConsoleWidget
from propmubi_plugins.catalog import service, store
from propmubi_plugins.catalog.media import service as media
from propmubi_plugins.catalog.media.models import (
    ALT_TEXT_MAX,
    GALLERY_MAX,
    PhotoEditForm,
    PhotoUpload,
    PhotoUploadForm,
)
from propmubi_plugins.catalog.models import ReasonIn, RejectForm
from propmubi_plugins.catalog.state import Ctx
from propmubi_plugins.catalog.units import service as units_service
from propmubi_plugins.catalog.units import store as units_store

BUILDERS = "/console/builders"
MODERATION = "/console/moderation"
PROJECTS = "/console/projects"
PAGE_SIZE = 25
#: Projects of one builder listed on its page (newest first).
BUILDER_PROJECTS_MAX = 200

#: Unit statuses in grid order, with their legend text and cell colours (background, border,
#: status text). Each text colour reads at 4.5:1 or better on its background (WCAG AA).
UNIT_STATUS_STYLE = {
    "available": ("Available", "#dff3e4", "#2e7d32", "#1b5e20"),
    "held": ("Held", "#fff1cc", "#b26a00", "#7a4a00"),
    "booked": ("Booked", "#dde8ff", "#1e4fd8", "#1a44c2"),
    "sold": ("Sold", "#e6e7ea", "#5f6673", "#4f5666"),
    "blocked": ("Blocked", "#fde2e1", "#b3261e", "#9c1f18"),
}
STATUS_LABELS = {"upcoming": "Upcoming", "under_construction": "Under construction",
                 "ready": "Ready to move in"}
MODERATION_LABELS = {"draft": "Draft", "in_review": "In review", "published": "Published",
                     "rejected": "Rejected"}



# --------------------------------------------------------------------------------------------
# Formatting
# --------------------------------------------------------------------------------------------


def _trim(value: Decimal) -> str:
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return text


def money(minor: int | None, currency: str = "INR") -> str:
    """A price in minor units as staff read it: ``₹85 L``, ``₹1.25 Cr`` for rupees, else
    ``12,500.00 USD``."""
    if minor is None:
        return "—"
    if currency.strip() == "INR":
        rupees = Decimal(minor) / 100
        if rupees >= 10_000_000:
            return f"₹{_trim(rupees / 10_000_000)} Cr"
        if rupees >= 100_000:
            return f"₹{_trim(rupees / 100_000)} L"
        return f"₹{rupees:,.0f}"
    return f"{Decimal(minor) / 100:,.2f} {currency}"


def price_range(project: dict[str, Any]) -> str:
    """The project's price range (of units still for sale)."""
    low, high, currency = project["price_min"], project["price_max"], project["currency"]
    if low is None:
        return "no units for sale"
    if low == high:
        return money(low, currency)
    return f"{money(low, currency)} \N{EN DASH} {money(high, currency)}"


def age(since: dt.datetime | None, now: dt.datetime | None = None) -> str:
    """How long ago ``since`` was, roughly (``3 d 4 h``, ``2 h 5 min``, ``4 min``)."""
    if since is None:
        return "—"
    seconds = max(0, int(((now or dt.datetime.now(dt.UTC)) - since).total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min"


def when(at: dt.datetime | None) -> str:
    """A timestamp as ``2026-11-21 14:03 UTC``."""
    return at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC") if at else "—"


_HELPERS = {"money": money, "price_range": price_range, "age": age, "when": when,
            "status_labels": STATUS_LABELS, "moderation_labels": MODERATION_LABELS,
            "unit_styles": UNIT_STATUS_STYLE}


def _page(name: str, request: web.Request, context: dict[str, Any], status: int = 200
          ) -> web.Response:
    return render(name, request, {**_HELPERS, **context}, status=status)


# --------------------------------------------------------------------------------------------
# Builders
# --------------------------------------------------------------------------------------------


async def builders(request: web.Request, ctx: Ctx) -> web.Response:
    """Builders, newest first, searchable by the start of their name (keyset pages)."""
    q = request.query.get("q", "").strip()[:100]
    rows = await store.builder_directory(ctx.db, q or None,
                                         parse_cursor(request.query.get("cursor")),
                                         PAGE_SIZE + 1)
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    next_cursor = cursor_of(rows[-1]["created_at"], rows[-1]["id"]) if more else None
    return _page("catalog/builders.html", request,
                 {"rows": rows, "q": q, "next_cursor": next_cursor, "prefix": BUILDERS})


async def builder_detail(request: web.Request, ctx: Ctx) -> web.Response:
    """One builder: its profile, owner and projects with their moderation states."""
    builder_id = path_uuid(request, "id", "builder")
    row = await store.builder(ctx.db, builder_id)
    if row is None:
        raise NotFound("no such builder")
    projects = await store.projects_of_builder(ctx.db, builder_id, BUILDER_PROJECTS_MAX + 1,
                                               None, None)
    return _page("catalog/builder.html", request, {
        "builder": row, "projects": projects[:BUILDER_PROJECTS_MAX],
        "more_projects": len(projects) > BUILDER_PROJECTS_MAX})


# --------------------------------------------------------------------------------------------
# Moderation
# --------------------------------------------------------------------------------------------


async def queue(request: web.Request, ctx: Ctx) -> web.Response:
    """Projects waiting for review, oldest submission first (keyset pages)."""
    rows = await store.review_queue(ctx.db, parse_cursor(request.query.get("cursor")),
                                    PAGE_SIZE + 1)
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    next_cursor = cursor_of(rows[-1]["submitted_at"], rows[-1]["id"]) if more else None
    return _page("catalog/queue.html", request, {
        "rows": rows, "next_cursor": next_cursor, "first_page": "cursor" not in request.query,
        "stats": await store.review_stats(ctx.db), "prefix": MODERATION})


async def _project_view(request: web.Request, ctx: Ctx, project_id: uuid.UUID
                        ) -> dict[str, Any]:
    """Everything a project's console pages show."""
    actor = staff_actor(request)
    project = await service.project(ctx, actor, str(project_id))
    towers = await units_service.towers(ctx, actor, project_id)
    units = await units_store.grid_units(ctx.db, project_id)
    photos = await media.gallery(ctx, actor, project_id=project_id)
    storage = ctx.storage
    return {
        "project": project,
        "builder": await store.builder(ctx.db, project["builder_id"]),
        "towers": _grid(towers, units),
        "unit_summary": _unit_summary(units),
        "photos": [{**p, "thumb_url": storage.url(p["thumb_key"]),
                    "web_url": storage.url(p["web_key"])} for p in photos],
        "reviews": await service.reviews(ctx, actor, project_id),
        "map_url": (f"https://www.openstreetmap.org/?mlat={project['lat']:.6f}"
                    f"&mlon={project['lng']:.6f}#map=17/{project['lat']:.6f}/"
                    f"{project['lng']:.6f}"),
        "grid_truncated": len(units) >= units_store.GRID_MAX,
    }


def _unit_summary(units: Iterable[dict[str, Any]]) -> dict[str, Any]:
    by_status = dict.fromkeys(UNIT_STATUS_STYLE, 0)
    by_type: dict[str, int] = {}
    for unit in units:
        by_status[unit["status"]] = by_status.get(unit["status"], 0) + 1
        by_type[unit["unit_type"]] = by_type.get(unit["unit_type"], 0) + 1
    return {"by_status": by_status, "by_type": sorted(by_type.items()),
            "total": sum(by_status.values())}


def _grid(towers: list[dict[str, Any]], units: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each tower with its floors, top floor first; each floor with its units by code.

    Floors 1..the tower's floor count always appear (an empty floor shows as such), and so
    does any other floor that has units (ground floor 0, basements)."""
    by_tower: dict[uuid.UUID, dict[int, list[dict[str, Any]]]] = {}
    for unit in units:
        by_tower.setdefault(unit["tower_id"], {}).setdefault(unit["floor"], []).append(unit)
    grid = []
    for tower in towers:
        floors = by_tower.get(tower["id"], {})
        numbers = sorted(set(range(1, tower["floors"] + 1)) | set(floors), reverse=True)
        counts = dict.fromkeys(UNIT_STATUS_STYLE, 0)
        for floor_units in floors.values():
            for unit in floor_units:
                counts[unit["status"]] = counts.get(unit["status"], 0) + 1
        grid.append({**tower, "counts": counts,
                     "rows": [{"floor": n, "units": floors.get(n, [])} for n in numbers]})
    return grid


async def _preview(request: web.Request, ctx: Ctx, project_id: uuid.UUID,
                   errors: FormErrors | None = None, reason: str = "", status: int = 200
                   ) -> web.Response:
    view = await _project_view(request, ctx, project_id)
    return _page("catalog/preview.html", request,
                 {**view, "errors": errors or FormErrors(), "reason": reason}, status=status)


async def preview(request: web.Request, ctx: Ctx) -> web.Response:
    """A project as the public would see it, its history and the Publish / Reject forms."""
    return await _preview(request, ctx, path_uuid(request, "id", "project"))


async def publish(request: web.Request, ctx: Ctx) -> web.Response:
    """Publish a project in review: it becomes public."""
    project_id = path_uuid(request, "id", "project")
    try:
        await service.publish_project(ctx, staff_actor(request), project_id)
    except Conflict as exc:
        flash(request, f"Nothing changed: {exc.detail}.", "error")
        return see_other(f"{MODERATION}/{project_id}")
    ctx.log.info("console: staff %s published project %s", staff_id(request), project_id)
    flash(request, "Project published.", "success")
    return see_other(f"{PROJECTS}/{project_id}")


async def reject(request: web.Request, ctx: Ctx) -> web.Response:
    """Reject a project in review (a reason is required: the builder reads it)."""
    project_id = path_uuid(request, "id", "project")
    form, errors = await read_form(request, RejectForm)
    if form is None:
        typed = str((await request.post()).get("reason", "")).strip()
        return await _preview(request, ctx, project_id, errors=errors, reason=typed,
                              status=422)
    try:
        await service.reject_project(ctx, staff_actor(request), project_id,
                                     ReasonIn(reason=form.reason))
    except Conflict as exc:
        flash(request, f"Nothing changed: {exc.detail}.", "error")
        return see_other(f"{MODERATION}/{project_id}")
    ctx.log.info("console: staff %s rejected project %s", staff_id(request), project_id)
    flash(request, "Project rejected.", "success")
    return see_other(f"{MODERATION}/{project_id}")


# --------------------------------------------------------------------------------------------
# Projects and their galleries
# --------------------------------------------------------------------------------------------


async def _project_page(request: web.Request, ctx: Ctx, project_id: uuid.UUID,
                        errors: FormErrors | None = None, error_form: str | None = None,
                        status: int = 200) -> web.Response:
    """The project page; ``errors`` belong to the form named ``error_form`` (``upload``, or
    ``photo-<id>`` for a photo's form)."""
    view = await _project_view(request, ctx, project_id)
    return _page("catalog/project.html", request,
                 {**view, "alt_max": ALT_TEXT_MAX, "gallery_max": GALLERY_MAX,
                  "errors": errors or FormErrors(), "error_form": error_form}, status=status)


async def project_page(request: web.Request, ctx: Ctx) -> web.Response:
    """A project in any moderation state: details, the unit grid, the photo gallery."""
    return await _project_page(request, ctx, path_uuid(request, "id", "project"))


def _gallery_url(project_id: uuid.UUID) -> str:
    return f"{PROJECTS}/{project_id}#photos"


def _problem_text(exc: ValidationFailed) -> str:
    errors = exc.extra.get("errors") or []
    return "; ".join(f"{e['field']}: {e['message']}" for e in errors) or str(exc.detail)


async def _photo_of_page(request: web.Request, ctx: Ctx) -> tuple[uuid.UUID, uuid.UUID]:
    """The page's project and photo ids; 404 when the photo is not this project's."""
    project_id = path_uuid(request, "id", "project")
    photo_id = path_uuid(request, "photo", "photo")
    photo = await media.photo(ctx, staff_actor(request), photo_id, manage=True)
    if photo["project_id"] != project_id:
        raise NotFound("no such photo")
    return project_id, photo_id


async def update_photo(request: web.Request, ctx: Ctx) -> web.Response:
    """Change a photo's alternative text and/or its place in the gallery."""
    project_id, photo_id = await _photo_of_page(request, ctx)
    form, errors = await read_form(request, PhotoEditForm)
    if form is None:
        return await _project_page(request, ctx, project_id, errors=errors,
                                   error_form=f"photo-{photo_id}", status=422)
    try:
        await media.update(ctx, staff_actor(request), photo_id, form.patch())
        flash(request, "Photo updated.", "success")
    except ValidationFailed as exc:
        flash(request, f"Nothing changed: {_problem_text(exc)}.", "error")
    except (Conflict, Forbidden) as exc:
        flash(request, f"Nothing changed: {exc.detail}.", "error")
    return see_other(_gallery_url(project_id))


async def delete_photo(request: web.Request, ctx: Ctx) -> web.Response:
    """Remove a photo from the gallery (and its stored files)."""
    project_id, photo_id = await _photo_of_page(request, ctx)
    try:
        await media.delete(ctx, staff_actor(request), photo_id)
        flash(request, "Photo deleted.", "success")
    except (Conflict, Forbidden) as exc:
        flash(request, f"Nothing changed: {exc.detail}.", "error")
    return see_other(_gallery_url(project_id))


#: Bytes of an upload form beyond its photo: the alternative text, the place, the CSRF token
#: and the multipart framing.
UPLOAD_FORM_SLACK = 64 * 1024


def upload_body_limit(ctx: Ctx) -> int:
    """The body the upload form may send: a photo of ``plugins.catalog.max_upload_bytes`` (the
    API's limit too) and its other fields; the edge answers 413 beyond."""
    return ctx.settings.max_upload_bytes + UPLOAD_FORM_SLACK


def _mib(size: int) -> str:
    return f"{size / 1024 / 1024:.3g} MiB"


async def upload_photo(request: web.Request, ctx: Ctx) -> web.Response:
    """Add a photo to the project's gallery (a multipart form: file, alt text, place)."""
    project_id = path_uuid(request, "id", "project")
    actor = staff_actor(request)
    access = await media.manage_access(ctx, actor, project_id=project_id)
    # The text fields as every console form; the file part is read apart, up to the limit.
    form, errors = await read_form(request, PhotoUploadForm)
    upload = (await request.post()).get("file")
    limit = ctx.settings.max_upload_bytes
    data = b""
    if isinstance(upload, web.FileField):
        with upload.file:  # a large part is spooled to a temporary file: closed at once
            data = upload.file.read(limit + 1)
    if not isinstance(upload, web.FileField):
        errors.append(FieldError("form", "file", "choose a photo to upload"))
    elif not data:
        errors.append(FieldError("form", "file", "the file is empty"))
    elif len(data) > limit:
        errors.append(FieldError("form", "file", f"a photo may be at most {_mib(limit)}"))
    if form is None or errors:
        too_large = len(data) > limit
        return await _project_page(request, ctx, project_id, errors=errors,
                                   error_form="upload", status=413 if too_large else 422)
    position = None if form.position is None else form.position - 1
    try:
        await media.upload(ctx, actor, access, PhotoUpload(data=data, alt_text=form.alt_text,
                                                           position=position))
    except ValidationFailed as exc:
        flash(request, f"Not uploaded: {_problem_text(exc)}.", "error")
    except (Conflict, PayloadTooLarge, UnsupportedMediaType) as exc:
        flash(request, f"Not uploaded: {exc.detail}.", "error")
    else:
        flash(request, "Photo uploaded.", "success")
    return see_other(_gallery_url(project_id))


# --------------------------------------------------------------------------------------------
# Registration
# --------------------------------------------------------------------------------------------


def pages() -> list[ConsolePage]:
    """Every catalogue console page (staff; admins pass every role check)."""
    return [
        ConsolePage(path="/moderation", handler=queue, name="catalog-moderation",
                    nav_label="Moderation", nav_order=30),
        ConsolePage(path="/moderation/{id}", handler=preview, name="catalog-preview"),
        ConsolePage(path="/moderation/{id}/publish", handler=publish, name="catalog-publish",
                    method="POST"),
        ConsolePage(path="/moderation/{id}/reject", handler=reject, name="catalog-reject",
                    method="POST"),
        ConsolePage(path="/builders", handler=builders, name="catalog-builders",
                    nav_label="Builders", nav_order=40),
        ConsolePage(path="/builders/{id}", handler=builder_detail, name="catalog-builder"),
        ConsolePage(path="/projects/{id}", handler=project_page, name="catalog-project"),
        ConsolePage(path="/projects/{id}/photos", handler=upload_photo,
                    name="catalog-photo-upload", method="POST", max_body=upload_body_limit),
        ConsolePage(path="/projects/{id}/photos/{photo}", handler=update_photo,
                    name="catalog-photo-update", method="POST"),
        ConsolePage(path="/projects/{id}/photos/{photo}/delete", handler=delete_photo,
                    name="catalog-photo-delete", method="POST"),
    ]


async def _waiting(request: web.Request, ctx: Ctx) -> dict[str, Any]:
    stats = await store.review_stats(ctx.db)
    return {"count": stats["count"], "oldest": stats["oldest"],
            "waited": age(stats["oldest"]) if stats["oldest"] else None, "url": MODERATION}


def widgets() -> list[ConsoleWidget]:
    """Catalogue dashboard cards."""
    return [ConsoleWidget(name="catalog-review", title="Projects waiting for review",
                          template="catalog/widget_review.html", load=_waiting, order=30)]
