"""The ``http_sms`` provider (channel ``sms``): Twilio's Messages REST API, or any gateway
that speaks it.

Settings: ``[plugins.notifications.http_sms]`` (:class:`~.settings.HttpSmsSettings`).

Wire format: ``POST {base_url}/2010-04-01/Accounts/{account_sid}/Messages.json`` with HTTP
basic auth (account SID, auth token) and a form body ``To`` (E.164), ``From`` (``sender``),
``Body``; when the message has a DLT template id (India) it also goes in the form field named
by ``template_field`` (``DltTemplateId``), which Twilio-compatible Indian gateways read and
Twilio itself ignores. A 2xx answer is JSON with the message's ``sid``: the receipt. An error
answer is JSON with Twilio's ``code`` and ``message``.

One attempt per :meth:`HttpSmsProvider.send` (the delivery loop retries and falls back):

* 2xx: a :class:`~.base.Receipt` with the ``sid``;
* 429 and 5xx, or a connection that failed before the request was written: retryable
  (``Retry-After`` is passed on);
* 401/403 or a 3xx: the gateway refuses our credentials (or moved), not the message:
  retryable (another provider may work);
* other 4xx (a bad number, an unsubscribed recipient): not retryable, with Twilio's code and
  message;
* no answer after the request was written (timeout, dropped connection): retryable and
  ``maybe_sent``.

Twilio's Messages API documents no idempotency header, so the message key is not sent and a
resend cannot be merged (``dedupes = False``). An ambiguous attempt (``maybe_sent``, a worker
killed mid-send) is settled by :meth:`HttpSmsProvider.lookup` instead, Twilio's Message list
resource: ``GET {base_url}/2010-04-01/Accounts/{account_sid}/Messages.json`` with the
documented filters ``To``, ``From`` and ``DateSent>=YYYY-MM-DD`` (GMT; sent as the query
parameter ``DateSent>``, which is how ``DateSent>=`` reads on the wire) and ``PageSize``. The
answer is ``{"messages": [{"sid", "to", "from", "body", "status", "date_created",
"date_sent", ...}], "next_page_uri": ...}``, newest ``date_sent`` first; the dates are RFC
2822 (``Wed, 15 Jan 2025 06:00:03 +0000``). A message matches when its ``to`` and ``body``
equal ours and its ``date_created`` is at or after ``since`` minus :data:`LOOKUP_SKEW`
(our clock and Twilio's may differ); its ``sid`` is the receipt. Pages are followed through
``next_page_uri`` (a path on ``base_url``) until a message sent before that bound (the
rest are older), the last page, :data:`LOOKUP_MAX_PAGES` pages, or ``timeout`` seconds for the
whole lookup; a lookup that cannot finish raises :class:`~.base.ProviderError` (unknown, not
"not found").

Nothing secret is logged: no auth token, no body (it may carry a code).
"""

from __future__ import annotations

import datetime as dt
import email.utils
import logging
import time
from typing import Any

import aiohttp

from propmubi.config import ConfigError
from propmubi.services import Clock
from propmubi_plugins.notifications.providers import http
from propmubi_plugins.notifications.providers.base import (
    Channel,
    Message,
    ProviderError,
    Receipt,
)
from propmubi_plugins.notifications.providers.settings import HttpSmsSettings

__all__ = ["LOOKUP_MAX_PAGES", "LOOKUP_PAGE_SIZE", "LOOKUP_SKEW", "HttpSmsProvider",
           "http_sms_factory"]

log = logging.getLogger(__name__)

#: A message created this long before ``since`` still matches a lookup: the difference
#: between our clock (``since``) and Twilio's (``date_created``), and the whole seconds of
#: RFC 2822 dates.
LOOKUP_SKEW = dt.timedelta(seconds=120)
#: Messages per page of a lookup (Twilio's default is 50, its maximum 1000).
LOOKUP_PAGE_SIZE = 100
#: Pages a lookup reads at most before it gives up (it cannot tell: the delivery stays
#: ambiguous and is asked again later, or ends ``unknown``).
LOOKUP_MAX_PAGES = 10


