"""The notifications plugin's settings: its ``[plugins.notifications]`` table.

Each channel names its providers in order (``sms_providers = ["http_sms", "console_sms"]``):
the first is the primary, the next ones the fallbacks. The providers' own keys are in the
sub-tables ``[plugins.notifications.smtp]``, ``.http_sms`` and ``.fcm`` (providers/settings.py).
Secrets (``unsubscribe_secret``, the providers' passwords and keys) come from credential files
or ``PROPMUBI_PLUGINS__NOTIFICATIONS__<KEY>`` variables, never from the repository;
``propmubi dev`` generates ``unsubscribe_secret`` into ``var/credentials``.
"""

from __future__ import annotations

import re
import zoneinfo
from typing import Any

import attrs
from attrs import validators as v

from propmubi.config import dev_secret
from propmubi_plugins.notifications.providers.settings import (
    FcmSettings,
    HttpSmsSettings,
    SmtpSettings,
)

_CLOCK = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$")


def minutes_of(text: str) -> int:
    """``"22:30"`` as minutes after midnight (1350)."""
    match = _CLOCK.match(text)
    if match is None:
        raise ValueError(f'expected a time of day "HH:MM" (24-hour), got {text!r}')
    return int(match.group(1)) * 60 + int(match.group(2))


def _clock(instance: Any, attribute: attrs.Attribute[str], value: str) -> None:
    minutes_of(value)


def _zone(instance: Any, attribute: attrs.Attribute[str], value: str) -> None:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"not an IANA time zone: {value!r}") from None


def _providers(instance: Any, attribute: attrs.Attribute[list[str]], value: list[str]) -> None:
    if not value:
        raise ValueError("name at least one provider")
    if len(set(value)) != len(value):
        raise ValueError("a provider is named twice")


def _lease(instance: Any, attribute: attrs.Attribute[int], value: int) -> None:
    if value < 2 * instance.send_timeout:
        raise ValueError(f"must be at least twice send_timeout ({instance.send_timeout} s): "
                         "a lease that runs out during a send would let the message be "
                         "sent twice")


def _url(instance: Any, attribute: attrs.Attribute[str], value: str) -> None:
    if value and not value.startswith(("http://", "https://")):
        raise ValueError(f"expected an http(s):// URL, got {value!r}")


@attrs.frozen
class NotificationsSettings:
    """How the notifications plugin behaves."""

    #: Providers of each channel, in order: the primary first, then the fallbacks.
    sms_providers: list[str] = attrs.field(factory=lambda: ["console_sms"],
                                           validator=_providers)
    email_providers: list[str] = attrs.field(factory=lambda: ["console_email"],
                                             validator=_providers)
    push_providers: list[str] = attrs.field(factory=lambda: ["console_push"],
                                            validator=_providers)
    smtp: SmtpSettings = attrs.field(factory=SmtpSettings)
    http_sms: HttpSmsSettings = attrs.field(factory=HttpSmsSettings)
    fcm: FcmSettings = attrs.field(factory=FcmSettings)

    #: Provider calls per delivery in all (fallbacks and retries included).
    max_attempts: int = attrs.field(default=5, validator=[v.ge(1), v.le(20)])
    #: The wait after a round of the provider chain failed: base, doubling, up to the cap (s).
    backoff_base: int = attrs.field(default=30, validator=[v.ge(1), v.le(86_400)])
    backoff_cap: int = attrs.field(default=3600, validator=[v.ge(1), v.le(86_400)])
    #: A provider call taking longer than this counts as "may have been sent" (s).
    send_timeout: int = attrs.field(default=15, validator=[v.ge(1), v.le(300)])
    #: How long a claimed delivery belongs to the worker sending it (s); after that it is
    #: taken as interrupted (the worker died mid-send).
    lease_seconds: int = attrs.field(default=120, validator=[v.le(3600), _lease])
    #: Settle an interrupted delivery as its provider allows (ask it whether it took the
    #: message, or resend with the same key where it collapses duplicates; else
    #: ``unknown``); False: mark every interrupted delivery ``unknown`` for staff.
    resend_interrupted: bool = True

    #: Promotional messages wait out the recipient's quiet hours (their local time; the
    #: window may wrap past midnight; equal start and end: no quiet hours).
    quiet_hours_start: str = attrs.field(default="22:00", validator=_clock)
    quiet_hours_end: str = attrs.field(default="08:00", validator=_clock)
    #: ... and go out only inside this window (TRAI: 10:00-21:00 in India).
    promotional_start: str = attrs.field(default="10:00", validator=_clock)
    promotional_end: str = attrs.field(default="21:00", validator=_clock)
    promotional_time_zone: str = attrs.field(default="Asia/Kolkata", validator=_zone)
    #: Non-critical messages per user and local day, all channels together (0: no cap).
    daily_cap: int = attrs.field(default=10, validator=[v.ge(0), v.le(1000)])
    #: The recipient's time zone when the caller gives none.
    default_time_zone: str = attrs.field(default="Asia/Kolkata", validator=_zone)

    #: The HMAC key of unsubscribe links (required in production).
    unsubscribe_secret: str = attrs.field(default="", metadata=dev_secret())
    #: The public base URL unsubscribe links start with (required in production;
    #: ``http://127.0.0.1:8080`` elsewhere when empty).
    public_url: str = attrs.field(default="", validator=_url)

    #: After this many days a finished message keeps only its masked address, and its
    #: notification no variables (the values rendered into it); the ``forget_old`` job.
    retention_days: int = attrs.field(default=90, validator=[v.ge(1), v.le(3650)])
    #: A push device not registered again (``PUT /notifications/devices``) for this many days
    #: is forgotten (FCM deems such tokens stale).
    device_idle_days: int = attrs.field(default=270, validator=[v.ge(1), v.le(3650)])

    #: Deliveries one run of the ``send_due`` job handles at most.
    batch_size: int = attrs.field(default=100, validator=[v.ge(1), v.le(10_000)])
    #: Rows per page of the lists (API and console).
    page_size: int = attrs.field(default=20, validator=[v.ge(1), v.le(100)])

    def providers_of(self, channel: str) -> list[str]:
        """The provider names of ``channel``, the primary first."""
        names: list[str] = getattr(self, f"{channel}_providers")
        return names
