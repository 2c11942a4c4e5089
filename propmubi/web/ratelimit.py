"""Redis-backed fixed-window rate limits, per client IP and per authenticated subject."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time

from aiohttp import web
from prometheus_client import Counter

from propmubi.errors import TooManyRequests
from propmubi.keys import Keys
from propmubi.redis import Redis, RedisError, RedisUnavailable, bounded
from propmubi.types import RateLimit

__all__ = ["RateLimit", "RateLimiter", "client_ip"]

log = logging.getLogger(__name__)

LIMITED = Counter("propmubi_http_rate_limited_total",
                  "Requests refused with 429, by limit scope and kind (ip or subject).",
                  ["scope", "kind"])
LIMITER_ERRORS = Counter("propmubi_http_rate_limiter_errors_total",
                         "Rate-limit checks skipped because Redis did not answer (fail open).")


def _ip(text: str | None) -> str | None:
    """``text`` as a canonical IP address (no IPv6 zone), or None when it is not one."""
    if not text:
        return None
    try:
        return str(ipaddress.ip_address(text.strip().partition("%")[0]))
    except ValueError:
        return None


def client_ip(request: web.Request, trust_forwarded: bool) -> str:
    """The caller's address: behind a trusted proxy, the last ``X-Forwarded-For`` entry.

    The last entry is the one our proxy appended (the address it saw); earlier entries come
    from the client and would let anyone pick a fresh identity per request.

    The answer is always a canonical IP address (one address has one spelling, so one
    limit), or ``"unknown"``: a last forwarded entry that is not an IP, or a peer without an
    IP address (a unix socket), is ``"unknown"`` (the proxy's own address is not the
    client's). Code that stores the address in an ``inet`` column stores NULL for it.
    """
    if trust_forwarded:
        last = request.headers.get("X-Forwarded-For", "").rpartition(",")[2].strip()
        if last:
            return _ip(last) or "unknown"
    return _ip(request.remote) or "unknown"


# One round trip and one command for every limit of a request: INCR each window's counter and
# give a new counter its absolute expiry (idempotent, so no EXPIRE NX, which Redis 6 lacks).
_COUNT = """
local counts = {}
for i, key in ipairs(KEYS) do
    local n = redis.call('INCR', key)
    if n == 1 then redis.call('EXPIREAT', key, ARGV[i]) end
    counts[i] = n
end
return counts
"""


class RateLimiter:
    """Counts requests in fixed windows in Redis.

    The checks of every request that arrives in the same event-loop iteration go to Redis
    together, as one EVALSHA: a Redis command costs the client far more CPU than the server,
    and under load one round trip then serves many requests. A key that appears twice in a
    batch is simply counted twice, in order, exactly as two separate calls would count it.

    When Redis is unreachable, or does not answer within ``redis.fast_timeout`` (or its
    circuit is open), the request is let through and the miss is counted: a Redis outage
    must not take the API down with it, nor slow every request down to its socket timeout.
    """

    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys
        self._count = redis.register_script(_COUNT)
        self._batch: list[tuple[list[str], list[int], asyncio.Future[list[int]]]] = []
        self._sending: set[asyncio.Task[None]] = set()

    async def _counts(self, keys: list[str], expiries: list[int]) -> list[int]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[int]] = loop.create_future()
        if not self._batch:
            loop.call_soon(self._flush)
        self._batch.append((keys, expiries, future))
        return await future

    def _flush(self) -> None:
        batch, self._batch = self._batch, []
        task = asyncio.get_running_loop().create_task(self._send(batch))
        self._sending.add(task)  # the loop keeps only weak references to tasks
        task.add_done_callback(self._sending.discard)

    async def _send(self, batch: list[tuple[list[str], list[int], asyncio.Future[list[int]]]]
                    ) -> None:
        try:
            async with bounded(self.redis, "fast"):
                counts = await self._count(
                    keys=[k for keys, _, _ in batch for k in keys],
                    args=[e for _, expiries, _ in batch for e in expiries])
        except Exception as exc:  # every waiter decides what a failure means to it
            for _, _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        start = 0
        for keys, _, future in batch:
            if not future.done():  # a request cancelled meanwhile
                future.set_result(counts[start:start + len(keys)])
            start += len(keys)

    async def check(self, scope: str, checks: list[tuple[str, str, RateLimit]]
                    ) -> dict[str, str]:
        """Count one request against each ``(kind, ident, limit)``.

        :returns: ``RateLimit-*`` headers of the tightest limit.
        :raises TooManyRequests: with ``Retry-After`` when any limit is exceeded.
        """
        now = time.time()
        keys, expiries, windows = [], [], []
        for kind, ident, limit in checks:
            window = int(now // limit.period) * limit.period
            keys.append(self.keys.rate_limit(scope, f"{kind}:{ident}", window))
            expiries.append(window + limit.period + 1)
            windows.append((kind, limit, window))
        try:
            results = await self._counts(keys, expiries)
        except (RedisError, OSError) as exc:
            LIMITER_ERRORS.inc()
            if not (isinstance(exc, RedisUnavailable) and exc.circuit_open):
                log.warning("rate limiter skipped: %s", exc)  # once per failure, not per skip
            return {}
        tightest: tuple[int, int, RateLimit] | None = None
        for (kind, limit, window), count in zip(windows, results, strict=True):
            reset = max(1, int(window + limit.period - now + 0.999))
            remaining = limit.count - count
            if remaining < 0:
                LIMITED.labels(scope, kind).inc()
                raise TooManyRequests(
                    f"rate limit of {limit.count} requests per {limit.period}s exceeded",
                    headers={"Retry-After": str(reset), "RateLimit-Limit": str(limit.count),
                             "RateLimit-Remaining": "0", "RateLimit-Reset": str(reset)})
            if tightest is None or remaining < tightest[0]:
                tightest = (remaining, reset, limit)
        if tightest is None:
            return {}
        remaining, reset, limit = tightest
        return {"RateLimit-Limit": str(limit.count), "RateLimit-Remaining": str(remaining),
                "RateLimit-Reset": str(reset)}
