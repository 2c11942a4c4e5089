"""The catalogue JSON API: builders, projects and their moderation. Towers, units and the CSV
import of units are ``units/routes.py``'s, which shares the helpers here.

Handlers are thin: parse (declared classes), call :mod:`service`, shape the answer. Who may do
what is explained in the service's docstring; the ``roles=`` guards here only keep out callers
who could never succeed (401 / 403 before any input is read).
"""

from __future__ import annotations

from typing import Any

import attrs
from aiohttp import web

from propmubi.actors import Actor
from propmubi.web.auth import actor_of, signed_in
from propmubi.web.routing import Routes
from propmubi_plugins.catalog import models, service
from propmubi_plugins.catalog.media.routes import photo_out
from propmubi_plugins.catalog.models import (
    BuilderIn,
    BuilderOut,
    BuilderPatch,
    BuilderRef,
    Id,
    PageQuery,
    ProjectIn,
    ProjectOut,
    ProjectPage,
    ProjectPatch,
    ProjectRef,
    ReasonIn,
    Review,
    Vocabulary,
)
from propmubi_plugins.catalog.search import cache
from propmubi_plugins.catalog.state import Ctx
from propmubi_plugins.catalog.units.models import (
    FACINGS,
    UNIT_STATUSES,
    ProjectDetail,
    TowerOut,
)

routes = Routes(tags=["catalog"])

#: Who may manage catalogue content (staff and admins act for any builder).
MANAGERS = ["builder", "staff"]
STAFF = ["staff"]


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def out(cls: type, row: dict[str, Any]) -> Any:
    """An answer class filled from a row's columns of the same names."""
    return cls(**{f.name: row[f.name] for f in attrs.fields(cls) if f.name in row})


