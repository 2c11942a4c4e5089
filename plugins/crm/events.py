"""The events the CRM publishes, each in the transaction of the change it reports, keyed by
the lead (``aggregate="lead_id"``), or by the visit for the ``visit_*`` events
(``aggregate="visit_id"``). They carry ids, stages and times only: never the buyer's
name, phone or message, nor a reason someone typed.

``lead_assigned`` and ``lead_reassigned`` name the advisor's user (``agent_user_id``) so that
the notifications plugin can tell them without asking the CRM; ``sla_warning`` and
``sla_breached`` go to the team lead / staff queue.
"""

from __future__ import annotations

import datetime as dt
import uuid

import attrs

from propmubi.events import event


@event("crm.enquiry_received", version=1, aggregate="lead_id")
@attrs.frozen
class EnquiryReceived:
    """An enquiry arrived; ``new_lead`` False when it joined an open lead."""

    enquiry_id: uuid.UUID
    lead_id: uuid.UUID
    project_id: uuid.UUID
    source: str
    new_lead: bool


@event("crm.lead_created", version=1, aggregate="lead_id")
@attrs.frozen
class LeadCreated:
    """A new lead (a first enquiry of this phone for this project in the window)."""

    lead_id: uuid.UUID
    project_id: uuid.UUID
    unit_id: uuid.UUID | None
    source: str
    stage: str


@event("crm.lead_assigned", version=1, aggregate="lead_id")
@attrs.frozen
class LeadAssigned:
    """Routing gave the lead to an advisor."""

    lead_id: uuid.UUID
    project_id: uuid.UUID
    agent_id: uuid.UUID
    agent_user_id: uuid.UUID | None


@event("crm.lead_reassigned", version=1, aggregate="lead_id")
@attrs.frozen
class LeadReassigned:
    """Staff moved the lead to another advisor (``to_agent_id`` None: back to the queue)."""

    lead_id: uuid.UUID
    project_id: uuid.UUID
    from_agent_id: uuid.UUID | None
    to_agent_id: uuid.UUID | None
    to_agent_user_id: uuid.UUID | None


@event("crm.stage_changed", version=1, aggregate="lead_id")
@attrs.frozen
class StageChanged:
    """The lead moved from one stage to another."""

    lead_id: uuid.UUID
    project_id: uuid.UUID
    agent_id: uuid.UUID | None
    from_stage: str
    to_stage: str
    closed: bool


@event("crm.sla_warning", version=1, aggregate="lead_id")
@attrs.frozen
class SlaWarning:
    """A lead's SLA clock passed ``warn_percent`` of its target (once per clock)."""

    lead_id: uuid.UUID
    agent_id: uuid.UUID | None
    agent_user_id: uuid.UUID | None
    kind: str
    cycle: int
    due_at: dt.datetime | None


@event("crm.sla_breached", version=1, aggregate="lead_id")
@attrs.frozen
class SlaBreached:
    """A lead's SLA clock passed its target: escalate to the team lead (once per clock)."""

    lead_id: uuid.UUID
    agent_id: uuid.UUID | None
    agent_user_id: uuid.UUID | None
    kind: str
    cycle: int
    due_at: dt.datetime | None


@event("crm.visit_scheduled", version=1, aggregate="visit_id")
@attrs.frozen
class VisitScheduled:
    """A site visit was booked for a lead."""

    visit_id: uuid.UUID
    lead_id: uuid.UUID
    project_id: uuid.UUID
    buyer_user_id: uuid.UUID | None
    advisor_user_id: uuid.UUID | None
    starts_at: dt.datetime
    ends_at: dt.datetime


@event("crm.visit_rescheduled", version=1, aggregate="visit_id")
@attrs.frozen
class VisitRescheduled:
    """A scheduled visit moved to another slot (the same visit id)."""

    visit_id: uuid.UUID
    lead_id: uuid.UUID
    project_id: uuid.UUID
    buyer_user_id: uuid.UUID | None
    advisor_user_id: uuid.UUID | None
    from_starts_at: dt.datetime
    starts_at: dt.datetime
    ends_at: dt.datetime


@event("crm.visit_cancelled", version=1, aggregate="visit_id")
@attrs.frozen
class VisitCancelled:
    """A scheduled visit was cancelled (the reason stays in the visit's history)."""

    visit_id: uuid.UUID
    lead_id: uuid.UUID
    project_id: uuid.UUID
    buyer_user_id: uuid.UUID | None
    advisor_user_id: uuid.UUID | None
    starts_at: dt.datetime


@event("crm.visit_reminder_due", version=1, aggregate="visit_id")
@attrs.frozen
class VisitReminderDue:
    """A visit is 24 hours (``which`` "24h") or one hour ("1h") away: remind the buyer and
    the advisor (once per visit time and ``which``)."""

    visit_id: uuid.UUID
    lead_id: uuid.UUID
    project_id: uuid.UUID
    buyer_user_id: uuid.UUID | None
    advisor_user_id: uuid.UUID | None
    starts_at: dt.datetime
    which: str


@event("crm.visit_no_show", version=1, aggregate="visit_id")
@attrs.frozen
class VisitNoShow:
    """The buyer did not come: the advisor said so (``marked_by`` "advisor"), or the visit
    was still scheduled past the grace period ("grace")."""

    visit_id: uuid.UUID
    lead_id: uuid.UUID
    project_id: uuid.UUID
    buyer_user_id: uuid.UUID | None
    advisor_user_id: uuid.UUID | None
    starts_at: dt.datetime
    marked_by: str


@event("crm.visit_completed", version=1, aggregate="visit_id")
@attrs.frozen
class VisitCompleted:
    """The advisor recorded an attended visit (``rating`` 1-5 when given)."""

    visit_id: uuid.UUID
    lead_id: uuid.UUID
    project_id: uuid.UUID
    buyer_user_id: uuid.UUID | None
    advisor_user_id: uuid.UUID | None
    starts_at: dt.datetime
    rating: int | None


#: Every event type of the plugin (``propmubi_event_types``).
EVENT_TYPES: tuple[type, ...] = (EnquiryReceived, LeadCreated, LeadAssigned, LeadReassigned,
                                 StageChanged, SlaWarning, SlaBreached, VisitScheduled,
                                 VisitRescheduled, VisitCancelled, VisitReminderDue,
                                 VisitNoShow, VisitCompleted)
