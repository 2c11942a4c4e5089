"""What the agents plugin tells advisors, through the notifications plugin
(``notifications.api``), from its own events, in the handler's transaction:

- ``agents.registration_expiring`` -> the agent: ``registration_expiring`` (their RERA
  registration number and the day it ends), so they renew it before they stop getting leads.

The agent's phone and e-mail are the profile's. A type without an active template (staff
switched it off) or an agent without a usable address is logged and counted
(``propmubi_agents_notifications_total``), not retried: the event is processed. Any other
refusal is raised (the event is retried, then dead-lettered). ``TEMPLATES`` are the default
texts, created by the seed where staff have none.
"""

from __future__ import annotations

import uuid

from prometheus_client import Counter

from propmubi.actors import Actor
from propmubi.db import Tx
from propmubi.errors import ValidationFailed
from propmubi.events import Delivery
from propmubi_plugins.agents import store
from propmubi_plugins.agents.models import e164
from propmubi_plugins.agents.state import Ctx
from propmubi_plugins.notifications import api as notifications

ACTOR = Actor.system("agents-notify")
REGISTRATION_EXPIRING = "registration_expiring"

NOTIFICATIONS = Counter("propmubi_agents_notifications_total",
                        "Notifications the agents plugin asked for, by type and outcome "
                        "(requested, duplicate, skipped)", ["type", "outcome"])

#: The default templates of the types this plugin requests (DLT: at most two variables, none
#: adjacent; the SMS id is a placeholder of the right shape: register yours).
TEMPLATES = (
    notifications.TemplateIn(
        type=REGISTRATION_EXPIRING, channel="sms", category="account", kind="transactional",
        body="Your RERA agent registration {#number#} ends on {#until#}. Renew it to keep "
             "getting leads. - Propmubi",
        variables=["number", "until"], dlt_template_id="1107000000000000101"),
    notifications.TemplateIn(
        type=REGISTRATION_EXPIRING, channel="email", category="account", kind="transactional",
        subject="Your RERA registration ends on {#until#}",
        body="Hello,\n\nYour RERA agent registration {#number#} ends on {#until#}. Renew it "
             "and add the new registration in the Propmubi app, or you will stop receiving "
             "leads on that day.\n\nPropmubi",
        variables=["number", "until"]),
    notifications.TemplateIn(
        type=REGISTRATION_EXPIRING, channel="push", category="account", kind="transactional",
        subject="Registration ends {#until#}",
        body="Renew RERA registration {#number#} before {#until#} to keep getting leads.",
        variables=["number", "until"]),
)


async def on_registration_expiring(tx: Tx, delivery: Delivery) -> None:
    """Tell the agent their registration ends soon (once per event: its sequence is the
    notification's dedupe key)."""
    ctx: Ctx = delivery.ctx
    event = delivery.event
    row = await store.agent(tx, event.agent_id)
    if row is None or row["erased_at"] is not None:
        NOTIFICATIONS.labels(REGISTRATION_EXPIRING, "skipped").inc()
        return
    phone = e164(row["phone"]) if row["phone"] else None
    data = notifications.NotifyIn(
        type=REGISTRATION_EXPIRING, user_id=uuid.UUID(str(row["user_id"])), phone=phone,
        email=row["email"] or None,
        variables={"number": event.number, "until": event.valid_until.strftime("%d %b %Y")},
        dedupe_key=f"agents:registration:{event.registration_id}:expiring:{delivery.sequence}")
    try:
        out = await notifications.notify_in(ctx, tx, ACTOR, data)
    except ValidationFailed as exc:
        errors = exc.extra.get("errors") or []
        if not errors or any(e.get("field") != "type" for e in errors):
            raise
        ctx.log.warning("agents: %s not sent: %s", REGISTRATION_EXPIRING,
                        "; ".join(str(e.get("message")) for e in errors))
        NOTIFICATIONS.labels(REGISTRATION_EXPIRING, "skipped").inc()
        return
    NOTIFICATIONS.labels(REGISTRATION_EXPIRING,
                         "duplicate" if out.duplicate else "requested").inc()


async def ensure_templates(ctx: Ctx) -> None:
    """Create the default templates staff have not made (the seed)."""
    await notifications.ensure_templates(ctx, Actor.system("seed"), TEMPLATES)
