"""The auth plugin's per-process state: signing keys, the SMS provider, OTP limits and secret,
and the keyring of KYC identity numbers; built once by ``propmubi_startup`` into ``ctx.state``.

Every other module of the plugin annotates its context as :data:`Ctx`.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

import attrs

from propmubi.config import ConfigError
from propmubi.context import PluginContext
from propmubi.web.ratelimit import RateLimit
from propmubi_plugins.auth.pii import PiiKeyring, keyring_from_settings
from propmubi_plugins.auth.settings import AuthSettings, generate_signing_key
from propmubi_plugins.auth.tokens import KeyRing

__all__ = ["AuthState", "Ctx", "start", "stop"]

log = logging.getLogger(__name__)


@attrs.define(eq=False)
class AuthState:
    """One process's auth state.

    :ivar keyring: the access-token signing key and every public key still accepted.
    :ivar sms: the SMS provider chosen by ``plugins.auth.sms_provider`` (``notifications``: the
        notifications plugin's SMS providers); its ``send(to, body)`` raises
        :class:`~propmubi.errors.ServiceUnavailable` when the code was not sent.
    :ivar per_phone: codes sent per phone number from one client address
        (``plugins.auth.otp_per_phone``).
    :ivar per_ip: OTP requests per client address (``plugins.auth.otp_per_ip``).
    :ivar per_phone_total: codes sent per phone number from all addresses
        (``plugins.auth.otp_per_phone_total``).
    :ivar otp_secret: the HMAC key of stored codes and of phone numbers in Redis keys.
    :ivar pii: the keyring that seals and opens KYC identity numbers.
    """

    keyring: KeyRing
    sms: Any
    per_phone: RateLimit
    per_ip: RateLimit
    per_phone_total: RateLimit
    otp_secret: bytes
    pii: PiiKeyring


#: The auth plugin's context, as every module of the plugin annotates it.
Ctx = PluginContext[AuthSettings, AuthState]


async def start(ctx: Ctx) -> AuthState:
    """Build this process's state; refuse to start on a production without secrets.

    :raises ConfigError: in production, a missing ``signing_key``, ``otp_secret`` or
        ``pii_key``; anywhere, an unusable key, or an SMS provider that is not offered (the
        notifications plugin not enabled) or refuses to run.
    """
    settings = ctx.settings
    production = ctx.config.app.environment == "production"
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
    sms = ctx.provider("propmubi_sms_providers", settings.sms_provider,
                       setting="plugins.auth.sms_provider")
    return AuthState(
        keyring=keyring, sms=sms, per_phone=RateLimit.parse(settings.otp_per_phone),
        per_ip=RateLimit.parse(settings.otp_per_ip),
        per_phone_total=RateLimit.parse(settings.otp_per_phone_total),
        otp_secret=otp_secret.encode(),
        # Last, so that the checks above come first (as their error messages are tested).
        pii=keyring_from_settings(settings, production))


async def stop(ctx: Ctx) -> None:
    """Release the state: nothing in it holds a connection (the SMS provider belongs to the
    plugin that offers it), so there is nothing to close; the core drops ``ctx`` with the
    process's services."""
