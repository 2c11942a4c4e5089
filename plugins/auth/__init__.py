"""The auth plugin: phone OTP sign-in, ES256 access tokens with rotating refresh tokens,
sessions, roles, the consent ledger, KYC with encrypted identity numbers, and their console
pages.

It provides the authentication middleware (bearer tokens -> ``PRINCIPAL`` / ``SUBJECT``) that
the core's ``roles=`` route option relies on. Codes go out through the SMS provider named by
``plugins.auth.sms_provider`` (``notifications``: the notifications plugin's SMS providers).
Its per-process state (:mod:`.state`) is ``ctx.state``.
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
from propmubi_plugins.auth import (
    cli,
    console,
    events,
    middleware,
    routes,
    service,
    state,
    store,
)
from propmubi_plugins.auth.kyc import cli as kyc_cli
from propmubi_plugins.auth.kyc import console as kyc_console
from propmubi_plugins.auth.kyc import handlers as kyc_handlers
from propmubi_plugins.auth.kyc import routes as kyc_routes
from propmubi_plugins.auth.settings import AuthSettings


@hookimpl
def propmubi_plugin_info() -> PluginInfo:
    """Name and version; auth needs no other plugin."""
    return PluginInfo(name="auth", version="0.1.0",
                      description="phone OTP sign-in, tokens, sessions, roles, consent, KYC")


@hookimpl
def propmubi_settings_class() -> type:
    """``[plugins.auth]``: OTP, token, SMS and PII-key settings."""
    return AuthSettings


@hookimpl
def propmubi_migrations() -> Path:
    """The auth_* tables."""
    return Path(__file__).parent / "migrations"


@hookimpl
def propmubi_api_routes(config: Config) -> Routes:
    """``/api/v1/auth/...``, ``/api/v1/me...`` and ``/api/v1/me/kyc...``."""
    return Routes(tags=["auth"]).include(routes.routes).include(kyc_routes.routes)


@hookimpl
def propmubi_middlewares(config: Config) -> list[Any]:
    """Bearer-token authentication (sets PRINCIPAL and SUBJECT)."""
    return [middleware.authenticate]


@hookimpl
def propmubi_event_types() -> list[type]:
    """``auth.user_registered``, ``auth.refresh_reuse_detected``, ``auth.consent_recorded``,
    ``auth.user_erased`` and ``auth.kyc_status_changed``."""
    return events.EVENT_TYPES


@hookimpl
def propmubi_console_pages() -> list[ConsolePage]:
    """Users (search, detail, role changes, session revocation) and the KYC review queue
    (detail, approve, reject, audited reveal)."""
    return [*console.pages(), *kyc_console.pages()]


@hookimpl
def propmubi_console_widgets() -> list[ConsoleWidget]:
    """Sign-ups, pending KYC and KYC decisions today on the dashboard."""
    return [*console.widgets(), *kyc_console.widgets()]


@hookimpl
def propmubi_template_dirs() -> list[Path]:
    """``templates/auth/``."""
    return [template_dir(__file__)]


@hookimpl
def propmubi_actor_names() -> Mapping[str, Any]:
    return {"user": store.names}


@hookimpl
def propmubi_cli_commands() -> list[CliCommand]:
    """``propmubi users``: roles by phone number; ``propmubi auth rotate-pii-key``:
    re-encrypt identity numbers under the current key."""
    return [CliCommand(name="users", help="show, grant and revoke users' roles",
                       configure=cli.configure, run=cli.run),
            CliCommand(name="auth", help="auth maintenance: rotate-pii-key",
                       configure=kyc_cli.configure, run=kyc_cli.run)]


@hookimpl
def propmubi_event_handlers() -> Mapping[str, Any]:
    """``auth.kyc_status_changed``: count the day's KYC decisions for the dashboard card."""
    return {"auth.kyc_status_changed": kyc_handlers.count_decision}


@hookimpl
def propmubi_jobs() -> list[Job]:
    """Hourly purge of long-expired codes and refresh tokens."""
    return [Job(name="purge_expired", run=service.purge_expired, every=3600)]


@hookimpl
def propmubi_startup(ctx: state.Ctx) -> Any:
    """Build the state: signing keys, the SMS provider (``plugins.auth.sms_provider``), OTP
    limits, PII keyring (refusing unsafe production settings)."""
    return functools.partial(state.start, ctx)


@hookimpl
def propmubi_cleanup(ctx: state.Ctx) -> Any:
    """Release the state (nothing to close)."""
    # A callable, not a coroutine: the core skips cleanup of a plugin whose startup failed,
    # and a coroutine created for nothing would warn.
    return functools.partial(state.stop, ctx)
