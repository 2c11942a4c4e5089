"""The ``console_sms``, ``console_email`` and ``console_push`` providers (development only).

They "send" by logging the message and keeping the last ones in memory, which the console's
*Messages* page shows: a newcomer signs in with the OTP printed there. They refuse to start
in production.
"""

from __future__ import annotations

import collections
import logging
from typing import Any

from propmubi.config import ConfigError
from propmubi.context import PluginContext
from propmubi_plugins.notifications.providers.base import Channel, Message, Receipt

__all__ = ["ConsoleProvider", "console_factory"]

log = logging.getLogger(__name__)

#: How many messages each console provider keeps.
KEEP = 200


class ConsoleProvider:
    """Logs each message and keeps it in :attr:`outbox` (newest last)."""

    #: Its sends cannot be left half done (no network; a worker killed in the middle had
    #: logged at most a line), and a repeated development message reaches nobody: an
    #: ambiguous attempt is simply resent (the Dev outbox shows what was recorded as sent).
    dedupes: bool = True

    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self.name = f"console_{channel}"
        self.outbox: collections.deque[Message] = collections.deque(maxlen=KEEP)

    async def send(self, message: Message) -> Receipt:
        """Keep and log the message; always accepted."""
        self.outbox.append(message)
        log.warning("console %s to %s: %s", self.channel, message.to, message.body)
        return Receipt(provider=self.name, provider_message_id=f"console-{message.key}")


def console_factory(channel: Channel) -> Any:
    """The factory of the console provider of ``channel``."""

    def build(ctx: PluginContext[Any, Any]) -> ConsoleProvider:
        if ctx.config.app.environment == "production":
            raise ConfigError(f"plugins.notifications: the 'console_{channel}' provider only "
                              "logs messages and is refused in production")
        return ConsoleProvider(channel)

    return build
