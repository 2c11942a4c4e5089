"""The auth JSON API: ``/api/v1/auth/...`` and ``/api/v1/me``."""

from __future__ import annotations

import datetime as dt
import uuid

import attrs
from aiohttp import web
from attrs import validators as v

from propmubi.errors import Unauthorized
from propmubi.web.appkeys import CONFIG, PRINCIPAL, SERVICES
from propmubi.web.auth import ANY_ROLE
from propmubi.web.ratelimit import client_ip
from propmubi.web.routing import Routes
from propmubi_plugins.auth import service, store
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
    roles: list[str]
    created_at: dt.datetime


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


@routes.get("/me", response=Me, roles=[ANY_ROLE])
async def me(request: web.Request) -> Me:
    """The signed-in user's profile and roles."""
    user_id = uuid.UUID(request[PRINCIPAL].subject)
    db = request.app[SERVICES].db
    row = await store.user(db, user_id)
    if row is None:  # deleted since the token was issued
        raise Unauthorized("this account no longer exists")
    return Me(id=row["id"], phone=row["phone"], roles=await store.roles_of(db, user_id),
              created_at=row["created_at"])


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
