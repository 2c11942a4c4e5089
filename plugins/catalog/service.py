"""The catalogue rules: builders, projects and their moderation. Towers, units and the CSV
import of units are ``units/service.py``'s; the permission rules both share are ``access.py``'s.

Who may do what:

- a user with the ``builder`` role manages one builder profile (theirs) and its projects;
- ``staff`` (and ``admin``, which passes every role check) may do everything, for any builder;
- anyone may read builders and *published* projects.

A project that the caller may not see answers 404 (others' drafts do not exist for them); a
write to something the caller may see but does not own answers 403.

A builder must have verified their identity before they change the catalogue: their
builder KYC (the auth plugin's, followed through ``auth.kyc_status_changed`` by
``handlers.py``) must be verified to create, change, submit or delete projects, towers, units
and photos (403 ``kyc-required`` otherwise; ``plugins.catalog.require_builder_kyc``). Creating
and editing the builder profile itself is allowed before, so it is ready when KYC is verified;
its ``verified`` badge follows the KYC decision. Staff are never gated.

Moderation: draft --submit--> in_review --publish--> published; in_review --reject-->
rejected --submit--> in_review; published --unpublish (staff)--> draft. Every step is a row in
catalog_project_reviews and an event, in the transaction of the change.

Submitting checks that the project is complete (a tower, a unit, a photo of the project, and
text without control characters): a 422 lists everything missing at once. Staff, who review,
may queue a project as it is.

While a project is in review, its builder cannot change it (its fields, towers, units and
photos: 409 naming what is locked): staff review, and publish, exactly what was submitted.
Staff may still correct it; a rejection gives it back to its builder.

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
from propmubi_plugins.catalog import access, store
from propmubi_plugins.catalog.events import (
    BuilderVerificationChanged,
    ProjectCreated,
    ProjectDeleted,
    ProjectPublished,
)
from propmubi_plugins.catalog.media import store as media_store
from propmubi_plugins.catalog.models import (
    LOCKED_WHEN_PUBLISHED,
    BuilderIn,
    BuilderPatch,
    PageQuery,
    ProjectIn,
    ProjectPatch,
    ReasonIn,
    control_character_problem,
)
from propmubi_plugins.catalog.search.cache import invalidate_after_commit
from propmubi_plugins.catalog.state import Ctx
from propmubi_plugins.catalog.units import store as units_store

# --------------------------------------------------------------------------------------------
# Slugs
# --------------------------------------------------------------------------------------------


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
    row: dict[str, Any] = {"id": builder_id, "owner_user_id": owner, "name": data.name.strip(),
           "slug": _unique_slug(slugify(data.name), builder_id),
           "rera_promoter_id": data.rera_promoter_id, "description": data.description,
           "website": data.website}
    try:
        async with ctx.db.transaction() as tx:
            # The badge follows the owner's KYC, which may have been decided before.
            row["verified"] = (owner is not None
                               and await store.builder_kyc(tx, owner) == "verified")
            created = await store.insert_builder(tx, row)
            if row["verified"]:
                await store.add_verification(tx, builder_id, True, "system:kyc", None)
            return created
    except UniqueViolation:
        raise Conflict("this user already has a builder profile; edit it with "
                       "PATCH /builders/me", field="owner_user_id") from None


async def builder(ctx: Ctx, actor: Actor | None, builder_id: uuid.UUID) -> dict[str, Any]:
    """A builder's public profile."""
    row = await store.builder(ctx.db, builder_id)
    if row is None:
        raise access.not_found("builder", builder_id)
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
                raise access.not_found("builder", builder_id)
            if not (actor.is_staff or access.owns(actor, row)):
                raise Forbidden("only the builder's owner or staff may edit it")
        if "name" in changes:
            changes["name"] = changes["name"].strip()
        invalidate_after_commit(ctx, tx, None)  # its projects may be in every city
        return await store.update_builder(tx, row["id"], changes)


async def set_builder_verified_in(ctx: Ctx, tx: Tx, actor: Actor, builder_id: uuid.UUID,
                                  verified: bool, reason: str | None = None) -> bool:
    """Set the verified badge in ``tx`` (the legal plugin, when documents are verified or
    rejected; staff by hand, with a ``reason``); False for an unknown builder.

    A change is kept in the builder's verification history (actor and reason) and published
    as ``catalog.builder_verification_changed`` (without the reason); setting the badge to
    what it is already changes and publishes nothing."""
    row = await store.builder(tx, builder_id, lock=True)
    if row is None:
        return False
    if row["verified"] != verified:
        await store.set_builder_verified(tx, builder_id, verified)
        await store.add_verification(tx, builder_id, verified, actor.ref, reason)
        await ctx.publish(tx, BuilderVerificationChanged(builder_id=builder_id,
                                                         verified=verified), actor=actor.ref)
        invalidate_after_commit(ctx, tx, None)  # its projects may be in every city
    return True


