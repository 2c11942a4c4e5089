"""The crm plugin: every enquiry becomes one lead (dedup by normalised phone and project),
routed fairly to an active advisor, moved through a configurable pipeline under SLAs on a
business calendar; site visits of leads (``visits/``) booked in slots of that calendar.

It keeps its own routing copy of the advisors from the agents plugin's events
(``agents.agent_activated``, ``agent_suspended``, ``agent_updated``, ``listing_changed``;
read by type name, never imported) and reads projects through the catalogue's ``api``.
It tells advisors, buyers and the escalation desk through the notifications plugin's ``api``
(notify.py: a lead assigned, visits booked, moved, cancelled and due, SLA breaches).
Events: ``crm.enquiry_received``, ``lead_created``, ``lead_assigned``, ``lead_reassigned``,
``stage_changed``, ``sla_warning``, ``sla_breached``, and of visits ``visit_scheduled``,
``visit_rescheduled``, ``visit_cancelled``, ``visit_reminder_due``, ``visit_no_show`` and
``visit_completed``.
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
from propmubi_plugins.crm import console, events, handlers, routes, seed, service, state
from propmubi_plugins.crm.settings import CrmSettings
from propmubi_plugins.crm.state import Ctx
from propmubi_plugins.crm.visits import console as visits_console
from propmubi_plugins.crm.visits import routes as visit_routes
from propmubi_plugins.crm.visits import service as visits


@hookimpl
def propmubi_plugin_info() -> PluginInfo:
    """Name and version; projects are the catalogue's, advisors the agents plugin's, messages
    the notifications plugin's."""
    return PluginInfo(name="crm", version="0.1.0",
                      requires=("catalog", "agents", "notifications"),
                      description="enquiries, leads, routing to advisors, pipeline and SLAs")


@hookimpl
def propmubi_settings_class() -> type:
    """``[plugins.crm]``: dedup window, spam limits, partner keys, stages, SLA calendar,
    visit slots."""
    return CrmSettings


@hookimpl
def propmubi_migrations() -> Path:
    """The crm_* tables: agents (routing copy), leads, enquiries, lead history, visits."""
    return Path(__file__).parent / "migrations"


@hookimpl
def propmubi_api_routes(config: Config) -> Routes:
    """``/enquiries``, ``/crm/partner-leads``, ``/crm/leads...``, ``/crm/my/leads``, and the
    visits' ``/crm/projects/{id}/visit-slots``, ``/crm/leads/{id}/visits``,
    ``/crm/visits...``, ``/crm/my/visits``."""
    return Routes(tags=["crm"]).include(routes.routes).include(visit_routes.routes)


@hookimpl
def propmubi_event_types() -> list[type]:
    """The thirteen ``crm.*`` events listed in the module docstring."""
    return list(events.EVENT_TYPES)


@hookimpl
def propmubi_event_handlers() -> Mapping[str, Any]:
    """The agents plugin's advisor events: keep the CRM's routing copy of the advisors; the
    CRM's lead, visit and SLA events: notify the advisor, the buyer, the escalation desk."""
    return handlers.subscriptions()


@hookimpl
def propmubi_jobs() -> list[Job]:
    """``check_slas`` and ``visit_reminders`` every minute (warnings, breaches; the 24 h and
    1 h visit reminders); ``route_queue`` and ``visit_no_shows`` every 5 minutes."""
    return [Job(name="check_slas", run=service.check_slas, every=60, timeout=55),
            Job(name="route_queue", run=service.route_queue, every=300, timeout=120),
            Job(name="visit_reminders", run=visits.send_reminders, every=60, timeout=55),
            Job(name="visit_no_shows", run=visits.mark_no_shows, every=300, timeout=120)]


@hookimpl
def propmubi_console_pages() -> list[ConsolePage]:
    """The leads board by stage, a lead (and its visits), the unassigned queue, the SLA
    breaches, the upcoming site visits."""
    return [*console.pages(), *visits_console.pages()]


@hookimpl
def propmubi_console_widgets() -> list[ConsoleWidget]:
    """New leads today, unassigned leads, SLA breaches."""
    return console.widgets()


@hookimpl
def propmubi_template_dirs() -> list[Path]:
    """``templates/crm/``."""
    return [template_dir(__file__)]


@hookimpl
def propmubi_startup(ctx: Ctx) -> Any:
    """The calendar, the pipeline, the enquiry limits and partner keys (``state.start``)."""
    return functools.partial(state.start, ctx)


@hookimpl
def propmubi_cleanup(ctx: Ctx) -> Any:
    """Nothing to release (``state.stop``)."""
    return functools.partial(state.stop, ctx)


@hookimpl
def propmubi_seed(ctx: Ctx, scale: float) -> Any:
    """Demo leads on the demo catalogue's projects (safe to run twice)."""
    return seed.seed(ctx, scale)
