"""The ``fcm`` provider (channel ``push``): Firebase Cloud Messaging's HTTP v1 API.

Settings: ``[plugins.notifications.fcm]`` (:class:`~.settings.FcmSettings`): the project, and
the service account's ``client_email``, ``private_key`` (PEM; ``\\n`` escapes as in the
downloaded JSON file are accepted) and optional ``private_key_id``.

Authorisation (OAuth 2.0 for service accounts): a JWT signed RS256 with the private key,
claims ``iss`` = client_email, ``scope`` = ``https://www.googleapis.com/auth/firebase.messaging``,
``aud`` = ``token_url``, ``iat``, ``exp`` (one hour), is exchanged at ``token_url`` (form
``grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=<jwt>``) for an access
token, kept in the provider (the plugin's state) until :data:`REFRESH_MARGIN` seconds before it
expires, and dropped when FCM answers 401.

Wire format: ``POST {base_url}/v1/projects/{project_id}/messages:send`` with
``Authorization: Bearer <token>`` and ``{"message": {"token", "notification": {"title",
"body"}, "data", "android": {"collapse_key": key}, "apns": {"headers": {"apns-collapse-id":
key}}}}``: the message key is the de-duplication handle (a resend replaces the notification on
the device rather than adding one; APNs takes at most 64 bytes, so a longer key is sent as its
SHA-256), so the provider ``dedupes``: FCM itself may deliver both sends to the device, which
shows one notification. The answer's ``name`` is the receipt.

Errors follow FCM's documented JSON, ``{"error": {"code", "message", "status", "details":
[{"@type": "...FcmError", "errorCode"}]}}``: ``UNREGISTERED``, ``INVALID_ARGUMENT``,
``SENDER_ID_MISMATCH`` and other 4xx are not retryable; ``QUOTA_EXCEEDED`` (429),
``UNAVAILABLE``, ``INTERNAL``, other 5xx, ``THIRD_PARTY_AUTH_ERROR`` and our own credentials
being refused (401, 403 other than a sender mismatch, a failed token exchange) are retryable,
with ``Retry-After`` passed on; no answer after the request was written is ``maybe_sent``.
``UNREGISTERED`` also says the token is dead (``address_gone``): the plugin forgets it.
Nothing secret is logged: no key, JWT or access token.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization

from propmubi.config import ConfigError
from propmubi.services import Clock
from propmubi_plugins.notifications.providers import http
from propmubi_plugins.notifications.providers.base import (
    Channel,
    Message,
    ProviderError,
    Receipt,
)
from propmubi_plugins.notifications.providers.settings import FcmSettings

__all__ = ["FCM_SCOPE", "FcmProvider", "apns_collapse_id", "fcm_factory"]

log = logging.getLogger(__name__)

FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
#: How long the signed assertion is valid (Google accepts at most an hour).
ASSERTION_TTL = 3600
#: A cached access token is renewed this many seconds before it expires.
REFRESH_MARGIN = 300.0
#: FCM error codes that no retry will change.
PERMANENT = frozenset({"UNREGISTERED", "INVALID_ARGUMENT", "SENDER_ID_MISMATCH", "NOT_FOUND"})
#: Refusals saying the token itself is dead (the app was uninstalled, the token expired): the
#: plugin forgets such a token. Not SENDER_ID_MISMATCH (a wrong project_id would make every
#: token look dead) nor INVALID_ARGUMENT (it also means a bad payload).
GONE = frozenset({"UNREGISTERED"})
#: FCM error codes worth another try later.
TRANSIENT = frozenset({"QUOTA_EXCEEDED", "RESOURCE_EXHAUSTED", "UNAVAILABLE", "INTERNAL",
                      "THIRD_PARTY_AUTH_ERROR", "UNAUTHENTICATED", "PERMISSION_DENIED"})
_FCM_ERROR_TYPE = "type.googleapis.com/google.firebase.fcm.v1.FcmError"


def apns_collapse_id(key: str) -> str:
    """The key itself when it fits APNs' 64 bytes, else its SHA-256 (hex)."""
    return key if len(key.encode()) <= 64 else hashlib.sha256(key.encode()).hexdigest()


