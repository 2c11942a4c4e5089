"""The CRM's operations: enquiries in, leads (dedup, routing, stages, reassignment), the SLA
job, and the routing copy of the agents kept from the agents plugin's events.

Every public function is ``verb(ctx, actor, <ids...>, <input>)`` and opens its own
transaction; ``..._in`` variants join the caller's. Who may do what is decided here: staff
see and change every lead; an advisor (a user the CRM knows as an agent) sees and moves the
leads assigned to them; buyers only send enquiries. SQL is store.py's, the pure rules
routing.py's and pipeline.py's.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import uuid
from typing import Any

import attrs

from propmubi import cursors
from propmubi.actors import Actor
from propmubi.db import Tx
from propmubi.errors import (
    Conflict,
    FieldError,
    Forbidden,
    NotFound,
    Unauthorized,
    ValidationFailed,
)
from propmubi.ids import uuid7
from propmubi.validation import InvalidInput
from propmubi_plugins.catalog import api as catalog
from propmubi_plugins.crm import phones, pipeline, routing, store
from propmubi_plugins.crm.events import (
    EnquiryReceived,
    LeadAssigned,
    LeadCreated,
    LeadReassigned,
    SlaBreached,
    SlaWarning,
    StageChanged,
)
from propmubi_plugins.crm.models import (
    EnquiryAck,
    EnquiryIn,
    EnquiryOut,
    HistoryOut,
    LeadDetail,
    LeadOut,
    LeadPage,
    LeadQuery,
    PartnerLeadIn,
    ReassignIn,
    SlaOut,
    StageIn,
    StageOut,
)
from propmubi_plugins.crm.state import Ctx

log = logging.getLogger(__name__)

ROUTER = Actor.system("crm-routing")
BAD_PHONE = "That is not a phone number we can call: give all its digits."


# --------------------------------------------------------------------------------------------
# Shapes
# --------------------------------------------------------------------------------------------


def clock_of(row: dict[str, Any]) -> pipeline.Clock:
    """A lead row's SLA clock."""
    return pipeline.Clock(kind=row["sla_kind"], cycle=row["sla_cycle"],
                          started_at=row["sla_started_at"], paused_at=row["sla_paused_at"],
                          paused_seconds=row["sla_paused_seconds"])


def _sla(ctx: Ctx, row: dict[str, Any]) -> SlaOut | None:
    clock = clock_of(row)
    if clock.kind is None:
        return None
    allowed = pipeline.target(clock.kind, ctx.settings)
    return SlaOut(kind=clock.kind, paused=clock.paused_at is not None,
                  due_at=pipeline.due_at(clock, ctx.state.calendar, allowed),
                  warned_at=row["sla_warned_at"], breached_at=row["sla_breached_at"])


def lead_out(ctx: Ctx, row: dict[str, Any]) -> LeadOut:
    """A lead row as the API shows it."""
    return LeadOut(
        id=row["id"], project_id=row["project_id"], unit_id=row["unit_id"], name=row["name"],
        phone=row["phone"], email=row["email"], source=row["source"], stage=row["stage"],
        stage_label=ctx.state.pipeline.label(row["stage"]), lost_reason=row["lost_reason"],
        agent_id=row["agent_id"], agent_name=row.get("agent_name") or None,
        created_at=row["created_at"], updated_at=row["updated_at"],
        last_enquiry_at=row["last_enquiry_at"], assigned_at=row["assigned_at"],
        first_response_at=row["first_response_at"], closed_at=row["closed_at"],
        sla=_sla(ctx, row))


def stages(ctx: Ctx) -> list[StageOut]:
    """The pipeline's stages, in order."""
    p = ctx.state.pipeline
    return [StageOut(key=k, label=p.label(k), terminal=k in p.terminal,
                     waiting=k in p.waiting, needs_reason=k in p.reason) for k in p.keys]


async def published_project(ctx: Ctx, project_id: uuid.UUID) -> dict[str, Any] | None:
    """A published project of the catalogue (None: no such project, or not published)."""
    project = await catalog.project(ctx.db, project_id)
    return project if project is not None and project.get("moderation") == "published" else None


async def project_names(ctx: Ctx, project_ids: Any) -> dict[uuid.UUID, str]:
    """The catalogue's names of projects (the console's)."""
    names = {}
    for project_id in set(project_ids):
        project = await catalog.project(ctx.db, project_id)
        names[project_id] = project["name"] if project else "deleted project"
    return names


