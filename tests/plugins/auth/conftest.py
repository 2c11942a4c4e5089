"""Auth tests load the auth plugin (also installed as an entry point), the notifications plugin
(codes go out through its SMS providers: ``console_sms`` unless a test says otherwise) and a
role-guarded test plugin, with known signing keys so that tests can forge tokens of every
kind."""

from __future__ import annotations

import re
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

import propmubi_plugins.auth
import propmubi_plugins.notifications
import tests.refplugin
from propmubi.web.appkeys import SERVICES
from propmubi_plugins.auth import service
from propmubi_plugins.auth.settings import generate_signing_key
from propmubi_plugins.auth.state import AuthState
from tests.plugins.auth import roleplugin

SIGNING_KEY = generate_signing_key()
OLD_KEY = generate_signing_key()
STRANGER_KEY = generate_signing_key()
PHONE = "+919812345678"


def public_pem(private_pem: str) -> str:
    key = serialization.load_pem_private_key(private_pem.encode(), password=None)
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


AUTH_SETTINGS = {"signing_key": SIGNING_KEY, "previous_public_keys": [public_pem(OLD_KEY)],
                 "otp_secret": "test-otp-secret-0123456789abcdef"}


@pytest.fixture
def extra_plugins() -> list[Any]:
    return [tests.refplugin, propmubi_plugins.auth, propmubi_plugins.notifications, roleplugin]


@pytest.fixture
def auth_settings() -> dict[str, Any]:
    """The ``[plugins.auth]`` table of the test (override to change a setting)."""
    return dict(AUTH_SETTINGS)


@pytest.fixture
def notifications_settings() -> dict[str, Any]:
    """The ``[plugins.notifications]`` table of the test: its SMS providers send the codes."""
    return {}


@pytest.fixture
def config_overrides(auth_settings: dict[str, Any], notifications_settings: dict[str, Any]
                     ) -> dict[str, dict[str, Any]]:
    return {"plugins": {"settings": {"auth": auth_settings,
                                     "notifications": notifications_settings}}}


def auth_state(client: Any) -> AuthState:
    """The auth state of the test client's application (its auth context's ``state``)."""
    return client.app[SERVICES].context("auth").state


def console_sms(client: Any) -> Any:
    """The notifications plugin's ``console_sms`` provider (its ``outbox`` keeps messages)."""
    providers = client.app[SERVICES].context("notifications").state.providers["sms"]
    return next(p for p in providers if p.name == "console_sms")


def sms_outbox(client: Any) -> list[tuple[str, str]]:
    """(to, body) of every console SMS, oldest first."""
    return [(m.to, m.body) for m in console_sms(client).outbox]


def last_code(client: Any, phone: str = PHONE) -> str:
    """The code in the last console SMS sent to ``phone``."""
    phone = service.normalise_phone(phone, "IN")
    body = [b for to, b in sms_outbox(client) if to == phone][-1]
    return re.match(r"(\d{6}) ", body)[1]  # type: ignore[index]


def sent_count(client: Any, phone: str = PHONE) -> int:
    """How many console SMS went to ``phone``."""
    return sum(1 for to, _ in sms_outbox(client) if to == phone)


async def request_code(client: Any, phone: str = PHONE) -> dict[str, Any]:
    """POST /auth/otp; the challenge."""
    response = await client.post("/api/v1/auth/otp", json={"phone": phone})
    assert response.status == 202, await response.text()
    return await response.json()


async def verify(client: Any, challenge_id: str, code: str, **extra: Any) -> Any:
    """POST /auth/otp/verify; the response."""
    return await client.post("/api/v1/auth/otp/verify",
                             json={"challenge_id": challenge_id, "code": code, **extra})


async def sign_in(client: Any, phone: str = PHONE, device: str | None = None) -> dict[str, Any]:
    """OTP sign-in end to end; the token response."""
    challenge = await request_code(client, phone)
    response = await verify(client, challenge["challenge_id"], last_code(client, phone),
                            device=device)
    assert response.status == 200, await response.text()
    return await response.json()


def bearer(tokens: dict[str, Any] | str) -> dict[str, str]:
    """The Authorization header for an access token (or a token response)."""
    token = tokens if isinstance(tokens, str) else tokens["access_token"]
    return {"Authorization": f"Bearer {token}"}
