"""Client addresses behind a trusted proxy: per-caller OTP limits, and what is stored when the
address is not an IP (security review findings 1 and 5)."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import make_mocked_request

from propmubi.web.ratelimit import client_ip
from tests.plugins.auth.conftest import PHONE, bearer, last_code, sent_count, sign_in

ATTACKER = "203.0.113.5"
VICTIM = "198.51.100.7"


@pytest.fixture
def config_overrides(auth_settings: dict[str, Any]) -> dict[str, dict[str, Any]]:
    # The numbers below are those of an address limit of 10 (the default is 20 per 5 min).
    return {"plugins": {"settings": {"auth": {**auth_settings, "otp_per_ip": "10/hour"}}},
            "http": {"trust_forwarded": True}}


async def ask(client: Any, ip: str, phone: str = PHONE) -> Any:
    return await client.post("/api/v1/auth/otp", json={"phone": phone},
                             headers={"X-Forwarded-For": ip})


async def test_an_attacker_ip_cannot_stop_a_victim_on_another_ip_getting_a_code(client):
    statuses = [(await ask(client, ATTACKER)).status for _ in range(15)]
    assert statuses == [202] * 10 + [429] * 5  # the attacker's own address limit
    assert sent_count(client) == 3  # at most otp_per_phone codes from one address
    response = await ask(client, VICTIM)
    assert response.status == 202
    assert sent_count(client) == 4  # the owner's request still sends a code
    challenge = await response.json()
    verified = await client.post("/api/v1/auth/otp/verify", json={
        "challenge_id": challenge["challenge_id"], "code": last_code(client)},
        headers={"X-Forwarded-For": VICTIM})
    assert verified.status == 200


async def test_requests_refused_with_429_do_not_count_against_the_phone(client):
    for n in range(10):
        assert (await ask(client, ATTACKER, f"+9198123456{n:02d}")).status == 202
    for _ in range(5):
        assert (await ask(client, ATTACKER)).status == 429
    assert sent_count(client) == 0
    assert (await ask(client, VICTIM)).status == 202
    assert sent_count(client) == 1


async def test_a_phone_has_a_ceiling_across_every_address(client):
    for n in range(4):
        for _ in range(3):
            assert (await ask(client, f"192.0.2.{n + 1}")).status == 202
    assert sent_count(client) == 10  # plugins.auth.otp_per_phone_total, "10/hour"


async def test_a_consent_from_a_non_ip_forwarded_address_stores_null(client, services):
    tokens = await sign_in(client)
    response = await client.post(
        "/api/v1/me/consents", json={"purpose": "terms", "policy_version": "v1",
                                     "granted": True},
        headers={**bearer(tokens), "X-Forwarded-For": "10.0.0.1, garbage"})
    assert response.status == 201, await response.text()
    assert (await response.json())["ip"] is None
    assert await services.db.fetchval("SELECT ip FROM auth_consents") is None


@pytest.mark.parametrize(("forwarded", "remote", "expected"), [
    ("198.51.100.7", "10.0.0.1", "198.51.100.7"),
    ("1.2.3.4, 2001:DB8::0:1", "10.0.0.1", "2001:db8::1"),
    ("1.2.3.4, garbage", "10.0.0.1", "unknown"),
    ("", "10.0.0.1", "10.0.0.1"),
    ("", "fe80::1%eth0", "fe80::1"),
    ("unknown", None, "unknown"),
    ("", "", "unknown"),
])
def test_client_ip_is_always_an_ip_or_unknown(forwarded, remote, expected):
    request = make_mocked_request("GET", "/", headers={"X-Forwarded-For": forwarded})
    request = request.clone(remote=remote) if remote is not None else request.clone(remote="")
    assert client_ip(request, True) == expected
