"""Events the auth plugin publishes."""

from __future__ import annotations

import uuid

import attrs

from propmubi.events import event


@event("auth.user_registered", version=1, aggregate="user_id")
@attrs.frozen
class UserRegistered:
    """A phone number verified for the first time became a user (with the buyer role)."""

    user_id: uuid.UUID
    roles: list[str]


@event("auth.refresh_reuse_detected", version=1, aggregate="session_id")
@attrs.frozen
class RefreshReuseDetected:
    """An already-exchanged refresh token was presented again: the session was revoked (the
    token was probably stolen)."""

    session_id: uuid.UUID
    user_id: uuid.UUID


EVENT_TYPES: list[type] = [UserRegistered, RefreshReuseDetected]
