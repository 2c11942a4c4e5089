"""The event bus: transactional outbox -> Redis Streams -> idempotent plugin consumers.

What plugins use: :func:`event` to declare a type, ``ctx.publish(tx, event)``
(:meth:`propmubi.context.PluginContext.publish`) inside a transaction, and handlers
``async def handler(tx, delivery)`` returned from ``propmubi_event_handlers``.
"""

from propmubi.events.catalog import EventCatalog, EventTypeError, event
from propmubi.events.envelope import Delivery, Envelope

__all__ = ["Delivery", "Envelope", "EventCatalog", "EventTypeError", "event"]
