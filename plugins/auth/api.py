"""What other plugins may ask the auth plugin (queries only; declare ``requires="auth"``)."""

from __future__ import annotations

import uuid

from propmubi.db import Database, Tx
from propmubi_plugins.auth import store
from propmubi_plugins.auth.kyc import store as kyc_store

#: Every role a user may hold.
ROLES = ("buyer", "agent", "builder", "staff", "admin")


async def user_roles(db: Database | Tx, user_id: uuid.UUID) -> list[str]:
    """The user's roles (empty for an unknown user)."""
    return await store.roles_of(db, user_id)


async def kyc_status(db: Database | Tx, user_id: uuid.UUID, role: str) -> str:
    """The status of the user's KYC for ``role`` (``agent`` or ``builder``): ``not_started``
    (never submitted, or an unknown user), ``submitted``, ``resubmitted``, ``verified`` or
    ``rejected``. Changes are published as ``auth.kyc_status_changed``; a plugin keeping its
    own copy reads this once (when it first needs a user's status) and follows the events."""
    for record in await kyc_store.records_of(db, user_id):
        if record["role"] == role:
            return str(record["status"])
    return "not_started"


async def user_id_by_phone(db: Database | Tx, phone: str) -> uuid.UUID | None:
    """The id of the user who signs in with ``phone`` (E.164, ``+919812300001``), or None."""
    return await store.user_id_by_phone(db, phone)
