"""The attrs classes of the auth API (request bodies, answers) and of its console forms.

KYC has its own: :mod:`propmubi_plugins.auth.kyc.models`.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any

import attrs
from attrs import validators as v

from propmubi.validation import json_schema
from propmubi_plugins.auth.api import ROLES

#: What a user can consent to. A new purpose is a code change (and a policy text) on purpose:
#: consent to something the platform does not define means nothing.
PURPOSES = ("terms", "privacy_policy", "marketing_sms", "marketing_email", "share_with_builders",
            "analytics")
#: What the console's role form may do.
ROLE_ACTIONS = ("grant", "revoke")


def _one_of(options: Sequence[str], message: str) -> Any:
    """A validator refusing anything but ``options``, with a message fit for a form."""

    def check(instance: Any, attribute: attrs.Attribute, value: str) -> None:
        if value not in options:
            raise ValueError(message)

    return check


# -------------------------------------------------------------------------------------------------
# Sign-in: phone OTP and tokens
# -------------------------------------------------------------------------------------------------


@attrs.frozen
class OtpRequest:
    """A phone number to send a sign-in code to."""

    phone: str = attrs.field(validator=[v.min_len(4), v.max_len(32)], metadata={
        "description": "E.164 (+919812345678) or national form in the default region."})


@attrs.frozen
class OtpChallenge:
    """A code was sent (or, to the caller, looks as if it was)."""

    challenge_id: uuid.UUID
    expires_at: dt.datetime


@attrs.frozen
class OtpVerify:
    """The code received, for its challenge."""

    challenge_id: uuid.UUID
    code: str = attrs.field(validator=v.matches_re(r"[0-9]{6}"))
    device: str | None = attrs.field(default=None, validator=v.optional(v.max_len(100)),
                                     metadata={"description": "A label for the session."})


@attrs.frozen
class Tokens:
    """What a sign-in or a refresh hands the client."""

    access_token: str
    token_type: str
    expires_in: int
    refresh_token: str
    refresh_expires_at: dt.datetime
    user_id: uuid.UUID
    session_id: uuid.UUID


@attrs.frozen
class SignedIn(Tokens):
    """Tokens from a sign-in; ``registered`` is true on the very first one."""

    registered: bool


@attrs.frozen
class RefreshIn:
    """A refresh token."""

    refresh_token: str = attrs.field(validator=[v.min_len(1), v.max_len(200)])


# -------------------------------------------------------------------------------------------------
# My account: profile, sessions, consent
# -------------------------------------------------------------------------------------------------


@attrs.frozen
class Me:
    """The signed-in user."""

    id: uuid.UUID
    phone: str
    name: str | None
    roles: list[str]
    created_at: dt.datetime


@json_schema(**{"x-not-blank": True})  # and printable (str.isprintable): no pattern says it
def _name(instance: Any, attribute: attrs.Attribute, value: str | None) -> None:
    if value is not None and (not value.strip() or not value.isprintable()):
        raise ValueError("must be printable text, not blank")


@attrs.frozen
class MeUpdate:
    """Profile fields the user may change."""

    name: str | None = attrs.field(validator=v.and_(v.optional(v.max_len(100)), _name), metadata={
        "description": "Display name (null removes it)."})


@attrs.frozen
class ConsentIn:
    """A consent decision for one purpose under one version of its policy."""

    purpose: str = attrs.field(validator=v.in_(PURPOSES), metadata={
        "description": "One of " + ", ".join(PURPOSES) + "."})
    policy_version: str = attrs.field(validator=v.matches_re(r"[A-Za-z0-9][A-Za-z0-9._-]{0,31}"),
                                      metadata={"description": "e.g. \"2026-04\" or \"v3.1\"."})
    granted: bool


@attrs.frozen
class Consent:
    """A recorded consent decision."""

    id: int
    purpose: str
    policy_version: str
    granted: bool
    recorded_at: dt.datetime
    ip: str | None
    user_agent: str | None


@attrs.frozen
class Consents:
    """The decision in force per purpose, and every decision, newest first."""

    current: list[Consent]
    history: list[Consent]


@attrs.frozen
class Session:
    """A signed-in device (a refresh-token family)."""

    id: uuid.UUID
    device: str | None
    created_at: dt.datetime
    last_used_at: dt.datetime
    current: bool


@attrs.frozen
class SessionId:
    """A session in a path."""

    id: uuid.UUID


# -------------------------------------------------------------------------------------------------
# Console forms
# -------------------------------------------------------------------------------------------------


@attrs.frozen
class RoleForm:
    """The user page's role form: grant or revoke one API role."""

    role: str = attrs.field(validator=_one_of(ROLES, "choose one of: " + ", ".join(ROLES)))
    action: str = attrs.field(validator=_one_of(ROLE_ACTIONS, "choose Grant or Revoke"))
