"""The vocabularies of agents and the attrs classes of the API and the console: validated
inputs (a profile, a RERA registration, territories, a holiday, a listing request, staff
decisions, list queries, path ids) and the answers.

Every input checks its fields where it enters (a route's body or query, a console form read
with ``read_form``), so the service never sees a bad value; the messages are written for the
person who typed the value, and every bad field is reported at once. Text is trimmed; RERA
numbers and state codes are upper-cased, and spaces in a number are dropped.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Callable
from typing import Any

import attrs
import phonenumbers
from attrs import validators as v

from propmubi.validation import CONTROL_FREE_PATTERN, SPACE_CLASS, json_schema

# --------------------------------------------------------------------------------------------
# Vocabularies
# --------------------------------------------------------------------------------------------

#: Every status an agent may take; only ``active`` agents receive leads and list projects.
STATUSES = ("pending", "active", "suspended", "lapsed")
#: Why an agent stopped being active (``agents.agent_suspended``'s ``reason``).
SUSPEND_REASONS = ("kyc", "registration_lapsed", "staff")
#: A registration's statuses.
REGISTRATION_STATUSES = ("submitted", "verified", "rejected", "superseded")
#: A listing's statuses.
LISTING_STATUSES = ("requested", "accepted", "rejected")

#: Indian states and union territories, by the code a registration carries.
STATES: dict[str, str] = {
    "AN": "Andaman and Nicobar Islands", "AP": "Andhra Pradesh", "AR": "Arunachal Pradesh",
    "AS": "Assam", "BR": "Bihar", "CH": "Chandigarh", "CG": "Chhattisgarh",
    "DH": "Dadra and Nagar Haveli and Daman and Diu", "DL": "Delhi", "GA": "Goa",
    "GJ": "Gujarat", "HR": "Haryana", "HP": "Himachal Pradesh", "JK": "Jammu and Kashmir",
    "JH": "Jharkhand", "KA": "Karnataka", "KL": "Kerala", "LA": "Ladakh", "LD": "Lakshadweep",
    "MP": "Madhya Pradesh", "MH": "Maharashtra", "MN": "Manipur", "ML": "Meghalaya",
    "MZ": "Mizoram", "NL": "Nagaland", "OD": "Odisha", "PY": "Puducherry", "PB": "Punjab",
    "RJ": "Rajasthan", "SK": "Sikkim", "TN": "Tamil Nadu", "TS": "Telangana", "TR": "Tripura",
    "UP": "Uttar Pradesh", "UK": "Uttarakhand", "WB": "West Bengal",
}

#: Any registration number: letters, digits and ``/ - . ( )``, 5 to 60 characters.
_NUMBER_ANY = re.compile(r"[A-Z0-9][A-Z0-9/\-.()]{4,59}")
#: The states whose agent numbers have a known shape (others accept :data:`_NUMBER_ANY`).
_NUMBER_BY_STATE: dict[str, tuple[re.Pattern[str], str]] = {
    "MH": (re.compile(r"A\d{11}"), "A MahaRERA agent number is A and 11 digits (A51800012345)."),
    "KA": (re.compile(r"PRM/KA/RERA/[A-Z0-9/]+"),
           "A Karnataka RERA agent number starts with PRM/KA/RERA/."),
    "UP": (re.compile(r"UPRERAAGT\d{3,8}"),
           "A UP RERA agent number is UPRERAAGT and digits (UPRERAAGT10234)."),
}
#: The longest a registration may run, and its usual length.
REGISTRATION_MAX_YEARS = 10

TEXT_MAX = 120
NOTE_MAX = 500
LANGUAGES_MAX = 12
TERRITORIES_MAX = 50
HOLIDAY_MAX_DAYS = 366
CAPACITY_MAX = 1000

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_SPACES = re.compile(r"\s+")
_PHONE = re.compile(r"\+?[0-9]{10,15}")
_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]+\.[^@\s]+")
#: _EMAIL for the OpenAPI document, around the spaces the converter trims.
_EMAIL_PATTERN = (f"^[{SPACE_CLASS}]*[^@{SPACE_CLASS}]{{1,64}}@[^@{SPACE_CLASS}]+"
                  f"\\.[^@{SPACE_CLASS}]+[{SPACE_CLASS}]*$")


def fold(text: str) -> str:
    """The matching form of a place name: trimmed, inner spaces collapsed, case-folded."""
    return _SPACES.sub(" ", text.strip()).casefold()


def _strip(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


def _strip_optional(value: Any) -> Any:
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return value


def _compact_upper(value: Any) -> Any:
    return _SPACES.sub("", value).upper() if isinstance(value, str) else value


def _lower(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


def _lower_optional(value: Any) -> Any:
    value = _lower(value)
    return value or None


def _upper(value: Any) -> Any:
    return value.strip().upper() if isinstance(value, str) else value


def _text(what: str, maximum: int = TEXT_MAX, *, required: bool = True
          ) -> Callable[[Any, Any, Any], None]:
    """Trimmed text: not blank (when required), at most ``maximum`` characters, no control
    characters."""

    # Given trimmed (the fields' converters strip), so "not blank" is "not empty".
    @json_schema(**({"x-not-blank": True} if required else {}), maxLength=maximum,
                 pattern=CONTROL_FREE_PATTERN)
    def check(instance: Any, attribute: Any, value: str | None) -> None:
        if value is None or value == "":
            if required:
                raise ValueError(f"Give the {what}.")
            return
        if len(value) > maximum:
            raise ValueError(f"At most {maximum} characters (got {len(value)}).")
        if _CONTROL.search(value):
            raise ValueError("Must not contain control characters.")

    return check


@json_schema(maxLength=20)
def _phone(instance: Any, attribute: Any, value: Any) -> None:  # str, or None when optional
    if value is None:
        return
    if not _PHONE.fullmatch(value.replace(" ", "").replace("-", "")):
        raise ValueError("Give a phone number of 10 to 15 digits, optionally with + first.")


@json_schema(maxLength=200, pattern=_EMAIL_PATTERN)
def _email(instance: Any, attribute: Any, value: Any) -> None:  # str, or None when optional
    if value is None:
        return
    if len(value) > 200 or not _EMAIL.fullmatch(value):
        raise ValueError("Give an e-mail address such as name@example.com.")


@json_schema(maxItems=LANGUAGES_MAX, items={"x-not-blank": True, "maxLength": 40,
                                              "pattern": CONTROL_FREE_PATTERN})
def _languages(instance: Any, attribute: Any, value: list[str] | None) -> None:
    if value is None:
        return
    if len(value) > LANGUAGES_MAX:
        raise ValueError(f"At most {LANGUAGES_MAX} languages.")
    for language in value:
        if not language.strip() or len(language) > 40 or _CONTROL.search(language):
            raise ValueError("Each language is a name of 1 to 40 characters (Marathi).")


def _clean_languages(value: Any) -> Any:
    """Trimmed, without repeats (case-insensitively), in the order given."""
    if not isinstance(value, list):
        return value
    seen: set[str] = set()
    out = []
    for item in value:
        if not isinstance(item, str):
            return value
        text = _SPACES.sub(" ", item.strip())
        if text.casefold() not in seen:
            seen.add(text.casefold())
            out.append(text)
    return out


@json_schema(enum=sorted(STATES))
def _state(instance: Any, attribute: Any, value: str) -> None:
    if value not in STATES:
        raise ValueError("Choose an Indian state or union territory code (MH, KA, ...).")


@json_schema(minLength=5, maxLength=60)
def _number(instance: Any, attribute: Any, value: str) -> None:
    if not value:
        raise ValueError("Give the RERA agent registration number.")
    if not _NUMBER_ANY.fullmatch(value):
        raise ValueError("Use 5 to 60 letters, digits and / - . ( ) (no spaces).")
    known = _NUMBER_BY_STATE.get(getattr(instance, "state", ""))
    if known is not None and not known[0].fullmatch(value):
        raise ValueError(known[1])


def _valid_until(instance: Any, attribute: Any, value: dt.date) -> None:
    start = getattr(instance, "valid_from", None)
    if not isinstance(start, dt.date):
        return
    if value <= start:
        raise ValueError("The registration must end after it starts.")
    try:
        limit = start.replace(year=start.year + REGISTRATION_MAX_YEARS)
    except ValueError:  # 29 February
        limit = start.replace(year=start.year + REGISTRATION_MAX_YEARS, day=28)
    if value > limit:
        raise ValueError(f"A registration runs at most {REGISTRATION_MAX_YEARS} years "
                         "(usually five).")


@json_schema(minimum=0, maximum=CAPACITY_MAX)
def _capacity(instance: Any, attribute: Any, value: int | None) -> None:
    if value is not None and not 0 <= value <= CAPACITY_MAX:
        raise ValueError(f"Give a number of open leads from 0 (none) to {CAPACITY_MAX}.")


@json_schema(maxItems=TERRITORIES_MAX)
def _territories(instance: Any, attribute: Any, value: list[Any] | None) -> None:
    if value is not None and len(value) > TERRITORIES_MAX:
        raise ValueError(f"At most {TERRITORIES_MAX} territories.")


def _ends_on(instance: Any, attribute: Any, value: dt.date) -> None:
    start = getattr(instance, "starts_on", None)
    if not isinstance(start, dt.date):
        return
    if value < start:
        raise ValueError("A holiday ends on or after the day it starts.")
    if (value - start).days >= HOLIDAY_MAX_DAYS:
        raise ValueError(f"A holiday lasts at most {HOLIDAY_MAX_DAYS} days.")


# --------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class RegistrationIn:
    """A RERA agent registration: its number in a state's register and its validity (both
    days included). The number is upper-cased with spaces dropped; some states' numbers have
    a known shape (Maharashtra ``A51800012345``); others take letters, digits and ``/-.()``."""

    state: str = attrs.field(converter=_upper, validator=_state, metadata={
        "description": "The state or union territory code (MH, KA, DL, ...)."})
    number: str = attrs.field(converter=_compact_upper, validator=_number)
    valid_from: dt.date = attrs.field()
    valid_until: dt.date = attrs.field(validator=_valid_until, metadata={
        "description": "The last day it is valid: after valid_from, at most 10 years on."})


@attrs.frozen(kw_only=True)
class TerritoryIn:
    """Where an agent works: a city, and optionally one locality of it (none: the whole
    city). Shown as typed; matched trimmed and case-folded."""

    city: str = attrs.field(converter=_strip, validator=_text("city", 80))
    locality: str | None = attrs.field(default=None, converter=_strip_optional,
                                       validator=_text("locality", 80, required=False))


@attrs.frozen(kw_only=True)
class AgentIn:
    """``POST /agents/me``: a new agent profile with its first registration."""

    display_name: str = attrs.field(converter=_strip, validator=_text("name you work under"))
    phone: str = attrs.field(converter=_strip, validator=_phone)
    email: str = attrs.field(converter=_lower, validator=_email)
    registration: RegistrationIn
    languages: list[str] = attrs.field(factory=list, converter=_clean_languages,
                                       validator=_languages)


@attrs.frozen(kw_only=True)
class StaffAgentIn:
    """``POST /agents`` (staff): a profile made for a user who holds the agent role."""

    user_id: uuid.UUID
    display_name: str = attrs.field(converter=_strip,
                                    validator=_text("name they work under"))
    phone: str = attrs.field(converter=_strip, validator=_phone)
    email: str = attrs.field(converter=_lower, validator=_email)
    registration: RegistrationIn
    languages: list[str] = attrs.field(factory=list, converter=_clean_languages,
                                       validator=_languages)

    def profile(self) -> AgentIn:
        """The profile part."""
        return AgentIn(display_name=self.display_name, phone=self.phone, email=self.email,
                       registration=self.registration, languages=self.languages)


def e164(phone: str) -> str | None:
    """The E.164 form of a phone number as typed (an Indian number without ``+91``), or None
    when it is not a valid number."""
    try:
        number = phonenumbers.parse(phone, "IN")
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _sign_in_phone(instance: Any, attribute: Any, value: str) -> None:
    if not value:
        raise ValueError("Give the phone number the user signs in with.")
    if e164(value) is None:
        raise ValueError("Give a valid phone number (98123 45678 or +91 98123 45678).")


def _languages_text(instance: Any, attribute: Any, value: str) -> None:
    _languages(instance, attribute, _clean_languages(language_list(value)))


def language_list(text: str) -> list[str]:
    """The languages of a comma-separated text (``Marathi, English``)."""
    return [item for item in text.split(",") if item.strip()]


@attrs.frozen(kw_only=True)
class NewAgentForm:
    """The console's "New agent" form: :class:`StaffAgentIn` with the registration's fields
    inline, the user named by the phone number they sign in with, the contact phone that one
    when left empty, and the languages comma-separated."""

    user_phone: str = attrs.field(converter=_strip, validator=_sign_in_phone)
    display_name: str = attrs.field(converter=_strip, validator=_text("name they work under"))
    phone: str | None = attrs.field(default=None, converter=_strip_optional, validator=_phone)
    email: str = attrs.field(converter=_lower, validator=_email)
    languages: str = attrs.field(default="", validator=_languages_text)
    state: str = attrs.field(converter=_upper, validator=_state)
    number: str = attrs.field(converter=_compact_upper, validator=_number)
    valid_from: dt.date
    valid_until: dt.date = attrs.field(validator=_valid_until)

    def to_input(self, user_id: uuid.UUID) -> StaffAgentIn:
        """As the API's input, for ``user_id`` (the user who signs in with ``user_phone``)."""
        return StaffAgentIn(
            user_id=user_id, display_name=self.display_name,
            phone=self.phone or e164(self.user_phone) or self.user_phone, email=self.email,
            languages=language_list(self.languages),
            registration=RegistrationIn(state=self.state, number=self.number,
                                        valid_from=self.valid_from,
                                        valid_until=self.valid_until))


