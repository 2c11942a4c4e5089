"""What every notification provider is: a channel, a name, and ``async send(message)``.

A provider is built once per process by a factory offered through
``propmubi_notification_providers`` (``{name: factory}``); the factory takes the
notifications plugin's context, reads its own sub-table of ``[plugins.notifications]`` and
may raise :class:`~propmubi.config.ConfigError` to refuse to run (the ``console`` providers
in production, an HTTP provider without its URL).

``send`` hands one message to the provider and returns its :class:`Receipt`, or raises
:class:`ProviderError` saying whether the message may have been accepted anyway
(``maybe_sent``). That distinction is what keeps delivery at most once: a definite failure
(the provider answered 5xx or 429, the connection was refused) may be retried or handed to
the fallback provider; a request that was sent and never answered may not go to another
provider, because the first may have delivered it.

Every message carries a ``key`` that is stable for its (notification, channel) across
retries and restarts; providers pass it on where their protocol has a place for it (an
idempotency header, a Message-ID, a collapse key), so that a provider that de-duplicates
turns a resend after a crash into no second message.

**Settling an ambiguous attempt.** When an attempt may have been accepted (``maybe_sent``, or
the worker was killed mid-send), the delivery loop needs to know how this provider lets it
find out without risking a second message. A provider says so with two optional members
(:func:`settling` reads them; a provider with neither keeps working, and its ambiguous
attempts end ``unknown``):

- ``async lookup(message, since) -> Receipt | None`` (:class:`SupportsLookup`): asks the
  service whether it accepted ``message`` at or after ``since`` (aware UTC: when the first
  ambiguous attempt started). A :class:`Receipt` of the message it found, None when it
  certainly has none; :class:`ProviderError` when it cannot tell (the delivery loop asks
  again later). The loop resends only after a None, through the same provider.
- ``dedupes: bool``: a resend carrying the same ``Message.key`` ends as one message for the
  recipient (the service, or the device, collapses it); the loop then resends without
  asking. False (the default when absent) and no ``lookup``: the loop never resends an
  ambiguous message (at most once) and leaves it ``unknown`` for staff.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, Literal, Protocol

import attrs

__all__ = ["CHANNELS", "Channel", "Message", "Provider", "ProviderError", "Receipt", "Settling",
           "SupportsLookup", "settling"]

Channel = Literal["sms", "email", "push"]
CHANNELS: tuple[Channel, ...] = ("sms", "email", "push")


@attrs.frozen
class Message:
    """One message for one recipient on one channel, ready to send."""

    #: Stable per (notification, channel): the provider's de-duplication key where it has one.
    key: str
    channel: Channel
    #: E.164 phone (sms), e-mail address (email) or device token (push).
    to: str
    body: str
    #: E-mail subject, push title; None for SMS.
    subject: str | None = None
    #: The DLT-registered template id of an SMS (India), None elsewhere.
    template_id: str | None = None
    #: Extra key/values a push carries to the app (strings only, as FCM requires).
    data: Mapping[str, str] = attrs.field(factory=dict)


@attrs.frozen
class Receipt:
    """The provider accepted the message."""

    provider: str
    #: The provider's id of the message (a Twilio SID, an FCM message name, a Message-ID).
    provider_message_id: str


class ProviderError(Exception):
    """The provider did not accept the message.

    :param retryable: trying again later (or another provider) may work: 5xx, 429, timeouts,
        connection errors. False for a refusal of this message (4xx: a bad number, an
        unregistered token), which no retry will change.
    :param maybe_sent: the request may have reached the provider and been accepted (it was
        sent and no answer came back). Such a message is never handed to another provider.
    :param retry_after: seconds the provider asked us to wait before trying again (its
        ``Retry-After`` header), or None when it said nothing.
    :param address_gone: the address itself no longer exists (a push token the provider
        says is unregistered: the app was uninstalled); with ``retryable=False``. The
        notifications plugin then forgets the token (its device registry).
    """

    def __init__(self, message: str, *, retryable: bool, maybe_sent: bool = False,
                 retry_after: float | None = None, address_gone: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.maybe_sent = maybe_sent
        self.retry_after = retry_after
        self.address_gone = address_gone


class Provider(Protocol):
    """A built provider (see the module's docstring). Optional members, read through
    :func:`settling`: ``dedupes: bool`` and ``async lookup(message, since)``
    (:class:`SupportsLookup`)."""

    #: The name it is configured by (``console``, ``smtp``, ``http_sms``, ``fcm``, ...).
    name: str
    channel: Channel

    async def send(self, message: Message) -> Receipt:
        """Hand the message to the provider; raise :class:`ProviderError` when it was not
        accepted."""
        ...


class SupportsLookup(Protocol):
    """A provider that can be asked whether it accepted a message (see the module's
    docstring)."""

    async def lookup(self, message: Message, since: dt.datetime) -> Receipt | None:
        """The receipt of ``message`` if the service accepted it at or after ``since``; None
        when it certainly did not.

        :raises ProviderError: the service could not be asked (the answer is unknown).
        """
        ...


#: How an ambiguous attempt of a provider is settled: ``lookup`` (ask it), ``resend`` (it
#: de-duplicates on the key), or None (it cannot be: the message is never resent).
Settling = Literal["lookup", "resend"] | None


def settling(provider: Any) -> Settling:
    """How an ambiguous attempt of ``provider`` is settled: ``lookup`` when it has a
    ``lookup`` coroutine, else ``resend`` when it ``dedupes``, else None."""
    if callable(getattr(provider, "lookup", None)):
        return "lookup"
    if getattr(provider, "dedupes", False) is True:
        return "resend"
    return None
