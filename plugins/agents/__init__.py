"""The agents plugin: advisors who work leads. Onboarding (a profile for a user holding the
``agent`` role), RERA agent registrations verified by staff, the status that says whether an
agent may work (``active`` only with verified KYC, a verified registration in force, and no
staff suspension), territories, capacity, holidays, and the catalogue projects each agent
lists (accepted by the project's builder or staff). docs/agents.md is the guide.

Events: ``agents.agent_activated``, ``agent_suspended``, ``agent_updated``,
``listing_changed`` and ``registration_expiring``; the CRM plugin routes leads from them and
from ``api.active_agents_for``. It consumes ``auth.kyc_status_changed`` and
``auth.user_erased``.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from propmubi import hookimpl
from propmubi.config import Config
from propmubi.types import ConsolePage, ConsoleWidget, Job, PluginInfo, template_dir
from propmubi.web.routing import Routes
from propmubi_plugins.agents import console, events, handlers, routes, seed, service, state
from propmubi_plugins.agents.settings import AgentsSettings
from propmubi_plugins.agents.state import Ctx


@hookimpl
def propmubi_plugin_info() -> PluginInfo:
    """Name and version; users and KYC are auth's, projects the catalogue's, messages the
    notifications plugin's."""
    return PluginInfo(name="agents", version="0.1.0",
                      requires=("auth", "catalog", "notifications"),
                      description="agents: onboarding, RERA registrations, status, "
                                  "territories, capacity, holidays and listings")


@hookimpl
def propmubi_settings_class() -> type:
    """``[plugins.agents]``: page size, default capacity, the expiry notice, holidays."""
    return AgentsSettings


@hookimpl
def propmubi_migrations() -> Path:
    """The agents_* tables."""
    return Path(__file__).parent / "migrations"


@hookimpl
def propmubi_api_routes(config: Config) -> Routes:
    """``/agents/me...`` for agents, ``/agents...`` for staff, listings for builders."""
    return routes.routes


@hookimpl
def propmubi_event_types() -> list[type]:
    """The five ``agents.*`` events listed in the module docstring."""
    return list(events.EVENT_TYPES)


@hookimpl
def propmubi_event_handlers() -> Mapping[str, Any]:
    """``auth.kyc_status_changed`` (agent KYC: recompute the status), ``auth.user_erased``
    (anonymise and suspend the profile)."""
    return handlers.subscriptions()


@hookimpl
def propmubi_jobs() -> list[Job]:
    """Daily (UTC): ``refresh_statuses`` lapses ended registrations and activates those come
    into force; ``notify_expiring`` publishes ``registration_expiring`` once per
    registration."""
    return [Job(name="refresh_statuses", run=service.refresh_statuses, cron="5 0 * * *",
                timeout=600),
            Job(name="notify_expiring", run=service.notify_expiring, cron="15 0 * * *",
                timeout=600)]


@hookimpl
def propmubi_console_pages() -> list[ConsolePage]:
    """Agents (by status), an agent with every staff action, registrations expiring."""
    return console.pages()


@hookimpl
def propmubi_console_widgets() -> list[ConsoleWidget]:
    """Active agents, registrations to verify, registrations expiring."""
    return console.widgets()


@hookimpl
def propmubi_template_dirs() -> list[Path]:
    """``templates/agents/``."""
    return [template_dir(__file__)]


@hookimpl
def propmubi_startup(ctx: Ctx) -> Any:
    """This process's state (``state.start``)."""
    return functools.partial(state.start, ctx)


@hookimpl
def propmubi_seed(ctx: Ctx, scale: float) -> Any:
    """Demo agents for the demo catalogue's projects (safe to run twice)."""
    return seed.seed(ctx, scale)
