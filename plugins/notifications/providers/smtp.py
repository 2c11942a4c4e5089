"""The ``smtp`` provider (channel ``email``): one message per SMTP session, with aiosmtplib.

Settings: ``[plugins.notifications.smtp]`` (:class:`~.settings.SmtpSettings`). ``security``
is ``starttls`` (port 587: the session is upgraded before anything else, and a server that
does not offer STARTTLS is refused), ``tls`` (implicit TLS, port 465) or ``none`` (a relay on
loopback). ``ca_file`` trusts a private CA instead of the system's.

Each message is ``text/plain; charset=utf-8`` with ``From``, ``To``, ``Subject``, ``Date``
and ``Message-ID: <{key}@propmubi>``: the message key, so that staff can find a message in
the relay's logs. It does not make a resend safe: an ordinary relay delivers a second message
with the same Message-ID, and SMTP cannot be asked whether a message was queued, so the
provider neither ``dedupes`` nor has a ``lookup``: an e-mail that may have been accepted
(``maybe_sent``, a worker killed mid-send) is never resent and ends ``unknown``.
``message.data["list_unsubscribe"]`` adds ``List-Unsubscribe`` and, for an https URL,
``List-Unsubscribe-Post: List-Unsubscribe=One-Click`` (RFC 8058).

Outcomes (see ``base.ProviderError``):

* 2xx after DATA: a :class:`~.base.Receipt` whose id is the Message-ID;
* a 5xx reply to RCPT or DATA (550 unknown recipient, 554 refused content), a non-ASCII
  address: not retryable;
* a 4xx reply, a 5xx before RCPT (a refused greeting or sender: the relay refuses us, not
  the message), connection refused, a connect or greeting timeout, a TLS failure, an
  authentication failure: retryable (another provider may work);
* a timeout or a lost connection during DATA: retryable and ``maybe_sent`` (the relay may
  have queued the message before its answer was lost).

Nothing secret is logged: no password, no body (it may carry a one-time code).
"""

from __future__ import annotations

import email.policy
import email.utils
import logging
import re
import ssl
from email.message import EmailMessage
from typing import Any

import aiosmtplib

from propmubi.config import ConfigError
from propmubi.services import Clock
from propmubi_plugins.notifications.providers.base import (
    Channel,
    Message,
    ProviderError,
    Receipt,
)
from propmubi_plugins.notifications.providers.settings import SmtpSettings

__all__ = ["SmtpProvider", "message_id", "smtp_factory"]

log = logging.getLogger(__name__)

#: The right-hand side of every Message-ID.
MESSAGE_ID_DOMAIN = "propmubi"
# RFC 5322 atext plus ".": what may stand left of the "@" of a Message-ID unescaped.
_NOT_ATEXT = re.compile(r"[^A-Za-z0-9!#$%&'*+/?^_`{|}~.-]")


def message_id(key: str) -> str:
    """``<key@propmubi>``; characters a Message-ID may not hold become ``=XX`` (hex), so
    distinct keys keep distinct ids."""
    left = _NOT_ATEXT.sub(lambda m: "".join(f"={b:02X}" for b in m[0].encode()), key)
    return f"<{left.strip('.') or '=00'}@{MESSAGE_ID_DOMAIN}>"


