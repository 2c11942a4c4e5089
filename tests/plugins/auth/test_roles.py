"""The core's role guard (``roles=`` on a route) with the auth plugin's tokens."""

from __future__ import annotations

import uuid

from openapi_spec_validator import validate

from propmubi_plugins.auth import store
from tests.plugins.auth.conftest import bearer, sign_in

AGENTS = "/api/v1/roletest/agents"


async def refreshed(client, tokens):
    response = await client.post("/api/v1/auth/refresh",
                                 json={"refresh_token": tokens["refresh_token"]})
    assert response.status == 200
    return await response.json()


async def test_401_without_or_with_a_bad_token(client):
    response = await client.get(AGENTS)
    assert response.status == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    response = await client.get(AGENTS, headers=bearer("x.y.z"))
    assert response.status == 401
    assert response.headers["WWW-Authenticate"].startswith('Bearer error="invalid_token"')


async def test_403_without_the_role_then_200_with_it(client, services):
    tokens = await sign_in(client)
    response = await client.get(AGENTS, headers=bearer(tokens))
    assert response.status == 403
    assert "insufficient_scope" in response.headers["WWW-Authenticate"]
    # Roles travel in the access token: a new grant shows after the next refresh.
    await store.grant_role(services.db, uuid.UUID(tokens["user_id"]), "agent")
    tokens = await refreshed(client, tokens)
    response = await client.get(AGENTS, headers=bearer(tokens))
    assert response.status == 200
    assert (await response.json()) == {"subject": tokens["user_id"]}
    me = await (await client.get("/api/v1/me", headers=bearer(tokens))).json()
    assert me["roles"] == ["agent", "buyer"]


async def test_admin_passes_every_role_check(client, services):
    tokens = await sign_in(client)
    await store.grant_role(services.db, uuid.UUID(tokens["user_id"]), "admin")
    tokens = await refreshed(client, tokens)
    assert (await client.get(AGENTS, headers=bearer(tokens))).status == 200


async def test_the_role_check_comes_before_input_validation(client):
    tokens = await sign_in(client)
    for headers, status in (({}, 401), (bearer(tokens), 403)):
        response = await client.post("/api/v1/roletest/listings", json={"bad": 1},
                                     headers=headers)
        assert response.status == status


async def test_openapi_marks_guarded_routes(client):
    document = await (await client.get("/api/v1/openapi.json")).json()
    validate(document)
    assert document["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
        "description": "An access token from POST /api/v1/auth/otp/verify or /refresh."}
    for path in ("/api/v1/me", "/api/v1/me/sessions", AGENTS):
        operation = document["paths"][path]["get"]
        assert operation["security"] == [{"bearerAuth": []}]
        assert {"401", "403"} <= set(operation["responses"])
    assert "security" not in document["paths"]["/api/v1/auth/otp"]["post"]


async def test_per_subject_rate_limits_see_the_token_subject(client, services):
    tokens = await sign_in(client)
    response = await client.get("/api/v1/me", headers=bearer(tokens))
    assert response.status == 200 and "RateLimit-Limit" in response.headers
    pattern = services.keys.rate_limit("api", f"subject:{tokens['user_id']}", 0)[:-1] + "*"
    assert [key async for key in services.redis.scan_iter(match=pattern)]
