"""A stateful model of phone OTP sign-in and refresh-token rotation, checked against the real app.

Hypothesis drives random sequences of steps (request a code, guess it right or wrong, reuse a
challenge, use another challenge's code, refresh, replay a rotated token, log out, call
``/api/v1/me``) and compares every answer, and after every step the database and
``GET /api/v1/me/sessions``, with a model of what must be true.

How it is driven: ``hypothesis.stateful`` is synchronous, the app is not. The test is an
ordinary async test on the ``client`` fixture (real PostgreSQL and Redis, every middleware);
it hands the state machine to a worker thread (``asyncio.to_thread``), and each step submits
its coroutine to the test's event loop with ``run_coroutine_threadsafe`` and waits for it. The
loop is free meanwhile (it only awaits the thread), so the app serves the requests as usual,
and all app state (the console SMS outbox included) is only touched from the loop. Each
example starts from empty auth tables and send counters.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Coroutine
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    invariant,
    multiple,
    precondition,
    rule,
    run_state_machine_as_test,
)

from propmubi.web.appkeys import SERVICES
from tests.plugins.auth.conftest import AUTH_SETTINGS, bearer, console_sms, sms_outbox

PHONES = ("+919812345678", "+919876543210", "+918123456789")
MAX_ATTEMPTS = 5  # the default otp_max_attempts
PER_PHONE = 5  # codes sent per phone number per hour (small, so that examples reach it)
HOUR = 3600
STEP_TIMEOUT = 30.0  # seconds one step may take before the test fails (a hang, not a figure)


@pytest.fixture
def auth_settings() -> dict[str, Any]:
    # The per-IP OTP limit stays out of the way (every request comes from 127.0.0.1); the
    # per-phone one is modelled.
    return {**AUTH_SETTINGS, "otp_per_phone": f"{PER_PHONE}/hour",
            "otp_per_ip": "1000000/hour", "otp_max_attempts": MAX_ATTEMPTS}


@pytest.fixture
def config_overrides(auth_settings: dict[str, Any]) -> dict[str, dict[str, Any]]:
    # The routes' own per-IP limits (verify 30/minute, refresh 60/minute) would refuse a run
    # of hundreds of steps from one address: they are not what this test models.
    return {"plugins": {"settings": {"auth": auth_settings}}, "ratelimit": {"enabled": False}}


# -------------------------------------------------------------------------------------------------
# The model
# -------------------------------------------------------------------------------------------------


@attrs.define(eq=False)
class Challenge:
    id: str
    phone: str
    # None: the phone's send limit was reached, no SMS went out and the id is a dead one.
    code: str | None
    attempts: int = 0
    consumed: bool = False

    @property
    def counts_guesses(self) -> bool:
        """Whether the next guess is compared (and counted)."""
        return self.code is not None and not self.consumed and self.attempts < MAX_ATTEMPTS

    def __repr__(self) -> str:
        return f"Challenge({self.phone[-4:]}, attempts={self.attempts}, consumed={self.consumed})"


@attrs.define(eq=False)
class Session:
    id: str
    user_id: str
    phone: str
    refresh: str  # the current refresh token
    access: str  # the latest access token
    rotated: list[str] = attrs.Factory(list)  # exchanged refresh tokens, oldest first
    revoked: bool = False

    def __repr__(self) -> str:
        return (f"Session({self.phone[-4:]}, rotations={len(self.rotated)}, "
                f"revoked={self.revoked})")


def hour_window() -> int:
    return int(time.time() // HOUR)


# -------------------------------------------------------------------------------------------------
# Talking to the app (coroutines run on the test's loop)
# -------------------------------------------------------------------------------------------------


async def reset(client: Any) -> None:
    """Empty auth tables, per-phone send counters and the SMS outbox."""
    ctx = client.app[SERVICES].context("auth")
    await ctx.db.execute("TRUNCATE auth_users, auth_otp_challenges CASCADE")
    pattern = ctx.keys("otp-sends") + ":*"
    keys = [k async for k in ctx.redis.scan_iter(match=pattern, count=500)]
    if keys:
        await ctx.redis.delete(*keys)
    console_sms(client).outbox.clear()


async def call(client: Any, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
    async with client.request(method, path, **kwargs) as response:
        body = await response.json() if response.status != 204 else None
        return response.status, body


async def request_code(client: Any, phone: str) -> tuple[int, Any, str | None]:
    """POST /auth/otp; (status, body, the code texted, or None when no SMS went out)."""
    console_sms(client).outbox.clear()
    status, body = await call(client, "POST", "/api/v1/auth/otp", json={"phone": phone})
    outbox = sms_outbox(client)
    sent = [text for to, text in outbox if to == phone]
    assert len(sent) <= 1 and len(outbox) == len(sent), list(outbox)
    code = re.match(r"(\d{6}) ", sent[0])[1] if sent else None  # type: ignore[index]
    return status, body, code


async def gather(*coros: Coroutine[Any, Any, Any]) -> list[Any]:
    return await asyncio.gather(*coros)


async def database_state(client: Any) -> tuple[dict[str, tuple[int, bool]], set[str]]:
    """Every challenge's (attempts, consumed), and the revoked sessions."""
    db = client.app[SERVICES].db
    challenges = {str(r["id"]): (r["attempts"], r["consumed"]) for r in await db.fetch(
        "SELECT id, attempts, consumed_at IS NOT NULL AS consumed FROM auth_otp_challenges")}
    revoked = {str(r["id"]) for r in await db.fetch(
        "SELECT id FROM auth_sessions WHERE revoked_at IS NOT NULL")}
    return challenges, revoked


