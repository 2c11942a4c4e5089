"""The agents rules: onboarding, registrations, status, territories, capacity, holidays and
listings, with the one service signature (``ctx, actor, ids..., input``).

What makes an agent **active** (``derive_status``): their agent KYC is verified (as the auth
plugin's ``auth.kyc_status_changed`` events report it), a verified RERA registration is in
force today (``valid_from <= today <= valid_until``, UTC dates) and staff have not suspended
them. Otherwise the status is ``suspended`` (by staff; it wins over everything), ``lapsed``
(the verified registration ended) or ``pending``. The stored status is recomputed, under the
agent's row lock, whenever one of its inputs changes (a KYC event, a staff decision, the
daily job), so each change is one history row and at most one event: ``agent_activated``
when entering active, ``agent_suspended`` when leaving it. Only active agents receive leads
and may request listings; an agent who stops being active keeps their listings, inactive.

Who may do what: an agent acts on their own profile (``/agents/me``); staff (console staff,
users holding the staff or admin role, the system) on any; a project's builder (the user
managing its builder) or staff decide on its listings.
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
from propmubi_plugins.agents import store
from propmubi_plugins.agents.events import (
    AgentActivated,
    AgentSuspended,
    AgentUpdated,
    Holiday,
    ListingChanged,
    Place,
    RegistrationExpiring,
    Routing,
)
from propmubi_plugins.agents.models import (
    AgentIn,
    AgentOut,
    AgentPage,
    AgentQuery,
    AgentSummary,
    AgentUpdate,
    HolidayIn,
    HolidayOut,
    ListingIn,
    ListingOut,
    ListingPage,
    ListingQuery,
    ReasonIn,
    RegistrationIn,
    RegistrationOut,
    StaffAgentIn,
    TerritoryIn,
    TerritoryOut,
    fold,
)
from propmubi_plugins.agents.state import Ctx
from propmubi_plugins.auth import api as auth
from propmubi_plugins.catalog import api as catalog

#: The KYC role whose status gates agents.
KYC_ROLE = "agent"
#: Agents one run of a daily job handles per transaction, and at most in all.
JOB_BATCH = 100
JOB_MAX_BATCHES = 100


class AgentNotActive(Conflict):
    """Only active agents may do this."""

    slug, title = "agent-not-active", "The agent is not active"


def today_of(ctx: Ctx) -> dt.date:
    """Today's date (UTC) by the process clock."""
    return ctx.clock.now().date()


def derive_status(*, suspended: bool, kyc: str | None, registration: dict[str, Any] | None,
                  today: dt.date) -> str:
    """An agent's status from its inputs (see the module docstring)."""
    if suspended:
        return "suspended"
    if registration is not None and registration["valid_until"] < today:
        return "lapsed"
    if (kyc == "verified" and registration is not None
            and registration["valid_from"] <= today):
        return "active"
    return "pending"


def _why(old: str | None, new: str, kyc: str | None) -> str:
    """The cause of a status change, as history and ``agent_suspended`` record it."""
    if new == "suspended":
        return "staff"
    if new == "lapsed":
        return "registration_lapsed"
    if new == "active":
        return "activated"
    if old == "suspended":
        return "reinstated"
    return "kyc" if kyc != "verified" else "registration"


# -- reading ---------------------------------------------------------------------------------

def _registration_out(row: dict[str, Any] | None) -> RegistrationOut | None:
    if row is None:
        return None
    return RegistrationOut(id=row["id"], number=row["number"], state=row["state"],
                           valid_from=row["valid_from"], valid_until=row["valid_until"],
                           status=row["status"], reason=row["reason"],
                           submitted_at=row["submitted_at"], decided_at=row["decided_at"])


def _listing_out(row: dict[str, Any], agent_status: str) -> ListingOut:
    return ListingOut(id=row["id"], agent_id=row["agent_id"], project_id=row["project_id"],
                      status=row["status"],
                      active=row["status"] == "accepted" and agent_status == "active",
                      reason=row["reason"], requested_at=row["requested_at"],
                      decided_at=row["decided_at"])


def _territory_out(row: dict[str, Any]) -> TerritoryOut:
    return TerritoryOut(city=row["city"], locality=row["locality"] or None)


