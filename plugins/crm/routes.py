"""The CRM's JSON API, mounted under ``/api/v1``.

- ``POST /enquiries``: a signed-in buyer's enquiry (signing in is the phone OTP, so an
  enquiry always comes from a verified phone's owner); 422 naming every bad field, 429 past
  the phone's or the address's limit.
- ``POST /crm/partner-leads``: a partner pushes a lead with its ``X-Partner-Key`` (401
  without a configured one).
- ``GET /crm/leads``, ``GET /crm/leads/{lead_id}`` (staff; an advisor: their own lead),
  ``POST /crm/leads/{lead_id}/stage`` (staff or the lead's advisor),
  ``POST /crm/leads/{lead_id}/reassign`` (staff), ``GET /crm/my/leads`` (the advisor's
  leads), ``GET /crm/stages``.
"""

from __future__ import annotations

from aiohttp import web

from propmubi.actors import Actor
from propmubi.validation import InvalidInput
from propmubi.web.appkeys import CONFIG
from propmubi.web.auth import signed_in
from propmubi.web.ratelimit import client_ip
from propmubi.web.routing import Routes
from propmubi_plugins.crm import service
from propmubi_plugins.crm.models import (
    EnquiryAck,
    EnquiryIn,
    LeadDetail,
    LeadId,
    LeadOut,
    LeadPage,
    LeadQuery,
    PartnerLeadIn,
    ReassignIn,
    StageIn,
    StageOut,
)
from propmubi_plugins.crm.state import Ctx

routes = Routes(tags=["crm"])

ANYONE = ["*"]
STAFF = ["staff"]
#: The header carrying a partner's API key.
PARTNER_KEY = "X-Partner-Key"


def _ip(request: web.Request) -> str:
    return client_ip(request, request.app[CONFIG].http.trust_forwarded)


@routes.post("/enquiries", body=EnquiryIn, response=EnquiryAck, status=202, roles=ANYONE,
             partial_body=True, errors=[422, 429], rate_limit="20/minute")
async def create_enquiry(request: web.Request, ctx: Ctx, body: EnquiryIn | InvalidInput
                         ) -> EnquiryAck:
    """Ask about a project (and maybe a unit): a new lead, or one more enquiry of the open
    lead of the same phone and project."""
    return await service.receive_enquiry(ctx, signed_in(request), body, ip=_ip(request))


@routes.post("/crm/partner-leads", body=PartnerLeadIn, response=EnquiryAck, status=202,
             partial_body=True, errors=[401, 422, 429], rate_limit="120/minute")
async def partner_lead(request: web.Request, ctx: Ctx, body: PartnerLeadIn | InvalidInput
                       ) -> EnquiryAck:
    """A partner pushes a lead (header ``X-Partner-Key``); deduplicated like an enquiry."""
    actor = service.partner_actor(ctx, request.headers.get(PARTNER_KEY))
    return await service.receive_partner_lead(ctx, actor, body, ip=_ip(request))


@routes.get("/crm/stages", response=list[StageOut], roles=ANYONE)
async def list_stages(request: web.Request, ctx: Ctx) -> list[StageOut]:
    """The pipeline's stages, in order."""
    return service.stages(ctx)


@routes.get("/crm/leads", query=LeadQuery, response=LeadPage, roles=STAFF, errors=[422])
async def list_leads(request: web.Request, ctx: Ctx, query: LeadQuery) -> LeadPage:
    """Every lead, newest first, optionally of one stage (keyset pages)."""
    return await service.list_leads(ctx, signed_in(request), query)


@routes.get("/crm/my/leads", query=LeadQuery, response=LeadPage, roles=ANYONE,
            errors=[403, 422])
async def my_leads(request: web.Request, ctx: Ctx, query: LeadQuery) -> LeadPage:
    """The signed-in advisor's leads, newest first (403 for a caller who is no advisor)."""
    return await service.my_leads(ctx, signed_in(request), query)


@routes.get("/crm/leads/{lead_id}", params=LeadId, response=LeadDetail, roles=ANYONE,
            errors=[404])
async def get_lead(request: web.Request, ctx: Ctx, params: LeadId) -> LeadDetail:
    """A lead with its enquiries and history (staff, or the lead's advisor)."""
    return await service.get_lead(ctx, signed_in(request), params.lead_id)


@routes.post("/crm/leads/{lead_id}/stage", params=LeadId, body=StageIn, response=LeadOut,
             roles=ANYONE, errors=[404, 409, 422])
async def change_stage(request: web.Request, ctx: Ctx, params: LeadId, body: StageIn
                       ) -> LeadOut:
    """Move a lead to another stage (``reason`` for ``lost``); 409 for a closed lead."""
    return await service.change_stage(ctx, signed_in(request), params.lead_id, body)


@routes.post("/crm/leads/{lead_id}/reassign", params=LeadId, body=ReassignIn,
             response=LeadOut, roles=STAFF, errors=[404, 409, 422])
async def reassign(request: web.Request, ctx: Ctx, params: LeadId, body: ReassignIn
                   ) -> LeadOut:
    """Give a lead to another advisor, or back to the queue (no ``agent_id``), saying why."""
    actor: Actor = signed_in(request)
    return await service.reassign(ctx, actor, params.lead_id, body)