@attrs.frozen
class AgentUpdate:
    """``PATCH /agents/me`` and ``PATCH /agents/{agent_id}``: what to change (an absent or
    null field stays as it is). ``territories`` replaces the whole list; ``capacity`` is the
    most open leads at once (0: takes no leads)."""

    display_name: str | None = attrs.field(default=None, converter=_strip_optional,
                                           validator=_text("name", required=False))
    phone: str | None = attrs.field(default=None, converter=_strip_optional,
                                    validator=_phone)
    email: str | None = attrs.field(default=None, converter=_lower_optional,
                                    validator=_email)
    languages: list[str] | None = attrs.field(default=None, converter=_clean_languages,
                                              validator=_languages)
    capacity: int | None = attrs.field(default=None, validator=_capacity)
    territories: list[TerritoryIn] | None = attrs.field(default=None, validator=_territories)

    def routing_changed(self) -> bool:
        """Whether the change touches what lead routing reads."""
        return self.capacity is not None or self.territories is not None


@attrs.frozen
class HolidayIn:
    """A holiday: the first and last day (both included) the agent takes no leads."""

    starts_on: dt.date
    ends_on: dt.date = attrs.field(validator=_ends_on)
    note: str = attrs.field(default="", converter=_strip,
                            validator=_text("note", 200, required=False))


