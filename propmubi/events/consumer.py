"""Consumers: each subscribing plugin is a consumer group; each worker process one consumer.

A batch of deliveries is processed in one transaction that first records every event as
processed for the group (``core_processed_events``); events already recorded are skipped, so a
redelivery has no second effect, even when three copies race (the unique key serialises them).
If a handler raises, the batch rolls back and each event is retried alone, so one poison event
cannot hold the others back. A failing event stays pending; the retry scan claims it again
after an exponential backoff (also taking over entries left by dead consumers after
``events.claim_idle``), and after ``events.max_deliveries`` deliveries moves it to the group's
dead-letter stream with the last error.

What counts as a delivery: any error of the event's handling does (an exception of a handler,
a statement timeout or cancelled query in a handler, ``events.handler_timeout``, a payload
that does not fit its type), and an outage does not: when PostgreSQL or Redis fail
(connection errors, a deadlock that persists), the entries stay pending and the next claim
keeps their delivery count. The last error of every entry (type, message, traceback, which
consumer saw it) is kept in Redis next to the pending entry, so the consumer that finally
dead-letters an entry, which may not be the one that saw it fail, writes it into the letter.

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
from propmubi.db import (
    InterfaceError,
    OperationalError,
    QueryCanceled,
    TransactionRollbackError,
    Tx,
)
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
from propmubi.validation import json_converter, structure_input

__all__ = ["Consumer", "Group", "Handler", "HandlerFailed", "Handlers", "collect_groups",
           "consumer_name"]

log = logging.getLogger(__name__)

Handler = Callable[[Tx, Delivery], Awaitable[Any]]
Handlers = tuple[Handler, ...]
#: Errors of the services, not of the event: the batch stays pending without counting a failure.
INFRASTRUCTURE_ERRORS = (OperationalError, InterfaceError, RedisError, ConnectionError)
#: Driver errors that are the handler's own doing although the driver files them with the
#: outages: a statement timeout (or a cancelled query) is a handler that took too long.
HANDLER_FAULTS = (QueryCanceled,)
#: A deadlock or serialization failure between concurrent batches: run the batch again now.
RERUN_ATTEMPTS = 3
Entry = tuple[str, str, dict[str, str]]  # stream, entry id, fields
Work = tuple[str, str, Envelope]  # stream, entry id, envelope

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


def is_outage(exc: BaseException) -> bool:
    """Whether ``exc`` is a failure of PostgreSQL or Redis rather than of the event's handling
    (outages do not use up deliveries)."""
    return isinstance(exc, INFRASTRUCTURE_ERRORS) and not isinstance(exc, HANDLER_FAULTS)


def describe(exc: BaseException) -> tuple[str, str]:
    """The one-line error (``module.Type: message``) and the traceback of ``exc``."""
    kind = type(exc)
    name = kind.__qualname__ if kind.__module__ == "builtins" else (
        f"{kind.__module__}.{kind.__qualname__}")
    message = " ".join(str(exc).split())
    return (f"{name}: {message}" if message else name,
            "".join(traceback.format_exception(exc)))


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
        # Entry ids this consumer is handling now: the retry loop must not claim its own
        # entry back while the read loop is still on it (a slow handler is not a failure).
        self._in_hand: set[str] = set()

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
        ids = {entry_id for _, entry_id, _ in entries}
        self._in_hand |= ids
        try:
            await self._handle(group, entries)
        finally:
            self._in_hand -= ids

    async def _handle(self, group: Group, entries: list[Entry]) -> None:
        redis = self.services.redis
        done: list[tuple[str, str]] = []
        work: list[Work] = []
        for stream, entry_id, fields in entries:
            try:
                envelope = Envelope.from_fields(fields)
            except (KeyError, ValueError, TypeError) as exc:
                error, trace = describe(exc)
                await self.dead_letter(group, stream, entry_id, fields,
                                       f"malformed entry: {error}", deliveries=1, trace=trace)
                continue
            if envelope.type in group.handlers:
                work.append((stream, entry_id, envelope))
            else:
                done.append((stream, entry_id))  # another subscriber's type on a shared stream
        started = time.perf_counter()
        done += await self._settle(group, work)
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

    async def _settle(self, group: Group, work: list[Work]) -> list[tuple[str, str]]:
        """Process ``work``, leaving each failing entry pending with its error recorded; the
        entries that are done."""
        reruns = 0
        while work:
            try:
                await self.process(group, work)
            except Exception as exc:
                cause = exc.__cause__ if isinstance(exc, HandlerFailed) and exc.__cause__ else exc
                if isinstance(cause, TransactionRollbackError) and reruns < RERUN_ATTEMPTS:
                    reruns += 1  # PostgreSQL rolled back to break a deadlock: run it again
                    continue
                if is_outage(cause):
                    # The database or Redis failed, not the event: everything stays pending,
                    # without using up deliveries on the way to the dead letters.
                    log.warning("event batch of %s not processed (%s: %s); it will be retried",
                                group.name, type(cause).__name__, cause)
                    await self._record_error(group, work, cause, outage=True)
                    return []
                if isinstance(exc, HandlerFailed):
                    # A handler raised: the batch rolled back; leave that event pending and redo
                    # the others, so that each handler runs once per delivery.
                    await self._record_error(group, [work[exc.index]], cause)
                    work = work[:exc.index] + work[exc.index + 1:]
                    continue
                if len(work) > 1:
                    # Not one handler's doing (COMMIT refused what they wrote, say): each alone
                    # tells which event it was.
                    done: list[tuple[str, str]] = []
                    for item in work:
                        done += await self._settle(group, [item])
                    return done
                await self._record_error(group, work, cause)
                return []
            return [(s, i) for s, i, _ in work]
        return []

    async def process(self, group: Group, work: list[Work]) -> None:
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
                token = REQUEST_ID.set(envelope.correlation_id or str(envelope.id))
                limit: asyncio.Timeout | None = None
                try:
                    # A payload that does not fit its type fails like a handler.
                    delivery = Delivery(envelope=envelope, event=self._typed(envelope),
                                        ctx=self.services.contexts[group.name],
                                        stream_id=entry_id)
                    # One timeout for the event: its handlers share the transaction.
                    async with asyncio.timeout(self.settings.handler_timeout) as limit:
                        for handler in group.handlers[envelope.type]:
                            await handler(tx, delivery)
                except Exception as exc:
                    if limit is not None and limit.expired():
                        # Say which limit struck; the cause keeps where the handler was.
                        expired = TimeoutError(
                            f"the handlers of {envelope.type} ran longer than "
                            f"events.handler_timeout ({self.settings.handler_timeout:g} s)")
                        expired.__cause__ = exc
                        raise HandlerFailed(index) from expired
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
        event, errors = structure_input(envelope.payload, info.cls, "payload", json_converter)
        if errors:
            raise ValueError(f"the payload of {envelope.type} (version {envelope.version}) does "
                             f"not fit {info.cls.__name__} (version {info.version}): "
                             + "; ".join(f"{e['field']}: {e['message']}" for e in errors))
        return event

    async def _record_error(self, group: Group, items: list[Work], exc: BaseException, *,
                            outage: bool = False) -> None:
        """Keep ``exc`` as the last error of each entry of ``items`` (in Redis, where any
        consumer of the group finds it); ``outage``: it does not use up the delivery."""
        error, trace = describe(exc)
        if not outage:
            for _, _, envelope in items:
                m.FAILED.labels(group.name, envelope.type).inc()
                log.warning("handler of %s failed for %s %s; it will be retried", group.name,
                            envelope.type, envelope.id, extra={"error": error})
        record = orjson.dumps({"error": error, "traceback": trace, "at": time.time(),
                               "consumer": self.name, "outage": outage}).decode()
        await self.services.redis.hset(self.services.keys.handler_errors(group.name),
                                       mapping={entry_id: record for _, entry_id, _ in items})

    async def _last_error(self, group: Group, entry_id: str) -> dict[str, Any] | None:
        raw = await self.services.redis.hget(self.services.keys.handler_errors(group.name),
                                             entry_id)
        return cast(dict[str, Any], orjson.loads(raw)) if raw else None

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
                if owner == self.name and entry_id in self._in_hand:
                    continue  # still being handled here: slow, not failed
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
                last = await self._last_error(group, entry_id)
                outage = bool(last and last.get("outage"))
                if deliveries >= settings.max_deliveries and not outage:
                    await self._exhausted(group, stream, entry_id, deliveries, owner, last)
                    continue
                # After an outage, this delivery takes the place of the one that met it: the
                # claim keeps the count instead of adding one.
                claimed = cast(ClaimedEntries, await redis.xclaim(
                    stream, group.name, self.name, min_idle_time=int(wait * 1000),
                    message_ids=[entry_id], retrycount=deliveries if outage else None))
                if not claimed:
                    continue  # another consumer claimed it first
                if last and outage:
                    # Unmarked before handling, so that a crash during this delivery counts.
                    await redis.hset(self.services.keys.handler_errors(group.name), entry_id,
                                     orjson.dumps({**last, "outage": False}).decode())
                m.RETRIED.labels(group.name).inc()
                (claimed_id, fields), = claimed
                if claimed_id is None or not fields:
                    # The entry is gone from the stream (Redis 6.2 answers with a nil entry).
                    await self._trimmed(group, stream, entry_id)
                    continue
                await self.handle(group, [(stream, claimed_id, fields)])
        return acted

    async def _exhausted(self, group: Group, stream: str, entry_id: str, deliveries: int,
                         owner: str, last: dict[str, Any] | None) -> None:
        redis = self.services.redis
        found = cast(StreamEntries, await redis.xrange(stream, min=entry_id, max=entry_id))
        if not found:
            await self._trimmed(group, stream, entry_id)
            return
        if last:
            error, trace = str(last["error"]), str(last.get("traceback", ""))
        else:
            # No delivery ended in an error: each consumer stopped while handling it.
            error = (f"no error recorded: delivered {deliveries} times and never acknowledged; "
                     f"the last delivery went to consumer {owner}, which stopped (killed, "
                     "crashed or hung) before finishing it")
            trace = ""
        await self.dead_letter(group, stream, entry_id, found[0][1], error,
                               deliveries=deliveries, trace=trace)

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
