"""The ``[plugins.crm]`` settings: phone region, dedup window, spam limits, partner keys, the
pipeline's stages, the business calendar of the SLA clock, and its targets.

Every field has a default; a bad value stops the process naming ``plugins.crm.<key>``. Lists
are tuples of strings, so a variable or a credential file can give them as ``a,b``.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
import zoneinfo
from typing import Any

import attrs
import phonenumbers
from attrs import validators as v

#: A stage entry of ``stages``: ``key`` or ``key:Label``.
_STAGE = re.compile(r"^([a-z][a-z0-9_]{0,39})(?::(.{1,60}))?$")
_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_HASH = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}:[0-9a-f]{64}$")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _rate(instance: Any, attribute: attrs.Attribute, value: str) -> None:
    from propmubi.web.ratelimit import RateLimit

    RateLimit.parse(value)


def _region(instance: Any, attribute: attrs.Attribute, value: str) -> None:
    if value not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(f"{value!r} is not a region code such as 'IN' or 'GB'")


def _stages(instance: Any, attribute: attrs.Attribute, value: tuple[str, ...]) -> None:
    keys = [m[1] for m in (_STAGE.match(s) for s in value) if m]
    if len(keys) != len(value):
        raise ValueError("each stage is 'key' or 'key:Label' (key: a-z, 0-9, _)")
    if len(set(keys)) != len(keys) or len(keys) < 2:
        raise ValueError("give at least two stages, each key once")


def _some_stages(instance: Any, attribute: attrs.Attribute, value: tuple[str, ...]) -> None:
    keys = {s.partition(":")[0] for s in instance.stages}
    unknown = [s for s in value if s not in keys]
    if unknown:
        raise ValueError(f"not in stages: {', '.join(unknown)}")
    first = instance.stages[0].partition(":")[0]
    if first in value:
        raise ValueError(f"the first stage ({first}) cannot be listed here")


def _terminal(instance: Any, attribute: attrs.Attribute, value: tuple[str, ...]) -> None:
    _some_stages(instance, attribute, value)
    if not value:
        raise ValueError("at least one stage must be terminal")


def _clock(instance: Any, attribute: attrs.Attribute, value: str) -> None:
    if not _CLOCK.match(value):
        raise ValueError("a time of day as HH:MM (24 hours)")


def _after_start(instance: Any, attribute: attrs.Attribute, value: str) -> None:
    _clock(instance, attribute, value)
    if value <= instance.business_start:
        raise ValueError("must be later than business_start")


def _days(instance: Any, attribute: attrs.Attribute, value: tuple[str, ...]) -> None:
    if not value or any(d not in WEEKDAYS for d in value):
        raise ValueError(f"one or more of {', '.join(WEEKDAYS)}")


def _some_days(instance: Any, attribute: attrs.Attribute, value: tuple[str, ...]) -> None:
    if any(d not in WEEKDAYS for d in value):
        raise ValueError(f"none (the business days), or some of {', '.join(WEEKDAYS)}")


def _optional_clock(instance: Any, attribute: attrs.Attribute, value: str) -> None:
    if value:
        _clock(instance, attribute, value)


def _visit_end(instance: Any, attribute: attrs.Attribute, value: str) -> None:
    _optional_clock(instance, attribute, value)
    if (value or instance.business_end) <= (instance.visit_start or instance.business_start):
        raise ValueError("must be later than visit_start (or business_start)")


def _stage_or_none(instance: Any, attribute: attrs.Attribute, value: str) -> None:
    if value and value not in {s.partition(":")[0] for s in instance.stages}:
        raise ValueError(f"not in stages: {value}")
    if value and value in instance.terminal_stages:
        raise ValueError(f"{value} closes a lead; choose an open stage or none")


def _dates(instance: Any, attribute: attrs.Attribute, value: tuple[str, ...]) -> None:
    for text in value:
        try:
            dt.date.fromisoformat(text)
        except ValueError:
            raise ValueError(f"{text!r} is not a date as YYYY-MM-DD") from None


def _zone(instance: Any, attribute: attrs.Attribute, value: str) -> None:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{value!r} is not an IANA time zone such as 'Asia/Kolkata'") from None


def _lead_link(instance: Any, attribute: attrs.Attribute, value: str) -> None:
    if "{lead_id}" not in value or len(value) > 300:
        raise ValueError("a link of at most 300 characters holding {lead_id}")


def _user_id(instance: Any, attribute: attrs.Attribute, value: str) -> None:
    if value:
        try:
            uuid.UUID(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a user id (a UUID)") from None


def _email(instance: Any, attribute: attrs.Attribute, value: str) -> None:
    if value and not re.fullmatch(r"[^@\s]{1,64}@[^@\s]{1,255}\.[^@\s.]{2,63}", value):
        raise ValueError(f"{value!r} is not an e-mail address")


def _partner_keys(instance: Any, attribute: attrs.Attribute, value: tuple[str, ...]) -> None:
    if any(not _HASH.match(k) for k in value):
        raise ValueError("each is '<partner>:<sha256 hex of the key>'")


@attrs.frozen
class CrmSettings:
    """How the crm plugin behaves."""

    #: Leads per page when a caller asks for no particular number.
    page_size: int = attrs.field(default=20, validator=[v.ge(1), v.le(100)])
    #: The region of a phone number typed without a country code.
    default_region: str = attrs.field(default="IN", validator=_region)
    #: A repeat enquiry (same project, same phone) within this many days joins the open lead.
    dedup_window_days: int = attrs.field(default=30, validator=[v.ge(0), v.le(3650)])
    #: Enquiries accepted for one phone number (from everywhere together).
    enquiry_per_phone: str = attrs.field(default="5/hour", validator=_rate)
    #: Enquiries accepted from one client address.
    enquiry_per_ip: str = attrs.field(default="30/hour", validator=_rate)
    #: Partners allowed to push leads: ``name:<sha256 hex of the partner's API key>``.
    partner_keys: tuple[str, ...] = attrs.field(default=(), validator=_partner_keys,
                                                metadata={"secret": True})

    #: The pipeline, in order: ``key`` or ``key:Label``; the first is where a lead starts.
    stages: tuple[str, ...] = attrs.field(default=(
        "new:New", "contacted:Contacted", "visit_scheduled:Visit scheduled",
        "visited:Visited", "negotiation:Negotiation", "won:Won", "lost:Lost"),
        validator=_stages)
    #: Stages that close a lead (no SLA, no more routing capacity used).
    terminal_stages: tuple[str, ...] = attrs.field(default=("won", "lost"),
                                                   validator=_terminal)
    #: Stages that wait on the buyer: the SLA clock pauses while a lead is in one.
    waiting_stages: tuple[str, ...] = attrs.field(default=("visit_scheduled",),
                                                  validator=_some_stages)
    #: Stages that need a reason when a lead enters them.
    reason_stages: tuple[str, ...] = attrs.field(default=("lost",), validator=_some_stages)

    #: The business calendar of the SLA clock (its own zone, whatever the server's is).
    timezone: str = attrs.field(default="Asia/Kolkata", validator=_zone)
    business_days: tuple[str, ...] = attrs.field(
        default=("mon", "tue", "wed", "thu", "fri", "sat"), validator=_days)
    business_start: str = attrs.field(default="10:00", validator=_clock)
    business_end: str = attrs.field(default="19:00", validator=_after_start)
    #: Days off (YYYY-MM-DD, in the calendar's zone).
    holidays: tuple[str, ...] = attrs.field(default=(), validator=_dates)
    #: Business minutes from a lead's creation to its first move out of the first stage.
    first_response_minutes: int = attrs.field(default=120, validator=[v.ge(1), v.le(100_000)])
    #: Business minutes allowed between later stage changes of an open lead.
    follow_up_minutes: int = attrs.field(default=540, validator=[v.ge(1), v.le(100_000)])
    #: The share of a target after which the warning goes out (percent).
    warn_percent: int = attrs.field(default=80, validator=[v.ge(1), v.le(99)])
    #: Leads the SLA job looks at per run.
    sla_batch: int = attrs.field(default=500, validator=[v.ge(1), v.le(10_000)])

    #: Site visits (``visits/``): slots on the business calendar (its days and hours unless
    #: ``visit_days`` / ``visit_start`` / ``visit_end`` narrow them; never on a holiday).
    visit_days: tuple[str, ...] = attrs.field(default=(), validator=_some_days)
    visit_start: str = attrs.field(default="", validator=_optional_clock)
    visit_end: str = attrs.field(default="", validator=_visit_end)
    #: The length of a slot; slots start at the opening time and follow each other.
    visit_slot_minutes: int = attrs.field(default=60, validator=[v.ge(15), v.le(480)])
    #: Visits at one project's site at once (the visits of one slot).
    visit_capacity: int = attrs.field(default=3, validator=[v.ge(1), v.le(100)])
    #: How far ahead a visit may be booked, and the longest range of slots asked at once.
    visit_horizon_days: int = attrs.field(default=30, validator=[v.ge(1), v.le(365)])
    #: The least time between booking (or rescheduling) and the visit.
    visit_min_notice_minutes: int = attrs.field(default=120, validator=[v.ge(0), v.le(10_080)])
    #: A visit still scheduled this long after its end becomes a no-show.
    visit_no_show_grace_minutes: int = attrs.field(default=120,
                                                   validator=[v.ge(0), v.le(10_080)])
    #: The stage a lead moves to when a visit is booked, and when one was attended
    #: ("" : the lead's stage does not move).
    visit_scheduled_stage: str = attrs.field(default="visit_scheduled", validator=_stage_or_none)
    visited_stage: str = attrs.field(default="visited", validator=_stage_or_none)

    #: Notifications (notify.py). The link an advisor's message gives to a lead
    #: (``{lead_id}`` is replaced): the app's deep link, or a web page.
    lead_link: str = attrs.field(default="propmubi://leads/{lead_id}", validator=_lead_link)
    #: Who hears of an SLA breach (``sla_breached``): a team mailbox, and/or the account of
    #: a team lead (their registered push devices; the mailbox's messages are recorded
    #: against it). Neither set: breaches are only in the console's queue.
    sla_escalation_email: str = attrs.field(default="", validator=_email)
    sla_escalation_user_id: str = attrs.field(default="", validator=_user_id)