@attrs.frozen
class ListingIn:
    """``POST /agents/me/listings``: the catalogue project the agent asks to sell."""

    project_id: uuid.UUID


@attrs.frozen
class ReasonIn:
    """A staff suspension or a rejection: why, in words the agent will read."""

    reason: str = attrs.field(converter=_strip, validator=_text("reason", NOTE_MAX))


@attrs.frozen
class AgentQuery:
    """The staff list: optionally one status; keyset pages (pass ``next_cursor`` back as
    ``cursor``)."""

    status: str | None = attrs.field(default=None, validator=v.optional(v.in_(STATUSES)))
    limit: int | None = attrs.field(default=None, validator=v.optional([v.ge(1), v.le(100)]))
    cursor: str | None = attrs.field(default=None, validator=v.optional(v.max_len(200)))


@attrs.frozen
class ListingQuery:
    """A project's listings: optionally one status; keyset pages."""

    status: str | None = attrs.field(default=None,
                                      validator=v.optional(v.in_(LISTING_STATUSES)))
    limit: int | None = attrs.field(default=None, validator=v.optional([v.ge(1), v.le(100)]))
    cursor: str | None = attrs.field(default=None, validator=v.optional(v.max_len(200)))


@attrs.frozen
class AgentId:
    """The ``{agent_id}`` of a path."""

    agent_id: uuid.UUID


