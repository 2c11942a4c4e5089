"""The HTTP plumbing the Razorpay and Stripe clients share.

One :class:`ProviderHttp` per provider object. It opens its own aiohttp session on first use
(with a total timeout) unless it was given one, in which case the caller owns and closes that
session; every request also carries the timeout, so a shared session cannot make it wait
longer. Failures become :class:`ProviderError`: a timeout, a connection error, a 5xx, 409 or
429 is retryable; any other 4xx is not, and carries the provider's own error description.
Each request is one attempt: retrying is the caller's decision.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import quote

import aiohttp
import orjson
from prometheus_client import Counter, Histogram

from propmubi_plugins.payments.providers.base import ProviderError

__all__ = ["ProviderHttp", "read_answer", "segment"]

T = TypeVar("T")

log = logging.getLogger(__name__)

REQUESTS = Counter("propmubi_payments_provider_requests_total",
                   "HTTP requests to a payment provider, by provider, operation and result.",
                   ["provider", "operation", "result"])
SECONDS = Histogram("propmubi_payments_provider_request_duration_seconds",
                    "Time of one HTTP request to a payment provider.", ["provider", "operation"],
                    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))

#: 4xx statuses that still say "try again later" (a concurrent request with the same
#: idempotency key; rate limiting).
_RETRYABLE_4XX = frozenset({409, 429})


class ProviderHttp:
    """JSON over HTTP to one provider's API.

    :param provider: the provider's name, for errors, logs and metrics.
    :param base_url: scheme and host (a path prefix is kept), without a trailing slash.
    :param headers: sent with every request (authorisation).
    :param timeout: total seconds for one request, connection included.
    :param session: a session to use instead of opening one; it is not closed here.
    """

    def __init__(self, provider: str, base_url: str, *, headers: Mapping[str, str],
                 timeout: float, session: aiohttp.ClientSession | None = None) -> None:
        self.provider = provider
        self.base_url = base_url.rstrip("/")
        self.headers = dict(headers)
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self._session = session
        self._owned = session is None

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or (self._owned and self._session.closed):
            self._session = aiohttp.ClientSession(timeout=self.timeout)
        return self._session

    async def close(self) -> None:
        """Close the session if this object opened it."""
        if self._owned and self._session is not None and not self._session.closed:
            await self._session.close()

    async def request(self, operation: str, method: str, path: str, *,
                      json: Any = None, form: list[tuple[str, str]] | None = None,
                      params: list[tuple[str, str]] | None = None,
                      headers: Mapping[str, str] | None = None) -> dict[str, Any]:
        """Send one request and return the JSON object the provider answered.

        :param operation: a short name for metrics and messages (``create_order``...).
        :raises ProviderError: on any failure (see the module's docstring).
        """
        url = self.base_url + path
        started = time.perf_counter()
        try:
            async with self._get_session().request(
                    method, url, json=json, data=form, params=params, timeout=self.timeout,
                    headers={**self.headers, **(headers or {})}) as response:
                status = response.status
                body = await response.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            REQUESTS.labels(self.provider, operation, "error").inc()
            reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            log.warning("%s %s: %s", self.provider, operation, reason)
            raise ProviderError(f"{self.provider} {operation}: {reason}", retryable=True) from exc
        finally:
            SECONDS.labels(self.provider, operation).observe(time.perf_counter() - started)
        REQUESTS.labels(self.provider, operation, f"{status // 100}xx").inc()
        try:
            answer = orjson.loads(body) if body else None
        except orjson.JSONDecodeError:
            answer = None
        if 200 <= status < 300:
            if not isinstance(answer, dict):
                raise ProviderError(f"{self.provider} {operation}: the answer is not a JSON "
                                    f"object (HTTP {status})", retryable=True, status=status)
            return answer
        description, code = _error_of(answer, body)
        retryable = status >= 500 or status in _RETRYABLE_4XX
        raise ProviderError(f"{self.provider} {operation}: HTTP {status}: {description}",
                            retryable=retryable, status=status, code=code)


def _error_of(answer: Any, body: bytes) -> tuple[str, str | None]:
    """The description and code of an error answer: Razorpay's ``{"error": {"code",
    "description"}}`` and Stripe's ``{"error": {"type", "code", "message"}}``."""
    error = answer.get("error") if isinstance(answer, dict) else None
    if isinstance(error, dict):
        description = error.get("description") or error.get("message") or ""
        code = error.get("code") or error.get("type")
        return str(description), (str(code) if code else None)
    return body[:200].decode("utf-8", "replace"), None


def read_answer(provider: str, value: Any, parse: Callable[[Any], T]) -> T:
    """``parse(value)``; an answer not in the provider's documented shape becomes a
    ProviderError that is not retryable (asking again gives the same answer)."""
    try:
        return parse(value)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ProviderError(f"{provider}: unexpected answer: {exc!r}", retryable=False) from exc


def segment(value: str) -> str:
    """An id made safe as one URL path segment (a ``/`` or ``?`` in it cannot reach another
    endpoint)."""
    return quote(value, safe="")