def on_holiday(holidays: list[dict[str, Any]], day: dt.date) -> bool:
    """Whether ``day`` falls in one of the holidays."""
    return any(h["starts_on"] <= day <= h["ends_on"] for h in holidays)


async def agent_out(q: Any, row: dict[str, Any], today: dt.date) -> AgentOut:
    """The whole agent as the API shows it."""
    registrations = await store.registrations_of(q, row["id"])
    verified = next((r for r in registrations if r["status"] == "verified"), None)
    waiting = next((r for r in registrations if r["status"] == "submitted"), None)
    if waiting is None and registrations and registrations[0]["status"] == "rejected":
        waiting = registrations[0]  # the latest submission was rejected: show why
    holidays = await store.holidays_of(q, [row["id"]], today)
    return AgentOut(
        id=row["id"], user_id=row["user_id"], display_name=row["display_name"],
        phone=row["phone"], email=row["email"], languages=list(row["languages"]),
        status=row["status"], kyc_status=await store.kyc_status(q, row["user_id"])
        or "not_started", suspended_note=row["suspended_note"], capacity=row["capacity"],
        on_holiday=on_holiday(holidays, today), registration=_registration_out(verified),
        pending_registration=_registration_out(waiting),
        territories=[_territory_out(t) for t in await store.territories_of(q, [row["id"]])],
        holidays=[HolidayOut(id=h["id"], starts_on=h["starts_on"], ends_on=h["ends_on"],
                             note=h["note"]) for h in holidays],
        listings=[_listing_out(r, row["status"]) for r in await store.listings_of(q, row["id"])],
        created_at=row["created_at"], updated_at=row["updated_at"])


async def routing_of(q: Any, row: dict[str, Any], today: dt.date) -> Routing:
    """The routing picture events carry."""
    territories = await store.territories_of(q, [row["id"]])
    holidays = await store.holidays_of(q, [row["id"]], today)
    return Routing(
        status=row["status"], active=row["status"] == "active", capacity=row["capacity"],
        territories=[Place(city=t["city"], locality=t["locality"] or None,
                           city_key=t["city_key"], locality_key=t["locality_key"] or None)
                     for t in territories],
        listed_project_ids=await store.accepted_project_ids(q, row["id"]),
        holidays=[Holiday(starts_on=h["starts_on"], ends_on=h["ends_on"]) for h in holidays],
        languages=list(row["languages"]))


def _may_manage(actor: Actor, row: dict[str, Any]) -> bool:
    return actor.is_staff or actor.user_id == row["user_id"]


async def _agent_for(q: Any, actor: Actor, agent_id: uuid.UUID, *, lock: bool = False
                     ) -> dict[str, Any]:
    """The agent, if the actor may manage it (else 404: another's profile is not shown)."""
    row = await store.agent(q, agent_id, lock=lock)
    if row is None or not _may_manage(actor, row):
        raise NotFound(f"no agent {agent_id}")
    return row


async def my_agent_id(ctx: Ctx, actor: Actor) -> uuid.UUID:
    """The id of the calling user's agent profile; 404 when they have none."""
    user_id = actor.user_id
    row = await store.agent_of_user(ctx.db, user_id) if user_id is not None else None
    if row is None:
        raise NotFound("you have no agent profile yet: POST /api/v1/agents/me")
    return uuid.UUID(str(row["id"]))


async def get_agent(ctx: Ctx, actor: Actor, agent_id: uuid.UUID) -> AgentOut:
    """One agent (their own, or any for staff)."""
    return await agent_out(ctx.db, await _agent_for(ctx.db, actor, agent_id), today_of(ctx))


async def list_agents(ctx: Ctx, actor: Actor, query: AgentQuery) -> AgentPage:
    """Agents, newest first, optionally of one status (staff).

    :raises ValidationFailed: the cursor is not one this list handed out.
    """
    if not actor.is_staff:
        raise Forbidden("only staff list agents")
    after = _position(query.cursor)
    size = query.limit or ctx.settings.page_size
    rows = await store.list_agents(ctx.db, query.status, after, size + 1)
    items = [AgentSummary(id=r["id"], user_id=r["user_id"], display_name=r["display_name"],
                          status=r["status"], capacity=r["capacity"],
                          created_at=r["created_at"]) for r in rows[:size]]
    more = len(rows) > size
    return AgentPage(items=items, next_cursor=cursors.pack_position(
        items[-1].created_at, items[-1].id) if more else None)


