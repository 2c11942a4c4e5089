"""The catalogue's vocabularies and the attrs classes of builders and projects: the validated
inputs of their writes (the API's bodies, the console's forms), every field checked at the edge
and naming the field, and the shapes of their answers; plus the validators the sub-domains share
(:func:`text_rules`, :func:`no_control_characters`, :func:`optional_one_of`,
:data:`CURRENCY_PATTERN`).

Towers and units, photos and search have their own ``models.py`` (``units/``, ``media/``,
``search/``).
"""

from __future__ import annotations

import datetime as dt
import math
import re
import uuid
from typing import Any

import attrs
from attrs import validators as v

from propmubi.validation import (
    CONTROL_FREE_MULTILINE_PATTERN,
    CONTROL_FREE_PATTERN,
    json_schema,
    not_blank,
)

# --------------------------------------------------------------------------------------------
# Vocabularies
# --------------------------------------------------------------------------------------------

#: Construction status of a project.
PROJECT_STATUSES = ("upcoming", "under_construction", "ready")
#: Moderation states.
MODERATION_STATES = ("draft", "in_review", "published", "rejected")
#: The fixed amenity vocabulary (apps show an icon for each; search filters on them).
AMENITIES = (
    "swimming_pool", "gym", "clubhouse", "children_play_area", "jogging_track",
    "landscaped_garden", "indoor_games", "sports_court", "yoga_deck", "party_hall",
    "power_backup", "lift", "covered_parking", "visitor_parking", "ev_charging",
    "security_24x7", "cctv", "intercom", "gated_community", "fire_safety",
    "rainwater_harvesting", "solar_power", "sewage_treatment", "water_storage",
    "piped_gas", "wifi", "co_working", "senior_citizen_area", "pet_park", "amphitheatre",
    "shopping_centre", "school_nearby", "hospital_nearby", "metro_nearby",
)
#: Fields of a published project that only staff may change (see the module docstring).
LOCKED_WHEN_PUBLISHED = ("name", "city", "locality", "lat", "lng", "rera_number")

CURRENCY_PATTERN = r"[A-Z]{3}"
_RERA = r"[A-Za-z0-9][A-Za-z0-9/\-_. ]{2,59}"
_URL = r"https?://[^\s/$.?#][^\s]{0,300}"


# --------------------------------------------------------------------------------------------
# Validators and input classes (routes use them as bodies)
# --------------------------------------------------------------------------------------------


# Control characters (C0, DEL, C1): a name is one line without them; a long free text (a
# description, an address, a reason) may also hold line breaks (\n or \r\n) and tabs.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONTROL_MULTILINE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]|\r(?!\n)")
# The same rules as JSON Schema patterns (CONTROL_FREE_PATTERN, ..._MULTILINE_PATTERN) are
# in propmubi.validation, for the OpenAPI document.


def control_character_problem(value: str, *, multiline: bool = False) -> str | None:
    """What is wrong with the control characters in ``value``, or None: the one rule of every
    catalogue text (inputs, CSV cells, and a project's texts when it is submitted)."""
    found = (_CONTROL_MULTILINE if multiline else _CONTROL).search(value)
    if found is None:
        return None
    char = f"U+{ord(found.group()[0]):04X} at character {found.start() + 1}"
    if not multiline and found.group() in "\n\r\t":
        return f"must be one line, without line breaks or tabs ({char})"
    return f"must not contain control characters ({char})"


def no_control_characters(multiline: bool = False) -> Any:
    """The attrs validator of :func:`control_character_problem` (None passes)."""

    @json_schema(pattern=CONTROL_FREE_MULTILINE_PATTERN if multiline else CONTROL_FREE_PATTERN)
    def check(instance: Any, attribute: attrs.Attribute, value: str | None) -> None:
        problem = None if value is None else control_character_problem(value,
                                                                        multiline=multiline)
        if problem:
            raise ValueError(problem)

    return check


def text_rules(lo: int, hi: int, *, multiline: bool = False) -> list[Any]:
    """Length limits (a required text also not blank) and no control characters."""
    rules = [v.min_len(lo), v.max_len(hi), not_blank] if lo else [v.max_len(hi)]
    return [*rules, no_control_characters(multiline)]


def opt_text_rules(lo: int, hi: int, *, multiline: bool = False) -> Any:
    return v.optional(text_rules(lo, hi, multiline=multiline))


