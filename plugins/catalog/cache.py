"""The Redis cache of search, suggest and feed answers, and its invalidation by events.

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
  and every search, even one filtered on a city, because its city facet (disjunctive, so
  counted without the city filter) counts the projects of every city.

Invalidation is two INCRs whatever the number of cached answers (O(1)): an entry stamped with
old generations is a miss, recomputed and overwritten, or expires with ``cache_ttl``. It is
correct because the generations are read *before* the query and bumped *after* the change
commits: an answer computed from the state before a change is either stamped with a
generation that the change's bump has already made stale, or was computed after the commit
(then it is fresh). The
generation keys have no TTL (a handful of small counters), so they are not evicted by a
volatile-* policy and never fall back to a value an old answer was stored under.

Two paths bump: the catalogue's events (:func:`handlers`, through the outbox, the relay and a
consumer: ~100 ms, more when the worker lags) and the service layer right after its commit
(:func:`invalidate_after_commit`), so that a change is visible to the next request of any
web process at once; the event path is the safety net (another process, a replay).

A cache that cannot answer (Redis down, timing out) is skipped: the database answers, and
the failure is counted (``result="error"``).
"""

from __future__ import annotations

import hashlib
import logging
import weakref
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import orjson
from prometheus_client import Counter

from propmubi.config import plugin_settings
from propmubi.context import Services
from propmubi.db import Database, Tx
from propmubi.events import Delivery
from propmubi.redis import RedisError
from propmubi.validation import unstructure
from propmubi_plugins.catalog import search_store
from propmubi_plugins.catalog.settings import CatalogSettings

log = logging.getLogger(__name__)

REQUESTS = Counter("propmubi_catalog_cache_requests_total",
                   "Search, suggest and feed answers by cache result (hit, miss, error).",
                   ["endpoint", "result"])
INVALIDATIONS = Counter("propmubi_catalog_cache_invalidations_total",
                        "Generation bumps of the search cache, by scope (city, global).",
                        ["scope"])

_FAILURES = (RedisError, OSError, TimeoutError)


def _ttl(services: Services) -> int:
    # Read on a miss only, next to a database query that costs far more.
    return plugin_settings(services.config, "catalog", CatalogSettings).cache_ttl


# The services of each started process by its Database, so that service code holding only a
# transaction can still invalidate (``invalidate_after_commit(tx, None, city)``).
_BY_DATABASE: weakref.WeakKeyDictionary[Database, Services] = weakref.WeakKeyDictionary()


async def start(services: Services) -> None:
    """Check the cache settings (a bad ``cache_ttl`` fails at start, not on a miss) and
    remember the services for :func:`invalidate_after_commit`."""
    _ttl(services)
    _BY_DATABASE[services.db] = services


async def stop(services: Services) -> None:
    """Forget this process's services (the cache itself lives in Redis)."""
    _BY_DATABASE.pop(services.db, None)


def city_key(city: str) -> str:
    """The form of a city name that scopes cache generations (case and spaces ignored)."""
    return hashlib.sha256(" ".join(city.split()).lower().encode()).hexdigest()[:16]


def _global_gen(services: Services) -> str:
    return services.keys.plugin("catalog", "gen")


def _scope_gen(services: Services, city: str | None) -> str:
    if city is None:
        return services.keys.plugin("catalog", "gen", "any")
    return services.keys.plugin("catalog", "gen", "city", city_key(city))


def digest(params: Mapping[str, Any]) -> str:
    """The cache identity of a canonical parameter dict."""
    return hashlib.sha256(orjson.dumps(params, option=orjson.OPT_SORT_KEYS)).hexdigest()[:32]


