"""The operations of site visits: free slots, book, reschedule (the same visit id), cancel,
read, the advisor's list, feedback, and the reminder and no-show jobs.

Every public function is ``verb(ctx, actor, <ids...>, <input>)`` and opens its own
transaction. Who may do what: staff, the lead's advisor and the lead's buyer (a user who sent
one of its enquiries) see, book, move and cancel its visits; staff and the advisor record the
outcome. Anyone else gets a 404, as for the lead itself.

Capacity: a booking takes a transaction-level advisory lock of its (project, slot) before it
counts the slot's scheduled visits, so concurrent bookings of a slot take turns and never
exceed ``visit_capacity``. The lead's row is locked first (one scheduled visit per lead; a
unique index is the backstop), always before the slot, so two bookings never wait on each
other in opposite orders.

The lead's stage follows through the pipeline service (``change_stage_in``: history, event,
SLA pause): booking moves it to ``visit_scheduled_stage``; an attended visit to
``visited_stage``; a cancelled or missed visit back to the stage it had when the visit was
booked, when it is still waiting on that visit.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from propmubi import cursors
from propmubi.actors import Actor
from propmubi.db import Tx
from propmubi.errors import Conflict, FieldError, Forbidden, NotFound, ValidationFailed
from propmubi.ids import uuid7
from propmubi_plugins.crm import service as leads
from propmubi_plugins.crm import store as lead_store
from propmubi_plugins.crm.events import (
    VisitCancelled,
    VisitCompleted,
    VisitNoShow,
    VisitReminderDue,
    VisitRescheduled,
    VisitScheduled,
)
from propmubi_plugins.crm.models import StageIn
from propmubi_plugins.crm.state import Ctx
from propmubi_plugins.crm.visits import slots, store
from propmubi_plugins.crm.visits.models import (
    CancelIn,
    FeedbackIn,
    MyVisitsQuery,
    SlotOut,
    VisitDetail,
    VisitHistoryOut,
    VisitIn,
    VisitOut,
    VisitPage,
    slot_window,
)

#: Who moves a lead's stage for a buyer (who may not move stages), and who runs the jobs.
VISITS = Actor.system("crm-visits")
#: Reminders before a visit, and the least time left for each to be worth sending.
REMINDERS = (("24h", dt.timedelta(hours=24), dt.timedelta(hours=1)),
             ("1h", dt.timedelta(hours=1), dt.timedelta(0)))


class SlotFull(Conflict):
    """Every place of the slot is booked."""

    slug, title = "slot-full", "The visit slot is full"


def visit_out(row: dict[str, Any], *, feedback: bool = True) -> VisitOut:
    """A visit row as the API shows it; without the advisor's ``rating`` and ``notes``
    (``feedback=False``) for the buyer."""
    return VisitOut(
        id=row["id"], lead_id=row["lead_id"], project_id=row["project_id"],
        status=row["status"], starts_at=row["starts_at"], ends_at=row["ends_at"],
        reschedules=row["reschedules"], attended=row["attended"],
        rating=row["rating"] if feedback else None, notes=row["notes"] if feedback else None,
        cancel_reason=row["cancel_reason"], created_at=row["created_at"],
        updated_at=row["updated_at"], closed_at=row["closed_at"])


def _length(ctx: Ctx) -> dt.timedelta:
    return dt.timedelta(minutes=ctx.settings.visit_slot_minutes)


def _bad(field: str, message: str, where: str = "body") -> ValidationFailed:
    return ValidationFailed([FieldError(where, field, message)])


# --------------------------------------------------------------------------------------------
# Slots
# --------------------------------------------------------------------------------------------


async def free_slots(ctx: Ctx, actor: Actor | None, project_id: uuid.UUID, query: Any
                     ) -> list[SlotOut]:
    """The free slots of a project's site in ``[from, to)`` (default: from now to the end of
    the booking horizon), with the places left; only slots that may still be booked (after
    the minimum notice, within the horizon).

    :raises NotFound: no such published project.
    :raises ValidationFailed: ``to`` not after ``from``, or the range longer than the horizon.
    """
    settings, now = ctx.settings, ctx.clock.now()
    horizon = dt.timedelta(days=settings.visit_horizon_days)
    lo, hi = slot_window(query)
    lo = lo or now
    hi = hi or max(lo, now) + horizon
    if hi <= lo:
        raise _bad("to", "Give a time after from.", "query")
    if hi - lo > horizon:
        raise _bad("to", f"Ask for at most {settings.visit_horizon_days} days of slots.",
                   "query")
    if await leads.published_project(ctx, project_id) is None:
        raise NotFound(f"no project {project_id}")
    lo = max(lo, now + dt.timedelta(minutes=settings.visit_min_notice_minutes))
    hi = min(hi, now + horizon)
    if hi <= lo:
        return []
    free = slots.slots_between(ctx.state.visit_calendar, _length(ctx), lo, hi)
    taken = await store.booked_between(ctx.db, project_id, lo, hi)
    capacity = settings.visit_capacity
    return [SlotOut(starts_at=start, ends_at=end, remaining=capacity - taken.get(start, 0))
            for start, end in free if taken.get(start, 0) < capacity]


def _slot(ctx: Ctx, at: dt.datetime, now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """The slot starting at ``at``, if it may be booked now (422 naming ``starts_at``)."""
    settings = ctx.settings
    slot = slots.slot_at(ctx.state.visit_calendar, _length(ctx), at)
    if slot is None:
        raise _bad("starts_at", "That is not the start of a visit slot: choose one of the "
                   "project's visit slots.")
    notice = settings.visit_min_notice_minutes
    if at < now + dt.timedelta(minutes=notice):
        raise _bad("starts_at", "Too soon: a visit is booked at least "
                   f"{notice // 60} h {notice % 60:02d} min ahead.")
    if at >= now + dt.timedelta(days=settings.visit_horizon_days):
        raise _bad("starts_at", f"Too far ahead: book within "
                   f"{settings.visit_horizon_days} days.")
    return slot


async def _take_place(tx: Tx, ctx: Ctx, project_id: uuid.UUID, starts_at: dt.datetime
                      ) -> None:
    """Lock the slot and check a place is left (409 ``slot-full``)."""
    await store.lock_slot(tx, project_id, starts_at)
    if await store.booked(tx, project_id, starts_at) >= ctx.settings.visit_capacity:
        raise SlotFull("every place of that slot is booked; choose another slot")


def _reminders(starts_at: dt.datetime, now: dt.datetime) -> dict[str, dt.datetime | None]:
    """When each reminder falls due: none that would already be late now (a visit booked
    less than 24 h ahead gets only the 1 h reminder)."""
    due = {}
    for which, before, _ in REMINDERS:
        at = starts_at - before
        due[f"remind_{which}_at"] = at if at > now else None
    return due


# --------------------------------------------------------------------------------------------
# Who may do what
# --------------------------------------------------------------------------------------------


async def _may_see(q: Any, actor: Actor, lead: dict[str, Any]) -> bool:
    """Staff, the lead's advisor, or its buyer."""
    if leads.may_work(actor, lead):
        return True
    return actor.user_id is not None and await store.is_buyer(q, lead["id"], actor.user_id)


