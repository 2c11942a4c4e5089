"""The rules of towers and units: their writes, the unit statuses and prices that feed a
project's derived columns and the search, and the CSV import of many units at once.

A tower or unit follows its project's rules (``access.py``): anyone sees those of a published
project; its builder and staff see and change those of any project; others' unpublished
projects answer 404, a visible project of someone else 403 on changes. Every change locks the
project row, recomputes its derived columns (price range, bedrooms, unit counts) in the same
transaction, and publishes ``catalog.project_updated``, ``catalog.unit_status_changed``,
``catalog.price_changed`` or ``catalog.units_deleted``.

Every public function is ``verb(ctx, actor, <ids>, <input>)``; ``..._in`` joins a caller's
transaction: ``(ctx, tx, actor, ...)``.

A write reports every problem of its input in one 422 (``errors``): the fields' own (an
:class:`~propmubi.validation.InvalidInput` from the routes carries those and the fields valid
on their own), and the checks against the tower, the project and the other rows (a floor above
the tower, another currency, a code or tower name already taken) on the fields that are valid.
A code or name already taken is a 409 when it is the only problem. Nothing is written unless
the input is right as a whole.
"""

from __future__ import annotations

import uuid
from typing import Any

import attrs

from propmubi import cursors
from propmubi.actors import Actor
from propmubi.db import Tx, UniqueViolation
from propmubi.errors import Conflict, FieldError, NotFound, ValidationFailed
from propmubi.ids import uuid7
from propmubi.validation import InvalidInput
from propmubi_plugins.catalog import access
from propmubi_plugins.catalog import store as projects_store
from propmubi_plugins.catalog.events import (
    PriceChanged,
    ProjectUpdated,
    UnitsDeleted,
    UnitStatusChanged,
)
from propmubi_plugins.catalog.search import store as search_store
from propmubi_plugins.catalog.search.cache import invalidate_after_commit
from propmubi_plugins.catalog.state import Ctx
from propmubi_plugins.catalog.units import csv_import, store
from propmubi_plugins.catalog.units.models import (
    UNIT_STATUSES,
    TowerIn,
    TowerPatch,
    UnitIn,
    UnitPatch,
    UnitQuery,
    UnitsCsvIn,
    UnitStatusIn,
)

# --------------------------------------------------------------------------------------------
# Towers
# --------------------------------------------------------------------------------------------


async def _tower_for_write(ctx: Ctx, tx: Tx, actor: Actor, tower_id: uuid.UUID, what: str
                           ) -> tuple[dict[str, Any], dict[str, Any]]:
    """The tower's project (locked) and the tower, for a change of ``what`` (towers, units)."""
    tower = await store.tower(tx, tower_id)
    if tower is None:
        raise access.not_found("tower", tower_id)
    try:
        project = await access.project_for_write(ctx, tx, actor, tower["project_id"])
    except NotFound:
        raise access.not_found("tower", tower_id) from None
    access.refuse_in_review(actor, project, [what])
    return project, tower


def _given(data: Any) -> tuple[dict[str, Any], list[FieldError]]:
    """The fields of an input to check further (all of a valid one; of an
    :class:`InvalidInput`, those valid on their own) and the problems already found in it."""
    if isinstance(data, InvalidInput):
        return dict(data.valid), list(data.errors)
    return attrs.asdict(data), []


def _refuse(errors: list[FieldError], taken: FieldError | None) -> None:
    """Raise the input's problems: one 422 listing them all (with ``taken``, a code or name
    in use, among them); ``taken`` alone is a 409 naming its field."""
    if errors:
        raise ValidationFailed([*errors, *([taken] if taken else [])])
    if taken is not None:
        raise Conflict(taken["message"], field=taken["field"])


async def _name_taken(tx: Tx, project_id: uuid.UUID, name: str | None,
                      tower_id: uuid.UUID | None = None) -> FieldError | None:
    if name is None or not await store.tower_name_taken(tx, project_id, name, tower_id):
        return None
    return FieldError("body", "name", f"the project already has a tower named {name!r}")


