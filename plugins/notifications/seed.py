"""The starting templates, for ``propmubi dev`` and ``propmubi seed``: safe to run twice (a
(type, channel) that has a template is left as it is, edits included).

The DLT template ids are placeholders of the right shape: replace each with the id your SMS
text is registered under before sending SMS in India.
"""

from __future__ import annotations

from propmubi.actors import Actor
from propmubi_plugins.notifications import service
from propmubi_plugins.notifications.models import TemplateIn
from propmubi_plugins.notifications.state import Ctx

TEMPLATES: tuple[TemplateIn, ...] = (
    TemplateIn(type="lead_assigned", channel="sms", category="leads", kind="transactional",
               body="New lead {#name#} for {#project#} is assigned to you. Call them soon. "
                    "- Propmubi",
               variables=["name", "project"], dlt_template_id="1107000000000000001"),
    TemplateIn(type="lead_assigned", channel="push", category="leads", kind="transactional",
               subject="New lead: {#name#}",
               body="{#name#} is interested in {#project#}. Open the lead to call them.",
               variables=["name", "project"]),
    TemplateIn(type="lead_assigned", channel="email", category="leads", kind="transactional",
               subject="New lead for {#project#}: {#name#}",
               body="Hello,\n\n{#name#} asked about {#project#} and the lead is now yours. "
                    "Open it in the Propmubi app to call them.\n\nPropmubi",
               variables=["name", "project"]),
    TemplateIn(type="visit_reminder", channel="sms", category="visits", kind="transactional",
               body="Reminder: your site visit to {#project#} is {#when#}. - Propmubi",
               variables=["project", "when"], dlt_template_id="1107000000000000002"),
    TemplateIn(type="visit_reminder", channel="push", category="visits", kind="transactional",
               subject="Site visit {#when#}", body="Your visit to {#project#} is {#when#}.",
               variables=["project", "when"]),
    TemplateIn(type="otp", channel="sms", category="account", kind="critical",
               body="{#code#} is your Propmubi code. It expires in 5 minutes. Do not share it.",
               variables=["code"], dlt_template_id="1107000000000000003"),
    TemplateIn(type="booking_confirmed", channel="sms", category="bookings",
               kind="transactional",
               body="Your booking of unit {#unit#} is confirmed. Details are in the app. "
                    "- Propmubi",
               variables=["unit"], dlt_template_id="1107000000000000004"),
    TemplateIn(type="booking_confirmed", channel="email", category="bookings",
               kind="transactional", subject="Booking confirmed: {#unit#} at {#project#}",
               body="Hello,\n\nYour booking of unit {#unit#} at {#project#} is confirmed. "
                    "The receipt and next steps are in the Propmubi app.\n\nPropmubi",
               variables=["unit", "project"]),
    TemplateIn(type="new_launch", channel="email", category="marketing", kind="promotional",
               subject="New launch in {#city#}",
               body="Hello,\n\nA new project just launched in {#city#}. See it first in the "
                    "Propmubi app.\n\nPropmubi", variables=["city"]),
)


async def seed(ctx: Ctx, scale: float) -> None:
    """Create the starting templates that do not exist yet (``scale`` does not matter)."""
    await service.ensure_templates(ctx, Actor.system("seed"), TEMPLATES)
