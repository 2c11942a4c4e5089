"""Publishing: an event becomes an outbox row in the caller's transaction."""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from typing import Any

import orjson
from prometheus_client import Counter

from propmubi.db import Tx
from propmubi.events.catalog import EventCatalog
from propmubi.ids import uuid7
from propmubi.observability import REQUEST_ID
from propmubi.validation import unstructure

__all__ = ["NOTIFY_CHANNEL", "publish"]

log = logging.getLogger(__name__)

#: PostgreSQL channel that wakes the relay when a transaction with events commits.
NOTIFY_CHANNEL = "propmubi_outbox"

PUBLISHED = Counter("propmubi_events_published_total",
                    "Events written to the outbox (counted when the transaction commits).",
                    ["type"])

# One round trip: take the aggregate's next sequence number (locking its row until commit, so
# the aggregate's events commit in sequence order), insert the outbox row, and queue a NOTIFY
# that PostgreSQL delivers only if the transaction commits.
_PUBLISH = f"""
WITH seq AS (
    INSERT INTO core_event_sequences AS s (aggregate_id, last) VALUES (%(aggregate_id)s, 1)
    ON CONFLICT (aggregate_id) DO UPDATE SET last = s.last + 1
    RETURNING last
)
INSERT INTO core_outbox (id, type, version, publisher, aggregate_id, sequence, occurred_at,
                         correlation_id, actor, payload)
SELECT %(id)s, %(type)s, %(version)s, %(publisher)s, %(aggregate_id)s, seq.last,
       %(occurred_at)s, %(correlation_id)s, %(actor)s, %(payload)s::jsonb
FROM seq;
NOTIFY {NOTIFY_CHANNEL};
"""


async def publish(catalog: EventCatalog, tx: Tx, event: Any, *, actor: str | None = None,
                  correlation_id: str | None = None) -> uuid.UUID:
    """Record ``event`` in the outbox inside ``tx``; it reaches the stream after COMMIT.

    Plugins publish through :meth:`propmubi.context.PluginContext.publish`, which supplies the
    process's catalog. A rolled-back transaction leaves no event. The correlation id defaults
    to the current request's (or job's, or handled event's) id.

    :param catalog: the process's event catalog (``services.events``).
    :param tx: the transaction that makes the state change the event reports.
    :param event: an instance of a class registered through ``propmubi_event_types``.
    :param actor: who caused it (a user id, ``system``, ...).
    :returns: the event's id (a UUIDv7).
    :raises EventTypeError: when the type is not registered by an enabled plugin.
    """
    info = catalog.of(event)
    event_id = uuid7()
    await tx.execute(_PUBLISH, {
        "id": event_id, "type": info.type, "version": info.version,
        "publisher": info.publisher,
        "aggregate_id": str(getattr(event, info.cls.event_aggregate)),
        "occurred_at": dt.datetime.now(dt.UTC),
        "correlation_id": correlation_id or REQUEST_ID.get(), "actor": actor,
        "payload": orjson.dumps(unstructure(event)).decode(),
    })
    tx.after_commit.append(lambda: PUBLISHED.labels(info.type).inc())
    return event_id