def _position(cursor: str | None) -> tuple[dt.datetime, uuid.UUID] | None:
    if cursor is None:
        return None
    try:
        return cursors.unpack_position(cursor)
    except ValueError:
        raise ValidationFailed([FieldError("query", "cursor", "not a cursor of this list")]
                               ) from None


# -- status ----------------------------------------------------------------------------------

async def refresh_in(ctx: Ctx, tx: Tx, actor: Actor, row: dict[str, Any], *,
                     note: str | None = None, cause: str | None = None) -> str:
    """Recompute the status of an agent whose row ``tx`` holds locked; store it, record the
    change in the history, and publish ``agent_activated`` / ``agent_suspended`` when the
    agent enters or leaves active. The new status (unchanged: nothing is written)."""
    kyc = await store.kyc_status(tx, row["user_id"])
    registration = await store.registration_in_status(tx, row["id"], "verified")
    today = today_of(ctx)
    old = row["status"]
    new = derive_status(suspended=row["suspended_at"] is not None, kyc=kyc,
                        registration=registration, today=today)
    if new == old:
        return old
    now = ctx.clock.now()
    reason = cause or _why(old, new, kyc)
    await store.set_status(tx, row["id"], new, now)
    await store.add_history(tx, uuid7(), row["id"], old, new, reason, note, actor.ref, now)
    if new == "active":
        routing = await routing_of(tx, {**row, "status": new}, today)
        await ctx.publish(tx, AgentActivated(agent_id=row["id"], user_id=row["user_id"],
                                             routing=routing), actor=actor.ref)
    elif old == "active":
        await ctx.publish(tx, AgentSuspended(agent_id=row["id"], user_id=row["user_id"],
                                             reason=reason, status=new), actor=actor.ref)
    return new


async def record_kyc_in(ctx: Ctx, tx: Tx, user_id: uuid.UUID, status: str, sequence: int
                        ) -> bool:
    """Keep a user's agent KYC status (``auth.kyc_status_changed``; an older event changes
    nothing) and recompute their agent's status; False when the event was stale."""
    if not await store.record_kyc(tx, user_id, status, sequence):
        return False
    row = await store.agent_of_user(tx, user_id, lock=True)
    if row is not None:
        await refresh_in(ctx, tx, Actor.system("kyc"), row)
    return True


async def erase_user_in(ctx: Ctx, tx: Tx, user_id: uuid.UUID) -> None:
    """The user erased their account: forget their agent's personal data and suspend it
    (it stays for the listings' and history's sake)."""
    row = await store.agent_of_user(tx, user_id, lock=True)
    if row is None or row["erased_at"] is not None:
        return
    now = ctx.clock.now()
    await store.erase(tx, row["id"], now)
    await store.set_suspension(tx, row["id"], now, "account erased")
    await refresh_in(ctx, tx, Actor.system("erasure"), {**row, "suspended_at": now},
                     cause="account_erased")


# -- onboarding ------------------------------------------------------------------------------

async def _check_registration(ctx: Ctx, tx: Tx, data: RegistrationIn,
                              agent_id: uuid.UUID | None, field: str) -> None:
    if data.valid_until < today_of(ctx):
        raise ValidationFailed([FieldError("body", f"{field}valid_until",
                                           "This registration has already ended.")])
    await store.lock_number(tx, data.state, data.number)  # held until the insert commits
    holder = await store.number_holder(tx, data.state, data.number)
    if holder is not None and holder != agent_id:
        raise Conflict(f"registration {data.number} ({data.state}) belongs to another agent",
                       field=f"{field}number")


