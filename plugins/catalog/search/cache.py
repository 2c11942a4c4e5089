"""The Redis cache of search, suggest and feed answers (and of the project detail anonymous
callers read), and its invalidation by events.

Keys. An answer is stored under ``p:catalog:cache:<endpoint>:<digest>`` where ``digest`` is
the SHA-256 of the canonical form of the validated parameters (repeated values sorted, case
folded), as ``<global gen>.<scope gen>|<JSON>``: the generations are counters read just before
the database is asked, and an entry is an answer only while they are still current. A lookup
is one pipelined round trip (the two counters and the entry), not one to learn the counters
and another for the entry:

- ``p:catalog:gen`` (global): bumped when what changed cannot be pinned on one city (a
  deleted project, a project that moved city, a builder rename or verification);
- ``p:catalog:gen:city:<hash>``: bumped when something in that city changed; answers that
  depend on one city only (the feed) use it as their scope;
- ``p:catalog:gen:any``: bumped on every change; the scope of every other answer: suggest,
  a project's detail, and every search, even one filtered on a city, because its city facet
  (disjunctive, so counted without the city filter) counts the projects of every city.

Invalidation is two INCRs whatever the number of cached answers (O(1)): an entry stamped with
old generations is a miss, recomputed and overwritten, or expires with ``cache_ttl``. It is
correct because the generations are read *before* the query and bumped *after* the change
commits: an answer computed from the state before a change is either stamped with a
generation that the change's bump has already made stale, or was computed after the commit
(then it is fresh). The
generation keys have no TTL (a handful of small counters), so they are not evicted by a
volatile-* policy and never fall back to a value an old answer was stored under.

Two paths bump: the catalogue's events (``handlers.py``, through the outbox, the relay and a
consumer: ~100 ms, more when the worker lags) and the service layer right after its commit
(:func:`invalidate_after_commit`), so that a change is visible to the next request of any
web process at once; the event path is the safety net (another process, a replay).

A cache that cannot answer (Redis down, or silent past ``redis.fast_timeout``, or its
circuit open after repeated failures) is skipped: the database answers, and the failure is
counted (``result="error"``). A hung Redis so costs a search milliseconds, not seconds.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import orjson
from prometheus_client import Counter

from propmubi.db import Tx
from propmubi.redis import RedisError, RedisUnavailable, bounded
from propmubi.validation import unstructure
from propmubi_plugins.catalog.state import Ctx

log = logging.getLogger(__name__)

REQUESTS = Counter("propmubi_catalog_cache_requests_total",
                   "Search, suggest and feed answers by cache result (hit, miss, error).",
                   ["endpoint", "result"])
INVALIDATIONS = Counter("propmubi_catalog_cache_invalidations_total",
                        "Generation bumps of the search cache, by scope (city, global).",
                        ["scope"])

_FAILURES = (RedisError, OSError, TimeoutError)


def city_key(city: str) -> str:
    """The form of a city name that scopes cache generations (case and spaces ignored)."""
    return hashlib.sha256(" ".join(city.split()).lower().encode()).hexdigest()[:16]


def _global_gen(ctx: Ctx) -> str:
    return ctx.keys("gen")


def _scope_gen(ctx: Ctx, city: str | None) -> str:
    if city is None:
        return ctx.keys("gen", "any")
    return ctx.keys("gen", "city", city_key(city))


def digest(params: Mapping[str, Any]) -> str:
    """The cache identity of a canonical parameter dict."""
    return hashlib.sha256(orjson.dumps(params, option=orjson.OPT_SORT_KEYS)).hexdigest()[:32]


async def cached(ctx: Ctx, endpoint: str, params: Mapping[str, Any],
                 city: str | None, compute: Callable[[], Awaitable[Any]]) -> str:
    """The JSON text of an answer: from the cache, or computed and stored.

    :param endpoint: ``search``, ``suggest``, ``feed`` or ``detail`` (a metric label and a
        key part).
    :param params: the canonical, validated parameters (equal requests, equal dicts).
    :param city: the one city the answer depends on, or None (any city may change it).
    :param compute: returns the answer (attrs instances or plain data) from the database.
    """
    redis = ctx.redis
    key = ctx.keys("cache", endpoint, digest(params))
    try:
        async with bounded(redis, "fast"), redis.pipeline(transaction=False) as pipe:
            pipe.mget(_global_gen(ctx), _scope_gen(ctx, city))
            pipe.get(key)
            gens, entry = await pipe.execute()
    except _FAILURES as exc:
        REQUESTS.labels(endpoint, "error").inc()
        _log_failure("search cache unavailable, answering from the database: %s", exc)
        return orjson.dumps(unstructure(await compute())).decode()
    stamp = f"{gens[0] or 0}.{gens[1] or 0}|"
    if entry is not None and entry.startswith(stamp):
        REQUESTS.labels(endpoint, "hit").inc()
        return entry[len(stamp):]
    REQUESTS.labels(endpoint, "miss").inc()
    text = orjson.dumps(unstructure(await compute())).decode()
    try:
        async with bounded(redis, "fast"):
            await redis.set(key, stamp + text, ex=ctx.settings.cache_ttl)
    except _FAILURES as exc:
        _log_failure("search cache unavailable, answer not stored: %s", exc)
    return text


def _log_failure(message: str, exc: BaseException) -> None:
    # A call that was not even tried (the circuit is open) is counted, not logged each time.
    if not (isinstance(exc, RedisUnavailable) and exc.circuit_open):
        log.warning(message, exc)


async def invalidate(ctx: Ctx, city: str | None = None) -> None:
    """Make cached answers that ``city`` (None: anything) may have changed unreachable.

    :raises RedisError: when Redis does not answer (the event handler is then retried).
    """
    if city is None:
        await ctx.redis.incr(_global_gen(ctx))
        INVALIDATIONS.labels("global").inc()
        return
    async with ctx.redis.pipeline(transaction=False) as pipe:
        pipe.incr(_scope_gen(ctx, city))
        pipe.incr(_scope_gen(ctx, None))
        await pipe.execute()
    INVALIDATIONS.labels("city").inc()


def invalidate_after_commit(ctx: Ctx, tx: Tx, city: str | None = None) -> None:
    """Invalidate cached answers right after ``tx`` commits (nothing if it rolls back).

    The service layer calls this in the transaction of any change that search, suggest or
    feed show (publish, unpublish, edit, unit status, price), with the project's city, or
    with None when the change is not confined to one city (a project moving city, a
    builder's rename or verification, a deletion). The events of the same change invalidate
    again when the worker handles them; calling both is harmless.

    A Redis failure here is logged, not raised: the change is committed already, and the
    answer goes stale until the change's events invalidate it (at most ``cache_ttl``
    seconds). It is bounded like a lookup, so a hung Redis does not hold the request.
    """

    async def bump() -> None:
        try:
            async with bounded(ctx.redis, "fast"):
                await invalidate(ctx, city)
        except _FAILURES as exc:
            _log_failure("search cache invalidation failed (stale for up to cache_ttl): %s",
                         exc)

    tx.after_commit.append(bump)
