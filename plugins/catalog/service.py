"""The catalogue rules: builders, projects and their moderation, towers, units, CSV import.

Who may do what:

- a user with the ``builder`` role manages one builder profile (theirs) and its projects;
- ``staff`` (and ``admin``, which passes every role check) may do everything, for any builder;
- anyone may read builders and *published* projects.

A project that the caller may not see answers 404 (others' drafts do not exist for them); a
write to something the caller may see but does not own answers 403.

Moderation: draft --submit--> in_review --publish--> published; in_review --reject-->
rejected --submit--> in_review; published --unpublish (staff)--> draft. Every step is a row in
catalog_project_reviews and an event, in the transaction of the change.

Edits of a published project by its builder stay public (and publish
``catalog.project_updated`` with the fields): taking a live listing down for a typo or a new
amenity would hurt buyers and builders, and unit prices and availability must change live. The
fields that identify the project legally and on the map (name, city, locality, coordinates,
RERA number) are approved facts, though: a builder cannot change them on a published project
(409, ask staff), so an approved listing cannot be turned into another one afterwards.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
import uuid
from typing import Any

import attrs

from propmubi.context import Services
from propmubi.db import Database, Tx, UniqueViolation
from propmubi.errors import Conflict, FieldError, Forbidden, NotFound, ValidationFailed
from propmubi.events import publish
from propmubi.ids import uuid7
from propmubi_plugins.catalog import cache, media, store
from propmubi_plugins.catalog.events import (
    PriceChanged,
    ProjectCreated,
    ProjectDeleted,
    ProjectPublished,
    ProjectUpdated,
    UnitsDeleted,
    UnitStatusChanged,
)
from propmubi_plugins.catalog.inputs import (
    LOCKED_WHEN_PUBLISHED,
    UNIT_STATUSES,
    BuilderIn,
    BuilderPatch,
    ProjectIn,
    ProjectPatch,
    TowerIn,
    TowerPatch,
    UnitIn,
    UnitPatch,
)


async def start(services: Services) -> None:
    """Prepare this process's catalogue runtime: the media backend and the search cache."""
    await media.start(services)
    await cache.start(services)


async def stop(services: Services) -> None:
    """Forget this process's catalogue runtime."""
    await cache.stop(services)
    await media.stop(services)


# --------------------------------------------------------------------------------------------
# Callers and permissions
# --------------------------------------------------------------------------------------------


@attrs.frozen
class Caller:
    """Who asks: a signed-in user and their roles (None for anonymous reads)."""

    user_id: uuid.UUID
    roles: frozenset[str] = attrs.field(factory=frozenset, converter=frozenset)
    #: "user" (an API caller) or "staff" (a console account, whose id is not a user id).
    kind: str = "user"

    @classmethod
    def console(cls, staff_id: uuid.UUID) -> Caller:
        """A staff member acting in the console."""
        return cls(user_id=staff_id, roles={"staff"}, kind="staff")

    @property
    def staff(self) -> bool:
        """Staff and admins may do everything in the catalogue."""
        return bool({"staff", "admin"} & self.roles)

    @property
    def actor(self) -> str:
        """The actor recorded on events and reviews."""
        return f"{self.kind}:{self.user_id}"


def _owns(caller: Caller | None, row: dict[str, Any]) -> bool:
    return (caller is not None and caller.kind == "user"
            and row.get("owner_user_id") == caller.user_id)


def can_see_project(caller: Caller | None, project: dict[str, Any]) -> bool:
    """Published projects are public; others only to their builder and staff."""
    return (project["moderation"] == "published" or _owns(caller, project)
            or (caller is not None and caller.staff))


def _not_found(what: str, ident: Any) -> NotFound:
    return NotFound(f"no {what} {ident}")


