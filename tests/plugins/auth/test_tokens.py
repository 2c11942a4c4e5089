"""Access tokens: what /me accepts and refuses, key rotation, JWKS."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from propmubi_plugins.auth.tokens import key_id
from tests.plugins.auth.conftest import (
    OLD_KEY,
    PHONE,
    SIGNING_KEY,
    STRANGER_KEY,
    auth_state,
    bearer,
    public_pem,
    sign_in,
)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def kid_of(private_pem: str) -> str:
    return key_id(serialization.load_pem_private_key(private_pem.encode(), None).public_key())


def claims(sub: str, **changes) -> dict:
    now = int(time.time())
    base = {"iss": "propmubi", "aud": "propmubi-api", "sub": sub, "iat": now,
            "exp": now + 300, "roles": ["buyer"]}
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def sign(payload: dict, key: str = SIGNING_KEY, kid: str | None = None) -> str:
    return jwt.encode(payload, key, algorithm="ES256", headers={"kid": kid or kid_of(key)})


async def me(client, token: str):
    return await client.get("/api/v1/me", headers=bearer(token))


async def refused(client, token: str) -> str:
    response = await me(client, token)
    assert response.status == 401, await response.text()
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith('Bearer error="invalid_token"')
    return challenge


async def test_me_with_a_valid_token(client):
    tokens = await sign_in(client)
    response = await me(client, tokens["access_token"])
    assert response.status == 200
    body = await response.json()
    assert body["id"] == tokens["user_id"] and body["phone"] == PHONE
    assert body["roles"] == ["buyer"]
    header = jwt.get_unverified_header(tokens["access_token"])
    assert header == {"alg": "ES256", "kid": kid_of(SIGNING_KEY), "typ": "JWT"}


async def test_me_without_a_token(client):
    response = await client.get("/api/v1/me")
    assert response.status == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    response = await client.get("/api/v1/me", headers={"Authorization": "Basic dTpw"})
    assert response.status == 401


async def test_a_self_made_token_signed_with_our_key_works(client):
    tokens = await sign_in(client)
    assert (await me(client, sign(claims(tokens["user_id"])))).status == 200


async def test_alg_none_is_refused(client):
    tokens = await sign_in(client)
    header = b64(json.dumps({"alg": "none", "typ": "JWT", "kid": kid_of(SIGNING_KEY)}).encode())
    payload = b64(json.dumps(claims(tokens["user_id"], roles=["admin"])).encode())
    await refused(client, f"{header}.{payload}.")


async def test_hs256_signed_with_the_public_key_is_refused(client):
    tokens = await sign_in(client)
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid_of(SIGNING_KEY)}).encode())
    payload = b64(json.dumps(claims(tokens["user_id"])).encode())
    secret = public_pem(SIGNING_KEY).encode()
    signature = b64(hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest())
    await refused(client, f"{header}.{payload}.{signature}")


@pytest.mark.parametrize("changes, reason", [
    ({"exp": None}, "exp"),
    ({"iat": None}, "iat"),
    ({"aud": "someone-else"}, "audience"),
    ({"iss": "evil"}, "issuer"),
    ({"exp": int(time.time()) - 60}, "expired"),
])
async def test_bad_claims_are_refused(client, changes, reason):
    tokens = await sign_in(client)
    challenge = await refused(client, sign(claims(tokens["user_id"], **changes)))
    assert reason in challenge.lower()


async def test_a_tampered_payload_is_refused(client):
    tokens = await sign_in(client)
    header, payload, signature = tokens["access_token"].split(".")
    data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    data["roles"] = ["admin"]
    forged = b64(json.dumps(data).encode())
    await refused(client, f"{header}.{forged}.{signature}")


async def test_unknown_kid_and_unknown_key_are_refused(client):
    tokens = await sign_in(client)
    # A key we never published, under its own kid, and under ours.
    challenge = await refused(client, sign(claims(tokens["user_id"]), STRANGER_KEY))
    assert "unknown signing key" in challenge
    await refused(client, sign(claims(tokens["user_id"]), STRANGER_KEY, kid_of(SIGNING_KEY)))
    await refused(client, "not.a.jwt")


async def test_a_previous_key_is_still_accepted(client):
    tokens = await sign_in(client)
    assert (await me(client, sign(claims(tokens["user_id"]), OLD_KEY))).status == 200


async def test_jwks_publishes_every_accepted_public_key(client):
    tokens = await sign_in(client)
    response = await client.get("/api/v1/auth/jwks.json")
    assert response.status == 200
    keys = (await response.json())["keys"]
    assert [k["kid"] for k in keys] == [kid_of(SIGNING_KEY), kid_of(OLD_KEY)]
    for key in keys:
        assert key["kty"] == "EC" and key["crv"] == "P-256"
        assert key["alg"] == "ES256" and key["use"] == "sig"
        assert "d" not in key  # never the private part
    # A client verifies our tokens with the published key.
    verified = jwt.decode(tokens["access_token"], jwt.PyJWK(keys[0]).key, algorithms=["ES256"],
                          audience="propmubi-api")
    assert verified["sub"] == tokens["user_id"]


async def test_a_bad_token_on_a_public_route_is_ignored(client):
    response = await client.get("/api/v1/auth/jwks.json", headers=bearer("garbage"))
    assert response.status == 200


def test_a_remembered_token_is_refused_once_it_expires():
    import datetime as dt

    from propmubi_plugins.auth.settings import generate_signing_key
    from propmubi_plugins.auth.tokens import InvalidToken, KeyRing

    ring = KeyRing(generate_signing_key(), [], issuer="propmubi", audience="propmubi-api",
                   ttl=60)
    # Expired 1.5-2.5 s ago (exp is whole seconds): inside the 5 s leeway, so it verifies,
    # with seconds to spare on a busy machine.
    issued = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=61.5)
    user_1, user_2 = str(uuid.uuid4()), str(uuid.uuid4())
    token, _ = ring.issue(user_1, ["buyer"], "s1", now=issued)
    assert ring.verify(token).subject == user_1
    assert ring.verify(token).subject == user_1  # from memory
    # Once past the leeway it is refused, remembered or not (waited for, within a bound).
    deadline = time.monotonic() + 30
    while True:
        try:
            ring.verify(token)
        except InvalidToken:
            break
        assert time.monotonic() < deadline, "an expired token stayed valid"
        time.sleep(0.1)
    # A tampered copy of a remembered token is a different string: checked, refused.
    fresh, _ = ring.issue(user_2, ["buyer"], "s2")
    ring.verify(fresh)
    head, body, sig = fresh.split(".")
    with pytest.raises(InvalidToken):
        ring.verify(f"{head}.{body}.{sig[:-2]}AA")


async def test_a_signed_token_whose_subject_is_no_uuid_is_refused(client):
    keyring = auth_state(client).keyring
    token, _ = keyring.issue("not-a-uuid", ["buyer"], None)
    challenge = await refused(client, token)
    assert "malformed" in challenge


@pytest.mark.parametrize("typ", ["at+jwt", "refresh", None])
async def test_a_token_of_another_typ_is_refused(client, typ):
    tokens = await sign_in(client)
    token = jwt.encode(claims(tokens["user_id"]), SIGNING_KEY, algorithm="ES256",
                       headers={"kid": kid_of(SIGNING_KEY), "typ": typ})
    assert jwt.get_unverified_header(token).get("typ") == typ
    challenge = await refused(client, token)
    assert "typ" in challenge
