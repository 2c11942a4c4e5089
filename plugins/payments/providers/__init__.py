"""Payment providers behind one interface (:class:`base.PaymentProvider`).

``build(name, settings, session)`` makes the provider a setting names: ``razorpay`` and
``stripe`` speak those providers' HTTP APIs, ``sandbox`` is for development and makes no
network call. Each is built from its own settings class (:mod:`.settings`). A provider opens
its own aiohttp session on first use unless it is given one; ``close()`` closes only a session
it opened.
"""

from __future__ import annotations

import aiohttp

from propmubi.config import ConfigError
from propmubi_plugins.payments.providers.base import (
    PaymentProvider,
    ProviderError,
    ProviderOrder,
    ProviderPayment,
    ProviderRefund,
    SettlementLine,
    SignatureError,
    WebhookEvent,
)
from propmubi_plugins.payments.providers.breaker import RateBreaker
from propmubi_plugins.payments.providers.razorpay import RazorpayProvider
from propmubi_plugins.payments.providers.sandbox import SandboxProvider, sandbox_webhook
from propmubi_plugins.payments.providers.settings import (
    RazorpaySettings,
    SandboxSettings,
    StripeSettings,
)
from propmubi_plugins.payments.providers.stripe import StripeProvider

__all__ = [
    "PROVIDER_NAMES",
    "PaymentProvider",
    "ProviderError",
    "ProviderOrder",
    "ProviderPayment",
    "ProviderRefund",
    "RateBreaker",
    "RazorpayProvider",
    "RazorpaySettings",
    "SandboxProvider",
    "SandboxSettings",
    "SettlementLine",
    "SignatureError",
    "StripeProvider",
    "StripeSettings",
    "WebhookEvent",
    "build",
    "sandbox_webhook",
]

PROVIDER_NAMES = ("razorpay", "stripe", "sandbox")

ProviderSettings = RazorpaySettings | StripeSettings | SandboxSettings


def build(name: str, settings: ProviderSettings,
          session: aiohttp.ClientSession | None = None) -> PaymentProvider:
    """The provider called ``name``, built from its settings.

    :param settings: the settings class of that provider (``RazorpaySettings`` for
        ``razorpay``...).
    :param session: an aiohttp session to share (the caller closes it); None: the provider
        opens its own. The sandbox uses none.
    :raises ConfigError: an unknown name, settings of another provider, or a missing key.
    """
    if name == "razorpay" and isinstance(settings, RazorpaySettings):
        _require(name, key_id=settings.key_id, key_secret=settings.key_secret,
                 webhook_secrets=settings.webhook_secrets)
        return RazorpayProvider(settings, session)
    if name == "stripe" and isinstance(settings, StripeSettings):
        # No publishable key is needed server-side (refunds, polling, reconciliation), but
        # the checkout cannot pay an intent without one.
        _require(name, secret_key=settings.secret_key, webhook_secrets=settings.webhook_secrets)
        return StripeProvider(settings, session)
    if name == "sandbox" and isinstance(settings, SandboxSettings):
        _require(name, webhook_secret=settings.webhook_secret)
        return SandboxProvider(settings)
    if name not in PROVIDER_NAMES:
        raise ConfigError(f"unknown payment provider {name!r}; one of "
                          f"{', '.join(PROVIDER_NAMES)}")
    raise ConfigError(f"payment provider {name!r} got {type(settings).__name__}")


def _require(name: str, **values: object) -> None:
    missing = [key for key, value in values.items() if not value]
    if missing:
        raise ConfigError(f"payment provider {name!r} needs {', '.join(missing)}")