# --------------------------------------------------------------------------------------------
# Enquiries
# --------------------------------------------------------------------------------------------


def _given(data: Any) -> tuple[dict[str, Any], list[FieldError]]:
    if isinstance(data, InvalidInput):
        return dict(data.valid), list(data.errors)
    return attrs.asdict(data, recurse=False), []


async def _checked(ctx: Ctx, data: Any) -> tuple[dict[str, Any], str, dict[str, Any]]:
    """The input's values, its normalised phone and its project; every problem in one 422
    (a bad phone, an unknown or unpublished project, a unit of another project)."""
    values, errors = _given(data)
    phone = None
    if "phone" in values:
        phone = phones.normalise(values["phone"], ctx.settings.default_region)
        if phone is None:
            errors.append(FieldError("body", "phone", BAD_PHONE))
    project = None
    if "project_id" in values:
        project = await catalog.project(ctx.db, values["project_id"])
        if project is None or project.get("moderation") != "published":
            errors.append(FieldError("body", "project_id", "No such project."))
            project = None
    if project is not None and values.get("unit_id") is not None:
        unit = await catalog.unit(ctx.db, values["unit_id"])
        if unit is None or unit["project_id"] != project["id"]:
            errors.append(FieldError("body", "unit_id", "That unit is not in this project."))
    if errors:
        raise ValidationFailed(errors)
    assert phone is not None and project is not None
    return values, phone, project


async def _limit(ctx: Ctx, phone: str, ip: str) -> None:
    """Count the enquiry against its address and its phone (429 past either limit)."""
    state = ctx.state
    phone_id = hashlib.sha256(phone.encode()).hexdigest()[:32]  # no number in Redis keys
    await state.limiter.check(f"{ctx.name}-enquiry", [("ip", ip, state.per_ip),
                                                     ("phone", phone_id, state.per_phone)])


async def receive_enquiry(ctx: Ctx, actor: Actor, data: EnquiryIn | InvalidInput, *,
                          ip: str) -> EnquiryAck:
    """A signed-in buyer's enquiry: a new lead, or one more enquiry of the open lead of the
    same phone and project within ``dedup_window_days``.

    A filled honeypot (``website``) gets the same answer as a real enquiry, and nothing is
    stored or published.

    :raises ValidationFailed: every bad field at once (``phone`` that is not a number,
        ``project_id`` not a published project, ``unit_id`` of another project).
    :raises TooManyRequests: the phone's or the address's enquiry limit is reached.
    """
    if isinstance(data, EnquiryIn) and data.website.strip():
        log.info("crm: an enquiry filled the honeypot; dropped")
        return EnquiryAck(enquiry_id=uuid7(), lead_id=uuid7(), received_at=ctx.clock.now())
    values, phone, project = await _checked(ctx, data)
    await _limit(ctx, phone, ip)
    async with ctx.db.transaction() as tx:
        return await ingest_in(ctx, tx, actor, values, phone, project,
                               user_id=actor.user_id, partner=None)


def partner_actor(ctx: Ctx, key: str | None) -> Actor:
    """The partner whose API key this is, as an actor (``system:partner-<name>``).

    Every configured key is compared in constant time, whatever matches.

    :raises Unauthorized: no key, or none of the configured ones.
    """
    found = None
    digest = hashlib.sha256((key or "").encode()).digest()
    for name, expected in sorted(ctx.state.partner_keys.items()):
        if hmac.compare_digest(digest, expected) and key:
            found = name
    if found is None:
        raise Unauthorized("a partner API key is needed (X-Partner-Key)",
                           headers={"WWW-Authenticate": "X-Partner-Key"})
    return Actor.system(f"partner-{found}")


async def receive_partner_lead(ctx: Ctx, actor: Actor, data: PartnerLeadIn | InvalidInput, *,
                               ip: str) -> EnquiryAck:
    """A partner's lead, deduplicated like a buyer's enquiry (source ``partner``)."""
    if actor.kind != "system" or not actor.id.startswith("partner-"):
        raise Forbidden("only partners push leads")
    values, phone, project = await _checked(ctx, data)
    await _limit(ctx, phone, ip)
    values["source"] = "partner"
    async with ctx.db.transaction() as tx:
        return await ingest_in(ctx, tx, actor, values, phone, project, user_id=None,
                               partner=actor.id.removeprefix("partner-"))


