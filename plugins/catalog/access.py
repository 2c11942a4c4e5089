"""The rules every part of the catalogue shares about a project: who may see it, who may change
it (and when: a builder's KYC must be verified, a project in review is frozen), and the
``catalog.project_updated`` notice a change publishes.

The project service (``service.py``) and its sub-domains (``units/service.py``) both import
these, so that a tower or a unit obeys exactly the rules of its project; nothing here imports
a service. Who may do what is explained in the project service's docstring.
"""

from __future__ import annotations

import uuid
from typing import Any

from propmubi.actors import Actor
from propmubi.db import Database, Tx
from propmubi.errors import Conflict, FieldError, Forbidden, NotFound, ValidationFailed
from propmubi_plugins.catalog import store
from propmubi_plugins.catalog.events import ProjectUpdated
from propmubi_plugins.catalog.search.cache import invalidate_after_commit
from propmubi_plugins.catalog.state import Ctx


class KycRequired(Forbidden):
    """A builder whose identity (builder KYC) is not verified tried to change the catalogue."""

    slug, title = "kyc-required", "Identity verification required"


#: What a builder reads, by the KYC status the catalogue last heard of (None: never heard).
_KYC_ADVICE = {
    None: "verify your identity first: submit your builder KYC (PUT /api/v1/me/kyc/builder); "
          "you can manage projects once staff have verified it",
    "not_started": "verify your identity first: submit your builder KYC "
                   "(PUT /api/v1/me/kyc/builder); you can manage projects once staff have "
                   "verified it",
    "submitted": "your builder KYC is waiting for review; you can manage projects once staff "
                 "have verified it",
    "resubmitted": "your builder KYC is waiting for review; you can manage projects once staff "
                   "have verified it",
    "rejected": "your builder KYC was rejected: correct it and submit it again "
                "(PUT /api/v1/me/kyc/builder; GET /api/v1/me/kyc says why)",
}


async def require_verified_builder(ctx: Ctx, q: Database | Tx, actor: Actor | None) -> None:
    """Refuse a write by an API user (not staff) whose builder KYC is not verified, when
    ``plugins.catalog.require_builder_kyc`` is on (403 ``kyc-required``)."""
    if (not ctx.settings.require_builder_kyc or actor is None or actor.is_staff
            or actor.user_id is None):
        return
    status = await store.builder_kyc(q, actor.user_id)
    if status != "verified":
        raise KycRequired(_KYC_ADVICE.get(status, _KYC_ADVICE[None]),
                          kyc_status=status or "not_started")


def refuse_in_review(actor: Actor, project: dict[str, Any], fields: list[str]) -> None:
    """Refuse a builder's change of ``fields`` (project fields, or ``towers``, ``units``,
    ``photos``) while the project is in review: staff review exactly what was submitted
    (409 naming the locked fields; staff may still change them)."""
    if project["moderation"] == "in_review" and fields and not actor.is_staff:
        raise Conflict(f"{', '.join(fields)} of a project in review cannot change until staff "
                       "publish or reject it", fields=fields, moderation="in_review")


def owns(actor: Actor | None, row: dict[str, Any]) -> bool:
    """Whether ``actor`` is the API user who manages the row's builder (``owner_user_id``)."""
    return (actor is not None and actor.kind == "user"
            and row.get("owner_user_id") is not None
            and str(row["owner_user_id"]) == actor.id)


def can_see_project(actor: Actor | None, project: dict[str, Any]) -> bool:
    """Published projects are public; others only to their builder and staff."""
    return (project["moderation"] == "published" or owns(actor, project)
            or (actor is not None and actor.is_staff))


def not_found(what: str, ident: Any) -> NotFound:
    """``no <what> <ident>`` (404)."""
    return NotFound(f"no {what} {ident}")


def invalid(field: str, message: str) -> ValidationFailed:
    """A 422 naming one field of the body."""
    return ValidationFailed([FieldError("body", field, message)])


def bad_cursor() -> ValidationFailed:
    """The 422 for a ``cursor`` that is not one of the list's."""
    return ValidationFailed([FieldError("query", "cursor", "not a cursor from this list")])


async def visible_project(q: Database | Tx, actor: Actor | None, ref: str) -> dict[str, Any]:
    """A project by id or slug: published ones for everyone, others for their builder and
    staff (404 to anyone else)."""
    try:
        row = await store.project(q, uuid.UUID(ref))
    except ValueError:
        row = await store.project_by_slug(q, ref)
    if row is None or not can_see_project(actor, row):
        raise not_found("project", ref)
    return row


async def project_for_write(ctx: Ctx, tx: Tx, actor: Actor, project_id: uuid.UUID
                            ) -> dict[str, Any]:
    """The project, locked; 404 when the actor may not see it, 403 when they may see but
    not change it, 403 ``kyc-required`` for its builder before their KYC is verified."""
    project = await store.project(tx, project_id, lock=True)
    if project is None or not can_see_project(actor, project):
        raise not_found("project", project_id)
    if not (actor.is_staff or owns(actor, project)):
        raise Forbidden("only the project's builder or staff may change it")
    await require_verified_builder(ctx, tx, actor)
    return project


async def project_changed(ctx: Ctx, tx: Tx, project: dict[str, Any], fields: list[str],
                          actor: Actor, reason: str | None = None,
                          moderation: str | None = None) -> None:
    """Publish ``catalog.project_updated`` naming the changed ``fields`` in ``tx``."""
    # Cached answers go stale at commit, without waiting for the worker to handle the event.
    invalidate_after_commit(ctx, tx, None if "city" in fields else project["city"])
    await ctx.publish(tx, ProjectUpdated(
        project_id=project["id"], builder_id=project["builder_id"], fields=fields,
        moderation=moderation or project["moderation"], reason=reason), actor=actor.ref)
