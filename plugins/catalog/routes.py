"""The catalogue JSON API: builders, projects and their moderation, towers, units, CSV import.

Handlers are thin: parse (declared classes), call :mod:`service`, shape the answer. Who may do
what is explained in the service's docstring; the ``roles=`` guards here only keep out callers
who could never succeed (401 / 403 before any input is read).
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import attrs
from aiohttp import web
from attrs import validators as v

from propmubi.errors import FieldError, Unauthorized, UnsupportedMediaType, ValidationFailed
from propmubi.web.appkeys import PRINCIPAL, SERVICES
from propmubi.web.routing import Routes
from propmubi_plugins.catalog import cursors, inputs, service
from propmubi_plugins.catalog.inputs import (
    BuilderIn,
    BuilderPatch,
    ProjectIn,
    ProjectPatch,
    TowerIn,
    TowerPatch,
    UnitIn,
    UnitPatch,
)
from propmubi_plugins.catalog.service import Caller

routes = Routes(tags=["catalog"])

#: Who may manage catalogue content (staff and admins act for any builder).
MANAGERS = ["builder", "staff"]
STAFF = ["staff"]


# --------------------------------------------------------------------------------------------
# Path, query and response classes
# --------------------------------------------------------------------------------------------


@attrs.frozen
class Id:
    id: uuid.UUID


@attrs.frozen
class ProjectRef:
    ref: str = attrs.field(validator=[v.min_len(1), v.max_len(200)], metadata={
        "description": "The project's id or slug."})


@attrs.frozen
class PageQuery:
    """Keyset pagination: pass ``next_cursor`` of one page as ``cursor`` for the next."""

    limit: int = attrs.field(default=20, validator=[v.ge(1), v.le(100)])
    cursor: str | None = attrs.field(default=None, validator=v.optional(v.max_len(200)))
    moderation: str | None = attrs.field(
        default=None, validator=inputs.optional_one_of(inputs.MODERATION_STATES))


@attrs.frozen
class UnitQuery:
    """Filters and keyset pagination of a project's units."""

    tower_id: uuid.UUID | None = None
    status: str | None = attrs.field(
        default=None, validator=inputs.optional_one_of(inputs.UNIT_STATUSES))
    limit: int = attrs.field(default=100, validator=[v.ge(1), v.le(500)])
    cursor: str | None = attrs.field(default=None, validator=v.optional(v.max_len(200)))


@attrs.frozen
class ReasonIn:
    """Why (shown to the builder)."""

    reason: str = attrs.field(validator=[v.min_len(1), v.max_len(2000), inputs.not_blank])


@attrs.frozen
class UnitStatusIn:
    status: str = attrs.field(validator=v.in_(inputs.UNIT_STATUSES))


@attrs.frozen
class Vocabulary:
    """The fixed vocabularies of the catalogue."""

    amenities: list[str]
    project_statuses: list[str]
    moderation_states: list[str]
    unit_statuses: list[str]
    facings: list[str]


@attrs.frozen
class BuilderOut:
    """A builder's public profile; ``verified`` follows document verification."""

    id: uuid.UUID
    name: str
    slug: str
    rera_promoter_id: str | None
    verified: bool
    description: str
    website: str | None
    created_at: dt.datetime
    updated_at: dt.datetime


@attrs.frozen
class BuilderRef:
    id: uuid.UUID
    name: str
    slug: str
    verified: bool


@attrs.frozen
class ProjectOut:
    """A project. ``price_min``/``price_max`` (minor units of ``currency``) and ``bedrooms``
    cover the units still for sale (not sold or blocked)."""

    id: uuid.UUID
    slug: str
    builder: BuilderRef
    name: str
    city: str
    locality: str
    address: str
    lat: float
    lng: float
    rera_number: str | None
    status: str
    possession_date: dt.date | None
    amenities: list[str]
    description: str
    moderation: str
    rejection_reason: str | None
    featured: bool
    currency: str
    price_min: int | None
    price_max: int | None
    bedrooms: list[int]
    units_total: int
    units_available: int
    created_at: dt.datetime
    updated_at: dt.datetime
    submitted_at: dt.datetime | None
    published_at: dt.datetime | None


