"""The Redis client: one ``redis.asyncio`` connection pool per process.

Calls on the request path go through :func:`bounded`: a short timeout and the client's
circuit breaker, so that a Redis that hangs (rather than refusing connections) costs a
request milliseconds instead of ``socket_timeout``. Background work (the event bus, the
scheduler) calls the client directly and lives with ``socket_timeout``.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import AsyncIterator
from typing import Literal, TypedDict

import redis.asyncio as aioredis
from prometheus_client import REGISTRY
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.typing import EncodableT, FieldT

from propmubi.breaker import CircuitBreaker, CircuitOpen
from propmubi.config import RedisSection
from propmubi.observability import PoolCollector

__all__ = ["ClaimedEntries", "PendingEntry", "Redis", "RedisError", "RedisUnavailable",
           "StreamEntries", "StreamFields", "StreamRead", "XaddFields", "bounded",
           "breaker_of", "create_redis"]

Redis = aioredis.Redis

# redis-py types its replies for every protocol and decoding at once (bytes | str, RESP2 and
# RESP3 shapes). This client decodes to str and gets redis-py's legacy (RESP2-shaped) replies,
# so the stream replies the core reads are cast to these shapes.
#: The fields of a stream entry.
StreamFields = dict[str, str]
#: XRANGE and XREVRANGE: an (id, fields) pair per entry.
StreamEntries = list[tuple[str, StreamFields]]
#: XCLAIM: like XRANGE, but an entry trimmed from the stream comes back as (None, None).
ClaimedEntries = list[tuple[str, StreamFields] | tuple[None, None]]
#: XREAD and XREADGROUP: a [stream, entries] pair (a list) per stream with entries.
StreamRead = list[tuple[str, StreamEntries]]
#: What ``xadd`` takes: redis-py asks for an invariant ``dict[FieldT, EncodableT]``, so a
#: ``dict[str, str]`` (what the core writes) is one only through this alias.
XaddFields = dict[FieldT, EncodableT]


class PendingEntry(TypedDict):
    """One entry of XPENDING's extended form (``xpending_range``)."""

    message_id: str
    consumer: str
    time_since_delivered: int  # milliseconds
    times_delivered: int


_OPEN: weakref.WeakSet[Redis] = weakref.WeakSet()


def _pool_stats() -> dict[str, dict[str, int]]:
    stats = {"created": 0, "available": 0, "in_use": 0}
    for client in list(_OPEN):
        pool = client.connection_pool
        stats["created"] += len(getattr(pool, "_available_connections", []))
        stats["created"] += len(getattr(pool, "_in_use_connections", []))
        stats["available"] += len(getattr(pool, "_available_connections", []))
        stats["in_use"] += len(getattr(pool, "_in_use_connections", []))
    return {"main": stats} if _OPEN else {}


REGISTRY.register(PoolCollector("redis", _pool_stats))


def create_redis(settings: RedisSection) -> Redis:
    """Build the client (connections open on first use). Responses are decoded to ``str``.

    :param settings: ``url`` may be ``redis://``, ``rediss://`` or ``unix://``.
    """
    if not settings.url:
        raise ValueError("redis.url is empty")
    client = aioredis.from_url(
        settings.url,
        max_connections=settings.max_connections,
        socket_timeout=settings.socket_timeout,
        socket_connect_timeout=settings.socket_timeout,
        decode_responses=True,
        health_check_interval=30,
    )
    _OPEN.add(client)
    _BOUNDS[client] = _Bounds(settings)
    return client


class RedisUnavailable(RedisError):
    """A bounded call got no answer in time, or was not tried: the circuit is open.

    A ``RedisError``, so whatever handles Redis failures handles it (unhandled, the API
    answers 503).

    :ivar circuit_open: True when the call was not tried at all.
    """

    def __init__(self, message: str, *, circuit_open: bool = False) -> None:
        super().__init__(message)
        self.circuit_open = circuit_open


class _Bounds:
    """A client's bounds and breaker (one per client, so per process)."""

    def __init__(self, settings: RedisSection) -> None:
        self.timeouts = {"fast": settings.fast_timeout, "record": settings.record_timeout}
        self.breaker = CircuitBreaker("redis", failures=settings.breaker_failures,
                                      cooldown=settings.breaker_cooldown)


# The bounds of each open client, by client; a client made without create_redis gets the
# defaults on first use.
_BOUNDS: weakref.WeakKeyDictionary[Redis, _Bounds] = weakref.WeakKeyDictionary()

#: What counts as Redis failing (an error Redis answered with shows it is alive).
_FAILURES = (RedisConnectionError, RedisTimeoutError, OSError, TimeoutError)


def _bounds(client: Redis) -> _Bounds:
    bounds = _BOUNDS.get(client)
    if bounds is None:
        bounds = _BOUNDS[client] = _Bounds(RedisSection())
    return bounds


def breaker_of(client: Redis) -> CircuitBreaker:
    """The circuit breaker of the client's bounded calls (one per client)."""
    return _bounds(client).breaker


@contextlib.asynccontextmanager
async def bounded(client: Redis, use: Literal["fast", "record"]) -> AsyncIterator[None]:
    """Run the ``async with`` body (Redis calls on ``client``) within a bound, through the
    client's circuit breaker.

    - ``"fast"``: caches and rate limits, ``redis.fast_timeout``; the caller catches
      ``RedisError`` and goes on without Redis (fail open).
    - ``"record"``: Redis holds the truth (sessions, lockouts, send counts),
      ``redis.record_timeout``; the caller lets the error become a 503, or says why not.

    A call that times out is cancelled; redis-py then drops its connection, so no late reply
    is ever read as another command's.

    :raises RedisUnavailable: no answer within the bound, or the circuit is open (then
        nothing was sent).
    :raises RedisError: the connection failed, or Redis answered with an error.
    """
    bounds = _bounds(client)
    seconds = bounds.timeouts[use]
    try:
        async with bounds.breaker.attempt(_FAILURES), asyncio.timeout(seconds):
            yield
    except CircuitOpen as exc:
        raise RedisUnavailable("Redis is failing; not tried (circuit open)",
                               circuit_open=True) from exc
    except TimeoutError as exc:
        # redis-py's own socket timeout is a RedisTimeoutError: a RedisError already.
        raise RedisUnavailable(f"Redis did not answer within {seconds:g}s") from exc
