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


@event("auth.consent_recorded", version=1, aggregate="user_id")
@attrs.frozen
class ConsentRecorded:
    """A user granted or withdrew consent for a purpose under a policy version."""

    user_id: uuid.UUID
    purpose: str
    policy_version: str
    granted: bool


@event("auth.user_erased", version=1, aggregate="user_id")
@attrs.frozen
class UserErased:
    """A user deleted their account: auth anonymised it; every plugin holding personal data
    of this user must erase or anonymise its own."""

    user_id: uuid.UUID


@event("auth.kyc_status_changed", version=1, aggregate="user_id")
@attrs.frozen
class KycStatusChanged:
    """A KYC record moved between states (not_started, submitted, verified, rejected,
    resubmitted). A rejection's reason is free text about the person: it stays in the KYC
    history (which erasure clears), never in the event."""

    user_id: uuid.UUID
    role: str
    old_status: str
    new_status: str


EVENT_TYPES: list[type] = [UserRegistered, RefreshReuseDetected, ConsentRecorded, UserErased,
                           KycStatusChanged]
