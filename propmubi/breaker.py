"""A circuit breaker: stop calling a backing service that keeps failing, for a while.

Closed, every call goes through and consecutive failures are counted; the ``failures``-th
opens the circuit. Open, every call is refused at once (:class:`CircuitOpen`) for
``cooldown`` seconds. Then it is half-open: one call at a time goes through as a trial; its
success closes the circuit, its failure opens it for another ``cooldown``. A call that ends
neither way (cancelled by its caller) only frees the trial for the next one.

What counts as a failure is the caller's choice (the exception types it passes): an error the
service itself answered with (a Redis ``WRONGTYPE``, say) shows the service is alive, and
counts as a success. The clock is a parameter, so tests drive the cooldown without sleeping.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable

from prometheus_client import Counter

__all__ = ["CircuitBreaker", "CircuitOpen"]

log = logging.getLogger(__name__)

OPENED = Counter("propmubi_breaker_opened_total",
                 "Times a circuit breaker opened (its service failed too often), by breaker.",
                 ["name"])


class CircuitOpen(Exception):
    """The call was not made: the circuit is open (or its half-open trial is in flight)."""


class CircuitBreaker:
    """One breaker per backing service and process.

    :param name: for logs and the ``propmubi_breaker_opened_total`` metric.
    :param failures: consecutive failures that open the circuit.
    :param cooldown: seconds the circuit stays open before a trial call.
    :param clock: monotonic seconds (``time.monotonic``; tests pass their own).
    """

    def __init__(self, name: str, *, failures: int = 5, cooldown: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if failures < 1 or cooldown <= 0:
            raise ValueError("a breaker needs failures >= 1 and cooldown > 0")
        self.name = name
        self.threshold = failures
        self.cooldown = cooldown
        self.clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._trial = False

    @property
    def state(self) -> str:
        """``closed``, ``open`` or ``half-open`` (the cooldown has passed)."""
        if self._opened_at is None:
            return "closed"
        if self.clock() - self._opened_at < self.cooldown:
            return "open"
        return "half-open"

    def _admit(self) -> bool | None:
        """None: refused; True: admitted as the half-open trial; False: admitted (closed)."""
        state = self.state
        if state == "closed":
            return False
        if state == "open" or self._trial:
            return None
        self._trial = True
        return True

    def _succeeded(self) -> None:
        if self._opened_at is not None:
            log.info("circuit %s closed: the service answers again", self.name)
        self._failures, self._opened_at, self._trial = 0, None, False

    def _failed(self, exc: BaseException) -> None:
        self._trial = False
        if self._opened_at is not None:  # a trial (or a call admitted before it opened)
            self._opened_at = self.clock()
            return
        self._failures += 1
        if self._failures >= self.threshold:
            self._opened_at = self.clock()
            OPENED.labels(self.name).inc()
            log.warning("circuit %s open for %gs after %d failures in a row (last: %s)",
                        self.name, self.cooldown, self._failures, exc)

    @contextlib.asynccontextmanager
    async def attempt(self, failures: tuple[type[BaseException], ...]) -> AsyncIterator[None]:
        """Run the ``async with`` body as one call through the breaker.

        :param failures: exception types that count as the service failing; any other
            exception still propagates, but counts as an answer (a success).
        :raises CircuitOpen: before the body runs, when the circuit refuses the call.
        """
        trial = self._admit()
        if trial is None:
            raise CircuitOpen(f"circuit {self.name} is open")
        try:
            yield
        except failures as exc:
            self._failed(exc)
            raise
        except Exception:
            self._succeeded()
            raise
        except BaseException:  # cancelled: neither a success nor a failure
            if trial:
                self._trial = False
            raise
        self._succeeded()
