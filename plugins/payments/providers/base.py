"""The interface every payment provider implements, and the values it returns.

Money is always an integer amount in minor units (paise, cents) and an ISO 4217 currency code
in upper case; nothing here accepts or returns a float. Statuses and webhook kinds are
normalised to the few values the payments service acts on; each value keeps the provider's
own id so that the service can look the object up at the provider.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping
from typing import Any, Protocol

import attrs

__all__ = [
    "PAYMENT_STATUSES",
    "REFUND_STATUSES",
    "WEBHOOK_KINDS",
    "PaymentProvider",
    "ProviderError",
    "ProviderOrder",
    "ProviderPayment",
    "ProviderRefund",
    "SettlementLine",
    "SignatureError",
    "WebhookEvent",
    "check_money",
    "header",
    "minor_units",
]

#: ``ProviderPayment.status`` values, in the order a payment moves through them.
PAYMENT_STATUSES = ("created", "attempted", "authorized", "captured", "failed")
#: ``ProviderRefund.status`` values.
REFUND_STATUSES = ("pending", "processed", "failed")
#: ``WebhookEvent.kind`` values.
WEBHOOK_KINDS = ("payment.authorized", "payment.captured", "payment.failed",
                 "refund.processed", "refund.failed", "other")

_CURRENCY = re.compile(r"[A-Z]{3}")


@attrs.frozen
class ProviderOrder:
    """A new order (Razorpay) or payment intent (Stripe).

    :ivar order_id: the provider's id (``order_...``, ``pi_...``).
    :ivar client: what the app's checkout needs to take the payment (ids, amount, the
        publishable key or client secret); never a secret API key.
    """

    order_id: str
    client: dict[str, Any]


@attrs.frozen
class ProviderPayment:
    """An order's payment as the provider reports it.

    :ivar payment_id: the id to pass to ``capture`` and ``refund`` (Razorpay ``pay_...``,
        Stripe the ``pi_...`` itself); None while no payment was attempted.
    :ivar status: one of :data:`PAYMENT_STATUSES`.
    """

    order_id: str
    payment_id: str | None
    status: str
    amount_minor: int
    currency: str


@attrs.frozen
class ProviderRefund:
    """A refund; ``status`` is one of :data:`REFUND_STATUSES`."""

    refund_id: str
    payment_id: str
    amount_minor: int
    status: str


@attrs.frozen
class WebhookEvent:
    """A webhook whose signature was verified, normalised.

    :ivar event_id: the provider's unique id of the event (the same on every redelivery).
    :ivar kind: one of :data:`WEBHOOK_KINDS`; ``other`` for events the service ignores.
    :ivar raw_type: the provider's own event type, for logs.
    """

    event_id: str
    kind: str
    order_id: str | None
    payment_id: str | None
    refund_id: str | None
    amount_minor: int | None
    currency: str | None
    raw_type: str


@attrs.frozen
class SettlementLine:
    """One payment or refund in the provider's settlement of a day.

    :ivar kind: ``payment`` (money in) or ``refund`` (money out).
    :ivar provider_id: the payment id (as :class:`ProviderPayment` names it) or refund id.
    :ivar amount_minor: the gross amount, positive for both kinds.
    :ivar fee_minor: what the provider kept (tax on the fee included).
    """

    kind: str
    provider_id: str
    amount_minor: int
    fee_minor: int
    currency: str
    settled_on: datetime.date


class ProviderError(Exception):
    """A call to the provider failed.

    :ivar retryable: True when the same call may work later (timeout, connection error,
        5xx, 409, 429, a success answer that is not JSON at all); False when the provider
        refused the request (other 4xx) or answered JSON in a shape this client cannot read.
    :ivar status: the HTTP status, when there was an answer.
    :ivar code: the provider's error code or type, when it gave one.
    """

    def __init__(self, message: str, *, retryable: bool, status: int | None = None,
                 code: str | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.status = status
        self.code = code


class SignatureError(Exception):
    """A webhook was refused; the message says why (missing header, bad signature,
    timestamp outside the tolerance, a body that is not the provider's event format)."""


class PaymentProvider(Protocol):
    """What the payments service calls. One attempt per call: the caller retries, when
    ``ProviderError.retryable`` says it may."""

    name: str

    async def create_order(self, *, reference: str, amount_minor: int, currency: str,
                           idempotency_key: str) -> ProviderOrder:
        """Open an order for ``reference`` (our intent id) at the provider."""
        ...

    async def fetch(self, order_id: str) -> ProviderPayment:
        """The order's payment state, as the provider knows it now."""
        ...

    async def capture(self, payment_id: str, amount_minor: int, currency: str
                      ) -> ProviderPayment:
        """Capture an authorized payment."""
        ...

    async def refund(self, payment_id: str, amount_minor: int, *, idempotency_key: str
                     ) -> ProviderRefund:
        """Refund (part of) a captured payment; the same key twice makes one refund."""
        ...

    async def settlements(self, day: datetime.date) -> list[SettlementLine]:
        """The payments and refunds the provider settled on ``day``."""
        ...

    def verify_webhook(self, raw_body: bytes, headers: Mapping[str, str], *, now: float
                       ) -> WebhookEvent:
        """Check the signature of a webhook's raw body; raise :class:`SignatureError`."""
        ...

    async def close(self) -> None:
        """Release the HTTP session this provider opened."""
        ...


def check_money(amount_minor: int, currency: str) -> None:
    """Refuse an amount that is not a positive int, or a currency that is not ISO 4217."""
    if type(amount_minor) is not int or amount_minor <= 0:
        raise ValueError(f"amount_minor must be a positive int, not {amount_minor!r}")
    if not isinstance(currency, str) or not _CURRENCY.fullmatch(currency):
        raise ValueError(f"currency must be an upper-case ISO 4217 code, not {currency!r}")


def minor_units(value: Any, what: str) -> int:
    """``value`` if it is an int (a provider's JSON amount); ValueError otherwise."""
    if type(value) is not int:
        raise ValueError(f"{what} is not an integer amount: {value!r}")
    return value


def header(headers: Mapping[str, str], name: str) -> str | None:
    """The value of header ``name`` whatever its case (aiohttp's headers ignore case, a
    plain dict does not)."""
    value = headers.get(name)
    if value is not None:
        return value
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None