async def _project_for_write(tx: Tx, caller: Caller, project_id: uuid.UUID
                             ) -> dict[str, Any]:
    """The project, locked; 404 when the caller may not see it, 403 when they may see but
    not change it."""
    project = await store.project(tx, project_id, lock=True)
    if project is None or not can_see_project(caller, project):
        raise _not_found("project", project_id)
    if not (caller.staff or _owns(caller, project)):
        raise Forbidden("only the project's builder or staff may change it")
    return project


def _invalid(field: str, message: str) -> ValidationFailed:
    return ValidationFailed([FieldError("body", field, message)])


def slugify(*parts: str) -> str:
    """ASCII, lower-case, dash-separated (``"Godrej Woods, Sector 43"`` ->
    ``godrej-woods-sector-43``)."""
    text = " ".join(parts)
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:80].strip("-") or "x"


def _unique_slug(base: str, ident: uuid.UUID) -> str:
    # The id's last characters keep slugs unique without a lookup (and stable: a rename does
    # not change the public URL).
    return f"{base}-{ident.hex[-6:]}"


async def _changed(tx: Tx, project: dict[str, Any], fields: list[str], caller: Caller,
                   reason: str | None = None, moderation: str | None = None) -> None:
    # Cached answers go stale at commit, without waiting for the worker to handle the event.
    cache.invalidate_after_commit(tx, None, None if "city" in fields else project["city"])
    await publish(tx, ProjectUpdated(
        project_id=project["id"], builder_id=project["builder_id"], fields=fields,
        moderation=moderation or project["moderation"], reason=reason), actor=caller.actor)


# --------------------------------------------------------------------------------------------
# Builders
# --------------------------------------------------------------------------------------------


async def create_builder(db: Database, caller: Caller, data: BuilderIn) -> dict[str, Any]:
    """Create a builder profile: the caller's own, or (staff) anyone's or nobody's.

    :raises Forbidden: a non-staff caller names another owner.
    :raises Conflict: the owner already has a builder profile.
    """
    owner = data.owner_user_id
    if not caller.staff:
        if owner is not None and owner != caller.user_id:
            raise Forbidden("only staff may create a builder profile for someone else")
        owner = caller.user_id
    builder_id = uuid7()
    row = {"id": builder_id, "owner_user_id": owner, "name": data.name.strip(),
           "slug": _unique_slug(slugify(data.name), builder_id),
           "rera_promoter_id": data.rera_promoter_id, "description": data.description,
           "website": data.website}
    try:
        async with db.transaction() as tx:
            return await store.insert_builder(tx, row)
    except UniqueViolation:
        raise Conflict("this user already has a builder profile; edit it with "
                       "PATCH /builders/me", field="owner_user_id") from None


async def builder(db: Database, builder_id: uuid.UUID) -> dict[str, Any]:
    """A builder's public profile."""
    row = await store.builder(db, builder_id)
    if row is None:
        raise _not_found("builder", builder_id)
    return row


async def my_builder(db: Database, caller: Caller) -> dict[str, Any]:
    """The caller's builder profile (404 until they create one)."""
    row = await store.builder_of_owner(db, caller.user_id)
    if row is None:
        raise NotFound("you have no builder profile yet; create one with POST /builders")
    return row


async def update_builder(db: Database, caller: Caller, builder_id: uuid.UUID | None,
                         data: BuilderPatch) -> dict[str, Any]:
    """Edit a builder profile: the caller's own (``builder_id`` None) or, for staff, any."""
    changes = {k: v for k, v in attrs.asdict(data).items() if v is not None}
    for key in ("rera_promoter_id", "website"):
        if changes.get(key) == "":
            changes[key] = None
    async with db.transaction() as tx:
        if builder_id is None:
            row = await store.builder_of_owner(tx, caller.user_id, lock=True)
            if row is None:
                raise NotFound("you have no builder profile yet; create one with POST /builders")
        else:
            row = await store.builder(tx, builder_id, lock=True)
            if row is None:
                raise _not_found("builder", builder_id)
            if not (caller.staff or _owns(caller, row)):
                raise Forbidden("only the builder's owner or staff may edit it")
        if "name" in changes:
            changes["name"] = changes["name"].strip()
        cache.invalidate_after_commit(tx, None)  # its projects may be in every city
        return await store.update_builder(tx, row["id"], changes)