class HttpSmsProvider:
    """Sends SMS through a Twilio-compatible REST API (see the module's docstring)."""

    name: str = "http_sms"
    channel: Channel = "sms"
    #: Twilio has no idempotency key: a resend is a second SMS. Ambiguous attempts are
    #: settled by :meth:`lookup` instead.
    dedupes: bool = False

    def __init__(self, settings: HttpSmsSettings, clock: Clock) -> None:
        self.settings = settings
        self.clock = clock
        base = settings.base_url.rstrip("/")
        self.base = base
        self.url = f"{base}/2010-04-01/Accounts/{settings.account_sid}/Messages.json"
        self._headers = {"Authorization": aiohttp.encode_basic_auth(
            settings.account_sid, settings.auth_token), "Accept": "application/json"}

    def form(self, message: Message) -> dict[str, str]:
        """The request's form body."""
        form = {"To": message.to, "From": self.settings.sender, "Body": message.body}
        if message.template_id and self.settings.template_field:
            form[self.settings.template_field] = message.template_id
        return form

    async def send(self, message: Message) -> Receipt:
        """One POST; see the module for how its outcome is classified."""
        answer = await http.post(self.url, provider=self.name, limit=self.settings.timeout,
                                 headers=self._headers, data=self.form(message))
        body = answer.json()
        body = body if isinstance(body, dict) else {}
        if 200 <= answer.status < 300:
            sid = str(body.get("sid") or "")
            log.info("http_sms: accepted %s as %s", message.key, sid or "(no sid)")
            return Receipt(provider=self.name, provider_message_id=sid)
        code, text = body.get("code"), str(body.get("message") or "")[:200]
        what = f"HTTP {answer.status}" + (f", error {code}: {text}" if code or text else "")
        # 3xx (a moved endpoint) and refused credentials are ours to fix, not the message's.
        retryable = answer.status in (401, 403, 429) or not 400 <= answer.status < 500
        log.warning("http_sms: %s refused: %s", message.key, what)
        raise ProviderError(
            f"http_sms: {what}", retryable=retryable,
            retry_after=http.parse_retry_after(answer.headers.get("Retry-After"),
                                               self.clock.now()))


    async def lookup(self, message: Message, since: dt.datetime) -> Receipt | None:
        """Whether Twilio accepted ``message`` at or after ``since`` (see the module):
        the receipt of the message found, or None.

        :raises ProviderError: Twilio could not be asked, answered an error or something
            unreadable, or the pages ran out before the bound (retryable: ask again later).
        """
        bound = since.astimezone(dt.UTC) - LOOKUP_SKEW
        params: dict[str, str] | None = {
            "To": message.to, "From": self.settings.sender,
            "DateSent>": f"{bound:%Y-%m-%d}", "PageSize": str(LOOKUP_PAGE_SIZE)}
        deadline = time.monotonic() + self.settings.timeout
        url = self.url
        for _ in range(LOOKUP_MAX_PAGES):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            answer = await http.get(url, provider=f"{self.name}_lookup", limit=left,
                                    headers=self._headers, params=params)
            body = answer.json()
            if answer.status != 200 or not isinstance(body, dict) \
                    or not isinstance(body.get("messages"), list):
                code = body.get("code") if isinstance(body, dict) else None
                log.warning("http_sms: lookup of %s failed: HTTP %d %s", message.key,
                            answer.status, code or "")
                raise ProviderError(f"http_sms lookup: HTTP {answer.status}"
                                    + (f", error {code}" if code else ""), retryable=True)
            found, older = _match(body["messages"], message, bound)
            if found is not None:
                log.info("http_sms: lookup found %s as %s", message.key, found)
                return Receipt(provider=self.name, provider_message_id=found)
            following = body.get("next_page_uri")
            if older or not following:
                return None
            if not isinstance(following, str) or not following.startswith("/"):
                raise ProviderError("http_sms lookup: next_page_uri is not a path on "
                                    "base_url", retryable=True)
            url, params = f"{self.base}{following}", None  # it carries the filters
        raise ProviderError(f"http_sms lookup: no answer within {LOOKUP_MAX_PAGES} pages or "
                            f"{self.settings.timeout} s", retryable=True)


def _match(messages: list[Any], message: Message, bound: dt.datetime) -> tuple[str | None, bool]:
    """The sid of the first of ``messages`` (one page) that is ``message`` created at or
    after ``bound``, and whether the page reached messages sent before ``bound`` (the list is
    newest ``date_sent`` first: no later page can match).

    :raises ProviderError: a matching message whose ``date_created`` cannot be read (it may
        be ours: the lookup cannot tell).
    """
    older = False
    for item in messages:
        if not isinstance(item, dict):
            continue
        sent = _date(item.get("date_sent"))
        if sent is not None and sent < bound:
            older = True
        if item.get("to") != message.to or item.get("body") != message.body:
            continue
        created = _date(item.get("date_created"))
        if created is None:
            raise ProviderError("http_sms lookup: a matching message has no readable "
                                "date_created", retryable=True)
        if created >= bound and item.get("sid"):
            return str(item["sid"]), older
    return None, older


def _date(value: Any) -> dt.datetime | None:
    """An RFC 2822 date of Twilio's (``Wed, 15 Jan 2025 06:00:03 +0000``), or None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=dt.UTC)


def http_sms_factory(ctx: Any) -> HttpSmsProvider:
    """Build the ``http_sms`` provider from ``ctx.settings.http_sms``.

    :raises ConfigError: ``base_url``, ``account_sid``, ``auth_token`` or ``sender`` is
        missing.
    """
    settings: HttpSmsSettings = ctx.settings.http_sms
    for key in ("base_url", "account_sid", "auth_token", "sender"):
        if not getattr(settings, key):
            raise ConfigError(f"plugins.notifications.http_sms.{key}: required by the "
                              "'http_sms' provider")
    if not settings.base_url.startswith(("https://", "http://")):
        raise ConfigError("plugins.notifications.http_sms.base_url: an http(s) URL, such as "
                          "https://api.twilio.com")
    return HttpSmsProvider(settings, ctx.clock)