async def create_tower(ctx: Ctx, actor: Actor, project_id: uuid.UUID,
                       data: TowerIn | InvalidInput) -> dict[str, Any]:
    """Add a tower to a project (a name in use is reported with the body's problems)."""
    values, errors = _given(data)
    name = values["name"].strip() if "name" in values else None
    try:
        async with ctx.db.transaction() as tx:
            project = await access.project_for_write(ctx, tx, actor, project_id)
            access.refuse_in_review(actor, project, ["towers"])
            _refuse(errors, await _name_taken(tx, project_id, name))
            assert isinstance(data, TowerIn)  # an InvalidInput has errors
            row = await store.insert_tower(tx, uuid7(), project_id, data.name.strip(),
                                           data.floors)
            await access.project_changed(ctx, tx, project, ["towers"], actor)
            return row
    except UniqueViolation:  # a concurrent insert (the project's lock orders ours)
        raise Conflict(f"the project already has a tower named {name!r}",
                       field="name") from None


async def towers(ctx: Ctx, actor: Actor | None, project_id: uuid.UUID) -> list[dict[str, Any]]:
    """A visible project's towers."""
    await access.visible_project(ctx.db, actor, str(project_id))
    return await store.towers_of(ctx.db, project_id)


async def update_tower(ctx: Ctx, actor: Actor, tower_id: uuid.UUID,
                       data: TowerPatch | InvalidInput) -> dict[str, Any]:
    """Rename a tower or change its floors (not below a floor that has units); every problem
    of the change at once."""
    values, errors = _given(data)
    name = values["name"].strip() if values.get("name") else None
    floors = values.get("floors")
    try:
        async with ctx.db.transaction() as tx:
            project, _ = await _tower_for_write(ctx, tx, actor, tower_id, "towers")
            if floors is not None:
                highest = await store.highest_unit_floor(tx, tower_id)
                if highest is not None and highest > floors:
                    errors.append(FieldError("body", "floors",
                                             f"a unit of this tower is on floor {highest}"))
            _refuse(errors, await _name_taken(tx, project["id"], name, tower_id))
            row = await store.update_tower(tx, tower_id, name, floors)
            await access.project_changed(ctx, tx, project, ["towers"], actor)
            return row
    except UniqueViolation:
        raise Conflict("the project already has a tower of that name", field="name") from None


async def delete_tower(ctx: Ctx, actor: Actor, tower_id: uuid.UUID) -> None:
    """Delete a tower with its units (the project's derived columns follow)."""
    async with ctx.db.transaction() as tx:
        project, _ = await _tower_for_write(ctx, tx, actor, tower_id, "towers")
        units = await store.delete_tower(tx, tower_id)
        await store.recompute_derived(tx, [project["id"]])
        await access.project_changed(ctx, tx, project,
                                     ["towers", "units"] if units else ["towers"], actor)
        if units:
            await ctx.publish(tx, UnitsDeleted(project_id=project["id"], unit_ids=units,
                                               tower_id=tower_id), actor=actor.ref)


# --------------------------------------------------------------------------------------------
# Units
# --------------------------------------------------------------------------------------------


def _check_unit(values: dict[str, Any], floors: int | None, currency: str
                ) -> list[FieldError]:
    """The rules an input class cannot check alone: the tower's floors, the project's
    currency, super area against carpet area. Each is checked when its values are there
    (a CSV row's cells valid on their own, say), so that they come with the fields' own."""
    errors = []
    floor = values.get("floor")
    if floors is not None and floor is not None and floor > floors:
        errors.append(FieldError("body", "floor", f"the tower has {floors} floors"))
    if values.get("currency", currency) != currency:
        errors.append(FieldError("body", "currency",
                                 f"the project's prices are in {currency}"))
    sup, carpet = values.get("super_area_sqft"), values.get("carpet_area_sqft")
    if sup is not None and carpet is not None and sup < carpet:
        errors.append(FieldError("body", "super_area_sqft", "must be at least the carpet area"))
    return errors


