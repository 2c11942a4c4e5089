"""What the plugin keeps of an address, and how it forgets one (docs/notifications.md,
*Privacy*).

- :func:`mask` turns an address into what staff may see once the full one is no longer
  needed: ``+91******2377``, ``q***@example.com``, ``dGhpcy…`` (a push token's first six
  characters). A direct send (``send_now``: sign-in codes, often before there is an account
  to erase) stores only the masked address; an erased user's rows are masked by the
  ``auth.user_erased`` handler. Masking a masked address changes nothing.
- :func:`redact` replaces an address inside free text (a provider's error often quotes the
  number it refused) with its mask, so that error texts, reasons and events never carry it.
- :func:`address_hash` is the keyed hash the dev outbox keeps next to each entry, so that an
  erasure can find the entries sent to the user's addresses without the outbox holding them.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable

__all__ = ["address_hash", "mask", "redact"]

#: A run of digits that may be a phone number (with its ``+``).
_DIGITS = re.compile(r"\+?[0-9]{7,}")
#: Characters of a push token kept by the mask.
TOKEN_KEPT = 6


def mask_phone(phone: str) -> str:
    """``+919845012377`` -> ``+91******2377``: the ``+`` and two digits (the country code or
    its start), the last four (two for a number under ten digits), stars between."""
    digits = phone.removeprefix("+")
    tail = 4 if len(digits) >= 10 else 2
    head = min(2, max(0, len(digits) - tail - 1))
    hidden = len(digits) - head - tail
    if hidden <= 0:
        return "*" * len(phone)
    plus = "+" if phone.startswith("+") else ""
    return f"{plus}{digits[:head]}{'*' * hidden}{digits[-tail:]}"


def mask_email(email: str) -> str:
    """``quillon@example.com`` -> ``q***@example.com`` (the domain stays: it says which
    provider, rarely who)."""
    local, at, domain = email.rpartition("@")
    if not at:
        return f"{email[:1]}***"
    return f"{local[:1]}***@{domain}"


def mask_token(token: str) -> str:
    """A push token's first six characters and an ellipsis."""
    return f"{token[:TOKEN_KEPT]}…"


def mask(channel: str, address: str) -> str:
    """The masked form of an address of ``channel`` (``sms``, ``email``, ``push``)."""
    if channel == "sms":
        return mask_phone(address)
    if channel == "email":
        return mask_email(address)
    return mask_token(address)


def redact(text: str | None, channel: str, addresses: Iterable[str]) -> str | None:
    """``text`` with every occurrence of the addresses replaced by their mask. A phone is
    also found without its ``+``, or as its national number (any run of seven or more of
    its last digits, leading zeros aside)."""
    if not text:
        return text
    for address in addresses:
        if not address:
            continue
        masked = mask(channel, address)
        if channel == "sms":
            digits = address.removeprefix("+")

            def swap(match: re.Match[str], digits: str = digits, masked: str = masked) -> str:
                found = match.group(0).removeprefix("+").lstrip("0")
                return masked if len(found) >= 7 and digits.endswith(found) else match.group(0)

            text = _DIGITS.sub(swap, text)
        else:
            text = re.sub(re.escape(address), masked, text, flags=re.IGNORECASE)
    return text


def address_hash(key: bytes, address: str) -> str:
    """A keyed hash of an address (HMAC-SHA256 under ``key``, 32 hex digits): equal for
    equal addresses (e-mails case-insensitively), useless without the key to anyone who
    would guess numbers."""
    normal = address.strip().lower().encode()
    return hmac.new(key, b"notifications-address:" + normal, hashlib.sha256).hexdigest()[:32]