def _finite(instance: Any, attribute: attrs.Attribute, value: float | None) -> None:
    if value is not None and not math.isfinite(value):
        raise ValueError("must be a finite number")


def unknown_amenities_problem(values: list[str]) -> str | None:
    """The message for amenities outside :data:`AMENITIES` (None: all known)."""
    unknown = sorted({a for a in values if a not in AMENITIES})
    if unknown:
        return (f"unknown amenities {', '.join(map(repr, unknown[:5]))}; "
                "see the amenity vocabulary (GET /catalog/vocabulary)")
    return None


@json_schema(items={"enum": list(AMENITIES)}, uniqueItems=True)
def _amenities(instance: Any, attribute: attrs.Attribute, value: list[str] | None) -> None:
    if value is None:
        return
    problem = unknown_amenities_problem(value)
    if problem:
        raise ValueError(problem)
    if len(set(value)) != len(value):
        raise ValueError("must not repeat an amenity")


# A date of 1950-2100 as the OpenAPI document states it (days per month, leap years).
_YEAR = r"(?:19[5-9][0-9]|20[0-9][0-9]|2100)"
_LEAP = r"(?:19(?:[68][048]|[579][26])|20(?:[02468][048]|[13579][26]))"
DATE_RANGE_PATTERN = (rf"^(?:{_YEAR}-(?:0[1-9]|1[0-2])-(?:0[1-9]|1[0-9]|2[0-8])"
                      rf"|{_YEAR}-(?:0[13-9]|1[0-2])-(?:29|30)|{_YEAR}-(?:0[13578]|1[02])-31"
                      rf"|{_LEAP}-02-29)$")


@json_schema(pattern=DATE_RANGE_PATTERN)
def _date_range(instance: Any, attribute: attrs.Attribute, value: dt.date | None) -> None:
    if value is not None and not (1950 <= value.year <= 2100):
        raise ValueError("must be between 1950 and 2100")


def optional_one_of(allowed: tuple[str, ...]) -> Any:
    """Like ``optional(in_(allowed))``, but kept out of the OpenAPI ``enum`` (whose list
    could not include the null default)."""

    @json_schema(enum=[*allowed, None])
    def check(instance: Any, attribute: attrs.Attribute, value: str | None) -> None:
        if value is not None and value not in allowed:
            raise ValueError(f"must be one of {', '.join(allowed)}")

    return check


_LAT = [_finite, v.ge(-90.0), v.le(90.0)]
_LNG = [_finite, v.ge(-180.0), v.le(180.0)]


@attrs.frozen(kw_only=True)
class BuilderIn:
    """A builder profile. ``owner_user_id`` is for staff only (a builder's own profile is
    always theirs); ``verified`` is not settable: it follows document verification."""

    name: str = attrs.field(validator=text_rules(1, 200))
    rera_promoter_id: str | None = attrs.field(default=None, validator=v.optional(
        v.matches_re(_RERA)), metadata={"description": "The promoter's RERA registration."})
    description: str = attrs.field(default="", validator=text_rules(0, 5000, multiline=True))
    website: str | None = attrs.field(default=None, validator=v.optional(
        [v.matches_re(_URL), no_control_characters()]))
    owner_user_id: uuid.UUID | None = attrs.field(default=None, metadata={
        "description": "Staff only: the user who will manage this builder."})


@attrs.frozen(kw_only=True)
class BuilderPatch:
    """Changes to a builder profile; absent fields stay, an empty string clears
    ``rera_promoter_id`` / ``website``."""

    name: str | None = attrs.field(default=None, validator=opt_text_rules(1, 200))
    rera_promoter_id: str | None = attrs.field(default=None, validator=v.optional(
        v.matches_re(f"(?:{_RERA})?")))
    description: str | None = attrs.field(default=None,
                                          validator=opt_text_rules(0, 5000, multiline=True))
    website: str | None = attrs.field(default=None, validator=v.optional(
        [v.matches_re(f"(?:{_URL})?"), no_control_characters()]))


