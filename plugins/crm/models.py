"""The attrs classes of the CRM's API and console: validated inputs (an enquiry, a partner's
lead, a stage change, a reassignment, list queries, path ids) and the answers.

A phone number is checked twice: here that it is given and not absurdly long, then by the
service, which normalises it in ``plugins.crm.default_region`` (the routes take the body with
``partial_body=True``, so a bad phone is listed with the body's other problems in one 422).
Stage keys are checked by the service too: the stages are a setting.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import Any

import attrs
from attrs import validators as v

from propmubi.validation import json_schema

#: Where an enquiry came from (``source``); partner pushes are ``partner``.
SOURCES = ("website", "app", "whatsapp", "call", "walk_in", "referral", "portal", "other")
NAME_MAX = 120
MESSAGE_MAX = 2000
REASON_MAX = 500
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")


@json_schema(**{"x-not-blank": True}, maxLength=NAME_MAX)
def _name(instance: Any, attribute: attrs.Attribute, value: str) -> None:
    if not value.strip():
        raise ValueError("Give the buyer's name.")
    if len(value) > NAME_MAX:
        raise ValueError(f"At most {NAME_MAX} characters (got {len(value)}).")


@json_schema(**{"x-not-blank": True}, maxLength=40)
def _phone(instance: Any, attribute: attrs.Attribute, value: str) -> None:
    if not value.strip():
        raise ValueError("Give a phone number.")
    if len(value) > 40:
        raise ValueError("That is not a phone number.")


@json_schema(maxLength=254)
def _email(instance: Any, attribute: attrs.Attribute, value: str | None) -> None:
    if value is not None and (len(value) > 254 or not _EMAIL.match(value)):
        raise ValueError("Give an e-mail address such as name@example.com, or leave it out.")


def _at_most(limit: int) -> Any:
    @json_schema(maxLength=limit)
    def check(instance: Any, attribute: attrs.Attribute, value: str | None) -> None:
        if value is not None and len(value) > limit:
            raise ValueError(f"At most {limit} characters (got {len(value)}).")

    return check


@json_schema(**{"x-not-blank": True}, maxLength=REASON_MAX)
def _reason(instance: Any, attribute: attrs.Attribute, value: str) -> None:
    if not value.strip():
        raise ValueError("Say why.")
    if len(value) > REASON_MAX:
        raise ValueError(f"At most {REASON_MAX} characters (got {len(value)}).")


def _blank_none(value: Any) -> Any:
    """An empty text box is an absent optional field."""
    return None if isinstance(value, str) and not value.strip() else value


# --------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------


@attrs.frozen
class EnquiryIn:
    """``POST /enquiries``: a signed-in buyer asks about a project (and maybe one unit)."""

    project_id: uuid.UUID = attrs.field(metadata={"description": "The project asked about."})
    name: str = attrs.field(validator=_name)
    phone: str = attrs.field(validator=_phone, metadata={
        "description": "Any usual spelling (98765 43210, +91-98765-43210, 09876543210)."})
    unit_id: uuid.UUID | None = attrs.field(default=None, metadata={
        "description": "A unit of that project, when the question is about one."})
    email: str | None = attrs.field(default=None, converter=_blank_none, validator=_email)
    message: str = attrs.field(default="", validator=_at_most(MESSAGE_MAX))
    preferred_time: str | None = attrs.field(default=None, converter=_blank_none,
                                             validator=_at_most(100), metadata={
        "description": "When the buyer prefers to be called, as they put it."})
    source: str = attrs.field(default="website", validator=v.in_(SOURCES))
    #: The honeypot: people never see this field; a filled one is a bot.
    website: str = attrs.field(default="", validator=_at_most(500), metadata={
        "description": "Leave empty."})


@attrs.frozen
class PartnerLeadIn:
    """``POST /crm/partner-leads``: a partner (portal, agency) pushes a lead."""

    project_id: uuid.UUID
    name: str = attrs.field(validator=_name)
    phone: str = attrs.field(validator=_phone)
    unit_id: uuid.UUID | None = None
    email: str | None = attrs.field(default=None, converter=_blank_none, validator=_email)
    message: str = attrs.field(default="", validator=_at_most(MESSAGE_MAX))
    preferred_time: str | None = attrs.field(default=None, converter=_blank_none,
                                             validator=_at_most(100))
    external_ref: str | None = attrs.field(default=None, converter=_blank_none,
                                           validator=_at_most(100), metadata={
        "description": "The partner's own id of the lead."})


@attrs.frozen
class StageIn:
    """Move a lead to another stage (``reason``: required by stages such as ``lost``)."""

    stage: str = attrs.field(validator=[v.min_len(1), v.max_len(40)], metadata={
        "description": "A stage key of plugins.crm.stages (new, contacted, ...)."})
    reason: str | None = attrs.field(default=None, converter=_blank_none,
                                     validator=_at_most(REASON_MAX))


@attrs.frozen
class ReassignIn:
    """Staff give a lead to another advisor (or back to the queue: no ``agent_id``)."""

    reason: str = attrs.field(validator=_reason)
    agent_id: uuid.UUID | None = attrs.field(default=None, converter=_blank_none)


@attrs.frozen
class LeadQuery:
    """Keyset pagination (pass ``next_cursor`` back as ``cursor``) and a stage filter."""

    stage: str | None = attrs.field(default=None, validator=v.optional(v.max_len(40)))
    limit: int | None = attrs.field(default=None, validator=v.optional([v.ge(1), v.le(100)]))
    cursor: str | None = attrs.field(default=None, validator=v.optional(v.max_len(200)))


@attrs.frozen
class LeadId:
    """The ``{lead_id}`` of a path."""

    lead_id: uuid.UUID


# --------------------------------------------------------------------------------------------
# Answers
# --------------------------------------------------------------------------------------------


@attrs.frozen
class EnquiryAck:
    """An enquiry was received (the same shape whatever happened to it)."""

    enquiry_id: uuid.UUID
    lead_id: uuid.UUID
    received_at: dt.datetime


@attrs.frozen
class SlaOut:
    """A lead's running SLA clock: ``first_response`` or ``follow_up``."""

    kind: str
    paused: bool
    #: When the target is reached (None while paused).
    due_at: dt.datetime | None
    warned_at: dt.datetime | None
    breached_at: dt.datetime | None


