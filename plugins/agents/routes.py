"""The agents JSON API, mounted under ``/api/v1``. Handlers are thin: the service decides who
may do what.

- The agent app (``/agents/me...``): create my profile (users holding the ``agent`` role),
  read and change it, submit a registration, plan and cancel holidays, request listings.
- Staff (``/agents``, ``/agents/{agent_id}...``): list, create for a user, change, verify or
  reject a registration, suspend, reinstate.
- A project's builder or staff: the project's listings, accept, reject.

Refusals are problem+json: 409 ``agent-not-active`` (only active agents request listings),
409 ``conflict`` (a second profile, a number another agent holds, nothing waiting, a decided
listing), 404 for what the caller may not see.
"""

from __future__ import annotations

from aiohttp import web

from propmubi.web.auth import signed_in
from propmubi.web.routing import Routes
from propmubi_plugins.agents import service
from propmubi_plugins.agents.models import (
    AgentId,
    AgentIn,
    AgentOut,
    AgentPage,
    AgentQuery,
    AgentUpdate,
    HolidayId,
    HolidayIn,
    ListingId,
    ListingIn,
    ListingOut,
    ListingPage,
    ListingQuery,
    ProjectId,
    ReasonIn,
    RegistrationIn,
    StaffAgentIn,
)
from propmubi_plugins.agents.state import Ctx

routes = Routes(tags=["agents"])

ANYONE = ["*"]
STAFF = ["staff"]
AGENT = ["agent"]


@routes.post("/agents/me", body=AgentIn, response=AgentOut, status=201, roles=AGENT,
             errors=[404, 409], rate_limit="10/hour")
async def create_me(request: web.Request, ctx: Ctx, body: AgentIn) -> AgentOut:
    """Create my agent profile with my RERA registration (the ``agent`` role); it is
    pending until staff verify the registration and my agent KYC is verified."""
    return await service.create_my_agent(ctx, signed_in(request), body)


@routes.get("/agents/me", response=AgentOut, roles=ANYONE, errors=[404])
async def get_me(request: web.Request, ctx: Ctx) -> AgentOut:
    """My agent profile: status, KYC status, registrations, territories, capacity, holidays
    and listings."""
    actor = signed_in(request)
    return await service.get_agent(ctx, actor, await service.my_agent_id(ctx, actor))


@routes.patch("/agents/me", body=AgentUpdate, response=AgentOut, roles=ANYONE, errors=[404])
async def update_me(request: web.Request, ctx: Ctx, body: AgentUpdate) -> AgentOut:
    """Change my profile, capacity (0: no leads) or territories (the whole list)."""
    actor = signed_in(request)
    return await service.update_agent(ctx, actor, await service.my_agent_id(ctx, actor), body)


@routes.put("/agents/me/registration", body=RegistrationIn, response=AgentOut, roles=ANYONE,
            errors=[404, 409], rate_limit="10/hour")
async def submit_registration(request: web.Request, ctx: Ctx, body: RegistrationIn
                              ) -> AgentOut:
    """Submit a new registration (a renewal); the one in force stays until staff verify it."""
    actor = signed_in(request)
    return await service.submit_registration(ctx, actor, await service.my_agent_id(ctx, actor),
                                             body)


@routes.post("/agents/me/holidays", body=HolidayIn, response=AgentOut, status=201,
             roles=ANYONE, errors=[404, 409])
async def add_holiday(request: web.Request, ctx: Ctx, body: HolidayIn) -> AgentOut:
    """Plan a holiday: no leads from ``starts_on`` to ``ends_on`` (both included)."""
    actor = signed_in(request)
    return await service.add_holiday(ctx, actor, await service.my_agent_id(ctx, actor), body)


@routes.delete("/agents/me/holidays/{holiday_id}", params=HolidayId, status=204,
               roles=ANYONE, errors=[404])
async def remove_holiday(request: web.Request, ctx: Ctx, params: HolidayId) -> None:
    """Cancel one of my holidays."""
    actor = signed_in(request)
    await service.remove_holiday(ctx, actor, await service.my_agent_id(ctx, actor),
                                 params.holiday_id)


@routes.post("/agents/me/listings", body=ListingIn, response=ListingOut, status=201,
             roles=ANYONE, errors=[404, 409], rate_limit="60/hour")
async def request_listing(request: web.Request, ctx: Ctx, body: ListingIn) -> ListingOut:
    """Ask to sell a published project (active agents only); its builder or staff decide."""
    actor = signed_in(request)
    return await service.request_listing(ctx, actor, await service.my_agent_id(ctx, actor),
                                         body)


