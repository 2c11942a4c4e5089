"""The rules through the service, as jobs, handlers and other plugins call it: what makes an
agent active, suspension, the daily jobs with a controlled clock (lapse and
``registration_expiring`` exactly once, even run twice or concurrently), routing candidates,
and the seed."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from pathlib import Path

import attrs
import pytest

from propmubi.actors import Actor
from propmubi.errors import Conflict, Forbidden, NotFound
from propmubi_plugins.agents import api, seed, service, store
from propmubi_plugins.agents.models import (
    AgentUpdate,
    HolidayIn,
    ListingIn,
    ReasonIn,
    RegistrationIn,
    StaffAgentIn,
    TerritoryIn,
)
from tests.plugins.agents.conftest import (
    STAFF_ACTOR,
    onboard,
    outbox,
    status_of,
    verified_kyc,
)

D = dt.date.fromisoformat


def test_derive_status():
    reg = {"valid_from": D("2025-01-01"), "valid_until": D("2029-12-31")}
    today = D("2026-03-01")
    assert service.derive_status(suspended=False, kyc="verified", registration=reg,
                                 today=today) == "active"
    assert service.derive_status(suspended=False, kyc="submitted", registration=reg,
                                 today=today) == "pending"
    assert service.derive_status(suspended=False, kyc="verified", registration=None,
                                 today=today) == "pending"
    assert service.derive_status(suspended=False, kyc="verified", registration=reg,
                                 today=D("2024-12-31")) == "pending"  # not in force yet
    assert service.derive_status(suspended=False, kyc="verified", registration=reg,
                                 today=D("2030-01-01")) == "lapsed"
    assert service.derive_status(suspended=True, kyc="verified", registration=reg,
                                 today=today) == "suspended"


async def test_activation_needs_verified_kyc_and_registration(client, ctx, agent_user):
    agent_id = uuid.UUID((await onboard(client, agent_user))["id"])
    await verified_kyc(ctx, agent_user.id)
    assert await status_of(ctx, agent_id) == "pending"  # the registration is not verified
    await service.verify_registration(ctx, STAFF_ACTOR, agent_id)
    assert await status_of(ctx, agent_id) == "active"
    # KYC no longer verified: the agent leaves active, reason kyc.
    await verified_kyc(ctx, agent_user.id, "resubmitted")
    assert await status_of(ctx, agent_id) == "pending"
    (suspended,) = await outbox(ctx, "agents.agent_suspended")
    assert (suspended["reason"], suspended["status"], suspended["_actor"]) == (
        "kyc", "pending", "system:kyc")
    history = await store.history(ctx.db, agent_id)
    assert [(h["old_status"], h["new_status"], h["reason"]) for h in history] == [
        (None, "pending", "created"), ("pending", "active", "activated"),
        ("active", "pending", "kyc")]


async def test_staff_suspension_wins_and_reinstating_reactivates(client, ctx, active_agent):
    agent_id = uuid.UUID(active_agent["id"])
    with pytest.raises(Forbidden):
        await service.suspend(ctx, active_agent["user"].actor, agent_id, ReasonIn(reason="x"))
    out = await service.suspend(ctx, STAFF_ACTOR, agent_id, ReasonIn(reason="fraud check"))
    assert (out.status, out.suspended_note) == ("suspended", "fraud check")
    assert [e["reason"] for e in await outbox(ctx, "agents.agent_suspended")] == ["staff"]
    await service.reinstate(ctx, STAFF_ACTOR, agent_id)
    assert len(await outbox(ctx, "agents.agent_activated")) == 2


async def test_another_users_agent_is_not_found(client, ctx, active_agent, make_user):
    stranger = await make_user("agent")
    with pytest.raises(NotFound):
        await service.get_agent(ctx, stranger.actor, uuid.UUID(active_agent["id"]))


async def test_the_lapse_job_acts_once(client, ctx, clock, active_agent):
    agent_id = uuid.UUID(active_agent["id"])
    clock.now_is("2029-12-31")  # the last valid day
    assert await service.refresh_statuses(ctx) == 0
    clock.now_is("2030-01-01", "00:05")
    assert await service.refresh_statuses(ctx) == 1
    assert await service.refresh_statuses(ctx) == 0
    assert await status_of(ctx, agent_id) == "lapsed"
    (event,) = await outbox(ctx, "agents.agent_suspended")
    assert (event["reason"], event["status"], event["_actor"]) == (
        "registration_lapsed", "lapsed", "system:refresh_statuses")
    reg = await store.registration_in_status(ctx.db, agent_id, "verified")
    assert reg is not None and reg["lapsed_at"] is not None
    # Lapsed agents are no routing candidates; their listings stay, inactive.
    out = await service.get_agent(ctx, STAFF_ACTOR, agent_id)
    assert out.status == "lapsed"


async def test_a_registration_coming_into_force_activates_the_next_day(client, ctx, clock,
                                                                        agent_user):
    clock.now_is("2024-12-30")
    agent_id = uuid.UUID((await onboard(client, agent_user))["id"])
    await verified_kyc(ctx, agent_user.id)
    await service.verify_registration(ctx, STAFF_ACTOR, agent_id)
    assert await status_of(ctx, agent_id) == "pending"
    clock.now_is("2025-01-01")
    assert await service.refresh_statuses(ctx) == 1
    assert await status_of(ctx, agent_id) == "active"


async def test_registration_expiring_once_even_run_twice_or_concurrently(
        client, ctx, clock, active_agent, make_user):
    other = await make_user("agent")
    await onboard(client, other, registration={"state": "KA", "number": "PRM/KA/RERA/1251/AG1",
                                               "valid_from": "2025-06-01",
                                               "valid_until": "2030-05-31"})
    other_id = (await store.agent_of_user(ctx.db, other.id))["id"]
    await service.verify_registration(ctx, STAFF_ACTOR, other_id)
    clock.now_is("2029-10-01")  # 91 days before 2029-12-31: not yet
    assert await service.notify_expiring(ctx) == 0
    clock.now_is("2029-10-02")  # 90 days before
    results = await asyncio.gather(service.notify_expiring(ctx), service.notify_expiring(ctx))
    assert sorted(results) == [0, 1]
    assert await service.notify_expiring(ctx) == 0
    clock.now_is("2029-12-30")
    assert await service.notify_expiring(ctx) == 0
    (event,) = await outbox(ctx, "agents.registration_expiring")
    assert (event["agent_id"], event["number"], event["valid_until"]) == (
        active_agent["id"], "A51800012345", "2029-12-31")


async def test_routing_candidates(client, ctx, clock, active_agent, builder, make_project,
                                  make_user):
    agent_id = uuid.UUID(active_agent["id"])
    actor = active_agent["user"].actor
    project = await make_project(builder)
    listing = await service.request_listing(ctx, actor, agent_id,
                                            ListingIn(project_id=project["id"]))
    assert await api.active_agents_for(ctx.db, project["id"], "Pune", "Baner") == []
    await service.decide_listing(ctx, builder.actor, listing.id, True)
    await service.update_agent(ctx, actor, agent_id, AgentUpdate(territories=[
        TerritoryIn(city="  PUNE ", locality=" Baner  ")]))
    (candidate,) = await api.active_agents_for(ctx.db, project["id"], "pune", "BANER",
                                               today=D("2026-03-01"))
    assert (candidate.agent_id, candidate.user_id, candidate.capacity) == (
        agent_id, active_agent["user"].id, 10)
    assert not candidate.on_holiday
    assert await api.active_agents_for(ctx.db, project["id"], "Pune", "Wakad") == []
    # A whole-city territory covers every locality.
    await service.update_agent(ctx, actor, agent_id, AgentUpdate(territories=[
        TerritoryIn(city="Pune")]))
    assert len(await api.active_agents_for(ctx.db, project["id"], "Pune", "Wakad")) == 1
    # On holiday: still a candidate, flagged.
    await service.add_holiday(ctx, actor, agent_id, HolidayIn(starts_on=D("2026-03-01"),
                                                              ends_on=D("2026-03-02")))
    (candidate,) = await api.active_agents_for(ctx.db, project["id"], "Pune",
                                               today=D("2026-03-02"))
    assert candidate.on_holiday
    # Capacity 0 takes no leads.
    await service.update_agent(ctx, actor, agent_id, AgentUpdate(capacity=0))
    assert await api.active_agents_for(ctx.db, project["id"], "Pune") == []
    await service.update_agent(ctx, actor, agent_id, AgentUpdate(capacity=3))
    # Suspended: none; the listing stays, inactive.
    await service.suspend(ctx, STAFF_ACTOR, agent_id, ReasonIn(reason="audit"))
    assert await api.active_agents_for(ctx.db, project["id"], "Pune") == []
    out = await api.agent(ctx.db, agent_id)
    assert out is not None
    assert [(li.status, li.active) for li in out.listings] == [("accepted", False)]


async def test_staff_create_for_a_user_with_the_agent_role(client, ctx, make_user, buyer):
    data = StaffAgentIn(user_id=buyer.id, display_name="Ravi", phone="+919800000000",
                        email="r@example.com", registration=RegistrationIn(
                            state="MH", number="A51800000001", valid_from=D("2025-01-01"),
                            valid_until=D("2029-12-31")))
    with pytest.raises(Conflict, match="agent role"):
        await service.create_agent(ctx, STAFF_ACTOR, data)
    with pytest.raises(NotFound):
        await service.create_agent(ctx, STAFF_ACTOR, attrs.evolve(
            data, user_id=uuid.uuid4()))
    agent_user = await make_user("agent")
    out = await service.create_agent(ctx, Actor.staff(uuid.uuid4()),
                                     attrs.evolve(data, user_id=agent_user.id))
    assert out.status == "pending" and out.user_id == agent_user.id


async def test_seeding_twice_adds_nothing(client, ctx):
    first = await seed.seed(ctx, 0.1)
    assert first >= 4
    assert await seed.seed(ctx, 0.1) == 0
    counts = await store.status_counts(ctx.db)
    assert counts["pending"] == 1 and counts["suspended"] == 1 and counts["active"] >= 2


async def test_the_migration_goes_down_and_up_again(client, ctx):
    folder = Path(seed.__file__).parent / "migrations"
    async with ctx.db.transaction() as tx:
        await tx.execute((folder / "0001_agents.down.sql").read_text())
        assert await tx.fetchval("SELECT to_regclass('agents_agents')") is None
        await tx.execute((folder / "0001_agents.sql").read_text())
        assert await tx.fetchval("SELECT to_regclass('agents_agents')") is not None
