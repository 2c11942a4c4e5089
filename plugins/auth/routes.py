"""The auth JSON API: ``/api/v1/auth/...`` and ``/api/v1/me``."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import attrs
import orjson
from aiohttp import web
from attrs import validators as v

from propmubi.web.appkeys import CONFIG, PRINCIPAL, SERVICES
from propmubi.web.auth import ANY_ROLE
from propmubi.web.ratelimit import client_ip
from propmubi.web.routing import Routes
from propmubi_plugins.auth import privacy, service, store
from propmubi_plugins.auth.service import Tokens

routes = Routes(tags=["auth"])


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
class SignedIn(Tokens):
    """Tokens from a sign-in; ``registered`` is true on the very first one."""

    registered: bool


@attrs.frozen
class RefreshIn:
    """A refresh token."""

    refresh_token: str = attrs.field(validator=[v.min_len(1), v.max_len(200)])


@attrs.frozen
class Me:
    """The signed-in user."""

    id: uuid.UUID
    phone: str
    name: str | None
    roles: list[str]
    created_at: dt.datetime


def _name(instance: Any, attribute: attrs.Attribute, value: str | None) -> None:
    if value is not None and (not value.strip() or not value.isprintable()):
        raise ValueError("must be printable text, not blank")


@attrs.frozen
class MeUpdate:
    """Profile fields the user may change."""

    name: str | None = attrs.field(validator=[v.optional(v.max_len(100)), _name], metadata={
        "description": "Display name (null removes it)."})


@attrs.frozen
class ConsentIn:
    """A consent decision for one purpose under one version of its policy."""

    purpose: str = attrs.field(validator=v.in_(privacy.PURPOSES), metadata={
        "description": "One of " + ", ".join(privacy.PURPOSES) + "."})
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
    id: uuid.UUID


def _rt(request: web.Request) -> service.AuthRuntime:
    return service.runtime(request.app[SERVICES])


@routes.post("/auth/otp", body=OtpRequest, response=OtpChallenge, status=202, errors=[503])
async def request_otp(request: web.Request, body: OtpRequest) -> OtpChallenge:
    """Send a 6-digit sign-in code by SMS.

    The answer is the same whether or not the number has an account, and also when the
    number's hourly send limit is reached (then no SMS is sent). Too many requests from one
    address get 429.
    """
    ip = client_ip(request, request.app[CONFIG].http.trust_forwarded)
    challenge_id, expires_at = await service.request_otp(_rt(request), body.phone, ip)
    return OtpChallenge(challenge_id=challenge_id, expires_at=expires_at)


@routes.post("/auth/otp/verify", body=OtpVerify, response=SignedIn, errors=[401],
             rate_limit="30/minute")
async def verify_otp(request: web.Request, body: OtpVerify) -> SignedIn:
    """Exchange the code for tokens; the first sign-in of a number registers it.

    A code works once, within its lifetime, for its own challenge, and a challenge takes at
    most 5 guesses; every failure is the same 401.
    """
    tokens, registered = await service.verify_otp(_rt(request), body.challenge_id, body.code,
                                                  body.device)
    return SignedIn(**attrs.asdict(tokens, recurse=False), registered=registered)


@routes.post("/auth/refresh", body=RefreshIn, response=Tokens, errors=[401],
             rate_limit="60/minute")
async def refresh(request: web.Request, body: RefreshIn) -> Tokens:
    """Exchange a refresh token for new tokens; each refresh token works once.

    Presenting one again revokes its whole session.
    """
    return await service.refresh(_rt(request), body.refresh_token)


@routes.post("/auth/logout", body=RefreshIn, status=204)
async def logout(request: web.Request, body: RefreshIn) -> None:
    """End the session of a refresh token (its access tokens live until they expire)."""
    await service.logout(_rt(request), body.refresh_token)


@routes.get("/auth/jwks.json", rate_limit=False)
async def jwks(request: web.Request) -> web.Response:
    """The public keys that verify access tokens (JWK Set), current key first."""
    data = _rt(request).keyring.jwks()
    return web.json_response(data, headers={"Cache-Control": "public, max-age=300"})


def _me(request: web.Request) -> uuid.UUID:
    return uuid.UUID(request[PRINCIPAL].subject)


async def _profile(request: web.Request, user_id: uuid.UUID) -> Me:
    db = request.app[SERVICES].db
    row = await privacy.live_profile(db, user_id)
    return Me(id=row["id"], phone=row["phone"], name=row["name"],
              roles=await store.roles_of(db, user_id), created_at=row["created_at"])


@routes.get("/me", response=Me, roles=[ANY_ROLE])
async def me(request: web.Request) -> Me:
    """The signed-in user's profile and roles."""
    return await _profile(request, _me(request))