@routes.get("/agents", query=AgentQuery, response=AgentPage, roles=STAFF, errors=[422])
async def list_agents(request: web.Request, ctx: Ctx, query: AgentQuery) -> AgentPage:
    """Agents, newest first, optionally of one status (staff; keyset pages)."""
    return await service.list_agents(ctx, signed_in(request), query)


@routes.post("/agents", body=StaffAgentIn, response=AgentOut, status=201, roles=STAFF,
             errors=[404, 409])
async def create_agent(request: web.Request, ctx: Ctx, body: StaffAgentIn) -> AgentOut:
    """Create an agent profile for a user holding the agent role (staff)."""
    return await service.create_agent(ctx, signed_in(request), body)


@routes.get("/agents/{agent_id}", params=AgentId, response=AgentOut, roles=STAFF,
            errors=[404])
async def get_agent(request: web.Request, ctx: Ctx, params: AgentId) -> AgentOut:
    """One agent (staff)."""
    return await service.get_agent(ctx, signed_in(request), params.agent_id)


@routes.patch("/agents/{agent_id}", params=AgentId, body=AgentUpdate, response=AgentOut,
              roles=STAFF, errors=[404])
async def update_agent(request: web.Request, ctx: Ctx, params: AgentId, body: AgentUpdate
                       ) -> AgentOut:
    """Change an agent's profile, capacity or territories (staff)."""
    return await service.update_agent(ctx, signed_in(request), params.agent_id, body)


@routes.post("/agents/{agent_id}/registration/verify", params=AgentId, response=AgentOut,
             roles=STAFF, errors=[404, 409])
async def verify_registration(request: web.Request, ctx: Ctx, params: AgentId) -> AgentOut:
    """Verify the registration waiting (staff); the agent may become active."""
    return await service.verify_registration(ctx, signed_in(request), params.agent_id)


@routes.post("/agents/{agent_id}/registration/reject", params=AgentId, body=ReasonIn,
             response=AgentOut, roles=STAFF, errors=[404, 409])
async def reject_registration(request: web.Request, ctx: Ctx, params: AgentId,
                              body: ReasonIn) -> AgentOut:
    """Reject the registration waiting, saying why (staff)."""
    return await service.reject_registration(ctx, signed_in(request), params.agent_id, body)


@routes.post("/agents/{agent_id}/suspend", params=AgentId, body=ReasonIn, response=AgentOut,
             roles=STAFF, errors=[404, 409])
async def suspend(request: web.Request, ctx: Ctx, params: AgentId, body: ReasonIn
                  ) -> AgentOut:
    """Suspend an agent, saying why (staff): no leads, no listing requests."""
    return await service.suspend(ctx, signed_in(request), params.agent_id, body)


@routes.post("/agents/{agent_id}/reinstate", params=AgentId, response=AgentOut, roles=STAFF,
             errors=[404, 409])
async def reinstate(request: web.Request, ctx: Ctx, params: AgentId) -> AgentOut:
    """Lift a suspension (staff)."""
    return await service.reinstate(ctx, signed_in(request), params.agent_id)


@routes.get("/agents/projects/{project_id}/listings", params=ProjectId, query=ListingQuery,
            response=ListingPage, roles=ANYONE, errors=[403, 422])
async def project_listings(request: web.Request, ctx: Ctx, params: ProjectId,
                           query: ListingQuery) -> ListingPage:
    """A project's agent listings, newest request first (its builder, or staff)."""
    return await service.project_listings(ctx, signed_in(request), params.project_id, query)


@routes.post("/agents/listings/{listing_id}/accept", params=ListingId, response=ListingOut,
             roles=ANYONE, errors=[403, 404, 409])
async def accept_listing(request: web.Request, ctx: Ctx, params: ListingId) -> ListingOut:
    """Accept a requested listing (the project's builder, or staff)."""
    return await service.decide_listing(ctx, signed_in(request), params.listing_id, True)


@routes.post("/agents/listings/{listing_id}/reject", params=ListingId, body=ReasonIn,
             response=ListingOut, roles=ANYONE, errors=[403, 404, 409])
async def reject_listing(request: web.Request, ctx: Ctx, params: ListingId, body: ReasonIn
                         ) -> ListingOut:
    """Reject a requested listing, saying why (the project's builder, or staff)."""
    return await service.decide_listing(ctx, signed_in(request), params.listing_id, False,
                                        body)
