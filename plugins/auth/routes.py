"""The auth JSON API: ``/api/v1/auth/...`` and ``/api/v1/me``."""

from __future__ import annotations

import uuid

import orjson
from aiohttp import web

from propmubi.actors import Actor
from propmubi.web.appkeys import CONFIG, PRINCIPAL
from propmubi.web.auth import ANY_ROLE, signed_in
from propmubi.web.ratelimit import client_ip
from propmubi.web.routing import Routes
from propmubi_plugins.auth import privacy, service
from propmubi_plugins.auth.models import (
    Consent,
    ConsentIn,
    Consents,
    Me,
    MeUpdate,
    OtpChallenge,
    OtpRequest,
    OtpVerify,
    RefreshIn,
    Session,
    SessionId,
    SignedIn,
    Tokens,
)
from propmubi_plugins.auth.state import Ctx

routes = Routes(tags=["auth"])


def _ip(request: web.Request) -> str:
    return client_ip(request, request.app[CONFIG].http.trust_forwarded)


def _me(request: web.Request) -> tuple[Actor, uuid.UUID]:
    """The signed-in caller as the actor, and their user id."""
    actor = signed_in(request)
    assert actor.user_id is not None  # signed_in only returns users
    return actor, actor.user_id


@routes.post("/auth/otp", body=OtpRequest, response=OtpChallenge, status=202, errors=[503])
async def request_otp(request: web.Request, ctx: Ctx, body: OtpRequest) -> OtpChallenge:
    """Send a 6-digit sign-in code by SMS.

    The answer is the same whether or not the number has an account, and also when the
    number's hourly send limit is reached (then no SMS is sent). Too many requests from one
    address get 429.
    """
    return await service.request_otp(ctx, None, body, ip=_ip(request))


@routes.post("/auth/otp/verify", body=OtpVerify, response=SignedIn, errors=[401],
             rate_limit="30/minute")
async def verify_otp(request: web.Request, ctx: Ctx, body: OtpVerify) -> SignedIn:
    """Exchange the code for tokens; the first sign-in of a number registers it.

    A code works once, within its lifetime, for its own challenge, and a challenge takes at
    most 5 guesses; every failure is the same 401.
    """
    return await service.verify_otp(ctx, None, body)


@routes.post("/auth/refresh", body=RefreshIn, response=Tokens, errors=[401],
             rate_limit="60/minute")
async def refresh(request: web.Request, ctx: Ctx, body: RefreshIn) -> Tokens:
    """Exchange a refresh token for new tokens; each refresh token works once.

    Presenting one again revokes its whole session.
    """
    return await service.refresh(ctx, None, body)


@routes.post("/auth/logout", body=RefreshIn, status=204)
async def logout(request: web.Request, ctx: Ctx, body: RefreshIn) -> None:
    """End the session of a refresh token (its access tokens live until they expire)."""
    await service.logout(ctx, None, body)


@routes.get("/auth/jwks.json", rate_limit=False)
async def jwks(request: web.Request, ctx: Ctx) -> web.Response:
    """The public keys that verify access tokens (JWK Set), current key first."""
    return web.json_response(ctx.state.keyring.jwks(),
                             headers={"Cache-Control": "public, max-age=300"})


@routes.get("/me", response=Me, roles=[ANY_ROLE])
async def me(request: web.Request, ctx: Ctx) -> Me:
    """The signed-in user's profile and roles."""
    actor, user_id = _me(request)
    return await service.profile(ctx, actor, user_id)


@routes.patch("/me", body=MeUpdate, response=Me, roles=[ANY_ROLE])
async def update_me(request: web.Request, ctx: Ctx, body: MeUpdate) -> Me:
    """Change my display name."""
    actor, user_id = _me(request)
    return await service.update_profile(ctx, actor, user_id, body)


@routes.delete("/me", status=204, roles=[ANY_ROLE])
async def erase_me(request: web.Request, ctx: Ctx) -> None:
    """Delete my account: the profile, phone number, roles, sessions, KYC identity numbers and
    where my consents came from are erased at once, and ``auth.user_erased`` tells every other
    part of the platform to erase what it holds. The consent decisions themselves are kept
    (without IP and device) as the record of what was agreed. Tokens stop working at once for
    refresh; an access token already issued is refused by every route that reads the account.
    """
    actor, user_id = _me(request)
    await privacy.erase(ctx, actor, user_id)


@routes.get("/me/export", roles=[ANY_ROLE], content_type="application/json",
            rate_limit="10/hour")
async def export_me(request: web.Request, ctx: Ctx) -> web.Response:
    """Everything the platform's identity service holds about me, as one JSON document
    (profile, roles, every session, the consent ledger, KYC records with masked numbers)."""
    actor, user_id = _me(request)
    data = await privacy.export(ctx, actor, user_id)
    return web.Response(body=orjson.dumps(data), content_type="application/json", headers={
        "Content-Disposition": 'attachment; filename="propmubi-export.json"',
        "Cache-Control": "no-store"})


@routes.post("/me/consents", body=ConsentIn, response=Consent, status=201, roles=[ANY_ROLE])
async def record_consent(request: web.Request, ctx: Ctx, body: ConsentIn) -> Consent:
    """Grant or withdraw consent for a purpose under a policy version (appended to my ledger
    with the time, IP address and user agent; ``auth.consent_recorded`` is published)."""
    actor, user_id = _me(request)
    return await privacy.record_consent(
        ctx, actor, user_id, body, ip=_ip(request),
        user_agent=request.headers.get("User-Agent", "")[:300] or None)


@routes.get("/me/consents", response=Consents, roles=[ANY_ROLE])
async def consents(request: web.Request, ctx: Ctx) -> Consents:
    """My consent decisions: the one in force per purpose, and the whole history."""
    actor, user_id = _me(request)
    return await privacy.consents(ctx, actor, user_id)


@routes.get("/me/sessions", response=list[Session], roles=[ANY_ROLE])
async def sessions(request: web.Request, ctx: Ctx) -> list[Session]:
    """My signed-in devices, newest first; ``current`` marks this token's."""
    actor, user_id = _me(request)
    return await service.sessions(ctx, actor, user_id,
                                  current_session=request[PRINCIPAL].session)


@routes.delete("/me/sessions/{id}", params=SessionId, status=204, roles=[ANY_ROLE],
               errors=[404])
async def revoke_session(request: web.Request, ctx: Ctx, params: SessionId) -> None:
    """Sign one of my devices out (its refresh token stops working at once)."""
    actor, user_id = _me(request)
    await service.revoke_session(ctx, actor, user_id, params.id)
