"""The ``notifications`` SMS provider (``propmubi_sms_providers``): another plugin's urgent
SMS (the auth plugin's one-time codes) sent now through this plugin's SMS providers.

There is one SMS stack: ``plugins.auth.sms_provider = "notifications"`` makes auth's codes go
out through ``plugins.notifications.sms_providers`` (``http_sms``, ``console_sms``, ...) by
:func:`~propmubi_plugins.notifications.service.send_now`: at once and in the caller's request
(a code that arrives in ten minutes is useless), critical (no quiet hours, caps or opt-outs),
the primary first, a fallback only after a failure that certainly sent nothing (never a
second code through another provider when the first may have delivered one), recorded in the
delivery ledger without its body.

The factory takes the *consuming* plugin's context. It reads from the consumer's settings the
optional ``sms_template_id`` (the DLT template id registered for the message, India) and finds
this plugin's context through ``ctx.services.context("notifications")``; this plugin's state
is read at each send, so the consumer may start before this plugin. ``send(to, body)`` raises
:class:`~propmubi_plugins.notifications.service.MessageNotSent`, a
:class:`propmubi.errors.ServiceUnavailable`, when no provider accepted the message: the
consumer catches the core error type and imports nothing of this plugin.
"""

from __future__ import annotations

from typing import Any

from propmubi.actors import Actor
from propmubi.config import ConfigError
from propmubi_plugins.notifications import service

__all__ = ["OtpSms", "otp_sms_factory", "providers"]

#: The name consumers choose this provider by (``plugins.auth.sms_provider``).
NAME = "notifications"


class OtpSms:
    """What the consumer holds: ``async send(to, body)`` (``to`` in E.164)."""

    name = NAME

    def __init__(self, nctx: Any, actor: Actor, template_id: str | None) -> None:
        self.nctx = nctx
        self.actor = actor
        self.template_id = template_id

    async def send(self, to: str, body: str) -> None:
        """Send now through the SMS providers (see the module).

        :raises MessageNotSent: no provider accepted it (a ``ServiceUnavailable``).
        """
        await service.send_now(self.nctx, self.actor, "sms", to, body,
                               dlt_template_id=self.template_id, type="otp",
                               category="account")


def otp_sms_factory(ctx: Any) -> OtpSms:
    """Build the sender for the consuming plugin's context ``ctx``.

    :raises ConfigError: the notifications plugin is not enabled in this process (naming
        ``plugins.<consumer>.sms_provider``).
    """
    try:
        nctx = ctx.services.context("notifications")
    except KeyError:
        raise ConfigError(f"plugins.{ctx.name}.sms_provider: {NAME!r} sends through the "
                          "notifications plugin, which is not enabled (add it to "
                          "plugins.enabled)") from None
    return OtpSms(nctx, Actor.system(ctx.name),
                  getattr(ctx.settings, "sms_template_id", "") or None)


def providers() -> dict[str, Any]:
    """The factories offered through ``propmubi_sms_providers``."""
    return {NAME: otp_sms_factory}