@attrs.frozen
class ProjectPage:
    items: list[ProjectOut]
    next_cursor: str | None


@attrs.frozen
class Review:
    action: str
    reason: str | None
    actor: str
    at: dt.datetime


@attrs.frozen
class TowerOut:
    id: uuid.UUID
    project_id: uuid.UUID
    name: str
    floors: int
    units: int
    created_at: dt.datetime


@attrs.frozen
class UnitOut:
    id: uuid.UUID
    project_id: uuid.UUID
    tower_id: uuid.UUID
    code: str
    unit_type: str
    bedrooms: int
    carpet_area_sqft: float
    super_area_sqft: float | None
    floor: int
    facing: str | None
    price_minor: int
    currency: str
    status: str
    created_at: dt.datetime
    updated_at: dt.datetime


@attrs.frozen
class UnitPage:
    items: list[UnitOut]
    next_cursor: str | None


@attrs.frozen
class ImportResult:
    """What a CSV import created."""

    imported: int
    project: ProjectOut


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def _db(request: web.Request) -> Any:
    return request.app[SERVICES].db


def _caller(request: web.Request) -> Caller | None:
    principal = request.get(PRINCIPAL)
    if principal is None:
        return None
    try:
        return Caller(user_id=uuid.UUID(principal.subject), roles=principal.roles)
    except ValueError:
        raise Unauthorized("the token's subject is not a user") from None


def _signed_in(request: web.Request) -> Caller:
    caller = _caller(request)
    if caller is None:  # the route's roles= guard already refused anonymous callers
        raise Unauthorized("this route needs an access token")
    return caller


def _out(cls: type, row: dict[str, Any]) -> Any:
    return cls(**{f.name: row[f.name] for f in attrs.fields(cls) if f.name in row})


def _tower(row: dict[str, Any]) -> TowerOut:
    return TowerOut(**{**{"units": 0}, **{k: row[k] for k in row
                                           if k in attrs.fields_dict(TowerOut)}})


def _unit(row: dict[str, Any]) -> UnitOut:
    return _out(UnitOut, {**row, "currency": row["currency"].strip()})


def _project(row: dict[str, Any]) -> ProjectOut:
    builder = BuilderRef(id=row["builder_id"], name=row["builder_name"],
                         slug=row["builder_slug"], verified=row["builder_verified"])
    return _out(ProjectOut, {**row, "builder": builder, "bedrooms": list(row["bedrooms"]),
                             "currency": row["currency"].strip()})


def _encode_cursor(*parts: Any) -> str:
    return cursors.pack([p.isoformat() if isinstance(p, dt.datetime) else str(p)
                         for p in parts])


def _decode_cursor(cursor: str, count: int) -> list[str]:
    """The parts of an opaque cursor; a tampered one is a 422 on ``cursor``."""
    try:
        parts = cursors.unpack(cursor)
    except ValueError:
        parts = []
    if len(parts) != count or not all(isinstance(p, str) for p in parts):
        raise ValidationFailed([FieldError("query", "cursor", "not a cursor from this list")])
    return parts


# --------------------------------------------------------------------------------------------
# Vocabulary and builders
# --------------------------------------------------------------------------------------------


@routes.get("/catalog/vocabulary", response=Vocabulary)
async def vocabulary(request: web.Request) -> Vocabulary:
    """The amenity vocabulary and the statuses projects and units may take."""
    return Vocabulary(amenities=list(inputs.AMENITIES),
                      project_statuses=list(inputs.PROJECT_STATUSES),
                      moderation_states=list(inputs.MODERATION_STATES),
                      unit_statuses=list(inputs.UNIT_STATUSES), facings=list(inputs.FACINGS))


