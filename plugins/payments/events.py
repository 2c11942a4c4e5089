"""The events the plugin publishes: its part of the event catalog (``propmubi events catalog``).

Each is a frozen attrs class declared with ``@event("<plugin>.<past_tense>", version=...,
aggregate=...)`` and registered through ``propmubi_event_types``. An event says what happened,
with the ids and the few facts subscribers need; publish it with ``ctx.publish(tx, event,
actor=actor.ref)`` inside the transaction that made the change, so it exists if and only if
the change committed. Bump ``version`` when a field changes meaning.
"""

from __future__ import annotations

import uuid

import attrs

from propmubi.events import event


@event("payments.item_created", version=1, aggregate="item_id")
@attrs.frozen
class ItemCreated:
    """An item was created."""

    item_id: uuid.UUID
    title: str


#: Every event type of the plugin (``propmubi_event_types``).
EVENT_TYPES: tuple[type, ...] = (ItemCreated,)
