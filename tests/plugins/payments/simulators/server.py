"""What the provider simulators share: a real aiohttp server on 127.0.0.1 (a random port),
a record of the requests it received, scripted faults, and webhook delivery.

A simulator holds its state in memory; the test drives outcomes through its Python methods
(a customer paying, a refund being processed, a day's settlement), which return the webhook
the provider would send, signed as the provider signs it.
"""

from __future__ import annotations

import asyncio
import collections
import secrets
import string
from typing import Any, Self

import aiohttp
import attrs
import orjson
from aiohttp import web

__all__ = ["LoopbackServer", "Recorded", "Webhook", "random_id"]

_ALPHABET = string.ascii_letters + string.digits


def random_id(prefix: str, length: int = 14) -> str:
    """An id shaped like the providers' (``pay_`` + 14 letters and digits)."""
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(length))


@attrs.frozen
class Recorded:
    """One request the simulator received (faulted ones included)."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes


@attrs.frozen
class Webhook:
    """A webhook as the provider would POST it: the exact body bytes and the headers."""

    event_id: str
    event_type: str
    body: bytes
    headers: dict[str, str]

    @property
    def payload(self) -> dict[str, Any]:
        """The body, parsed."""
        parsed: dict[str, Any] = orjson.loads(self.body)
        return parsed


class LoopbackServer:
    """The HTTP side of a simulator; subclasses add routes, authentication and error bodies.

    Faults: :meth:`fail_next` answers the next calls with an error status, :meth:`hang_next`
    holds them without answering (until :meth:`stop`), so a client's timeout fires.
    """

    def __init__(self) -> None:
        self.base_url = ""
        self.requests: list[Recorded] = []
        self.webhooks: list[Webhook] = []  # every webhook produced, oldest first
        self._faults: collections.deque[tuple[str, int]] = collections.deque()
        self._runner: web.AppRunner | None = None
        self._released = asyncio.Event()

    # -- for subclasses -------------------------------------------------------------------
    def add_routes(self, app: web.Application) -> None:
        raise NotImplementedError

    def authenticate(self, request: web.Request) -> web.Response | None:
        """None when the request's credentials are right; else the provider's 401."""
        raise NotImplementedError

    def error(self, status: int, message: str, **fields: Any) -> web.Response:
        """An error answer in the provider's format."""
        raise NotImplementedError

    # -- lifecycle --------------------------------------------------------------------------
    async def start(self) -> None:
        app = web.Application(middlewares=[self._middleware])
        self.add_routes(app)
        self._runner = web.AppRunner(app, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        self._released.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- faults and requests ----------------------------------------------------------------
    def fail_next(self, n: int = 1, *, status: int = 500) -> None:
        """Answer the next ``n`` API calls with ``status`` (the provider's error body)."""
        self._faults.extend([("fail", status)] * n)

    def clear_faults(self) -> None:
        """Answer normally again (drop the faults not used yet)."""
        self._faults.clear()

    def hang_next(self, n: int = 1) -> None:
        """Hold the next ``n`` API calls without answering until the simulator stops."""
        self._faults.extend([("hang", 0)] * n)

    def calls(self, method: str, path_prefix: str = "") -> list[Recorded]:
        """The recorded requests with this method whose path starts with ``path_prefix``."""
        return [r for r in self.requests
                if r.method == method and r.path.startswith(path_prefix)]

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        body = await request.read()
        self.requests.append(Recorded(request.method, request.path, dict(request.query),
                                      dict(request.headers), body))
        if self._faults:
            fault, status = self._faults.popleft()
            if fault == "hang":
                await self._released.wait()
                return self.error(503, "the simulator stopped")
            return self.error(status, f"simulated failure (HTTP {status})")
        refused = self.authenticate(request)
        if refused is not None:
            return refused
        response: web.StreamResponse = await handler(request)
        return response

    # -- webhooks ---------------------------------------------------------------------------
    def _emit(self, webhook: Webhook) -> Webhook:
        self.webhooks.append(webhook)
        return webhook

    async def deliver(self, url: str, webhook: Webhook) -> tuple[int, str]:
        """POST ``webhook`` to ``url`` as the provider would; the answer's status and text."""
        async with aiohttp.ClientSession() as session, session.post(
                url, data=webhook.body, headers=webhook.headers) as response:
            return response.status, await response.text()


def json_body(data: Any) -> bytes:
    """Compact JSON, as the providers send it."""
    return orjson.dumps(data)
