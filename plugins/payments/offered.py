"""The payment providers this plugin offers through ``propmubi_payment_providers``.

Each factory takes the consuming plugin's context (the payments plugin's own) and builds
the provider from its sub-table of settings. The sandbox completes payments from the
console and is refused in production; a real provider without credentials is refused.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from propmubi.config import ConfigError
from propmubi_plugins.payments.providers import build


def _razorpay(ctx: Any) -> Any:
    settings = ctx.settings.razorpay
    if not (settings.key_id and settings.key_secret and settings.webhook_secrets):
        raise ConfigError("plugins.payments.razorpay: key_id, key_secret and webhook_secrets "
                          "are required to use razorpay")
    return build("razorpay", settings, None)


def _stripe(ctx: Any) -> Any:
    settings = ctx.settings.stripe
    if not (settings.secret_key and settings.webhook_secrets):
        raise ConfigError("plugins.payments.stripe: secret_key and webhook_secrets are "
                          "required to use stripe")
    return build("stripe", settings, None)


def _sandbox(ctx: Any) -> Any:
    if ctx.config.app.environment == "production":
        raise ConfigError("plugins.payments: the sandbox provider completes payments from "
                          "the console and is refused in production")
    settings = ctx.settings.sandbox
    if not settings.webhook_secret:  # signed and verified by the same process
        settings = attrs.evolve(settings, webhook_secret=secrets.token_hex(32))
    return build("sandbox", settings, None)


def factories() -> Mapping[str, Callable[[Any], Any]]:
    """Provider name -> factory."""
    return {"razorpay": _razorpay, "stripe": _stripe, "sandbox": _sandbox}
