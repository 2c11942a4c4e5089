"""The notifications plugin's per-process state: the providers of each channel, in order, and
the unsubscribe links' key.

Every configured provider is built once per process with ``ctx.provider(
"propmubi_notification_providers", name, setting="plugins.notifications.<channel>_providers")``;
a factory may refuse (the console providers in production, an HTTP provider without its URL),
and so does a provider named for a channel it does not send (``console_email`` in
``sms_providers``).
"""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

import attrs

from propmubi.config import ConfigError
from propmubi.context import PluginContext
from propmubi_plugins.notifications.providers.base import CHANNELS, Provider
from propmubi_plugins.notifications.settings import NotificationsSettings

#: The hook notification providers are offered through.
HOOK = "propmubi_notification_providers"
#: The unsubscribe links' base outside production when ``public_url`` is empty.
DEV_PUBLIC_URL = "http://127.0.0.1:8080"


@attrs.define(eq=False)
class NotificationsState:
    """What one process of the plugin holds.

    :ivar providers: each channel's providers, the primary first.
    :ivar unsubscribe_key: the HMAC key of unsubscribe links.
    :ivar public_url: where unsubscribe links point (no trailing slash).
    :ivar production: whether this is a production process (no dev outbox there).
    """

    providers: dict[str, list[Provider]]
    unsubscribe_key: bytes
    public_url: str
    production: bool
    started_at: dt.datetime

    def provider(self, channel: str, name: str) -> Provider | None:
        """The configured provider ``name`` of ``channel``, or None."""
        return next((p for p in self.providers.get(channel, []) if p.name == name), None)

    def has_console_provider(self) -> bool:
        """Whether any channel sends through a console (development) provider."""
        return any(p.name.startswith("console_")
                   for chain in self.providers.values() for p in chain)


#: The plugin's context, as every module of the plugin annotates it.
Ctx = PluginContext[NotificationsSettings, NotificationsState]


async def start(ctx: Ctx) -> NotificationsState:
    """Build every configured provider; refuse to start without the production secrets.

    :raises ConfigError: a provider refuses this configuration, is offered by no enabled
        plugin or sends another channel; in production, no ``unsubscribe_secret`` or
        ``public_url``.
    """
    settings = ctx.settings
    production = ctx.config.app.environment == "production"
    for key in ("unsubscribe_secret", "public_url"):
        if production and not getattr(settings, key):
            raise ConfigError(f"plugins.notifications.{key}: required in production")
    providers: dict[str, list[Provider]] = {}
    try:
        for channel in CHANNELS:
            setting = f"plugins.notifications.{channel}_providers"
            chain: list[Provider] = []
            providers[channel] = chain
            for name in settings.providers_of(channel):
                provider: Provider = ctx.provider(HOOK, name, setting=setting)
                chain.append(provider)
                if provider.channel != channel:
                    raise ConfigError(f"{setting}: {name!r} sends {provider.channel}, "
                                      f"not {channel}")
    except BaseException:
        await _close(providers)
        raise
    secret = settings.unsubscribe_secret or secrets.token_urlsafe(32)
    return NotificationsState(
        providers=providers, unsubscribe_key=secret.encode(),
        public_url=(settings.public_url or DEV_PUBLIC_URL).rstrip("/"),
        production=production, started_at=ctx.clock.now())


async def _close(providers: dict[str, list[Any]]) -> None:
    for chain in providers.values():
        for provider in chain:
            close = getattr(provider, "close", None)
            if close is not None:
                await close()


async def stop(ctx: Ctx) -> None:
    """Close the providers that hold connections (those with a ``close()``)."""
    if ctx.state is not None:
        await _close(dict(ctx.state.providers))
