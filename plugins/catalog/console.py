"""Console pages of the catalogue: the builder directory (edit a builder, set its verified
badge by hand with a reason), the moderation queue with its public preview and Publish / Reject
decisions, project pages with a unit grid per tower, Unpublish (with a reason) and photo
gallery management, unit pages that change a unit's status; plus the "Projects waiting for
review" dashboard card.

Forms post and redirect (POST-redirect-GET) and work without JavaScript. Their fields are read
with :func:`propmubi.console.forms.read_form` into the classes of ``models.py``,
``units/models.py`` and ``media/models.py``; a refused form re-renders its page with status
422 and each message next to its field. Changes go through the catalogue's service and media
functions as ``Actor.staff(<staff id>)`` (recorded as ``staff:<id>``), so the rules, the
moderation history and the events are the API's own.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from aiohttp import web

from propmubi.console.formatting import when
from propmubi.console.forms import FormErrors, read_form
from propmubi.console.names import actor_names
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
from propmubi_plugins.catalog.models import (
    BuilderEditForm,
    ReasonIn,
    RejectForm,
    UnpublishForm,
    VerificationForm,
)
from propmubi_plugins.catalog.state import Ctx
from propmubi_plugins.catalog.units import service as units_service
from propmubi_plugins.catalog.units import store as units_store
from propmubi_plugins.catalog.units.models import UnitStatusIn

BUILDERS = "/console/builders"
MODERATION = "/console/moderation"
PROJECTS = "/console/projects"
UNITS = "/console/units"
PAGE_SIZE = 25
#: Projects of one builder listed on its page (newest first).
BUILDER_PROJECTS_MAX = 200
#: Changes of its verified badge shown on a builder's page (newest first).
VERIFICATIONS_SHOWN = 50

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


def tower_title(name: str) -> str:
    """A tower's heading: ``A`` -> "Tower A", while "Tower A" or "Towers 1-2" stay as named."""
    return name if name.lower().startswith("tower") else f"Tower {name}"


_HELPERS = {"money": money, "price_range": price_range, "age": age, "when": when,
            "status_labels": STATUS_LABELS, "moderation_labels": MODERATION_LABELS,
            "unit_styles": UNIT_STATUS_STYLE, "tower_title": tower_title}


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


#: The fields of the builder edit form (``BuilderEditForm``), in the page's order.
BUILDER_FIELDS = ("name", "rera_promoter_id", "website", "description")


async def _builder_page(request: web.Request, ctx: Ctx, builder_id: uuid.UUID,
                        errors: FormErrors | None = None, error_form: str | None = None,
                        typed: dict[str, str] | None = None, status: int = 200
                        ) -> web.Response:
    """The builder page; ``errors`` belong to the form named ``error_form`` (``edit`` or
    ``verification``), re-shown with what was ``typed``."""
    row = await store.builder(ctx.db, builder_id)
    if row is None:
        raise NotFound("no such builder")
    projects = await store.projects_of_builder(ctx.db, builder_id, BUILDER_PROJECTS_MAX + 1,
                                               None, None)
    owner = f"user:{row['owner_user_id']}" if row["owner_user_id"] else None
    verifications = await store.verifications(ctx.db, builder_id, VERIFICATIONS_SHOWN)
    names = await actor_names(request.app, [owner, *(v["actor"] for v in verifications)])
    values = {key: row[key] or "" for key in BUILDER_FIELDS}
    if error_form == "edit" and typed is not None:
        values = typed
    return _page("catalog/builder.html", request, {
        "builder": row, "projects": projects[:BUILDER_PROJECTS_MAX],
        "more_projects": len(projects) > BUILDER_PROJECTS_MAX,
        "owner_name": names[owner] if owner else None,
        "verifications": verifications, "actor_names": names,
        "values": values, "errors": errors or FormErrors(), "error_form": error_form,
        "reason": (typed or {}).get("reason", "") if error_form == "verification" else ""},
        status=status)


async def builder_detail(request: web.Request, ctx: Ctx) -> web.Response:
    """One builder: its profile, owner and projects with their moderation states, and the
    forms that edit it and set its verified badge."""
    return await _builder_page(request, ctx, path_uuid(request, "id", "builder"))


