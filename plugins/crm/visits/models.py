"""The attrs classes of site visits: the slot query, booking, reschedule, cancel, feedback,
list queries, path ids and the answers.

Times are ISO 8601 with an offset (``2025-06-03T15:00:00+05:30`` or ``...Z``) and come back
in UTC. Whether a time is a slot, far enough ahead and within the horizon depends on the
settings and the clock, so the service checks those (a 422 naming ``starts_at``).
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import attrs
from attrs import validators as v

from propmubi.validation import json_schema
from propmubi_plugins.crm.models import REASON_MAX

NOTES_MAX = 2000
#: A visit's statuses: scheduled, then one of the others (final).
STATUSES = ("scheduled", "completed", "cancelled", "no_show")


@json_schema(**{"x-not-blank": True}, maxLength=REASON_MAX)
def _reason(instance: Any, attribute: attrs.Attribute, value: str) -> None:
    if not value.strip():
        raise ValueError("Say why the visit is cancelled.")
    if len(value) > REASON_MAX:
        raise ValueError(f"At most {REASON_MAX} characters (got {len(value)}).")


@json_schema(maxLength=NOTES_MAX)
def _notes(instance: Any, attribute: attrs.Attribute, value: str | None) -> None:
    if value is not None and len(value) > NOTES_MAX:
        raise ValueError(f"At most {NOTES_MAX} characters (got {len(value)}).")


def _blank_none(value: Any) -> Any:
    return None if isinstance(value, str) and not value.strip() else value


# --------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------

#: An optional aware time (attrs.field's ``type=`` is typed as a class, not a union).
_MAYBE_TIME: Any = dt.datetime | None

#: ``GET /crm/projects/{project_id}/visit-slots?from=&to=``. ``from`` is a Python keyword, so
#: the class is made with attrs.make_class (the field is named ``from``; read it with
#: :func:`slot_window`). Both are optional: from now, for the booking horizon.
SlotQuery: type = attrs.make_class("SlotQuery", {
    "from": attrs.field(type=_MAYBE_TIME, default=None, alias="from_", eq=False,
                        repr=False, metadata={
                            "description": "The earliest slot start (default: now)."}),
    "to": attrs.field(type=_MAYBE_TIME, default=None, metadata={
        "description": "Slots starting before this (default: the end of the horizon)."}),
}, frozen=True)
SlotQuery.__doc__ = "The range of slots asked for (at most ``visit_horizon_days`` long)."


def slot_window(query: Any) -> tuple[dt.datetime | None, dt.datetime | None]:
    """The ``from`` and ``to`` of a :data:`SlotQuery`."""
    return getattr(query, "from"), query.to


@attrs.frozen
class VisitIn:
    """Book a visit (or move one): the start of a free slot."""

    starts_at: dt.datetime = attrs.field(metadata={
        "description": "A slot start from GET /crm/projects/{project_id}/visit-slots."})


@attrs.frozen
class CancelIn:
    """Cancel a scheduled visit, saying why (kept in the visit's history, never in events)."""

    reason: str = attrs.field(validator=_reason)


@attrs.frozen
class FeedbackIn:
    """The advisor's outcome of a visit: attended or not, a rating 1-5, notes."""

    attended: bool
    rating: int | None = attrs.field(default=None, converter=_blank_none,
                                     validator=v.optional([v.ge(1), v.le(5)]))
    notes: str | None = attrs.field(default=None, converter=_blank_none, validator=_notes)


@attrs.frozen
class MyVisitsQuery:
    """The advisor's (or the buyer's) visits, soonest first (keyset pages; pass
    ``next_cursor`` as ``cursor``); ``status`` defaults to ``scheduled``."""

    status: str = attrs.field(default="scheduled", validator=v.in_(STATUSES))
    limit: int | None = attrs.field(default=None, validator=v.optional([v.ge(1), v.le(100)]))
    cursor: str | None = attrs.field(default=None, validator=v.optional(v.max_len(200)))


@attrs.frozen
class VisitId:
    """The ``{visit_id}`` of a path."""

    visit_id: uuid.UUID


@attrs.frozen
class ProjectId:
    """The ``{project_id}`` of a path."""

    project_id: uuid.UUID


# --------------------------------------------------------------------------------------------
# Answers
# --------------------------------------------------------------------------------------------


@attrs.frozen
class SlotOut:
    """A free slot: when, and how many more visits it takes."""

    starts_at: dt.datetime
    ends_at: dt.datetime
    remaining: int


@attrs.frozen
class VisitHistoryOut:
    """One change of a visit: scheduled, rescheduled (``from_starts_at`` the old time),
    cancelled, reminded, no_show or completed."""

    kind: str
    from_starts_at: dt.datetime | None
    starts_at: dt.datetime | None
    actor: str
    at: dt.datetime


@attrs.frozen
class VisitOut:
    """A site visit. ``rating`` and ``notes`` are the advisor's feedback: shown to staff and
    the lead's advisor, null for the buyer."""

    id: uuid.UUID
    lead_id: uuid.UUID
    project_id: uuid.UUID
    status: str
    starts_at: dt.datetime
    ends_at: dt.datetime
    reschedules: int
    attended: bool | None
    rating: int | None
    notes: str | None
    cancel_reason: str | None
    created_at: dt.datetime
    updated_at: dt.datetime
    closed_at: dt.datetime | None


@attrs.frozen
class VisitDetail:
    """A visit with its history, oldest first."""

    visit: VisitOut
    history: list[VisitHistoryOut]


@attrs.frozen
class VisitPage:
    """A page of visits, soonest first; ``next_cursor`` asks for the next one."""

    items: list[VisitOut]
    next_cursor: str | None
