"""What other plugins may ask of notifications (declare ``requires=("notifications",)`` and
add ``"propmubi_plugins.<you>.<module> -> propmubi_plugins.notifications.api"`` to the
independence contract's ``ignore_imports``). docs/notifications.md is the guide.

Every function takes the **caller's** context (any plugin's: the notifications plugin's own
is found through it) and the :class:`~propmubi.actors.Actor` its rows and events record.

- :func:`notify_in` joins the caller's transaction: the notification, its deliveries and its
  ``notifications.notification_requested`` event commit with the caller's change, or not at
  all (the transactional outbox). The worker sends after the commit.
- :func:`notify` does the same in a transaction of its own.
- :func:`ensure_templates` creates a plugin's default templates for the types it requests
  (from its seed): each (type, channel) that has none yet; staff's edits are kept.
- :func:`send_now` sends one message synchronously (OTPs): critical, through the channel's
  providers with fallback, in the same ledger; it raises :class:`MessageNotSent` when no
  provider accepted it.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from propmubi.actors import Actor
from propmubi.context import PluginContext
from propmubi.db import Tx
from propmubi_plugins.notifications import service
from propmubi_plugins.notifications.models import (
    DeliveryOut,
    NotificationOut,
    NotifyIn,
    SendResult,
    TemplateIn,
    TemplateOut,
)
from propmubi_plugins.notifications.service import MessageNotSent

__all__ = ["DeliveryOut", "MessageNotSent", "NotificationOut", "NotifyIn", "SendResult",
           "TemplateIn", "TemplateOut", "ensure_templates", "notification", "notify",
           "notify_in", "send_now"]


def _own(ctx: PluginContext[Any, Any]) -> Any:
    return ctx.services.context("notifications")


async def notify_in(ctx: PluginContext[Any, Any], tx: Tx, actor: Actor,
                    data: NotifyIn) -> NotificationOut:
    """Request a notification in the caller's transaction (see the module docstring).

    ``data.dedupe_key`` makes a repeated request (an event handled twice, a retried job)
    return the first notification with ``duplicate=True`` and store nothing.

    :raises ValidationFailed: no active template of the type, a channel asked for without a
        template or an address, a declared variable without a value (each naming its field).
    """
    return await service.notify_in(_own(ctx), tx, actor, data)


async def notify(ctx: PluginContext[Any, Any], actor: Actor, data: NotifyIn
                 ) -> NotificationOut:
    """:func:`notify_in` in a transaction of its own."""
    return await service.notify(_own(ctx), actor, data)


async def send_now(ctx: PluginContext[Any, Any], actor: Actor, channel: str, to: str,
                   body: str, *, subject: str | None = None,
                   dlt_template_id: str | None = None, user_id: uuid.UUID | None = None,
                   type: str = "otp", category: str = "account") -> SendResult:
    """Send one message now and wait for the provider (sign-in codes).

    Critical: no quiet hours, promotional window, daily cap or opt-out applies. The
    channel's providers are tried in order (a definite failure moves to the next one; a
    provider that may have accepted the message is never followed by another). The attempt
    rows are written like every other message's, but the body is not stored (a send
    interrupted by a crash is not resent: it ends ``unknown``), and the address is stored
    masked (``+91******2377``).

    :param to: E.164 phone (sms), e-mail address, or device token.
    :param dlt_template_id: the DLT id of the registered SMS text (India).
    :param user_id: the recipient's account, when there is one (the console shows the name).
    :raises ValidationFailed: an unknown channel or a malformed address.
    :raises MessageNotSent: no provider accepted it (a 503 when unhandled);
        ``maybe_sent`` says whether one may have anyway.
    """
    return await service.send_now(_own(ctx), actor, channel, to, body, subject=subject,
                                  dlt_template_id=dlt_template_id, user_id=user_id,
                                  type=type, category=category)


async def notification(ctx: PluginContext[Any, Any], actor: Actor,
                       notification_id: uuid.UUID) -> NotificationOut:
    """A notification and where each of its deliveries stands.

    :raises NotFound: no such notification (or, for a user actor, not theirs).
    """
    return await service.get_notification(_own(ctx), actor, notification_id)


async def ensure_templates(ctx: PluginContext[Any, Any], actor: Actor,
                           templates: Sequence[TemplateIn]) -> list[TemplateOut]:
    """Create each template whose (type, channel) has none yet, as ``actor`` (a seed's
    ``Actor.system("seed")``); an existing one, edited or switched off by staff, is left as
    it is. Safe to run twice.

    :raises ValidationFailed: a template the rules refuse (DLT: more than two variables, two
        in a row, no registered id), naming its field.
    """
    return await service.ensure_templates(_own(ctx), actor, templates)
