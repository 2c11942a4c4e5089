"""The auth rules: phone OTP, sign-in sessions with rotating refresh tokens, profiles, roles.

Every public function takes the plugin's context, then who acts (``None`` for the anonymous
sign-in steps), then ids, then its input; each opens its own transaction. The process's keys,
SMS provider and limits are in ``ctx.state`` (:class:`~propmubi_plugins.auth.state.AuthState`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import ipaddress
import logging
import math
import secrets
import uuid
from typing import Any

import attrs
import phonenumbers
from prometheus_client import Counter

from propmubi.actors import Actor
from propmubi.db import Database, Tx
from propmubi.errors import (
    FieldError,
    Forbidden,
    NotFound,
    ServiceUnavailable,
    TooManyRequests,
    Unauthorized,
    ValidationFailed,
)
from propmubi.ids import uuid7
from propmubi.redis import RedisError, bounded
from propmubi_plugins.auth import store
from propmubi_plugins.auth.events import RefreshReuseDetected, UserRegistered
from propmubi_plugins.auth.models import (
    Me,
    MeUpdate,
    OtpChallenge,
    OtpRequest,
    OtpVerify,
    RefreshIn,
    Session,
    SignedIn,
    Tokens,
)
from propmubi_plugins.auth.state import Ctx
from propmubi_plugins.auth.tokens import hash_refresh_token, new_refresh_token

log = logging.getLogger(__name__)

REUSE_DETECTED = Counter("propmubi_auth_refresh_reuse_detected_total",
                         "Already-exchanged refresh tokens presented again (session revoked).")
OTP_SENDS = Counter("propmubi_auth_otp_requests_total",
                    "OTP requests by outcome (sent, phone_limited, ip_limited).", ["outcome"])
OTP_VERIFIES = Counter("propmubi_auth_otp_verifications_total",
                       "OTP verifications by outcome (ok, failed).", ["outcome"])


class InvalidCode(Unauthorized):
    """Expired, used, unknown, wrong or exhausted: the caller is never told which."""

    slug, title = "otp-invalid", "Invalid or expired code"


class InvalidRefreshToken(Unauthorized):
    """Unknown, expired, revoked or already used."""

    slug, title = "refresh-token-invalid", "Invalid refresh token"


class AccountGone(Unauthorized):
    """The token's user deleted their account."""

    slug, title = "account-erased", "This account no longer exists"


# -------------------------------------------------------------------------------------------------
# Who acts
# -------------------------------------------------------------------------------------------------


def event_actor(actor: Actor | None) -> str | None:
    """What auth's events record as their actor: a user's bare id (what auth has always
    recorded for users), ``staff:<id>`` or ``system:<part>`` otherwise, None for nobody."""
    if actor is None:
        return None
    return actor.id if actor.kind == "user" else actor.ref


def stored_ip(ip: str | None) -> str | None:
    """What auth stores as a client address: the address when it is an IP, else None.

    ``client_ip`` answers ``"unknown"`` for a client without an IP address (a unix socket,
    say), which an ``inet`` column refuses; nothing but an IP is kept anywhere auth records
    where a request came from (consents, KYC reveals).
    """
    if not ip:
        return None
    try:
        return str(ipaddress.ip_address(ip))
    except ValueError:
        return None


def check_own(actor: Actor | None, user_id: uuid.UUID) -> None:
    """Refuse a user acting on another user's account (staff and the system may).

    :raises Forbidden: anonymous, or another user.
    """
    if actor is None or (actor.kind == "user" and actor.user_id != user_id
                         and not actor.is_staff):
        raise Forbidden("a user may only act on their own account")


async def live_profile_in(ctx: Ctx, q: Database | Tx, actor: Actor | None, user_id: uuid.UUID
                          ) -> dict[str, Any]:
    """The user's profile row, read in ``q`` (the caller's transaction, or the pool).

    :raises Forbidden: see :func:`check_own`.
    :raises AccountGone: the account is unknown or erased (a token issued before the erasure
        is still cryptographically valid until it expires).
    """
    check_own(actor, user_id)
    row = await store.profile(q, user_id)
    if row is None or row["erased_at"] is not None:
        raise AccountGone("this account no longer exists; sign in again")
    return row


# -------------------------------------------------------------------------------------------------
# Phone OTP
# -------------------------------------------------------------------------------------------------


def normalise_phone(text: str, region: str) -> str:
    """E.164 form of a phone number; 422 naming ``body.phone`` when it is not a valid one."""
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not phonenumbers.is_valid_number(number):
        raise ValidationFailed([FieldError("body", "phone", "not a valid phone number")])
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _code_hash(ctx: Ctx, challenge_id: uuid.UUID, code: str) -> bytes:
    return hmac.new(ctx.state.otp_secret, challenge_id.bytes + code.encode(),
                    hashlib.sha256).digest()


