"""The money of a booking, in integers only: the booking amount a hold asks for, the RERA cap,
and the fee and refund of a cancellation.

Rounding rules (every amount is integer minor units, every rate integer basis points):

- a percentage booking amount is rounded **down** (``price * bps // 10000``), so that a rate of
  at most 10 % never exceeds the RERA cap;
- the RERA cap (section 13: at most 10 % of the price) is rounded **down** (``price // 10``);
- a cancellation fee is rounded **half up** (``(2 * bps * price + 10000) // 20000``).

Every function refuses a value that is not an ``int`` (a float, a Decimal, a bool) with a
TypeError: a float never enters a money path.
"""

from __future__ import annotations

import datetime as dt

#: Basis points in a whole.
WHOLE_BPS = 10_000


def _ints(*values: object) -> None:
    for value in values:
        if type(value) is not int:
            raise TypeError(f"money is integer minor units and basis points, got {value!r}")


def amount(value: int) -> int:
    """``value`` when it is a non-negative integer amount; TypeError or ValueError otherwise."""
    _ints(value)
    if value < 0:
        raise ValueError(f"an amount is never negative, got {value}")
    return value


def half_up(numerator: int, denominator: int) -> int:
    """``numerator / denominator`` rounded half up, for a non-negative numerator."""
    _ints(numerator, denominator)
    if numerator < 0 or denominator <= 0:
        raise ValueError("half_up takes a non-negative numerator and a positive denominator")
    return (2 * numerator + denominator) // (2 * denominator)


def rera_cap(price_minor: int) -> int:
    """The largest booking amount RERA allows: 10 % of the price, rounded down."""
    _ints(price_minor)
    return price_minor // 10


def amount_due(price_minor: int, kind: str, amount_minor: int | None,
               amount_bps: int | None) -> int:
    """The booking amount of a unit under a project's terms: ``fixed`` is ``amount_minor``;
    ``percent`` is ``amount_bps`` of the price, rounded down."""
    _ints(price_minor)
    if kind == "fixed":
        _ints(amount_minor)
        return amount_minor  # type: ignore[return-value]  # checked just above
    _ints(amount_bps)
    return price_minor * amount_bps // WHOLE_BPS  # type: ignore[operator]


def cancellation(*, captured_minor: int, price_minor: int, confirmed_at: dt.datetime,
                 now: dt.datetime, free_cancel_hours: int, fee_fixed_minor: int,
                 fee_bps: int) -> tuple[int, int]:
    """The fee and the refund of cancelling a confirmed booking now.

    Within ``free_cancel_hours`` of the confirmation the fee is 0. After it, the fee is
    ``max(fee_fixed_minor, fee_bps of the unit price)``, rounded half up. The refund is what
    was captured less the fee, never below 0 and never above what was captured.
    """
    _ints(captured_minor, price_minor, free_cancel_hours, fee_fixed_minor, fee_bps)
    if min(captured_minor, price_minor, free_cancel_hours, fee_fixed_minor, fee_bps) < 0:
        raise ValueError("amounts, hours and rates are never negative")
    if now < confirmed_at + dt.timedelta(hours=free_cancel_hours):
        fee = 0
    else:
        fee = max(fee_fixed_minor, half_up(fee_bps * price_minor, WHOLE_BPS))
    refund = min(captured_minor, max(0, captured_minor - fee))
    return fee, refund