async def _lead_for(tx: Tx, actor: Actor, lead_id: uuid.UUID) -> dict[str, Any]:
    lead = await lead_store.lead(tx, lead_id, lock=True)
    if lead is None or not await _may_see(tx, actor, lead):
        raise NotFound(f"no lead {lead_id}")
    return lead


async def _visit_for(tx: Tx, actor: Actor, visit_id: uuid.UUID
                     ) -> tuple[dict[str, Any], dict[str, Any]]:
    """The lead (locked) and the scheduled visit (locked), in that order.

    :raises NotFound: no such visit, or not one the actor may see.
    :raises Conflict: the visit is not scheduled any more.
    """
    found = await store.visit(tx, visit_id)
    if found is None:
        raise NotFound(f"no visit {visit_id}")
    lead = await lead_store.lead(tx, found["lead_id"], lock=True)
    if lead is None or not await _may_see(tx, actor, lead):
        raise NotFound(f"no visit {visit_id}")
    visit = await store.visit(tx, visit_id, lock=True)
    assert visit is not None
    if visit["status"] != "scheduled":
        raise Conflict(f"the visit is {visit['status'].replace('_', ' ')}, not scheduled")
    return lead, visit


async def _move_lead(ctx: Ctx, tx: Tx, actor: Actor, lead: dict[str, Any], to: str | None,
                     reason: str | None = None) -> None:
    """Move the lead through the pipeline service, when it is open and elsewhere."""
    current = await lead_store.lead(tx, lead["id"])
    if not to or current is None or current["closed_at"] is not None or current["stage"] == to:
        return
    mover = actor if leads.may_work(actor, current) else VISITS
    await leads.change_stage_in(ctx, tx, mover, lead["id"], StageIn(stage=to, reason=reason))