def fcm_error_code(body: Any) -> str:
    """FCM's ``errorCode`` (details), else the error's ``status``; "" when absent."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return ""
    for detail in error.get("details") or []:
        if isinstance(detail, dict) and detail.get("@type") == _FCM_ERROR_TYPE:
            return str(detail.get("errorCode") or "")
    return str(error.get("status") or "")


class FcmProvider:
    """Sends push notifications through FCM HTTP v1 (see the module's docstring)."""

    name: str = "fcm"
    channel: Channel = "push"
    #: A resend after an ambiguous attempt carries the same collapse key (Android
    #: ``collapse_key``, APNs ``apns-collapse-id``): FCM may transmit both, and the device
    #: replaces the first notification with the second instead of showing two. FCM has no
    #: API to ask whether it accepted a message, so there is no ``lookup``.
    dedupes: bool = True

    def __init__(self, settings: FcmSettings, private_key: Any, clock: Clock) -> None:
        self.settings = settings
        self.clock = clock
        self.url = (f"{settings.base_url.rstrip('/')}/v1/projects/{settings.project_id}"
                    "/messages:send")
        self._private_key = private_key
        self._token = ""
        self._token_expires = 0.0  # clock.monotonic()
        self._token_lock = asyncio.Lock()

    def assertion(self) -> str:
        """The signed JWT exchanged for an access token."""
        now = int(self.clock.now().timestamp())
        claims = {"iss": self.settings.client_email, "scope": FCM_SCOPE,
                  "aud": self.settings.token_url, "iat": now, "exp": now + ASSERTION_TTL}
        headers = {"kid": self.settings.private_key_id} if self.settings.private_key_id else None
        return jwt.encode(claims, self._private_key, algorithm="RS256", headers=headers)

    async def access_token(self) -> str:
        """The cached access token, or a new one when it is missing or about to expire.

        :raises ProviderError: the exchange failed (retryable; the push was not sent).
        """
        async with self._token_lock:
            if self._token and self.clock.monotonic() < self._token_expires:
                return self._token
            try:
                answer = await http.post(
                    self.settings.token_url, provider=f"{self.name}_token",
                    limit=self.settings.timeout,
                    data={"grant_type": JWT_BEARER, "assertion": self.assertion()})
            except ProviderError as exc:  # the push itself was never sent
                raise ProviderError(f"fcm: no access token: {exc}", retryable=True) from None
            body = answer.json()
            token = body.get("access_token") if isinstance(body, dict) else None
            if answer.status != 200 or not isinstance(token, str) or not token:
                error = body.get("error") if isinstance(body, dict) else None
                log.warning("fcm: the token exchange failed: HTTP %d %s", answer.status, error)
                raise ProviderError(f"fcm: the token exchange failed: HTTP {answer.status} "
                                    f"{error or ''}".strip(), retryable=True)
            try:
                lifetime = float(body.get("expires_in", 3600))
            except (TypeError, ValueError):
                lifetime = 3600.0
            margin = min(REFRESH_MARGIN, lifetime / 2)
            self._token, self._token_expires = token, self.clock.monotonic() + lifetime - margin
            return token

    def payload(self, message: Message) -> dict[str, Any]:
        """The request's JSON body."""
        return {"message": {
            "token": message.to,
            "notification": {"title": message.subject or "", "body": message.body},
            "data": dict(message.data),
            "android": {"collapse_key": message.key},
            "apns": {"headers": {"apns-collapse-id": apns_collapse_id(message.key)}},
        }}

    async def send(self, message: Message) -> Receipt:
        """Get a token (cached), POST once; see the module for the outcomes."""
        token = await self.access_token()
        answer = await http.post(self.url, provider=self.name, limit=self.settings.timeout,
                                 headers={"Authorization": f"Bearer {token}"},
                                 json=self.payload(message))
        body = answer.json()
        if answer.status == 200 and isinstance(body, dict):
            log.info("fcm: accepted %s", message.key)
            return Receipt(provider=self.name, provider_message_id=str(body.get("name") or ""))
        code = fcm_error_code(body)
        if answer.status == 401:
            self._token = ""  # expired or revoked early: the next send gets a new one
        if code in PERMANENT:
            retryable = False
        elif code in TRANSIENT:
            retryable = True
        else:
            retryable = answer.status in (401, 403, 429) or answer.status >= 500
        error = body.get("error") if isinstance(body, dict) else None
        text = str(error.get("message") or "")[:200] if isinstance(error, dict) else ""
        log.warning("fcm: %s refused: HTTP %d %s", message.key, answer.status, code)
        raise ProviderError(
            f"fcm: HTTP {answer.status} {code}: {text}".rstrip(": "), retryable=retryable,
            retry_after=http.parse_retry_after(answer.headers.get("Retry-After"),
                                               self.clock.now()),
            address_gone=code in GONE)


def load_private_key(pem: str) -> Any:
    """The RSA private key of a PEM text (``\\n`` escapes accepted).

    :raises ValueError: not a usable RSA private key.
    """
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = serialization.load_pem_private_key(pem.replace("\\n", "\n").encode(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("not an RSA key (RS256 needs one)")
    return key


def fcm_factory(ctx: Any) -> FcmProvider:
    """Build the ``fcm`` provider from ``ctx.settings.fcm``.

    :raises ConfigError: ``project_id``, ``client_email``, ``private_key``, ``base_url`` or
        ``token_url`` is missing, or the key is not an RSA private key in PEM.
    """
    settings: FcmSettings = ctx.settings.fcm
    for key in ("base_url", "project_id", "token_url", "client_email", "private_key"):
        if not getattr(settings, key):
            raise ConfigError(f"plugins.notifications.fcm.{key}: required by the 'fcm' "
                              "provider")
    try:
        private_key = load_private_key(settings.private_key)
    except (ValueError, TypeError) as exc:  # never the key itself in the message
        raise ConfigError(f"plugins.notifications.fcm.private_key: unusable "
                          f"({type(exc).__name__}: {str(exc)[:80]})") from None
    return FcmProvider(settings, private_key, ctx.clock)
