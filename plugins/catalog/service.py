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

Every public function is ``verb(ctx, actor, <ids>, <input>)``: ``actor`` is a
:class:`~propmubi.actors.Actor` (an API user, a console staff member, the system; None for
anonymous reads) and ``actor.ref`` is what events and review rows record. Functions named
``..._in`` join a caller's transaction: ``(ctx, tx, actor, ...)``.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
import uuid
from typing import Any

import attrs

from propmubi import cursors
from propmubi.actors import Actor
from propmubi.db import Tx, UniqueViolation
from propmubi.errors import Conflict, FieldError, Forbidden, NotFound, ValidationFailed
from propmubi.ids import uuid7
from propmubi_plugins.catalog import csv_import, store
from propmubi_plugins.catalog.events import (
    PriceChanged,
    ProjectCreated,
    ProjectDeleted,
    ProjectPublished,
    ProjectUpdated,
    UnitsDeleted,
    UnitStatusChanged,
)
from propmubi_plugins.catalog.models import (
    LOCKED_WHEN_PUBLISHED,
    UNIT_STATUSES,
    BuilderIn,
    BuilderPatch,
    PageQuery,
    ProjectIn,
    ProjectPatch,
    ReasonIn,
    TowerIn,
    TowerPatch,
    UnitIn,
    UnitPatch,
    UnitQuery,
    UnitsCsvIn,
    UnitStatusIn,
)
from propmubi_plugins.catalog.search.cache import invalidate_after_commit
from propmubi_plugins.catalog.state import Ctx

# --------------------------------------------------------------------------------------------
# Permissions
# --------------------------------------------------------------------------------------------


def owns(actor: Actor | None, row: dict[str, Any]) -> bool:
    """Whether ``actor`` is the API user who manages the row's builder (``owner_user_id``)."""
    return (actor is not None and actor.kind == "user"
            and row.get("owner_user_id") is not None
            and str(row["owner_user_id"]) == actor.id)


def can_see_project(actor: Actor | None, project: dict[str, Any]) -> bool:
    """Published projects are public; others only to their builder and staff."""
    return (project["moderation"] == "published" or owns(actor, project)
            or (actor is not None and actor.is_staff))


def _not_found(what: str, ident: Any) -> NotFound:
    return NotFound(f"no {what} {ident}")


def _invalid(field: str, message: str) -> ValidationFailed:
    return ValidationFailed([FieldError("body", field, message)])


def _bad_cursor() -> ValidationFailed:
    return ValidationFailed([FieldError("query", "cursor", "not a cursor from this list")])


async def _project_for_write(tx: Tx, actor: Actor, project_id: uuid.UUID) -> dict[str, Any]:
    """The project, locked; 404 when the actor may not see it, 403 when they may see but
    not change it."""
    project = await store.project(tx, project_id, lock=True)
    if project is None or not can_see_project(actor, project):
        raise _not_found("project", project_id)
    if not (actor.is_staff or owns(actor, project)):
        raise Forbidden("only the project's builder or staff may change it")
    return project


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


async def _changed(ctx: Ctx, tx: Tx, project: dict[str, Any], fields: list[str], actor: Actor,
                   reason: str | None = None, moderation: str | None = None) -> None:
    # Cached answers go stale at commit, without waiting for the worker to handle the event.
    invalidate_after_commit(ctx, tx, None if "city" in fields else project["city"])
    await ctx.publish(tx, ProjectUpdated(
        project_id=project["id"], builder_id=project["builder_id"], fields=fields,
        moderation=moderation or project["moderation"], reason=reason), actor=actor.ref)


# --------------------------------------------------------------------------------------------
# Builders
# --------------------------------------------------------------------------------------------


async def create_builder(ctx: Ctx, actor: Actor, data: BuilderIn) -> dict[str, Any]:
    """Create a builder profile: the actor's own, or (staff) anyone's or nobody's.

    :raises Forbidden: a non-staff actor names another owner.
    :raises Conflict: the owner already has a builder profile.
    """
    owner = data.owner_user_id
    if not actor.is_staff:
        if owner is not None and owner != actor.user_id:
            raise Forbidden("only staff may create a builder profile for someone else")
        owner = actor.user_id
    builder_id = uuid7()
    row = {"id": builder_id, "owner_user_id": owner, "name": data.name.strip(),
           "slug": _unique_slug(slugify(data.name), builder_id),
           "rera_promoter_id": data.rera_promoter_id, "description": data.description,
           "website": data.website}
    try:
        async with ctx.db.transaction() as tx:
            return await store.insert_builder(tx, row)
    except UniqueViolation:
        raise Conflict("this user already has a builder profile; edit it with "
                       "PATCH /builders/me", field="owner_user_id") from None


