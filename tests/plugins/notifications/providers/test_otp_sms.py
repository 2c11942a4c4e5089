"""The notifications plugin offers its SMS providers to other plugins (auth's codes) as the
``notifications`` SMS provider; tests/plugins/auth/test_sms.py sends codes through it."""

from __future__ import annotations

import propmubi_plugins.notifications
from propmubi_plugins.notifications import otp


def test_the_plugin_offers_the_notifications_sms_provider():
    offered = propmubi_plugins.notifications.propmubi_sms_providers()
    assert offered == otp.providers() == {"notifications": otp.otp_sms_factory}
