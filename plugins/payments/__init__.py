"""The payments plugin: collects a booking's amount through a payment provider, takes the
providers' signed webhooks, refunds, and reconciles with the providers' reports.

Events it publishes: ``payments.intent_created``, ``payments.webhook_received`` (its own
work queue), ``payments.payment_authorized``, ``payments.payment_captured`` (with the
booking's outcome), ``payments.payment_failed``, ``payments.refund_requested``,
``payments.refund_processed``, ``payments.refund_failed``. It handles its own two queues
and ``bookings.booking_cancelled`` (refund what the policy leaves). It asks the bookings
plugin through ``bookings.api`` (start a payment, record a captured payment or a refund) in
its own transactions.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from propmubi import hookimpl
from propmubi.config import Config
from propmubi.types import CliCommand, ConsolePage, ConsoleWidget, Job, PluginInfo, template_dir
from propmubi.web.routing import Routes
from propmubi_plugins.payments import (
    cli,
    console,
    events,
    handlers,
    offered,
    reconcile,
    routes,
    state,
)
from propmubi_plugins.payments.settings import PaymentsSettings
from propmubi_plugins.payments.state import Ctx


@hookimpl
def propmubi_plugin_info() -> PluginInfo:
    """Name and version; it requires the bookings plugin (whose bookings it collects for)."""
    return PluginInfo(name="payments", version="0.1.0", requires=("bookings",),
                      description="Payment intents, provider webhooks, refunds, reconciliation")


@hookimpl
def propmubi_settings_class() -> type:
    """``[plugins.payments]``: providers, fallback, breaker, reconciliation."""
    return PaymentsSettings


@hookimpl
def propmubi_migrations() -> Path:
    """Intents, provider events, refunds and settlement lines."""
    return Path(__file__).parent / "migrations"


@hookimpl
def propmubi_api_routes(config: Config) -> Routes:
    """Payment intents, provider webhooks, refunds."""
    return routes.routes


@hookimpl
def propmubi_payment_providers() -> Mapping[str, Any]:
    """The ``razorpay``, ``stripe`` and ``sandbox`` (dev only) providers."""
    return offered.factories()


@hookimpl
def propmubi_event_types() -> list[type]:
    """The ``payments.*`` events (see the module docstring)."""
    return list(events.EVENT_TYPES)


@hookimpl
def propmubi_event_handlers() -> Mapping[str, Any]:
    """Apply provider events, capture authorised payments, send refunds, refund cancelled
    bookings."""
    return handlers.subscriptions()


@hookimpl
def propmubi_jobs() -> list[Job]:
    """Every minute: poll stuck intents; nightly: yesterday's settlement reports."""
    return [Job(name="poll_payments", run=reconcile.poll_job, every=60),
            Job(name="settle_payments", run=reconcile.settle_job, cron="30 2 * * *",
                timeout=1800)]


@hookimpl
def propmubi_cli_commands() -> list[CliCommand]:
    """``propmubi payments poll | reconcile --day``."""
    return [CliCommand(name="payments", help="payments reconciliation: poll, reconcile",
                       configure=cli.configure, run=cli.run)]


@hookimpl
def propmubi_console_pages() -> list[ConsolePage]:
    """Payments, a payment's events and refunds, refunds, reconciliation, the sandbox."""
    return console.pages()


@hookimpl
def propmubi_console_widgets() -> list[ConsoleWidget]:
    """Today's captured payments and refunds."""
    return console.widgets()


@hookimpl
def propmubi_template_dirs() -> list[Path]:
    """``templates/payments/``."""
    return [template_dir(__file__)]


@hookimpl
def propmubi_startup(ctx: Ctx) -> Any:
    """Build the providers and their circuit breakers (``state.start``)."""
    return functools.partial(state.start, ctx)


@hookimpl
def propmubi_cleanup(ctx: Ctx) -> Any:
    """Close the providers' HTTP sessions."""
    return functools.partial(state.stop, ctx)
