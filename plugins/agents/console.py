"""Console pages of agents: the list (by status), a new agent (for a user holding the agent
role, found by the phone number they sign in with), an agent (profile, KYC status, registrations
with verify / reject, suspend / reinstate with a reason, listings with accept / reject,
capacity and territories, holidays, history by name), the "registrations expiring" queue, and
the dashboard card (active agents, registrations waiting, registrations expiring).

Every form posts and redirects (POST-redirect-GET), works without JavaScript, and goes through
the API's service as ``Actor.staff`` (so the same rules, history and events); a refused form
is the agent's page again with status 422 and each message next to its field.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import attrs
from aiohttp import web

from propmubi.console.forms import FormErrors, read_form
from propmubi.console.names import actor_names
from propmubi.console.pages import (
    cursor_of,
    flash,
    parse_cursor,
    path_uuid,
    render,
    see_other,
    staff_actor,
)
from propmubi.errors import BadRequest, Conflict, FieldError, NotFound, ValidationFailed
from propmubi.types import ConsolePage, ConsoleWidget
from propmubi_plugins.agents import service, store
from propmubi_plugins.agents.models import (
    CAPACITY_MAX,
    STATES,
    STATUSES,
    TERRITORIES_MAX,
    AgentUpdate,
    HolidayIn,
    NewAgentForm,
    ReasonIn,
    TerritoryIn,
    e164,
)
from propmubi_plugins.agents.state import Ctx
from propmubi_plugins.catalog import api as catalog

PREFIX = "/console/agents"
PAGE_SIZE = 25
QUEUE_SIZE = 50

STATUS_LABELS = {"pending": "Pending", "active": "Active", "suspended": "Suspended",
                 "lapsed": "Lapsed"}
REASON_LABELS = {"created": "Profile created", "activated": "KYC and registration verified",
                 "kyc": "KYC not verified", "registration": "No registration in force",
                 "registration_lapsed": "Registration lapsed", "staff": "Suspended by staff",
                 "reinstated": "Reinstated by staff", "account_erased": "Account erased"}
KYC_LABELS = {"not_started": "Not started", "submitted": "Submitted",
              "resubmitted": "Resubmitted", "verified": "Verified", "rejected": "Rejected"}


def _territory_lines(value: str) -> list[TerritoryIn] | None:
    """``City`` or ``City / Locality`` per line, as territories (None: a line is wrong)."""
    out = []
    for line in value.splitlines():
        if not line.strip():
            continue
        city, _, locality = line.partition("/")
        try:
            out.append(TerritoryIn(city=city, locality=locality))
        except ValueError:
            return None
    return out


def _territories_text(instance: Any, attribute: Any, value: str) -> None:
    lines = [line for line in value.splitlines() if line.strip()]
    if len(lines) > TERRITORIES_MAX:
        raise ValueError(f"At most {TERRITORIES_MAX} territories.")
    if len(value) > 10_000 or _territory_lines(value) is None:
        raise ValueError("One territory a line: a city, or city / locality (at most 80 "
                         "characters each).")


def _capacity_form(instance: Any, attribute: Any, value: int) -> None:
    if not 0 <= value <= CAPACITY_MAX:
        raise ValueError(f"Give a number of open leads from 0 (none) to {CAPACITY_MAX}.")


@attrs.frozen
class RoutingForm:
    """The agent page's capacity and territories form."""

    capacity: int = attrs.field(validator=_capacity_form)
    territories: str = attrs.field(default="", validator=_territories_text)

    def to_update(self) -> AgentUpdate:
        """As the API's change."""
        return AgentUpdate(capacity=self.capacity,
                           territories=_territory_lines(self.territories) or [])


_HELPERS = {"status_labels": STATUS_LABELS, "reason_labels": REASON_LABELS,
            "kyc_labels": KYC_LABELS, "states": STATES, "statuses": STATUSES,
            "prefix": PREFIX}


def _page(name: str, request: web.Request, context: dict[str, Any], status: int = 200
          ) -> web.Response:
    return render(name, request, {**_HELPERS, **context}, status=status)


async def agents_page(request: web.Request, ctx: Ctx) -> web.Response:
    """Agents, newest first, optionally of one status (keyset pages)."""
    status = request.query.get("status") or None
    if status not in (None, *STATUSES):
        raise BadRequest("no such status")
    rows = await store.list_agents(ctx.db, status, parse_cursor(request.query.get("cursor")),
                                   PAGE_SIZE + 1)
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    return _page("agents/list.html", request, {
        "rows": rows, "status": status or "",
        "next_cursor": cursor_of(rows[-1]["created_at"], rows[-1]["id"]) if more else None})


async def expiring_page(request: web.Request, ctx: Ctx) -> web.Response:
    """Verified registrations ending within the notice period, soonest first."""
    today = service.today_of(ctx)
    horizon = today + dt.timedelta(days=ctx.settings.expiry_notice_days)
    rows = await store.expiring(ctx.db, today, horizon, None, QUEUE_SIZE)
    return _page("agents/expiring.html", request, {
        "rows": rows, "days": ctx.settings.expiry_notice_days, "today": today})