async def cached(services: Services, endpoint: str, params: Mapping[str, Any],
                 city: str | None, compute: Callable[[], Awaitable[Any]]) -> str:
    """The JSON text of an answer: from the cache, or computed and stored.

    :param endpoint: ``search``, ``suggest`` or ``feed`` (a metric label and a key part).
    :param params: the canonical, validated parameters (equal requests, equal dicts).
    :param city: the one city the answer depends on, or None (any city may change it).
    :param compute: returns the answer (attrs instances or plain data) from the database.
    """
    redis = services.redis
    key = services.keys.plugin("catalog", "cache", endpoint, digest(params))
    try:
        async with redis.pipeline(transaction=False) as pipe:
            pipe.mget(_global_gen(services), _scope_gen(services, city))
            pipe.get(key)
            gens, entry = await pipe.execute()
    except _FAILURES as exc:
        REQUESTS.labels(endpoint, "error").inc()
        log.warning("search cache unavailable, answering from the database: %s", exc)
        return orjson.dumps(unstructure(await compute())).decode()
    stamp = f"{gens[0] or 0}.{gens[1] or 0}|"
    if entry is not None and entry.startswith(stamp):
        REQUESTS.labels(endpoint, "hit").inc()
        return entry[len(stamp):]
    REQUESTS.labels(endpoint, "miss").inc()
    text = orjson.dumps(unstructure(await compute())).decode()
    try:
        await redis.set(key, stamp + text, ex=_ttl(services))
    except _FAILURES as exc:
        log.warning("search cache unavailable, answer not stored: %s", exc)
    return text


async def invalidate(services: Services, city: str | None = None) -> None:
    """Make cached answers that ``city`` (None: anything) may have changed unreachable.

    :raises RedisError: when Redis does not answer (the event handler is then retried).
    """
    if city is None:
        await services.redis.incr(_global_gen(services))
        INVALIDATIONS.labels("global").inc()
        return
    async with services.redis.pipeline(transaction=False) as pipe:
        pipe.incr(_scope_gen(services, city))
        pipe.incr(_scope_gen(services, None))
        await pipe.execute()
    INVALIDATIONS.labels("city").inc()


def invalidate_after_commit(tx: Tx, services: Services | None, city: str | None = None
                            ) -> None:
    """Invalidate cached answers right after ``tx`` commits (nothing if it rolls back).

    ``services`` may be None for code that holds only a transaction: the services started
    on ``tx.db`` are used (none started, e.g. a CLI tool without lifecycle: the events
    invalidate).

    The service layer calls this in the transaction of any change that search, suggest or
    feed show (publish, unpublish, edit, unit status, price), with the project's city, or
    with None when the change is not confined to one city (a project moving city, a
    builder's rename or verification, a deletion). The events of the same change invalidate
    again when the worker handles them; calling both is harmless.

    A Redis failure here is logged, not raised: the change is committed already, and the
    answer goes stale for at most ``cache_ttl`` seconds.
    """

    target = services if services is not None else _BY_DATABASE.get(tx.db)
    if target is None:
        log.debug("no started catalogue on this database; the events will invalidate")
        return

    async def bump() -> None:
        try:
            await invalidate(target, city)
        except _FAILURES as exc:
            log.warning("search cache invalidation failed (stale for up to cache_ttl): %s", exc)

    tx.after_commit.append(bump)


async def _published(tx: Tx, delivery: Delivery) -> None:
    await invalidate(delivery.services, delivery.event.city)


async def _project_changed(tx: Tx, delivery: Delivery) -> None:
    event = delivery.event
    city = None
    if "city" not in (getattr(event, "fields", None) or ()):
        # A project that moved city changed two cities' answers: the old one is unknown here.
        city = await search_store.project_city(tx, event.project_id)
    await invalidate(delivery.services, city)


async def _deleted(tx: Tx, delivery: Delivery) -> None:
    await invalidate(delivery.services, None)


def handlers() -> Mapping[str, Callable[..., Awaitable[Any]]]:
    """Event type -> handler that invalidates cached answers.

    ``catalog.project_created`` needs none: a draft is in no answer.
    """
    return {
        "catalog.project_published": _published,
        "catalog.project_updated": _project_changed,
        "catalog.project_deleted": _deleted,
        "catalog.unit_status_changed": _project_changed,
        "catalog.price_changed": _project_changed,
    }