async def set_builder_verified(tx: Tx, builder_id: uuid.UUID, verified: bool) -> bool:
    """Set the verified badge (for the legal plugin's events); False for an unknown builder."""
    cache.invalidate_after_commit(tx, None)
    return await store.set_builder_verified(tx, builder_id, verified)


# --------------------------------------------------------------------------------------------
# Projects
# --------------------------------------------------------------------------------------------


async def create_project(db: Database, caller: Caller, data: ProjectIn) -> dict[str, Any]:
    """Create a draft project for the caller's builder (staff: for ``data.builder_id``).

    :raises Conflict: a builder without a builder profile.
    """
    async with db.transaction() as tx:
        if data.builder_id is not None:
            builder_row = await store.builder(tx, data.builder_id)
            if builder_row is None:
                raise _invalid("builder_id", "no such builder")
            if not (caller.staff or _owns(caller, builder_row)):
                raise Forbidden("only staff may create projects for another builder")
        else:
            builder_row = await store.builder_of_owner(tx, caller.user_id)
            if builder_row is None:
                raise Conflict("create your builder profile first (POST /builders)"
                               if not caller.staff else
                               "staff must name the project's builder_id")
        project_id = uuid7()
        row = {**attrs.asdict(data), "id": project_id, "builder_id": builder_row["id"],
               "name": data.name.strip(), "city": data.city.strip(),
               "locality": data.locality.strip(),
               "slug": _unique_slug(slugify(data.name, data.locality), project_id)}
        await store.insert_project(tx, row)
        await publish(tx, ProjectCreated(project_id=project_id, builder_id=builder_row["id"],
                                         name=row["name"], city=row["city"]),
                      actor=caller.actor)
        return await store.project(tx, project_id)  # type: ignore[return-value]


async def project(db: Database, caller: Caller | None, ref: str) -> dict[str, Any]:
    """A project by id or slug: published ones for everyone, others for their builder and
    staff (404 to anyone else)."""
    try:
        row = await store.project(db, uuid.UUID(ref))
    except ValueError:
        row = await store.project_by_slug(db, ref)
    if row is None or not can_see_project(caller, row):
        raise _not_found("project", ref)
    return row


async def update_project(db: Database, caller: Caller, project_id: uuid.UUID,
                         data: ProjectPatch) -> dict[str, Any]:
    """Edit a project (see the module docstring for published projects)."""
    changes = {k: v for k, v in attrs.asdict(data).items() if v is not None}
    async with db.transaction() as tx:
        current = await _project_for_write(tx, caller, project_id)
        if "featured" in changes and not caller.staff:
            raise Forbidden("only staff may feature a project")
        changes = {k: v for k, v in changes.items() if current[k] != v}
        if current["moderation"] == "published" and not caller.staff:
            locked = [k for k in LOCKED_WHEN_PUBLISHED if k in changes]
            if locked:
                raise Conflict(f"{', '.join(locked)} of a published project can only be "
                               "changed by staff", fields=locked)
        if changes:
            await store.update_project(tx, project_id, changes)
            await _changed(tx, current, sorted(changes), caller)
        return await store.project(tx, project_id)  # type: ignore[return-value]


_TRANSITIONS = {
    # action: (allowed from, to, review action, staff only)
    "submit": (("draft", "rejected"), "in_review", "submitted", False),
    "publish": (("in_review",), "published", "published", True),
    "reject": (("in_review",), "rejected", "rejected", True),
    "unpublish": (("published",), "draft", "unpublished", True),
}


