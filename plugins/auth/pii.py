"""Encryption of identity numbers at rest: AES-256-GCM under named keys, and masking.

Every ciphertext is stored with the id of the key that sealed it and its own random 96-bit
nonce. The associated data binds a ciphertext to the row, the user and the kind of number it
was written for, so a ciphertext copied to another row or kind fails to decrypt instead of
showing someone else's number. Keys of earlier ids keep decrypting after a rotation until
``propmubi auth rotate-pii-key`` has moved every row to the current key.

Each process builds its keyring once at start (:func:`keyring_from_settings`, called by
:func:`propmubi_plugins.auth.state.start`); it lives in ``ctx.state.pii``.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import re
import uuid
from collections.abc import Mapping

import attrs
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from propmubi.config import ConfigError
from propmubi_plugins.auth.settings import AuthSettings

log = logging.getLogger(__name__)

_KEY_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,31}")


class PiiKeyError(Exception):
    """A ciphertext names a key id this process does not have."""


class PiiDecryptError(Exception):
    """A ciphertext, its nonce or its associated data was altered (or the key is wrong)."""


@attrs.frozen
class Sealed:
    """One encrypted value as stored: key id, nonce and ciphertext (with the GCM tag)."""

    key_id: str
    nonce: bytes
    ciphertext: bytes


def check_key_id(key_id: str) -> str:
    """``key_id`` when it is a short identifier; ValueError otherwise."""
    if not isinstance(key_id, str) or not _KEY_ID.fullmatch(key_id):
        raise ValueError(f"{key_id!r} is not a key id (letters, digits, '_', '.', '-'; at most "
                         "32 characters)")
    return key_id


def decode_key(text: str) -> bytes:
    """The 32 bytes of a base64 key; ValueError (never echoing the key) otherwise."""
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("not valid base64 (expected 32 random bytes, base64)") from None
    if len(key) != 32:
        raise ValueError(f"decodes to {len(key)} bytes; AES-256 needs 32")
    return key


def parse_named_key(text: str) -> tuple[str, bytes]:
    """``"id:base64key"`` -> ``(id, key)``; ValueError otherwise."""
    key_id, sep, encoded = text.partition(":")
    if not sep:
        raise ValueError("expected 'id:base64key'")
    return check_key_id(key_id), decode_key(encoded)


def associated_data(record_id: uuid.UUID, user_id: uuid.UUID, kind: str) -> bytes:
    """What a number's ciphertext is bound to: its KYC row, its user and its kind."""
    return f"propmubi/auth_kyc_numbers/v1/{record_id}/{user_id}/{kind}".encode()


class PiiKeyring:
    """The current key (which seals) and the older ones (which still open)."""

    def __init__(self, current_id: str, keys: Mapping[str, bytes]) -> None:
        if current_id not in keys:
            raise ValueError(f"no key for the current key id {current_id!r}")
        self.current_id = current_id
        self._ciphers = {key_id: AESGCM(key) for key_id, key in keys.items()}

    @property
    def key_ids(self) -> list[str]:
        """Every key id this keyring can open, current first."""
        return [self.current_id, *sorted(k for k in self._ciphers if k != self.current_id)]

    def seal(self, plaintext: str, aad: bytes) -> Sealed:
        """Encrypt under the current key with a fresh random nonce."""
        # 96 random bits per message: safe far beyond the number of KYC rows we will hold.
        nonce = os.urandom(12)
        ciphertext = self._ciphers[self.current_id].encrypt(nonce, plaintext.encode(), aad)
        return Sealed(self.current_id, nonce, ciphertext)

    def open(self, sealed: Sealed, aad: bytes) -> str:
        """Decrypt with the key the value names.

        :raises PiiKeyError: the key id is not configured.
        :raises PiiDecryptError: the ciphertext, nonce or associated data does not match.
        """
        cipher = self._ciphers.get(sealed.key_id)
        if cipher is None:
            raise PiiKeyError(
                f"identity number sealed under key id {sealed.key_id!r}, which is not "
                f"configured (have: {', '.join(self.key_ids)}); add it to "
                "plugins.auth.pii_previous_keys as 'id:base64key'")
        try:
            return cipher.decrypt(bytes(sealed.nonce), bytes(sealed.ciphertext), aad).decode()
        except InvalidTag:
            raise PiiDecryptError("identity number failed authentication: the ciphertext or "
                                  "what it is bound to was altered") from None


def keyring_from_settings(settings: AuthSettings, production: bool) -> PiiKeyring:
    """The keyring of ``[plugins.auth]``; production refuses to run without a key.

    Outside production an empty ``pii_key`` gets a random key for this process only (numbers
    written with it are unreadable after a restart; ``propmubi dev`` writes a lasting one).
    """
    if not settings.pii_key:
        if production:
            raise ConfigError("plugins.auth.pii_key: required in production (base64 of 32 "
                              "random bytes)")
        log.info("auth: no plugins.auth.pii_key; this process encrypts identity numbers with "
                 "a temporary key")
        current = os.urandom(32)
    else:
        try:
            current = decode_key(settings.pii_key)
        except ValueError as exc:
            raise ConfigError(f"plugins.auth.pii_key: {exc}") from None
    keys = {settings.pii_key_id: current}
    for item in settings.pii_previous_keys:
        try:
            key_id, key = parse_named_key(item)
        except ValueError as exc:
            raise ConfigError(f"plugins.auth.pii_previous_keys: {exc}") from None
        if key_id == settings.pii_key_id and key != current:
            raise ConfigError(f"plugins.auth.pii_previous_keys: key id {key_id!r} is the "
                              "current pii_key_id with a different key")
        keys.setdefault(key_id, key)
    return PiiKeyring(settings.pii_key_id, keys)


def mask(number: str) -> str:
    """All but the last four characters as ``X``: ``ABCDE1234F`` -> ``XXXXXX234F``."""
    return "X" * max(0, len(number) - 4) + number[-4:]
