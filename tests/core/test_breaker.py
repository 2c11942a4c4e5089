"""The circuit breaker, driven by a clock the test moves (no sleeps)."""

from __future__ import annotations

import asyncio

import pytest

from propmubi.breaker import CircuitBreaker, CircuitOpen


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Down(Exception):
    """The service failing."""


class Answered(Exception):
    """An error the service answered with (it is alive)."""


async def call(breaker: CircuitBreaker, outcome: BaseException | None = None) -> str:
    """One call through the breaker: 'ok', 'failed', 'answered' or 'refused'."""
    try:
        async with breaker.attempt((Down,)):
            if outcome is not None:
                raise outcome
    except CircuitOpen:
        return "refused"
    except Down:
        return "failed"
    except Answered:
        return "answered"
    return "ok"


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def breaker(clock: Clock) -> CircuitBreaker:
    return CircuitBreaker("test", failures=3, cooldown=10.0, clock=clock)


async def test_opens_after_consecutive_failures_only(breaker):
    assert [await call(breaker, Down()) for _ in range(2)] == ["failed", "failed"]
    assert await call(breaker) == "ok"  # a success resets the count
    assert [await call(breaker, Down()) for _ in range(2)] == ["failed", "failed"]
    assert breaker.state == "closed"
    assert await call(breaker, Down()) == "failed"
    assert breaker.state == "open"
    assert await call(breaker) == "refused"  # not even tried


async def test_an_error_the_service_answered_with_is_not_a_failure(breaker):
    for _ in range(5):
        assert await call(breaker, Answered()) == "answered"
    assert breaker.state == "closed"


async def test_half_opens_after_its_cooldown_and_closes_on_success(breaker, clock):
    for _ in range(3):
        await call(breaker, Down())
    clock.now += 9.9
    assert (breaker.state, await call(breaker)) == ("open", "refused")
    clock.now += 0.1
    assert breaker.state == "half-open"
    assert await call(breaker) == "ok"
    assert breaker.state == "closed"
    # Closed again means counting from zero.
    assert [await call(breaker, Down()) for _ in range(2)] == ["failed", "failed"]
    assert breaker.state == "closed"


async def test_a_failed_trial_opens_it_for_another_cooldown(breaker, clock):
    for _ in range(3):
        await call(breaker, Down())
    clock.now += 10
    assert await call(breaker, Down()) == "failed"  # one failure is enough now
    assert breaker.state == "open"
    clock.now += 9.9
    assert await call(breaker) == "refused"
    clock.now += 0.1
    assert await call(breaker) == "ok"


async def test_half_open_lets_one_trial_through_at_a_time(breaker, clock):
    for _ in range(3):
        await call(breaker, Down())
    clock.now += 10
    entered, release = asyncio.Event(), asyncio.Event()

    async def slow_trial() -> str:
        async with breaker.attempt((Down,)):
            entered.set()
            await release.wait()
        return "ok"

    trial = asyncio.ensure_future(slow_trial())
    await entered.wait()
    assert await call(breaker) == "refused"  # the trial is in flight
    release.set()
    assert await trial == "ok"
    assert await call(breaker) == "ok"


async def test_a_cancelled_trial_frees_the_next_one(breaker, clock):
    for _ in range(3):
        await call(breaker, Down())
    clock.now += 10
    entered = asyncio.Event()

    async def hanging_trial() -> None:
        async with breaker.attempt((Down,)):
            entered.set()
            await asyncio.Event().wait()

    trial = asyncio.ensure_future(hanging_trial())
    await entered.wait()
    trial.cancel()
    with pytest.raises(asyncio.CancelledError):
        await trial
    assert breaker.state == "half-open"  # neither closed nor re-opened
    assert await call(breaker) == "ok"
    assert breaker.state == "closed"


def test_nonsense_settings_are_refused():
    with pytest.raises(ValueError):
        CircuitBreaker("x", failures=0)
    with pytest.raises(ValueError):
        CircuitBreaker("x", cooldown=0)