async def _create_in(ctx: Ctx, tx: Tx, actor: Actor, user_id: uuid.UUID, data: AgentIn
                     ) -> dict[str, Any]:
    roles = await auth.user_roles(tx, user_id)
    if not roles:
        raise NotFound(f"no user {user_id}")
    if "agent" not in roles:
        raise Conflict("the user does not hold the agent role: an admin grants it first "
                       "(console: Users)")
    await _check_registration(ctx, tx, data.registration, None, "registration.")
    now = ctx.clock.now()
    agent_id = uuid7()
    if not await store.insert_agent(tx, {
            "id": agent_id, "user_id": user_id, "display_name": data.display_name,
            "phone": data.phone, "email": data.email, "languages": data.languages,
            "capacity": ctx.settings.default_capacity, "created_by": actor.ref, "now": now}):
        raise Conflict("this user already has an agent profile")
    reg = data.registration
    await store.insert_registration(tx, uuid7(), agent_id, reg.number, reg.state,
                                    reg.valid_from, reg.valid_until, "submitted", now)
    await store.add_history(tx, uuid7(), agent_id, None, "pending", "created", None,
                            actor.ref, now)
    # A KYC decision made before this plugin listened is read once from auth; any event
    # (sequence > 0) overrides it.
    if await store.kyc_status(tx, user_id) is None:
        await store.record_kyc(tx, user_id, await auth.kyc_status(tx, user_id, KYC_ROLE), 0)
    row = await store.agent(tx, agent_id, lock=True)
    assert row is not None
    await refresh_in(ctx, tx, actor, row)
    return row


async def create_my_agent(ctx: Ctx, actor: Actor, data: AgentIn) -> AgentOut:
    """The calling user (holding the agent role) creates their agent profile with their
    first registration; it is pending until staff verify the registration and their KYC is
    verified.

    :raises Conflict: a profile exists, the number is another agent's, or the user does not
        hold the agent role (in the database).
    :raises ValidationFailed: the registration has already ended.
    """
    if actor.user_id is None:
        raise Forbidden("only a signed-in user creates their own agent profile")
    async with ctx.db.transaction() as tx:
        row = await _create_in(ctx, tx, actor, actor.user_id, data)
        return await agent_out(tx, await _reload(tx, row["id"]), today_of(ctx))


async def create_agent(ctx: Ctx, actor: Actor, data: StaffAgentIn) -> AgentOut:
    """Staff create an agent profile for a user who holds the agent role.

    :raises NotFound: no such user.
    """
    if not actor.is_staff:
        raise Forbidden("only staff create agent profiles for others")
    async with ctx.db.transaction() as tx:
        row = await _create_in(ctx, tx, actor, data.user_id, data.profile())
        return await agent_out(tx, await _reload(tx, row["id"]), today_of(ctx))


async def user_signing_in_with(ctx: Ctx, actor: Actor, phone: str) -> uuid.UUID | None:
    """The user who signs in with ``phone`` (E.164), for staff making their profile; None
    when nobody does."""
    if not actor.is_staff:
        raise Forbidden("only staff look users up")
    return await auth.user_id_by_phone(ctx.db, phone)


async def _reload(q: Any, agent_id: uuid.UUID) -> dict[str, Any]:
    row = await store.agent(q, agent_id)
    assert row is not None
    return row


async def update_agent(ctx: Ctx, actor: Actor, agent_id: uuid.UUID, data: AgentUpdate
                       ) -> AgentOut:
    """Change an agent's profile, capacity or territories (the agent, or staff); publishes
    ``agent_updated`` when what routing reads changed."""
    async with ctx.db.transaction() as tx:
        row = await _agent_for(tx, actor, agent_id, lock=True)
        changes = {name: getattr(data, name) for name in store.AGENT_EDITABLE
                   if getattr(data, name) is not None}
        now = ctx.clock.now()
        if changes:
            await store.update_agent(tx, agent_id, changes, now)
        if data.territories is not None:
            await store.replace_territories(tx, agent_id, _places(data.territories))
        fields = sorted({*changes} & {"capacity", "languages"}
                        | ({"territories"} if data.territories is not None else set()))
        row = await _reload(tx, agent_id)
        if fields:
            await ctx.publish(tx, AgentUpdated(
                agent_id=agent_id, user_id=row["user_id"], fields=fields,
                routing=await routing_of(tx, row, today_of(ctx))), actor=actor.ref)
        return await agent_out(tx, row, today_of(ctx))


def _places(territories: list[TerritoryIn]) -> list[tuple[str, str, str, str]]:
    """Territories as stored: as typed, and folded; repeats (after folding) dropped."""
    seen: set[tuple[str, str]] = set()
    out = []
    for t in territories:
        key = (fold(t.city), fold(t.locality or ""))
        if key not in seen:
            seen.add(key)
            out.append((t.city, t.locality or "", *key))
    return out