@routes.post("/builders", body=BuilderIn, response=BuilderOut, status=201, roles=MANAGERS,
             errors=[409])
async def create_builder(request: web.Request, body: BuilderIn) -> BuilderOut:
    """Create my builder profile (one per user); staff may create one for anyone.

    ``verified`` cannot be set here: it follows the verification of the builder's documents.
    """
    row = await service.create_builder(_db(request), _signed_in(request), body)
    return _out(BuilderOut, row)


@routes.get("/builders/me", response=BuilderOut, roles=MANAGERS, errors=[404])
async def my_builder(request: web.Request) -> BuilderOut:
    """My builder profile."""
    return _out(BuilderOut, await service.my_builder(_db(request), _signed_in(request)))


@routes.patch("/builders/me", body=BuilderPatch, response=BuilderOut, roles=MANAGERS,
              errors=[404])
async def update_my_builder(request: web.Request, body: BuilderPatch) -> BuilderOut:
    """Edit my builder profile."""
    row = await service.update_builder(_db(request), _signed_in(request), None, body)
    return _out(BuilderOut, row)


@routes.get("/builders/me/projects", query=PageQuery, response=ProjectPage, roles=MANAGERS,
            errors=[404])
async def my_projects(request: web.Request, query: PageQuery) -> ProjectPage:
    """My builder's projects in every moderation state, newest first (keyset pages)."""
    after = None
    if query.cursor:
        at, ident = _decode_cursor(query.cursor, 2)
        try:
            after = (dt.datetime.fromisoformat(at), uuid.UUID(ident))
        except ValueError:
            raise ValidationFailed([FieldError("query", "cursor",
                                               "not a cursor from this list")]) from None
    rows = await service.my_projects(_db(request), _signed_in(request), query.limit + 1,
                                     after, query.moderation)
    items = [_project(r) for r in rows[:query.limit]]
    more = len(rows) > query.limit
    cursor = _encode_cursor(rows[query.limit - 1]["created_at"],
                            rows[query.limit - 1]["id"]) if more else None
    return ProjectPage(items=items, next_cursor=cursor)


@routes.get("/builders/{id}", params=Id, response=BuilderOut, errors=[404])
async def get_builder(request: web.Request, params: Id) -> BuilderOut:
    """A builder's public profile."""
    return _out(BuilderOut, await service.builder(_db(request), params.id))


@routes.patch("/builders/{id}", params=Id, body=BuilderPatch, response=BuilderOut,
              roles=MANAGERS, errors=[404])
async def update_builder(request: web.Request, params: Id, body: BuilderPatch) -> BuilderOut:
    """Edit a builder profile (its owner, or staff)."""
    row = await service.update_builder(_db(request), _signed_in(request), params.id, body)
    return _out(BuilderOut, row)


# --------------------------------------------------------------------------------------------
# Projects and moderation
# --------------------------------------------------------------------------------------------


@routes.post("/projects", body=ProjectIn, response=ProjectOut, status=201, roles=MANAGERS,
             errors=[409])
async def create_project(request: web.Request, body: ProjectIn) -> ProjectOut:
    """Create a draft project for my builder (staff: for ``builder_id``)."""
    return _project(await service.create_project(_db(request), _signed_in(request), body))


@routes.get("/projects/{ref}", params=ProjectRef, response=ProjectOut, errors=[404])
async def get_project(request: web.Request, params: ProjectRef) -> ProjectOut:
    """A project by id or slug. Unpublished projects exist only for their builder and staff."""
    return _project(await service.project(_db(request), _caller(request), params.ref))


@routes.patch("/projects/{id}", params=Id, body=ProjectPatch, response=ProjectOut,
              roles=MANAGERS, errors=[404, 409])
async def update_project(request: web.Request, params: Id, body: ProjectPatch) -> ProjectOut:
    """Edit a project. A published project stays public (``catalog.project_updated``);
    its name, city, locality, coordinates and RERA number are then staff-only (409)."""
    row = await service.update_project(_db(request), _signed_in(request), params.id, body)
    return _project(row)