# Counts one OTP request in its windows, in order, and stops at the first window over its
# limit: a request refused by one limit is not counted by the ones after it. KEYS are the
# windows' counters; ARGV holds each one's limit and absolute expiry. Returns the 1-based
# index of the window that refused the request, or 0.
_COUNT_SENDS = """
for i, key in ipairs(KEYS) do
    local n = redis.call('INCR', key)
    if n == 1 then redis.call('EXPIREAT', key, ARGV[2 * i]) end
    if n > tonumber(ARGV[2 * i - 1]) then return i end
end
return 0
"""
_SENT, _IP_LIMITED, _PHONE_IP_LIMITED, _PHONE_LIMITED = 0, 1, 2, 3


async def _count_sends(ctx: Ctx, phone: str, ip: str) -> tuple[int, int]:
    """Count this request against the caller's address, then (if it passed) against the
    phone from that address, then (if that passed) against the phone from everywhere.

    :returns: which limit refused it (``_SENT`` when none did), and the seconds until the
        address's window resets.
    """
    state, now = ctx.state, ctx.clock.now().timestamp()
    # The phone number is personal data: Redis sees only a keyed hash of it.
    phone_id = hmac.new(state.otp_secret, phone.encode(), hashlib.sha256).hexdigest()[:32]
    keys: list[str] = []
    args: list[int] = []
    for parts, limit in ((("ip", ip), state.per_ip),
                         (("phone-ip", phone_id, ip), state.per_phone),
                         (("phone", phone_id), state.per_phone_total)):
        start = int(now // limit.period) * limit.period
        keys.append(ctx.keys("otp-sends", *parts, str(start)))
        args += [limit.count, start + limit.period + 1]
    # The counts guard against SMS bombing and SMS bills, so they fail closed: without an
    # answer from Redis within redis.record_timeout (or with its circuit open) no code is
    # sent, and the caller gets a prompt 503 rather than a request held for seconds.
    try:
        async with bounded(ctx.redis, "record"):
            refused = await ctx.redis.register_script(_COUNT_SENDS)(keys=keys, args=args)
    except RedisError as exc:
        log.warning("auth: OTP send limits unavailable, no code sent: %s", exc)
        retry = max(1, math.ceil(ctx.config.redis.breaker_cooldown))
        raise ServiceUnavailable("codes cannot be sent right now; try again shortly",
                                 headers={"Retry-After": str(retry)}) from None
    return int(refused), max(1, int(args[1] - now))


async def request_otp(ctx: Ctx, actor: Actor | None, body: OtpRequest, *, ip: str
                      ) -> OtpChallenge:
    """Send a code to the phone.

    The answer has the same shape whether the number belongs to a user or not, and also when
    one of the number's send limits is reached: then no SMS goes out and the challenge id is
    a dead one (so nobody learns from the answer whether a number is being targeted). Only
    the caller's own IP limit is told apart (429), which says nothing about the number.

    Three limits apply, checked in this order, and a request refused by one is not counted
    by the ones after it (so a request refused with 429 uses up nothing of the number's):

    1. ``otp_per_ip``: requests from the caller's address, for any numbers (429).
    2. ``otp_per_phone``: codes sent to this number *from this address*. One address cannot
       use up a number's quota for everyone else: the owner, asking from their own phone or
       network, still gets a code.
    3. ``otp_per_phone_total``: codes sent to this number from every address together, a
       higher ceiling against SMS bombing from many addresses. Reaching it takes many
       addresses (ceiling / ``otp_per_phone`` of them), each spending its own IP quota.

    :param ip: the caller's address, for the per-IP limits (``"unknown"`` when it has none:
        such callers share one).
    """
    settings, state = ctx.settings, ctx.state
    phone = normalise_phone(body.phone, settings.default_region)
    challenge_id = uuid7()
    expires_at = (ctx.clock.now() + dt.timedelta(seconds=settings.otp_ttl)
                  ).replace(microsecond=0)
    refused, ip_reset = await _count_sends(ctx, phone, ip)
    if refused == _IP_LIMITED:
        OTP_SENDS.labels("ip_limited").inc()
        raise TooManyRequests("too many code requests from this address",
                              headers={"Retry-After": str(ip_reset)})
    if refused != _SENT:
        OTP_SENDS.labels("phone_limited").inc()
        log.info("auth: OTP send limit reached for a phone number (%s); no SMS sent",
                 "from this address" if refused == _PHONE_IP_LIMITED else "in all")
        return OtpChallenge(challenge_id=challenge_id, expires_at=expires_at)
    code = f"{secrets.randbelow(10 ** 6):06d}"
    await store.create_challenge(ctx.db, challenge_id, phone,
                                 _code_hash(ctx, challenge_id, code), expires_at)
    minutes = max(1, settings.otp_ttl // 60)
    try:
        await state.sms.send(phone, f"{code} is your Propmubi code. It expires in {minutes} "
                                    "minutes. Never share it.")
    except ServiceUnavailable as exc:  # what an SMS provider raises when nothing was sent
        log.error("auth: OTP SMS not sent: %s", exc)
        raise ServiceUnavailable("the code could not be sent; try again shortly",
                                 headers={"Retry-After": "30"}) from None
    OTP_SENDS.labels("sent").inc()
    return OtpChallenge(challenge_id=challenge_id, expires_at=expires_at)


async def verify_otp(ctx: Ctx, actor: Actor | None, body: OtpVerify) -> SignedIn:
    """Exchange a right code for tokens, registering the user on first sign-in (then
    ``registered`` is true and ``auth.user_registered`` is published, by the new user).

    :raises InvalidCode: wrong, expired, used, unknown or out of guesses.
    """
    guess_hash = _code_hash(ctx, body.challenge_id, body.code)
    async with ctx.db.transaction() as tx:
        phone = await store.guess(tx, body.challenge_id, guess_hash,
                                  ctx.settings.otp_max_attempts)
        if phone is not None:
            user_id, registered = await store.upsert_user(tx, uuid7(), phone)
            roles = await store.roles_of(tx, user_id)
            if registered:
                await ctx.publish(tx, UserRegistered(user_id=user_id, roles=roles),
                                  actor=str(user_id))
            session_id = uuid7()
            await store.create_session(tx, session_id, user_id, body.device)
            tokens = await _issue(ctx, tx, user_id, session_id, roles)
    # Out of the transaction: a wrong guess's attempt count must commit, not roll back.
    if phone is None:
        OTP_VERIFIES.labels("failed").inc()
        raise InvalidCode("the code is wrong, expired or already used; request a new one")
    OTP_VERIFIES.labels("ok").inc()
    return SignedIn(**attrs.asdict(tokens, recurse=False), registered=registered)


# -------------------------------------------------------------------------------------------------
# Tokens and sessions
# -------------------------------------------------------------------------------------------------


async def _issue(ctx: Ctx, tx: Tx, user_id: uuid.UUID, session_id: uuid.UUID,
                 roles: list[str], session_started_at: dt.datetime | None = None) -> Tokens:
    """New tokens of a session; the refresh token never outlives the session's maximum age
    (``plugins.auth.session_max_age`` after ``session_started_at``, default now)."""
    keyring, settings, now = ctx.state.keyring, ctx.settings, ctx.clock.now()
    refresh_token = new_refresh_token()
    session_ends = (session_started_at or now) + dt.timedelta(seconds=settings.session_max_age)
    refresh_expires = min(now + dt.timedelta(seconds=settings.refresh_ttl), session_ends
                          ).replace(microsecond=0)
    await store.add_refresh_token(tx, uuid7(), session_id, user_id,
                                  hash_refresh_token(refresh_token), refresh_expires)
    access, _ = keyring.issue(str(user_id), roles, str(session_id))
    return Tokens(access_token=access, token_type="Bearer", expires_in=keyring.ttl,
                  refresh_token=refresh_token, refresh_expires_at=refresh_expires,
                  user_id=user_id, session_id=session_id)


async def refresh(ctx: Ctx, actor: Actor | None, body: RefreshIn) -> Tokens:
    """Exchange a refresh token for new tokens (rotation). An already-exchanged token revokes
    its whole session (``auth.refresh_reuse_detected``): whoever holds the newer one (thief or
    owner) is signed out.

    Refreshing extends a session, but never past ``plugins.auth.session_max_age`` after its
    sign-in: then every refresh fails and the user signs in again.

    :raises InvalidRefreshToken: unknown, expired, revoked, already used, or of a session
        older than its maximum age.
    """
    token_hash = hash_refresh_token(body.refresh_token)
    max_age = dt.timedelta(seconds=ctx.settings.session_max_age)
    tokens = None
    async with ctx.db.transaction() as tx:
        row = await store.rotate(tx, token_hash, max_age)
        if row is not None:
            await store.touch_session(tx, row["family_id"])
            roles = await store.roles_of(tx, row["user_id"])
            tokens = await _issue(ctx, tx, row["user_id"], row["family_id"], roles,
                                  row["session_started_at"])
        else:
            seen = await store.find_token(tx, token_hash)
            if seen is not None and seen["rotated"] and await store.revoke_session(
                    tx, seen["family_id"], "refresh token reused"):
                await ctx.publish(tx, RefreshReuseDetected(session_id=seen["family_id"],
                                                           user_id=seen["user_id"]),
                                  actor=event_actor(actor))
                tx.after_commit.append(REUSE_DETECTED.inc)
                log.warning("auth.refresh_reuse_detected: session %s of user %s revoked",
                            seen["family_id"], seen["user_id"])
    if tokens is None:
        raise InvalidRefreshToken("the refresh token is not valid; sign in again")
    return tokens


async def logout(ctx: Ctx, actor: Actor | None, body: RefreshIn) -> None:
    """Revoke the session of a refresh token (any token of it, used or not)."""
    async with ctx.db.transaction() as tx:
        seen = await store.find_token(tx, hash_refresh_token(body.refresh_token))
        if seen is not None:
            await store.revoke_session(tx, seen["family_id"], "logout")


async def revoke_session(ctx: Ctx, actor: Actor, user_id: uuid.UUID, session_id: uuid.UUID
                         ) -> None:
    """Revoke one of the user's sessions (the user's own, or any user's by staff).

    :raises NotFound: no live session ``session_id`` of ``user_id``.
    """
    check_own(actor, user_id)
    async with ctx.db.transaction() as tx:
        if not await store.revoke_session(tx, session_id, "revoked by user", user_id):
            raise NotFound(f"no session {session_id}")


async def sessions(ctx: Ctx, actor: Actor, user_id: uuid.UUID, *,
                   current_session: str | None = None) -> list[Session]:
    """The user's live sessions, newest first.

    :param current_session: the id of the caller's own session, marked ``current``.
    """
    check_own(actor, user_id)
    rows = await store.sessions_of(ctx.db, user_id)
    return [Session(**row, current=str(row["id"]) == current_session) for row in rows]


async def purge_expired(ctx: Ctx) -> None:
    """The hourly job: forget codes and refresh tokens a day after they expired (an expired
    refresh token presented later is simply unknown)."""
    while await store.purge_expired(ctx.db, dt.timedelta(days=1), 5000) >= 5000:
        pass


# -------------------------------------------------------------------------------------------------
# Profiles and roles
# -------------------------------------------------------------------------------------------------


async def _me(ctx: Ctx, q: Database | Tx, actor: Actor, user_id: uuid.UUID) -> Me:
    row = await live_profile_in(ctx, q, actor, user_id)
    return Me(id=row["id"], phone=row["phone"], name=row["name"],
              roles=await store.roles_of(q, user_id), created_at=row["created_at"])


async def profile(ctx: Ctx, actor: Actor, user_id: uuid.UUID) -> Me:
    """A live user's profile and roles.

    :raises AccountGone: unknown or erased.
    """
    return await _me(ctx, ctx.db, actor, user_id)


async def update_profile(ctx: Ctx, actor: Actor, user_id: uuid.UUID, body: MeUpdate) -> Me:
    """Change a live user's display name (None removes it); the profile after the change."""
    async with ctx.db.transaction() as tx:
        await live_profile_in(ctx, tx, actor, user_id)
        await store.set_name(tx, user_id, body.name.strip() if body.name else None)
    return await profile(ctx, actor, user_id)


def _check_admin(actor: Actor) -> None:
    if not actor.has_any(["admin"]):
        raise Forbidden("only admins may change a user's roles")


async def _known_user(q: Database | Tx, user_id: uuid.UUID) -> None:
    if await store.profile(q, user_id) is None:
        raise NotFound("no such user")


async def grant_role(ctx: Ctx, actor: Actor, user_id: uuid.UUID, role: str) -> None:
    """Give a user a role (admins and the system only; no-op when held). It applies at the
    user's next token refresh.

    :raises Forbidden: the actor is no admin.
    :raises NotFound: no such user.
    """
    _check_admin(actor)
    async with ctx.db.transaction() as tx:
        await _known_user(tx, user_id)
        await store.grant_role(tx, user_id, role)


async def revoke_role(ctx: Ctx, actor: Actor, user_id: uuid.UUID, role: str) -> bool:
    """Take a role away (admins and the system only); False when it was not held.

    :raises Forbidden: the actor is no admin.
    :raises NotFound: no such user.
    """
    _check_admin(actor)
    async with ctx.db.transaction() as tx:
        await _known_user(tx, user_id)
        return await store.revoke_role(tx, user_id, role)