async def _back(ctx: Ctx, tx: Tx, actor: Actor, visit: dict[str, Any], why: str) -> None:
    """After a cancelled or missed visit: back to the stage before it, if the lead still
    waits in the visit stage."""
    current = await lead_store.lead(tx, visit["lead_id"])
    waiting = ctx.settings.visit_scheduled_stage
    if current is not None and waiting and current["stage"] == waiting:
        await _move_lead(ctx, tx, actor, current, visit["stage_before"], why)


# --------------------------------------------------------------------------------------------
# Book, move, cancel
# --------------------------------------------------------------------------------------------


async def book(ctx: Ctx, actor: Actor, lead_id: uuid.UUID, data: VisitIn) -> VisitOut:
    """Book a site visit for a lead in a free slot of its project (staff, the advisor, the
    buyer); the lead moves to ``visit_scheduled_stage``; ``crm.visit_scheduled``.

    :raises NotFound: no such lead, or not one the actor may see.
    :raises ValidationFailed: ``starts_at`` is no slot start, too soon or too far ahead.
    :raises Conflict: the lead is closed or already has a scheduled visit; ``slot-full``.
    """
    async with ctx.db.transaction() as tx:
        lead = await _lead_for(tx, actor, lead_id)
        now = ctx.clock.now()
        starts_at, ends_at = _slot(ctx, data.starts_at, now)
        if lead["closed_at"] is not None:
            raise Conflict("the lead is closed")
        if await store.scheduled_of_lead(tx, lead_id) is not None:
            raise Conflict("the lead already has a scheduled visit: reschedule or cancel it")
        await _take_place(tx, ctx, lead["project_id"], starts_at)
        visit_id = uuid7()
        buyer = await store.buyer_of(tx, lead_id)
        waiting = ctx.settings.visit_scheduled_stage
        await store.insert_visit(tx, {
            "id": visit_id, "lead_id": lead_id, "project_id": lead["project_id"],
            "buyer_user_id": buyer, "starts_at": starts_at, "ends_at": ends_at,
            "stage_before": lead["stage"] if lead["stage"] != waiting else None,
            "booked_by": actor.ref, "at": now, **_reminders(starts_at, now)})
        await store.add_history(tx, visit_id, "scheduled", actor.ref, now, starts_at=starts_at)
        await _move_lead(ctx, tx, actor, lead, waiting)
        await ctx.publish(tx, VisitScheduled(
            visit_id=visit_id, lead_id=lead_id, project_id=lead["project_id"],
            buyer_user_id=buyer, advisor_user_id=lead["agent_user_id"], starts_at=starts_at,
            ends_at=ends_at), actor=actor.ref)
        row = await store.visit(tx, visit_id)
    assert row is not None
    return visit_out(row)


