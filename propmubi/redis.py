"""The Redis client: one ``redis.asyncio`` connection pool per process."""

from __future__ import annotations

import weakref

import redis.asyncio as aioredis
from prometheus_client import REGISTRY
from redis.exceptions import RedisError

from propmubi.config import RedisSection
from propmubi.observability import PoolCollector

__all__ = ["Redis", "RedisError", "create_redis"]

Redis = aioredis.Redis

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