async def ingest_in(ctx: Ctx, tx: Tx, actor: Actor, values: dict[str, Any], phone: str,
                    project: dict[str, Any], *, user_id: uuid.UUID | None,
                    partner: str | None) -> EnquiryAck:
    """Record a checked enquiry in ``tx``: join the open lead of (project, phone) within the
    window or create (and route) a new one. Enquiries of one person about one project are
    serialised by an advisory lock, so concurrent duplicates make one lead."""
    now = ctx.clock.now()
    project_id = project["id"]
    source = values.get("source") or "website"
    await store.lock_person(tx, project_id, phone)
    since = now - dt.timedelta(days=ctx.settings.dedup_window_days)
    lead = await store.open_lead_for(tx, project_id, phone, since)
    new = lead is None
    lead_id = uuid7() if lead is None else lead["id"]
    if lead is None:
        clock = pipeline.started(now)
        await store.insert_lead(tx, {
            "id": lead_id, "project_id": project_id, "unit_id": values.get("unit_id"),
            "phone": phone, "name": values["name"].strip(), "email": values.get("email"),
            "city": project.get("city") or "", "locality": project.get("locality") or "",
            "source": source, "stage": ctx.state.pipeline.first, "created_at": now,
            "sla_kind": clock.kind, "sla_cycle": clock.cycle, "sla_started_at": now})
        await store.add_history(tx, lead_id, "created", actor.ref, now,
                                to_stage=ctx.state.pipeline.first)
        await ctx.publish(tx, LeadCreated(lead_id=lead_id, project_id=project_id,
                                          unit_id=values.get("unit_id"), source=source,
                                          stage=ctx.state.pipeline.first), actor=actor.ref)
    else:
        await store.touch_lead(tx, lead_id, now)
        await store.add_history(tx, lead_id, "enquiry", actor.ref, now)
    enquiry_id = uuid7()
    await store.insert_enquiry(tx, {
        "id": enquiry_id, "lead_id": lead_id, "project_id": project_id,
        "unit_id": values.get("unit_id"), "phone": phone, "name": values["name"].strip(),
        "email": values.get("email"), "message": values.get("message") or "",
        "preferred_time": values.get("preferred_time"), "source": source,
        "user_id": user_id, "partner": partner, "external_ref": values.get("external_ref"),
        "created_at": now})
    await ctx.publish(tx, EnquiryReceived(enquiry_id=enquiry_id, lead_id=lead_id,
                                          project_id=project_id, source=source,
                                          new_lead=new), actor=actor.ref)
    if new:
        await route_in(ctx, tx, lead_id)
    return EnquiryAck(enquiry_id=enquiry_id, lead_id=lead_id, received_at=now)


# --------------------------------------------------------------------------------------------
# Routing
# --------------------------------------------------------------------------------------------


def routing_agent(row: dict[str, Any]) -> routing.Agent:
    """A crm_agents row (with ``open_leads``) as routing sees it."""
    holidays = []
    for h in row["holidays"] or []:
        try:
            holidays.append((dt.date.fromisoformat(h["starts_on"]),
                             dt.date.fromisoformat(h["ends_on"])))
        except (KeyError, TypeError, ValueError):
            continue
    return routing.Agent(
        agent_id=row["agent_id"], active=row["active"], capacity=row["capacity"],
        open_leads=int(row.get("open_leads") or 0),
        territories=tuple((t.get("city", ""), t.get("locality", ""))
                          for t in row["territories"] or []),
        projects=frozenset(row["projects"] or ()), holidays=tuple(holidays),
        rotation=row["rotation"], last_assigned_at=row["last_assigned_at"],
        in_rotation=row["in_rotation"])


