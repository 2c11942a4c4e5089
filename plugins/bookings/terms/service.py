"""Reading and setting a project's booking terms.

Anyone reads the terms of a published project; its builder (the builder profile's owner) and
staff read those of any project and set them. A project without terms of its own has the
defaults of ``[plugins.bookings]`` (``default: true`` in the answer).
"""

from __future__ import annotations

import uuid
from typing import Any

import attrs

from propmubi.actors import Actor
from propmubi.db import Database, Tx
from propmubi.errors import Forbidden, NotFound
from propmubi_plugins.bookings.state import Ctx
from propmubi_plugins.bookings.terms import store
from propmubi_plugins.bookings.terms.models import TermsIn, TermsOut
from propmubi_plugins.catalog import api as catalog

#: The term columns a booking copies when its hold is taken.
POLICY = ("free_cancel_hours", "fee_fixed_minor", "fee_bps")


def defaults(ctx: Ctx) -> dict[str, Any]:
    """The settings' terms, for a project without its own."""
    s = ctx.settings
    fixed = s.default_amount_kind == "fixed"
    return {"amount_kind": s.default_amount_kind,
            "amount_minor": s.default_amount_minor if fixed else None,
            "amount_bps": None if fixed else s.default_amount_bps,
            "free_cancel_hours": s.default_free_cancel_hours,
            "fee_fixed_minor": s.default_fee_fixed_minor, "fee_bps": s.default_fee_bps}


async def effective(ctx: Ctx, q: Database | Tx, project_id: uuid.UUID) -> dict[str, Any]:
    """The terms that apply to a project: its own, else the defaults (``default`` says)."""
    row = await store.terms(q, project_id)
    if row is None:
        return {**defaults(ctx), "default": True, "updated_at": None}
    return {**row, "default": False}


def _manages(actor: Actor | None, project: dict[str, Any]) -> bool:
    return actor is not None and (actor.is_staff or (
        actor.user_id is not None and actor.user_id == project["owner_user_id"]))


async def _project(ctx: Ctx, q: Database | Tx, actor: Actor | None, project_id: uuid.UUID
                   ) -> dict[str, Any]:
    """The project, when the actor may see it (published, or theirs, or staff)."""
    project = await catalog.project(q, project_id)
    if project is None or not (project["moderation"] == "published"
                               or _manages(actor, project)):
        raise NotFound(f"no project {project_id}")
    return project


def _out(project: dict[str, Any], terms: dict[str, Any]) -> TermsOut:
    return TermsOut(project_id=project["id"], currency=project["currency"].strip(),
                    **{f.name: terms[f.name] for f in attrs.fields(TermsOut)
                       if f.name not in ("project_id", "currency")})


async def get_terms(ctx: Ctx, actor: Actor | None, project_id: uuid.UUID) -> TermsOut:
    """A project's booking terms.

    :raises NotFound: no such project, or one the actor may not see.
    """
    project = await _project(ctx, ctx.db, actor, project_id)
    return _out(project, await effective(ctx, ctx.db, project_id))


async def put_terms(ctx: Ctx, actor: Actor, project_id: uuid.UUID, data: TermsIn) -> TermsOut:
    """Set a project's booking terms (its builder, or staff). Holds already taken keep the
    terms they were taken under.

    :raises NotFound: no such project, or one the actor may not see.
    :raises Forbidden: the actor is neither the project's builder nor staff.
    """
    async with ctx.db.transaction() as tx:
        project = await _project(ctx, tx, actor, project_id)
        if not _manages(actor, project):
            raise Forbidden("only the project's builder or staff set its booking terms")
        row = await store.upsert(tx, project_id, attrs.asdict(data), actor.ref,
                                 ctx.clock.now())
    return _out(project, {**row, "default": False})