async def submit_registration(ctx: Ctx, actor: Actor, agent_id: uuid.UUID,
                              data: RegistrationIn) -> AgentOut:
    """A new registration (a renewal, or a correction of one waiting): it waits for staff,
    replacing one already waiting; the one in force stays until the new one is verified."""
    async with ctx.db.transaction() as tx:
        row = await _agent_for(tx, actor, agent_id, lock=True)
        await _check_registration(ctx, tx, data, agent_id, "")
        waiting = await store.registration_in_status(tx, agent_id, "submitted")
        now = ctx.clock.now()
        if waiting is not None:
            await store.set_registration_status(tx, waiting["id"], "superseded", None, now,
                                                None)
        await store.insert_registration(tx, uuid7(), agent_id, data.number, data.state,
                                        data.valid_from, data.valid_until, "submitted", now)
        return await agent_out(tx, row, today_of(ctx))


def _staff_only(actor: Actor, what: str) -> None:
    if not actor.is_staff:
        raise Forbidden(f"only staff {what}")


async def verify_registration(ctx: Ctx, actor: Actor, agent_id: uuid.UUID) -> AgentOut:
    """Staff verify the registration waiting (it supersedes the one in force); the agent
    becomes active if their KYC is verified too and it is in force.

    :raises Conflict: no registration is waiting.
    """
    _staff_only(actor, "verify registrations")
    async with ctx.db.transaction() as tx:
        row = await _agent_for(tx, actor, agent_id, lock=True)
        waiting = await store.registration_in_status(tx, agent_id, "submitted")
        if waiting is None:
            raise Conflict("no registration of this agent is waiting to be verified")
        now = ctx.clock.now()
        current = await store.registration_in_status(tx, agent_id, "verified")
        if current is not None:
            await store.set_registration_status(tx, current["id"], "superseded", None, now,
                                                None)
        await store.set_registration_status(tx, waiting["id"], "verified", None, now,
                                            actor.ref)
        await refresh_in(ctx, tx, actor, row, note=f"registration {waiting['number']} verified")
        return await agent_out(tx, await _reload(tx, agent_id), today_of(ctx))


async def reject_registration(ctx: Ctx, actor: Actor, agent_id: uuid.UUID, data: ReasonIn
                              ) -> AgentOut:
    """Staff reject the registration waiting, saying why (the agent sees the reason)."""
    _staff_only(actor, "reject registrations")
    async with ctx.db.transaction() as tx:
        row = await _agent_for(tx, actor, agent_id, lock=True)
        waiting = await store.registration_in_status(tx, agent_id, "submitted")
        if waiting is None:
            raise Conflict("no registration of this agent is waiting to be verified")
        await store.set_registration_status(tx, waiting["id"], "rejected", data.reason,
                                            ctx.clock.now(), actor.ref)
        return await agent_out(tx, row, today_of(ctx))


async def suspend(ctx: Ctx, actor: Actor, agent_id: uuid.UUID, data: ReasonIn) -> AgentOut:
    """Staff suspend an agent, saying why: no leads, no listing requests until reinstated.

    :raises Conflict: already suspended.
    """
    _staff_only(actor, "suspend agents")
    async with ctx.db.transaction() as tx:
        row = await _agent_for(tx, actor, agent_id, lock=True)
        if row["suspended_at"] is not None:
            raise Conflict("the agent is already suspended")
        now = ctx.clock.now()
        await store.set_suspension(tx, agent_id, now, data.reason)
        await refresh_in(ctx, tx, actor, {**row, "suspended_at": now}, note=data.reason)
        return await agent_out(tx, await _reload(tx, agent_id), today_of(ctx))


async def reinstate(ctx: Ctx, actor: Actor, agent_id: uuid.UUID) -> AgentOut:
    """Staff lift a suspension; the status follows KYC and the registration again.

    :raises Conflict: not suspended.
    """
    _staff_only(actor, "reinstate agents")
    async with ctx.db.transaction() as tx:
        row = await _agent_for(tx, actor, agent_id, lock=True)
        if row["suspended_at"] is None:
            raise Conflict("the agent is not suspended")
        if row["erased_at"] is not None:
            raise Conflict("the agent's account was erased")
        await store.set_suspension(tx, agent_id, None, None)
        await refresh_in(ctx, tx, actor, {**row, "suspended_at": None}, note="reinstated")
        return await agent_out(tx, await _reload(tx, agent_id), today_of(ctx))