async def set_builder_verified(ctx: Ctx, actor: Actor, builder_id: uuid.UUID, verified: bool,
                               data: ReasonIn) -> dict[str, Any]:
    """Staff: set or remove a builder's verified badge by hand, saying why (in its own
    transaction, through :func:`set_builder_verified_in`). The next KYC decision of the
    builder's owner (``auth.kyc_status_changed``) sets the badge again.

    :raises Forbidden: the actor is not staff.
    :raises Conflict: the badge is already so.
    """
    if not actor.is_staff:
        raise Forbidden("only staff may set a builder's verified badge")
    async with ctx.db.transaction() as tx:
        row = await store.builder(tx, builder_id, lock=True)
        if row is None:
            raise access.not_found("builder", builder_id)
        if row["verified"] == verified:
            raise Conflict("the builder is already " + ("verified" if verified
                                                        else "not verified"))
        await set_builder_verified_in(ctx, tx, actor, builder_id, verified,
                                      reason=data.reason.strip())
        return await store.builder(tx, builder_id)  # type: ignore[return-value]


# --------------------------------------------------------------------------------------------
# Projects
# --------------------------------------------------------------------------------------------


async def create_project(ctx: Ctx, actor: Actor, data: ProjectIn) -> dict[str, Any]:
    """Create a draft project for the actor's builder (staff: for ``data.builder_id``).

    :raises Conflict: a builder without a builder profile.
    """
    async with ctx.db.transaction() as tx:
        await access.require_verified_builder(ctx, tx, actor)
        if data.builder_id is not None:
            builder_row = await store.builder(tx, data.builder_id)
            if builder_row is None:
                raise access.invalid("builder_id", "no such builder")
            if not (actor.is_staff or access.owns(actor, builder_row)):
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
    return await access.visible_project(ctx.db, actor, ref)


async def project_detail(ctx: Ctx, actor: Actor | None, ref: str
                         ) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
    """A project (as :func:`project`) with its towers and the photos of its own gallery."""
    row = await access.visible_project(ctx.db, actor, ref)
    towers = await units_store.towers_of(ctx.db, row["id"])
    return row, towers, await media_store.gallery(ctx.db, row["id"], None)


async def update_project(ctx: Ctx, actor: Actor, project_id: uuid.UUID, data: ProjectPatch
                         ) -> dict[str, Any]:
    """Edit a project (see the module docstring for published projects)."""
    changes = {k: v for k, v in attrs.asdict(data).items() if v is not None}
    async with ctx.db.transaction() as tx:
        current = await access.project_for_write(ctx, tx, actor, project_id)
        if "featured" in changes and not actor.is_staff:
            raise Forbidden("only staff may feature a project")
        changes = {k: v for k, v in changes.items() if current[k] != v}
        access.refuse_in_review(actor, current, sorted(changes))
        if current["moderation"] == "published" and not actor.is_staff:
            locked = [k for k in LOCKED_WHEN_PUBLISHED if k in changes]
            if locked:
                raise Conflict(f"{', '.join(locked)} of a published project can only be "
                               "changed by staff", fields=locked)
        if changes:
            await store.update_project(tx, project_id, changes)
            await access.project_changed(ctx, tx, current, sorted(changes), actor)
        return await store.project(tx, project_id)  # type: ignore[return-value]


#: The project's texts checked again on submission (multi-line ones: True).
_TEXTS = {"name": False, "city": False, "locality": False, "address": True,
          "rera_number": False, "description": True}


async def _check_complete(tx: Tx, project: dict[str, Any]) -> None:
    """Refuse to send an incomplete project to review: 422 listing everything missing."""
    counts = await store.completeness(tx, project["id"])
    errors = []
    for what, advice in (("towers", "add at least one tower"),
                         ("units", "add at least one unit (with its price)"),
                         ("photos", "upload at least one photo of the project")):
        if not counts[what]:
            errors.append(FieldError("body", what, advice))
    for name, multiline in _TEXTS.items():
        problem = control_character_problem(project[name] or "", multiline=multiline)
        if problem:
            errors.append(FieldError("body", name, problem))
    if errors:
        raise ValidationFailed(errors, detail="the project is not ready for review: "
                               + "; ".join(f"{e['field']}: {e['message']}" for e in errors))


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
        current = await access.project_for_write(ctx, tx, actor, project_id)
        if staff_only and not actor.is_staff:
            raise Forbidden(f"only staff may {action} a project")
        if current["moderation"] not in allowed:
            raise Conflict(f"cannot {action} a project that is {current['moderation']} "
                           f"(only from {' or '.join(allowed)})",
                           moderation=current["moderation"])
        if action == "submit" and not actor.is_staff:
            await _check_complete(tx, current)
        await store.set_moderation(tx, project_id, target,
                                   reason if action in ("reject", "unpublish") else None)
        await store.add_review(tx, project_id, review_action, reason, actor.ref)
        if action == "publish":
            invalidate_after_commit(ctx, tx, current["city"])
            await ctx.publish(tx, ProjectPublished(project_id=project_id,
                                                   builder_id=current["builder_id"],
                                                   city=current["city"]), actor=actor.ref)
        else:
            await access.project_changed(ctx, tx, current, ["moderation"], actor,
                                         reason=reason, moderation=target)
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
        current = await access.project_for_write(ctx, tx, actor, project_id)
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
    if current is None or not (actor.is_staff or access.owns(actor, current)):
        raise access.not_found("project", project_id)
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
            raise access.bad_cursor() from None
    mine = await my_builder(ctx, actor)
    rows = await store.projects_of_builder(ctx.db, mine["id"], query.limit + 1, after,
                                           query.moderation)
    more = len(rows) > query.limit
    rows = rows[:query.limit]
    return rows, (cursors.pack_position(rows[-1]["created_at"], rows[-1]["id"]) if more
                  else None)
