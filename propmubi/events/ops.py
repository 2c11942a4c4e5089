"""Operating the bus: dead letters, replay from the event log, statistics and trimming."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from typing import Any, cast

import attrs
import orjson

from propmubi.events import metrics as m
from propmubi.events.consumer import Consumer, Group, HandlerFailed
from propmubi.events.envelope import Envelope
from propmubi.redis import StreamEntries, XaddFields
from propmubi.services import Services

__all__ = [
    "DeadLetter",
    "drop_dead",
    "group_stats",
    "list_dead",
    "replay",
    "retry_dead",
    "trim_log",
    "trim_streams",
]

_LOG_COLUMNS = ("id, type, version, publisher, aggregate_id, sequence, occurred_at, "
                "correlation_id, actor, payload")


@attrs.frozen
class DeadLetter:
    """One dead-lettered delivery."""

    group: str
    dead_id: str
    stream: str
    entry_id: str
    deliveries: int
    error: str
    traceback: str
    dead_at: float
    fields: dict[str, str]


def _letter(group: str, dead_id: str, data: dict[str, str]) -> DeadLetter:
    return DeadLetter(group=group, dead_id=dead_id, stream=data["stream"],
                      entry_id=data["entry_id"], deliveries=int(data["deliveries"]),
                      error=data["error"], traceback=data.get("traceback", ""),
                      dead_at=float(data["dead_at"]), fields=orjson.loads(data["fields"]))


async def list_dead(services: Services, groups: list[Group], count: int = 100
                    ) -> list[DeadLetter]:
    """Dead letters of the given groups, oldest first."""
    out = []
    for group in groups:
        items = cast(StreamEntries, await services.redis.xrange(
            services.keys.dead_letters(group.name), count=count))
        out += [_letter(group.name, dead_id, data) for dead_id, data in items]
    return out


async def retry_dead(services: Services, consumer: Consumer, group: Group, dead_id: str
                     ) -> None:
    """Handle a dead letter again now, in this process; on success it leaves the dead-letter
    stream. Raises the handler's exception (the letter stays) when it fails again."""
    key = services.keys.dead_letters(group.name)
    found = cast(StreamEntries, await services.redis.xrange(key, min=dead_id, max=dead_id))
    if not found:
        raise KeyError(f"no dead letter {dead_id} in group {group.name}")
    letter = _letter(group.name, dead_id, found[0][1])
    envelope = Envelope.from_fields(letter.fields)
    try:
        await consumer.process(group, [(letter.stream, letter.entry_id, envelope)])
    except HandlerFailed as failed:
        raise failed.__cause__ or failed from None
    await services.redis.xdel(key, dead_id)


async def drop_dead(services: Services, group: str, dead_id: str) -> bool:
    """Delete a dead letter for good; True when it existed."""
    return bool(await services.redis.xdel(services.keys.dead_letters(group), dead_id))


async def replay(services: Services, group: Group, since: str, batch: int = 1000) -> int:
    """Re-feed ``group`` from the event log: every logged event of a type it handles, from
    ``since`` (an ISO time or an event id) on, goes to the group's replay stream. Events the
    group already processed are skipped by its consumers, so only missing effects happen.

    :returns: how many events were queued.
    """
    types = list(group.handlers)
    try:
        event_id = uuid.UUID(since)
    except ValueError:
        try:
            start = dt.datetime.fromisoformat(since)
        except ValueError:
            raise ValueError(f"--since {since!r} is neither an event id nor an ISO time") from None
        if start.tzinfo is None:
            start = start.replace(tzinfo=dt.UTC)
        position = await services.db.fetchval(
            "SELECT coalesce(min(position), 0) FROM core_outbox WHERE occurred_at >= %s",
            (start,))
    else:
        position = await services.db.fetchval(
            "SELECT position FROM core_outbox WHERE id = %s", (event_id,))
        if position is None:
            raise ValueError(f"event {since} is not in the event log (older than retention?)")
    stream = services.keys.replay_stream(group.name)
    queued = 0
    while True:
        rows = await services.db.fetch(
            f"SELECT position, {_LOG_COLUMNS} FROM core_outbox "
            "WHERE position >= %s AND type = ANY(%s) ORDER BY position LIMIT %s",
            (position, types, batch))
        if not rows:
            return queued
        pipe = services.redis.pipeline(transaction=False)
        for row in rows:
            pipe.xadd(stream, cast(XaddFields, Envelope.from_row(row).to_fields()))
        await pipe.execute()
        queued += len(rows)
        position = rows[-1]["position"] + 1


