"""Console pages of the catalogue: the builder directory, the moderation queue with its public
preview and Publish / Reject decisions, project pages with a unit grid per tower, and photo
gallery management; plus the "Projects waiting for review" dashboard card.

Forms post and redirect (POST-redirect-GET) and work without JavaScript. Changes go through
the catalogue's service and media functions, as a staff caller, so the rules, the moderation
history and the events are the API's own.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from aiohttp import web

from propmubi.console.pages import (
    cursor_of,
    flash,
    parse_cursor,
    path_uuid,
    render,
    see_other,
    staff_id,
)
from propmubi.errors import (
    Conflict,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    UnsupportedMediaType,
    ValidationFailed,
)
from propmubi.types import ConsolePage, ConsoleWidget
from propmubi.web.appkeys import SERVICES
from propmubi.web.auth import Principal
from propmubi_plugins.catalog import console_store, media, service, store

log = logging.getLogger(__name__)

BUILDERS = "/console/builders"
MODERATION = "/console/moderation"
PROJECTS = "/console/projects"
PAGE_SIZE = 25
#: Projects of one builder listed on its page (newest first).
BUILDER_PROJECTS_MAX = 200
REASON_MAX = 1000

#: Unit statuses in grid order, with their legend text and cell colours (background, border).
UNIT_STATUS_STYLE = {
    "available": ("Available", "#dff3e4", "#2e7d32"),
    "held": ("Held", "#fff1cc", "#b26a00"),
    "booked": ("Booked", "#dde8ff", "#1e4fd8"),
    "sold": ("Sold", "#e6e7ea", "#5f6673"),
    "blocked": ("Blocked", "#fde2e1", "#b3261e"),
}
STATUS_LABELS = {"upcoming": "Upcoming", "under_construction": "Under construction",
                 "ready": "Ready to move in"}
MODERATION_LABELS = {"draft": "Draft", "in_review": "In review", "published": "Published",
                     "rejected": "Rejected"}


# --------------------------------------------------------------------------------------------
# Staff callers (the service and media functions take their own caller types)
# --------------------------------------------------------------------------------------------


def _caller(request: web.Request) -> service.Caller:
    # Events and reviews record this as "user:<staff id>" (Caller.actor).
    return service.Caller.console(staff_id(request))


def _principal(request: web.Request) -> Principal:
    return Principal(subject=str(staff_id(request)), roles=frozenset({"staff"}), session=None)


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


async def builders(request: web.Request) -> web.Response:
    """Builders, newest first, searchable by the start of their name (keyset pages)."""
    db = request.app[SERVICES].db
    q = request.query.get("q", "").strip()[:100]
    rows = await console_store.builders(db, q or None,
                                        parse_cursor(request.query.get("cursor")),
                                        PAGE_SIZE + 1)
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    next_cursor = cursor_of(rows[-1]["created_at"], rows[-1]["id"]) if more else None
    return _page("catalog/builders.html", request,
                 {"rows": rows, "q": q, "next_cursor": next_cursor, "prefix": BUILDERS})


async def builder_detail(request: web.Request) -> web.Response:
    """One builder: its profile, owner and projects with their moderation states."""
    db = request.app[SERVICES].db
    builder_id = path_uuid(request, "id", "builder")
    row = await store.builder(db, builder_id)
    if row is None:
        raise NotFound("no such builder")
    projects = await store.projects_of_builder(db, builder_id, BUILDER_PROJECTS_MAX + 1, None,
                                               None)
    return _page("catalog/builder.html", request, {
        "builder": row, "projects": projects[:BUILDER_PROJECTS_MAX],
        "more_projects": len(projects) > BUILDER_PROJECTS_MAX})


# --------------------------------------------------------------------------------------------
# Moderation
# --------------------------------------------------------------------------------------------


async def queue(request: web.Request) -> web.Response:
    """Projects waiting for review, oldest submission first (keyset pages)."""
    db = request.app[SERVICES].db
    rows = await console_store.review_queue(db, parse_cursor(request.query.get("cursor")),
                                            PAGE_SIZE + 1)
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    next_cursor = cursor_of(rows[-1]["submitted_at"], rows[-1]["id"]) if more else None
    return _page("catalog/queue.html", request, {
        "rows": rows, "next_cursor": next_cursor, "first_page": "cursor" not in request.query,
        "stats": await console_store.review_stats(db), "prefix": MODERATION})


async def _project_view(request: web.Request, project_id: uuid.UUID) -> dict[str, Any]:
    """Everything a project's console pages show."""
    services = request.app[SERVICES]
    caller = _caller(request)
    project = await service.project(services.db, caller, str(project_id))
    towers = await service.towers(services.db, caller, project_id)
    units = await console_store.grid_units(services.db, project_id)
    photos = await media.gallery(services, project_id, None)
    storage = media.runtime(services).storage
    return {
        "project": project,
        "builder": await store.builder(services.db, project["builder_id"]),
        "towers": _grid(towers, units),
        "unit_summary": _unit_summary(units),
        "photos": [{**p, "thumb_url": storage.url(p["thumb_key"]),
                    "web_url": storage.url(p["web_key"])} for p in photos],
        "reviews": await service.reviews(services.db, caller, project_id),
        "map_url": (f"https://www.openstreetmap.org/?mlat={project['lat']:.6f}"
                    f"&mlon={project['lng']:.6f}#map=17/{project['lat']:.6f}/"
                    f"{project['lng']:.6f}"),
        "grid_truncated": len(units) >= console_store.GRID_MAX,
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


async def preview(request: web.Request, errors: dict[str, str] | None = None,
                  reason: str = "", status: int = 200) -> web.Response:
    """A project as the public would see it, its history and the Publish / Reject forms."""
    project_id = path_uuid(request, "id", "project")
    view = await _project_view(request, project_id)
    return _page("catalog/preview.html", request,
                 {**view, "errors": errors or {}, "reason": reason}, status=status)


async def _moderate(request: web.Request, action: str, done: str) -> web.Response:
    project_id = path_uuid(request, "id", "project")
    form = await request.post()
    reason = str(form.get("reason", "")).strip()
    if action == "reject":
        if not reason:
            return await preview(request, errors={
                "reason": "Give the reason for the rejection; the builder reads it."},
                status=422)
        if len(reason) > REASON_MAX:
            return await preview(request, errors={
                "reason": f"At most {REASON_MAX} characters (got {len(reason)})."},
                reason=reason, status=422)
    try:
        await service.moderate(request.app[SERVICES].db, _caller(request), project_id, action,
                               reason or None)
    except Conflict as exc:
        flash(request, f"Nothing changed: {exc.detail}.", "error")
        return see_other(f"{MODERATION}/{project_id}")
    log.info("console: staff %s %s project %s", staff_id(request), done, project_id)
    flash(request, f"Project {done}.", "success")
    return see_other(f"{PROJECTS}/{project_id}" if action == "publish"
                     else f"{MODERATION}/{project_id}")


async def publish(request: web.Request) -> web.Response:
    """Publish a project in review: it becomes public."""
    return await _moderate(request, "publish", "published")


async def reject(request: web.Request) -> web.Response:
    """Reject a project in review (a reason is required: the builder reads it)."""
    return await _moderate(request, "reject", "rejected")


# --------------------------------------------------------------------------------------------
# Projects and their galleries
# --------------------------------------------------------------------------------------------


async def project_page(request: web.Request) -> web.Response:
    """A project in any moderation state: details, the unit grid, the photo gallery."""
    project_id = path_uuid(request, "id", "project")
    view = await _project_view(request, project_id)
    return _page("catalog/project.html", request,
                 {**view, "alt_max": media.ALT_TEXT_MAX, "gallery_max": media.GALLERY_MAX})


def _gallery_url(project_id: uuid.UUID) -> str:
    return f"{PROJECTS}/{project_id}#photos"


def _problem_text(exc: ValidationFailed) -> str:
    errors = exc.extra.get("errors") or []
    return "; ".join(f"{e['field']}: {e['message']}" for e in errors) or str(exc.detail)


def _position(raw: Any) -> int | None:
    """A 1-based place typed by staff as the 0-based position media expects (None: keep)."""
    text = str(raw or "").strip()
    if not text:
        return None
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= media.GALLERY_MAX:
        raise ValidationFailed([], detail=f"Place: a number from 1 to {media.GALLERY_MAX}")
    return int(text) - 1


async def _photo_action(request: web.Request, change: bool) -> web.Response:
    project_id = path_uuid(request, "id", "project")
    photo_id = path_uuid(request, "photo", "photo")
    services = request.app[SERVICES]
    photo = await media.photo_for(services, _principal(request), photo_id, manage=True)
    if photo["project_id"] != project_id:
        raise NotFound("no such photo")
    try:
        if change:
            form = await request.post()
            alt_text = str(form.get("alt_text", ""))
            await media.update(services, _principal(request), photo_id, alt_text,
                               _position(form.get("position")))
            flash(request, "Photo updated.", "success")
        else:
            await media.delete(services, _principal(request), photo_id)
            flash(request, "Photo deleted.", "success")
    except ValidationFailed as exc:
        flash(request, f"Nothing changed: {_problem_text(exc)}.", "error")
    except (Conflict, Forbidden) as exc:
        flash(request, f"Nothing changed: {exc.detail}.", "error")
    return see_other(_gallery_url(project_id))


async def update_photo(request: web.Request) -> web.Response:
    """Change a photo's alternative text and/or its place in the gallery."""
    return await _photo_action(request, change=True)


async def delete_photo(request: web.Request) -> web.Response:
    """Remove a photo from the gallery (and its stored files)."""
    return await _photo_action(request, change=False)


async def upload_photo(request: web.Request) -> web.Response:
    """Add a photo to the project's gallery (a multipart form: file, alt text, place)."""
    project_id = path_uuid(request, "id", "project")
    services = request.app[SERVICES]
    principal = _principal(request)
    access = await media.manage_access(services, principal, project_id=project_id)
    form = await request.post()
    upload = form.get("file")
    try:
        if not isinstance(upload, web.FileField):
            raise ValidationFailed([], detail="Choose a photo to upload")
        limit = media.runtime(services).settings.max_upload_bytes
        data = upload.file.read(limit + 1)
        if not data:
            raise ValidationFailed([], detail="The file is empty")
        if len(data) > limit:
            raise PayloadTooLarge(f"a photo may be at most {limit} bytes")
        alt_text = media.check_alt_text(str(form.get("alt_text", "")))
        await media.upload(services, principal, access, data, alt_text,
                           _position(form.get("position")))
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
                    name="catalog-photo-upload", method="POST"),
        ConsolePage(path="/projects/{id}/photos/{photo}", handler=update_photo,
                    name="catalog-photo-update", method="POST"),
        ConsolePage(path="/projects/{id}/photos/{photo}/delete", handler=delete_photo,
                    name="catalog-photo-delete", method="POST"),
    ]


async def _waiting(request: web.Request) -> dict[str, Any]:
    stats = await console_store.review_stats(request.app[SERVICES].db)
    return {"count": stats["count"], "oldest": stats["oldest"],
            "waited": age(stats["oldest"]) if stats["oldest"] else None, "url": MODERATION}


def widgets() -> list[ConsoleWidget]:
    """Catalogue dashboard cards."""
    return [ConsoleWidget(name="catalog-review", title="Projects waiting for review",
                          template="catalog/widget_review.html", load=_waiting, order=30)]
