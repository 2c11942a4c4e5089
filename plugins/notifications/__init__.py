"""The notifications plugin: SMS, e-mail and push messages from templates, with provider
fallback, retries, quiet hours, a promotional window, a daily cap, preferences and one-click
unsubscribe, sent at most once per (notification, channel). docs/notifications.md is the
guide; other plugins call ``propmubi_plugins.notifications.api``.

Events it publishes: ``notifications.notification_requested`` (its own work queue),
``notifications.message_delivered``, ``notifications.message_failed``. Its handlers send a
requested notification and forget an erased user (``auth.user_erased``); the ``send_due`` job
sends retries and deferred messages and recovers deliveries whose worker died mid-send; the
``forget_old`` job masks old messages' addresses and forgets idle push devices. It offers
the ``notifications`` SMS provider (``propmubi_sms_providers``) that the auth plugin's codes
go through.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from propmubi import hookimpl
from propmubi.config import Config
from propmubi.types import ConsolePage, ConsoleWidget, Job, PluginInfo, template_dir
from propmubi.web.routing import Routes
from propmubi_plugins.notifications import (
    console,
    delivery,
    events,
    handlers,
    otp,
    providers,
    routes,
    seed,
    service,
    state,
)
from propmubi_plugins.notifications.settings import NotificationsSettings
from propmubi_plugins.notifications.state import Ctx

#: How often the scheduler sends what is due (s), and forgets what is old.
SEND_DUE_EVERY = 15
FORGET_OLD_EVERY = 3600


@hookimpl
def propmubi_plugin_info() -> PluginInfo:
    """Name and version; it requires auth, whose ``auth.user_erased`` it handles (the bus
    refuses a subscription to a type no enabled plugin registers). Auth does not require it:
    auth finds it at send time (``otp.py``)."""
    return PluginInfo(name="notifications", version="0.1.0", requires=("auth",),
                      description="SMS, e-mail and push notifications from templates")


@hookimpl
def propmubi_settings_class() -> type:
    """``[plugins.notifications]``: providers per channel, retries, quiet hours, caps."""
    return NotificationsSettings


@hookimpl
def propmubi_migrations() -> Path:
    """Templates, notifications, deliveries, attempts, preferences and push devices."""
    return Path(__file__).parent / "migrations"


@hookimpl
def propmubi_api_routes(config: Config) -> Routes:
    """Templates (staff), preferences and push devices (users), unsubscribe links (anyone
    with one)."""
    return routes.routes


@hookimpl
def propmubi_notification_providers() -> Mapping[str, Any]:
    """The console providers (development) and the real ones (providers/__init__.py)."""
    return providers.FACTORIES


@hookimpl
def propmubi_sms_providers() -> Mapping[str, Any]:
    """``notifications``: another plugin's urgent SMS (auth's sign-in codes) sent at once
    through ``sms_providers`` with ``send_now`` (otp.py)."""
    return otp.providers()


@hookimpl
def propmubi_event_types() -> list[type]:
    """The ``notifications.*`` events (see the module docstring)."""
    return list(events.EVENT_TYPES)


@hookimpl
def propmubi_event_handlers() -> Mapping[str, Any]:
    """``notifications.notification_requested``: send its deliveries;
    ``auth.user_erased``: forget the user."""
    return handlers.subscriptions()


@hookimpl
def propmubi_jobs() -> list[Job]:
    """Every 15 seconds: send retries and deferred messages that are due, recover
    deliveries whose lease ran out. Hourly: mask the addresses of messages older than
    ``retention_days``, forget devices idle for ``device_idle_days``."""
    return [Job(name="send_due", run=delivery.send_due, every=SEND_DUE_EVERY, timeout=600),
            Job(name="forget_old", run=service.forget_old, every=FORGET_OLD_EVERY, timeout=600)]


@hookimpl
def propmubi_console_pages() -> list[ConsolePage]:
    """Messages (the ledger), a message's attempts, templates, the dev outbox."""
    return console.pages()


@hookimpl
def propmubi_console_widgets() -> list[ConsoleWidget]:
    """Messages sent, failed and deferred today."""
    return console.widgets()


@hookimpl
def propmubi_template_dirs() -> list[Path]:
    """``templates/notifications/``."""
    return [template_dir(__file__)]


@hookimpl
def propmubi_startup(ctx: Ctx) -> Any:
    """Build every configured provider (``state.start``)."""
    return functools.partial(state.start, ctx)


@hookimpl
def propmubi_cleanup(ctx: Ctx) -> Any:
    """Close the providers that hold connections."""
    return functools.partial(state.stop, ctx)


@hookimpl
def propmubi_seed(ctx: Ctx, scale: float) -> Any:
    """The starting templates (lead assigned, visit reminder, OTP, booking confirmed)."""
    return seed.seed(ctx, scale)