@attrs.frozen(kw_only=True)
class ProjectIn:
    """A new project (a draft). Staff name the builder; builders create for their own."""

    name: str = attrs.field(validator=text_rules(1, 200))
    city: str = attrs.field(validator=text_rules(1, 100))
    locality: str = attrs.field(validator=text_rules(1, 100))
    address: str = attrs.field(default="", validator=text_rules(0, 500, multiline=True))
    lat: float = attrs.field(validator=_LAT)
    lng: float = attrs.field(validator=_LNG)
    rera_number: str | None = attrs.field(default=None, validator=v.optional(
        v.matches_re(_RERA)))
    status: str = attrs.field(default="upcoming", validator=v.in_(PROJECT_STATUSES))
    possession_date: dt.date | None = attrs.field(default=None, validator=_date_range)
    amenities: list[str] = attrs.field(factory=list, validator=[v.max_len(len(AMENITIES)),
                                                                _amenities])
    description: str = attrs.field(default="", validator=text_rules(0, 10000, multiline=True))
    currency: str = attrs.field(default="INR", validator=v.matches_re(CURRENCY_PATTERN),
                                metadata={"description": "Currency of every unit price in "
                                          "the project (ISO 4217)."})
    builder_id: uuid.UUID | None = attrs.field(default=None, metadata={
        "description": "Staff only: the builder the project belongs to."})


@attrs.frozen(kw_only=True)
class ProjectPatch:
    """Changes to a project; absent (or null) fields stay. ``featured`` is for staff."""

    name: str | None = attrs.field(default=None, validator=opt_text_rules(1, 200))
    city: str | None = attrs.field(default=None, validator=opt_text_rules(1, 100))
    locality: str | None = attrs.field(default=None, validator=opt_text_rules(1, 100))
    address: str | None = attrs.field(default=None,
                                      validator=opt_text_rules(0, 500, multiline=True))
    lat: float | None = attrs.field(default=None, validator=v.optional(_LAT))
    lng: float | None = attrs.field(default=None, validator=v.optional(_LNG))
    rera_number: str | None = attrs.field(default=None, validator=v.optional(
        v.matches_re(_RERA)))
    status: str | None = attrs.field(default=None, validator=optional_one_of(PROJECT_STATUSES))
    possession_date: dt.date | None = attrs.field(default=None, validator=_date_range)
    amenities: list[str] | None = attrs.field(default=None, validator=v.optional(
        v.and_(v.max_len(len(AMENITIES)), _amenities)))
    description: str | None = attrs.field(default=None,
                                          validator=opt_text_rules(0, 10000, multiline=True))
    featured: bool | None = None


@attrs.frozen
class ReasonIn:
    """Why (shown to the builder)."""

    reason: str = attrs.field(validator=text_rules(1, 2000, multiline=True))


# --------------------------------------------------------------------------------------------
# Path and query parameters
# --------------------------------------------------------------------------------------------


@attrs.frozen
class Id:
    id: uuid.UUID


@attrs.frozen
class ProjectRef:
    # Named `id` like the other /projects/{id} routes: one path template (OpenAPI tells
    # templated paths apart by their shape only).
    id: str = attrs.field(validator=[v.min_len(1), v.max_len(200)], metadata={
        "description": "The project's id or slug."})


@attrs.frozen
class PageQuery:
    """Keyset pagination: pass ``next_cursor`` of one page as ``cursor`` for the next."""

    limit: int = attrs.field(default=20, validator=[v.ge(1), v.le(100)])
    cursor: str | None = attrs.field(default=None, validator=v.optional(v.max_len(200)))
    moderation: str | None = attrs.field(
        default=None, validator=optional_one_of(MODERATION_STATES))


# --------------------------------------------------------------------------------------------
# Answers
# --------------------------------------------------------------------------------------------


@attrs.frozen
class Vocabulary:
    """The fixed vocabularies of the catalogue."""

    amenities: list[str]
    project_statuses: list[str]
    moderation_states: list[str]
    unit_statuses: list[str]
    facings: list[str]


@attrs.frozen
class BuilderOut:
    """A builder's public profile; ``verified`` follows document verification."""

    id: uuid.UUID
    name: str
    slug: str
    rera_promoter_id: str | None
    verified: bool
    description: str
    website: str | None
    created_at: dt.datetime
    updated_at: dt.datetime


@attrs.frozen
class BuilderRef:
    """The builder of a project, as projects and search results show it."""

    id: uuid.UUID
    name: str
    slug: str
    verified: bool