def _unit_row(data: UnitIn, project_id: uuid.UUID, tower_id: uuid.UUID) -> dict[str, Any]:
    row = attrs.asdict(data)
    row.update(id=uuid7(), project_id=project_id, tower_id=tower_id, code=data.code.strip(),
               carpet_area_sqft=round(data.carpet_area_sqft, 2),
               super_area_sqft=(None if data.super_area_sqft is None
                                else round(data.super_area_sqft, 2)))
    return row


async def _code_taken(tx: Tx, tower_id: uuid.UUID, code: str | None,
                      unit_id: uuid.UUID | None = None) -> FieldError | None:
    if not code or not await store.code_taken(tx, tower_id, code, unit_id):
        return None
    return FieldError("body", "code", f"the tower already has a unit {code!r}")


async def create_unit(ctx: Ctx, actor: Actor, tower_id: uuid.UUID, data: UnitIn | InvalidInput
                      ) -> dict[str, Any]:
    """Add a unit to a tower; the project's derived columns follow in the same transaction.

    :raises ValidationFailed: every problem at once: the body's (``data`` an
        :class:`InvalidInput`), a floor above the tower, another currency, a super area below
        the carpet area, a code the tower has.
    :raises Conflict: a code the tower has, when nothing else is wrong.
    """
    values, errors = _given(data)
    code = values["code"].strip() if "code" in values else None
    try:
        async with ctx.db.transaction() as tx:
            project, tower = await _tower_for_write(ctx, tx, actor, tower_id, "units")
            errors += _check_unit(values, tower["floors"], project["currency"])
            _refuse(errors, await _code_taken(tx, tower_id, code))
            assert isinstance(data, UnitIn)  # an InvalidInput has errors
            row = _unit_row(data, project["id"], tower_id)
            await store.insert_units(tx, [row])
            await store.recompute_derived(tx, [project["id"]])
            await access.project_changed(ctx, tx, project, ["units"], actor)
            return await store.unit(tx, row["id"])  # type: ignore[return-value]
    except UniqueViolation:  # a concurrent insert (the project's lock orders ours)
        raise Conflict(f"the tower already has a unit {code!r}", field="code") from None


async def unit(ctx: Ctx, actor: Actor | None, unit_id: uuid.UUID) -> dict[str, Any]:
    """A unit of a project the actor may see."""
    row = await store.unit(ctx.db, unit_id)
    if row is None:
        raise access.not_found("unit", unit_id)
    parent = await projects_store.project(ctx.db, row["project_id"])
    if parent is None or not access.can_see_project(actor, parent):
        raise access.not_found("unit", unit_id)
    return row


async def units(ctx: Ctx, actor: Actor | None, project_id: uuid.UUID, query: UnitQuery
                ) -> tuple[list[dict[str, Any]], str | None]:
    """A visible project's units by tower (name), floor and code: a page and the next page's
    cursor.

    :raises ValidationFailed: a cursor that is not one of this list's.
    """
    after = None
    if query.cursor:
        try:
            parts = cursors.unpack(query.cursor)
            if (len(parts) != 4 or not isinstance(parts[0], str)
                    or type(parts[1]) is not int or not isinstance(parts[2], str)
                    or not isinstance(parts[3], str) or "\x00" in parts[0] + parts[2]):
                raise ValueError("not a unit cursor")
            after = (parts[0], parts[1], parts[2], uuid.UUID(parts[3]))
        except ValueError:
            raise access.bad_cursor() from None
    await access.visible_project(ctx.db, actor, str(project_id))
    rows = await store.units_of(ctx.db, project_id, query.tower_id, query.status, after,
                                query.limit + 1)
    more = len(rows) > query.limit
    rows = rows[:query.limit]
    last = rows[-1] if more else None
    return rows, (cursors.pack([last["tower_name"], last["floor"], last["code"],
                                str(last["id"])]) if last else None)