async def reschedule(ctx: Ctx, actor: Actor, visit_id: uuid.UUID, data: VisitIn) -> VisitOut:
    """Move a scheduled visit to another free slot, keeping its id; the old time goes to its
    history and the reminders are armed again for the new time; ``crm.visit_rescheduled``.

    :raises NotFound: no such visit, or not one the actor may see.
    :raises ValidationFailed: ``starts_at`` is no slot start, too soon, too far, or the same.
    :raises Conflict: the visit is not scheduled any more; ``slot-full``.
    """
    async with ctx.db.transaction() as tx:
        lead, visit = await _visit_for(tx, actor, visit_id)
        now = ctx.clock.now()
        starts_at, ends_at = _slot(ctx, data.starts_at, now)
        if starts_at == visit["starts_at"]:
            raise _bad("starts_at", "The visit is already at that time.")
        await _take_place(tx, ctx, visit["project_id"], starts_at)
        await store.move_visit(tx, visit_id, {"starts_at": starts_at, "ends_at": ends_at,
                                              "at": now, **_reminders(starts_at, now)})
        await store.add_history(tx, visit_id, "rescheduled", actor.ref, now,
                                from_starts_at=visit["starts_at"], starts_at=starts_at)
        await ctx.publish(tx, VisitRescheduled(
            visit_id=visit_id, lead_id=visit["lead_id"], project_id=visit["project_id"],
            buyer_user_id=visit["buyer_user_id"], advisor_user_id=lead["agent_user_id"],
            from_starts_at=visit["starts_at"], starts_at=starts_at, ends_at=ends_at),
            actor=actor.ref)
        row = await store.visit(tx, visit_id)
    assert row is not None
    return visit_out(row)


async def cancel(ctx: Ctx, actor: Actor, visit_id: uuid.UUID, data: CancelIn) -> VisitOut:
    """Cancel a scheduled visit with a reason (kept in its history, not in the event); the
    lead goes back to the stage it had; ``crm.visit_cancelled``.

    :raises NotFound: no such visit, or not one the actor may see.
    :raises Conflict: the visit is not scheduled any more.
    """
    async with ctx.db.transaction() as tx:
        lead, visit = await _visit_for(tx, actor, visit_id)
        now = ctx.clock.now()
        reason = data.reason.strip()
        await store.close_visit(tx, visit_id, "cancelled", now, cancel_reason=reason)
        await store.add_history(tx, visit_id, "cancelled", actor.ref, now, reason=reason,
                                starts_at=visit["starts_at"])
        await _back(ctx, tx, actor, visit, "Visit cancelled")
        await ctx.publish(tx, VisitCancelled(
            visit_id=visit_id, lead_id=visit["lead_id"], project_id=visit["project_id"],
            buyer_user_id=visit["buyer_user_id"], advisor_user_id=lead["agent_user_id"],
            starts_at=visit["starts_at"]), actor=actor.ref)
        row = await store.visit(tx, visit_id)
    assert row is not None
    return visit_out(row)


async def feedback(ctx: Ctx, actor: Actor, visit_id: uuid.UUID, data: FeedbackIn) -> VisitOut:
    """The advisor's outcome of a visit that has started (staff may record it too):
    attended, the visit is ``completed`` and the lead moves to ``visited_stage``
    (``crm.visit_completed``); not attended, it is a ``no_show`` and the lead goes back to
    its stage before the visit (``crm.visit_no_show``, ``marked_by`` "advisor").

    :raises NotFound: no such visit, or not one the actor may see.
    :raises Forbidden: the buyer (only the advisor and staff record outcomes).
    :raises ValidationFailed: a rating for a visit that did not happen.
    :raises Conflict: the visit is not scheduled any more, or has not started yet.
    """
    if not data.attended and data.rating is not None:
        raise _bad("rating", "Rate only a visit that happened.")
    async with ctx.db.transaction() as tx:
        lead, visit = await _visit_for(tx, actor, visit_id)
        if not leads.may_work(actor, lead):
            raise Forbidden("only the advisor and staff record a visit's outcome")
        now = ctx.clock.now()
        if now < visit["starts_at"]:
            raise Conflict("the visit has not started yet")
        status = "completed" if data.attended else "no_show"
        await store.close_visit(tx, visit_id, status, now, attended=data.attended,
                                rating=data.rating, notes=data.notes)
        await store.add_history(tx, visit_id, status, actor.ref, now,
                                starts_at=visit["starts_at"])
        common = {"visit_id": visit_id, "lead_id": visit["lead_id"],
                  "project_id": visit["project_id"], "buyer_user_id": visit["buyer_user_id"],
                  "advisor_user_id": lead["agent_user_id"], "starts_at": visit["starts_at"]}
        if data.attended:
            await _move_lead(ctx, tx, actor, lead, ctx.settings.visited_stage)
            await ctx.publish(tx, VisitCompleted(**common, rating=data.rating),
                              actor=actor.ref)
        else:
            await _back(ctx, tx, actor, visit, "The buyer did not come")
            await ctx.publish(tx, VisitNoShow(**common, marked_by="advisor"), actor=actor.ref)
        row = await store.visit(tx, visit_id)
    assert row is not None
    return visit_out(row)


