"""Access tokens (ES256 JWTs with a ``kid``), the key ring behind them, and refresh tokens.

Verification never trusts the token's header for the algorithm: ES256 is fixed here, so
``alg: none`` and HS256-signed-with-the-public-key tokens are refused. The header's ``kid``
only picks which of our public keys to try; an unknown ``kid`` is refused. The header's
``typ`` must be :data:`ACCESS_TOKEN_TYPE` (what :meth:`KeyRing.issue` sets), so that no other
kind of token signed with the same key passes for an access token, and the ``sub`` must be a
user id (a UUID): anything else is refused as malformed rather than failing later.
"""

from __future__ import annotations

import base64
import collections
import datetime as dt
import hashlib
import json
import secrets
import time
import uuid
from collections.abc import Iterable
from typing import Any

import attrs
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

__all__ = ["ACCESS_TOKEN_TYPE", "ALGORITHM", "InvalidToken", "KeyRing", "hash_refresh_token",
           "new_refresh_token"]

#: The only algorithm accepted (never read from a token).
ALGORITHM = "ES256"
#: The ``typ`` header of access tokens: set by :meth:`KeyRing.issue`, required by verification.
ACCESS_TOKEN_TYPE = "JWT"
_REQUIRED = ["exp", "iat", "sub", "iss", "aud"]
# Clock skew tolerated between our own web processes (seconds).
_LEEWAY = 5
#: How many verified access tokens each process remembers.
VERIFIED_CACHE_SIZE = 10_000


class InvalidToken(Exception):
    """An access token was refused; the message says why (safe to show the caller)."""


def _is_uuid(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def key_id(public_key: ec.EllipticCurvePublicKey) -> str:
    """The RFC 7638 JWK thumbprint: stable for a key, whoever computes it."""
    jwk = ECAlgorithm.to_jwk(public_key, as_dict=True)
    canonical = json.dumps({k: jwk[k] for k in ("crv", "kty", "x", "y")},
                           separators=(",", ":"), sort_keys=True)
    return _b64(hashlib.sha256(canonical.encode()).digest())


def _load_private(pem: str) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise ValueError("plugins.auth.signing_key: expected an EC P-256 private key (PEM)")
    return key


def _load_public(pem: str) -> ec.EllipticCurvePublicKey:
    text = pem.strip()
    if "PRIVATE KEY" in text:  # an old private key given whole: keep only its public half
        return _load_private(text).public_key()
    key = serialization.load_pem_public_key(text.encode())
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise ValueError("plugins.auth.previous_public_keys: expected EC P-256 public keys")
    return key


@attrs.frozen
class Claims:
    """What a verified access token says."""

    subject: str
    roles: tuple[str, ...]
    session: str | None
    expires_at: dt.datetime


class KeyRing:
    """The current signing key and every public key still accepted."""

    def __init__(self, signing_pem: str, previous_pems: Iterable[str], *, issuer: str,
                 audience: str, ttl: int) -> None:
        self._private = _load_private(signing_pem)
        self.kid = key_id(self._private.public_key())
        self.public: dict[str, ec.EllipticCurvePublicKey] = {
            self.kid: self._private.public_key()}
        for pem in previous_pems:
            if pem.strip():
                public = _load_public(pem)
                self.public.setdefault(key_id(public), public)
        self.issuer = issuer
        self.audience = audience
        self.ttl = ttl
        # Verified tokens -> their claims. A client sends the same access token with every
        # request for its whole life, and an ECDSA check costs ~0.3-0.5 ms of CPU; the same
        # string verified once stays valid until its expiry (keys change only with a
        # restart), so it need not be checked again. Bounded, oldest evicted first.
        self._verified: collections.OrderedDict[str, Claims] = collections.OrderedDict()

    def issue(self, subject: str, roles: Iterable[str], session: str | None,
              now: dt.datetime | None = None) -> tuple[str, dt.datetime]:
        """A signed access token and its expiry."""
        now = now or dt.datetime.now(dt.UTC)
        expires = now + dt.timedelta(seconds=self.ttl)
        claims: dict[str, Any] = {
            "iss": self.issuer, "aud": self.audience, "sub": subject,
            "iat": int(now.timestamp()), "exp": int(expires.timestamp()),
            "jti": uuid.uuid4().hex, "roles": sorted(set(roles))}
        if session:
            claims["sid"] = session
        token = jwt.encode(claims, self._private, algorithm=ALGORITHM,
                           headers={"kid": self.kid, "typ": ACCESS_TOKEN_TYPE})
        return token, expires.replace(microsecond=0)

    def verify(self, token: str) -> Claims:
        """Check signature, algorithm, kid, issuer, audience and times.

        :raises InvalidToken: with the reason.
        """
        cached = self._verified.get(token)
        if cached is not None:
            if cached.expires_at.timestamp() + _LEEWAY > time.time():
                return cached
            del self._verified[token]
        claims = self._verify(token)
        self._verified[token] = claims
        if len(self._verified) > VERIFIED_CACHE_SIZE:
            self._verified.popitem(last=False)
        return claims

    def _verify(self, token: str) -> Claims:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise InvalidToken("malformed token") from None
        kid = header.get("kid")
        key = self.public.get(kid) if isinstance(kid, str) else None
        if key is None:
            raise InvalidToken("unknown signing key")
        if header.get("typ") != ACCESS_TOKEN_TYPE:
            raise InvalidToken("not an access token (typ)")
        try:
            claims = jwt.decode(token, key, algorithms=[ALGORITHM], audience=self.audience,
                                issuer=self.issuer, leeway=_LEEWAY,
                                options={"require": _REQUIRED})
        except jwt.ExpiredSignatureError:
            raise InvalidToken("the token has expired") from None
        except jwt.InvalidTokenError as exc:
            raise InvalidToken(str(exc) or "invalid token") from None
        roles, session = claims.get("roles", []), claims.get("sid")
        if (not _is_uuid(claims["sub"]) or not isinstance(roles, list)
                or not (session is None or isinstance(session, str))):
            raise InvalidToken("malformed claims")
        return Claims(subject=claims["sub"], roles=tuple(str(r) for r in roles),
                      session=session,
                      expires_at=dt.datetime.fromtimestamp(claims["exp"], dt.UTC))

    def jwks(self) -> dict[str, Any]:
        """The JSON Web Key Set of every accepted public key (current first)."""
        keys = []
        for kid, public in self.public.items():
            jwk = ECAlgorithm.to_jwk(public, as_dict=True)
            keys.append({**jwk, "kid": kid, "use": "sig", "alg": ALGORITHM})
        return {"keys": keys}


def new_refresh_token() -> str:
    """An opaque refresh token (256 bits from ``secrets``)."""
    return secrets.token_urlsafe(32)


def hash_refresh_token(token: str) -> bytes:
    """What is stored: SHA-256 (the token is random, so no salt or slow hash is needed)."""
    return hashlib.sha256(token.encode()).digest()