async def _typed(request: web.Request, *fields: str) -> dict[str, str]:
    """What was typed in a refused form's text fields, to show it again."""
    posted = await request.post()
    return {key: str(posted.get(key, "")).strip() for key in fields}


async def edit_builder(request: web.Request, ctx: Ctx) -> web.Response:
    """Change a builder's profile (every field as typed: empty optional fields clear)."""
    builder_id = path_uuid(request, "id", "builder")
    form, errors = await read_form(request, BuilderEditForm)
    if form is None:
        return await _builder_page(request, ctx, builder_id, errors=errors, error_form="edit",
                                   typed=await _typed(request, *BUILDER_FIELDS), status=422)
    try:
        await service.update_builder(ctx, staff_actor(request), builder_id, form.patch())
    except (Conflict, Forbidden) as exc:
        flash(request, f"Nothing changed: {exc.detail}.", "error")
        return see_other(f"{BUILDERS}/{builder_id}")
    ctx.log.info("console: staff %s edited builder %s", staff_id(request), builder_id)
    flash(request, "Builder profile saved.", "success")
    return see_other(f"{BUILDERS}/{builder_id}")


async def _set_verified(request: web.Request, ctx: Ctx, verified: bool) -> web.Response:
    builder_id = path_uuid(request, "id", "builder")
    form, errors = await read_form(request, VerificationForm)
    if form is None:
        return await _builder_page(request, ctx, builder_id, errors=errors,
                                   error_form="verification",
                                   typed=await _typed(request, "reason"), status=422)
    try:
        await service.set_builder_verified(ctx, staff_actor(request), builder_id, verified,
                                           ReasonIn(reason=form.reason))
    except (Conflict, Forbidden) as exc:
        flash(request, f"Nothing changed: {exc.detail}.", "error")
        return see_other(f"{BUILDERS}/{builder_id}")
    flash(request, "Builder marked verified." if verified else "Verification removed.",
          "success")
    return see_other(f"{BUILDERS}/{builder_id}")


async def verify_builder(request: web.Request, ctx: Ctx) -> web.Response:
    """Give a builder the verified badge by hand (a reason is required; it is kept in the
    builder's verification history)."""
    return await _set_verified(request, ctx, True)


