"""Erasure leaves nothing personal behind: not in any table, not in the event log, not in
Redis. A user plants distinctive strings everywhere the API takes them, their events reach
the streams, they erase their account, and every table and every Redis key is searched."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from propmubi.actors import Actor
from propmubi.db import quote_ident
from propmubi_plugins.auth.kyc import service as kyc
from propmubi_plugins.auth.kyc.models import Decision
from tests.plugins.auth.conftest import AUTH_SETTINGS, last_code
from tests.plugins.auth.test_kyc import PII_KEY, applicant, staff_id

PHONE = "+919845012377"
NATIONAL = PHONE.removeprefix("+91")
NAME = "Quillon Vesterby"
LEGAL_NAME = "Quillon Rhys Vesterby"
PAN = "QVXPB4821K"
DEVICE = "Vesterby-Handset-X41"
CONSENT_AGENT = "QuillonBrowser/7.7"
REASON = "scan shows a different face, lives at 12 Marigold Lane"
PLANTED = (PHONE, NATIONAL, NAME, LEGAL_NAME, PAN, DEVICE, CONSENT_AGENT, REASON)


@pytest.fixture
def auth_settings() -> dict[str, Any]:
    return {**AUTH_SETTINGS, "pii_key_id": "k1", "pii_key": PII_KEY}


async def tables_holding(services: Any, text: str) -> list[str]:
    """Every table of the database with a row whose text (all columns) contains ``text``."""
    names = [r["table_name"] for r in await services.db.fetch(
        "SELECT table_name FROM information_schema.tables "
        "WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' "
        "ORDER BY table_name")]
    found = []
    for name in names:
        hits = await services.db.fetchval(
            f"SELECT count(*) FROM {quote_ident(name)} t "
            "WHERE strpos(lower(t::text), lower(%s)) > 0", (text,))
        if hits:
            found.append(name)
    return found


async def redis_text(services: Any) -> dict[str, str]:
    """Every key of this test's prefix with everything it holds, as text."""
    redis = services.redis
    out: dict[str, str] = {}
    async for key in redis.scan_iter(match=services.keys.pattern(), count=500):
        kind = await redis.type(key)
        kind = kind.decode() if isinstance(kind, bytes) else kind
        if kind == "stream":
            value: Any = await redis.xrange(key)
        elif kind == "hash":
            value = await redis.hgetall(key)
        elif kind == "string":
            value = await redis.get(key)
        elif kind == "list":
            value = await redis.lrange(key, 0, -1)
        elif kind == "set":
            value = await redis.smembers(key)
        elif kind == "zset":
            value = await redis.zrange(key, 0, -1, withscores=True)
        else:
            value = kind
        out[key] = f"{key} {value!r}"
    return out


async def where_is(services: Any, text: str) -> list[str]:
    """Tables and Redis keys still holding ``text``."""
    keys = [k for k, v in (await redis_text(services)).items() if text.lower() in v.lower()]
    return await tables_holding(services, text) + keys


async def test_erasure_leaves_no_planted_string_in_any_table_stream_or_key(client, services,
                                                                           event_bus):
    user_id, headers = await applicant(client, services, phone=PHONE)
    # A second sign-in from a named device (the session keeps the device's name).
    challenge = await (await client.post("/api/v1/auth/otp", json={"phone": PHONE})).json()
    response = await client.post("/api/v1/auth/otp/verify", json={
        "challenge_id": challenge["challenge_id"], "code": last_code(client, PHONE),
        "device": DEVICE})
    assert response.status == 200, await response.text()
    response = await client.patch("/api/v1/me", json={"name": NAME}, headers=headers)
    assert response.status == 200, await response.text()
    response = await client.post(
        "/api/v1/me/consents", headers={**headers, "User-Agent": CONSENT_AGENT},
        json={"purpose": "marketing_sms", "policy_version": "2026-04", "granted": True})
    assert response.status == 201, await response.text()
    response = await client.put("/api/v1/me/kyc/agent", headers=headers, json={
        "legal_name": LEGAL_NAME, "document_kind": "pan", "document_number": PAN})
    assert response.status == 200, await response.text()
    record_id = uuid.UUID((await response.json())["id"])
    reviewer = await staff_id(services)
    await kyc.decide(services.context("auth"), Actor.staff(reviewer), record_id,
                     Decision(verified=False, reason=REASON))
    await event_bus.drain()
    assert await services.redis.xlen(services.keys.event_stream("auth")) == 4
    # The search finds every planted string before the erasure (except the number, which is
    # only ever stored encrypted), so its silence afterwards means something.
    for text in PLANTED:
        if text != PAN:
            assert await where_is(services, text), f"{text!r} was never stored"

    response = await client.delete("/api/v1/me", headers=headers)
    assert response.status == 204, await response.text()
    await event_bus.drain()

    left = {text: where for text in PLANTED if (where := await where_is(services, text))}
    assert left == {}
    phone = await services.db.fetchval("SELECT phone FROM auth_users WHERE id = %s", (user_id,))
    assert phone == f"erased:{user_id}"
