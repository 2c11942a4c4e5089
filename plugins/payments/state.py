"""The payments plugin's per-process state: the providers it talks to and their breakers.

Each process builds the providers it may need: the one new intents go to, the fallback, and
every other provider with credentials (webhooks and refunds of older intents still reach
the provider that took them). Each provider has its own circuit breaker, so a provider that
fails too often stops getting new intents until a trial call succeeds.
"""

from __future__ import annotations

import attrs

from propmubi.context import PluginContext
from propmubi_plugins.payments.providers import PROVIDER_NAMES
from propmubi_plugins.payments.providers.base import PaymentProvider
from propmubi_plugins.payments.providers.breaker import RateBreaker
from propmubi_plugins.payments.settings import PaymentsSettings

#: The hook payment providers are offered through.
HOOK = "propmubi_payment_providers"


@attrs.define(eq=False)
class PaymentsState:
    """What one process of the plugin holds."""

    providers: dict[str, PaymentProvider]
    breakers: dict[str, RateBreaker]


Ctx = PluginContext[PaymentsSettings, PaymentsState]


def wanted(settings: PaymentsSettings, production: bool) -> list[str]:
    """The providers this process builds, the primary first."""
    names = [settings.provider]
    if settings.fallback_provider:
        names.append(settings.fallback_provider)
    configured = {"razorpay": bool(settings.razorpay.key_id),
                  "stripe": bool(settings.stripe.secret_key),
                  "sandbox": not production}
    names += [n for n in PROVIDER_NAMES if configured[n]]
    return list(dict.fromkeys(names))


async def start(ctx: Ctx) -> PaymentsState:
    """Build the providers and a breaker for each.

    :raises ConfigError: a provider refuses this configuration (the sandbox in production,
        a real provider without credentials).
    """
    settings = ctx.settings
    production = ctx.config.app.environment == "production"
    providers: dict[str, PaymentProvider] = {}
    try:
        for name in wanted(settings, production):
            providers[name] = ctx.provider(HOOK, name, setting="plugins.payments.provider")
    except BaseException:
        for provider in providers.values():
            await provider.close()
        raise
    breakers = {name: RateBreaker(f"payments.{name}", error_rate=settings.breaker_error_rate,
                                  min_calls=settings.breaker_min_calls,
                                  window=settings.breaker_window,
                                  cooldown=settings.breaker_cooldown)
                for name in providers}
    return PaymentsState(providers=providers, breakers=breakers)


async def stop(ctx: Ctx) -> None:
    """Close the providers' HTTP sessions."""
    if ctx.state is not None:
        for provider in ctx.state.providers.values():
            await provider.close()