async def moderate(db: Database, caller: Caller, project_id: uuid.UUID, action: str,
                   reason: str | None = None) -> dict[str, Any]:
    """Move a project through the workflow; record the step and publish its event.

    :raises Conflict: the project is not in a state the action starts from.
    """
    allowed, target, review_action, staff_only = _TRANSITIONS[action]
    async with db.transaction() as tx:
        current = await _project_for_write(tx, caller, project_id)
        if staff_only and not caller.staff:
            raise Forbidden(f"only staff may {action} a project")
        if current["moderation"] not in allowed:
            raise Conflict(f"cannot {action} a project that is {current['moderation']} "
                           f"(only from {' or '.join(allowed)})",
                           moderation=current["moderation"])
        await store.set_moderation(tx, project_id, target,
                                   reason if action in ("reject", "unpublish") else None)
        await store.add_review(tx, project_id, review_action, reason, caller.actor)
        if action == "publish":
            cache.invalidate_after_commit(tx, None, current["city"])
            await publish(tx, ProjectPublished(project_id=project_id,
                                               builder_id=current["builder_id"],
                                               city=current["city"]), actor=caller.actor)
        else:
            await _changed(tx, current, ["moderation"], caller, reason=reason,
                           moderation=target)
        return await store.project(tx, project_id)  # type: ignore[return-value]


async def delete_project(db: Database, caller: Caller, project_id: uuid.UUID) -> None:
    """Delete a project: its builder while it is not published, staff always."""
    async with db.transaction() as tx:
        current = await _project_for_write(tx, caller, project_id)
        if current["moderation"] == "published" and not caller.staff:
            raise Conflict("a published project cannot be deleted by its builder; ask staff "
                           "to unpublish it first")
        await store.delete_project(tx, project_id)
        cache.invalidate_after_commit(tx, None, current["city"])
        await publish(tx, ProjectDeleted(project_id=project_id,
                                         builder_id=current["builder_id"]),
                      actor=caller.actor)


async def reviews(db: Database, caller: Caller, project_id: uuid.UUID) -> list[dict[str, Any]]:
    """A project's moderation history (its builder and staff)."""
    current = await store.project(db, project_id)
    if current is None or not (caller.staff or _owns(caller, current)):
        raise _not_found("project", project_id)
    return await store.reviews(db, project_id)


async def my_projects(db: Database, caller: Caller, limit: int,
                      after: tuple[dt.datetime, uuid.UUID] | None, moderation: str | None
                      ) -> list[dict[str, Any]]:
    """The caller's builder's projects, newest first (``limit`` rows after the cursor)."""
    mine = await my_builder(db, caller)
    return await store.projects_of_builder(db, mine["id"], limit, after, moderation)


# --------------------------------------------------------------------------------------------
# Towers
# --------------------------------------------------------------------------------------------


async def _tower_for_write(tx: Tx, caller: Caller, tower_id: uuid.UUID
                           ) -> tuple[dict[str, Any], dict[str, Any]]:
    tower = await store.tower(tx, tower_id)
    if tower is None:
        raise _not_found("tower", tower_id)
    try:
        project = await _project_for_write(tx, caller, tower["project_id"])
    except NotFound:
        raise _not_found("tower", tower_id) from None
    return project, tower


async def create_tower(db: Database, caller: Caller, project_id: uuid.UUID, data: TowerIn
                       ) -> dict[str, Any]:
    """Add a tower to a project."""
    try:
        async with db.transaction() as tx:
            project = await _project_for_write(tx, caller, project_id)
            row = await store.insert_tower(tx, uuid7(), project_id, data.name.strip(),
                                           data.floors)
            await _changed(tx, project, ["towers"], caller)
            return row
    except UniqueViolation:
        raise Conflict(f"the project already has a tower named {data.name.strip()!r}",
                       field="name") from None


async def towers(db: Database, caller: Caller | None, project_id: uuid.UUID
                 ) -> list[dict[str, Any]]:
    """A visible project's towers."""
    await project(db, caller, str(project_id))
    return await store.towers_of(db, project_id)