async def route_in(ctx: Ctx, tx: Tx, lead_id: uuid.UUID) -> uuid.UUID | None:
    """Give an unassigned open lead to the next advisor of its pool (routing.py); None when
    nobody is eligible (the lead waits in the staff queue). The pool's agents are locked, so
    concurrent decisions take turns."""
    lead = await store.lead(tx, lead_id, lock=True)
    if lead is None or lead["agent_id"] is not None or lead["closed_at"] is not None:
        return None
    now = ctx.clock.now()
    rows = await store.agents_of_city(tx, routing.place_key(lead["city"]))
    pool = routing.pool([routing_agent(r) for r in rows], lead["project_id"], lead["city"],
                        lead["locality"])
    decision = routing.decide(pool, now.astimezone(ctx.state.calendar.zone).date())
    for agent in pool:
        chosen = agent.agent_id == decision.agent_id
        await store.set_rotation(tx, agent.agent_id, decision.rotation.get(agent.agent_id),
                                 decision.in_rotation[agent.agent_id], now if chosen else None)
    if decision.agent_id is None:
        return None
    await store.set_agent(tx, lead_id, decision.agent_id, now)
    await store.add_history(tx, lead_id, "assigned", ROUTER.ref, now,
                            agent_id=decision.agent_id)
    user_id = next(r["user_id"] for r in rows if r["agent_id"] == decision.agent_id)
    await ctx.publish(tx, LeadAssigned(lead_id=lead_id, project_id=lead["project_id"],
                                       agent_id=decision.agent_id, agent_user_id=user_id),
                      actor=ROUTER.ref)
    return decision.agent_id


async def route_queue(ctx: Ctx) -> None:
    """The job: try again to route the open leads nobody has (an advisor may be back)."""
    for row in await store.unassigned(ctx.db, ctx.settings.sla_batch):
        async with ctx.db.transaction() as tx:
            await route_in(ctx, tx, row["id"])


# --------------------------------------------------------------------------------------------
# Leads
# --------------------------------------------------------------------------------------------


async def _agent_of(ctx: Ctx, actor: Actor) -> dict[str, Any] | None:
    return await store.agent_of_user(ctx.db, actor.user_id) if actor.user_id else None


def may_work(actor: Actor, lead: dict[str, Any]) -> bool:
    """Staff, or the advisor the lead is assigned to."""
    return actor.is_staff or (actor.user_id is not None
                              and lead.get("agent_user_id") == actor.user_id)


def _cursor(text: str | None) -> tuple[dt.datetime, uuid.UUID] | None:
    if text is None:
        return None
    try:
        return cursors.unpack_position(text)
    except ValueError:
        raise ValidationFailed([FieldError(
            "query", "cursor", "not a cursor from this list; start from the first page")]
        ) from None


def _stage_filter(ctx: Ctx, stage: str | None) -> str | None:
    if stage is not None and stage not in ctx.state.pipeline.keys:
        raise ValidationFailed([FieldError("query", "stage", "Not a stage of the pipeline.")])
    return stage


async def _page(ctx: Ctx, query: LeadQuery, agent_id: uuid.UUID | None) -> LeadPage:
    size = query.limit or ctx.settings.page_size
    rows = await store.leads_page(ctx.db, stage=_stage_filter(ctx, query.stage),
                                  agent_id=agent_id, after=_cursor(query.cursor),
                                  limit=size + 1)
    items = [lead_out(ctx, r) for r in rows[:size]]
    more = len(rows) > size
    return LeadPage(items=items, next_cursor=cursors.pack_position(
        items[-1].created_at, items[-1].id) if more else None)


async def list_leads(ctx: Ctx, actor: Actor, query: LeadQuery) -> LeadPage:
    """Every lead, newest first (staff).

    :raises Forbidden: the actor is not staff.
    """
    if not actor.is_staff:
        raise Forbidden("only staff list every lead")
    return await _page(ctx, query, None)


async def my_leads(ctx: Ctx, actor: Actor, query: LeadQuery) -> LeadPage:
    """The leads assigned to the signed-in advisor, newest first.

    :raises Forbidden: the caller is not an advisor the CRM knows.
    """
    agent = await _agent_of(ctx, actor)
    if agent is None:
        raise Forbidden("you are not an advisor")
    return await _page(ctx, query, agent["agent_id"])


async def get_lead(ctx: Ctx, actor: Actor, lead_id: uuid.UUID) -> LeadDetail:
    """A lead with its enquiries and history (staff, or its advisor).

    :raises NotFound: no such lead, or not one the actor may see.
    """
    row = await store.lead(ctx.db, lead_id)
    if row is None or not may_work(actor, row):
        raise NotFound(f"no lead {lead_id}")
    return LeadDetail(
        lead=lead_out(ctx, row),
        enquiries=[EnquiryOut(id=e["id"], name=e["name"], email=e["email"],
                              message=e["message"], preferred_time=e["preferred_time"],
                              source=e["source"], partner=e["partner"],
                              created_at=e["created_at"])
                   for e in await store.enquiries(ctx.db, lead_id)],
        history=[HistoryOut(kind=h["kind"], from_stage=h["from_stage"], to_stage=h["to_stage"],
                            agent_id=h["agent_id"], reason=h["reason"], actor=h["actor"],
                            at=h["at"]) for h in await store.history(ctx.db, lead_id)])


