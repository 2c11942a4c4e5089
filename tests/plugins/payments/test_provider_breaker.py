"""RateBreaker: opens on the error rate of the recent calls; a fake clock drives time."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from prometheus_client import REGISTRY

from propmubi.breaker import CircuitOpen
from propmubi_plugins.payments.providers import ProviderError, RateBreaker


class Clock:
    """Seconds that move only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def breaker(clock: Clock, *, name: str = "test", **changes: float) -> RateBreaker:
    options = {"error_rate": 0.5, "min_calls": 4, "window": 10.0, "cooldown": 5.0, **changes}
    return RateBreaker(name, error_rate=options["error_rate"],
                       min_calls=int(options["min_calls"]), window=options["window"],
                       cooldown=options["cooldown"], clock=clock)


async def succeed(b: RateBreaker) -> None:
    async with b.call():
        pass


async def fail(b: RateBreaker, exc: Exception | None = None) -> None:
    with pytest.raises(type(exc) if exc else ProviderError):
        async with b.call():
            raise exc or ProviderError("HTTP 503", retryable=True, status=503)


async def test_it_opens_at_the_error_rate_once_there_are_enough_calls() -> None:
    clock = Clock()
    b = breaker(clock)
    await fail(b)
    await fail(b)
    await fail(b)  # 3 failures of 3: under min_calls
    assert b.state == "closed"
    await succeed(b)  # 3 of 4 failed: 75% >= 50%
    assert b.state == "open"
    with pytest.raises(CircuitOpen):
        async with b.call():
            pytest.fail("an open circuit must not run the call")


async def test_a_rate_under_the_threshold_keeps_it_closed() -> None:
    clock = Clock()
    b = breaker(clock)
    for _ in range(10):
        await succeed(b)
        await succeed(b)
        await fail(b)  # one in three: 33% < 50%
    assert b.state == "closed"


async def test_only_the_window_counts() -> None:
    clock = Clock()
    b = breaker(clock)
    await fail(b)
    await fail(b)
    await fail(b)
    clock.now += 10.0  # those three leave the window
    await fail(b)
    await succeed(b)
    await succeed(b)
    await succeed(b)  # 1 of 4 recent calls failed
    assert b.state == "closed"


async def test_half_open_lets_one_trial_through_and_its_success_closes() -> None:
    clock = Clock()
    b = breaker(clock, min_calls=2)
    await fail(b)
    await fail(b)
    assert b.state == "open"
    clock.now += 4.9
    assert b.state == "open"
    clock.now += 0.1
    assert b.state == "half-open"

    entered, release = asyncio.Event(), asyncio.Event()

    async def trial() -> None:
        async with b.call():
            entered.set()
            await release.wait()

    task = asyncio.create_task(trial())
    await entered.wait()
    with pytest.raises(CircuitOpen):  # the trial is in flight: nobody else
        async with b.call():
            pass
    release.set()
    await task
    assert b.state == "closed"
    await fail(b)  # a fresh window: one failure does not reopen it
    assert b.state == "closed"


async def test_a_failed_trial_reopens_for_another_cooldown() -> None:
    clock = Clock()
    b = breaker(clock, min_calls=2)
    await fail(b)
    await fail(b)
    clock.now += 5.0
    await fail(b, TimeoutError())
    assert b.state == "open"
    clock.now += 4.9
    assert b.state == "open"
    clock.now += 0.1
    assert b.state == "half-open"


async def test_a_cancelled_trial_frees_the_trial() -> None:
    clock = Clock()
    b = breaker(clock, min_calls=2)
    await fail(b)
    await fail(b)
    clock.now += 5.0

    async def hang() -> None:
        async with b.call():
            await asyncio.sleep(60)

    task = asyncio.create_task(hang())
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert b.state == "half-open"
    await succeed(b)
    assert b.state == "closed"


async def test_a_refusal_by_the_provider_is_not_a_failure() -> None:
    clock = Clock()
    b = breaker(clock, min_calls=2)
    refused = ProviderError("HTTP 400: bad amount", retryable=False, status=400)
    for _ in range(5):
        await fail(b, refused)
    assert b.state == "closed"
    clock.now += 10.0
    await fail(b, KeyError("answer"))  # anything else counts as the provider failing
    await fail(b, KeyError("answer"))
    assert b.state == "open"


async def test_the_caller_chooses_what_counts_as_a_failure() -> None:
    clock = Clock()
    b = breaker(clock, min_calls=2)
    for _ in range(3):
        with pytest.raises(ValueError):
            async with b.call(failure=lambda exc: not isinstance(exc, ValueError)):
                raise ValueError("ours, not the provider's")
    assert b.state == "closed"


async def test_calls_admitted_before_it_opened_do_not_count_after() -> None:
    clock = Clock()
    b = breaker(clock, min_calls=2)
    entered, release = asyncio.Event(), asyncio.Event()

    async def slow_success() -> None:
        async with b.call():
            entered.set()
            await release.wait()

    task = asyncio.create_task(slow_success())
    await entered.wait()
    await fail(b)
    await fail(b)
    assert b.state == "open"
    release.set()
    await task  # its success is stale: the circuit stays open
    assert b.state == "open"


async def test_opening_counts_in_the_shared_breaker_metric() -> None:
    clock = Clock()
    b = breaker(clock, name="payments-metric-test", min_calls=1, error_rate=1.0)
    before = REGISTRY.get_sample_value("propmubi_breaker_opened_total",
                                       {"name": "payments-metric-test"}) or 0.0
    await fail(b)
    assert REGISTRY.get_sample_value("propmubi_breaker_opened_total",
                                     {"name": "payments-metric-test"}) == before + 1


@pytest.mark.parametrize("bad", [{"error_rate": 0.0}, {"error_rate": 1.5}, {"min_calls": 0},
                                 {"window": 0.0}, {"cooldown": -1.0}])
def test_nonsense_settings_are_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        breaker(Clock(), **bad)
