"""Refresh tokens: rotation, reuse detection, races, logout and sessions."""

from __future__ import annotations

import asyncio
import datetime as dt

from prometheus_client import REGISTRY

from tests.plugins.auth.conftest import bearer, sign_in


async def refresh(client, token: str):
    return await client.post("/api/v1/auth/refresh", json={"refresh_token": token})


def reuse_count() -> float:
    return REGISTRY.get_sample_value("propmubi_auth_refresh_reuse_detected_total") or 0.0


async def test_each_refresh_rotates_the_token(client, services):
    tokens = await sign_in(client)
    response = await refresh(client, tokens["refresh_token"])
    assert response.status == 200
    second = await response.json()
    assert second["refresh_token"] != tokens["refresh_token"]
    assert second["session_id"] == tokens["session_id"]
    assert (await client.get("/api/v1/me", headers=bearer(second))).status == 200
    third = await refresh(client, second["refresh_token"])
    assert third.status == 200
    # Only hashes are stored.
    hashes = await services.db.fetch("SELECT token_hash FROM auth_refresh_tokens")
    assert len(hashes) == 3
    assert all(tokens["refresh_token"].encode() not in bytes(h["token_hash"]) for h in hashes)


async def test_reuse_revokes_the_whole_family(client, services):
    before = reuse_count()
    tokens = await sign_in(client)
    second = await (await refresh(client, tokens["refresh_token"])).json()
    reused = await refresh(client, tokens["refresh_token"])
    assert reused.status == 401
    # The thief's (or the owner's) newer token dies with the family.
    assert (await refresh(client, second["refresh_token"])).status == 401
    assert reuse_count() == before + 1
    events = await services.db.fetch(
        "SELECT type, aggregate_id FROM core_outbox WHERE type = 'auth.refresh_reuse_detected'")
    assert [e["aggregate_id"] for e in events] == [tokens["session_id"]]
    session = await services.db.fetchrow("SELECT revoked_at, revoke_reason FROM auth_sessions")
    assert session["revoked_at"] is not None and "reuse" in session["revoke_reason"]


async def test_unknown_refresh_token(client):
    response = await refresh(client, "no-such-token")
    assert response.status == 401
    assert (await response.json())["type"].endswith("/refresh-token-invalid")


async def test_two_concurrent_refreshes_one_wins(client):
    tokens = await sign_in(client)
    responses = await asyncio.gather(*(refresh(client, tokens["refresh_token"])
                                       for _ in range(2)))
    assert sorted(r.status for r in responses) == [200, 401]


async def test_logout_ends_the_session(client):
    tokens = await sign_in(client)
    response = await client.post("/api/v1/auth/logout",
                                 json={"refresh_token": tokens["refresh_token"]})
    assert response.status == 204
    assert (await refresh(client, tokens["refresh_token"])).status == 401
    # Unknown tokens log out "successfully" too: nothing to learn from the answer.
    response = await client.post("/api/v1/auth/logout", json={"refresh_token": "whatever"})
    assert response.status == 204


async def test_sessions_are_listed_and_revoked(client):
    phone = await sign_in(client, device="phone")
    laptop = await sign_in(client, device="laptop")
    response = await client.get("/api/v1/me/sessions", headers=bearer(laptop))
    assert response.status == 200
    listed = await response.json()
    assert [(s["device"], s["current"]) for s in listed] == [("laptop", True), ("phone", False)]

    response = await client.delete(f"/api/v1/me/sessions/{phone['session_id']}",
                                   headers=bearer(laptop))
    assert response.status == 204
    assert (await refresh(client, phone["refresh_token"])).status == 401
    assert (await refresh(client, laptop["refresh_token"])).status == 200
    again = await client.delete(f"/api/v1/me/sessions/{phone['session_id']}",
                                headers=bearer(laptop))
    assert again.status == 404


async def test_nobody_revokes_someone_elses_session(client):
    mine = await sign_in(client)
    theirs = await sign_in(client, "+919876543210")
    response = await client.delete(f"/api/v1/me/sessions/{theirs['session_id']}",
                                   headers=bearer(mine))
    assert response.status == 404
    assert (await refresh(client, theirs["refresh_token"])).status == 200


async def test_an_expired_refresh_token_is_refused(client, services):
    tokens = await sign_in(client)
    await services.db.execute(
        "UPDATE auth_refresh_tokens SET expires_at = now() - interval '1 second'")
    assert (await refresh(client, tokens["refresh_token"])).status == 401


async def test_a_session_older_than_session_max_age_cannot_refresh(client, services):
    tokens = await sign_in(client)
    await services.db.execute(
        "UPDATE auth_sessions SET created_at = now() - interval '89 days'")
    response = await refresh(client, tokens["refresh_token"])
    assert response.status == 200  # still within plugins.auth.session_max_age (90 days)
    renewed = await response.json()
    started = await services.db.fetchval("SELECT created_at FROM auth_sessions")
    # The new refresh token does not outlive the session.
    expires = dt.datetime.fromisoformat(renewed["refresh_expires_at"])
    assert expires <= started + dt.timedelta(days=90)
    await services.db.execute(
        "UPDATE auth_sessions SET created_at = now() - interval '90 days 1 second'")
    assert (await refresh(client, renewed["refresh_token"])).status == 401