async def change_stage(ctx: Ctx, actor: Actor, lead_id: uuid.UUID, data: StageIn) -> LeadOut:
    """Move a lead to another stage (staff, or its advisor); the SLA clock follows
    (pipeline.py) and ``crm.stage_changed`` is published.

    :raises NotFound: no such lead, or not one the actor may work.
    :raises ValidationFailed: ``stage`` is not a stage; ``reason`` missing where needed.
    :raises Conflict: the lead is closed, or already in that stage.
    """
    async with ctx.db.transaction() as tx:
        return await change_stage_in(ctx, tx, actor, lead_id, data)


async def change_stage_in(ctx: Ctx, tx: Tx, actor: Actor, lead_id: uuid.UUID,
                          data: StageIn) -> LeadOut:
    """:func:`change_stage` in the caller's transaction."""
    flow = ctx.state.pipeline
    row = await store.lead(tx, lead_id, lock=True)
    if row is None or not may_work(actor, row):
        raise NotFound(f"no lead {lead_id}")
    to = data.stage.strip()
    errors = []
    if to not in flow.keys:
        errors.append(FieldError("body", "stage", "Not a stage of the pipeline."))
    if to in flow.reason and not (data.reason or "").strip():
        errors.append(FieldError("body", "reason", "Say why the lead is "
                                 f"{flow.label(to).lower()}."))
    if errors:
        raise ValidationFailed(errors)
    if row["stage"] in flow.terminal:
        raise Conflict(f"the lead is closed ({flow.label(row['stage'])})")
    if row["stage"] == to:
        raise Conflict(f"the lead is already {flow.label(to)}")
    now = ctx.clock.now()
    old = clock_of(row)
    new = pipeline.after_stage_change(old, flow, ctx.state.calendar, row["stage"], to, now)
    first_response = row["first_response_at"] or (now if row["stage"] == flow.first else None)
    closed = to in flow.terminal
    await store.set_stage(tx, lead_id, {
        "stage": to, "lost_reason": data.reason if to in flow.reason else None,
        "closed_at": now if closed else None, "first_response_at": first_response, "at": now,
        "sla_kind": new.kind, "sla_cycle": new.cycle, "sla_started_at": new.started_at,
        "sla_paused_at": new.paused_at, "sla_paused_seconds": new.paused_seconds,
        "new_cycle": new.cycle != old.cycle})
    await store.add_history(tx, lead_id, "stage", actor.ref, now, from_stage=row["stage"],
                            to_stage=to, reason=data.reason)
    await ctx.publish(tx, StageChanged(lead_id=lead_id, project_id=row["project_id"],
                                       agent_id=row["agent_id"], from_stage=row["stage"],
                                       to_stage=to, closed=closed), actor=actor.ref)
    updated = await store.lead(tx, lead_id)
    assert updated is not None
    return lead_out(ctx, updated)


async def reassign(ctx: Ctx, actor: Actor, lead_id: uuid.UUID, data: ReassignIn) -> LeadOut:
    """Give an open lead to another active advisor, or back to the queue (staff), with a
    reason kept in its history; publishes ``crm.lead_reassigned``.

    :raises Forbidden: the actor is not staff.
    :raises NotFound: no such lead.
    :raises ValidationFailed: ``agent_id`` is not an active advisor.
    :raises Conflict: the lead is closed, or already with that advisor.
    """
    if not actor.is_staff:
        raise Forbidden("only staff reassign leads")
    async with ctx.db.transaction() as tx:
        row = await store.lead(tx, lead_id, lock=True)
        if row is None:
            raise NotFound(f"no lead {lead_id}")
        target = None
        if data.agent_id is not None:
            target = await store.agent(tx, data.agent_id)
            if target is None or not target["active"]:
                raise ValidationFailed([FieldError("body", "agent_id",
                                                   "Choose an active advisor.")])
        if row["closed_at"] is not None:
            raise Conflict("the lead is closed")
        if row["agent_id"] == data.agent_id:
            raise Conflict("the lead is already there")
        now = ctx.clock.now()
        await store.set_agent(tx, lead_id, data.agent_id, now)
        await store.add_history(tx, lead_id, "reassigned" if target else "unassigned",
                                actor.ref, now, agent_id=data.agent_id,
                                reason=data.reason.strip())
        await ctx.publish(tx, LeadReassigned(
            lead_id=lead_id, project_id=row["project_id"], from_agent_id=row["agent_id"],
            to_agent_id=data.agent_id, to_agent_user_id=target["user_id"] if target else None),
            actor=actor.ref)
        updated = await store.lead(tx, lead_id)
    assert updated is not None
    return lead_out(ctx, updated)


