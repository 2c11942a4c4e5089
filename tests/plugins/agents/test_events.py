"""The agents plugin follows auth's events through the real bus: an agent KYC decided in the
auth plugin (``auth.kyc_status_changed``) activates or suspends the agent; a redelivery or an
older event changes nothing; an erased user's agent is anonymised and suspended."""

from __future__ import annotations

import uuid
from typing import Any

from propmubi.actors import Actor
from propmubi.console import accounts
from propmubi_plugins.agents import notify, service, store
from propmubi_plugins.auth.events import KycStatusChanged, UserErased
from propmubi_plugins.auth.kyc import service as kyc
from propmubi_plugins.auth.kyc.models import Decision
from tests.plugins.agents.conftest import STAFF_ACTOR, onboard, outbox, status_of

KYC = {"legal_name": "Asha Kulkarni", "document_kind": "pan", "document_number": "ABCDE1234F"}


async def decide_kyc(client: Any, services: Any, user: Any, verified: bool) -> None:
    """The user submits their agent KYC (auth's API); a reviewer decides (auth's service)."""
    response = await client.put("/api/v1/me/kyc/agent", json=KYC, headers=user.headers)
    assert response.status == 200, await response.text()
    record_id = uuid.UUID((await response.json())["id"])
    staff = await accounts.create_staff(services.db, f"r{uuid.uuid4().hex[:6]}@example.com",
                                        "Rita Reviewer", "correct horse battery", ["staff"])
    await kyc.decide(services.context("auth"), Actor.staff(uuid.UUID(str(staff.id))),
                     record_id, Decision(verified=verified,
                                         reason=None if verified else "blurry PAN"))


async def test_a_kyc_verified_in_auth_activates_the_agent(client, ctx, event_bus, agent_user):
    services = ctx.services
    agent_id = uuid.UUID((await onboard(client, agent_user))["id"])
    await service.verify_registration(ctx, STAFF_ACTOR, agent_id)
    await decide_kyc(client, services, agent_user, True)
    assert await status_of(ctx, agent_id) == "pending"  # the worker has not run yet
    await event_bus.drain()
    assert await status_of(ctx, agent_id) == "active"
    (activated,) = await outbox(ctx, "agents.agent_activated")
    assert activated["_actor"] == "system:kyc"


async def test_a_decision_before_the_profile_still_counts(client, ctx, event_bus, agent_user):
    await decide_kyc(client, ctx.services, agent_user, True)
    await event_bus.drain()
    agent = await onboard(client, agent_user)
    assert agent["kyc_status"] == "verified"
    out = await service.verify_registration(ctx, STAFF_ACTOR, uuid.UUID(agent["id"]))
    assert out.status == "active"


async def kyc_event(services: Any, user_id: uuid.UUID, old: str, new: str,
                    role: str = "agent") -> None:
    """Publish auth's event as the auth plugin does (in its own transaction)."""
    async with services.db.transaction() as tx:
        await services.context("auth").publish(tx, KycStatusChanged(
            user_id=user_id, role=role, old_status=old, new_status=new), actor="staff:x")


async def test_kyc_moving_away_from_verified_and_repeated_events(client, ctx, event_bus,
                                                                 agent_user):
    services = ctx.services
    agent_id = uuid.UUID((await onboard(client, agent_user))["id"])
    await service.verify_registration(ctx, STAFF_ACTOR, agent_id)
    await kyc_event(services, agent_user.id, "submitted", "verified")
    await kyc_event(services, agent_user.id, "submitted", "rejected", role="builder")
    await event_bus.drain()
    assert await status_of(ctx, agent_id) == "active"  # the builder KYC is not ours
    await kyc_event(services, agent_user.id, "verified", "resubmitted")
    await event_bus.drain()
    assert await status_of(ctx, agent_id) == "pending"
    assert [e["reason"] for e in await outbox(ctx, "agents.agent_suspended")] == ["kyc"]
    # Every event again (as after a crash): nothing more, the older "verified" included.
    stream = services.keys.event_stream("auth")
    for _, fields in await services.redis.xrange(stream):
        await services.redis.xadd(stream, fields)
    await event_bus.drain()
    assert await status_of(ctx, agent_id) == "pending"
    assert len(await outbox(ctx, "agents.agent_suspended")) == 1
    assert len(await outbox(ctx, "agents.agent_activated")) == 1
    assert await store.kyc_status(ctx.db, agent_user.id) == "resubmitted"


async def test_an_older_event_changes_nothing(client, ctx, agent_user):
    async with ctx.db.transaction() as tx:
        assert await service.record_kyc_in(ctx, tx, agent_user.id, "verified", 5)
        assert not await service.record_kyc_in(ctx, tx, agent_user.id, "submitted", 4)
    assert await store.kyc_status(ctx.db, agent_user.id) == "verified"


async def test_an_erased_user_is_anonymised_and_suspended(client, ctx, event_bus,
                                                          active_agent):
    services = ctx.services
    agent_id = uuid.UUID(active_agent["id"])
    async with services.db.transaction() as tx:
        await services.context("auth").publish(
            tx, UserErased(user_id=active_agent["user"].id), actor="system:test")
    await event_bus.drain()
    await event_bus.drain()
    out = await service.get_agent(ctx, STAFF_ACTOR, agent_id)
    assert (out.status, out.display_name, out.phone, out.email) == (
        "suspended", "Erased agent", "", "")
    assert [e["reason"] for e in await outbox(ctx, "agents.agent_suspended")] == [
        "account_erased"]


async def test_an_expiring_registration_reaches_the_agent_once(client, ctx, clock, event_bus,
                                                               active_agent):
    """``agents.registration_expiring`` becomes a ``registration_expiring`` notification to
    the agent (SMS and e-mail from the profile, with the default templates the seed makes),
    sent by the console providers; the same event delivered again adds nothing."""
    services = ctx.services
    await notify.ensure_templates(ctx)
    await notify.ensure_templates(ctx)  # twice: nothing more
    clock.now_is("2029-10-02")  # 90 days before the registration ends
    assert await service.notify_expiring(ctx) == 1
    await event_bus.drain()
    stream = services.keys.event_stream("agents")
    for _, fields in await services.redis.xrange(stream):
        decoded = {(k.decode() if isinstance(k, bytes) else k):
                   (v.decode() if isinstance(v, bytes) else v) for k, v in fields.items()}
        if decoded.get("type") == "agents.registration_expiring":  # a replay of it
            await services.db.execute(
                "DELETE FROM core_processed_events WHERE consumer = 'agents'"
                " AND event_id = %s", (uuid.UUID(decoded["id"]),))
            await services.redis.xadd(stream, fields)
    await event_bus.drain()
    rows = await services.db.fetch(
        "SELECT n.user_id, n.variables, d.channel, d.status FROM notifications_notifications n"
        " JOIN notifications_deliveries d ON d.notification_id = n.id"
        " WHERE n.type = 'registration_expiring' ORDER BY d.channel")
    assert [(r["channel"], r["status"]) for r in rows] == [("email", "sent"), ("sms", "sent")]
    assert {str(r["user_id"]) for r in rows} == {str(active_agent["user"].id)}
    assert rows[0]["variables"] == {"number": "A51800012345", "until": "31 Dec 2029"}
