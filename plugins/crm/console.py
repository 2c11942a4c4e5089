"""The CRM's console: the leads board by stage, a lead (facts, enquiries, history, the stage
and reassign forms, its site visits: ``visits/console.py``), the unassigned queue, the SLA
breaches queue, and the dashboard card.

Pages show names, not ids: the project's name (the catalogue's api), the advisor's name (the
CRM's routing copy), who did what (``actor_names``). Forms are plain posts (no JavaScript),
go through the service as ``Actor.staff`` (same rules and events as the API), and answer a
refused form with the page again, status 422 and the message next to its field.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from aiohttp import web

from propmubi.console.forms import FormErrors, read_form
from propmubi.console.names import actor_names
from propmubi.console.pages import flash, path_uuid, render, see_other, staff_actor
from propmubi.errors import Conflict, FieldError, NotFound, ValidationFailed
from propmubi.types import ConsolePage, ConsoleWidget
from propmubi_plugins.catalog import api as catalog
from propmubi_plugins.crm import service, store
from propmubi_plugins.crm.models import ReassignIn, StageIn
from propmubi_plugins.crm.state import Ctx
from propmubi_plugins.crm.visits import service as visits
from propmubi_plugins.crm.visits.models import SlotQuery

PREFIX = "/console/crm"
#: Leads shown per stage column of the board, and per queue.
BOARD_PER_STAGE = 25
QUEUE_SIZE = 200
HISTORY_LABELS = {"created": "Created", "enquiry": "Enquired again", "assigned": "Assigned",
                  "reassigned": "Reassigned", "unassigned": "Back to the queue",
                  "stage": "Stage changed", "sla_warning": "SLA warning",
                  "sla_breached": "SLA breached"}
VISIT_STATUS = {"scheduled": "Scheduled", "completed": "Completed", "cancelled": "Cancelled",
                "no_show": "No-show"}
#: Free slots offered by the book and reschedule forms.
SLOT_CHOICES = 120


async def _agent_names(request: web.Request, agents: list[dict[str, Any]]
                       ) -> dict[uuid.UUID, str]:
    """Advisors' names: the auth plugin's name of their user, else the one CRM was told."""
    users = await actor_names(request.app, [f"user:{a['user_id']}" for a in agents
                                            if a.get("user_id")])
    return {a["agent_id"]: users.get(f"user:{a['user_id']}") or a.get("name") or "an advisor"
            for a in agents}


def local_time(ctx: Ctx) -> Any:
    """``Tue 03 Jun 2025, 15:00 IST``: an instant in the calendar's zone."""
    zone = ctx.state.calendar.zone

    def show(at: dt.datetime | None) -> str:
        if at is None:
            return "—"
        local = at.astimezone(zone)
        return local.strftime("%a %d %b %Y, %H:%M ") + (local.tzname() or "")

    return show


async def visits_context(request: web.Request, ctx: Ctx, lead: dict[str, Any]
                         ) -> dict[str, Any]:
    """What the lead page shows of its site visits: the visits, the scheduled one, the free
    slots to book or move it to (``templates/crm/_visits.html``)."""
    rows = await visits.lead_visits(ctx, staff_actor(request), lead["id"])
    scheduled = next((r for r in rows if r["status"] == "scheduled"), None)
    choices = []
    if lead["closed_at"] is None:
        slots = await visits.free_slots(ctx, staff_actor(request), lead["project_id"],
                                         SlotQuery())
        choices = slots[:SLOT_CHOICES]
    return {"visits": rows, "scheduled_visit": scheduled, "slot_choices": choices,
            "local_time": local_time(ctx), "visit_status": VISIT_STATUS}


async def _named(request: web.Request, ctx: Ctx, rows: list[dict[str, Any]]
                 ) -> list[dict[str, Any]]:
    """Lead rows with their project's and advisor's names and SLA state for display."""
    advisors = await _agent_names(request, [
        {"agent_id": r["agent_id"], "user_id": r["agent_user_id"], "name": r["agent_name"]}
        for r in rows if r["agent_id"]])
    projects: dict[uuid.UUID, str] = {}
    for project_id in {r["project_id"] for r in rows}:
        project = await catalog.project(ctx.db, project_id)
        projects[project_id] = project["name"] if project else "deleted project"
    out = []
    for row in rows:
        lead = service.lead_out(ctx, row)
        sla = lead.sla
        state = ("breached" if sla and sla.breached_at else "warned" if sla and sla.warned_at
                 else "paused" if sla and sla.paused else "" if sla else "closed")
        out.append({**row, "project_name": projects[row["project_id"]],
                    "agent_name": advisors.get(row["agent_id"]),
                    "stage_label": lead.stage_label, "sla": sla, "sla_state": state})
    return out


def _page(name: str, request: web.Request, context: dict[str, Any], status: int = 200
          ) -> web.Response:
    return render(name, request, {"prefix": PREFIX, **context}, status=status)


async def board(request: web.Request, ctx: Ctx) -> web.Response:
    """Leads by stage, newest first in each column."""
    flow = ctx.state.pipeline
    counts = await store.stage_counts(ctx.db)
    columns = []
    for key in flow.keys:
        rows = await store.by_stage(ctx.db, key, BOARD_PER_STAGE)
        columns.append({"key": key, "label": flow.label(key), "count": counts.get(key, 0),
                        "leads": await _named(request, ctx, rows)})
    return _page("crm/board.html", request, {"columns": columns})