# --------------------------------------------------------------------------------------------
# Reads
# --------------------------------------------------------------------------------------------


async def get_visit(ctx: Ctx, actor: Actor, visit_id: uuid.UUID) -> VisitDetail:
    """A visit with its history (staff, the lead's advisor, its buyer).

    :raises NotFound: no such visit, or not one the actor may see.
    """
    row = await store.visit(ctx.db, visit_id)
    lead = await lead_store.lead(ctx.db, row["lead_id"]) if row else None
    if row is None or lead is None or not await _may_see(ctx.db, actor, lead):
        raise NotFound(f"no visit {visit_id}")
    return VisitDetail(visit=visit_out(row, feedback=leads.may_work(actor, lead)), history=[
        VisitHistoryOut(kind=h["kind"], from_starts_at=h["from_starts_at"],
                        starts_at=h["starts_at"], actor=h["actor"], at=h["at"])
        for h in await store.history(ctx.db, visit_id)])


async def lead_visits(ctx: Ctx, actor: Actor, lead_id: uuid.UUID) -> list[dict[str, Any]]:
    """A lead's visit rows, latest first (the console's lead page).

    :raises NotFound: no such lead, or not one the actor may see.
    """
    lead = await lead_store.lead(ctx.db, lead_id)
    if lead is None or not await _may_see(ctx.db, actor, lead):
        raise NotFound(f"no lead {lead_id}")
    return await store.of_lead(ctx.db, lead_id)


async def upcoming(ctx: Ctx, actor: Actor, limit: int) -> list[dict[str, Any]]:
    """Scheduled visits not over yet, soonest first (staff).

    :raises Forbidden: the actor is not staff.
    """
    if not actor.is_staff:
        raise Forbidden("only staff list every visit")
    return await store.upcoming(ctx.db, ctx.clock.now(), limit)


async def my_visits(ctx: Ctx, actor: Actor, query: MyVisitsQuery) -> VisitPage:
    """The visits of the signed-in advisor's leads in one status (default ``scheduled``),
    soonest first.

    :raises Forbidden: the caller is not an advisor the CRM knows.
    :raises ValidationFailed: a ``cursor`` that is not one of this list's.
    """
    agent = await lead_store.agent_of_user(ctx.db, actor.user_id) if actor.user_id else None
    if agent is None:
        raise Forbidden("you are not an advisor")
    after = _after(query)
    size = query.limit or ctx.settings.page_size
    rows = await store.of_agent(ctx.db, agent["agent_id"], query.status, after, size + 1)
    return _visit_page([visit_out(r) for r in rows], size)


async def booked_visits(ctx: Ctx, actor: Actor, query: MyVisitsQuery) -> VisitPage:
    """The visits the signed-in buyer booked (or that were booked on their enquiry) in one
    status (default ``scheduled``), soonest first, without the advisor's feedback.

    :raises Forbidden: the caller is not a signed-in user.
    :raises ValidationFailed: a ``cursor`` that is not one of this list's.
    """
    if actor.user_id is None:
        raise Forbidden("only a signed-in buyer has booked visits")
    size = query.limit or ctx.settings.page_size
    rows = await store.of_buyer(ctx.db, actor.user_id, query.status, _after(query), size + 1)
    return _visit_page([visit_out(r, feedback=False) for r in rows], size)