# --------------------------------------------------------------------------------------------
# The SLA job
# --------------------------------------------------------------------------------------------


async def check_slas(ctx: Ctx) -> None:
    """Warn once at ``warn_percent`` of a clock's target and escalate once at its breach.

    Each mark is an ``UPDATE ... WHERE <not yet> RETURNING`` in the transaction that adds the
    history row and publishes the event, so a second run (or a concurrent one) does nothing.
    The targets are read from the settings at every run; the paused time is the lead's own.
    """
    actor = Actor.system("sla")
    settings, calendar = ctx.settings, ctx.state.calendar
    after = None
    while True:
        rows = await store.running_clocks(ctx.db, after, settings.sla_batch)
        if not rows:
            return
        after = (rows[-1]["sla_started_at"], rows[-1]["id"])
        now = ctx.clock.now()
        for row in rows:
            clock = clock_of(row)
            assert clock.kind is not None
            allowed = pipeline.target(clock.kind, settings)
            ran = pipeline.elapsed(clock, calendar, now)
            cls: type[SlaBreached] | type[SlaWarning]
            if ran >= allowed:
                kind, cls, mark = "sla_breached", SlaBreached, store.mark_breached
            elif ran * 100 >= allowed * settings.warn_percent and row["sla_warned_at"] is None:
                kind, cls, mark = "sla_warning", SlaWarning, store.mark_warned
            else:
                continue
            async with ctx.db.transaction() as tx:
                if not await mark(tx, row["id"], clock.cycle, now):
                    continue
                await store.add_history(tx, row["id"], kind, actor.ref, now,
                                        agent_id=row["agent_id"], reason=clock.kind)
                await ctx.publish(tx, cls(
                    lead_id=row["id"], agent_id=row["agent_id"],
                    agent_user_id=row["agent_user_id"], kind=clock.kind, cycle=clock.cycle,
                    due_at=pipeline.due_at(clock, calendar, allowed)), actor=actor.ref)
        if len(rows) < settings.sla_batch:
            return


# --------------------------------------------------------------------------------------------
# The routing copy of the agents (fed by the agents plugin's events)
# --------------------------------------------------------------------------------------------


async def sync_agent_in(ctx: Ctx, tx: Tx, actor: Actor, agent_id: uuid.UUID,
                        fields: dict[str, Any], sequence: int = 0) -> bool:
    """Create or change the CRM's copy of an agent with ``fields`` (keys of
    ``store.AGENT_FIELDS``; absent keys keep their value). An event older than the last one
    applied (``sequence``) changes nothing; 0 always applies. True when applied."""
    if not actor.is_staff:
        raise Forbidden("only the system changes the routing copy of agents")
    fields = dict(fields)
    if "territories" in fields:
        fields["territories"] = [{"city": routing.place_key(c), "locality": routing.place_key(loc)}
                                 for c, loc in fields["territories"]]
    if "holidays" in fields:
        fields["holidays"] = [{"starts_on": a.isoformat(), "ends_on": b.isoformat()}
                              for a, b in fields["holidays"]]
    return await store.upsert_agent(tx, agent_id, fields, sequence, ctx.clock.now())


async def set_listing_in(ctx: Ctx, tx: Tx, actor: Actor, agent_id: uuid.UUID,
                         project_id: uuid.UUID, listed: bool) -> None:
    """Add a project to an agent's listings, or remove it."""
    if not actor.is_staff:
        raise Forbidden("only the system changes the routing copy of agents")
    await store.set_listing(tx, agent_id, project_id, listed, ctx.clock.now())
