"""The JSON API of site visits, mounted under ``/api/v1`` with the CRM's other routes.

- ``GET /crm/projects/{project_id}/visit-slots?from=&to=``: a project's free slots.
- ``POST /crm/leads/{lead_id}/visits``: book (staff, the lead's advisor, its buyer).
- ``GET /crm/visits/{visit_id}``, ``POST /crm/visits/{visit_id}/reschedule`` (the same id),
  ``POST /crm/visits/{visit_id}/cancel``, ``POST /crm/visits/{visit_id}/feedback`` (the
  advisor, staff).
- ``GET /crm/my/visits``: the advisor's visits, soonest first.
- ``GET /crm/my/booked-visits``: the buyer's visits, soonest first.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from propmubi.web.auth import signed_in
from propmubi.web.routing import Routes
from propmubi_plugins.crm.models import LeadId
from propmubi_plugins.crm.state import Ctx
from propmubi_plugins.crm.visits import service
from propmubi_plugins.crm.visits.models import (
    CancelIn,
    FeedbackIn,
    MyVisitsQuery,
    ProjectId,
    SlotOut,
    SlotQuery,
    VisitDetail,
    VisitId,
    VisitIn,
    VisitOut,
    VisitPage,
)

routes = Routes(tags=["crm"])

ANYONE = ["*"]


@routes.get("/crm/projects/{project_id}/visit-slots", params=ProjectId, query=SlotQuery,
            response=list[SlotOut], roles=ANYONE, errors=[404, 422])
async def visit_slots(request: web.Request, ctx: Ctx, params: ProjectId, query: Any
                      ) -> list[SlotOut]:
    """A project's free visit slots in ``[from, to)`` (at most the booking horizon), with
    the places left."""
    return await service.free_slots(ctx, signed_in(request), params.project_id, query)


@routes.post("/crm/leads/{lead_id}/visits", params=LeadId, body=VisitIn, response=VisitOut,
             status=201, roles=ANYONE, errors=[404, 409, 422], rate_limit="30/minute")
async def book_visit(request: web.Request, ctx: Ctx, params: LeadId, body: VisitIn
                     ) -> VisitOut:
    """Book a site visit in a free slot (409 ``slot-full``, or a visit already scheduled)."""
    return await service.book(ctx, signed_in(request), params.lead_id, body)


@routes.get("/crm/visits/{visit_id}", params=VisitId, response=VisitDetail, roles=ANYONE,
            errors=[404])
async def get_visit(request: web.Request, ctx: Ctx, params: VisitId) -> VisitDetail:
    """A visit and its history (old times of a rescheduled visit included)."""
    return await service.get_visit(ctx, signed_in(request), params.visit_id)


@routes.post("/crm/visits/{visit_id}/reschedule", params=VisitId, body=VisitIn,
             response=VisitOut, roles=ANYONE, errors=[404, 409, 422], rate_limit="30/minute")
async def reschedule_visit(request: web.Request, ctx: Ctx, params: VisitId, body: VisitIn
                           ) -> VisitOut:
    """Move a scheduled visit to another free slot; it keeps its id."""
    return await service.reschedule(ctx, signed_in(request), params.visit_id, body)


@routes.post("/crm/visits/{visit_id}/cancel", params=VisitId, body=CancelIn,
             response=VisitOut, roles=ANYONE, errors=[404, 409, 422])
async def cancel_visit(request: web.Request, ctx: Ctx, params: VisitId, body: CancelIn
                       ) -> VisitOut:
    """Cancel a scheduled visit, saying why."""
    return await service.cancel(ctx, signed_in(request), params.visit_id, body)


@routes.post("/crm/visits/{visit_id}/feedback", params=VisitId, body=FeedbackIn,
             response=VisitOut, roles=ANYONE, errors=[403, 404, 409, 422])
async def visit_feedback(request: web.Request, ctx: Ctx, params: VisitId, body: FeedbackIn
                         ) -> VisitOut:
    """The advisor's outcome: attended (completed; the lead is visited) or a no-show."""
    return await service.feedback(ctx, signed_in(request), params.visit_id, body)


@routes.get("/crm/my/visits", query=MyVisitsQuery, response=VisitPage, roles=ANYONE,
            errors=[403, 422])
async def my_visits(request: web.Request, ctx: Ctx, query: MyVisitsQuery) -> VisitPage:
    """The signed-in advisor's visits, soonest first (403 for a caller who is no advisor)."""
    return await service.my_visits(ctx, signed_in(request), query)


@routes.get("/crm/my/booked-visits", query=MyVisitsQuery, response=VisitPage, roles=ANYONE,
            errors=[422])
async def booked_visits(request: web.Request, ctx: Ctx, query: MyVisitsQuery) -> VisitPage:
    """The site visits of the signed-in buyer (booked by them or on their enquiry), soonest
    first, without the advisor's rating and notes."""
    return await service.booked_visits(ctx, signed_in(request), query)
