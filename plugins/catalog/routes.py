"""The catalogue JSON API: builders, projects and their moderation, towers, units, CSV import.

Handlers are thin: parse (declared classes), call :mod:`service`, shape the answer. Who may do
what is explained in the service's docstring; the ``roles=`` guards here only keep out callers
who could never succeed (401 / 403 before any input is read).
"""

from __future__ import annotations

import uuid
from typing import Any

import attrs
from aiohttp import web

from propmubi.actors import Actor
from propmubi.errors import FieldError, Unauthorized, UnsupportedMediaType, ValidationFailed
from propmubi.web.appkeys import PRINCIPAL
from propmubi.web.routing import Routes
from propmubi_plugins.catalog import models, service
from propmubi_plugins.catalog.models import (
    BuilderIn,
    BuilderOut,
    BuilderPatch,
    BuilderRef,
    Id,
    ImportResult,
    PageQuery,
    ProjectIn,
    ProjectOut,
    ProjectPage,
    ProjectPatch,
    ProjectRef,
    ReasonIn,
    Review,
    TowerIn,
    TowerOut,
    TowerPatch,
    UnitIn,
    UnitOut,
    UnitPage,
    UnitPatch,
    UnitQuery,
    UnitsCsvIn,
    UnitStatusIn,
    Vocabulary,
)
from propmubi_plugins.catalog.state import Ctx

routes = Routes(tags=["catalog"])

#: Who may manage catalogue content (staff and admins act for any builder).
MANAGERS = ["builder", "staff"]
STAFF = ["staff"]


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def _actor(request: web.Request) -> Actor | None:
    principal = request.get(PRINCIPAL)
    if principal is None:
        return None
    try:
        uuid.UUID(principal.subject)
    except ValueError:
        raise Unauthorized("the token's subject is not a user") from None
    return Actor.user(principal)


def _signed_in(request: web.Request) -> Actor:
    actor = _actor(request)
    if actor is None:  # the route's roles= guard already refused anonymous callers
        raise Unauthorized("this route needs an access token")
    return actor


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


# --------------------------------------------------------------------------------------------
# Vocabulary and builders
# --------------------------------------------------------------------------------------------


@routes.get("/catalog/vocabulary", response=Vocabulary)
async def vocabulary(request: web.Request) -> Vocabulary:
    """The amenity vocabulary and the statuses projects and units may take."""
    return Vocabulary(amenities=list(models.AMENITIES),
                      project_statuses=list(models.PROJECT_STATUSES),
                      moderation_states=list(models.MODERATION_STATES),
                      unit_statuses=list(models.UNIT_STATUSES), facings=list(models.FACINGS))


@routes.post("/builders", body=BuilderIn, response=BuilderOut, status=201, roles=MANAGERS,
             errors=[409])
async def create_builder(request: web.Request, ctx: Ctx, body: BuilderIn) -> BuilderOut:
    """Create my builder profile (one per user); staff may create one for anyone.

    ``verified`` cannot be set here: it follows the verification of the builder's documents.
    """
    return _out(BuilderOut, await service.create_builder(ctx, _signed_in(request), body))


@routes.get("/builders/me", response=BuilderOut, roles=MANAGERS, errors=[404])
async def my_builder(request: web.Request, ctx: Ctx) -> BuilderOut:
    """My builder profile."""
    return _out(BuilderOut, await service.my_builder(ctx, _signed_in(request)))


@routes.patch("/builders/me", body=BuilderPatch, response=BuilderOut, roles=MANAGERS,
              errors=[404])
async def update_my_builder(request: web.Request, ctx: Ctx, body: BuilderPatch) -> BuilderOut:
    """Edit my builder profile."""
    return _out(BuilderOut, await service.update_builder(ctx, _signed_in(request), None, body))


@routes.get("/builders/me/projects", query=PageQuery, response=ProjectPage, roles=MANAGERS,
            errors=[404])
async def my_projects(request: web.Request, ctx: Ctx, query: PageQuery) -> ProjectPage:
    """My builder's projects in every moderation state, newest first (keyset pages)."""
    rows, cursor = await service.my_projects(ctx, _signed_in(request), query)
    return ProjectPage(items=[_project(r) for r in rows], next_cursor=cursor)


@routes.get("/builders/{id}", params=Id, response=BuilderOut, errors=[404])
async def get_builder(request: web.Request, ctx: Ctx, params: Id) -> BuilderOut:
    """A builder's public profile."""
    return _out(BuilderOut, await service.builder(ctx, _actor(request), params.id))


@routes.patch("/builders/{id}", params=Id, body=BuilderPatch, response=BuilderOut,
              roles=MANAGERS, errors=[404])
