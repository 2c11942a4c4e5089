"""The rate limiter counts exactly when many requests' checks share one Redis round trip."""

import asyncio

import pytest

from propmubi.errors import TooManyRequests
from propmubi.keys import Keys
from propmubi.redis import create_redis
from propmubi.web.ratelimit import RateLimit, RateLimiter


async def test_concurrent_checks_are_counted_exactly_once_each(services):
    limiter = RateLimiter(services.redis, services.keys)
    limit = RateLimit(5, 60)

    async def one():
        try:
            headers = await limiter.check("batch", [("ip", "10.0.0.1", limit)])
        except TooManyRequests as exc:
            assert exc.headers["RateLimit-Remaining"] == "0"
            return None
        return int(headers["RateLimit-Remaining"])

    results = await asyncio.gather(*(one() for _ in range(12)))
    allowed = sorted(r for r in results if r is not None)
    assert allowed == [0, 1, 2, 3, 4]  # five pass, each with its own count
    assert results.count(None) == 7
    # Another identity in the same batch has its own counter.
    other = await limiter.check("batch", [("ip", "10.0.0.2", limit)])
    assert other["RateLimit-Remaining"] == "4"


async def test_a_cancelled_request_does_not_break_its_batch(services):
    limiter = RateLimiter(services.redis, services.keys)
    limit = RateLimit(100, 60)
    first = asyncio.ensure_future(limiter.check("cancel", [("ip", "a", limit)]))
    second = asyncio.ensure_future(limiter.check("cancel", [("ip", "a", limit)]))
    await asyncio.sleep(0)
    first.cancel()
    headers = await second
    assert headers["RateLimit-Limit"] == "100"
    with pytest.raises(asyncio.CancelledError):
        await first


async def test_redis_unreachable_lets_every_waiter_through(config):
    broken = create_redis(config.redis.__class__(url="unix:///nonexistent/redis.sock",
                                                 socket_timeout=0.5))
    limiter = RateLimiter(broken, Keys("x:"))
    results = await asyncio.gather(*(limiter.check("down", [("ip", "a", RateLimit(1, 60))])
                                     for _ in range(3)))
    assert results == [{}, {}, {}]
    await broken.aclose()
