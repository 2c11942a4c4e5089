"""Privacy rules: the consent ledger, the export of everything held about a user, erasure.

Consent is append-only: each grant or withdrawal is a new row naming the policy version it
refers to and where it came from; the newest row of a purpose is the decision in force.
Erasure anonymises rather than deletes the user row, because events and other tables refer to
the id; the ``auth.user_erased`` event tells every other plugin to erase its own data.
"""

from __future__ import annotations

import uuid
from typing import Any

from propmubi.actors import Actor
from propmubi_plugins.auth import store
from propmubi_plugins.auth.events import ConsentRecorded, UserErased
from propmubi_plugins.auth.kyc import service as kyc
from propmubi_plugins.auth.models import Consent, ConsentIn, Consents
from propmubi_plugins.auth.service import event_actor, live_profile_in, stored_ip
from propmubi_plugins.auth.state import Ctx


async def record_consent(ctx: Ctx, actor: Actor, user_id: uuid.UUID, body: ConsentIn, *,
                         ip: str | None, user_agent: str | None) -> Consent:
    """Append a consent decision of a live user and publish ``auth.consent_recorded`` with it.

    :param ip: where the decision came from, kept with it (NULL when it is not an IP).
    :param user_agent: the client's, kept with it.
    :raises AccountGone: the account is unknown or erased.
    """
    async with ctx.db.transaction() as tx:
        await live_profile_in(ctx, tx, actor, user_id)
        row = await store.add_consent(tx, user_id, body.purpose, body.policy_version,
                                      body.granted, stored_ip(ip), user_agent)
        await ctx.publish(tx, ConsentRecorded(user_id=user_id, purpose=body.purpose,
                                              policy_version=body.policy_version,
                                              granted=body.granted),
                          actor=event_actor(actor))
    return Consent(**row)


async def consents(ctx: Ctx, actor: Actor, user_id: uuid.UUID) -> Consents:
    """A live user's consent decisions: the one in force per purpose, and every one."""
    await live_profile_in(ctx, ctx.db, actor, user_id)
    return Consents(
        current=[Consent(**r) for r in await store.consents_in_force(ctx.db, user_id)],
        history=[Consent(**r) for r in await store.consent_history(ctx.db, user_id)])


async def export(ctx: Ctx, actor: Actor, user_id: uuid.UUID) -> dict[str, Any]:
    """Everything the auth plugin holds about a live user (other plugins answer for their
    own): profile, roles, every session, the consent ledger, KYC records (numbers masked)."""
    async with ctx.db.transaction() as tx:
        user = await live_profile_in(ctx, tx, actor, user_id)
        return {
            "exported_at": ctx.clock.now(),
            "profile": {k: user[k] for k in ("id", "phone", "name", "created_at",
                                              "last_login_at")},
            "roles": await store.roles_of(tx, user_id),
            "sessions": await store.all_sessions_of(tx, user_id),
            "consents": await store.consent_history(tx, user_id),
            "kyc": await kyc.export_user_in(ctx, tx, actor, user_id),
        }


async def erase(ctx: Ctx, actor: Actor, user_id: uuid.UUID) -> None:
    """Anonymise a live user's account, KYC included, and publish ``auth.user_erased`` (in
    one transaction)."""
    async with ctx.db.transaction() as tx:
        user = await live_profile_in(ctx, tx, actor, user_id)
        if await store.erase_user(tx, user_id, user["phone"]):
            await kyc.erase_user_in(ctx, tx, actor, user_id)
            await ctx.publish(tx, UserErased(user_id=user_id), actor=event_actor(actor))