async def update_tower(db: Database, caller: Caller, tower_id: uuid.UUID, data: TowerPatch
                       ) -> dict[str, Any]:
    """Rename a tower or change its floors (not below a floor that has units)."""
    try:
        async with db.transaction() as tx:
            project, _ = await _tower_for_write(tx, caller, tower_id)
            if data.floors is not None:
                highest = await store.highest_unit_floor(tx, tower_id)
                if highest is not None and highest > data.floors:
                    raise _invalid("floors", f"a unit of this tower is on floor {highest}")
            row = await store.update_tower(
                tx, tower_id, data.name.strip() if data.name else None, data.floors)
            await _changed(tx, project, ["towers"], caller)
            return row
    except UniqueViolation:
        raise Conflict("the project already has a tower of that name", field="name") from None


async def delete_tower(db: Database, caller: Caller, tower_id: uuid.UUID) -> None:
    """Delete a tower with its units (the project's derived columns follow)."""
    async with db.transaction() as tx:
        project, _ = await _tower_for_write(tx, caller, tower_id)
        units = await store.delete_tower(tx, tower_id)
        await store.recompute_derived(tx, [project["id"]])
        await _changed(tx, project, ["towers", "units"] if units else ["towers"], caller)
        if units:
            await publish(tx, UnitsDeleted(project_id=project["id"], unit_ids=units,
                                           tower_id=tower_id), actor=caller.actor)


# --------------------------------------------------------------------------------------------
# Units
# --------------------------------------------------------------------------------------------


def _check_unit(values: dict[str, Any], floors: int, currency: str, prefix: str = ""
                ) -> list[FieldError]:
    """The rules an input class cannot check alone: the tower's floors, the project's
    currency, super area against a stored carpet area."""
    errors = []
    if values["floor"] > floors:
        errors.append(FieldError("body", prefix + "floor",
                                 f"the tower has {floors} floors"))
    if values.get("currency", currency) != currency:
        errors.append(FieldError("body", prefix + "currency",
                                 f"the project's prices are in {currency}"))
    sup, carpet = values.get("super_area_sqft"), values["carpet_area_sqft"]
    if sup is not None and sup < carpet:
        errors.append(FieldError("body", prefix + "super_area_sqft",
                                 "must be at least the carpet area"))
    return errors


def _unit_row(data: UnitIn, project_id: uuid.UUID, tower_id: uuid.UUID) -> dict[str, Any]:
    row = attrs.asdict(data)
    row.update(id=uuid7(), project_id=project_id, tower_id=tower_id, code=data.code.strip(),
               carpet_area_sqft=round(data.carpet_area_sqft, 2),
               super_area_sqft=(None if data.super_area_sqft is None
                                else round(data.super_area_sqft, 2)))
    return row


async def create_unit(db: Database, caller: Caller, tower_id: uuid.UUID, data: UnitIn
                      ) -> dict[str, Any]:
    """Add a unit to a tower; the project's derived columns follow in the same transaction."""
    try:
        async with db.transaction() as tx:
            project, tower = await _tower_for_write(tx, caller, tower_id)
            errors = _check_unit(attrs.asdict(data), tower["floors"], project["currency"])
            if errors:
                raise ValidationFailed(errors)
            row = _unit_row(data, project["id"], tower_id)
            await store.insert_units(tx, [row])
            await store.recompute_derived(tx, [project["id"]])
            await _changed(tx, project, ["units"], caller)
            return await store.unit(tx, row["id"])  # type: ignore[return-value]
    except UniqueViolation:
        raise Conflict(f"the tower already has a unit {data.code.strip()!r}",
                       field="code") from None