async def update_builder(request: web.Request, ctx: Ctx, params: Id, body: BuilderPatch
                         ) -> BuilderOut:
    """Edit a builder profile (its owner, or staff)."""
    row = await service.update_builder(ctx, _signed_in(request), params.id, body)
    return _out(BuilderOut, row)


# --------------------------------------------------------------------------------------------
# Projects and moderation
# --------------------------------------------------------------------------------------------


@routes.post("/projects", body=ProjectIn, response=ProjectOut, status=201, roles=MANAGERS,
             errors=[409])
async def create_project(request: web.Request, ctx: Ctx, body: ProjectIn) -> ProjectOut:
    """Create a draft project for my builder (staff: for ``builder_id``)."""
    return _project(await service.create_project(ctx, _signed_in(request), body))


@routes.get("/projects/{ref}", params=ProjectRef, response=ProjectOut, errors=[404])
async def get_project(request: web.Request, ctx: Ctx, params: ProjectRef) -> ProjectOut:
    """A project by id or slug. Unpublished projects exist only for their builder and staff."""
    return _project(await service.project(ctx, _actor(request), params.ref))


@routes.patch("/projects/{id}", params=Id, body=ProjectPatch, response=ProjectOut,
              roles=MANAGERS, errors=[404, 409])
async def update_project(request: web.Request, ctx: Ctx, params: Id, body: ProjectPatch
                         ) -> ProjectOut:
    """Edit a project. A published project stays public (``catalog.project_updated``);
    its name, city, locality, coordinates and RERA number are then staff-only (409)."""
    return _project(await service.update_project(ctx, _signed_in(request), params.id, body))


@routes.delete("/projects/{id}", params=Id, status=204, roles=MANAGERS, errors=[404, 409])
async def delete_project(request: web.Request, ctx: Ctx, params: Id) -> None:
    """Delete a project with its towers and units (its builder: while not published)."""
    await service.delete_project(ctx, _signed_in(request), params.id)


@routes.post("/projects/{id}/submit", params=Id, response=ProjectOut, roles=MANAGERS,
             errors=[404, 409])
async def submit_project(request: web.Request, ctx: Ctx, params: Id) -> ProjectOut:
    """Send a draft (or rejected) project to review."""
    return _project(await service.submit_project(ctx, _signed_in(request), params.id))


@routes.post("/projects/{id}/publish", params=Id, response=ProjectOut, roles=STAFF,
             errors=[404, 409])
async def publish_project(request: web.Request, ctx: Ctx, params: Id) -> ProjectOut:
    """Staff: publish a project in review."""
    return _project(await service.publish_project(ctx, _signed_in(request), params.id))


@routes.post("/projects/{id}/reject", params=Id, body=ReasonIn, response=ProjectOut,
             roles=STAFF, errors=[404, 409])
async def reject_project(request: web.Request, ctx: Ctx, params: Id, body: ReasonIn
                         ) -> ProjectOut:
    """Staff: send a project in review back to its builder, saying why."""
    return _project(await service.reject_project(ctx, _signed_in(request), params.id, body))


@routes.post("/projects/{id}/unpublish", params=Id, body=ReasonIn, response=ProjectOut,
             roles=STAFF, errors=[404, 409])
async def unpublish_project(request: web.Request, ctx: Ctx, params: Id, body: ReasonIn
                            ) -> ProjectOut:
    """Staff: take a published project down (back to draft), saying why."""
    return _project(await service.unpublish_project(ctx, _signed_in(request), params.id, body))


@routes.get("/projects/{id}/reviews", params=Id, response=list[Review], roles=MANAGERS,
            errors=[404])
async def project_reviews(request: web.Request, ctx: Ctx, params: Id) -> list[Review]:
    """A project's moderation history, oldest first (its builder and staff)."""
    rows = await service.reviews(ctx, _signed_in(request), params.id)
    return [_out(Review, r) for r in rows]


# --------------------------------------------------------------------------------------------
# Towers
# --------------------------------------------------------------------------------------------


@routes.get("/projects/{id}/towers", params=Id, response=list[TowerOut], errors=[404])
async def list_towers(request: web.Request, ctx: Ctx, params: Id) -> list[TowerOut]:
    """A project's towers with their unit counts."""
    rows = await service.towers(ctx, _actor(request), params.id)
    return [_tower(r) for r in rows]


@routes.post("/projects/{id}/towers", params=Id, body=TowerIn, response=TowerOut, status=201,
             roles=MANAGERS, errors=[404, 409])
