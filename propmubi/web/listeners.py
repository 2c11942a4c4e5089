"""The web role's listening sockets, whose connections must send each request head in time.

aiohttp (3.14) has no option bounding the time to read a request line and its headers: its
keep-alive timer does close a connection still waiting for a whole head, but only after
``keepalive_timeout``, which is meant for idle connections (aiohttp's default: an hour). A
client that sends half a request and goes quiet holds a connection and a file descriptor
until then; fifty such clients cost nothing to run. Here every connection is wrapped in
:class:`_Connection`, which arms a timer of ``http.header_timeout`` seconds

* when the connection opens, and
* when the first byte of a further request arrives on an idle keep-alive connection,

and disarms it once aiohttp hands the parsed request to the application (ahead of every
middleware, so requests answered early count too). When the timer fires first, the
connection is closed. A keep-alive connection idle *between* requests has no timer of ours:
aiohttp's ``keepalive_timeout`` (``http.keepalive_timeout``) governs it. Request bodies are
bounded by the route's handler timeout, not here.

Not covered: the head of a request pipelined behind one still being handled (its bytes arrive
while the connection is busy) is bounded by the keep-alive timer only; browsers and nginx do
not pipeline. Conversely, body bytes a handler left unread that arrive after it answered arm
the timer, so such a connection closes after ``header_timeout`` unless a request follows.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, cast

from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from prometheus_client import Counter

from propmubi.config import HttpSection

__all__ = ["HEADER_TIMEOUTS", "addresses", "listen"]

log = logging.getLogger("propmubi.server")

HEADER_TIMEOUTS = Counter("propmubi_http_header_timeouts_total",
                          "Connections closed because a request head did not arrive in time.")


class _Connection(asyncio.Protocol):
    """One client connection: aiohttp's protocol object, plus the request-head timer.

    Every protocol callback is passed on unchanged; only ``connection_made`` and
    ``data_received`` (re)arm the timer, and :class:`_Deadlines` disarms it.
    """

    def __init__(self, inner: RequestHandler, deadlines: _Deadlines) -> None:
        self.inner = inner
        self.deadlines = deadlines
        self.transport: asyncio.Transport | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.busy = False  # the application is handling one of this connection's requests

    def arm(self) -> None:
        loop = asyncio.get_running_loop()
        self.timer = loop.call_later(self.deadlines.timeout, self.expire)

    def disarm(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def expire(self) -> None:
        self.timer = None
        if self.busy or self.transport is None or self.transport.is_closing():
            return
        HEADER_TIMEOUTS.inc()
        log.debug("closing a connection: no complete request head within %gs",
                  self.deadlines.timeout)
        self.transport.close()  # connection_lost follows and cleans aiohttp's side up

    # -- asyncio.Protocol ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        self.deadlines.open[self.inner] = self
        self.arm()
        self.inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        # Armed before aiohttp parses: a complete head reaches the application (and disarms)
        # on a later turn of the event loop.
        if not self.busy and self.timer is None:
            self.arm()
        self.inner.data_received(data)

    def eof_received(self) -> None:
        # aiohttp's returns None too: the transport closes itself once the peer's half is.
        self.inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self.disarm()
        self.deadlines.open.pop(self.inner, None)
        self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()


Handler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]


class _Deadlines:
    """The request-head timers of one aiohttp server's connections."""

    def __init__(self, server: web.Server, timeout: float) -> None:
        self.server = server
        self.timeout = timeout
        self.open: dict[Any, _Connection] = {}  # aiohttp's protocol object -> its wrapper
        # aiohttp calls server.request_handler for each request whose head it has parsed;
        # each connection copies it when created, so it is wrapped before the first one.
        self.app_handler: Handler = server.request_handler
        server.request_handler = self.handle

    def connection(self) -> _Connection:
        """The protocol factory given to the event loop's listening servers."""
        return _Connection(self.server(), self)

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        conn = self.open.get(request.protocol)
        if conn is None:  # a connection accepted some other way: nothing to time
            return await self.app_handler(request)
        conn.busy = True
        conn.disarm()
        try:
            return await self.app_handler(request)
        finally:
            # The next request's first byte arms the timer again (data_received).
            conn.busy = False


async def listen(runner: web.AppRunner, http: HttpSection) -> list[asyncio.Server]:
    """Open the listening socket(s) of ``http`` for ``runner`` (set up, without sites).

    Close them (``close()``) before ``runner.cleanup()``: then new connections are refused
    while in-flight requests drain.
    """
    server = runner.server
    assert server is not None, "runner.setup() first"
    factory = _Deadlines(server, http.header_timeout).connection
    loop = asyncio.get_running_loop()
    if http.unix_socket:
        return [await loop.create_unix_server(factory, http.unix_socket, backlog=1024)]
    return [await loop.create_server(factory, http.host, http.port, backlog=1024,
                                     reuse_port=http.reuse_port or None)]


def addresses(servers: list[asyncio.Server]) -> list[str]:
    """``http://host:port`` or the socket path of each listening socket, for the log."""
    names = []
    for srv in servers:
        for sock in srv.sockets:
            name = sock.getsockname()
            names.append(f"http://{name[0]}:{name[1]}" if isinstance(name, tuple) else str(name))
    return names
