"""The problem types of bookings: each a :mod:`propmubi.errors` class with its own stable
``type`` (``https://propmubi.dev/problems/<slug>``), so that clients branch on what went wrong.

Database errors of booking writes are translated here too: the partial unique index that
allows one live booking per unit (:data:`LIVE_UNIT_INDEX`, SQLSTATE 23505) and a row lock not
obtained within ``lock_timeout`` (SQLSTATE 55P03).
"""

from __future__ import annotations

from typing import Any

from propmubi.db import DatabaseError, UniqueViolation
from propmubi.errors import Conflict, ServiceUnavailable

#: The partial unique index on ``bookings_bookings (unit_id)`` over the live statuses.
LIVE_UNIT_INDEX = "bookings_bookings_live_unit"
#: SQLSTATE of ``lock_not_available`` (a ``lock_timeout`` expired).
LOCK_NOT_AVAILABLE = "55P03"


class UnitUnavailable(Conflict):
    """The unit cannot be held: another buyer holds or booked it, it is not for sale, or its
    project is not published."""

    slug, title = "unit-unavailable", "The unit is not available"


class HoldLimit(Conflict):
    """The buyer already keeps as many holds as allowed."""

    slug, title = "hold-limit", "Too many holds"


class ExpiredHold(Conflict):
    """The hold ran out of time."""

    slug, title = "hold-expired", "The hold has expired"


class ExtensionLimit(Conflict):
    """The hold was extended as many times as allowed."""

    slug, title = "extension-limit", "No extensions left"


class HoldCeiling(Conflict):
    """The hold already lasts as long as any hold may."""

    slug, title = "hold-ceiling", "The hold cannot last longer"


class NotHeld(Conflict):
    """Only a hold (status ``held``) may be extended or released."""

    slug, title = "booking-not-held", "The booking is not a hold"


class NotPayable(Conflict):
    """A payment cannot start for a booking in this status."""

    slug, title = "booking-not-payable", "The booking cannot be paid"


class NotCancellable(Conflict):
    """Only a confirmed booking may be cancelled."""

    slug, title = "booking-not-cancellable", "The booking cannot be cancelled"


class BookingBusy(ServiceUnavailable):
    """A booking row (or its unit's project) stayed locked by another transaction longer than
    ``lock_timeout_ms``; nothing was changed."""

    slug, title = "booking-busy", "The booking is busy"


def retry_after(ctx: Any) -> dict[str, str]:
    """The ``Retry-After`` header of a refusal worth repeating (whole seconds, at least 1)."""
    return {"Retry-After": str(max(1, -(-ctx.settings.lock_timeout_ms // 1000)))}


def is_live_unit_violation(exc: BaseException) -> bool:
    """Whether ``exc`` is the one-live-booking-per-unit index refusing a row."""
    return (isinstance(exc, UniqueViolation)
            and getattr(exc.diag, "constraint_name", None) == LIVE_UNIT_INDEX)


def is_lock_timeout(exc: BaseException) -> bool:
    """Whether ``exc`` is a ``lock_timeout`` that expired (SQLSTATE 55P03)."""
    return isinstance(exc, DatabaseError) and getattr(exc, "pgcode", None) == LOCK_NOT_AVAILABLE


def busy(ctx: Any) -> BookingBusy:
    """The 503 of a lock timeout, with ``Retry-After``."""
    return BookingBusy("the booking is being changed by another request; try again shortly",
                       headers=retry_after(ctx))
