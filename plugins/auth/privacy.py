"""Privacy rules: the consent ledger, the export of everything held about a user, erasure.

Consent is append-only: each grant or withdrawal is a new row naming the policy version it
refers to and where it came from; the newest row of a purpose is the decision in force.
Erasure anonymises rather than deletes the user row, because events and other tables refer to
the id; the ``auth.user_erased`` event tells every other plugin to erase its own data.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from propmubi.context import Services
from propmubi.errors import Unauthorized
from propmubi.events import publish
from propmubi_plugins.auth import kyc, store
from propmubi_plugins.auth.events import ConsentRecorded, UserErased

#: What a user can consent to. A new purpose is a code change (and a policy text) on purpose:
#: consent to something the platform does not define means nothing.
PURPOSES = ("terms", "privacy_policy", "marketing_sms", "marketing_email", "share_with_builders",
            "analytics")


class AccountGone(Unauthorized):
    """The token's user deleted their account."""

    slug, title = "account-erased", "This account no longer exists"


async def live_profile(q: Any, user_id: uuid.UUID) -> dict[str, Any]:
    """The user's profile; 401 when the account is unknown or erased (a token issued before
    the erasure is still cryptographically valid until it expires)."""
    row = await store.profile(q, user_id)
    if row is None or row["erased_at"] is not None:
        raise AccountGone("this account no longer exists; sign in again")
    return row


async def record_consent(services: Services, user_id: uuid.UUID, purpose: str,
                         policy_version: str, granted: bool, ip: str | None,
                         user_agent: str | None) -> dict[str, Any]:
    """Append a consent decision and publish ``auth.consent_recorded`` with it."""
    async with services.db.transaction() as tx:
        await live_profile(tx, user_id)
        row = await store.add_consent(tx, user_id, purpose, policy_version, granted, ip,
                                      user_agent)
        await publish(tx, ConsentRecorded(user_id=user_id, purpose=purpose,
                                          policy_version=policy_version, granted=granted),
                      actor=str(user_id))
    return row


async def export(services: Services, user_id: uuid.UUID) -> dict[str, Any]:
    """Everything the auth plugin holds about a user (other plugins answer for their own)."""
    async with services.db.transaction() as tx:
        user = await live_profile(tx, user_id)
        return {
            "exported_at": dt.datetime.now(dt.UTC),
            "profile": {k: user[k] for k in ("id", "phone", "name", "created_at",
                                              "last_login_at")},
            "roles": await store.roles_of(tx, user_id),
            "sessions": await store.all_sessions_of(tx, user_id),
            "consents": await store.consent_history(tx, user_id),
            "kyc": await kyc.export_user(tx, user_id),
        }


async def erase(services: Services, user_id: uuid.UUID) -> None:
    """Anonymise the account and publish ``auth.user_erased`` (in one transaction)."""
    async with services.db.transaction() as tx:
        user = await live_profile(tx, user_id)
        if await store.erase_user(tx, user_id, user["phone"]):
            await kyc.erase_user(tx, user_id)
            await publish(tx, UserErased(user_id=user_id), actor=str(user_id))