def _after(query: MyVisitsQuery) -> tuple[dt.datetime, uuid.UUID] | None:
    if query.cursor is None:
        return None
    try:
        return cursors.unpack_position(query.cursor)
    except ValueError:
        raise _bad("cursor", "not a cursor from this list; start from the first page",
                   "query") from None


def _visit_page(items: list[VisitOut], size: int) -> VisitPage:
    """The first ``size`` of ``items`` (one more was fetched: there is a next page)."""
    more = len(items) > size
    items = items[:size]
    return VisitPage(items=items, next_cursor=cursors.pack_position(
        items[-1].starts_at, items[-1].id) if more else None)


# --------------------------------------------------------------------------------------------
# The jobs
# --------------------------------------------------------------------------------------------


async def send_reminders(ctx: Ctx) -> None:
    """The job (every minute): ``crm.visit_reminder_due`` once per visit time and reminder.

    Each is an ``UPDATE ... WHERE reminded_<which>_at IS NULL ... RETURNING`` in the
    transaction that publishes the event, so repeated or concurrent runs send it once. A
    reminder whose moment passed while too little time is left (the 24 h one within the last
    hour, the 1 h one after the start) is never sent late.
    """
    batch = ctx.settings.sla_batch
    for which, _, not_after in REMINDERS:
        while True:
            now = ctx.clock.now()
            rows = await store.reminders_due(ctx.db, which, now, not_after, batch)
            for row in rows:
                async with ctx.db.transaction() as tx:
                    visit = await store.mark_reminded(tx, row["id"], which, now, not_after)
                    if visit is None:
                        continue
                    lead = await lead_store.lead(tx, visit["lead_id"])
                    await store.add_history(tx, visit["id"], f"reminded_{which}",
                                            VISITS.ref, now, starts_at=visit["starts_at"])
                    await ctx.publish(tx, VisitReminderDue(
                        visit_id=visit["id"], lead_id=visit["lead_id"],
                        project_id=visit["project_id"],
                        buyer_user_id=visit["buyer_user_id"],
                        advisor_user_id=lead["agent_user_id"] if lead else None,
                        starts_at=visit["starts_at"], which=which), actor=VISITS.ref)
            if len(rows) < batch:
                break


async def mark_no_shows(ctx: Ctx) -> None:
    """The job: a visit still scheduled ``visit_no_show_grace_minutes`` after its end is a
    no-show (``crm.visit_no_show``, ``marked_by`` "grace"), once; the lead goes back to its
    stage before the visit."""
    grace = dt.timedelta(minutes=ctx.settings.visit_no_show_grace_minutes)
    while True:
        now = ctx.clock.now()
        rows = await store.overdue(ctx.db, now - grace, ctx.settings.sla_batch)
        for row in rows:
            async with ctx.db.transaction() as tx:
                visit = await store.visit(tx, row["id"])
                if visit is None:
                    continue
                lead = await lead_store.lead(tx, visit["lead_id"], lock=True)
                if not await store.mark_no_show(tx, row["id"], now - grace, now):
                    continue
                await store.add_history(tx, row["id"], "no_show", VISITS.ref, now,
                                        starts_at=visit["starts_at"])
                await _back(ctx, tx, VISITS, visit, "The buyer did not come")
                await ctx.publish(tx, VisitNoShow(
                    visit_id=visit["id"], lead_id=visit["lead_id"],
                    project_id=visit["project_id"], buyer_user_id=visit["buyer_user_id"],
                    advisor_user_id=lead["agent_user_id"] if lead else None,
                    starts_at=visit["starts_at"], marked_by="grace"), actor=VISITS.ref)
        if len(rows) < ctx.settings.sla_batch:
            return