def _new_page(request: web.Request, *, errors: FormErrors | None = None,
              typed: dict[str, str] | None = None, status: int = 200) -> web.Response:
    return _page("agents/new.html", request, {"errors": errors or FormErrors(),
                                              "typed": typed or {}}, status=status)


async def new_agent_page(request: web.Request, ctx: Ctx) -> web.Response:
    """The "New agent" form."""
    return _new_page(request)


#: Where the service's refusals of a new profile are shown on the form.
_NEW_AGENT_FIELDS = {"registration.number": "number", "registration.valid_until": "valid_until"}


async def create_agent(request: web.Request, ctx: Ctx) -> web.Response:
    """Create an agent profile for the user who signs in with the phone number given; it is
    pending until staff verify the registration and the user's agent KYC is verified."""
    actor = staff_actor(request)
    posted = await request.post()
    typed = {k: str(v) for k, v in posted.items() if k != "csrf_token"}
    form, errors = await read_form(request, NewAgentForm)
    if form is None:
        return _new_page(request, errors=errors, typed=typed, status=422)
    user_id = await service.user_signing_in_with(ctx, actor, e164(form.user_phone) or "")
    if user_id is None:
        return _new_page(request, typed=typed, status=422, errors=FormErrors([FieldError(
            "form", "user_phone", "No user signs in with this phone number: they sign in "
            "once on the app first.")]))
    try:
        agent = await service.create_agent(ctx, actor, form.to_input(user_id))
    except (Conflict, NotFound) as exc:
        field = _NEW_AGENT_FIELDS.get(exc.extra.get("field", ""), "user_phone")
        return _new_page(request, typed=typed, status=422, errors=FormErrors([FieldError(
            "form", field, f"{exc.detail[0].upper()}{exc.detail[1:]}." if exc.detail
            else "Refused.")]))
    except ValidationFailed as exc:
        return _new_page(request, typed=typed, status=422, errors=FormErrors([
            FieldError("form", _NEW_AGENT_FIELDS.get(e["field"], e["field"]), e["message"])
            for e in exc.extra["errors"]]))
    flash(request, "Agent created: verify the registration once checked on the register.",
          "success")
    return see_other(f"{PREFIX}/{agent.id}")


async def _detail(request: web.Request, ctx: Ctx, agent_id: uuid.UUID, *,
                  errors: FormErrors | None = None, typed: dict[str, str] | None = None,
                  form: str = "", status: int = 200) -> web.Response:
    actor = staff_actor(request)
    agent = await service.get_agent(ctx, actor, agent_id)
    history = await store.history(ctx.db, agent_id)
    names = await actor_names(request.app, [f"user:{agent.user_id}",
                                            *(h["actor"] for h in history)])
    projects = {}
    for listing in agent.listings:
        project = await catalog.project(ctx.db, listing.project_id)
        projects[listing.project_id] = project["name"] if project else "deleted project"
    territories = "\n".join(t.city + (f" / {t.locality}" if t.locality else "")
                            for t in agent.territories)
    return _page("agents/detail.html", request, {
        "agent": agent, "history": history, "names": names, "projects": projects,
        "user_name": names[f"user:{agent.user_id}"], "territories_text": territories,
        "errors": errors or FormErrors(), "typed": typed or {}, "form": form,
        "today": service.today_of(ctx)}, status=status)


async def agent_page(request: web.Request, ctx: Ctx) -> web.Response:
    """One agent with every staff action."""
    return await _detail(request, ctx, path_uuid(request, "id", "agent"))


async def _act(request: web.Request, ctx: Ctx, action: Any, done: str) -> web.Response:
    """Run a staff action; a refusal (409) is a flash, not an error page."""
    agent_id = path_uuid(request, "id", "agent")
    try:
        await action(agent_id)
    except Conflict as exc:
        flash(request, f"Nothing changed: {exc.detail}.", "error")
    else:
        flash(request, done, "success")
    return see_other(f"{PREFIX}/{agent_id}")


async def _with_form(request: web.Request, ctx: Ctx, cls: type, form_name: str,
                     action: Any, done: str) -> web.Response:
    agent_id = path_uuid(request, "id", "agent")
    form, errors = await read_form(request, cls)
    if form is None:
        posted = await request.post()
        typed = {k: str(v) for k, v in posted.items() if k != "csrf_token"}
        return await _detail(request, ctx, agent_id, errors=errors, typed=typed,
                             form=form_name, status=422)
    typed = {k: str(v) for k, v in (await request.post()).items() if k != "csrf_token"}
    try:
        return await _act(request, ctx, lambda agent_id: action(agent_id, form), done)
    except ValidationFailed as exc:  # what only the service can check (a holiday over)
        return await _detail(request, ctx, agent_id, errors=FormErrors(exc.extra["errors"]),
                             typed=typed, form=form_name, status=422)


async def verify(request: web.Request, ctx: Ctx) -> web.Response:
    """Verify the registration waiting."""
    actor = staff_actor(request)
    return await _act(request, ctx, lambda agent_id: service.verify_registration(
        ctx, actor, agent_id), "Registration verified.")