# -- holidays --------------------------------------------------------------------------------

async def add_holiday(ctx: Ctx, actor: Actor, agent_id: uuid.UUID, data: HolidayIn
                      ) -> AgentOut:
    """A holiday (the agent, or staff); publishes ``agent_updated``.

    :raises ValidationFailed: it has already ended.
    :raises Conflict: too many holidays on record.
    """
    today = today_of(ctx)
    if data.ends_on < today:
        raise ValidationFailed([FieldError("body", "ends_on", "This holiday is already over.")])
    async with ctx.db.transaction() as tx:
        row = await _agent_for(tx, actor, agent_id, lock=True)
        if len(await store.holidays_of(tx, [agent_id], today)) >= ctx.settings.max_holidays:
            raise Conflict(f"at most {ctx.settings.max_holidays} holidays may be planned")
        await store.add_holiday(tx, uuid7(), agent_id, data.starts_on, data.ends_on, data.note,
                                ctx.clock.now())
        return await _holidays_changed(ctx, tx, actor, row)


async def remove_holiday(ctx: Ctx, actor: Actor, agent_id: uuid.UUID, holiday_id: uuid.UUID
                         ) -> AgentOut:
    """Cancel a holiday; publishes ``agent_updated``.

    :raises NotFound: the agent has no such holiday.
    """
    async with ctx.db.transaction() as tx:
        row = await _agent_for(tx, actor, agent_id, lock=True)
        if not await store.delete_holiday(tx, agent_id, holiday_id):
            raise NotFound(f"no holiday {holiday_id}")
        return await _holidays_changed(ctx, tx, actor, row)


async def _holidays_changed(ctx: Ctx, tx: Tx, actor: Actor, row: dict[str, Any]) -> AgentOut:
    today = today_of(ctx)
    await ctx.publish(tx, AgentUpdated(agent_id=row["id"], user_id=row["user_id"],
                                       fields=["holidays"],
                                       routing=await routing_of(tx, row, today)),
                      actor=actor.ref)
    return await agent_out(tx, row, today)


# -- listings --------------------------------------------------------------------------------

async def request_listing(ctx: Ctx, actor: Actor, agent_id: uuid.UUID, data: ListingIn
                          ) -> ListingOut:
    """An active agent asks to sell a published project (again, after a rejection);
    publishes ``listing_changed``.

    :raises AgentNotActive: the agent is not active.
    :raises NotFound: no published project with that id (field ``project_id``).
    :raises Conflict: already requested or accepted.
    """
    async with ctx.db.transaction() as tx:
        row = await _agent_for(tx, actor, agent_id, lock=True)
        if row["status"] != "active":
            raise AgentNotActive(f"only active agents request listings (this one is "
                                 f"{row['status']})")
        project = await catalog.project(tx, data.project_id)
        if project is None or project["moderation"] != "published":
            raise NotFound(f"no published project {data.project_id}", field="project_id")
        listing = await store.request_listing(tx, uuid7(), agent_id, data.project_id,
                                              ctx.clock.now())
        if listing is None:
            raise Conflict("this project is already requested or listed by the agent")
        await listing_event_in(ctx, tx, actor, row, listing)
        return _listing_out(listing, row["status"])


async def listing_event_in(ctx: Ctx, tx: Tx, actor: Actor, row: dict[str, Any],
                         listing: dict[str, Any]) -> None:
    await ctx.publish(tx, ListingChanged(
        agent_id=row["id"], user_id=row["user_id"], listing_id=listing["id"],
        project_id=listing["project_id"], status=listing["status"],
        routing=await routing_of(tx, row, today_of(ctx))), actor=actor.ref)


async def _may_decide(q: Any, actor: Actor, project_id: uuid.UUID) -> None:
    if actor.is_staff:
        return
    project = await catalog.project(q, project_id)
    if project is None or actor.user_id is None or project["owner_user_id"] != actor.user_id:
        raise Forbidden("only the project's builder or staff decide on its listings")


