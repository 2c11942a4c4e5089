"""The console of site visits: the book, reschedule and cancel forms of a lead's page (whose
visits section ``crm/console.py`` fills from the visits service) and the *Upcoming visits*
page.

Times show in the calendar's zone (IST) with UTC beside them (``when``, as every console
page shows times). Forms are plain posts through the service as ``Actor.staff``; a slot is
chosen from the free ones (a select, no JavaScript); a refused form shows the lead's page
again (422) with the message by its field; a conflict (the slot filled meanwhile, the visit
closed) is a flash message.
"""

from __future__ import annotations

import uuid
from typing import Any

from aiohttp import web

from propmubi.console.forms import read_form
from propmubi.console.names import actor_names
from propmubi.console.pages import flash, path_uuid, render, see_other, staff_actor
from propmubi.errors import Conflict, NotFound, ValidationFailed
from propmubi.types import ConsolePage
from propmubi_plugins.crm import console as crm_console
from propmubi_plugins.crm import service as leads
from propmubi_plugins.crm.state import Ctx
from propmubi_plugins.crm.visits import service, store
from propmubi_plugins.crm.visits.models import CancelIn, VisitIn

PREFIX = "/console/crm"
#: Visits on the upcoming page.
UPCOMING = 200


async def _refused(request: web.Request, ctx: Ctx, lead_id: uuid.UUID, form: str,
                   errors: Any, typed: dict[str, str]) -> web.Response:
    return await crm_console.lead_detail(request, ctx, lead_id, errors=errors, form=form,
                                         typed=typed, status=422)


async def _typed(request: web.Request, *keys: str) -> dict[str, str]:
    posted = await request.post()
    return {k: str(posted.get(k, "")).strip() for k in keys}


async def book(request: web.Request, ctx: Ctx) -> web.Response:
    """The book form of a lead's page."""
    lead_id = path_uuid(request, "id", "lead")
    form, errors = await read_form(request, VisitIn)
    typed = await _typed(request, "starts_at")
    if form is None:
        return await _refused(request, ctx, lead_id, "visit-book", errors, typed)
    try:
        visit = await service.book(ctx, staff_actor(request), lead_id, form)
    except ValidationFailed as exc:
        return await _refused(request, ctx, lead_id, "visit-book", crm_console.errors_of(exc),
                              typed)
    except Conflict as exc:
        flash(request, f"Not booked: {exc.detail}.", "error")
        return see_other(f"{PREFIX}/leads/{lead_id}")
    flash(request, f"Visit booked for {crm_console.local_time(ctx)(visit.starts_at)}.", "success")
    return see_other(f"{PREFIX}/leads/{lead_id}")


async def _visit_lead(ctx: Ctx, visit_id: uuid.UUID) -> uuid.UUID:
    row = await store.visit(ctx.db, visit_id)
    if row is None:
        raise NotFound("no such visit")
    lead_id: uuid.UUID = row["lead_id"]
    return lead_id


async def reschedule(request: web.Request, ctx: Ctx) -> web.Response:
    """The reschedule form: another free slot, the same visit."""
    visit_id = path_uuid(request, "id", "visit")
    lead_id = await _visit_lead(ctx, visit_id)
    form, errors = await read_form(request, VisitIn)
    typed = await _typed(request, "starts_at")
    if form is None:
        return await _refused(request, ctx, lead_id, "visit-reschedule", errors, typed)
    try:
        visit = await service.reschedule(ctx, staff_actor(request), visit_id, form)
    except ValidationFailed as exc:
        return await _refused(request, ctx, lead_id, "visit-reschedule",
                              crm_console.errors_of(exc), typed)
    except Conflict as exc:
        flash(request, f"Not moved: {exc.detail}.", "error")
        return see_other(f"{PREFIX}/leads/{lead_id}")
    flash(request, f"Visit moved to {crm_console.local_time(ctx)(visit.starts_at)}.", "success")
    return see_other(f"{PREFIX}/leads/{lead_id}")


async def cancel(request: web.Request, ctx: Ctx) -> web.Response:
    """The cancel form: why."""
    visit_id = path_uuid(request, "id", "visit")
    lead_id = await _visit_lead(ctx, visit_id)
    form, errors = await read_form(request, CancelIn)
    typed = await _typed(request, "reason")
    if form is None:
        return await _refused(request, ctx, lead_id, "visit-cancel", errors, typed)
    try:
        await service.cancel(ctx, staff_actor(request), visit_id, form)
    except Conflict as exc:
        flash(request, f"Not cancelled: {exc.detail}.", "error")
        return see_other(f"{PREFIX}/leads/{lead_id}")
    flash(request, "Visit cancelled.", "success")
    return see_other(f"{PREFIX}/leads/{lead_id}")


async def upcoming_page(request: web.Request, ctx: Ctx) -> web.Response:
    """Scheduled visits not over yet, soonest first, by name."""
    rows = await service.upcoming(ctx, staff_actor(request), UPCOMING)
    users = await actor_names(request.app, [f"user:{r['advisor_user_id']}" for r in rows
                                            if r["advisor_user_id"]])
    projects = await leads.project_names(ctx, [r["project_id"] for r in rows])
    named = [{**r, "project_name": projects[r["project_id"]],
              "advisor_name": (users.get(f"user:{r['advisor_user_id']}") or r["agent_name"]
                               or "an advisor") if r["agent_id"] else None} for r in rows]
    return render("crm/visits.html", request, {
        "prefix": PREFIX, "rows": named, "local_time": crm_console.local_time(ctx)})


def pages() -> list[ConsolePage]:
    """The visits pages and forms (staff)."""
    return [
        ConsolePage(path="/crm/visits", handler=upcoming_page, name="crm-visits",
                    nav_label="Site visits", nav_order=56),
        ConsolePage(path="/crm/leads/{id}/visits", handler=book, name="crm-visit-book",
                    method="POST"),
        ConsolePage(path="/crm/visits/{id}/reschedule", handler=reschedule,
                    name="crm-visit-reschedule", method="POST"),
        ConsolePage(path="/crm/visits/{id}/cancel", handler=cancel, name="crm-visit-cancel",
                    method="POST"),
    ]