async def _unit_for_write(ctx: Ctx, tx: Tx, actor: Actor, unit_id: uuid.UUID
                          ) -> tuple[dict[str, Any], dict[str, Any]]:
    row = await store.unit(tx, unit_id)
    if row is None:
        raise access.not_found("unit", unit_id)
    try:
        parent = await access.project_for_write(ctx, tx, actor, row["project_id"])
    except NotFound:
        raise access.not_found("unit", unit_id) from None
    access.refuse_in_review(actor, parent, ["units"])
    # Read again under the project's lock: the first read may predate a concurrent change.
    return parent, await store.unit(tx, unit_id)  # type: ignore[return-value]


async def _apply_unit_changes(ctx: Ctx, tx: Tx, actor: Actor, parent: dict[str, Any],
                              current: dict[str, Any], changes: dict[str, Any]
                              ) -> dict[str, Any]:
    """Write a unit's changes, recompute the project, publish what changed."""
    row = await store.update_unit(tx, current["id"], changes)
    await store.recompute_derived(tx, [parent["id"]])
    invalidate_after_commit(ctx, tx, parent["city"])
    if "status" in changes:
        await ctx.publish(tx, UnitStatusChanged(
            project_id=parent["id"], unit_id=current["id"], old_status=current["status"],
            new_status=changes["status"]), actor=actor.ref)
    if "price_minor" in changes:
        await ctx.publish(tx, PriceChanged(
            project_id=parent["id"], unit_id=current["id"],
            old_price_minor=current["price_minor"], new_price_minor=changes["price_minor"],
            currency=current["currency"].strip()), actor=actor.ref)
    others = sorted(set(changes) - {"status", "price_minor"})
    if others:
        await ctx.publish(tx, ProjectUpdated(
            project_id=parent["id"], builder_id=parent["builder_id"],
            fields=["units"], moderation=parent["moderation"]), actor=actor.ref)
    return row


async def update_unit(ctx: Ctx, actor: Actor, unit_id: uuid.UUID,
                      data: UnitPatch | InvalidInput) -> dict[str, Any]:
    """Edit a unit; a new price publishes ``catalog.price_changed``, a new status
    ``catalog.unit_status_changed``. Every problem of the change at once (as
    :func:`create_unit`)."""
    values, errors = _given(data)
    try:
        async with ctx.db.transaction() as tx:
            parent, current = await _unit_for_write(ctx, tx, actor, unit_id)
            changes = {k: v for k, v in values.items() if v is not None and current[k] != v}
            if "code" in changes:
                changes["code"] = changes["code"].strip()
            for key in ("carpet_area_sqft", "super_area_sqft"):
                if key in changes:
                    changes[key] = round(changes[key], 2)
            # The unit as it would be; a field the body got wrong is compared with nothing.
            merged = {**current, **changes, **{e["field"]: None for e in errors}}
            merged["currency"] = parent["currency"]
            errors += _check_unit(merged, current["tower_floors"], parent["currency"])
            code = changes.get("code")
            _refuse(errors, await _code_taken(tx, current["tower_id"], code, unit_id))
            if not changes:
                return current
            return await _apply_unit_changes(ctx, tx, actor, parent, current, changes)
    except UniqueViolation:
        raise Conflict("the tower already has a unit with that code", field="code") from None


async def set_unit_status(ctx: Ctx, actor: Actor, unit_id: uuid.UUID, data: UnitStatusIn
                          ) -> dict[str, Any]:
    """Move a unit's status (publishes ``catalog.unit_status_changed`` when it moves)."""
    async with ctx.db.transaction() as tx:
        parent, current = await _unit_for_write(ctx, tx, actor, unit_id)
        if current["status"] == data.status:
            return current
        return await _apply_unit_changes(ctx, tx, actor, parent, current,
                                         {"status": data.status})


