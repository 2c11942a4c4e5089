"""Phone OTP: sending, limits, hashing, and every way a verification fails."""

from __future__ import annotations

import asyncio
import uuid

from tests.plugins.auth.conftest import (
    PHONE,
    auth_state,
    last_code,
    request_code,
    sent_count,
    sign_in,
    verify,
)


async def problem(response):
    assert response.status == 401, await response.text()
    body = await response.json()
    return {k: body[k] for k in ("type", "title", "status", "detail")}


async def test_first_sign_in_registers_a_buyer_and_publishes_the_event(client, services):
    first = await sign_in(client, device="Pixel 8")
    assert first["registered"] is True
    assert first["token_type"] == "Bearer" and first["expires_in"] == 900
    again = await sign_in(client)
    assert again["registered"] is False
    assert again["user_id"] == first["user_id"]
    assert again["session_id"] != first["session_id"]

    users = await services.db.fetch("SELECT id, phone FROM auth_users")
    assert [(str(u["id"]), u["phone"]) for u in users] == [(first["user_id"], PHONE)]
    roles = await services.db.fetch("SELECT role FROM auth_user_roles")
    assert [r["role"] for r in roles] == ["buyer"]
    events = await services.db.fetch(
        "SELECT type, aggregate_id, payload FROM core_outbox WHERE publisher = 'auth'")
    assert [(e["type"], e["aggregate_id"]) for e in events] == [
        ("auth.user_registered", first["user_id"])]
    assert events[0]["payload"] == {"user_id": first["user_id"], "roles": ["buyer"]}


async def test_the_event_reaches_the_bus(client, services, event_bus):
    await sign_in(client)
    await event_bus.drain()
    stream = services.keys.event_stream("auth")
    entries = await services.redis.xrange(stream)
    assert any("auth.user_registered" in str(fields) for _, fields in entries)


async def test_phone_numbers_are_normalised_to_e164(client):
    national = await sign_in(client, "098123 45678")
    spaced = await sign_in(client, "+91 98123-45678")
    assert national["user_id"] == spaced["user_id"]


async def test_an_invalid_phone_number_is_a_422_naming_the_field(client):
    for phone in ("12345", "+1 000 000 0000", "not a phone"):
        response = await client.post("/api/v1/auth/otp", json={"phone": phone})
        assert response.status == 422
        body = await response.json()
        assert body["errors"][0]["field"] == "phone"


async def test_codes_are_stored_hashed_and_bound_to_their_challenge(client, services):
    challenge = await request_code(client)
    code = last_code(client)
    row = await services.db.fetchrow("SELECT phone, code_hash FROM auth_otp_challenges")
    assert row["phone"] == PHONE
    assert len(bytes(row["code_hash"])) == 32 and code.encode() not in bytes(row["code_hash"])
    assert challenge["challenge_id"] and challenge["expires_at"]


async def test_a_wrong_guess_then_the_right_code(client):
    challenge = await request_code(client)
    code = last_code(client)
    wrong = "000000" if code != "000000" else "111111"
    await problem(await verify(client, challenge["challenge_id"], wrong))
    assert (await verify(client, challenge["challenge_id"], code)).status == 200


async def test_every_failure_looks_the_same(client, services):
    first = await request_code(client)
    first_code = last_code(client)
    second = await request_code(client)
    second_code = last_code(client)
    failures = []
    # Wrong challenge: the first code on the second challenge.
    if first_code != second_code:
        failures.append(await problem(await verify(client, second["challenge_id"], first_code)))
    # Unknown challenge.
    failures.append(await problem(await verify(client, str(uuid.uuid4()), first_code)))
    # Reused.
    assert (await verify(client, first["challenge_id"], first_code)).status == 200
    failures.append(await problem(await verify(client, first["challenge_id"], first_code)))
    # Expired.
    await services.db.execute(
        "UPDATE auth_otp_challenges SET expires_at = now() - interval '1 second' WHERE id = %s",
        (uuid.UUID(second["challenge_id"]),))
    failures.append(await problem(await verify(client, second["challenge_id"], second_code)))
    assert all(f == failures[0] for f in failures)
    assert failures[0]["type"].endswith("/otp-invalid")


async def test_five_wrong_guesses_burn_the_challenge(client):
    challenge = await request_code(client)
    code = last_code(client)
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(5):
        await problem(await verify(client, challenge["challenge_id"], wrong))
    await problem(await verify(client, challenge["challenge_id"], code))


async def test_concurrent_guesses_share_the_count(client, services):
    challenge = await request_code(client)
    code = last_code(client)
    wrong = [f"{n:06d}" for n in range(20) if f"{n:06d}" != code][:12]
    responses = await asyncio.gather(*(verify(client, challenge["challenge_id"], guess)
                                       for guess in wrong))
    assert {r.status for r in responses} == {401}
    attempts = await services.db.fetchval("SELECT attempts FROM auth_otp_challenges")
    assert attempts == 5
    await problem(await verify(client, challenge["challenge_id"], code))


async def test_a_code_used_twice_at_once_signs_in_once(client):
    challenge = await request_code(client)
    code = last_code(client)
    responses = await asyncio.gather(*(verify(client, challenge["challenge_id"], code)
                                       for _ in range(4)))
    assert sorted(r.status for r in responses) == [200, 401, 401, 401]


async def test_send_limit_per_phone_keeps_the_answer_shape(client):
    challenges = [await request_code(client) for _ in range(3)]
    assert sent_count(client) == 3
    limited = await request_code(client)
    assert limited.keys() == challenges[0].keys()
    assert sent_count(client) == 3  # no SMS
    # The limited challenge is a dead one; the earlier codes still work.
    await problem(await verify(client, limited["challenge_id"], last_code(client)))
    assert (await verify(client, challenges[-1]["challenge_id"], last_code(client))).status \
        == 200


async def test_send_limit_per_ip_is_a_429(client):
    for n in range(auth_state(client).per_ip.count):
        await request_code(client, f"+9198123456{n:02d}")
    response = await client.post("/api/v1/auth/otp", json={"phone": "+919812345699"})
    assert response.status == 429
    assert int(response.headers["Retry-After"]) > 0


async def test_a_shared_address_over_its_limit_waits_minutes_not_an_hour(client):
    # An office or a carrier's NAT is one address for many people: the default per-IP limit
    # admits a busy office's sign-ins, and one that reaches it is back within 5 minutes.
    limit = auth_state(client).per_ip
    assert limit.count >= 20 and limit.period <= 300
    # Until refused (a window may turn over meanwhile: then it takes up to twice as many).
    for n in range(2 * limit.count + 1):
        response = await client.post("/api/v1/auth/otp", json={"phone": f"+91981234{n:04d}"})
        if response.status != 202:
            break
    assert response.status == 429
    assert 1 <= int(response.headers["Retry-After"]) <= 300


async def test_the_purge_job_forgets_long_expired_codes(client, services):
    from propmubi_plugins.auth import service

    old = await request_code(client)
    fresh = await request_code(client)
    await services.db.execute(
        "UPDATE auth_otp_challenges SET expires_at = now() - interval '2 days' WHERE id = %s",
        (uuid.UUID(old["challenge_id"]),))
    await service.purge_expired(services.context("auth"))
    ids = [str(r["id"]) for r in await services.db.fetch("SELECT id FROM auth_otp_challenges")]
    assert ids == [fresh["challenge_id"]]
