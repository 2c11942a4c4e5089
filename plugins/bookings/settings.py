"""The ``[plugins.bookings]`` settings: how long a hold lasts and how far it may be extended,
how many holds a buyer may keep, the lock timeout of booking writes, and the booking terms of
a project that has none of its own.

Durations are whole seconds; money is integer minor units (paise) and rates basis points
(1 bp = 0.01 %), so no setting is a float.
"""

from __future__ import annotations

from typing import Any

import attrs
from attrs import validators as v

#: The most a booking amount may be, in basis points of the unit price (RERA section 13: 10 %).
RERA_CAP_BPS = 1000


def _after_ttl(instance: Any, attribute: attrs.Attribute, value: int) -> None:
    if value < instance.hold_ttl_seconds:
        raise ValueError("must be at least hold_ttl_seconds")


@attrs.frozen
class BookingsSettings:
    """How the bookings plugin behaves."""

    #: How long a new hold lasts.
    hold_ttl_seconds: int = attrs.field(default=15 * 60, validator=[v.ge(60), v.le(86_400)])
    #: How much later one extension moves a hold's expiry (from its current expiry).
    extend_step_seconds: int = attrs.field(default=15 * 60,
                                           validator=[v.ge(60), v.le(86_400)])
    #: How many times a hold may be extended.
    max_extensions: int = attrs.field(default=2, validator=[v.ge(0), v.le(20)])
    #: The latest a hold may ever expire, counted from when it was taken.
    max_hold_seconds: int = attrs.field(default=45 * 60,
                                        validator=[v.le(7 * 86_400), _after_ttl])
    #: Holds (held or payment pending, not expired) one buyer may keep at once.
    max_active_holds: int = attrs.field(default=3, validator=[v.ge(1), v.le(100)])
    #: How long a booking write waits for a row lock before answering 503 (milliseconds).
    lock_timeout_ms: int = attrs.field(default=2000, validator=[v.ge(50), v.le(60_000)])
    #: Bookings per page of a list when the caller asks for no particular number.
    page_size: int = attrs.field(default=20, validator=[v.ge(1), v.le(100)])
    #: Stale holds the sweeper expires per transaction.
    sweep_batch: int = attrs.field(default=100, validator=[v.ge(1), v.le(1000)])

    # The terms of a project without its own (``bookings_terms``).
    #: ``percent`` (``default_amount_bps`` of the unit price) or ``fixed``.
    default_amount_kind: str = attrs.field(default="percent",
                                           validator=v.in_(("percent", "fixed")))
    #: The booking amount as a share of the unit price, in basis points (at most 10 %).
    default_amount_bps: int = attrs.field(default=RERA_CAP_BPS,
                                          validator=[v.ge(1), v.le(RERA_CAP_BPS)])
    #: The booking amount when the kind is ``fixed`` (minor units).
    default_amount_minor: int = attrs.field(default=1_00_000_00, validator=v.ge(1))
    #: Hours after confirmation during which a cancellation costs nothing.
    default_free_cancel_hours: int = attrs.field(default=48, validator=[v.ge(0), v.le(8760)])
    #: The least a cancellation after the free window costs (minor units).
    default_fee_fixed_minor: int = attrs.field(default=10_000_00, validator=v.ge(0))
    #: A cancellation's fee as a share of what was captured, in basis points.
    default_fee_bps: int = attrs.field(default=200, validator=[v.ge(0), v.le(10_000)])
