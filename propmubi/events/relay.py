"""The relay: moves committed outbox rows to their publisher's stream.

Correctness, point by point:

* **No skipped rows.** It never keeps an ``id > last_seen`` watermark: each pass reads every
  row still unpublished (a partial index keeps that cheap). A transaction that took a low
  ``position`` but commits after a higher one is simply seen on a later pass.
* **No gaps on a crash.** Rows are locked, XADDed, then marked published in one transaction.
  A crash between XADD and COMMIT leaves them unpublished, so they are sent again: a duplicate
  on the stream (consumers drop it by event id), never a gap.
* **Per-aggregate order.** ``publish`` makes an aggregate's events commit in sequence order, and
  exactly one relay is active at a time (a session advisory lock; the others wait as hot
  standbys and take over when the holder's connection dies), sending rows in position order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from typing import Any, cast

from prometheus_client import Counter, Gauge, Histogram

from propmubi.events.envelope import Envelope
from propmubi.events.outbox import NOTIFY_CHANNEL
from propmubi.redis import XaddFields
from propmubi.services import Services

__all__ = ["RELAY_LOCK_KEY", "Relay"]

log = logging.getLogger(__name__)

# "relay" in ASCII: the advisory lock that makes one relay active at a time.
RELAY_LOCK_KEY = 0x72656C6179

RELAYED = Counter("propmubi_events_relayed_total", "Events moved from the outbox to a stream.",
                  ["type"])
RELAY_LAG = Histogram("propmubi_events_relay_lag_seconds",
                      "From the event's occurrence to its XADD on the stream.",
                      buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
                               5, 10, 30))
RELAY_ACTIVE = Gauge("propmubi_events_relay_active", "1 while this process is the active relay.")

_SELECT = """
SELECT position, id, type, version, publisher, aggregate_id, sequence, occurred_at,
       correlation_id, actor, payload
FROM core_outbox WHERE published_at IS NULL ORDER BY position LIMIT %s FOR UPDATE
"""
_MARK = """
UPDATE core_outbox AS o SET published_at = now(), stream_id = v.stream_id
FROM unnest(%s::bigint[], %s::text[]) AS v(position, stream_id)
WHERE o.position = v.position
"""


async def _fault_after_xadd() -> None:
    """Test hook (fault injection): ``PROPMUBI_FAULT_RELAY_AFTER_XADD=sleep:<seconds>`` makes
    the relay pause after its XADDs and before marking the rows published, so that a crash test
    can SIGKILL the process exactly there (tests/events/test_crashes.py). Unset in production."""
    fault = os.environ.get("PROPMUBI_FAULT_RELAY_AFTER_XADD")
    if fault and fault.startswith("sleep:"):
        log.warning("fault injection: relay sleeping %ss between XADD and COMMIT", fault[6:])
        await asyncio.sleep(float(fault[6:]))


class Relay:
    """One relay loop; call :meth:`run` and, to stop, :meth:`stop`."""

    def __init__(self, services: Services) -> None:
        self.services = services
        settings = services.config.events
        self.batch = settings.relay_batch
        self.poll = settings.relay_poll
        self._stopping = asyncio.Event()
        self._wake = asyncio.Event()
        self.active = False

    def stop(self) -> None:
        """Finish the current batch and return from :meth:`run`."""
        self._stopping.set()
        self._wake.set()

    async def run(self) -> None:
        """Wait for leadership, then relay until stopped; survives PostgreSQL restarts."""
        while not self._stopping.is_set():
            try:
                await self._lead()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # connection lost, server restarting: back off, retry
                log.warning("relay interrupted (%s: %s); retrying", type(exc).__name__, exc)
                self._set_active(False)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), self.poll)

    def _set_active(self, active: bool) -> None:
        if active != self.active:
            log.info("relay %s", "is active" if active else "stands by")
        self.active = active
        RELAY_ACTIVE.set(1 if active else 0)

    async def _lead(self) -> None:
        # A dedicated connection holds the leader lock and listens; if it dies, so does the lock.
        async with self.services.db.connection() as conn, conn.cursor() as cur:
            while not self._stopping.is_set():
                await cur.execute("SELECT pg_try_advisory_lock(%s)", (RELAY_LOCK_KEY,))
                if (await cur.fetchone())[0]:
                    break
                self._set_active(False)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), self.poll)
            else:
                return
            try:
                self._set_active(True)
                await cur.execute(f"LISTEN {NOTIFY_CHANNEL}")
                listener = asyncio.create_task(self._listen(conn))
                try:
                    while not self._stopping.is_set():
                        if listener.done():
                            listener.result()  # re-raise the connection error
                        self._wake.clear()
                        while await self.relay_once() == self.batch:
                            pass  # a full batch: more are probably waiting
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(self._wake.wait(), self.poll)
                finally:
                    listener.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await listener
            finally:
                self._set_active(False)
                with contextlib.suppress(Exception):
                    await cur.execute(f"UNLISTEN {NOTIFY_CHANNEL}")
                    await cur.execute("SELECT pg_advisory_unlock(%s)", (RELAY_LOCK_KEY,))

    async def _listen(self, conn: Any) -> None:
        while True:
            await conn.notifies.get()
            self._wake.set()

    async def relay_once(self) -> int:
        """Move one batch of committed, unpublished rows; return how many moved."""
        redis, keys = self.services.redis, self.services.keys
        async with self.services.db.transaction() as tx:
            rows = await tx.fetch(_SELECT, (self.batch,))
            if not rows:
                return 0
            pipe = redis.pipeline(transaction=False)
            for row in rows:
                envelope = Envelope.from_row(row)
                pipe.xadd(keys.event_stream(envelope.publisher),
                          cast(XaddFields, envelope.to_fields()))
            stream_ids = await pipe.execute()
            await _fault_after_xadd()
            await tx.execute(_MARK, ([r["position"] for r in rows], stream_ids))
        now = time.time()
        for row in rows:
            RELAYED.labels(row["type"]).inc()
            RELAY_LAG.observe(max(0.0, now - row["occurred_at"].timestamp()))
        return len(rows)
