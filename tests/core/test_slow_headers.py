"""`propmubi serve` closes connections that do not send a whole request head in time
(``http.header_timeout``), while idle keep-alive connections live by ``http.keepalive_timeout``.

Raw sockets against a real `serve` process: half a request line, a request line without the
end of its headers, a head trickled byte by byte, nothing at all.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import aiohttp
import pytest

from propmubi.config import Config
from tests.core.test_server import CLIENT_TIMEOUT, get, server_environ

pytestmark = pytest.mark.slow

# Far above the timeouts under test: only there so that a connection the server never closes
# fails the test instead of hanging it.
CLOSE_WITHIN = 30.0
REQUEST = b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n"


async def connect(port: int, first: bytes = b"") -> tuple[asyncio.StreamReader,
                                                          asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    if first:
        writer.write(first)
        await writer.drain()
    return reader, writer


async def closed_by_server(reader: asyncio.StreamReader) -> bool:
    """Whether the server ends the connection (EOF or reset) within CLOSE_WITHIN, without
    having sent anything."""
    try:
        data = await asyncio.wait_for(reader.read(), CLOSE_WITHIN)
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
    assert data == b"", f"the server answered a request it never fully got: {data!r}"
    return True


async def response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """Status and body of one HTTP/1.1 response with a Content-Length."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), CLOSE_WITHIN)
    lines = head.decode("latin-1").split("\r\n")
    length = next(int(line.split(":", 1)[1]) for line in lines
                  if line.lower().startswith("content-length:"))
    body = await asyncio.wait_for(reader.readexactly(length), CLOSE_WITHIN)
    return int(lines[0].split()[1]), body


async def header_timeouts(port: int) -> float:
    """The server's ``propmubi_http_header_timeouts_total``."""
    async with aiohttp.ClientSession(timeout=CLIENT_TIMEOUT) as session:
        async with session.get(f"http://127.0.0.1:{port}/metrics") as resp:
            text = await resp.text()
    for line in text.splitlines():
        if line.startswith("propmubi_http_header_timeouts_total "):
            return float(line.split()[1])
    raise AssertionError("no propmubi_http_header_timeouts_total in /metrics")


def close(writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError):
        writer.close()


async def test_half_sent_requests_are_closed_after_the_header_timeout(
        migrated: Config, spawn: Any) -> None:
    # The keep-alive timeout is far away: only the header timeout can close these.
    proc = spawn(["serve"], server_environ(migrated, PROPMUBI_HTTP__HEADER_TIMEOUT="1",
                                           PROPMUBI_HTTP__KEEPALIVE_TIMEOUT="300"))
    await proc.wait_http()
    partial = [b"GET /hea", b"GET /health HTTP/1.1\r\n",
               b"GET /health HTTP/1.1\r\nHost: localhost\r\nX-Slow: 1", b""] * 5
    slow = [await connect(proc.port, first) for first in partial]
    trickle = await connect(proc.port, REQUEST[:1])

    async def keep_trickling() -> None:
        # A byte every 0.2 s: arriving data does not extend the deadline.
        with contextlib.suppress(OSError):
            for i in range(1, len(REQUEST) - 2):
                await asyncio.sleep(0.2)
                trickle[1].write(REQUEST[i:i + 1])
                await trickle[1].drain()

    trickling = asyncio.create_task(keep_trickling())
    try:
        # Meanwhile a whole request on another connection is answered.
        status, body = await get(proc.port, "/health")
        assert status == 200, body
        for i, (reader, _) in enumerate(slow):
            assert await closed_by_server(reader), f"still open: {partial[i]!r}"
        assert await closed_by_server(trickle[0]), "a trickled head kept its connection"
        status, body = await get(proc.port, "/health")
        assert status == 200, body
        assert await header_timeouts(proc.port) == len(slow) + 1
    finally:
        trickling.cancel()
        for _, writer in [*slow, trickle]:
            close(writer)
    assert proc.popen.poll() is None, proc.output()


async def test_idle_keep_alive_connections_outlive_the_header_timeout(
        migrated: Config, spawn: Any) -> None:
    proc = spawn(["serve"], server_environ(migrated, PROPMUBI_HTTP__HEADER_TIMEOUT="1",
                                           PROPMUBI_HTTP__KEEPALIVE_TIMEOUT="300"))
    await proc.wait_http()
    reader, writer = await connect(proc.port, REQUEST)
    again_reader, again_writer = await connect(proc.port, REQUEST)
    try:
        assert (await response(reader))[0] == 200
        assert (await response(again_reader))[0] == 200
        # Idle between requests for three header timeouts: still open, and it serves.
        await asyncio.sleep(3)
        writer.write(REQUEST)
        await writer.drain()
        assert (await response(reader))[0] == 200
        # The first byte of a further request starts the clock again.
        again_writer.write(REQUEST[:10])
        await again_writer.drain()
        assert await closed_by_server(again_reader), "a half-sent second request stayed open"
    finally:
        close(writer)
        close(again_writer)


async def test_idle_keep_alive_connections_end_after_the_keepalive_timeout(
        migrated: Config, spawn: Any) -> None:
    proc = spawn(["serve"], server_environ(migrated, PROPMUBI_HTTP__KEEPALIVE_TIMEOUT="1"))
    await proc.wait_http()
    reader, writer = await connect(proc.port, REQUEST)
    try:
        assert (await response(reader))[0] == 200
        assert await closed_by_server(reader), "an idle keep-alive connection stayed open"
    finally:
        close(writer)