async def create_tower(request: web.Request, ctx: Ctx, params: Id, body: TowerIn) -> TowerOut:
    """Add a tower to a project."""
    return _tower(await service.create_tower(ctx, _signed_in(request), params.id, body))


@routes.patch("/towers/{id}", params=Id, body=TowerPatch, response=TowerOut, roles=MANAGERS,
              errors=[404, 409])
async def update_tower(request: web.Request, ctx: Ctx, params: Id, body: TowerPatch
                       ) -> TowerOut:
    """Rename a tower or change its floors (not below a floor with units)."""
    return _tower(await service.update_tower(ctx, _signed_in(request), params.id, body))


@routes.delete("/towers/{id}", params=Id, status=204, roles=MANAGERS, errors=[404])
async def delete_tower(request: web.Request, ctx: Ctx, params: Id) -> None:
    """Delete a tower and its units."""
    await service.delete_tower(ctx, _signed_in(request), params.id)


# --------------------------------------------------------------------------------------------
# Units
# --------------------------------------------------------------------------------------------


@routes.post("/towers/{id}/units", params=Id, body=UnitIn, response=UnitOut, status=201,
             roles=MANAGERS, errors=[404, 409])
async def create_unit(request: web.Request, ctx: Ctx, params: Id, body: UnitIn) -> UnitOut:
    """Add a unit to a tower (floor within the tower, price in the project's currency)."""
    return _unit(await service.create_unit(ctx, _signed_in(request), params.id, body))


@routes.get("/projects/{id}/units", params=Id, query=UnitQuery, response=UnitPage,
            errors=[404])
async def list_units(request: web.Request, ctx: Ctx, params: Id, query: UnitQuery) -> UnitPage:
    """A project's units (keyset pages), optionally of one tower or status."""
    rows, cursor = await service.units(ctx, _actor(request), params.id, query)
    return UnitPage(items=[_unit(r) for r in rows], next_cursor=cursor)


@routes.get("/units/{id}", params=Id, response=UnitOut, errors=[404])
async def get_unit(request: web.Request, ctx: Ctx, params: Id) -> UnitOut:
    """A unit (of a project the caller may see)."""
    return _unit(await service.unit(ctx, _actor(request), params.id))


@routes.patch("/units/{id}", params=Id, body=UnitPatch, response=UnitOut, roles=MANAGERS,
              errors=[404, 409])
async def update_unit(request: web.Request, ctx: Ctx, params: Id, body: UnitPatch) -> UnitOut:
    """Edit a unit; a price change publishes ``catalog.price_changed``."""
    return _unit(await service.update_unit(ctx, _signed_in(request), params.id, body))


@routes.patch("/units/{id}/status", params=Id, body=UnitStatusIn, response=UnitOut,
              roles=MANAGERS, errors=[404])
async def set_unit_status(request: web.Request, ctx: Ctx, params: Id, body: UnitStatusIn
                          ) -> UnitOut:
    """Move a unit's status (publishes ``catalog.unit_status_changed``)."""
    return _unit(await service.set_unit_status(ctx, _signed_in(request), params.id, body))


@routes.delete("/units/{id}", params=Id, status=204, roles=MANAGERS, errors=[404])
async def delete_unit(request: web.Request, ctx: Ctx, params: Id) -> None:
    """Delete a unit."""
    await service.delete_unit(ctx, _signed_in(request), params.id)


@routes.post("/projects/{id}/units/import", params=Id, response=ImportResult, status=201,
             roles=MANAGERS, errors=[404, 413, 415])
async def import_units(request: web.Request, ctx: Ctx, params: Id) -> ImportResult:
    """Create many units from a CSV body (``Content-Type: text/csv``), all or none.

    Header: ``tower,code,unit_type,bedrooms,carpet_area_sqft,super_area_sqft,floor,facing,
    price_minor,currency,status`` (any order); towers must exist; at most 5,000 rows and
    ``http.max_body_bytes``. A bad file is a 422 whose ``errors`` list every problem with its
    ``row``, ``line``, ``column`` and ``message``; nothing is imported then.
    """
    if request.content_type not in ("text/csv", "application/csv"):
        raise UnsupportedMediaType(
            f"expected Content-Type: text/csv, got {request.content_type or 'none'}")
    actor = _signed_in(request)
    raw = await request.read()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValidationFailed([FieldError("body", "", f"the file is not UTF-8 ({exc.reason} "
                                                       f"at byte {exc.start})")]) from None
    if "\x00" in text:
        raise ValidationFailed([FieldError("body", "", "the file contains NUL characters")])
    result = await service.import_units(ctx, actor, params.id, UnitsCsvIn(text=text))
    return ImportResult(imported=result["imported"], project=_project(result["project"]))