@attrs.frozen
class HolidayId:
    """The ``{holiday_id}`` of a path."""

    holiday_id: uuid.UUID


@attrs.frozen
class ListingId:
    """The ``{listing_id}`` of a path."""

    listing_id: uuid.UUID


@attrs.frozen
class ProjectId:
    """The ``{project_id}`` of a path."""

    project_id: uuid.UUID


# --------------------------------------------------------------------------------------------
# Answers
# --------------------------------------------------------------------------------------------


@attrs.frozen
class RegistrationOut:
    """A registration. ``status``: submitted (waiting for staff), verified (in force),
    rejected (``reason`` says why) or superseded (a newer one was verified)."""

    id: uuid.UUID
    number: str
    state: str
    valid_from: dt.date
    valid_until: dt.date
    status: str
    reason: str | None
    submitted_at: dt.datetime
    decided_at: dt.datetime | None


@attrs.frozen
class TerritoryOut:
    """A territory as typed (``locality`` None: the whole city)."""

    city: str
    locality: str | None


@attrs.frozen
class HolidayOut:
    """A holiday (both days included)."""

    id: uuid.UUID
    starts_on: dt.date
    ends_on: dt.date
    note: str


@attrs.frozen
class ListingOut:
    """A listing: ``status`` requested, accepted or rejected; ``active`` when accepted and
    its agent is active (an agent who stops being active keeps accepted listings, inactive)."""

    id: uuid.UUID
    agent_id: uuid.UUID
    project_id: uuid.UUID
    status: str
    active: bool
    reason: str | None
    requested_at: dt.datetime
    decided_at: dt.datetime | None


