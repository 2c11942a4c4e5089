"""A cancelled task stays cancelled, even when the cancellation lands inside a Redis command or
a PostgreSQL query (Python 3.11's ``asyncio.wait_for`` used to drop it; see aiocompat)."""

from __future__ import annotations

import asyncio
import random
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from propmubi import aiocompat


async def _cancel_mid_flight(call: Callable[[], Awaitable[Any]], landed: int,
                             max_rounds: int = 20_000) -> dict[str, int]:
    """Start ``call`` again and again, cancelling each at a random point of its flight, until
    ``landed`` cancellations have landed mid-flight (or ``max_rounds``); count how the
    cancellations that were accepted ended.

    How many land depends on the machine's speed (a busy machine finishes fewer calls before
    the cancellation), so the loop runs until enough did, instead of a fixed number of rounds.
    """
    rng = random.Random(1)
    seen = {"cancelled": 0, "lost": 0, "finished_first": 0, "rounds": 0}
    while seen["cancelled"] < landed and seen["rounds"] < max_rounds:
        seen["rounds"] += 1
        task = asyncio.ensure_future(call())
        for _ in range(rng.randint(0, 8)):
            await asyncio.sleep(0)
        accepted = task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            seen["cancelled"] += 1
        else:
            seen["lost" if accepted else "finished_first"] += 1
    return seen


def test_install_replaced_wait_for_before_anything_ran():
    if sys.version_info < (3, 12):
        assert asyncio.wait_for is aiocompat.wait_for
        assert asyncio.tasks.wait_for is aiocompat.wait_for
    else:
        assert asyncio.wait_for is aiocompat.ORIGINAL_WAIT_FOR


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="the bug is fixed in the interpreter")
async def test_the_interpreters_wait_for_loses_a_cancellation_that_meets_a_result():
    # The race, made deterministic: the awaited future gets its result and the waiting task is
    # cancelled within the same loop iteration.
    for wait_for, lost in ((aiocompat.ORIGINAL_WAIT_FOR, True), (aiocompat.wait_for, False)):
        inner: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        task = asyncio.ensure_future(wait_for(inner, 10))
        await asyncio.sleep(0)
        inner.set_result(7)
        assert task.cancel()
        if lost:
            assert await task == 7
        else:
            with pytest.raises(asyncio.CancelledError):
                await task


async def test_wait_for_keeps_the_3_12_contract():
    assert await aiocompat.wait_for(asyncio.sleep(0, "done"), 1) == "done"
    assert await aiocompat.wait_for(asyncio.sleep(0, "no limit"), None) == "no limit"
    with pytest.raises(TimeoutError):
        await aiocompat.wait_for(asyncio.sleep(10), 0.01)
    slow = asyncio.ensure_future(asyncio.sleep(10))
    with pytest.raises(TimeoutError):
        await aiocompat.wait_for(slow, 0)
    assert slow.cancelled()
    ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    ready.set_result("ready")
    assert await aiocompat.wait_for(ready, 0) == "ready"


async def test_no_cancellation_is_lost_inside_redis_commands(services):
    key = services.keys.plugin("aiocompat", "probe")
    await services.redis.set(key, "x")
    seen = await _cancel_mid_flight(lambda: services.redis.get(key), 300)
    assert seen["lost"] == 0, seen
    assert seen["cancelled"] >= 300, seen  # the cancellations did land mid-command
    assert await services.redis.get(key) == "x"  # and the client still works


async def test_no_cancellation_is_lost_inside_database_queries(services):
    seen = await _cancel_mid_flight(lambda: services.db.fetchval("SELECT 1"), 150)
    assert seen["lost"] == 0, seen
    assert seen["cancelled"] >= 150, seen
    assert await services.db.fetchval("SELECT 2") == 2