async def builder(ctx: Ctx, actor: Actor | None, builder_id: uuid.UUID) -> dict[str, Any]:
    """A builder's public profile."""
    row = await store.builder(ctx.db, builder_id)
    if row is None:
        raise _not_found("builder", builder_id)
    return row


async def my_builder(ctx: Ctx, actor: Actor) -> dict[str, Any]:
    """The actor's builder profile (404 until they create one)."""
    row = await store.builder_of_owner(ctx.db, actor.user_id) if actor.user_id else None
    if row is None:
        raise NotFound("you have no builder profile yet; create one with POST /builders")
    return row


async def update_builder(ctx: Ctx, actor: Actor, builder_id: uuid.UUID | None,
                         data: BuilderPatch) -> dict[str, Any]:
    """Edit a builder profile: the actor's own (``builder_id`` None) or, for staff, any."""
    changes = {k: v for k, v in attrs.asdict(data).items() if v is not None}
    for key in ("rera_promoter_id", "website"):
        if changes.get(key) == "":
            changes[key] = None
    async with ctx.db.transaction() as tx:
        if builder_id is None:
            row = (await store.builder_of_owner(tx, actor.user_id, lock=True)
                   if actor.user_id else None)
            if row is None:
                raise NotFound("you have no builder profile yet; create one with POST /builders")
        else:
            row = await store.builder(tx, builder_id, lock=True)
            if row is None:
                raise _not_found("builder", builder_id)
            if not (actor.is_staff or owns(actor, row)):
                raise Forbidden("only the builder's owner or staff may edit it")
        if "name" in changes:
            changes["name"] = changes["name"].strip()
        invalidate_after_commit(ctx, tx, None)  # its projects may be in every city
        return await store.update_builder(tx, row["id"], changes)


async def set_builder_verified_in(ctx: Ctx, tx: Tx, actor: Actor, builder_id: uuid.UUID,
                                  verified: bool) -> bool:
    """Set the verified badge in ``tx`` (the legal plugin, when documents are verified or
    rejected); False for an unknown builder."""
    ctx.log.info("builder %s verified=%s by %s", builder_id, verified, actor.ref)
    invalidate_after_commit(ctx, tx, None)
    return await store.set_builder_verified(tx, builder_id, verified)


# --------------------------------------------------------------------------------------------
# Projects
# --------------------------------------------------------------------------------------------


async def create_project(ctx: Ctx, actor: Actor, data: ProjectIn) -> dict[str, Any]:
    """Create a draft project for the actor's builder (staff: for ``data.builder_id``).

    :raises Conflict: a builder without a builder profile.
    """
    async with ctx.db.transaction() as tx:
        if data.builder_id is not None:
            builder_row = await store.builder(tx, data.builder_id)
            if builder_row is None:
                raise _invalid("builder_id", "no such builder")
            if not (actor.is_staff or owns(actor, builder_row)):
                raise Forbidden("only staff may create projects for another builder")
        else:
            builder_row = (await store.builder_of_owner(tx, actor.user_id)
                           if actor.user_id else None)
            if builder_row is None:
                raise Conflict("create your builder profile first (POST /builders)"
                               if not actor.is_staff else
                               "staff must name the project's builder_id")
        project_id = uuid7()
        row = {**attrs.asdict(data), "id": project_id, "builder_id": builder_row["id"],
               "name": data.name.strip(), "city": data.city.strip(),
               "locality": data.locality.strip(),
               "slug": _unique_slug(slugify(data.name, data.locality), project_id)}
        await store.insert_project(tx, row)
        await ctx.publish(tx, ProjectCreated(project_id=project_id,
                                             builder_id=builder_row["id"], name=row["name"],
                                             city=row["city"]), actor=actor.ref)
        return await store.project(tx, project_id)  # type: ignore[return-value]


async def project(ctx: Ctx, actor: Actor | None, ref: str) -> dict[str, Any]:
    """A project by id or slug: published ones for everyone, others for their builder and
    staff (404 to anyone else)."""
    try:
        row = await store.project(ctx.db, uuid.UUID(ref))
    except ValueError:
        row = await store.project_by_slug(ctx.db, ref)
    if row is None or not can_see_project(actor, row):
        raise _not_found("project", ref)
    return row