class SmtpProvider:
    """Sends e-mail through one SMTP relay (see the module's docstring)."""

    name: str = "smtp"
    channel: Channel = "email"
    #: An ordinary relay delivers a second message with the same Message-ID (only some
    #: mailboxes collapse them), and SMTP has no way to ask whether a message was queued:
    #: an ambiguous e-mail is never resent, it ends ``unknown`` (at most once).
    dedupes: bool = False

    def __init__(self, settings: SmtpSettings, clock: Clock,
                 tls_context: ssl.SSLContext | None) -> None:
        self.settings = settings
        self.clock = clock
        self.tls_context = tls_context

    def build(self, message: Message) -> EmailMessage:
        """The MIME message of ``message``."""
        mail = EmailMessage(policy=email.policy.SMTP)
        mail["From"] = self.settings.sender
        mail["To"] = message.to
        mail["Subject"] = message.subject or ""
        mail["Date"] = email.utils.format_datetime(self.clock.now())
        mail["Message-ID"] = message_id(message.key)
        unsubscribe = message.data.get("list_unsubscribe")
        if unsubscribe:
            mail["List-Unsubscribe"] = f"<{unsubscribe}>"
            if unsubscribe.startswith("https://"):
                mail["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        mail.set_content(message.body, charset="utf-8")
        return mail

    def _client(self) -> aiosmtplib.SMTP:
        s = self.settings
        return aiosmtplib.SMTP(
            hostname=s.host, port=s.port, timeout=s.timeout,
            username=s.username or None, password=s.password or None,
            use_tls=s.security == "tls", start_tls=s.security == "starttls",
            tls_context=self.tls_context)

    async def send(self, message: Message) -> Receipt:
        """One SMTP session: connect (TLS, login), MAIL, RCPT, DATA; see the module."""
        try:
            mail = self.build(message)
        except ValueError as exc:  # a header with a line break, an unusable address
            raise ProviderError(f"smtp: cannot build the message: {exc}",
                                retryable=False) from None
        client = self._client()
        stage = "connect"
        try:
            await client.connect()
            stage = "mail"
            await client.mail(self.settings.sender)
            stage = "rcpt"
            await client.rcpt(message.to)
            stage = "data"
            await client.data(mail.as_bytes())
        except aiosmtplib.SMTPAuthenticationError as exc:
            raise self._error(f"authentication refused ({exc.code})", retryable=True) from None
        except aiosmtplib.SMTPResponseException as exc:
            # An answer: 4xx is "try again later"; a 5xx to RCPT or DATA refuses this message
            # (no retry changes it), a 5xx earlier (greeting, EHLO, MAIL FROM) refuses us.
            permanent = 500 <= exc.code < 600 and stage in ("rcpt", "data")
            raise self._error(f"{stage}: {exc.code} {exc.message}"[:300],
                              retryable=not permanent) from None
        except UnicodeEncodeError:  # an address SMTP cannot carry without SMTPUTF8
            raise self._error(f"{stage}: an address is not ASCII", retryable=False) from None
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            # No answer: a refused or lost connection, a timeout, TLS. During DATA the relay
            # may have taken the message before the answer was lost.
            sent = stage == "data"
            raise self._error(f"{stage}: {type(exc).__name__}: {exc}"[:300], retryable=True,
                              maybe_sent=sent) from None
        finally:
            await _close(client)
        log.info("smtp: accepted %s", message_id(message.key))
        return Receipt(provider=self.name, provider_message_id=message_id(message.key))

    def _error(self, what: str, *, retryable: bool, maybe_sent: bool = False) -> ProviderError:
        log.warning("smtp %s:%d: %s", self.settings.host, self.settings.port, what)
        return ProviderError(f"smtp: {what}", retryable=retryable, maybe_sent=maybe_sent)


async def _close(client: aiosmtplib.SMTP) -> None:
    """QUIT politely when the session is still up; drop it otherwise."""
    if client.is_connected:
        try:
            await client.quit(timeout=1)
        except (aiosmtplib.SMTPException, OSError, TimeoutError):
            pass
    client.close()


def smtp_factory(ctx: Any) -> SmtpProvider:
    """Build the ``smtp`` provider from ``ctx.settings.smtp``.

    :raises ConfigError: no ``host`` or ``sender``, or a ``username`` without ``password``.
    """
    settings: SmtpSettings = ctx.settings.smtp
    for key in ("host", "sender"):
        if not getattr(settings, key):
            raise ConfigError(f"plugins.notifications.smtp.{key}: required by the 'smtp' "
                              "provider")
    if settings.username and not settings.password:
        raise ConfigError("plugins.notifications.smtp.password: required when "
                          "plugins.notifications.smtp.username is set")
    tls_context = None
    if settings.security != "none":
        try:
            tls_context = ssl.create_default_context(cafile=settings.ca_file or None)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"plugins.notifications.smtp.ca_file: {exc}") from None
    return SmtpProvider(settings, ctx.clock, tls_context)