@attrs.frozen
class LeadOut:
    """A lead as staff and its advisor see it."""

    id: uuid.UUID
    project_id: uuid.UUID
    unit_id: uuid.UUID | None
    name: str
    phone: str
    email: str | None
    source: str
    stage: str
    stage_label: str
    lost_reason: str | None
    agent_id: uuid.UUID | None
    agent_name: str | None
    created_at: dt.datetime
    updated_at: dt.datetime
    last_enquiry_at: dt.datetime
    assigned_at: dt.datetime | None
    first_response_at: dt.datetime | None
    closed_at: dt.datetime | None
    sla: SlaOut | None


@attrs.frozen
class LeadPage:
    """A page of leads, newest first; ``next_cursor`` asks for the next one."""

    items: list[LeadOut]
    next_cursor: str | None


@attrs.frozen
class EnquiryOut:
    """One enquiry of a lead."""

    id: uuid.UUID
    name: str
    email: str | None
    message: str
    preferred_time: str | None
    source: str
    partner: str | None
    created_at: dt.datetime


@attrs.frozen
class HistoryOut:
    """One change of a lead: created, enquiry, assigned, reassigned, unassigned, stage,
    sla_warning or sla_breached."""

    kind: str
    from_stage: str | None
    to_stage: str | None
    agent_id: uuid.UUID | None
    reason: str | None
    actor: str
    at: dt.datetime


@attrs.frozen
class LeadDetail:
    """A lead with its enquiries and history, oldest first."""

    lead: LeadOut
    enquiries: list[EnquiryOut]
    history: list[HistoryOut]


@attrs.frozen
class StageOut:
    """A stage of the pipeline."""

    key: str
    label: str
    terminal: bool
    waiting: bool
    needs_reason: bool
