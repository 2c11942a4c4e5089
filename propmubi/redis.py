"""The Redis client: one ``redis.asyncio`` connection pool per process."""

from __future__ import annotations

import weakref
from typing import TypedDict

import redis.asyncio as aioredis
from prometheus_client import REGISTRY
from redis.exceptions import RedisError
from redis.typing import EncodableT, FieldT

from propmubi.config import RedisSection
from propmubi.observability import PoolCollector

__all__ = ["ClaimedEntries", "PendingEntry", "Redis", "RedisError", "StreamEntries",
           "StreamFields", "StreamRead", "XaddFields", "create_redis"]

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
    return client