async def reject_registration(request: web.Request, ctx: Ctx) -> web.Response:
    """Reject the registration waiting, with a reason."""
    actor = staff_actor(request)
    return await _with_form(request, ctx, ReasonIn, "reject", lambda agent_id, form: (
        service.reject_registration(ctx, actor, agent_id, form)), "Registration rejected.")


async def suspend(request: web.Request, ctx: Ctx) -> web.Response:
    """Suspend the agent, with a reason."""
    actor = staff_actor(request)
    return await _with_form(request, ctx, ReasonIn, "suspend", lambda agent_id, form: (
        service.suspend(ctx, actor, agent_id, form)), "Agent suspended.")


async def reinstate(request: web.Request, ctx: Ctx) -> web.Response:
    """Lift the suspension."""
    actor = staff_actor(request)
    return await _act(request, ctx, lambda agent_id: service.reinstate(ctx, actor, agent_id),
                      "Agent reinstated.")


async def routing(request: web.Request, ctx: Ctx) -> web.Response:
    """Change capacity and territories."""
    actor = staff_actor(request)
    return await _with_form(request, ctx, RoutingForm, "routing", lambda agent_id, form: (
        service.update_agent(ctx, actor, agent_id, form.to_update())),
        "Capacity and territories saved.")


async def add_holiday(request: web.Request, ctx: Ctx) -> web.Response:
    """Add a holiday."""
    actor = staff_actor(request)
    return await _with_form(request, ctx, HolidayIn, "holiday", lambda agent_id, form: (
        service.add_holiday(ctx, actor, agent_id, form)), "Holiday added.")


async def remove_holiday(request: web.Request, ctx: Ctx) -> web.Response:
    """Cancel a holiday."""
    actor = staff_actor(request)
    holiday_id = path_uuid(request, "holiday", "holiday")
    return await _act(request, ctx, lambda agent_id: service.remove_holiday(
        ctx, actor, agent_id, holiday_id), "Holiday removed.")


async def _listing_action(request: web.Request, ctx: Ctx, accept: bool) -> web.Response:
    actor = staff_actor(request)
    agent_id = path_uuid(request, "id", "agent")
    listing_id = path_uuid(request, "listing", "listing")
    listing = await store.listing(ctx.db, listing_id)
    if listing is None or listing["agent_id"] != agent_id:
        raise NotFound("no such listing")
    reason = None
    if not accept:
        reason, errors = await read_form(request, ReasonIn)
        if reason is None:
            posted = await request.post()
            return await _detail(request, ctx, agent_id, errors=errors,
                                 typed={"reason": str(posted.get("reason", ""))},
                                 form=f"listing-{listing_id}", status=422)
    return await _act(request, ctx, lambda _: service.decide_listing(
        ctx, actor, listing_id, accept, reason),
        "Listing accepted." if accept else "Listing rejected.")


async def accept_listing(request: web.Request, ctx: Ctx) -> web.Response:
    """Accept a requested listing."""
    return await _listing_action(request, ctx, True)


async def reject_listing(request: web.Request, ctx: Ctx) -> web.Response:
    """Reject a requested listing, with a reason."""
    return await _listing_action(request, ctx, False)


def pages() -> list[ConsolePage]:
    """Every agents console page (staff)."""
    base = "/agents/{id}"
    posts = [("/registration/verify", verify, "verify"),
             ("/registration/reject", reject_registration, "reject-registration"),
             ("/suspend", suspend, "suspend"), ("/reinstate", reinstate, "reinstate"),
             ("/routing", routing, "routing"), ("/holidays", add_holiday, "holiday-add"),
             ("/holidays/{holiday}/delete", remove_holiday, "holiday-delete"),
             ("/listings/{listing}/accept", accept_listing, "listing-accept"),
             ("/listings/{listing}/reject", reject_listing, "listing-reject")]
    return [
        ConsolePage(path="/agents", handler=agents_page, name="agents-list",
                    nav_label="Agents", nav_order=60),
        ConsolePage(path="/agents/expiring", handler=expiring_page, name="agents-expiring"),
        ConsolePage(path="/agents/new", handler=new_agent_page, name="agents-new"),
        ConsolePage(path="/agents/new", handler=create_agent, name="agents-create",
                    method="POST"),
        ConsolePage(path=base, handler=agent_page, name="agents-detail"),
        *(ConsolePage(path=base + path, handler=handler, name=f"agents-{name}", method="POST")
          for path, handler, name in posts),
    ]


async def _card(request: web.Request, ctx: Ctx) -> dict[str, Any]:
    today = service.today_of(ctx)
    counts = await store.status_counts(ctx.db)
    horizon = today + dt.timedelta(days=ctx.settings.expiry_notice_days)
    return {"active": counts.get("active", 0), "waiting": await store.submitted_count(ctx.db),
            "expiring": await store.expiring_count(ctx.db, today, horizon),
            "days": ctx.settings.expiry_notice_days, "prefix": PREFIX}


def widgets() -> list[ConsoleWidget]:
    """The dashboard card."""
    return [ConsoleWidget(name="agents-overview", title="Agents",
                          template="agents/widget.html", load=_card, order=60)]
