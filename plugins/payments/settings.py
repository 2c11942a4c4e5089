"""The payments plugin's settings: its ``[plugins.payments]`` table.

Each provider has its own sub-table (``[plugins.payments.razorpay]``, ``.stripe``,
``.sandbox``; their keys are in ``providers/settings.py``). Secrets come from credential
files or ``PROPMUBI_PLUGINS__PAYMENTS__RAZORPAY__KEY_SECRET``-style variables, never from
the repository.
"""

from __future__ import annotations

import attrs
from attrs import validators as v

from propmubi_plugins.payments.providers import PROVIDER_NAMES
from propmubi_plugins.payments.providers.settings import (
    RazorpaySettings,
    SandboxSettings,
    StripeSettings,
)


def _provider(instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    if value and value not in PROVIDER_NAMES:
        raise ValueError(f"one of {', '.join(PROVIDER_NAMES)} (got {value!r})")


@attrs.frozen
class PaymentsSettings:
    """How the payments plugin behaves."""

    #: The provider new intents go to.
    provider: str = attrs.field(default="sandbox", validator=_provider)
    #: Where new intents go while the provider's circuit is open ("" for nowhere: 503).
    fallback_provider: str = attrs.field(default="", validator=_provider)
    razorpay: RazorpaySettings = attrs.field(factory=RazorpaySettings)
    stripe: StripeSettings = attrs.field(factory=StripeSettings)
    sandbox: SandboxSettings = attrs.field(factory=SandboxSettings)
    #: A provider's circuit opens when at least this share of its calls failed ...
    breaker_error_rate: float = attrs.field(default=0.5, validator=[v.gt(0), v.le(1)])
    #: ... over at least this many calls ...
    breaker_min_calls: int = attrs.field(default=10, validator=v.ge(1))
    #: ... in this many seconds; it lets one trial call through after ``breaker_cooldown``.
    breaker_window: float = attrs.field(default=60.0, validator=v.gt(0))
    breaker_cooldown: float = attrs.field(default=30.0, validator=v.gt(0))
    #: The reconciliation poll asks the provider about intents open this long (minutes).
    stuck_after_minutes: int = attrs.field(default=15, validator=[v.ge(1), v.le(1440)])
    #: Rows per page of the console's lists.
    page_size: int = attrs.field(default=20, validator=[v.ge(1), v.le(100)])