async def lead_detail(request: web.Request, ctx: Ctx, lead_id: uuid.UUID, *,
                  errors: FormErrors | None = None, form: str = "",
                  typed: dict[str, str] | None = None, status: int = 200) -> web.Response:
    detail = await service.get_lead(ctx, staff_actor(request), lead_id)
    row = await store.lead(ctx.db, lead_id)
    assert row is not None
    (named,) = await _named(request, ctx, [row])
    agents = await store.agents(ctx.db)
    agent_names = await _agent_names(request, agents)
    names = await actor_names(request.app, [h.actor for h in detail.history])
    flow = ctx.state.pipeline
    shown = await visits_context(request, ctx, row)
    return _page("crm/lead.html", request, {**shown,
        "lead": named, "detail": detail, "actor_names": names, "agent_names": agent_names,
        "labels": HISTORY_LABELS, "stage_label": flow.label,
        "next_stages": [(k, flow.label(k)) for k in flow.keys if k != row["stage"]],
        "reason_labels": ", ".join(flow.label(k) for k in sorted(flow.reason)),
        "closed": row["closed_at"] is not None,
        "active_agents": [a for a in agents if a["active"]],
        "errors": errors or FormErrors(), "form": form, "typed": typed or {}},
        status=status)


async def lead_page(request: web.Request, ctx: Ctx) -> web.Response:
    """One lead: facts, SLA, enquiries, history by name, and the forms."""
    return await lead_detail(request, ctx, path_uuid(request, "id", "lead"))


def errors_of(exc: ValidationFailed) -> FormErrors:
    return FormErrors([FieldError("form", e["field"], e["message"])
                       for e in exc.extra.get("errors", [])])


async def _typed(request: web.Request, keys: tuple[str, ...]) -> dict[str, str]:
    posted = await request.post()
    return {k: str(posted.get(k, "")).strip() for k in keys}


async def change_stage(request: web.Request, ctx: Ctx) -> web.Response:
    """The stage form: the lead moves, or the page again with the refused field (422)."""
    lead_id = path_uuid(request, "id", "lead")
    form, errors = await read_form(request, StageIn)
    typed = await _typed(request, ("stage", "reason"))
    if form is None:
        return await lead_detail(request, ctx, lead_id, errors=errors, form="stage", typed=typed,
                             status=422)
    try:
        lead = await service.change_stage(ctx, staff_actor(request), lead_id, form)
    except ValidationFailed as exc:
        return await lead_detail(request, ctx, lead_id, errors=errors_of(exc), form="stage",
                             typed=typed, status=422)
    except Conflict as exc:
        flash(request, f"Nothing changed: {exc.detail}.", "error")
        return see_other(f"{PREFIX}/leads/{lead_id}")
    flash(request, f"The lead is now {lead.stage_label}.", "success")
    return see_other(f"{PREFIX}/leads/{lead_id}")


async def reassign(request: web.Request, ctx: Ctx) -> web.Response:
    """The reassign form: another advisor (or the queue) and why."""
    lead_id = path_uuid(request, "id", "lead")
    form, errors = await read_form(request, ReassignIn)
    typed = await _typed(request, ("agent_id", "reason"))
    if form is None:
        return await lead_detail(request, ctx, lead_id, errors=errors, form="reassign",
                             typed=typed, status=422)
    try:
        lead = await service.reassign(ctx, staff_actor(request), lead_id, form)
    except ValidationFailed as exc:
        return await lead_detail(request, ctx, lead_id, errors=errors_of(exc), form="reassign",
                             typed=typed, status=422)
    except Conflict as exc:
        flash(request, f"Nothing changed: {exc.detail}.", "error")
        return see_other(f"{PREFIX}/leads/{lead_id}")
    except NotFound:
        raise NotFound("no such lead") from None
    flash(request, f"The lead is now with {lead.agent_name or 'the queue'}.", "success")
    return see_other(f"{PREFIX}/leads/{lead_id}")


async def breaches_page(request: web.Request, ctx: Ctx) -> web.Response:
    """Open leads whose SLA was breached, latest first."""
    rows = await store.breaches(ctx.db, QUEUE_SIZE)
    return _page("crm/queue.html", request, {
        "title": "SLA breaches", "rows": await _named(request, ctx, rows),
        "empty": "No open lead has breached its SLA."})


async def unassigned_page(request: web.Request, ctx: Ctx) -> web.Response:
    """Open leads nobody has (no eligible advisor), oldest first."""
    rows = await store.unassigned(ctx.db, QUEUE_SIZE)
    return _page("crm/queue.html", request, {
        "title": "Unassigned leads", "rows": await _named(request, ctx, rows),
        "empty": "Every open lead has an advisor."})


def pages() -> list[ConsolePage]:
    """Every CRM console page (staff)."""
    return [
        ConsolePage(path="/crm/leads", handler=board, name="crm-board", nav_label="Leads",
                    nav_order=55),
        ConsolePage(path="/crm/unassigned", handler=unassigned_page, name="crm-unassigned"),
        ConsolePage(path="/crm/breaches", handler=breaches_page, name="crm-breaches"),
        ConsolePage(path="/crm/leads/{id}", handler=lead_page, name="crm-lead"),
        ConsolePage(path="/crm/leads/{id}/stage", handler=change_stage, name="crm-stage",
                    method="POST"),
        ConsolePage(path="/crm/leads/{id}/reassign", handler=reassign, name="crm-reassign",
                    method="POST"),
    ]


async def _cards(request: web.Request, ctx: Ctx) -> dict[str, Any]:
    now = ctx.clock.now()
    today = now.astimezone(ctx.state.calendar.zone).replace(hour=0, minute=0, second=0,
                                                            microsecond=0)
    counts = await store.dashboard_counts(ctx.db, today.astimezone(dt.UTC))
    return {**counts, "prefix": PREFIX}


def widgets() -> list[ConsoleWidget]:
    """The dashboard card."""
    return [ConsoleWidget(name="crm-leads", title="Leads", template="crm/widget.html",
                          load=_cards, order=55)]