# -------------------------------------------------------------------------------------------------
# The state machine
# -------------------------------------------------------------------------------------------------


class AuthFlows(RuleBasedStateMachine):
    challenges = Bundle("challenges")
    sessions = Bundle("sessions")

    def __init__(self, client: Any, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self.client = client
        self.loop = loop
        self.all_challenges: list[Challenge] = []
        self.all_sessions: list[Session] = []
        self.users: dict[str, str] = {}  # phone -> user id, once signed in
        self.requests: dict[str, int] = {}  # OTP requests per phone (the limit counts them)
        self.first_window: dict[str, int] = {}  # the hour of each phone's first request
        self.run(reset(client))

    def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(STEP_TIMEOUT)

    # --- OTP -------------------------------------------------------------------------------------

    @rule(target=challenges, phone=st.sampled_from(PHONES))
    def request_otp(self, phone: str) -> Challenge:
        before = hour_window()
        status, body, code = self.run(request_code(self.client, phone))
        after = hour_window()
        assert status == 202, body
        n = self.requests[phone] = self.requests.get(phone, 0) + 1
        first = self.first_window.setdefault(phone, before)
        if n <= PER_PHONE:
            # Under the limit: a code is always sent (a new hour only resets the count).
            assert code is not None, f"request {n} for a phone sent no SMS"
        elif first == after:
            # Over the limit within one hour: the same answer, but no SMS and a dead id.
            assert code is None, f"request {n} within the hour sent an SMS"
        uuid.UUID(body["challenge_id"])
        challenge = Challenge(body["challenge_id"], phone, code)
        self.all_challenges.append(challenge)
        return challenge

    def guess(self, challenge: Challenge, code: str) -> Session | None:
        """Verify ``code`` on ``challenge``; check the answer against the model and update it."""
        compared = challenge.counts_guesses
        right = compared and code == challenge.code
        status, body = self.run(call(self.client, "POST", "/api/v1/auth/otp/verify", json={
            "challenge_id": challenge.id, "code": code, "device": challenge.phone[-4:]}))
        if compared:
            challenge.attempts += 1
        if not right:
            assert status == 401, (status, body)
            assert body["type"].endswith("/otp-invalid"), body
            return None
        assert status == 200, (status, body)
        challenge.consumed = True
        assert body["registered"] is (challenge.phone not in self.users), body
        user_id = self.users.setdefault(challenge.phone, body["user_id"])
        assert body["user_id"] == user_id
        assert all(body["session_id"] != s.id for s in self.all_sessions)
        session = Session(body["session_id"], user_id, challenge.phone, body["refresh_token"],
                          body["access_token"])
        self.all_sessions.append(session)
        return session

    @rule(target=sessions, phone=st.sampled_from(PHONES))
    def sign_in(self, phone: str) -> Any:
        """Request a code and verify it at once (the usual client)."""
        challenge = self.request_otp(phone)
        session = self.guess(challenge, challenge.code or "123456")
        return multiple() if session is None else session

    @rule(target=sessions, challenge=challenges)
    def verify_with_the_right_code(self, challenge: Challenge) -> Any:
        # Also on consumed, exhausted and dead challenges: then it must fail.
        session = self.guess(challenge, challenge.code or "123456")
        return multiple() if session is None else session

    @rule(challenge=challenges, n=st.integers(0, 10 ** 6 - 1))
    def verify_with_a_wrong_code(self, challenge: Challenge, n: int) -> None:
        code = f"{n:06d}"
        if code == challenge.code:
            code = f"{(n + 1) % 10 ** 6:06d}"
        assert self.guess(challenge, code) is None

    @rule(target=sessions, challenge=challenges, other=challenges)
    def verify_with_another_challenges_code(self, challenge: Challenge, other: Challenge
                                            ) -> Any:
        # Codes are random: on the rare equal pair the "other" code is simply the right one.
        session = self.guess(challenge, other.code or "000000")
        return multiple() if session is None else session

    @precondition(lambda self: any(c.consumed for c in self.all_challenges))
    @rule(data=st.data())
    def reuse_a_consumed_challenge(self, data: st.DataObject) -> None:
        challenge = data.draw(st.sampled_from([c for c in self.all_challenges if c.consumed]))
        assert challenge.code is not None
        assert self.guess(challenge, challenge.code) is None

    @rule(challenge=challenges)
    def guess_wrong_until_exhausted(self, challenge: Challenge) -> None:
        wrong = "000000" if challenge.code != "000000" else "111111"
        for _ in range(MAX_ATTEMPTS):
            if not challenge.counts_guesses:
                break
            assert self.guess(challenge, wrong) is None

    @precondition(lambda self: any(c.code and not c.consumed and c.attempts >= MAX_ATTEMPTS
                                   for c in self.all_challenges))
    @rule(data=st.data())
    def the_right_code_after_max_wrong_guesses(self, data: st.DataObject) -> None:
        challenge = data.draw(st.sampled_from([
            c for c in self.all_challenges
            if c.code and not c.consumed and c.attempts >= MAX_ATTEMPTS]))
        assert challenge.code is not None
        assert self.guess(challenge, challenge.code) is None

    # --- Refresh tokens, logout, /me -------------------------------------------------------------

    def refresh(self, token: str) -> tuple[int, Any]:
        return self.run(call(self.client, "POST", "/api/v1/auth/refresh",
                             json={"refresh_token": token}))

    @rule(session=sessions, times=st.integers(1, 3))
    def refresh_with_the_current_token(self, session: Session, times: int) -> None:
        for _ in range(times):  # a few rotations in one step: longer chains to replay
            status, body = self.refresh(session.refresh)
            if session.revoked:
                assert status == 401, (status, body)
                assert body["type"].endswith("/refresh-token-invalid"), body
                return
            assert status == 200, (status, body)
            assert (body["session_id"], body["user_id"]) == (session.id, session.user_id)
            assert body["refresh_token"] not in (session.refresh, *session.rotated)
            session.rotated.append(session.refresh)
            session.refresh, session.access = body["refresh_token"], body["access_token"]

    @precondition(lambda self: any(s.rotated for s in self.all_sessions))
    @rule(data=st.data())
    def refresh_with_a_rotated_token(self, data: st.DataObject) -> None:
        session = data.draw(st.sampled_from([s for s in self.all_sessions if s.rotated]))
        token = data.draw(st.sampled_from(session.rotated))
        status, body = self.refresh(token)
        assert status == 401, (status, body)
        session.revoked = True  # reuse revokes the whole family (if it was not already)
        # Whoever holds the family's newest token is signed out too.
        status, body = self.refresh(session.refresh)
        assert status == 401, (status, body)

    @rule(session=sessions, data=st.data())
    def logout(self, session: Session, data: st.DataObject) -> None:
        token = data.draw(st.sampled_from([session.refresh, *session.rotated]))
        status, body = self.run(call(self.client, "POST", "/api/v1/auth/logout",
                                     json={"refresh_token": token}))
        assert status == 204, (status, body)
        session.revoked = True

    @rule(session=sessions)
    def me_with_the_latest_access_token(self, session: Session) -> None:
        # Access tokens are not revocable: they work until they expire, also after a logout
        # or a reuse revoked their session (the documented trade-off; they live 15 minutes).
        status, body = self.run(call(self.client, "GET", "/api/v1/me",
                                     headers=bearer(session.access)))
        assert status == 200, (status, body)
        assert (body["id"], body["phone"], body["roles"]) == (
            session.user_id, session.phone, ["buyer"])

    # --- Invariants ------------------------------------------------------------------------------

    @invariant()
    def the_database_and_the_sessions_api_agree_with_the_model(self) -> None:
        # Each user asks with its newest session's access token (it works even when that
        # session was revoked); all the reads of one check go out together.
        askers = [[s for s in self.all_sessions if s.user_id == user_id][-1]
                  for user_id in self.users.values()]
        (challenges, revoked), *listings = self.run(gather(
            database_state(self.client),
            *(call(self.client, "GET", "/api/v1/me/sessions", headers=bearer(asking.access))
              for asking in askers)))
        # Dead challenges (over the send limit) are never stored; no challenge ever counts
        # more than MAX_ATTEMPTS guesses; consumed ones stay consumed.
        assert challenges == {c.id: (c.attempts, c.consumed) for c in self.all_challenges
                              if c.code is not None}
        assert all(attempts <= MAX_ATTEMPTS for attempts, _ in challenges.values())
        # Revoked families are exactly the model's (logout, reuse), and stay revoked.
        assert revoked == {s.id for s in self.all_sessions if s.revoked}
        # GET /me/sessions lists exactly the user's live sessions.
        for asking, (status, listed) in zip(askers, listings, strict=True):
            assert status == 200, (status, listed)
            live = {s.id for s in self.all_sessions
                    if s.user_id == asking.user_id and not s.revoked}
            assert len(listed) == len(live) and {s["id"] for s in listed} == live, asking
            assert {s["id"] for s in listed if s["current"]} == live & {asking.id}


async def test_otp_and_refresh_flows_match_the_model(client: Any) -> None:
    loop = asyncio.get_running_loop()
    run_settings = settings(max_examples=25, stateful_step_count=30, deadline=None,
                            database=None,
                            suppress_health_check=[HealthCheck.too_slow,
                                                   HealthCheck.filter_too_much])
    await asyncio.to_thread(run_state_machine_as_test, lambda: AuthFlows(client, loop),
                            settings=run_settings)