@attrs.frozen
class AgentOut:
    """An agent: profile, status (and why), KYC status, the registration in force and one
    waiting for staff, territories, capacity, holidays and listings.

    ``status`` is ``active`` only when the KYC is verified, a verified registration is in
    force (valid_from <= today <= valid_until) and staff have not suspended the agent."""

    id: uuid.UUID
    user_id: uuid.UUID
    display_name: str
    phone: str
    email: str
    languages: list[str]
    status: str
    kyc_status: str
    suspended_note: str | None
    capacity: int
    on_holiday: bool
    registration: RegistrationOut | None
    pending_registration: RegistrationOut | None
    territories: list[TerritoryOut]
    holidays: list[HolidayOut]
    listings: list[ListingOut]
    created_at: dt.datetime
    updated_at: dt.datetime


@attrs.frozen
class AgentSummary:
    """An agent in a list."""

    id: uuid.UUID
    user_id: uuid.UUID
    display_name: str
    status: str
    capacity: int
    created_at: dt.datetime


@attrs.frozen
class AgentPage:
    """A page of agents, newest first; ``next_cursor`` asks for the next one."""

    items: list[AgentSummary]
    next_cursor: str | None


@attrs.frozen
class ListingPage:
    """A page of a project's listings, newest request first."""

    items: list[ListingOut]
    next_cursor: str | None


@attrs.frozen
class RoutingCandidate:
    """An agent lead routing may choose (``api.active_agents_for``): active, capacity above
    0, with an accepted listing of the project and a territory covering the place."""

    agent_id: uuid.UUID
    user_id: uuid.UUID
    display_name: str
    capacity: int
    territories: list[TerritoryOut]
    languages: list[str]
    on_holiday: bool