async def unit(db: Database, caller: Caller | None, unit_id: uuid.UUID) -> dict[str, Any]:
    """A unit of a project the caller may see."""
    row = await store.unit(db, unit_id)
    if row is None:
        raise _not_found("unit", unit_id)
    parent = await store.project(db, row["project_id"])
    if parent is None or not can_see_project(caller, parent):
        raise _not_found("unit", unit_id)
    return row


async def units(db: Database, caller: Caller | None, project_id: uuid.UUID,
                tower_id: uuid.UUID | None, status: str | None, after: uuid.UUID | None,
                limit: int) -> list[dict[str, Any]]:
    """A visible project's units (id order, after a cursor)."""
    await project(db, caller, str(project_id))
    return await store.units_of(db, project_id, tower_id, status, after, limit)


async def _unit_for_write(tx: Tx, caller: Caller, unit_id: uuid.UUID
                          ) -> tuple[dict[str, Any], dict[str, Any]]:
    row = await store.unit(tx, unit_id)
    if row is None:
        raise _not_found("unit", unit_id)
    try:
        parent = await _project_for_write(tx, caller, row["project_id"])
    except NotFound:
        raise _not_found("unit", unit_id) from None
    # Read again under the project's lock: the first read may predate a concurrent change.
    return parent, await store.unit(tx, unit_id)  # type: ignore[return-value]


async def _apply_unit_changes(tx: Tx, actor: str, parent: dict[str, Any],
                              current: dict[str, Any], changes: dict[str, Any],
                              caller: Caller | None = None) -> dict[str, Any]:
    """Write a unit's changes, recompute the project, publish what changed."""
    row = await store.update_unit(tx, current["id"], changes)
    await store.recompute_derived(tx, [parent["id"]])
    cache.invalidate_after_commit(tx, None, parent["city"])
    if "status" in changes:
        await publish(tx, UnitStatusChanged(
            project_id=parent["id"], unit_id=current["id"], old_status=current["status"],
            new_status=changes["status"]), actor=actor)
    if "price_minor" in changes:
        await publish(tx, PriceChanged(
            project_id=parent["id"], unit_id=current["id"],
            old_price_minor=current["price_minor"], new_price_minor=changes["price_minor"],
            currency=current["currency"].strip()), actor=actor)
    others = sorted(set(changes) - {"status", "price_minor"})
    if others:
        await publish(tx, ProjectUpdated(
            project_id=parent["id"], builder_id=parent["builder_id"],
            fields=["units"], moderation=parent["moderation"]), actor=actor)
    return row


async def update_unit(db: Database, caller: Caller, unit_id: uuid.UUID, data: UnitPatch
                      ) -> dict[str, Any]:
    """Edit a unit; a new price publishes ``catalog.price_changed``, a new status
    ``catalog.unit_status_changed``."""
    try:
        async with db.transaction() as tx:
            parent, current = await _unit_for_write(tx, caller, unit_id)
            changes = {k: v for k, v in attrs.asdict(data).items()
                       if v is not None and current[k] != v}
            if "code" in changes:
                changes["code"] = changes["code"].strip()
            for key in ("carpet_area_sqft", "super_area_sqft"):
                if key in changes:
                    changes[key] = round(changes[key], 2)
            merged = {**current, **changes}
            merged["currency"] = parent["currency"]
            errors = _check_unit(merged, current["tower_floors"], parent["currency"])
            if errors:
                raise ValidationFailed(errors)
            if not changes:
                return current
            return await _apply_unit_changes(tx, caller.actor, parent, current, changes)
    except UniqueViolation:
        raise Conflict("the tower already has a unit with that code", field="code") from None


async def set_unit_status(db: Database, caller: Caller, unit_id: uuid.UUID, status: str
                          ) -> dict[str, Any]:
    """Move a unit's status (publishes ``catalog.unit_status_changed`` when it moves)."""
    async with db.transaction() as tx:
        parent, current = await _unit_for_write(tx, caller, unit_id)
        if current["status"] == status:
            return current
        return await _apply_unit_changes(tx, caller.actor, parent, current,
                                         {"status": status})


