"""``Idempotency-Key`` on routes declared ``idempotent=True``: a retried request gets the first
answer again instead of running the handler twice.

The client may send ``Idempotency-Key: <1 to 255 visible ASCII characters>`` (anything else:
400 naming the header). Without the header the route behaves as any other. With it:

- The key belongs to the caller (the principal's subject, else the per-subject rate-limit
  subject, else the client address) and to the route (method and route name): another caller's
  same key, or the same key on another route, is another key.
- The request's fingerprint is a SHA-256 of the method, the path (with its parameters), the
  raw query string and the raw body bytes.
- The first request with a key claims it, in flight, for a lease (the route's timeout plus 30 s,
  at least 60 s: a crashed process does not hold the key longer), runs the handler, and stores
  the answer: status, the headers in :data:`KEPT_HEADERS` and the body bytes, kept
  ``[http] idempotency_ttl`` seconds (24 h by default).
- The same key with the same fingerprint, after that, gets the stored answer byte for byte,
  with ``Idempotent-Replayed: true``; the handler does not run. (A stored problem document
  names the request id of the request that produced it; the ``X-Request-ID`` header is the
  retry's own.)
- The same key with another fingerprint: 422 ``idempotency-key-reused`` (checked first, while
  the first request is in flight too).
- The same key while the first request is still in flight: 409 ``idempotency-key-in-flight``
  with ``Retry-After: 1``.

What is stored: any answer the handler produced (returned or raised) with a status below 500,
except 429. Never stored, the key being released so that a retry with it runs the handler
again: 5xx answers (503 and 504 included), 429, an exception escaping the handler, a
cancelled request, and an answer whose body is not in memory (a prepared or streamed
response). (Stripe stores its 500s; here a server fault never pins a key.) Nothing is
claimed for refusals that come before the handler runs (401/403, rate limits, a bad body,
path or query: 400/413/415/422), as Stripe does: the key stays unused.

The answer is stored after the handler returns, outside its transaction: if the process dies
in between, or the row cannot be written, the caller still gets its answer where it can, the
key stays claimed until its lease lapses (409 meanwhile), and then a retry runs the handler
again.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import uuid
from collections.abc import Awaitable, Callable

from aiohttp import web
from multidict import CIMultiDict

from propmubi.errors import (
    BadRequest,
    FieldError,
    IdempotencyKeyInFlight,
    IdempotencyKeyReused,
    ProblemError,
)
from propmubi.web import idempotency_store as store
from propmubi.web.appkeys import PRINCIPAL, REQUEST_ID, SERVICES, SUBJECT
from propmubi.web.problems import error_response
from propmubi.web.ratelimit import client_ip

__all__ = ["HEADER", "KEPT_HEADERS", "REPLAYED_HEADER", "fingerprint", "key_of", "run",
           "storable"]

log = logging.getLogger(__name__)

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
#: Response headers stored with an answer and replayed with it (others are per response:
#: the request id, rate-limit counts, security headers).
KEPT_HEADERS = frozenset({
    "cache-control", "content-disposition", "content-encoding", "content-language",
    "content-type", "etag", "last-modified", "link", "location", "retry-after",
    "www-authenticate"})
_KEY = re.compile(r"[\x21-\x7e]{1,255}")
MIN_LEASE = 60.0
LEASE_MARGIN = 30.0
IN_FLIGHT_RETRY_AFTER = "1"

Call = Callable[[], Awaitable[web.StreamResponse]]


def key_of(request: web.Request) -> str | None:
    """The request's ``Idempotency-Key``, or None without one.

    :raises BadRequest: the header is repeated, empty, longer than 255 characters, or holds
        anything but visible ASCII.
    """
    values = request.headers.getall(HEADER, [])
    if not values:
        return None
    if len(values) == 1 and _KEY.fullmatch(values[0]):
        return values[0]
    message = "must be sent once, 1 to 255 visible ASCII characters (a UUID, say)"
    raise BadRequest(f"the {HEADER} header {message}",
                     errors=[FieldError("header", HEADER, message)])


def fingerprint(request: web.Request, body: bytes) -> str:
    """SHA-256 (hex) of the method, the raw path, the raw query string and the body bytes."""
    digest = hashlib.sha256()
    url = request.rel_url
    for part in (request.method, url.raw_path, url.raw_query_string):
        digest.update(part.encode())
        digest.update(b"\0")  # none of them holds a NUL; the body comes last
    digest.update(body)
    return digest.hexdigest()


def _scope(request: web.Request, trust_forwarded: bool) -> str:
    principal = request.get(PRINCIPAL)
    if principal is not None:
        return f"subject:{principal.subject}"
    subject = request.get(SUBJECT)
    if subject:
        return f"subject:{subject}"
    return f"ip:{client_ip(request, trust_forwarded)}"


def storable(status: int) -> bool:
    """Whether an answer with ``status`` is stored: below 500 (so never 503 or 504), and not
    429."""
    return status < 500 and status != 429


def _replay(record: store.Record) -> web.Response:
    headers = CIMultiDict((name, value) for name, value in record.headers)
    headers[REPLAYED_HEADER] = "true"
    return web.Response(status=record.status or 200, body=record.body or None, headers=headers)


def _in_memory(response: web.StreamResponse) -> bytes | None:
    """The body of an answer held in memory, or None for one that is streamed."""
    if not isinstance(response, web.Response) or response.prepared:
        return None
    body = response.body
    if body is None:
        return b""
    return bytes(body) if isinstance(body, (bytes, bytearray)) else None


def _kept(response: web.StreamResponse) -> list[list[str]]:
    return [[name, value] for name, value in response.headers.items()
            if name.lower() in KEPT_HEADERS]


async def run(request: web.Request, route: str, route_timeout: float | None, key: str,
              body: bytes, call: Call) -> web.StreamResponse:
    """Answer ``request`` for the route named ``route`` under ``key`` (the module's rules):
    replay, refuse, or claim the key and await ``call()``, the handler.

    :param route_timeout: the route's own timeout (None: ``[http] request_timeout``); the
        lease follows from it.
    :param body: the raw body bytes, already read.
    :raises IdempotencyKeyReused: the key was used for another request.
    :raises IdempotencyKeyInFlight: the key's first request is still running.
    """
    services = request.app[SERVICES]
    http = services.config.http
    slot = store.Slot(scope=_scope(request, http.trust_forwarded),
                      route=f"{request.method} {route}", key=key)
    digest = fingerprint(request, body)
    lease = max(MIN_LEASE, (route_timeout or http.request_timeout) + LEASE_MARGIN)
    owner = uuid.uuid4()
    claim = await store.claim(services.db, slot, digest, owner, lease, http.idempotency_ttl)
    if not claim.mine:
        record = claim.record
        if record is not None and record.fingerprint != digest:
            raise IdempotencyKeyReused(
                f"this {HEADER} was used with a different request (method, path, query or "
                "body); use a new key for a new request")
        if record is None or record.state != "done":
            raise IdempotencyKeyInFlight(
                f"a request with this {HEADER} is still in progress; retry shortly",
                headers={"Retry-After": IN_FLIGHT_RETRY_AFTER})
        return _replay(record)

    # Shielded: a request cancelled meanwhile (its deadline) still stores or releases. A
    # failure is logged, not raised: the caller gets the handler's answer (or error), and the
    # key stays claimed until its lease lapses (409 meanwhile).
    async def release() -> None:
        try:
            await asyncio.shield(store.release(services.db, slot, owner))
        except Exception:
            log.warning("%s: an %s could not be released", route, HEADER, exc_info=True)

    async def keep(response: web.StreamResponse, payload: bytes) -> None:
        try:
            await asyncio.shield(store.complete(services.db, slot, owner, response.status,
                                                _kept(response), payload,
                                                http.idempotency_ttl))
        except Exception:
            log.warning("%s: the answer to an %s could not be stored", route, HEADER,
                        exc_info=True)

    try:
        response = await call()
    except (ProblemError, web.HTTPException) as exc:
        if exc.status >= 400 and not storable(exc.status):
            await release()
            raise
        if exc.status >= 400:
            # Rendered here, as the edge would, so that the stored bytes are those sent.
            answer = error_response(exc, request, request.get(REQUEST_ID, ""))
            await keep(answer, _in_memory(answer) or b"")
            return answer
        assert isinstance(exc, web.HTTPException)  # a raised redirect: aiohttp wants it raised
        await keep(exc, _in_memory(exc) or b"")
        raise
    except BaseException:
        await release()
        raise
    payload = _in_memory(response)
    if payload is None:
        log.warning("%s: a streamed answer cannot be stored; %s released", route, HEADER)
        await release()
    elif storable(response.status):
        await keep(response, payload)
    else:
        await release()
    return response