async def update_project(ctx: Ctx, actor: Actor, project_id: uuid.UUID, data: ProjectPatch
                         ) -> dict[str, Any]:
    """Edit a project (see the module docstring for published projects)."""
    changes = {k: v for k, v in attrs.asdict(data).items() if v is not None}
    async with ctx.db.transaction() as tx:
        current = await _project_for_write(tx, actor, project_id)
        if "featured" in changes and not actor.is_staff:
            raise Forbidden("only staff may feature a project")
        changes = {k: v for k, v in changes.items() if current[k] != v}
        if current["moderation"] == "published" and not actor.is_staff:
            locked = [k for k in LOCKED_WHEN_PUBLISHED if k in changes]
            if locked:
                raise Conflict(f"{', '.join(locked)} of a published project can only be "
                               "changed by staff", fields=locked)
        if changes:
            await store.update_project(tx, project_id, changes)
            await _changed(ctx, tx, current, sorted(changes), actor)
        return await store.project(tx, project_id)  # type: ignore[return-value]


_TRANSITIONS = {
    # action: (allowed from, to, review action, staff only)
    "submit": (("draft", "rejected"), "in_review", "submitted", False),
    "publish": (("in_review",), "published", "published", True),
    "reject": (("in_review",), "rejected", "rejected", True),
    "unpublish": (("published",), "draft", "unpublished", True),
}


async def _moderate(ctx: Ctx, actor: Actor, project_id: uuid.UUID, action: str,
                    reason: str | None = None) -> dict[str, Any]:
    """Move a project through the workflow; record the step and publish its event.

    :raises Conflict: the project is not in a state the action starts from.
    """
    allowed, target, review_action, staff_only = _TRANSITIONS[action]
    async with ctx.db.transaction() as tx:
        current = await _project_for_write(tx, actor, project_id)
        if staff_only and not actor.is_staff:
            raise Forbidden(f"only staff may {action} a project")
        if current["moderation"] not in allowed:
            raise Conflict(f"cannot {action} a project that is {current['moderation']} "
                           f"(only from {' or '.join(allowed)})",
                           moderation=current["moderation"])
        await store.set_moderation(tx, project_id, target,
                                   reason if action in ("reject", "unpublish") else None)
        await store.add_review(tx, project_id, review_action, reason, actor.ref)
        if action == "publish":
            invalidate_after_commit(ctx, tx, current["city"])
            await ctx.publish(tx, ProjectPublished(project_id=project_id,
                                                   builder_id=current["builder_id"],
                                                   city=current["city"]), actor=actor.ref)
        else:
            await _changed(ctx, tx, current, ["moderation"], actor, reason=reason,
                           moderation=target)
        return await store.project(tx, project_id)  # type: ignore[return-value]


async def submit_project(ctx: Ctx, actor: Actor, project_id: uuid.UUID) -> dict[str, Any]:
    """Send a draft (or rejected) project to review."""
    return await _moderate(ctx, actor, project_id, "submit")


async def publish_project(ctx: Ctx, actor: Actor, project_id: uuid.UUID) -> dict[str, Any]:
    """Staff: publish a project in review (``catalog.project_published``)."""
    return await _moderate(ctx, actor, project_id, "publish")


async def reject_project(ctx: Ctx, actor: Actor, project_id: uuid.UUID, data: ReasonIn
                         ) -> dict[str, Any]:
    """Staff: send a project in review back to its builder, saying why."""
    return await _moderate(ctx, actor, project_id, "reject", data.reason.strip())


async def unpublish_project(ctx: Ctx, actor: Actor, project_id: uuid.UUID, data: ReasonIn
                            ) -> dict[str, Any]:
    """Staff: take a published project down (back to draft), saying why."""
    return await _moderate(ctx, actor, project_id, "unpublish", data.reason.strip())


async def delete_project(ctx: Ctx, actor: Actor, project_id: uuid.UUID) -> None:
    """Delete a project: its builder while it is not published, staff always."""
    async with ctx.db.transaction() as tx:
        current = await _project_for_write(tx, actor, project_id)
        if current["moderation"] == "published" and not actor.is_staff:
            raise Conflict("a published project cannot be deleted by its builder; ask staff "
                           "to unpublish it first")
        await store.delete_project(tx, project_id)
        invalidate_after_commit(ctx, tx, current["city"])
        await ctx.publish(tx, ProjectDeleted(project_id=project_id,
                                             builder_id=current["builder_id"]),
                          actor=actor.ref)


async def reviews(ctx: Ctx, actor: Actor, project_id: uuid.UUID) -> list[dict[str, Any]]:
    """A project's moderation history (its builder and staff)."""
    current = await store.project(ctx.db, project_id)
    if current is None or not (actor.is_staff or owns(actor, current)):
        raise _not_found("project", project_id)
    return await store.reviews(ctx.db, project_id)


