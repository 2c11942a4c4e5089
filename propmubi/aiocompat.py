"""Python 3.11's ``asyncio.wait_for`` loses cancellations; give this process 3.12's.

On 3.11, when a task is cancelled while it waits in ``asyncio.wait_for`` and the awaited
future has just finished, ``wait_for`` returns the result and the cancellation is gone: the
task carries on as if nobody had asked it to stop (CPython gh-86296; 3.12 rebuilt ``wait_for``
on ``asyncio.timeout``). redis-py wraps every command's send in ``wait_for`` when a socket
timeout is set and aiopg waits for every query through it, so on 3.11 about four in ten
cancellations that land during a Redis command were silently dropped (measured with
``tests/core/test_aiocompat.py``). That stalled a scheduler's shutdown forever (its lease
heartbeat never ended), and it would let a request outlive its deadline.

:func:`install` replaces ``asyncio.wait_for`` with the 3.12 implementation (written against
the public API) on interpreters older than 3.12, once per process; ``import propmubi`` calls
it, so every process and test gets it before any library runs. On 3.12+ it does nothing.
The one difference callers can see: a coroutine passed in runs in the calling task, as on
3.12, rather than in a task of its own.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable
from typing import Any, TypeVar

__all__ = ["ORIGINAL_WAIT_FOR", "install", "wait_for"]

T = TypeVar("T")

#: The interpreter's own ``wait_for`` (the test that shows the difference uses it).
ORIGINAL_WAIT_FOR: Any = asyncio.wait_for


async def wait_for(aw: Awaitable[T], timeout: float | None) -> T:  # noqa: ASYNC109 (the API)
    """Wait for ``aw`` for at most ``timeout`` seconds (None: no limit); on expiry cancel it
    and raise :class:`TimeoutError`. A cancellation of the caller is never lost."""
    if timeout is not None and timeout <= 0:
        fut: asyncio.Future[T] = asyncio.ensure_future(aw)
        if fut.done():
            return fut.result()
        fut.cancel()
        await asyncio.wait({fut})
        try:
            return fut.result()
        except asyncio.CancelledError as exc:
            raise TimeoutError from exc
    async with asyncio.timeout(timeout):
        return await aw


def install() -> None:
    """Make ``asyncio.wait_for`` this module's :func:`wait_for` on Python < 3.12."""
    if sys.version_info < (3, 12):
        module: Any = asyncio
        module.wait_for = wait_for
        module.tasks.wait_for = wait_for