async def unverify_builder(request: web.Request, ctx: Ctx) -> web.Response:
    """Take a builder's verified badge away by hand (a reason is required; it is kept in
    the builder's verification history)."""
    return await _set_verified(request, ctx, False)


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
    reviews = await service.reviews(ctx, actor, project_id)
    return {
        "project": project,
        "builder": await store.builder(ctx.db, project["builder_id"]),
        "towers": _grid(towers, units),
        "unit_summary": _unit_summary(units),
        "photos": [{**p, "thumb_url": storage.url(p["thumb_key"]),
                    "web_url": storage.url(p["web_key"])} for p in photos],
        "reviews": reviews,
        "actor_names": await actor_names(request.app, (r["actor"] for r in reviews)),
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

    Floors 1..the tower's floor count always appear, and so does any other floor that has
    units (ground floor 0, basements). A run of adjacent empty floors is one row
    (``floor`` its top, ``low`` its bottom): a 40-storey tower with units on three floors
    reads as such, not as forty rows."""
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
        rows: list[dict[str, Any]] = []
        for n in numbers:
            here = floors.get(n, [])
            if not here and rows and not rows[-1]["units"] and rows[-1]["low"] == n + 1:
                rows[-1]["low"] = n
            else:
                rows.append({"floor": n, "low": n, "units": here})
        grid.append({**tower, "counts": counts, "rows": rows})
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
        typed = await _typed(request, "reason")
        return await _preview(request, ctx, project_id, errors=errors,
                              reason=typed["reason"], status=422)
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
                        status: int = 200, reason: str = "") -> web.Response:
    """The project page; ``errors`` belong to the form named ``error_form`` (``upload``,
    ``photo-<id>`` for a photo's form, or ``unpublish`` with the ``reason`` typed)."""
    view = await _project_view(request, ctx, project_id)
    return _page("catalog/project.html", request,
                 {**view, "alt_max": ALT_TEXT_MAX, "gallery_max": GALLERY_MAX,
                  "errors": errors or FormErrors(), "error_form": error_form,
                  "reason": reason}, status=status)


async def project_page(request: web.Request, ctx: Ctx) -> web.Response:
    """A project in any moderation state: details, the unit grid, the photo gallery, links
    to its units' pages, and (once published) the Unpublish form."""
    return await _project_page(request, ctx, path_uuid(request, "id", "project"))


async def unpublish(request: web.Request, ctx: Ctx) -> web.Response:
    """Take a published project down, back to draft (a reason is required: the builder reads
    it)."""
    project_id = path_uuid(request, "id", "project")
    form, errors = await read_form(request, UnpublishForm)
    if form is None:
        typed = await _typed(request, "reason")
        return await _project_page(request, ctx, project_id, errors=errors,
                                   error_form="unpublish", reason=typed["reason"], status=422)
    try:
        await service.unpublish_project(ctx, staff_actor(request), project_id,
                                        ReasonIn(reason=form.reason))
    except Conflict as exc:
        flash(request, f"Nothing changed: {exc.detail}.", "error")
        return see_other(f"{PROJECTS}/{project_id}")
    ctx.log.info("console: staff %s unpublished project %s", staff_id(request), project_id)
    flash(request, "Project unpublished: it is a draft again and no longer public.", "success")
    return see_other(f"{PROJECTS}/{project_id}")


# --------------------------------------------------------------------------------------------
# Units
# --------------------------------------------------------------------------------------------


async def _unit_page(request: web.Request, ctx: Ctx, unit_id: uuid.UUID,
                     errors: FormErrors | None = None, status: int = 200) -> web.Response:
    actor = staff_actor(request)
    unit = await units_service.unit(ctx, actor, unit_id)
    project = await service.project(ctx, actor, str(unit["project_id"]))
    return _page("catalog/unit.html", request, {
        "unit": unit, "project": project, "errors": errors or FormErrors()}, status=status)


async def unit_page(request: web.Request, ctx: Ctx) -> web.Response:
    """One unit: its project, tower, floor, type, areas, price and status, and the form that
    changes its status."""
    return await _unit_page(request, ctx, path_uuid(request, "id", "unit"))


async def change_unit_status(request: web.Request, ctx: Ctx) -> web.Response:
    """Move a unit to another status (``catalog.unit_status_changed``); back to its project's
    unit grid."""
    unit_id = path_uuid(request, "id", "unit")
    form, errors = await read_form(request, UnitStatusIn)
    if form is None:
        return await _unit_page(request, ctx, unit_id, errors=errors, status=422)
    actor = staff_actor(request)
    before = await units_service.unit(ctx, actor, unit_id)
    label = UNIT_STATUS_STYLE[form.status][0]
    if before["status"] == form.status:
        flash(request, f"Nothing changed: unit {before['code']} is already {label}.", "error")
        return see_other(f"{UNITS}/{unit_id}")
    try:
        await units_service.set_unit_status(ctx, actor, unit_id, form)
    except (Conflict, Forbidden) as exc:
        flash(request, f"Nothing changed: {exc.detail}.", "error")
        return see_other(f"{UNITS}/{unit_id}")
    ctx.log.info("console: staff %s set unit %s to %s", staff_id(request), unit_id,
                 form.status)
    flash(request, f"Unit {before['code']} is now {label}.", "success")
    return see_other(f"{PROJECTS}/{before['project_id']}#units-heading")


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
        ConsolePage(path="/builders/{id}/edit", handler=edit_builder,
                    name="catalog-builder-edit", method="POST"),
        ConsolePage(path="/builders/{id}/verify", handler=verify_builder,
                    name="catalog-builder-verify", method="POST"),
        ConsolePage(path="/builders/{id}/unverify", handler=unverify_builder,
                    name="catalog-builder-unverify", method="POST"),
        ConsolePage(path="/projects/{id}", handler=project_page, name="catalog-project"),
        ConsolePage(path="/projects/{id}/unpublish", handler=unpublish,
                    name="catalog-unpublish", method="POST"),
        ConsolePage(path="/units/{id}", handler=unit_page, name="catalog-unit"),
        ConsolePage(path="/units/{id}/status", handler=change_unit_status,
                    name="catalog-unit-status", method="POST"),
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
