"""``/projects/{id}/booking-terms``: read (anyone, for a published project) and set (the
project's builder or staff)."""

from __future__ import annotations

from aiohttp import web

from propmubi.web.auth import actor_of, signed_in
from propmubi.web.routing import Routes
from propmubi_plugins.bookings.state import Ctx
from propmubi_plugins.bookings.terms import service
from propmubi_plugins.bookings.terms.models import ProjectId, TermsIn, TermsOut

routes = Routes(tags=["bookings"])


@routes.get("/projects/{id}/booking-terms", params=ProjectId, response=TermsOut, errors=[404])
async def get_terms(request: web.Request, ctx: Ctx, params: ProjectId) -> TermsOut:
    """A project's booking amount and cancellation policy (the defaults when it has none)."""
    return await service.get_terms(ctx, actor_of(request), params.id)


@routes.put("/projects/{id}/booking-terms", params=ProjectId, body=TermsIn, response=TermsOut,
            roles=["builder", "staff"], errors=[403, 404])
async def put_terms(request: web.Request, ctx: Ctx, params: ProjectId, body: TermsIn
                    ) -> TermsOut:
    """Set a project's booking terms (its builder, or staff); holds taken before keep theirs."""
    return await service.put_terms(ctx, signed_in(request), params.id, body)