async def decide_listing(ctx: Ctx, actor: Actor, listing_id: uuid.UUID, accept: bool,
                         data: ReasonIn | None = None) -> ListingOut:
    """The project's builder (or staff) accepts or rejects a requested listing (a rejection
    says why); publishes ``listing_changed``. An accepted listing is active while its agent is.

    :raises NotFound: no such listing.
    :raises Forbidden: not the project's builder, nor staff.
    :raises Conflict: the listing is not waiting for a decision.
    """
    async with ctx.db.transaction() as tx:
        listing = await store.listing(tx, listing_id)
        if listing is None:
            raise NotFound(f"no listing {listing_id}")
        await _may_decide(tx, actor, listing["project_id"])
        row = await store.agent(tx, listing["agent_id"], lock=True)
        assert row is not None
        listing = await store.listing(tx, listing_id, lock=True)
        assert listing is not None
        if listing["status"] != "requested":
            raise Conflict(f"the listing is already {listing['status']}")
        decided = await store.decide_listing(
            tx, listing_id, "accepted" if accept else "rejected",
            None if accept or data is None else data.reason, ctx.clock.now(), actor.ref)
        await listing_event_in(ctx, tx, actor, row, decided)
        return _listing_out(decided, row["status"])


async def project_listings(ctx: Ctx, actor: Actor, project_id: uuid.UUID, query: ListingQuery
                           ) -> ListingPage:
    """A project's listings, newest request first (its builder, or staff)."""
    await _may_decide(ctx.db, actor, project_id)
    size = query.limit or ctx.settings.page_size
    rows = await store.project_listings(ctx.db, project_id, query.status,
                                        _position(query.cursor), size + 1)
    items = [_listing_out(r, r["agent_status"]) for r in rows[:size]]
    more = len(rows) > size
    return ListingPage(items=items, next_cursor=cursors.pack_position(
        items[-1].requested_at, items[-1].id) if more else None)


# -- daily jobs ------------------------------------------------------------------------------

async def refresh_statuses(ctx: Ctx) -> int:
    """The daily job: agents whose verified registration ended become ``lapsed``
    (``agent_suspended`` with ``registration_lapsed`` for those who were active), and
    pending agents whose registration came into force become active. Each agent is locked
    and its status recomputed, so a second (or concurrent) run changes nothing; how many
    changed."""
    actor = Actor.system("refresh_statuses")
    changed = 0
    for find in (store.lapse_candidates, store.activation_candidates):
        for _ in range(JOB_MAX_BATCHES):
            ids = await find(ctx.db, today_of(ctx), JOB_BATCH)
            moved = 0
            for agent_id in ids:
                async with ctx.db.transaction() as tx:
                    row = await store.agent(tx, agent_id, lock=True)
                    if row is None:
                        continue
                    old = row["status"]
                    new = await refresh_in(ctx, tx, actor, row)
                    if new == "lapsed":
                        await store.mark_lapsed(tx, agent_id, ctx.clock.now())
                    moved += new != old
            changed += moved
            if len(ids) < JOB_BATCH or not moved:
                break
    if changed:
        ctx.log.info("agents: %d status changes by the daily job", changed)
    return changed


async def notify_expiring(ctx: Ctx) -> int:
    """The daily job: publish ``registration_expiring`` for each verified registration that
    ends within ``expiry_notice_days``, once per registration ever (the row is marked in the
    transaction that publishes; a concurrent run skips marked rows); how many."""
    today = today_of(ctx)
    horizon = today + dt.timedelta(days=ctx.settings.expiry_notice_days)
    actor = Actor.system("notify_expiring")
    total = 0
    for _ in range(JOB_MAX_BATCHES):
        async with ctx.db.transaction() as tx:
            rows = await store.claim_expiring(tx, today, horizon, JOB_BATCH)
            for r in rows:
                await ctx.publish(tx, RegistrationExpiring(
                    agent_id=r["agent_id"], user_id=r["user_id"], registration_id=r["id"],
                    number=r["number"], state=r["state"], valid_until=r["valid_until"]),
                    actor=actor.ref)
        total += len(rows)
        if len(rows) < JOB_BATCH:
            break
    return total
