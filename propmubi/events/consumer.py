"""Consumers: each subscribing plugin is a consumer group; each worker process one consumer.

A batch of deliveries is processed in one transaction that first records every event as
processed for the group (``core_processed_events``); events already recorded are skipped, so a
redelivery has no second effect, even when three copies race (the unique key serialises them).
If a handler raises, the batch rolls back and each event is retried alone, so one poison event
cannot hold the others back. A failing event stays pending; the retry scan claims it again
after an exponential backoff (also taking over entries left by dead consumers after
``events.claim_idle``), and after ``events.max_deliveries`` deliveries moves it to the group's
dead-letter stream with the last error.

Ordering: within one consumer, an aggregate's events are handled in stream order. Retries and
several consumers per group can reorder them, so each delivery carries the aggregate's
``sequence``; a handler keeping state per aggregate ignores one older than what it holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import traceback
from collections.abc import Awaitable, Callable
from typing import Any, cast

import attrs
import orjson

from propmubi.config import EventsSection
from propmubi.db import InterfaceError, OperationalError, TransactionRollbackError, Tx
from propmubi.events import metrics as m
from propmubi.events.catalog import EventCatalog, EventTypeError
from propmubi.events.envelope import Delivery, Envelope
from propmubi.observability import REQUEST_ID
from propmubi.redis import (
    ClaimedEntries,
    PendingEntry,
    RedisError,
    StreamEntries,
    StreamRead,
    XaddFields,
)
from propmubi.services import Services
from propmubi.validation import json_converter

__all__ = ["Consumer", "Group", "Handler", "HandlerFailed", "Handlers", "collect_groups",
           "consumer_name"]

log = logging.getLogger(__name__)

Handler = Callable[[Tx, Delivery], Awaitable[Any]]
Handlers = tuple[Handler, ...]
#: Errors of the services, not of the event: the batch stays pending without counting a failure.
INFRASTRUCTURE_ERRORS = (OperationalError, InterfaceError, RedisError, ConnectionError)
#: A deadlock or serialization failure between concurrent batches: run the batch again now.
RERUN_ATTEMPTS = 3
Entry = tuple[str, str, dict[str, str]]  # stream, entry id, fields

_MARK_PROCESSED = """
INSERT INTO core_processed_events (consumer, event_id)
SELECT %s, unnest(%s::uuid[])
ON CONFLICT DO NOTHING
RETURNING event_id
"""


@attrs.frozen
class Group:
    """One subscribing plugin: its handlers by event type (run in order) and the streams that
    carry them."""

    name: str
    handlers: dict[str, Handlers]
    streams: tuple[str, ...]


class HandlerFailed(Exception):
    """The handler of ``work[index]`` raised (the exception is the ``__cause__``)."""

    def __init__(self, index: int) -> None:
        super().__init__(index)
        self.index = index


def consumer_name() -> str:
    """This process's consumer name, unique per host and process."""
    return f"{socket.gethostname()}:{os.getpid()}"


def collect_groups(services: Services, catalog: EventCatalog) -> list[Group]:
    """One group per plugin implementing ``propmubi_event_handlers``."""
    groups = []
    for plugin, declared in services.plugins.call("propmubi_event_handlers"):
        handlers = {type_name: _handlers(plugin.name, type_name, value)
                    for type_name, value in dict(declared).items()}
        for type_name in handlers:
            try:
                catalog.info(type_name)
            except EventTypeError as exc:
                raise EventTypeError(f"plugin {plugin.name} subscribes to {type_name}: "
                                     f"{exc}") from None
        streams = sorted(services.keys.event_stream(p)
                         for p in catalog.publishers(list(handlers)))
        streams.append(services.keys.replay_stream(plugin.name))
        groups.append(Group(plugin.name, handlers, tuple(streams)))
    return groups


def _handlers(plugin: str, type_name: str, value: Any) -> Handlers:
    handlers = (value,) if callable(value) else tuple(value)
    if not handlers or not all(callable(h) for h in handlers):
        raise EventTypeError(f"plugin {plugin} subscribes to {type_name} with "
                             f"{value!r}: give a handler or a non-empty list of handlers")
    return handlers