@routes.delete("/projects/{id}", params=Id, status=204, roles=MANAGERS, errors=[404, 409])
async def delete_project(request: web.Request, params: Id) -> None:
    """Delete a project with its towers and units (its builder: while not published)."""
    await service.delete_project(_db(request), _signed_in(request), params.id)


@routes.post("/projects/{id}/submit", params=Id, response=ProjectOut, roles=MANAGERS,
             errors=[404, 409])
async def submit_project(request: web.Request, params: Id) -> ProjectOut:
    """Send a draft (or rejected) project to review."""
    row = await service.moderate(_db(request), _signed_in(request), params.id, "submit")
    return _project(row)


@routes.post("/projects/{id}/publish", params=Id, response=ProjectOut, roles=STAFF,
             errors=[404, 409])
async def publish_project(request: web.Request, params: Id) -> ProjectOut:
    """Staff: publish a project in review."""
    row = await service.moderate(_db(request), _signed_in(request), params.id, "publish")
    return _project(row)


@routes.post("/projects/{id}/reject", params=Id, body=ReasonIn, response=ProjectOut,
             roles=STAFF, errors=[404, 409])
async def reject_project(request: web.Request, params: Id, body: ReasonIn) -> ProjectOut:
    """Staff: send a project in review back to its builder, saying why."""
    row = await service.moderate(_db(request), _signed_in(request), params.id, "reject",
                                 body.reason.strip())
    return _project(row)


@routes.post("/projects/{id}/unpublish", params=Id, body=ReasonIn, response=ProjectOut,
             roles=STAFF, errors=[404, 409])
async def unpublish_project(request: web.Request, params: Id, body: ReasonIn) -> ProjectOut:
    """Staff: take a published project down (back to draft), saying why."""
    row = await service.moderate(_db(request), _signed_in(request), params.id, "unpublish",
                                 body.reason.strip())
    return _project(row)


@routes.get("/projects/{id}/reviews", params=Id, response=list[Review], roles=MANAGERS,
            errors=[404])
async def project_reviews(request: web.Request, params: Id) -> list[Review]:
    """A project's moderation history, oldest first (its builder and staff)."""
    rows = await service.reviews(_db(request), _signed_in(request), params.id)
    return [_out(Review, r) for r in rows]


# --------------------------------------------------------------------------------------------
# Towers
# --------------------------------------------------------------------------------------------


@routes.get("/projects/{id}/towers", params=Id, response=list[TowerOut], errors=[404])
async def list_towers(request: web.Request, params: Id) -> list[TowerOut]:
    """A project's towers with their unit counts."""
    rows = await service.towers(_db(request), _caller(request), params.id)
    return [_tower(r) for r in rows]


@routes.post("/projects/{id}/towers", params=Id, body=TowerIn, response=TowerOut, status=201,
             roles=MANAGERS, errors=[404, 409])
async def create_tower(request: web.Request, params: Id, body: TowerIn) -> TowerOut:
    """Add a tower to a project."""
    return _tower(await service.create_tower(_db(request), _signed_in(request), params.id,
                                             body))


@routes.patch("/towers/{id}", params=Id, body=TowerPatch, response=TowerOut, roles=MANAGERS,
              errors=[404, 409])
async def update_tower(request: web.Request, params: Id, body: TowerPatch) -> TowerOut:
    """Rename a tower or change its floors (not below a floor with units)."""
    return _tower(await service.update_tower(_db(request), _signed_in(request), params.id,
                                             body))


@routes.delete("/towers/{id}", params=Id, status=204, roles=MANAGERS, errors=[404])
async def delete_tower(request: web.Request, params: Id) -> None:
    """Delete a tower and its units."""
    await service.delete_tower(_db(request), _signed_in(request), params.id)


# --------------------------------------------------------------------------------------------
# Units
# --------------------------------------------------------------------------------------------