async def my_projects(ctx: Ctx, actor: Actor, query: PageQuery
                      ) -> tuple[list[dict[str, Any]], str | None]:
    """The actor's builder's projects, newest first: a page and the next page's cursor.

    :raises ValidationFailed: a cursor that is not one of this list's.
    """
    after: tuple[dt.datetime, uuid.UUID] | None = None
    if query.cursor:
        try:
            after = cursors.unpack_position(query.cursor)
        except ValueError:
            raise _bad_cursor() from None
    mine = await my_builder(ctx, actor)
    rows = await store.projects_of_builder(ctx.db, mine["id"], query.limit + 1, after,
                                           query.moderation)
    more = len(rows) > query.limit
    rows = rows[:query.limit]
    return rows, (cursors.pack_position(rows[-1]["created_at"], rows[-1]["id"]) if more
                  else None)


# --------------------------------------------------------------------------------------------
# Towers
# --------------------------------------------------------------------------------------------


async def _tower_for_write(tx: Tx, actor: Actor, tower_id: uuid.UUID
                           ) -> tuple[dict[str, Any], dict[str, Any]]:
    tower = await store.tower(tx, tower_id)
    if tower is None:
        raise _not_found("tower", tower_id)
    try:
        project = await _project_for_write(tx, actor, tower["project_id"])
    except NotFound:
        raise _not_found("tower", tower_id) from None
    return project, tower


async def create_tower(ctx: Ctx, actor: Actor, project_id: uuid.UUID, data: TowerIn
                       ) -> dict[str, Any]:
    """Add a tower to a project."""
    try:
        async with ctx.db.transaction() as tx:
            project = await _project_for_write(tx, actor, project_id)
            row = await store.insert_tower(tx, uuid7(), project_id, data.name.strip(),
                                           data.floors)
            await _changed(ctx, tx, project, ["towers"], actor)
            return row
    except UniqueViolation:
        raise Conflict(f"the project already has a tower named {data.name.strip()!r}",
                       field="name") from None


async def towers(ctx: Ctx, actor: Actor | None, project_id: uuid.UUID) -> list[dict[str, Any]]:
    """A visible project's towers."""
    await project(ctx, actor, str(project_id))
    return await store.towers_of(ctx.db, project_id)


async def update_tower(ctx: Ctx, actor: Actor, tower_id: uuid.UUID, data: TowerPatch
                       ) -> dict[str, Any]:
    """Rename a tower or change its floors (not below a floor that has units)."""
    try:
        async with ctx.db.transaction() as tx:
            project, _ = await _tower_for_write(tx, actor, tower_id)
            if data.floors is not None:
                highest = await store.highest_unit_floor(tx, tower_id)
                if highest is not None and highest > data.floors:
                    raise _invalid("floors", f"a unit of this tower is on floor {highest}")
            row = await store.update_tower(
                tx, tower_id, data.name.strip() if data.name else None, data.floors)
            await _changed(ctx, tx, project, ["towers"], actor)
            return row
    except UniqueViolation:
        raise Conflict("the project already has a tower of that name", field="name") from None


async def delete_tower(ctx: Ctx, actor: Actor, tower_id: uuid.UUID) -> None:
    """Delete a tower with its units (the project's derived columns follow)."""
    async with ctx.db.transaction() as tx:
        project, _ = await _tower_for_write(tx, actor, tower_id)
        units = await store.delete_tower(tx, tower_id)
        await store.recompute_derived(tx, [project["id"]])
        await _changed(ctx, tx, project, ["towers", "units"] if units else ["towers"], actor)
        if units:
            await ctx.publish(tx, UnitsDeleted(project_id=project["id"], unit_ids=units,
                                               tower_id=tower_id), actor=actor.ref)


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


async def create_unit(ctx: Ctx, actor: Actor, tower_id: uuid.UUID, data: UnitIn
                      ) -> dict[str, Any]:
    """Add a unit to a tower; the project's derived columns follow in the same transaction."""
    try:
        async with ctx.db.transaction() as tx:
            project, tower = await _tower_for_write(tx, actor, tower_id)
            errors = _check_unit(attrs.asdict(data), tower["floors"], project["currency"])
            if errors:
                raise ValidationFailed(errors)
            row = _unit_row(data, project["id"], tower_id)
            await store.insert_units(tx, [row])
            await store.recompute_derived(tx, [project["id"]])
            await _changed(ctx, tx, project, ["units"], actor)
            return await store.unit(tx, row["id"])  # type: ignore[return-value]
    except UniqueViolation:
        raise Conflict(f"the tower already has a unit {data.code.strip()!r}",
                       field="code") from None