def backoff(settings: EventsSection, deliveries: int) -> float:
    """Seconds a failed entry waits before its next delivery."""
    doubling: int = 2 ** max(0, deliveries - 1)  # typeshed types int ** int as Any
    return min(settings.retry_max, settings.retry_base * doubling)


class Consumer:
    """Reads, handles, retries and dead-letters for every group of this process."""

    def __init__(self, services: Services, catalog: EventCatalog, groups: list[Group],
                 name: str | None = None) -> None:
        self.services = services
        self.catalog = catalog
        self.groups = groups
        self.name = name or consumer_name()
        self.settings = services.config.events
        self._stopping = asyncio.Event()

    # -- setup --------------------------------------------------------------------------------

    async def ensure_groups(self) -> None:
        """Create each group on each of its streams, from the stream's start, so events
        published before the group existed are still delivered."""
        redis = self.services.redis
        for group in self.groups:
            for stream in group.streams:
                try:
                    await redis.xgroup_create(stream, group.name, id="0", mkstream=True)
                except Exception as exc:  # BUSYGROUP: it exists already, which is the aim
                    if "BUSYGROUP" not in str(exc):
                        raise

    # -- running ------------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop reading; batches in progress finish (their entries are acked)."""
        self._stopping.set()

    async def run(self) -> None:
        """Read and retry for every group until stopped; survives Redis and PostgreSQL
        restarts (errors back off and retry)."""
        await self._retrying(self.ensure_groups)
        tasks = [asyncio.create_task(self._loop(self.read_once, g)) for g in self.groups]
        tasks += [asyncio.create_task(self._loop(self.retry_once, g, self.settings.retry_scan))
                  for g in self.groups]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _retrying(self, func: Callable[[], Awaitable[Any]]) -> None:
        while not self._stopping.is_set():
            try:
                await func()
                return
            except Exception as exc:
                log.warning("event consumer: %s: %s; retrying", type(exc).__name__, exc)
                await self._pause(1.0)

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    async def _loop(self, step: Callable[[Group], Awaitable[int]], group: Group,
                    pause: float = 0.0) -> None:
        while not self._stopping.is_set():
            try:
                await step(group)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if "NOGROUP" in str(exc):  # Redis lost its data: recreate the groups
                    await self._retrying(self.ensure_groups)
                log.warning("event consumer %s: %s: %s", group.name, type(exc).__name__, exc)
                await self._pause(1.0)
                continue
            if pause:
                await self._pause(pause)

    async def read_once(self, group: Group, block: bool = True) -> int:
        """Read new entries for ``group`` (waiting up to ``events.block_ms`` for some when
        ``block``) and handle them; return how many were read."""
        response = cast(StreamRead, await self.services.redis.xreadgroup(
            group.name, self.name, {s: ">" for s in group.streams},
            count=self.settings.consumer_batch,
            block=self.settings.block_ms if block else None))
        entries = [(stream, entry_id, fields)
                   for stream, items in response or [] for entry_id, fields in items]
        if entries:
            await self.handle(group, entries)
        return len(entries)

    # -- handling -----------------------------------------------------------------------------

    async def handle(self, group: Group, entries: list[Entry]) -> None:
        """Handle delivered entries: ack what is done, leave failures pending."""
        redis = self.services.redis
        done: list[tuple[str, str]] = []
        work: list[tuple[str, str, Envelope]] = []
        for stream, entry_id, fields in entries:
            try:
                envelope = Envelope.from_fields(fields)
            except (KeyError, ValueError, TypeError) as exc:
                await self.dead_letter(group, stream, entry_id, fields, f"malformed entry: {exc}",
                                       deliveries=1)
                continue
            if envelope.type in group.handlers:
                work.append((stream, entry_id, envelope))
            else:
                done.append((stream, entry_id))  # another subscriber's type on a shared stream
        started = time.perf_counter()
        reruns = 0
        while work:
            try:
                await self.process(group, work)
            except Exception as exc:
                cause = exc.__cause__ if isinstance(exc, HandlerFailed) else exc
                if isinstance(cause, TransactionRollbackError) and reruns < RERUN_ATTEMPTS:
                    reruns += 1  # PostgreSQL rolled back to break a deadlock: run it again
                    continue
                if not isinstance(exc, HandlerFailed) or isinstance(cause,
                                                                    INFRASTRUCTURE_ERRORS):
                    # The database or Redis failed, not the event: everything stays pending,
                    # without using up deliveries on the way to the dead letters.
                    log.warning("event batch of %s not processed (%s: %s); it will be retried",
                                group.name, type(cause).__name__, cause)
                    break
                # A handler raised: the batch rolled back; leave that event pending and redo
                # the others, so that each handler runs once per delivery.
                await self._record_failure(group, *work[exc.index], cause)
                work = work[:exc.index] + work[exc.index + 1:]
                continue
            done += [(s, i) for s, i, _ in work]
            break
        m.HANDLER_SECONDS.labels(group.name).observe(time.perf_counter() - started)
        if done:
            pipe = redis.pipeline(transaction=False)
            by_stream: dict[str, list[str]] = {}
            for stream, entry_id in done:
                by_stream.setdefault(stream, []).append(entry_id)
            for stream, ids in by_stream.items():
                pipe.xack(stream, group.name, *ids)
            pipe.hdel(self.services.keys.handler_errors(group.name), *[i for _, i in done])
            await pipe.execute()

    async def process(self, group: Group, work: list[tuple[str, str, Envelope]]) -> None:
        """Handle ``work`` in one transaction; raise :class:`HandlerFailed` naming the event
        whose handler raised (nothing of the batch is then committed)."""
        db = self.services.db
        async with db.transaction() as tx:
            ids = [e.id for _, _, e in work]
            fresh = {row["event_id"] for row in await tx.fetch(_MARK_PROCESSED,
                                                               (group.name, ids))}
            handled: list[Envelope] = []
            for index, (_, entry_id, envelope) in enumerate(work):
                if envelope.id not in fresh:
                    m.DUPLICATES.labels(group.name).inc()
                    continue
                fresh.discard(envelope.id)  # the same event twice in one batch
                handled.append(envelope)
                delivery = Delivery(envelope=envelope, event=self._typed(envelope),
                                    ctx=self.services.contexts[group.name],
                                    stream_id=entry_id)
                token = REQUEST_ID.set(envelope.correlation_id or str(envelope.id))
                try:
                    # One timeout for the event: its handlers share the transaction.
                    async with asyncio.timeout(self.settings.handler_timeout):
                        for handler in group.handlers[envelope.type]:
                            await handler(tx, delivery)
                except Exception as exc:
                    raise HandlerFailed(index) from exc
                finally:
                    REQUEST_ID.reset(token)
        now = time.time()
        for envelope in handled:  # duplicates were counted as such above
            m.DELIVERED.labels(group.name, envelope.type).inc()
            m.END_TO_END.labels(group.name).observe(max(0.0, now
                                                        - envelope.occurred_at.timestamp()))

    def _typed(self, envelope: Envelope) -> Any:
        info = self.catalog.info(envelope.type)
        return json_converter.structure(envelope.payload, info.cls)

    async def _record_failure(self, group: Group, stream: str, entry_id: str,
                              envelope: Envelope, exc: BaseException | None) -> None:
        error = "".join(traceback.format_exception(exc)) if exc else "unknown error"
        m.FAILED.labels(group.name, envelope.type).inc()
        log.warning("handler of %s failed for %s (%s); it will be retried", group.name,
                    envelope.type, envelope.id, extra={"error": error.splitlines()[-1]})
        record = orjson.dumps({"error": error.splitlines()[-1], "traceback": error,
                               "at": time.time()}).decode()
        await self.services.redis.hset(self.services.keys.handler_errors(group.name), entry_id,
                                       record)

    # -- retries and dead letters -------------------------------------------------------------

    async def retry_once(self, group: Group) -> int:
        """Claim pending entries whose backoff has passed; dead-letter exhausted ones.

        Returns how many entries it acted on.
        """
        redis, settings = self.services.redis, self.settings
        acted = 0
        min_idle = int(settings.retry_base * 1000)
        for stream in group.streams:
            pending = cast(list[PendingEntry], await redis.xpending_range(
                stream, group.name, min="-", max="+", count=settings.consumer_batch,
                idle=min_idle))
            for item in pending:
                entry_id, owner = item["message_id"], item["consumer"]
                deliveries, idle = item["times_delivered"], item["time_since_delivered"] / 1000
                wait = backoff(settings, deliveries)
                if owner != self.name:
                    wait = max(wait, settings.claim_idle)
                if idle < wait:
                    continue
                if not acted:
                    # Each claim counts a delivery: claim nothing while the database is down,
                    # or an outage longer than the backoff would dead-letter healthy events.
                    await self.services.db.fetchval("SELECT 1")
                acted += 1
                if deliveries >= settings.max_deliveries:
                    await self._exhausted(group, stream, entry_id, deliveries)
                    continue
                claimed = cast(ClaimedEntries, await redis.xclaim(
                    stream, group.name, self.name, min_idle_time=int(wait * 1000),
                    message_ids=[entry_id]))
                if not claimed:
                    continue  # another consumer claimed it first
                m.RETRIED.labels(group.name).inc()
                (claimed_id, fields), = claimed
                if claimed_id is None or not fields:
                    # The entry is gone from the stream (Redis 6.2 answers with a nil entry).
                    await self._trimmed(group, stream, entry_id)
                    continue
                await self.handle(group, [(stream, claimed_id, fields)])
        return acted

    async def _exhausted(self, group: Group, stream: str, entry_id: str, deliveries: int
                         ) -> None:
        redis = self.services.redis
        found = cast(StreamEntries, await redis.xrange(stream, min=entry_id, max=entry_id))
        if not found:
            await self._trimmed(group, stream, entry_id)
            return
        raw = await redis.hget(self.services.keys.handler_errors(group.name), entry_id)
        error = orjson.loads(raw) if raw else {"error": "unknown", "traceback": ""}
        await self.dead_letter(group, stream, entry_id, found[0][1], error["error"],
                               deliveries=deliveries, trace=error.get("traceback", ""))

    async def dead_letter(self, group: Group, stream: str, entry_id: str,
                          fields: dict[str, str], error: str, *, deliveries: int,
                          trace: str = "") -> None:
        """Move an entry to the group's dead-letter stream and ack it in the group."""
        keys = self.services.keys
        letter: XaddFields = {
            "stream": stream, "entry_id": entry_id, "group": group.name,
            "deliveries": str(deliveries), "error": error, "traceback": trace,
            "dead_at": str(time.time()), "fields": orjson.dumps(fields).decode()}
        pipe = self.services.redis.pipeline(transaction=True)
        pipe.xadd(keys.dead_letters(group.name), letter)
        pipe.xack(stream, group.name, entry_id)
        pipe.hdel(keys.handler_errors(group.name), entry_id)
        await pipe.execute()
        m.DEAD.labels(group.name, fields.get("type", "unknown")).inc()
        log.error("event %s dead-lettered for %s after %d deliveries: %s",
                  fields.get("id", entry_id), group.name, deliveries, error)

    async def _trimmed(self, group: Group, stream: str, entry_id: str) -> None:
        """A pending entry vanished from its stream: report it and re-feed it from the log."""
        m.TRIMMED_UNACKED.labels(group.name).inc()
        log.error("entry %s of %s was trimmed before %s acknowledged it; re-feeding it from the "
                  "event log", entry_id, stream, group.name)
        row = await self.services.db.fetchrow(
            "SELECT id, type, version, publisher, aggregate_id, sequence, occurred_at, "
            "correlation_id, actor, payload FROM core_outbox WHERE stream_id = %s", (entry_id,))
        if row is not None:
            await self.services.redis.xadd(self.services.keys.replay_stream(group.name),
                                           cast(XaddFields, Envelope.from_row(row).to_fields()))
        await self.services.redis.xack(stream, group.name, entry_id)