def _ms(entry_id: str) -> int:
    return int(entry_id.split("-")[0])


async def group_stats(services: Services, groups: list[Group]) -> list[dict[str, Any]]:
    """Per group and stream: pending entries, lag (age of the oldest unread entry), dead
    letters. Also updates the corresponding gauges."""
    redis = services.redis
    out = []
    now_ms = time.time() * 1000
    for group in groups:
        dead = await redis.xlen(services.keys.dead_letters(group.name))
        m.DEAD_WAITING.labels(group.name).set(dead)
        for stream in group.streams:
            info = {g["name"]: g for g in await _groups_of(services, stream)}.get(group.name)
            pending = int(info["pending"]) if info else 0
            lag = 0.0
            if info:
                unread = cast(StreamEntries, await redis.xrange(
                    stream, min=f"({info['last-delivered-id']}", max="+", count=1))
                if unread:
                    lag = max(0.0, (now_ms - _ms(unread[0][0])) / 1000)
            m.PENDING.labels(group.name, stream).set(pending)
            m.LAG.labels(group.name, stream).set(lag)
            out.append({"group": group.name, "stream": stream, "pending": pending,
                        "lag_seconds": round(lag, 3), "dead": dead,
                        "exists": info is not None})
    return out


async def _groups_of(services: Services, stream: str) -> list[dict[str, Any]]:
    try:
        return await services.redis.xinfo_groups(stream)
    except Exception as exc:  # "no such key": the stream does not exist yet
        if "no such key" in str(exc).lower():
            return []
        raise


async def trim_streams(services: Services, streams: list[str]) -> dict[str, int]:
    """Trim each stream below what every group has acknowledged; never past a pending entry.

    A stream without groups keeps about ``events.ungrouped_stream_max_len`` entries (a group
    created later replays older events from the log). Returns entries removed per stream.
    """
    redis = services.redis
    removed = {}
    for stream in streams:
        groups = await _groups_of(services, stream)
        if not groups:
            if await redis.exists(stream):
                removed[stream] = await redis.xtrim(
                    stream, maxlen=services.config.events.ungrouped_stream_max_len,
                    approximate=True)
            continue
        floors = []
        for info in groups:
            if int(info["pending"]):
                summary = await redis.xpending(stream, info["name"])
                floors.append(summary["min"])
            else:
                last = info["last-delivered-id"]
                ms, seq = (int(p) for p in last.split("-"))
                floors.append(f"{ms}-{seq + 1}")
        # Entries below the smallest floor are acknowledged by every group.
        floor = min(floors, key=lambda i: tuple(int(p) for p in i.split("-")))
        removed[stream] = await redis.xtrim(stream, minid=floor, approximate=False)
    return removed


async def trim_log(services: Services, batch: int = 5000) -> int:
    """Delete published events and processed-event records older than the retention."""
    days = services.config.events.log_retention_days
    cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(days=days)
    total = 0
    for sql in (
        "DELETE FROM core_outbox WHERE position IN (SELECT position FROM core_outbox "
        "WHERE published_at IS NOT NULL AND occurred_at < %s LIMIT %s)",
        "DELETE FROM core_processed_events WHERE (consumer, event_id) IN (SELECT consumer, "
        "event_id FROM core_processed_events WHERE processed_at < %s LIMIT %s)",
    ):
        while (n := await services.db.execute(sql, (cutoff, batch))) > 0:
            total += n
    return total
