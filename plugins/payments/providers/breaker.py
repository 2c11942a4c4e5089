"""A circuit breaker that opens on the error rate of recent calls, not on a run of failures.

Closed, every call goes through and its outcome is recorded with the time it ended. When the
calls that ended in the last ``window`` seconds number at least ``min_calls`` and the failed
share of them is at least ``error_rate``, the circuit opens: every call is refused at once
(:class:`propmubi.breaker.CircuitOpen`) for ``cooldown`` seconds. Then it is half-open: one
call at a time goes through as a trial; its success closes the circuit (with a fresh window),
its failure opens it for another ``cooldown``. A call that ends neither way (cancelled) only
frees the trial. Outcomes of calls admitted before the circuit last changed are ignored.

What counts as a failure is the caller's predicate. The default suits the payment providers:
a :class:`ProviderError` counts by its ``retryable`` flag (a 4xx shows the provider answering),
any other exception counts as a failure.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable

from propmubi.breaker import OPENED, CircuitOpen
from propmubi_plugins.payments.providers.base import ProviderError

__all__ = ["RateBreaker", "provider_failure"]

log = logging.getLogger(__name__)


def provider_failure(exc: BaseException) -> bool:
    """Whether ``exc`` shows the provider failing (the default of :meth:`RateBreaker.call`)."""
    if isinstance(exc, ProviderError):
        return exc.retryable
    return True


class RateBreaker:
    """One breaker per provider and process.

    :param name: for logs and the ``propmubi_breaker_opened_total`` metric (shared with
        :class:`propmubi.breaker.CircuitBreaker`).
    :param error_rate: the failed share (0 < rate <= 1) of recent calls that opens it.
    :param min_calls: the fewest recent calls on which it may open.
    :param window: seconds of calls that count as recent.
    :param cooldown: seconds it stays open before a trial call.
    :param clock: monotonic seconds (tests pass their own).
    """

    def __init__(self, name: str, *, error_rate: float, min_calls: int, window: float,
                 cooldown: float, clock: Callable[[], float] = time.monotonic) -> None:
        if not 0 < error_rate <= 1 or min_calls < 1 or window <= 0 or cooldown <= 0:
            raise ValueError("a rate breaker needs 0 < error_rate <= 1, min_calls >= 1, "
                             "window > 0 and cooldown > 0")
        self.name = name
        self.error_rate = error_rate
        self.min_calls = min_calls
        self.window = window
        self.cooldown = cooldown
        self.clock = clock
        self._calls: collections.deque[tuple[float, bool]] = collections.deque()
        self._opened_at: float | None = None
        self._trial = False
        self._generation = 0  # bumped on every change of state

    @property
    def state(self) -> str:
        """``closed``, ``open`` or ``half-open`` (the cooldown has passed)."""
        if self._opened_at is None:
            return "closed"
        if self.clock() - self._opened_at < self.cooldown:
            return "open"
        return "half-open"

    def _record(self, failed: bool) -> None:
        now = self.clock()
        self._calls.append((now, failed))
        while self._calls and self._calls[0][0] <= now - self.window:
            self._calls.popleft()
        total = len(self._calls)
        failures = sum(1 for _, f in self._calls if f)
        if total >= self.min_calls and failures >= self.error_rate * total:
            self._open()
            OPENED.labels(self.name).inc()
            log.warning("circuit %s open for %gs: %d of the last %d calls failed",
                        self.name, self.cooldown, failures, total)

    def _open(self) -> None:
        self._opened_at, self._trial = self.clock(), False
        self._calls.clear()
        self._generation += 1

    def _close(self) -> None:
        log.info("circuit %s closed: the trial call succeeded", self.name)
        self._opened_at, self._trial = None, False
        self._generation += 1

    @contextlib.asynccontextmanager
    async def call(self, failure: Callable[[BaseException], bool] = provider_failure
                   ) -> AsyncIterator[None]:
        """Run the ``async with`` body as one call through the breaker.

        :param failure: whether an exception of the body counts as a failure; an exception
            that does not still propagates, but counts as a success.
        :raises CircuitOpen: before the body runs, when the circuit refuses the call.
        """
        state = self.state
        if state == "open" or (state == "half-open" and self._trial):
            raise CircuitOpen(f"circuit {self.name} is {state}")
        trial = state == "half-open"
        self._trial = self._trial or trial
        generation = self._generation
        try:
            yield
        except Exception as exc:
            self._ended(generation, trial, failed=failure(exc))
            raise
        except BaseException:  # cancelled: neither a success nor a failure
            if trial and generation == self._generation:
                self._trial = False
            raise
        self._ended(generation, trial, failed=False)

    def _ended(self, generation: int, trial: bool, *, failed: bool) -> None:
        if generation != self._generation:
            return  # admitted before the circuit changed: its outcome is stale
        if not trial:
            self._record(failed)
        elif failed:
            self._open()
        else:
            self._close()
