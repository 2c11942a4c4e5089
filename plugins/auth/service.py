"""The auth rules: phone OTP, sign-in sessions with rotating refresh tokens, profiles.

Each web, worker or scheduler process has one :class:`AuthRuntime` (its keys, settings and SMS
provider), created by ``propmubi_startup`` and found again with :func:`runtime`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import secrets
import time
import uuid
from typing import Any

import attrs
import phonenumbers
from prometheus_client import Counter

from propmubi.config import ConfigError, plugin_settings
from propmubi.context import Services
from propmubi.errors import (
    FieldError,
    NotFound,
    ServiceUnavailable,
    TooManyRequests,
    Unauthorized,
    ValidationFailed,
)
from propmubi.events import publish
from propmubi.ids import uuid7
from propmubi.web.ratelimit import RateLimit
from propmubi_plugins.auth import pii, store
from propmubi_plugins.auth.events import RefreshReuseDetected, UserRegistered
from propmubi_plugins.auth.settings import AuthSettings, generate_signing_key
from propmubi_plugins.auth.sms import SmsError
from propmubi_plugins.auth.tokens import KeyRing, hash_refresh_token, new_refresh_token

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


@attrs.define
class AuthRuntime:
    """One process's auth state."""

    services: Services
    settings: AuthSettings
    keyring: KeyRing
    sms: Any
    per_phone: RateLimit
    per_ip: RateLimit
    otp_secret: bytes


_RUNTIMES: dict[int, AuthRuntime] = {}


async def start(services: Services) -> None:
    """Build this process's runtime; refuse to start on a production without secrets."""
    settings: AuthSettings = plugin_settings(services.config, "auth", AuthSettings)
    production = services.config.app.environment == "production"
    for key in ("signing_key", "otp_secret"):
        if production and not getattr(settings, key):
            raise ConfigError(f"plugins.auth.{key}: required in production")
    signing_key = settings.signing_key or generate_signing_key()
    otp_secret = settings.otp_secret or secrets.token_urlsafe(32)
    if not settings.signing_key:
        log.info("auth: no plugins.auth.signing_key; this process signs with a temporary key")
    try:
        keyring = KeyRing(signing_key, settings.previous_public_keys, issuer=settings.issuer,
                          audience=settings.audience, ttl=settings.access_ttl)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    _RUNTIMES[id(services)] = AuthRuntime(
        services=services, settings=settings, keyring=keyring,
        sms=services.plugins.provider(
            "propmubi_sms_providers", settings.sms_provider,
            setting="plugins.auth.sms_provider")(services.config),
        per_phone=RateLimit.parse(settings.otp_per_phone),
        per_ip=RateLimit.parse(settings.otp_per_ip), otp_secret=otp_secret.encode())
    # The keyring of KYC identity numbers (pii.py); last, so the checks above come first.
    pii.start(services, settings)


async def stop(services: Services) -> None:
    """Forget the process's runtime."""
    _RUNTIMES.pop(id(services), None)


def runtime(services: Services) -> AuthRuntime:
    """The runtime of the process that owns ``services``."""
    return _RUNTIMES[id(services)]


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


def _code_hash(rt: AuthRuntime, challenge_id: uuid.UUID, code: str) -> bytes:
    return hmac.new(rt.otp_secret, challenge_id.bytes + code.encode(), hashlib.sha256).digest()