@attrs.frozen
class ProjectOut:
    """A project. ``price_min``/``price_max`` (minor units of ``currency``) and ``bedrooms``
    cover the units still for sale (not sold or blocked)."""

    id: uuid.UUID
    slug: str
    builder: BuilderRef
    name: str
    city: str
    locality: str
    address: str
    lat: float
    lng: float
    rera_number: str | None
    status: str
    possession_date: dt.date | None
    amenities: list[str]
    description: str
    moderation: str
    rejection_reason: str | None
    featured: bool
    currency: str
    price_min: int | None
    price_max: int | None
    bedrooms: list[int]
    units_total: int
    units_available: int
    created_at: dt.datetime
    updated_at: dt.datetime
    submitted_at: dt.datetime | None
    published_at: dt.datetime | None


@attrs.frozen
class ProjectPage:
    items: list[ProjectOut]
    next_cursor: str | None


@attrs.frozen
class Review:
    action: str
    reason: str | None
    actor: str
    at: dt.datetime


# --------------------------------------------------------------------------------------------
# Console forms (``propmubi.console.forms.read_form``)
# --------------------------------------------------------------------------------------------

#: Longest reason typed in the console (a rejection, an unpublication, a verification).
REASON_MAX = 1000


def _form_text(lo: int, hi: int, *, what: str, multiline: bool = False,
               missing: str | None = None) -> Any:
    """A console text box: ``lo``..``hi`` characters (``lo`` 1: required; ``missing`` says
    so, else "Give the <what>."), no control characters; messages as staff read them."""

    def check(instance: Any, attribute: attrs.Attribute, value: str) -> None:
        if lo and not value.strip():
            raise ValueError(missing or f"Give the {what}.")
        if len(value) > hi:
            raise ValueError(f"At most {hi} characters (got {len(value)}).")
        problem = control_character_problem(value, multiline=multiline)
        if problem:
            raise ValueError(f"The {what} {problem}.")

    return check


def _reason(missing: str) -> Any:
    """The validator of a console reason: required (``missing`` says so), at most
    :data:`REASON_MAX` characters, lines without control characters."""
    return _form_text(1, REASON_MAX, what="reason", multiline=True, missing=missing)


@attrs.frozen
class RejectForm:
    """The console's Reject decision: the reason is required (the builder reads it)."""

    # An empty box is an absent field: the default lets the validator say what is missing.
    reason: str = attrs.field(default="", validator=_reason(
        "Give the reason for the rejection; the builder reads it."))


@attrs.frozen
class UnpublishForm:
    """The console's Unpublish decision: the reason is required (the builder reads it)."""

    reason: str = attrs.field(default="", validator=_reason(
        "Give the reason for taking the project down; the builder reads it."))


@attrs.frozen
class VerificationForm:
    """A staff member setting or removing a builder's verified badge by hand: why (kept in
    the builder's verification history with their name)."""

    reason: str = attrs.field(default="", validator=_reason(
        "Give the reason for changing the badge; it is kept in its history with your name."))


def _form_pattern(pattern: str, message: str) -> Any:
    """An optional console text box that, when filled in, must match ``pattern``."""
    compiled = re.compile(pattern)

    def check(instance: Any, attribute: attrs.Attribute, value: str) -> None:
        if value and (compiled.fullmatch(value) is None
                      or control_character_problem(value) is not None):
            raise ValueError(message)

    return check


@attrs.frozen
class BuilderEditForm:
    """The console's edit form of a builder profile: every field as it should be (an empty
    RERA promoter id, website or description clears it); :meth:`patch` is the change as the
    API takes it."""

    name: str = attrs.field(default="", validator=_form_text(1, 200, what="builder's name"))
    rera_promoter_id: str = attrs.field(default="", validator=_form_pattern(
        _RERA, "3 to 60 letters, digits, spaces or / - _ . (starting with a letter or digit), "
        "or nothing."))
    website: str = attrs.field(default="", validator=_form_pattern(
        _URL, "A web address starting with http:// or https://, or nothing."))
    description: str = attrs.field(default="", validator=_form_text(
        0, 5000, what="description", multiline=True))

    def patch(self) -> BuilderPatch:
        """Every field set (empty strings clear the optional ones)."""
        return BuilderPatch(name=self.name, rera_promoter_id=self.rera_promoter_id,
                            website=self.website, description=self.description)