async def set_unit_status_in(tx: Tx, unit_id: uuid.UUID, status: str, actor: str
                             ) -> dict[str, Any] | None:
    """The same in a caller's transaction, without permission checks (other plugins through
    ``api.py``: bookings holding and selling units). None for an unknown unit."""
    if status not in UNIT_STATUSES:
        raise ValueError(f"unknown unit status {status!r}")
    row = await store.unit(tx, unit_id)
    if row is None:
        return None
    parent = await store.project(tx, row["project_id"], lock=True)
    current = await store.unit(tx, unit_id)
    if parent is None or current is None:
        return None
    if current["status"] == status:
        return current
    return await _apply_unit_changes(tx, actor, parent, current, {"status": status})


async def delete_unit(db: Database, caller: Caller, unit_id: uuid.UUID) -> None:
    """Delete a unit."""
    async with db.transaction() as tx:
        parent, _ = await _unit_for_write(tx, caller, unit_id)
        await store.delete_unit(tx, unit_id)
        await store.recompute_derived(tx, [parent["id"]])
        await _changed(tx, parent, ["units"], caller)
        await publish(tx, UnitsDeleted(project_id=parent["id"], unit_ids=[unit_id]),
                      actor=caller.actor)


async def import_units(db: Database, caller: Caller, project_id: uuid.UUID, text: str
                       ) -> dict[str, Any]:
    """Create units from a CSV (see :mod:`propmubi_plugins.catalog.csv_import`): all of them
    in one transaction, or none and a 422 listing every bad row.

    Towers must exist (the floor check needs each tower's floor count, which a unit row does
    not carry); codes must be new within their tower and unique in the file.
    """
    from propmubi_plugins.catalog import csv_import

    # Permission first: a stranger learns nothing from the file's problems.
    async with db.transaction() as tx:
        await _project_for_write(tx, caller, project_id)
    rows, errors = csv_import.parse(text)  # raises ValidationFailed for a wrong shape
    try:
        async with db.transaction() as tx:
            parent = await _project_for_write(tx, caller, project_id)
            towers_by_name = await store.towers_by_name(tx, project_id)
            existing = await store.existing_codes(tx, project_id)
            seen: dict[tuple[str, str], int] = {}
            new_rows = []
            for parsed in rows:
                tower = towers_by_name.get(parsed.tower)
                if tower is None:
                    errors.append(csv_import.row_error(
                        parsed.row, parsed.line, "tower",
                        f"no tower named {parsed.tower!r} in this project (create it first)"))
                    continue
                key = (parsed.tower, parsed.unit.code.strip())
                if key in seen:
                    errors.append(csv_import.row_error(
                        parsed.row, parsed.line, "code",
                        f"duplicate of row {seen[key]} ({key[1]!r} in tower {key[0]!r})"))
                    continue
                seen[key] = parsed.row
                if (tower["id"], key[1]) in existing:
                    errors.append(csv_import.row_error(
                        parsed.row, parsed.line, "code",
                        f"tower {key[0]!r} already has a unit {key[1]!r}"))
                    continue
                for error in _check_unit(attrs.asdict(parsed.unit), tower["floors"],
                                         parent["currency"]):
                    errors.append(csv_import.row_error(parsed.row, parsed.line,
                                                       error["field"], error["message"]))
                new_rows.append(_unit_row(parsed.unit, project_id, tower["id"]))
            if errors:
                raise csv_import.rejected(sorted(errors, key=lambda e: e["row"]))
            await store.insert_units(tx, new_rows)
            await store.recompute_derived(tx, [project_id])
            await _changed(tx, parent, ["units"], caller)
            return {"imported": len(new_rows),
                    "project": await store.project(tx, project_id)}
    except UniqueViolation:  # a concurrent insert of the same code
        raise Conflict("a unit code of the file was created meanwhile; try again") from None