async def set_unit_status_in(ctx: Ctx, tx: Tx, actor: Actor, unit_id: uuid.UUID, status: str
                             ) -> dict[str, Any] | None:
    """The same in a caller's transaction, without permission checks (other plugins through
    ``api.py``: bookings holding and selling units). None for an unknown unit.

    Only the unit's row is locked, never its project's: holds of a project's units by many
    buyers at once must not queue behind one row. The project's derived columns (units
    available, price range) follow from ``catalog.unit_status_changed`` in the worker
    (:func:`propmubi_plugins.catalog.handlers.on_unit_status_changed`), within a second.
    """
    if status not in UNIT_STATUSES:
        raise ValueError(f"unknown unit status {status!r}")
    current = await store.unit(tx, unit_id, lock=True)
    if current is None:
        return None
    if current["status"] == status:
        return current
    row = await store.update_unit(tx, unit_id, {"status": status})
    city = await search_store.project_city(tx, current["project_id"])
    invalidate_after_commit(ctx, tx, city)
    await ctx.publish(tx, UnitStatusChanged(
        project_id=current["project_id"], unit_id=unit_id, old_status=current["status"],
        new_status=status), actor=actor.ref)
    return row


async def delete_unit(ctx: Ctx, actor: Actor, unit_id: uuid.UUID) -> None:
    """Delete a unit."""
    async with ctx.db.transaction() as tx:
        parent, _ = await _unit_for_write(ctx, tx, actor, unit_id)
        await store.delete_unit(tx, unit_id)
        await store.recompute_derived(tx, [parent["id"]])
        await access.project_changed(ctx, tx, parent, ["units"], actor)
        await ctx.publish(tx, UnitsDeleted(project_id=parent["id"], unit_ids=[unit_id]),
                          actor=actor.ref)


async def import_units(ctx: Ctx, actor: Actor, project_id: uuid.UUID, data: UnitsCsvIn
                       ) -> dict[str, Any]:
    """Create units from a CSV (see :mod:`propmubi_plugins.catalog.units.csv_import`): all
    of them in one transaction, or none and a 422 listing every bad row.

    Towers must exist (the floor check needs each tower's floor count, which a unit row does
    not carry); codes must be new within their tower and unique in the file.
    """
    # Permission first: a stranger learns nothing from the file's problems.
    async with ctx.db.transaction() as tx:
        project = await access.project_for_write(ctx, tx, actor, project_id)
        access.refuse_in_review(actor, project, ["units"])
    rows, errors = csv_import.parse(data.text)  # raises ValidationFailed for a wrong shape
    try:
        async with ctx.db.transaction() as tx:
            parent = await access.project_for_write(ctx, tx, actor, project_id)
            access.refuse_in_review(actor, parent, ["units"])
            towers_by_name = await store.towers_by_name(tx, project_id)
            existing = await store.existing_codes(tx, project_id)
            seen: dict[tuple[str, str], int] = {}
            new_rows = []
            for parsed in rows:
                # Every check whose cells are valid runs, so a row reports all its problems.
                found = []
                tower = towers_by_name.get(parsed.tower)
                if tower is None and parsed.tower:
                    found.append(("tower", f"no tower named {parsed.tower!r} in this project "
                                           "(create it first)"))
                code = parsed.values.get("code", "").strip()
                key = (parsed.tower, code)
                if code and parsed.tower and key in seen:
                    found.append(("code", f"duplicate of row {seen[key]} ({code!r} in tower "
                                          f"{parsed.tower!r})"))
                elif code and parsed.tower:
                    seen[key] = parsed.row
                    if tower is not None and (tower["id"], code) in existing:
                        found.append(("code", f"tower {parsed.tower!r} already has a unit "
                                              f"{code!r}"))
                found += [(e["field"], e["message"]) for e in _check_unit(
                    parsed.values, tower["floors"] if tower else None, parent["currency"])]
                errors += [csv_import.row_error(parsed.row, parsed.line, column, message)
                           for column, message in found]
                if parsed.unit is not None and tower is not None and not found:
                    new_rows.append(_unit_row(parsed.unit, project_id, tower["id"]))
            if errors:
                raise csv_import.rejected(sorted(errors, key=lambda e: e["row"]))
            await store.insert_units(tx, new_rows)
            await store.recompute_derived(tx, [project_id])
            await access.project_changed(ctx, tx, parent, ["units"], actor)
            return {"imported": len(new_rows),
                    "project": await projects_store.project(tx, project_id)}
    except UniqueViolation:  # a concurrent insert of the same code
        raise Conflict("a unit code of the file was created meanwhile; try again") from None
