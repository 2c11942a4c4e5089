"""The notification providers this plugin offers through ``propmubi_notification_providers``.

``FACTORIES`` maps a provider's name to its factory (see ``base.py`` for what a provider is).
A channel's settings name its providers in order: the first is the primary, the next ones
the fallbacks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from propmubi_plugins.notifications.providers.console import console_factory
from propmubi_plugins.notifications.providers.fcm import fcm_factory
from propmubi_plugins.notifications.providers.http_sms import http_sms_factory
from propmubi_plugins.notifications.providers.smtp import smtp_factory

__all__ = ["FACTORIES"]

FACTORIES: dict[str, Callable[..., Any]] = {
    "console_sms": console_factory("sms"),
    "console_email": console_factory("email"),
    "console_push": console_factory("push"),
    "smtp": smtp_factory,
    "http_sms": http_sms_factory,
    "fcm": fcm_factory,
}
