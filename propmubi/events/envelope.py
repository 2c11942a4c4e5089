"""What travels: the envelope around an event, and how it is written to a stream entry."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import attrs
import orjson

__all__ = ["Delivery", "Envelope"]


@attrs.frozen
class Envelope:
    """An event as stored in the outbox and carried on a stream."""

    id: uuid.UUID
    type: str
    version: int
    publisher: str
    aggregate_id: str
    sequence: int
    occurred_at: dt.datetime
    correlation_id: str | None
    actor: str | None
    payload: dict[str, Any]

    def to_fields(self) -> dict[str, str]:
        """Stream entry fields (strings only)."""
        return {
            "id": str(self.id), "type": self.type, "version": str(self.version),
            "publisher": self.publisher, "aggregate_id": self.aggregate_id,
            "sequence": str(self.sequence), "occurred_at": self.occurred_at.isoformat(),
            "correlation_id": self.correlation_id or "", "actor": self.actor or "",
            "payload": orjson.dumps(self.payload).decode(),
        }

    @classmethod
    def from_fields(cls, fields: dict[str, str]) -> Envelope:
        """Parse a stream entry; raises ValueError/KeyError on a malformed one."""
        return cls(
            id=uuid.UUID(fields["id"]), type=fields["type"], version=int(fields["version"]),
            publisher=fields["publisher"], aggregate_id=fields["aggregate_id"],
            sequence=int(fields["sequence"]),
            occurred_at=dt.datetime.fromisoformat(fields["occurred_at"]),
            correlation_id=fields.get("correlation_id") or None,
            actor=fields.get("actor") or None,
            payload=orjson.loads(fields["payload"]),
        )

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Envelope:
        """From a ``core_outbox`` row."""
        return cls(**{f.name: row[f.name] for f in attrs.fields(cls)})


@attrs.frozen
class Delivery:
    """What a handler receives: the envelope, the typed event, and the subscribing plugin's
    context (``ctx``: its settings, state and the process's services).

    ``event`` is an instance of the registered class (the catalog spans every enabled plugin,
    so a subscriber never imports the publisher's module); ``payload`` is the raw data.
    ``sequence`` is the event's position among its aggregate's events: handlers that keep a
    projection can ignore an event older than what they already hold.
    """

    envelope: Envelope
    event: Any
    ctx: Any
    stream_id: str

    @property
    def id(self) -> uuid.UUID:
        return self.envelope.id

    @property
    def type(self) -> str:
        return self.envelope.type

    @property
    def aggregate_id(self) -> str:
        return self.envelope.aggregate_id

    @property
    def sequence(self) -> int:
        return self.envelope.sequence

    @property
    def payload(self) -> dict[str, Any]:
        return self.envelope.payload
