"""The payments plugin's attrs classes: validated inputs and the API's answers.

Money is an integer count of minor units (paise) and an ISO currency code, everywhere.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import attrs
from attrs import validators as v

from propmubi_plugins.payments.providers import PROVIDER_NAMES

#: Refund reasons staff may give (the others are the system's own).
MANUAL_REASONS = ("goodwill", "duplicate", "customer-request", "other")
#: The largest amount anyone may type (₹10 crore in paise), well inside bigint.
AMOUNT_MAX = 10_000_000_000


def _amount(instance: Any, attribute: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("A whole number of paise.")
    if not 1 <= value <= AMOUNT_MAX:
        raise ValueError(f"Between 1 and {AMOUNT_MAX} paise.")


@attrs.frozen
class BookingId:
    """The ``{booking_id}`` of a path."""

    booking_id: uuid.UUID


@attrs.frozen
class IntentId:
    """The ``{intent_id}`` of a path."""

    intent_id: uuid.UUID


@attrs.frozen
class ProviderName:
    """The ``{provider}`` of the webhook path."""

    provider: str = attrs.field(validator=v.in_(PROVIDER_NAMES))


@attrs.frozen
class IntentOut:
    """A payment intent: what the app's checkout needs (``client``) and where it stands."""

    id: uuid.UUID
    booking_id: uuid.UUID
    provider: str
    #: The provider's order (Razorpay ``order_...``, Stripe ``pi_...``); None until made.
    provider_order_id: str | None
    amount_minor: int
    currency: str
    #: created, attempted, authorized, captured or failed.
    status: str
    captured_minor: int
    refunded_minor: int
    #: What the booking said when the money was captured: confirmed, or why it refused it
    #: (the payment is then refunded in full).
    booking_outcome: str | None
    #: The provider's checkout data (order id, public key); never a secret.
    client: dict[str, Any] | None
    created_at: dt.datetime
    updated_at: dt.datetime


@attrs.frozen
class RefundIn:
    """A refund staff issue: an amount and a reason."""

    amount_minor: int = attrs.field(validator=_amount)
    reason: str = attrs.field(validator=v.in_(MANUAL_REASONS))


@attrs.frozen
class RefundOut:
    """A refund and its state (pending until the provider reports it processed or failed)."""

    id: uuid.UUID
    intent_id: uuid.UUID
    booking_id: uuid.UUID
    provider: str
    amount_minor: int
    currency: str
    #: pending, processed or failed.
    status: str
    reason: str
    created_at: dt.datetime
    updated_at: dt.datetime


@attrs.frozen
class WebhookAck:
    """The answer to a provider's webhook: stored (or already stored: a duplicate)."""

    received: bool
    duplicate: bool


def intent_out(row: dict[str, Any]) -> IntentOut:
    return IntentOut(**{f.name: row[f.name] for f in attrs.fields(IntentOut)})


def refund_out(row: dict[str, Any]) -> RefundOut:
    return RefundOut(**{f.name: row[f.name] for f in attrs.fields(RefundOut)})
