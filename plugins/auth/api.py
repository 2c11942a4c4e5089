"""What other plugins may ask the auth plugin (queries only; declare ``requires="auth"``)."""

from __future__ import annotations

import uuid

from propmubi.db import Database
from propmubi_plugins.auth import store

#: Every role a user may hold.
ROLES = ("buyer", "agent", "builder", "staff", "admin")


async def user_roles(db: Database, user_id: uuid.UUID) -> list[str]:
    """The user's roles (empty for an unknown user)."""
    return await store.roles_of(db, user_id)
