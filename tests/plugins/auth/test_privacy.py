"""The consent ledger, the export of my data and the erasure of my account."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from propmubi.actors import Actor
from propmubi.errors import Forbidden
from propmubi_plugins.auth import privacy, service
from propmubi_plugins.auth.models import ConsentIn
from tests.plugins.auth.conftest import PHONE, bearer, last_code, request_code, sign_in, verify


async def consent(client: Any, tokens: dict[str, Any], **body: Any) -> Any:
    return await client.post("/api/v1/me/consents", json=body, headers=bearer(tokens))


async def outbox_types(services: Any) -> list[str]:
    rows = await services.db.fetch("SELECT type FROM core_outbox ORDER BY position")
    return [r["type"] for r in rows]


async def test_consent_ledger_keeps_every_decision_and_the_latest_is_in_force(client, services):
    tokens = await sign_in(client)
    for granted, version in ((True, "2026-01"), (False, "2026-01"), (True, "2026-04")):
        response = await client.post(
            "/api/v1/me/consents", headers={**bearer(tokens), "User-Agent": "PropApp/3.2"},
            json={"purpose": "marketing_sms", "policy_version": version, "granted": granted})
        assert response.status == 201, await response.text()
    await consent(client, tokens, purpose="terms", policy_version="v1", granted=True)
    body = await (await client.get("/api/v1/me/consents", headers=bearer(tokens))).json()
    assert [(c["purpose"], c["policy_version"], c["granted"]) for c in body["current"]] == [
        ("marketing_sms", "2026-04", True), ("terms", "v1", True)]
    assert len(body["history"]) == 4
    assert body["history"][-1]["granted"] is True and body["history"][-2]["granted"] is False
    assert body["history"][-1]["ip"] == "127.0.0.1"
    assert body["history"][-1]["user_agent"] == "PropApp/3.2"
    assert (await outbox_types(services)).count("auth.consent_recorded") == 4
    payloads = await services.db.fetch(
        "SELECT payload FROM core_outbox WHERE type = 'auth.consent_recorded' ORDER BY position")
    assert payloads[1]["payload"]["granted"] is False
    assert payloads[1]["payload"]["purpose"] == "marketing_sms"


@pytest.mark.parametrize(("body", "field"), [
    ({"purpose": "sell_my_soul", "policy_version": "v1", "granted": True}, "purpose"),
    ({"purpose": "terms", "policy_version": "", "granted": True}, "policy_version"),
    ({"purpose": "terms", "policy_version": "v1; DROP", "granted": True}, "policy_version"),
    ({"purpose": "terms", "policy_version": "v1", "granted": "yes"}, "granted"),
    ({"purpose": "terms", "policy_version": "v1"}, "granted"),
])
async def test_bad_consent_is_422_naming_the_field_and_writes_nothing(client, services, body,
                                                                      field):
    tokens = await sign_in(client)
    response = await consent(client, tokens, **body)
    assert response.status == 422
    problem = await response.json()
    assert any(e["field"] == field for e in problem["errors"]), problem
    assert await services.db.fetchval("SELECT count(*) FROM auth_consents") == 0


async def test_privacy_routes_need_a_signed_in_user(client):
    for method, path in (("GET", "/api/v1/me/consents"), ("POST", "/api/v1/me/consents"),
                         ("GET", "/api/v1/me/export"), ("DELETE", "/api/v1/me"),
                         ("PATCH", "/api/v1/me")):
        response = await client.request(method, path, json={})
        assert response.status == 401, (method, path)


async def test_name_can_be_set_and_removed(client):
    tokens = await sign_in(client)
    response = await client.patch("/api/v1/me", json={"name": "  Asha Rao "},
                                  headers=bearer(tokens))
    assert response.status == 200 and (await response.json())["name"] == "Asha Rao"
    for bad in ("   ", "x" * 101, "tab\there"):
        response = await client.patch("/api/v1/me", json={"name": bad}, headers=bearer(tokens))
        assert response.status == 422, bad
    response = await client.patch("/api/v1/me", json={"name": None}, headers=bearer(tokens))
    assert (await response.json())["name"] is None


async def test_export_holds_everything_about_me_and_nothing_about_others(client):
    tokens = await sign_in(client, device="Pixel 9")
    await sign_in(client, phone="+919800000001")
    await client.patch("/api/v1/me", json={"name": "Asha"}, headers=bearer(tokens))
    await consent(client, tokens, purpose="analytics", policy_version="v2", granted=False)
    response = await client.get("/api/v1/me/export", headers=bearer(tokens))
    assert response.status == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert "attachment" in response.headers["Content-Disposition"]
    data = await response.json()
    assert data["profile"]["phone"] == PHONE and data["profile"]["name"] == "Asha"
    assert data["profile"]["id"] == tokens["user_id"]
    assert data["roles"] == ["buyer"]
    assert [s["device"] for s in data["sessions"]] == ["Pixel 9"]
    assert [(c["purpose"], c["granted"]) for c in data["consents"]] == [("analytics", False)]
    assert data["kyc"] == []
    assert "+919800000001" not in await response.text()


async def test_erasure_anonymises_and_publishes_and_the_number_may_register_again(client,
                                                                                 services):
    tokens = await sign_in(client, device="Pixel 9")
    user_id = tokens["user_id"]
    await client.patch("/api/v1/me", json={"name": "Asha"}, headers=bearer(tokens))
    await consent(client, tokens, purpose="terms", policy_version="v1", granted=True)
    response = await client.delete("/api/v1/me", headers=bearer(tokens))
    assert response.status == 204

    row = await services.db.fetchrow("SELECT * FROM auth_users WHERE id = %s", (user_id,))
    assert row["phone"] == f"erased:{user_id}" and row["name"] is None
    assert row["erased_at"] is not None
    assert await services.db.fetchval(
        "SELECT count(*) FROM auth_user_roles WHERE user_id = %s", (user_id,)) == 0
    assert await services.db.fetchval(
        "SELECT count(*) FROM auth_refresh_tokens WHERE user_id = %s", (user_id,)) == 0
    assert await services.db.fetchval(
        "SELECT count(*) FROM auth_sessions WHERE user_id = %s AND (revoked_at IS NULL "
        "OR device IS NOT NULL)", (user_id,)) == 0
    kept = await services.db.fetchrow("SELECT * FROM auth_consents WHERE user_id = %s",
                                      (user_id,))
    assert kept["granted"] is True and kept["ip"] is None and kept["user_agent"] is None
    erased = await services.db.fetch(
        "SELECT aggregate_id, payload FROM core_outbox WHERE type = 'auth.user_erased'")
    assert [str(e["payload"]["user_id"]) for e in erased] == [user_id]

    # The old tokens are dead for everything that reads the account.
    assert (await client.get("/api/v1/me", headers=bearer(tokens))).status == 401
    assert (await client.get("/api/v1/me/export", headers=bearer(tokens))).status == 401
    assert (await client.delete("/api/v1/me", headers=bearer(tokens))).status == 401
    refresh = await client.post("/api/v1/auth/refresh",
                                json={"refresh_token": tokens["refresh_token"]})
    assert refresh.status == 401
    # The same number signs up afresh as a new user.
    again = await sign_in(client)
    assert again["registered"] is True and again["user_id"] != user_id


async def test_a_pending_code_of_an_erased_number_dies_with_the_account(client):
    tokens = await sign_in(client)
    challenge = await request_code(client)
    code = last_code(client)
    assert (await client.delete("/api/v1/me", headers=bearer(tokens))).status == 204
    assert (await verify(client, challenge["challenge_id"], code)).status == 401


async def test_a_user_may_act_only_on_their_own_account(client, services):
    ctx = services.context("auth")
    asha = await sign_in(client)
    other = await sign_in(client, phone="+919800000001")
    actor = Actor("user", asha["user_id"], {"buyer"})
    other_id = uuid.UUID(other["user_id"])
    consent_in = ConsentIn(purpose="terms", policy_version="v1", granted=True)
    for attempt in (privacy.export(ctx, actor, other_id), privacy.erase(ctx, actor, other_id),
                    privacy.consents(ctx, actor, other_id),
                    privacy.record_consent(ctx, actor, other_id, consent_in, ip=None,
                                           user_agent=None),
                    service.profile(ctx, actor, other_id),
                    service.revoke_session(ctx, actor, other_id,
                                           uuid.UUID(other["session_id"]))):
        with pytest.raises(Forbidden):
            await attempt
    assert await services.db.fetchval(
        "SELECT count(*) FROM auth_users WHERE erased_at IS NOT NULL") == 0
    assert await services.db.fetchval("SELECT count(*) FROM auth_consents") == 0
    assert await services.db.fetchval(
        "SELECT count(*) FROM auth_sessions WHERE revoked_at IS NOT NULL") == 0
    # Their own account is theirs to read.
    assert (await privacy.export(ctx, actor, uuid.UUID(asha["user_id"])))["roles"] == ["buyer"]
