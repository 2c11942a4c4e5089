"""One HTTP request of an HTTP provider (``http_sms``, ``fcm``), and what it tells about
delivery.

:func:`post` (and :func:`get`, a provider's lookup) makes exactly one attempt (no retries:
the delivery loop decides) in a session of its own (a few requests a second at most; nothing
to open or close with the process). It
knows whether the request's headers were written before something went wrong: a failure
before (refused connection, DNS, connect timeout) means the provider never saw the request;
a failure after (a timeout waiting for the answer, a dropped connection) means it may have
accepted it, which :class:`~.base.ProviderError` says with ``maybe_sent=True``.

Redirects are not followed (a redirect would carry credentials to another address). Each
attempt is counted and timed by provider (``propmubi_notifications_provider_*`` metrics).
"""

from __future__ import annotations

import datetime as dt
import email.utils
import time
from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any

import aiohttp
import attrs
from prometheus_client import Counter, Histogram

from propmubi_plugins.notifications.providers.base import ProviderError

__all__ = ["HttpAnswer", "get", "parse_retry_after", "post"]

ATTEMPTS = Counter("propmubi_notifications_provider_attempts_total",
                   "Requests to a notification provider, by provider and result "
                   "(2xx, 4xx, 5xx, error: no answer).", ["provider", "result"])
SECONDS = Histogram("propmubi_notifications_provider_request_duration_seconds",
                    "Time of one request to a notification provider.", ["provider"],
                    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))


@attrs.frozen
class HttpAnswer:
    """What the provider answered."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        """The body as JSON, or None when it is not JSON."""
        import orjson

        try:
            return orjson.loads(self.body)
        except orjson.JSONDecodeError:
            return None


async def _headers_sent(session: aiohttp.ClientSession, trace: SimpleNamespace,
                        params: Any) -> None:
    trace.trace_request_ctx.sent = True


def parse_retry_after(value: str | None, now: dt.datetime) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delay-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - now).total_seconds())


async def post(url: str, *, provider: str, limit: float,
               headers: Mapping[str, str] | None = None, data: Mapping[str, str] | None = None,
               json: Any = None) -> HttpAnswer:
    """POST once and return the answer, whatever its status.

    :param limit: seconds for the whole request (connect, send, answer).

    :raises ProviderError: no answer: ``retryable``, and ``maybe_sent`` when the request's
        headers had been written.
    """
    return await _request("POST", url, provider=provider, limit=limit, headers=headers,
                          data=data, json=json)


async def get(url: str, *, provider: str, limit: float,
              headers: Mapping[str, str] | None = None,
              params: Mapping[str, str] | None = None) -> HttpAnswer:
    """GET once (a provider's read: a lookup) and return the answer, whatever its status.

    :raises ProviderError: no answer (``retryable``; a read changes nothing, so whether it
        was written does not matter).
    """
    return await _request("GET", url, provider=provider, limit=limit, headers=headers,
                          params=params)


async def _request(method: str, url: str, *, provider: str, limit: float,
                   headers: Mapping[str, str] | None = None,
                   data: Mapping[str, str] | None = None, json: Any = None,
                   params: Mapping[str, str] | None = None) -> HttpAnswer:
    tracing = aiohttp.TraceConfig()
    tracing.on_request_headers_sent.append(_headers_sent)
    progress = SimpleNamespace(sent=False)
    started = time.perf_counter()
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=limit),
                                         trace_configs=[tracing]) as session:
            async with session.request(method, url, headers=headers, data=data, json=json,
                                       params=params, allow_redirects=False,
                                       trace_request_ctx=progress) as response:
                body = await response.read()
                answer = HttpAnswer(response.status, dict(response.headers), body)
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        ATTEMPTS.labels(provider, "error").inc()
        what = "no answer" if progress.sent else "not sent"
        raise ProviderError(f"{provider}: {what}: {type(exc).__name__} {exc}"[:300],
                            retryable=True,
                            maybe_sent=progress.sent and method == "POST") from None
    finally:
        SECONDS.labels(provider).observe(time.perf_counter() - started)
    ATTEMPTS.labels(provider, f"{answer.status // 100}xx").inc()
    return answer