@routes.post("/towers/{id}/units", params=Id, body=UnitIn, response=UnitOut, status=201,
             roles=MANAGERS, errors=[404, 409])
async def create_unit(request: web.Request, params: Id, body: UnitIn) -> UnitOut:
    """Add a unit to a tower (floor within the tower, price in the project's currency)."""
    return _unit(await service.create_unit(_db(request), _signed_in(request), params.id,
                                           body))


@routes.get("/projects/{id}/units", params=Id, query=UnitQuery, response=UnitPage,
            errors=[404])
async def list_units(request: web.Request, params: Id, query: UnitQuery) -> UnitPage:
    """A project's units (keyset pages), optionally of one tower or status."""
    after = None
    if query.cursor:
        try:
            after = uuid.UUID(_decode_cursor(query.cursor, 1)[0])
        except ValueError:
            raise ValidationFailed([FieldError("query", "cursor",
                                               "not a cursor from this list")]) from None
    rows = await service.units(_db(request), _caller(request), params.id, query.tower_id,
                               query.status, after, query.limit + 1)
    more = len(rows) > query.limit
    rows = rows[:query.limit]
    return UnitPage(items=[_unit(r) for r in rows],
                    next_cursor=_encode_cursor(rows[-1]["id"]) if more else None)


@routes.get("/units/{id}", params=Id, response=UnitOut, errors=[404])
async def get_unit(request: web.Request, params: Id) -> UnitOut:
    """A unit (of a project the caller may see)."""
    return _unit(await service.unit(_db(request), _caller(request), params.id))


@routes.patch("/units/{id}", params=Id, body=UnitPatch, response=UnitOut, roles=MANAGERS,
              errors=[404, 409])
async def update_unit(request: web.Request, params: Id, body: UnitPatch) -> UnitOut:
    """Edit a unit; a price change publishes ``catalog.price_changed``."""
    return _unit(await service.update_unit(_db(request), _signed_in(request), params.id,
                                           body))


@routes.patch("/units/{id}/status", params=Id, body=UnitStatusIn, response=UnitOut,
              roles=MANAGERS, errors=[404])
async def set_unit_status(request: web.Request, params: Id, body: UnitStatusIn) -> UnitOut:
    """Move a unit's status (publishes ``catalog.unit_status_changed``)."""
    return _unit(await service.set_unit_status(_db(request), _signed_in(request), params.id,
                                               body.status))


@routes.delete("/units/{id}", params=Id, status=204, roles=MANAGERS, errors=[404])
async def delete_unit(request: web.Request, params: Id) -> None:
    """Delete a unit."""
    await service.delete_unit(_db(request), _signed_in(request), params.id)


@routes.post("/projects/{id}/units/import", params=Id, response=ImportResult, status=201,
             roles=MANAGERS, errors=[404, 413, 415])
async def import_units(request: web.Request, params: Id) -> ImportResult:
    """Create many units from a CSV body (``Content-Type: text/csv``), all or none.

    Header: ``tower,code,unit_type,bedrooms,carpet_area_sqft,super_area_sqft,floor,facing,
    price_minor,currency,status`` (any order); towers must exist; at most 5,000 rows and
    ``http.max_body_bytes``. A bad file is a 422 whose ``errors`` list every problem with its
    ``row``, ``line``, ``column`` and ``message``; nothing is imported then.
    """
    if request.content_type not in ("text/csv", "application/csv"):
        raise UnsupportedMediaType(
            f"expected Content-Type: text/csv, got {request.content_type or 'none'}")
    caller = _signed_in(request)
    raw = await request.read()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValidationFailed([FieldError("body", "", f"the file is not UTF-8 ({exc.reason} "
                                                       f"at byte {exc.start})")]) from None
    if "\x00" in text:
        raise ValidationFailed([FieldError("body", "", "the file contains NUL characters")])
    result = await service.import_units(_db(request), caller, params.id, text)
    return ImportResult(imported=result["imported"], project=_project(result["project"]))
