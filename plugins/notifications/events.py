"""The events of notifications, each keyed by its notification (``aggregate="notification_id"``).

- ``notifications.notification_requested``: a notification and its deliveries were stored
  (published in the caller's transaction: the transactional outbox); the plugin's own worker
  handler sends them.
- ``notifications.message_delivered``: a provider accepted one channel's message.
- ``notifications.message_failed``: one channel's message will not be sent: refused
  (``failed``), or its fate is unknown (``unknown``: it may have been sent, see
  docs/notifications.md).
"""

from __future__ import annotations

import uuid

import attrs

from propmubi.events import event


@event("notifications.notification_requested", version=1, aggregate="notification_id")
@attrs.frozen
class NotificationRequested:
    """A notification was requested; its deliveries wait for the worker."""

    notification_id: uuid.UUID
    type: str
    user_id: uuid.UUID | None
    channels: list[str]


@event("notifications.message_delivered", version=1, aggregate="notification_id")
@attrs.frozen
class MessageDelivered:
    """A provider accepted the message of one channel."""

    notification_id: uuid.UUID
    delivery_id: uuid.UUID
    type: str
    user_id: uuid.UUID | None
    channel: str
    provider: str
    attempts: int


@event("notifications.message_failed", version=1, aggregate="notification_id")
@attrs.frozen
class MessageFailed:
    """The message of one channel will not be sent (``failed``), or may have been sent and
    nobody can tell (``unknown``)."""

    notification_id: uuid.UUID
    delivery_id: uuid.UUID
    type: str
    user_id: uuid.UUID | None
    channel: str
    status: str
    error: str
    attempts: int


#: Every event type of the plugin (``propmubi_event_types``).
EVENT_TYPES: tuple[type, ...] = (NotificationRequested, MessageDelivered, MessageFailed)
