"""SMS providers offered through ``propmubi_sms_providers``: ``console`` and ``http``.

A provider factory takes the consuming plugin's context (it reads ``ctx.settings``, the
``[plugins.auth]`` table, and ``ctx.config``) and returns an object with ``async send(to,
body)`` (``to`` in E.164) that raises :class:`SmsError` when the message was not accepted.
Each send opens its own HTTP session: OTP traffic is a few messages a second at most, and a
session per send needs no lifecycle to manage.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from typing import Any

import aiohttp
from prometheus_client import Counter, Histogram

from propmubi.config import ConfigError
from propmubi.context import PluginContext
from propmubi_plugins.auth.settings import AuthSettings

__all__ = ["ConsoleSms", "HttpSms", "SmsError"]

log = logging.getLogger(__name__)

SMS_SENT = Counter("propmubi_auth_sms_sent_total",
                   "SMS messages handed to a provider, by provider and outcome.",
                   ["provider", "outcome"])
SMS_ATTEMPTS = Counter("propmubi_auth_sms_attempts_total",
                       "HTTP attempts to send an SMS (retries included), by result.",
                       ["provider", "result"])
SMS_SECONDS = Histogram("propmubi_auth_sms_request_duration_seconds",
                        "Time of one HTTP attempt to the SMS provider.", ["provider"],
                        buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))


class SmsError(Exception):
    """The provider did not accept the message."""


class ConsoleSms:
    """Logs each message instead of sending it (development and tests only).

    The last messages are also kept in :attr:`outbox` so that a developer's tools (and the
    tests) can read the code without a phone.
    """

    name = "console"

    def __init__(self, ctx: PluginContext[Any, Any]) -> None:
        if ctx.config.app.environment == "production":
            raise ConfigError("plugins.auth.sms_provider: the 'console' SMS provider only logs "
                              "codes and is refused in production; configure 'http'")
        self.outbox: collections.deque[tuple[str, str]] = collections.deque(maxlen=100)

    async def send(self, to: str, body: str) -> None:
        """Log the message (it carries the code: never in production)."""
        self.outbox.append((to, body))
        log.warning("console SMS to %s: %s", to, body)
        SMS_SENT.labels(self.name, "sent").inc()


class HttpSms:
    """A Twilio-compatible REST API: ``POST {base}/2010-04-01/Accounts/{sid}/Messages.json``
    with a form body and basic auth; retries with exponential back-off on 5xx, 429, timeouts
    and connection errors; a 4xx is final."""

    name = "http"

    def __init__(self, ctx: PluginContext[AuthSettings, Any]) -> None:
        settings = ctx.settings
        for key in ("sms_http_base_url", "sms_http_account_sid", "sms_http_auth_token",
                    "sms_http_from"):
            if not getattr(settings, key):
                raise ConfigError(f"plugins.auth.{key}: required by the 'http' SMS provider")
        base = settings.sms_http_base_url.rstrip("/")
        self.url = f"{base}/2010-04-01/Accounts/{settings.sms_http_account_sid}/Messages.json"
        self.headers = {"Authorization": aiohttp.encode_basic_auth(
            settings.sms_http_account_sid, settings.sms_http_auth_token)}
        self.sender = settings.sms_http_from
        self.timeout = aiohttp.ClientTimeout(total=settings.sms_http_timeout)
        self.attempts = settings.sms_http_attempts
        self.backoff = settings.sms_http_backoff

    async def _attempt(self, session: aiohttp.ClientSession, form: dict[str, str]
                       ) -> tuple[bool, str]:
        """One POST: (accepted, what happened); raises SmsError when retrying is pointless."""
        started = time.perf_counter()
        try:
            async with session.post(self.url, data=form, headers=self.headers) as response:
                text = await response.text()
        except (aiohttp.ClientConnectionError, TimeoutError) as exc:
            SMS_ATTEMPTS.labels(self.name, "error").inc()
            return False, f"{type(exc).__name__}: {exc}"
        finally:
            SMS_SECONDS.labels(self.name).observe(time.perf_counter() - started)
        if 200 <= response.status < 300:
            SMS_ATTEMPTS.labels(self.name, "ok").inc()
            return True, ""
        SMS_ATTEMPTS.labels(self.name, str(response.status // 100) + "xx").inc()
        if response.status >= 500 or response.status == 429:
            return False, f"HTTP {response.status}"
        SMS_SENT.labels(self.name, "rejected").inc()
        raise SmsError(f"the SMS provider refused the message: HTTP {response.status} "
                       f"{text[:200]}")

    async def send(self, to: str, body: str) -> None:
        """Send, retrying transient failures; raise :class:`SmsError` when it never worked."""
        form = {"To": to, "From": self.sender, "Body": body}
        last = ""
        async with aiohttp.ClientSession(timeout=self.timeout) as session:
            for attempt in range(self.attempts):
                if attempt:
                    await asyncio.sleep(self.backoff * 2 ** (attempt - 1))
                ok, last = await self._attempt(session, form)
                if ok:
                    SMS_SENT.labels(self.name, "sent").inc()
                    return
                log.warning("SMS attempt %d/%d failed: %s", attempt + 1, self.attempts, last)
        SMS_SENT.labels(self.name, "failed").inc()
        raise SmsError(f"the SMS provider failed {self.attempts} times; last: {last}")


def providers() -> dict[str, Any]:
    """The factories this plugin offers."""
    return {"console": ConsoleSms, "http": HttpSms}
