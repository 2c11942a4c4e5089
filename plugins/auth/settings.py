"""The ``[plugins.auth]`` settings, and the generator of development signing keys."""

from __future__ import annotations

from typing import Any

import attrs
import phonenumbers

from propmubi.config import dev_secret


def _positive(instance: Any, attribute: attrs.Attribute, value: float) -> None:
    if value <= 0:
        raise ValueError("must be greater than 0")


def _rate(instance: Any, attribute: attrs.Attribute, value: str) -> None:
    from propmubi.web.ratelimit import RateLimit

    RateLimit.parse(value)


def _region(instance: Any, attribute: attrs.Attribute, value: str) -> None:
    if value not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(f"{value!r} is not a region code such as 'IN' or 'GB'")


def generate_signing_key() -> str:
    """A new EC P-256 private key as PKCS#8 PEM (what ``propmubi dev`` writes once)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def generate_pii_key() -> str:
    """A new AES-256 key for identity numbers, base64 (what ``propmubi dev`` writes once)."""
    import base64
    import secrets

    return base64.b64encode(secrets.token_bytes(32)).decode()


def _pii_key_id(instance: Any, attribute: attrs.Attribute, value: str) -> None:
    from propmubi_plugins.auth.pii import check_key_id

    check_key_id(value)


def _pii_key(instance: Any, attribute: attrs.Attribute, value: str) -> None:
    from propmubi_plugins.auth.pii import decode_key

    if value:
        decode_key(value)


def _pii_previous_keys(instance: Any, attribute: attrs.Attribute, value: list[str]) -> None:
    from propmubi_plugins.auth.pii import parse_named_key

    for item in value:
        parse_named_key(item)


def _dev_signing_key() -> dict[str, Any]:
    # Like dev_secret(), but the secret is a PEM key rather than random text.
    return {"secret": True, "generate": generate_signing_key}


@attrs.frozen
class AuthSettings:
    """Phone OTP, tokens and SMS settings. Empty secrets are generated per process outside
    production (tokens then die with the process); production refuses to start without them."""

    # Phone numbers without a +country prefix are read in this region.
    default_region: str = attrs.field(default="IN", validator=_region)
    # HMAC key of stored OTP codes and of phone numbers in Redis keys.
    otp_secret: str = attrs.field(default="", metadata=dev_secret())
    otp_ttl: int = attrs.field(default=300, validator=_positive)
    otp_max_attempts: int = attrs.field(default=5, validator=_positive)
    # OTP requests per client IP; codes sent to one phone number from one client IP; and
    # codes sent to one phone number from all addresses together (the ceiling). The per-IP
    # window is short: many people share an address (an office, a carrier's NAT), and one
    # that reaches the limit waits at most the window (5 minutes), not an hour.
    otp_per_phone: str = attrs.field(default="3/hour", validator=_rate)
    otp_per_ip: str = attrs.field(default="20/300s", validator=_rate)
    otp_per_phone_total: str = attrs.field(default="10/hour", validator=_rate)

    # The current ES256 signing key (PKCS#8 PEM), and older public keys still accepted.
    signing_key: str = attrs.field(default="", metadata=_dev_signing_key())
    previous_public_keys: list[str] = attrs.Factory(list)
    issuer: str = "propmubi"
    audience: str = "propmubi-api"
    access_ttl: int = attrs.field(default=900, validator=_positive)
    refresh_ttl: int = attrs.field(default=30 * 86400, validator=_positive)
    # Seconds a sign-in session lives in all, however often it is refreshed; then refresh
    # fails (401) and the user signs in again.
    session_max_age: int = attrs.field(default=90 * 86400, validator=_positive)

    # A propmubi_sms_providers name. "notifications" (the notifications plugin, which must be
    # enabled) sends codes at once through its SMS providers, plugins.notifications.
    # sms_providers: the primary, then the fallbacks (console_sms in development).
    sms_provider: str = "notifications"
    # The DLT template id registered for the code's message (India); empty elsewhere.
    sms_template_id: str = ""

    # Identity numbers (KYC) are sealed with AES-256-GCM under the current key: its id (stored
    # next to every ciphertext) and the key itself (base64 of 32 bytes). Keys of earlier ids
    # still decrypt, as "id:base64key" strings, until `propmubi auth rotate-pii-key` has
    # re-encrypted every number under the current one.
    pii_key_id: str = attrs.field(default="k1", validator=_pii_key_id)
    pii_key: str = attrs.field(default="", validator=_pii_key,
                               metadata={"secret": True, "generate": generate_pii_key})
    pii_previous_keys: list[str] = attrs.field(factory=list, validator=_pii_previous_keys,
                                               metadata={"secret": True})
