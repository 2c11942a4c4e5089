"""A Redis that hangs (SIGSTOP: connections are accepted, nothing is answered) must not hold
requests for the client's socket timeout: rate limits and caches give up within
``redis.fast_timeout`` and go on without Redis, OTP sends and console sessions answer 503
within ``redis.record_timeout``, and the circuit breaker then stops trying at all.

The test runs its own redis-server, so pausing it disturbs no other test.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from propmubi.config import RedisSection
from propmubi.embedded import EmbeddedRedis
from propmubi.redis import RedisUnavailable, bounded, breaker_of, create_redis
from propmubi.testing import csrf_of, make_config
from propmubi.web.appkeys import SERVICES
from tests.plugins.auth.conftest import AUTH_SETTINGS, bearer, sign_in

SEARCH = "/api/v1/projects/search?q=tower"
# Far below the old cost of a hung Redis (5 s per Redis call, so 5-10 s per request), and
# generous for a loaded machine: the bounds are 0.1 s (caches, limits) and 1 s (records).
BATCH_BOUND = 3.0


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(tmp_path / "redis", persistent=False)
    server.start()
    try:
        yield server
    finally:
        assert server.proc is not None
        with contextlib.suppress(ProcessLookupError):
            os.kill(server.proc.pid, signal.SIGCONT)  # a stopped server ignores SIGTERM
        server.stop()


@contextlib.contextmanager
def paused(server: EmbeddedRedis) -> Iterator[None]:
    """SIGSTOP the server for the block; SIGCONT whatever happens."""
    assert server.proc is not None
    os.kill(server.proc.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(server.proc.pid, signal.SIGCONT)


@pytest.fixture
def config(database_url: str, own_redis: EmbeddedRedis, redis_prefix: str) -> Any:
    # Production's bounds (make_config's are generous for loaded machines); the breaker's
    # cooldown is short so the test sees it close again without a long wait.
    return make_config(database_url, own_redis.url(), redis_prefix,
                       plugins={"settings": {"auth": dict(AUTH_SETTINGS)}},
                       redis={"url": own_redis.url(), "key_prefix": redis_prefix,
                              "fast_timeout": 0.1, "record_timeout": 1.0,
                              "breaker_cooldown": 2.0})


async def test_requests_are_answered_promptly_while_redis_hangs(client, own_redis):
    tokens = await sign_in(client)
    page = await client.get("/console/login")  # a pre-login console session, with its form
    token = csrf_of(await page.text())
    assert (await client.get("/api/v1/me", headers=bearer(tokens))).status == 200
    assert (await client.get(SEARCH)).status == 200
    breaker = breaker_of(client.app[SERVICES].redis)

    with paused(own_redis):
        started = time.monotonic()
        me = await client.get("/api/v1/me", headers=bearer(tokens))
        found = await client.get(SEARCH)
        otp = await client.post("/api/v1/auth/otp", json={"phone": "+919812345600"})
        console = await client.post("/console/login", allow_redirects=False, data={
            "csrf_token": token, "email": "sam@example.com", "password": "x", "next": ""})
        elapsed = time.monotonic() - started
        # Limits and caches failed open: the API answered from PostgreSQL, unlimited.
        assert me.status == 200, await me.text()
        assert "RateLimit-Limit" not in me.headers
        assert found.status == 200, await found.text()
        # OTP send counts and console sessions fail closed, at once and clearly.
        assert otp.status == 503, await otp.text()
        assert int(otp.headers["Retry-After"]) >= 1
        assert console.status == 503
        assert elapsed < BATCH_BOUND, f"{elapsed:.2f}s"
        # Redis failed again and again: its circuit is open, nothing is even tried now.
        assert breaker.state in ("open", "half-open")

    # Once Redis answers, the first trial after the cooldown closes the circuit and limits
    # count again (waited for, not slept on: within a generous bound).
    deadline = time.monotonic() + 30
    while True:
        response = await client.get("/api/v1/me", headers=bearer(tokens))
        assert response.status == 200
        if "RateLimit-Limit" in response.headers:
            break
        assert time.monotonic() < deadline, "the rate limiter never came back"
        await asyncio.sleep(0.1)
    assert breaker.state == "closed"
    assert (await client.post("/api/v1/auth/otp", json={"phone": "+919812345600"})).status \
        == 202


async def test_a_timed_out_call_leaves_no_late_reply_behind(own_redis):
    redis = create_redis(RedisSection(url=own_redis.url(), fast_timeout=0.1,
                                      breaker_failures=100))
    try:
        await redis.set("k1", "one")
        await redis.set("k2", "two")
        with paused(own_redis):
            started = time.monotonic()
            with pytest.raises(RedisUnavailable) as refused:
                async with bounded(redis, "fast"):
                    await redis.get("k1")
            assert time.monotonic() - started < BATCH_BOUND
            assert not refused.value.circuit_open
        # The reply to the abandoned GET k1 is never read as another command's.
        async with bounded(redis, "fast"):
            assert await redis.get("k2") == "two"
        assert await redis.get("k1") == "one"
    finally:
        await redis.aclose()


async def test_the_circuit_opens_after_repeated_timeouts_and_then_skips_redis(own_redis):
    redis = create_redis(RedisSection(url=own_redis.url(), fast_timeout=0.1,
                                      breaker_failures=2, breaker_cooldown=60))
    try:
        await redis.ping()
        with paused(own_redis):
            for _ in range(2):
                with pytest.raises(RedisUnavailable) as timed_out:
                    async with bounded(redis, "fast"):
                        await redis.get("k")
                assert not timed_out.value.circuit_open
            sent = False
            with pytest.raises(RedisUnavailable) as skipped:
                async with bounded(redis, "fast"):
                    sent = True
            assert skipped.value.circuit_open and not sent
    finally:
        await redis.aclose()