async def unit(ctx: Ctx, actor: Actor | None, unit_id: uuid.UUID) -> dict[str, Any]:
    """A unit of a project the actor may see."""
    row = await store.unit(ctx.db, unit_id)
    if row is None:
        raise _not_found("unit", unit_id)
    parent = await store.project(ctx.db, row["project_id"])
    if parent is None or not can_see_project(actor, parent):
        raise _not_found("unit", unit_id)
    return row


async def units(ctx: Ctx, actor: Actor | None, project_id: uuid.UUID, query: UnitQuery
                ) -> tuple[list[dict[str, Any]], str | None]:
    """A visible project's units in id order: a page and the next page's cursor.

    :raises ValidationFailed: a cursor that is not one of this list's.
    """
    after = None
    if query.cursor:
        try:
            parts = cursors.unpack(query.cursor)
            if len(parts) != 1 or not isinstance(parts[0], str):
                raise ValueError("not a unit cursor")
            after = uuid.UUID(parts[0])
        except ValueError:
            raise _bad_cursor() from None
    await project(ctx, actor, str(project_id))
    rows = await store.units_of(ctx.db, project_id, query.tower_id, query.status, after,
                                query.limit + 1)
    more = len(rows) > query.limit
    rows = rows[:query.limit]
    return rows, (cursors.pack([str(rows[-1]["id"])]) if more else None)


async def _unit_for_write(tx: Tx, actor: Actor, unit_id: uuid.UUID
                          ) -> tuple[dict[str, Any], dict[str, Any]]:
    row = await store.unit(tx, unit_id)
    if row is None:
        raise _not_found("unit", unit_id)
    try:
        parent = await _project_for_write(tx, actor, row["project_id"])
    except NotFound:
        raise _not_found("unit", unit_id) from None
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


async def update_unit(ctx: Ctx, actor: Actor, unit_id: uuid.UUID, data: UnitPatch
                      ) -> dict[str, Any]:
    """Edit a unit; a new price publishes ``catalog.price_changed``, a new status
    ``catalog.unit_status_changed``."""
    try:
        async with ctx.db.transaction() as tx:
            parent, current = await _unit_for_write(tx, actor, unit_id)
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
            return await _apply_unit_changes(ctx, tx, actor, parent, current, changes)
    except UniqueViolation:
        raise Conflict("the tower already has a unit with that code", field="code") from None


async def set_unit_status(ctx: Ctx, actor: Actor, unit_id: uuid.UUID, data: UnitStatusIn
                          ) -> dict[str, Any]:
    """Move a unit's status (publishes ``catalog.unit_status_changed`` when it moves)."""
    async with ctx.db.transaction() as tx:
        parent, current = await _unit_for_write(tx, actor, unit_id)
        if current["status"] == data.status:
            return current
        return await _apply_unit_changes(ctx, tx, actor, parent, current,
                                         {"status": data.status})


async def set_unit_status_in(ctx: Ctx, tx: Tx, actor: Actor, unit_id: uuid.UUID, status: str
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
    return await _apply_unit_changes(ctx, tx, actor, parent, current, {"status": status})


async def delete_unit(ctx: Ctx, actor: Actor, unit_id: uuid.UUID) -> None:
    """Delete a unit."""
    async with ctx.db.transaction() as tx:
        parent, _ = await _unit_for_write(tx, actor, unit_id)
        await store.delete_unit(tx, unit_id)
        await store.recompute_derived(tx, [parent["id"]])
        await _changed(ctx, tx, parent, ["units"], actor)
        await ctx.publish(tx, UnitsDeleted(project_id=parent["id"], unit_ids=[unit_id]),
                          actor=actor.ref)


async def import_units(ctx: Ctx, actor: Actor, project_id: uuid.UUID, data: UnitsCsvIn
                       ) -> dict[str, Any]:
    """Create units from a CSV (see :mod:`propmubi_plugins.catalog.csv_import`): all of them
    in one transaction, or none and a 422 listing every bad row.

    Towers must exist (the floor check needs each tower's floor count, which a unit row does
    not carry); codes must be new within their tower and unique in the file.
    """
    # Permission first: a stranger learns nothing from the file's problems.
    async with ctx.db.transaction() as tx:
        await _project_for_write(tx, actor, project_id)
    rows, errors = csv_import.parse(data.text)  # raises ValidationFailed for a wrong shape
    try:
        async with ctx.db.transaction() as tx:
            parent = await _project_for_write(tx, actor, project_id)
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
            await _changed(ctx, tx, parent, ["units"], actor)
            return {"imported": len(new_rows),
                    "project": await store.project(tx, project_id)}
    except UniqueViolation:  # a concurrent insert of the same code
        raise Conflict("a unit code of the file was created meanwhile; try again") from None