async def _count_sends(rt: AuthRuntime, phone: str, ip: str) -> tuple[int, int, int]:
    """Count this request in the phone's and the IP's windows; (phone n, ip n, ip reset s)."""
    services, now = rt.services, time.time()
    # The phone number is personal data: Redis sees only a keyed hash of it.
    phone_id = hmac.new(rt.otp_secret, phone.encode(), hashlib.sha256).hexdigest()[:32]
    windows = []
    for kind, ident, limit in (("phone", phone_id, rt.per_phone), ("ip", ip, rt.per_ip)):
        start = int(now // limit.period) * limit.period
        windows.append((services.keys.plugin("auth", "otp-sends", kind, ident, str(start)),
                        start + limit.period + 1))
    async with services.redis.pipeline(transaction=False) as pipe:
        for key, expiry in windows:
            pipe.incr(key)
            pipe.expireat(key, expiry)
        results = await pipe.execute()
    return results[0], results[2], max(1, int(windows[1][1] - now))


async def request_otp(rt: AuthRuntime, phone_text: str, ip: str) -> tuple[uuid.UUID, dt.datetime]:
    """Send a code to the phone; ``(challenge id, expiry)``.

    The answer has the same shape whether the number belongs to a user or not, and also when
    the number's own send limit is reached: then no SMS goes out and the challenge id is a
    dead one (so nobody learns from the answer whether a number is being targeted). Only the
    caller's own IP limit is told apart (429), which says nothing about the number.
    """
    settings = rt.settings
    phone = normalise_phone(phone_text, settings.default_region)
    challenge_id = uuid7()
    expires_at = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=settings.otp_ttl)
                  ).replace(microsecond=0)
    phone_count, ip_count, ip_reset = await _count_sends(rt, phone, ip)
    if ip_count > rt.per_ip.count:
        OTP_SENDS.labels("ip_limited").inc()
        raise TooManyRequests("too many code requests from this address",
                              headers={"Retry-After": str(ip_reset)})
    if phone_count > rt.per_phone.count:
        OTP_SENDS.labels("phone_limited").inc()
        log.info("auth: OTP send limit reached for a phone number; no SMS sent")
        return challenge_id, expires_at
    code = f"{secrets.randbelow(10 ** 6):06d}"
    await store.create_challenge(rt.services.db, challenge_id, phone,
                                 _code_hash(rt, challenge_id, code), expires_at)
    minutes = max(1, settings.otp_ttl // 60)
    try:
        await rt.sms.send(phone, f"{code} is your Propmubi code. It expires in {minutes} "
                                 "minutes. Never share it.")
    except SmsError as exc:
        log.error("auth: OTP SMS not sent: %s", exc)
        raise ServiceUnavailable("the code could not be sent; try again shortly",
                                 headers={"Retry-After": "30"}) from None
    OTP_SENDS.labels("sent").inc()
    return challenge_id, expires_at


async def verify_otp(rt: AuthRuntime, challenge_id: uuid.UUID, code: str, device: str | None
                     ) -> tuple[Tokens, bool]:
    """Exchange a right code for tokens, registering the user on first sign-in;
    ``(tokens, registered)``."""
    guess_hash = _code_hash(rt, challenge_id, code)
    async with rt.services.db.transaction() as tx:
        phone = await store.guess(tx, challenge_id, guess_hash, rt.settings.otp_max_attempts)
        if phone is not None:
            user_id, registered = await store.upsert_user(tx, uuid7(), phone)
            roles = await store.roles_of(tx, user_id)
            if registered:
                await publish(tx, UserRegistered(user_id=user_id, roles=roles),
                              actor=str(user_id))
            session_id = uuid7()
            await store.create_session(tx, session_id, user_id, device)
            tokens = await _issue(rt, tx, user_id, session_id, roles)
    # Out of the transaction: a wrong guess's attempt count must commit, not roll back.
    if phone is None:
        OTP_VERIFIES.labels("failed").inc()
        raise InvalidCode("the code is wrong, expired or already used; request a new one")
    OTP_VERIFIES.labels("ok").inc()
    return tokens, registered


# -------------------------------------------------------------------------------------------------
# Tokens and sessions
# -------------------------------------------------------------------------------------------------


async def _issue(rt: AuthRuntime, tx: Any, user_id: uuid.UUID, session_id: uuid.UUID,
                 roles: list[str]) -> Tokens:
    refresh = new_refresh_token()
    refresh_expires = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=rt.settings.refresh_ttl)
                       ).replace(microsecond=0)
    await store.add_refresh_token(tx, uuid7(), session_id, user_id, hash_refresh_token(refresh),
                                  refresh_expires)
    access, _ = rt.keyring.issue(str(user_id), roles, str(session_id))
    return Tokens(access_token=access, token_type="Bearer", expires_in=rt.keyring.ttl,
                  refresh_token=refresh, refresh_expires_at=refresh_expires, user_id=user_id,
                  session_id=session_id)


async def refresh(rt: AuthRuntime, token: str) -> Tokens:
    """Exchange a refresh token for new tokens (rotation). An already-exchanged token revokes
    its whole session: whoever holds the newer one (thief or owner) is signed out."""
    token_hash = hash_refresh_token(token)
    tokens = None
    async with rt.services.db.transaction() as tx:
        row = await store.rotate(tx, token_hash)
        if row is not None:
            await store.touch_session(tx, row["family_id"])
            roles = await store.roles_of(tx, row["user_id"])
            tokens = await _issue(rt, tx, row["user_id"], row["family_id"], roles)
        else:
            seen = await store.find_token(tx, token_hash)
            if seen is not None and seen["rotated"] and await store.revoke_session(
                    tx, seen["family_id"], "refresh token reused"):
                await publish(tx, RefreshReuseDetected(session_id=seen["family_id"],
                                                       user_id=seen["user_id"]))
                tx.after_commit.append(REUSE_DETECTED.inc)
                log.warning("auth.refresh_reuse_detected: session %s of user %s revoked",
                            seen["family_id"], seen["user_id"])
    if tokens is None:
        raise InvalidRefreshToken("the refresh token is not valid; sign in again")
    return tokens


async def logout(rt: AuthRuntime, token: str) -> None:
    """Revoke the session of a refresh token (any token of it, used or not)."""
    async with rt.services.db.transaction() as tx:
        seen = await store.find_token(tx, hash_refresh_token(token))
        if seen is not None:
            await store.revoke_session(tx, seen["family_id"], "logout")


async def revoke_session(rt: AuthRuntime, user_id: uuid.UUID, session_id: uuid.UUID) -> None:
    """Revoke one of the user's own sessions; 404 for anyone else's."""
    async with rt.services.db.transaction() as tx:
        if not await store.revoke_session(tx, session_id, "revoked by user", user_id):
            raise NotFound(f"no session {session_id}")


async def purge_expired(services: Services) -> None:
    """The hourly job: forget codes and refresh tokens a day after they expired (an expired
    refresh token presented later is simply unknown)."""
    while await store.purge_expired(services.db, dt.timedelta(days=1), 5000) >= 5000:
        pass
