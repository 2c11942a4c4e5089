"""The payments plugin's problem types (problem+json ``type`` slugs are stable once public)."""

from __future__ import annotations

from propmubi.errors import ProblemError


class ReraCapExceeded(ProblemError):
    """RERA section 13: no more than 10 % of the unit's price before an agreement for sale."""

    status, slug, title = 422, "rera-cap-exceeded", "Above the RERA advance limit"


class ProviderUnavailable(ProblemError):
    """No payment provider can take a new intent now (circuit open, provider down)."""

    status, slug, title = 503, "payment-provider-unavailable", "Payment provider unavailable"


class BadSignature(ProblemError):
    """A webhook whose signature, timestamp or headers do not verify."""

    status, slug, title = 400, "webhook-signature", "Webhook signature does not verify"


class RefundTooLarge(ProblemError):
    """A refund above what is left of the captured amount."""

    status, slug, title = 422, "refund-too-large", "Refund above the captured amount"
