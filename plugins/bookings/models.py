"""The vocabularies of bookings and the attrs classes of the API and the console: the validated
inputs (a hold, a cancellation, a list query, path ids) and the answers.

Booking terms have their own models (``terms/models.py``).
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import attrs
from attrs import validators as v

from propmubi.validation import json_schema

# --------------------------------------------------------------------------------------------
# Vocabularies
# --------------------------------------------------------------------------------------------

#: Every status a booking may take.
STATUSES = ("held", "payment_pending", "paid", "confirmed", "expired", "released",
            "cancelled", "refunded")
#: The statuses in which a booking keeps its unit (at most one per unit: a unique index).
LIVE_STATUSES = ("held", "payment_pending", "paid", "confirmed")
#: The statuses that expire when ``expires_at`` passes.
EXPIRING_STATUSES = ("held", "payment_pending")
#: Why a confirmed booking is cancelled (``reason_code``); kept in the history, never a text.
CANCEL_REASONS = ("buyer_request", "financing_refused", "changed_mind", "duplicate_booking",
                  "builder_request", "payment_dispute", "other")
#: The longest note a cancellation may carry (kept in the history only, never in events).
NOTE_MAX = 1000


@json_schema(maxLength=NOTE_MAX)
def _note(instance: Any, attribute: attrs.Attribute, value: str | None) -> None:
    if value is not None and len(value) > NOTE_MAX:
        raise ValueError(f"At most {NOTE_MAX} characters (got {len(value)}).")


# --------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------


@attrs.frozen
class HoldIn:
    """``POST /holds``: the unit to hold."""

    unit_id: uuid.UUID = attrs.field(metadata={"description": "The unit to hold."})


@attrs.frozen
class CancelIn:
    """``POST /bookings/{booking_id}/cancel``: why, as a code, and an optional note."""

    reason_code: str = attrs.field(validator=v.in_(CANCEL_REASONS))
    note: str | None = attrs.field(default=None, validator=_note, metadata={
        "description": "Kept in the booking's history only."})


@attrs.frozen
class BookingQuery:
    """Keyset pagination (pass ``next_cursor`` back as ``cursor``) and a status filter."""

    status: str | None = attrs.field(default=None, validator=v.optional(v.in_(STATUSES)))
    limit: int | None = attrs.field(default=None, validator=v.optional([v.ge(1), v.le(100)]))
    cursor: str | None = attrs.field(default=None, validator=v.optional(v.max_len(200)))


@attrs.frozen
class BookingId:
    """The ``{booking_id}`` of a path."""

    booking_id: uuid.UUID


# --------------------------------------------------------------------------------------------
# Answers
# --------------------------------------------------------------------------------------------


@attrs.frozen
class BookingOut:
    """A booking as its buyer (and staff) see it. Money is integer minor units of
    ``currency``."""

    id: uuid.UUID
    unit_id: uuid.UUID
    project_id: uuid.UUID
    buyer_id: uuid.UUID
    status: str
    price_minor: int
    currency: str
    #: The booking amount the project's terms ask for.
    amount_due_minor: int
    #: The most RERA allows as a booking amount: 10 % of the price, rounded down.
    rera_cap_minor: int
    captured_minor: int
    #: Refunded of a cancellation's refund so far.
    refunded_minor: int
    #: A cancellation's fee and refund (None until cancelled).
    fee_minor: int | None
    refund_minor: int | None
    held_at: dt.datetime
    expires_at: dt.datetime
    #: The latest the hold may be extended to.
    hold_ceiling_at: dt.datetime
    extensions_left: int
    confirmed_at: dt.datetime | None
    cancelled_at: dt.datetime | None
    updated_at: dt.datetime


@attrs.frozen
class BookingPage:
    """A page of bookings, newest first; ``next_cursor`` asks for the next one."""

    items: list[BookingOut]
    next_cursor: str | None


def booking_out(row: dict[str, Any]) -> BookingOut:
    """A booking row as the API shows it."""
    return BookingOut(
        id=row["id"], unit_id=row["unit_id"], project_id=row["project_id"],
        buyer_id=row["buyer_id"], status=row["status"], price_minor=row["price_minor"],
        currency=row["currency"], amount_due_minor=row["amount_due_minor"],
        rera_cap_minor=row["rera_cap_minor"], captured_minor=row["captured_minor"],
        refunded_minor=row["refunded_minor"], fee_minor=row["fee_minor"],
        refund_minor=row["refund_minor"], held_at=row["held_at"],
        expires_at=row["expires_at"], hold_ceiling_at=row["ceiling_at"],
        extensions_left=max(0, row["max_extensions"] - row["extensions_used"]),
        confirmed_at=row["confirmed_at"], cancelled_at=row["cancelled_at"],
        updated_at=row["updated_at"])


# --------------------------------------------------------------------------------------------
# Console forms
# --------------------------------------------------------------------------------------------


def _form_reason(instance: Any, attribute: attrs.Attribute, value: str) -> None:
    if not value.strip():
        raise ValueError("Choose why the booking is cancelled.")
    if value not in CANCEL_REASONS:
        raise ValueError("Choose one of the listed reasons.")


def _form_note(instance: Any, attribute: attrs.Attribute, value: str) -> None:
    if len(value) > NOTE_MAX:
        raise ValueError(f"At most {NOTE_MAX} characters (got {len(value)}).")
    if any(ord(c) < 32 and c not in "\r\n\t" for c in value):
        raise ValueError("The note must not contain control characters.")


@attrs.frozen
class CancelForm:
    """The console's cancel form (admins): a reason from the list and an optional note."""

    # An empty choice is an absent field: the default lets the validator say what is missing.
    reason_code: str = attrs.field(default="", validator=_form_reason)
    note: str = attrs.field(default="", validator=_form_note)

    def to_input(self) -> CancelIn:
        """The same as the API's body."""
        return CancelIn(reason_code=self.reason_code, note=self.note or None)
