"""The JSON API of towers and units: towers of a project, units of a tower (statuses and
prices), and the CSV import of a project's units.

Handlers are thin, as the projects' (``plugins/catalog/routes.py``, whose helpers these share):
parse (declared classes), call :mod:`service`, shape the answer. The writes take a body that
did not validate (``partial_body``) so that the service reports its problems with those it finds
against the tower, the project and the other units, in one 422.
"""

from __future__ import annotations

from typing import Any

import attrs
from aiohttp import web

from propmubi.errors import FieldError, UnsupportedMediaType, ValidationFailed
from propmubi.validation import InvalidInput
from propmubi.web.auth import actor_of, signed_in
from propmubi.web.routing import Routes
from propmubi_plugins.catalog.models import Id
from propmubi_plugins.catalog.routes import MANAGERS, out, project_out
from propmubi_plugins.catalog.state import Ctx
from propmubi_plugins.catalog.units import service
from propmubi_plugins.catalog.units.models import (
    ImportResult,
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
)

routes = Routes(tags=["catalog"])


def _tower(row: dict[str, Any]) -> TowerOut:
    return TowerOut(**{**{"units": 0}, **{k: row[k] for k in row
                                           if k in attrs.fields_dict(TowerOut)}})


def _unit(row: dict[str, Any]) -> UnitOut:
    return out(UnitOut, {**row, "currency": row["currency"].strip()})


# --------------------------------------------------------------------------------------------
# Towers
# --------------------------------------------------------------------------------------------


@routes.get("/projects/{id}/towers", params=Id, response=list[TowerOut], errors=[404])
async def list_towers(request: web.Request, ctx: Ctx, params: Id) -> list[TowerOut]:
    """A project's towers with their unit counts."""
    rows = await service.towers(ctx, actor_of(request), params.id)
    return [_tower(r) for r in rows]


@routes.post("/projects/{id}/towers", params=Id, body=TowerIn, response=TowerOut, status=201,
             roles=MANAGERS, errors=[404, 409], partial_body=True)
async def create_tower(request: web.Request, ctx: Ctx, params: Id,
                       body: TowerIn | InvalidInput) -> TowerOut:
    """Add a tower to a project."""
    return _tower(await service.create_tower(ctx, signed_in(request), params.id, body))


@routes.patch("/towers/{id}", params=Id, body=TowerPatch, response=TowerOut, roles=MANAGERS,
              errors=[404, 409], partial_body=True)
async def update_tower(request: web.Request, ctx: Ctx, params: Id,
                       body: TowerPatch | InvalidInput) -> TowerOut:
    """Rename a tower or change its floors (not below a floor with units)."""
    return _tower(await service.update_tower(ctx, signed_in(request), params.id, body))


@routes.delete("/towers/{id}", params=Id, status=204, roles=MANAGERS, errors=[404])
async def delete_tower(request: web.Request, ctx: Ctx, params: Id) -> None:
    """Delete a tower and its units."""
    await service.delete_tower(ctx, signed_in(request), params.id)


# --------------------------------------------------------------------------------------------
# Units
# --------------------------------------------------------------------------------------------


@routes.post("/towers/{id}/units", params=Id, body=UnitIn, response=UnitOut, status=201,
             roles=MANAGERS, errors=[404, 409], partial_body=True)
async def create_unit(request: web.Request, ctx: Ctx, params: Id, body: UnitIn | InvalidInput
                      ) -> UnitOut:
    """Add a unit to a tower (floor within the tower, price in the project's currency, a code
    new to the tower). A 422 lists every problem of the body at once, a code in use among
    them; a code in use alone is a 409."""
    return _unit(await service.create_unit(ctx, signed_in(request), params.id, body))


@routes.get("/projects/{id}/units", params=Id, query=UnitQuery, response=UnitPage,
            errors=[404])
async def list_units(request: web.Request, ctx: Ctx, params: Id, query: UnitQuery) -> UnitPage:
    """A project's units (keyset pages), optionally of one tower or status."""
    rows, cursor = await service.units(ctx, actor_of(request), params.id, query)
    return UnitPage(items=[_unit(r) for r in rows], next_cursor=cursor)


@routes.get("/units/{id}", params=Id, response=UnitOut, errors=[404])
async def get_unit(request: web.Request, ctx: Ctx, params: Id) -> UnitOut:
    """A unit (of a project the caller may see)."""
    return _unit(await service.unit(ctx, actor_of(request), params.id))


@routes.patch("/units/{id}", params=Id, body=UnitPatch, response=UnitOut, roles=MANAGERS,
              errors=[404, 409], partial_body=True)
async def update_unit(request: web.Request, ctx: Ctx, params: Id,
                      body: UnitPatch | InvalidInput) -> UnitOut:
    """Edit a unit; a price change publishes ``catalog.price_changed``. Problems are reported
    together, as for a new unit."""
    return _unit(await service.update_unit(ctx, signed_in(request), params.id, body))


@routes.patch("/units/{id}/status", params=Id, body=UnitStatusIn, response=UnitOut,
              roles=MANAGERS, errors=[404])
async def set_unit_status(request: web.Request, ctx: Ctx, params: Id, body: UnitStatusIn
                          ) -> UnitOut:
    """Move a unit's status (publishes ``catalog.unit_status_changed``)."""
    return _unit(await service.set_unit_status(ctx, signed_in(request), params.id, body))


@routes.delete("/units/{id}", params=Id, status=204, roles=MANAGERS, errors=[404])
async def delete_unit(request: web.Request, ctx: Ctx, params: Id) -> None:
    """Delete a unit."""
    await service.delete_unit(ctx, signed_in(request), params.id)


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
    actor = signed_in(request)
    raw = await request.read()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValidationFailed([FieldError("body", "", f"the file is not UTF-8 ({exc.reason} "
                                                       f"at byte {exc.start})")]) from None
    if "\x00" in text:
        raise ValidationFailed([FieldError("body", "", "the file contains NUL characters")])
    result = await service.import_units(ctx, actor, params.id, UnitsCsvIn(text=text))
    return ImportResult(imported=result["imported"], project=project_out(result["project"]))