def project_out(row: dict[str, Any]) -> ProjectOut:
    """A project row (with its builder's columns) as the API shows it."""
    builder = BuilderRef(id=row["builder_id"], name=row["builder_name"],
                         slug=row["builder_slug"], verified=row["builder_verified"])
    return out(ProjectOut, {**row, "builder": builder, "bedrooms": list(row["bedrooms"]),
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
                      unit_statuses=list(UNIT_STATUSES), facings=list(FACINGS))


@routes.post("/builders", body=BuilderIn, response=BuilderOut, status=201, roles=MANAGERS,
             errors=[409])
async def create_builder(request: web.Request, ctx: Ctx, body: BuilderIn) -> BuilderOut:
    """Create my builder profile (one per user); staff may create one for anyone.

    ``verified`` cannot be set here: it follows the verification of the builder's documents.
    """
    return out(BuilderOut, await service.create_builder(ctx, signed_in(request), body))


@routes.get("/builders/me", response=BuilderOut, roles=MANAGERS, errors=[404])
async def my_builder(request: web.Request, ctx: Ctx) -> BuilderOut:
    """My builder profile."""
    return out(BuilderOut, await service.my_builder(ctx, signed_in(request)))


@routes.patch("/builders/me", body=BuilderPatch, response=BuilderOut, roles=MANAGERS,
              errors=[404])
async def update_my_builder(request: web.Request, ctx: Ctx, body: BuilderPatch) -> BuilderOut:
    """Edit my builder profile."""
    return out(BuilderOut, await service.update_builder(ctx, signed_in(request), None, body))


@routes.get("/builders/me/projects", query=PageQuery, response=ProjectPage, roles=MANAGERS,
            errors=[404])
async def my_projects(request: web.Request, ctx: Ctx, query: PageQuery) -> ProjectPage:
    """My builder's projects in every moderation state, newest first (keyset pages)."""
    rows, cursor = await service.my_projects(ctx, signed_in(request), query)
    return ProjectPage(items=[project_out(r) for r in rows], next_cursor=cursor)


@routes.get("/builders/{id}", params=Id, response=BuilderOut, errors=[404])
async def get_builder(request: web.Request, ctx: Ctx, params: Id) -> BuilderOut:
    """A builder's public profile."""
    return out(BuilderOut, await service.builder(ctx, actor_of(request), params.id))


@routes.patch("/builders/{id}", params=Id, body=BuilderPatch, response=BuilderOut,
              roles=MANAGERS, errors=[404])
async def update_builder(request: web.Request, ctx: Ctx, params: Id, body: BuilderPatch
                         ) -> BuilderOut:
    """Edit a builder profile (its owner, or staff)."""
    row = await service.update_builder(ctx, signed_in(request), params.id, body)
    return out(BuilderOut, row)


# --------------------------------------------------------------------------------------------
# Projects and moderation
# --------------------------------------------------------------------------------------------


@routes.post("/projects", body=ProjectIn, response=ProjectOut, status=201, roles=MANAGERS,
             errors=[409])
async def create_project(request: web.Request, ctx: Ctx, body: ProjectIn) -> ProjectOut:
    """Create a draft project for my builder (staff: for ``builder_id``)."""
    return project_out(await service.create_project(ctx, signed_in(request), body))


@routes.get("/projects/{id}", params=ProjectRef, response=ProjectDetail, errors=[404])
async def get_project(request: web.Request, ctx: Ctx, params: ProjectRef
                      ) -> ProjectDetail | web.Response:
    """A project by id or slug, with its towers and photos. Unpublished projects exist only
    for their builder and staff.

    What anonymous callers read (published projects, the same for all of them) is cached
    like search answers, under the generation every catalogue change bumps."""
    actor = actor_of(request)
    if actor is not None:
        return await _project_detail(ctx, actor, params.id)
    text = await cache.cached(ctx, "detail", {"ref": params.id}, None,
                              lambda: _project_detail(ctx, None, params.id))
    return web.Response(text=text, content_type="application/json")


async def _project_detail(ctx: Ctx, actor: Actor | None, ref: str) -> ProjectDetail:
    row, towers, photos = await service.project_detail(ctx, actor, ref)
    return ProjectDetail(**attrs.asdict(project_out(row), recurse=False),
                         towers=[out(TowerOut, t) for t in towers],
                         photos=[photo_out(ctx, p) for p in photos])


@routes.patch("/projects/{id}", params=Id, body=ProjectPatch, response=ProjectOut,
              roles=MANAGERS, errors=[404, 409])
async def update_project(request: web.Request, ctx: Ctx, params: Id, body: ProjectPatch
                         ) -> ProjectOut:
    """Edit a project. A published project stays public (``catalog.project_updated``);
    its name, city, locality, coordinates and RERA number are then staff-only (409)."""
    return project_out(await service.update_project(ctx, signed_in(request), params.id, body))


@routes.delete("/projects/{id}", params=Id, status=204, roles=MANAGERS, errors=[404, 409])
async def delete_project(request: web.Request, ctx: Ctx, params: Id) -> None:
    """Delete a project with its towers and units (its builder: while not published)."""
    await service.delete_project(ctx, signed_in(request), params.id)


@routes.post("/projects/{id}/submit", params=Id, response=ProjectOut, roles=MANAGERS,
             errors=[404, 409])
async def submit_project(request: web.Request, ctx: Ctx, params: Id) -> ProjectOut:
    """Send a draft (or rejected) project to review."""
    return project_out(await service.submit_project(ctx, signed_in(request), params.id))


@routes.post("/projects/{id}/publish", params=Id, response=ProjectOut, roles=STAFF,
             errors=[404, 409])
async def publish_project(request: web.Request, ctx: Ctx, params: Id) -> ProjectOut:
    """Staff: publish a project in review."""
    return project_out(await service.publish_project(ctx, signed_in(request), params.id))


@routes.post("/projects/{id}/reject", params=Id, body=ReasonIn, response=ProjectOut,
             roles=STAFF, errors=[404, 409])
async def reject_project(request: web.Request, ctx: Ctx, params: Id, body: ReasonIn
                         ) -> ProjectOut:
    """Staff: send a project in review back to its builder, saying why."""
    return project_out(await service.reject_project(ctx, signed_in(request), params.id, body))


@routes.post("/projects/{id}/unpublish", params=Id, body=ReasonIn, response=ProjectOut,
             roles=STAFF, errors=[404, 409])
async def unpublish_project(request: web.Request, ctx: Ctx, params: Id, body: ReasonIn
                            ) -> ProjectOut:
    """Staff: take a published project down (back to draft), saying why."""
    return project_out(await service.unpublish_project(ctx, signed_in(request), params.id, body))


@routes.get("/projects/{id}/reviews", params=Id, response=list[Review], roles=MANAGERS,
            errors=[404])
async def project_reviews(request: web.Request, ctx: Ctx, params: Id) -> list[Review]:
    """A project's moderation history, oldest first (its builder and staff)."""
    rows = await service.reviews(ctx, signed_in(request), params.id)
    return [out(Review, r) for r in rows]