@routes.patch("/me", body=MeUpdate, response=Me, roles=[ANY_ROLE])
async def update_me(request: web.Request, body: MeUpdate) -> Me:
    """Change my display name."""
    user_id = _me(request)
    async with request.app[SERVICES].db.transaction() as tx:
        await privacy.live_profile(tx, user_id)
        await store.set_name(tx, user_id, body.name.strip() if body.name else None)
    return await _profile(request, user_id)


@routes.delete("/me", status=204, roles=[ANY_ROLE])
async def erase_me(request: web.Request) -> None:
    """Delete my account: the profile, phone number, roles, sessions, KYC identity numbers and
    where my consents came from are erased at once, and ``auth.user_erased`` tells every other
    part of the platform to erase what it holds. The consent decisions themselves are kept
    (without IP and device) as the record of what was agreed. Tokens stop working at once for
    refresh; an access token already issued is refused by every route that reads the account.
    """
    await privacy.erase(request.app[SERVICES], _me(request))


@routes.get("/me/export", roles=[ANY_ROLE], content_type="application/json",
            rate_limit="10/hour")
async def export_me(request: web.Request) -> web.Response:
    """Everything the platform's identity service holds about me, as one JSON document
    (profile, roles, every session, the consent ledger, KYC records with masked numbers)."""
    data = await privacy.export(request.app[SERVICES], _me(request))
    return web.Response(body=orjson.dumps(data), content_type="application/json", headers={
        "Content-Disposition": 'attachment; filename="propmubi-export.json"',
        "Cache-Control": "no-store"})


@routes.post("/me/consents", body=ConsentIn, response=Consent, status=201, roles=[ANY_ROLE])
async def record_consent(request: web.Request, body: ConsentIn) -> Consent:
    """Grant or withdraw consent for a purpose under a policy version (appended to my ledger
    with the time, IP address and user agent; ``auth.consent_recorded`` is published)."""
    ip = client_ip(request, request.app[CONFIG].http.trust_forwarded)
    row = await privacy.record_consent(request.app[SERVICES], _me(request), body.purpose,
                                       body.policy_version, body.granted, ip,
                                       request.headers.get("User-Agent", "")[:300] or None)
    return Consent(**row)


@routes.get("/me/consents", response=Consents, roles=[ANY_ROLE])
async def consents(request: web.Request) -> Consents:
    """My consent decisions: the one in force per purpose, and the whole history."""
    user_id = _me(request)
    db = request.app[SERVICES].db
    await privacy.live_profile(db, user_id)
    return Consents(current=[Consent(**r) for r in await store.consents_in_force(db, user_id)],
                    history=[Consent(**r) for r in await store.consent_history(db, user_id)])


@routes.get("/me/sessions", response=list[Session], roles=[ANY_ROLE])
async def sessions(request: web.Request) -> list[Session]:
    """My signed-in devices, newest first; ``current`` marks this token's."""
    principal = request[PRINCIPAL]
    rows = await store.sessions_of(request.app[SERVICES].db, uuid.UUID(principal.subject))
    return [Session(**row, current=str(row["id"]) == principal.session) for row in rows]


@routes.delete("/me/sessions/{id}", params=SessionId, status=204, roles=[ANY_ROLE],
               errors=[404])
async def revoke_session(request: web.Request, params: SessionId) -> None:
    """Sign one of my devices out (its refresh token stops working at once)."""
    await service.revoke_session(_rt(request), uuid.UUID(request[PRINCIPAL].subject),
                                 params.id)
