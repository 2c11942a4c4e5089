"""The vocabularies of notifications and the attrs classes of its API and console.

Inputs check every field where they enter (a route's body or query, a console form, another
plugin's :class:`NotifyIn`), so the service never sees a bad value, and every bad field is
reported at once with its name. A template's body is checked here in full: its placeholders
(``{#name#}``, see templating.py), the variables it declares, and the DLT rules of SMS.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
import zoneinfo
from typing import Any

import attrs
from attrs import validators as v

from propmubi.validation import json_schema, not_blank
from propmubi_plugins.notifications import templating
from propmubi_plugins.notifications.providers.base import CHANNELS

#: Notification kinds: ``critical`` bypasses quiet hours, windows, caps and opt-outs (OTPs);
#: ``transactional`` bypasses quiet hours and the promotional window and cannot be opted
#: out of; ``promotional`` obeys every rule.
KINDS = ("transactional", "critical", "promotional")
#: Template categories; a user may opt out of the promotional ones only.
CATEGORIES = ("account", "leads", "visits", "bookings", "marketing")
PROMOTIONAL_CATEGORIES = ("marketing",)
#: Delivery statuses (see docs/notifications.md for the state machine).
STATUSES = ("pending", "deferred", "sending", "sent", "failed", "skipped", "unknown")
#: Longest body per channel, and the longest subject (e-mail) / title (push).
BODY_MAX = {"sms": 1000, "email": 20_000, "push": 1000}
SUBJECT_MAX = 200
#: Variables a template may declare; the longest value of one.
VARIABLES_MAX = 10
VALUE_MAX = 500

_TYPE = re.compile(r"^[a-z][a-z0-9_]{1,62}$")
_DLT_ID = re.compile(r"^[0-9]{19}$")
_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}\.[^@\s.]{2,63}$")
_TOKEN = re.compile(r"^[\x21-\x7e]{1,4096}$")
#: A registered device token: FCM's (letters, digits, ``:_-``), an APNs token (hex), in a URL
#: path too, so only URL-safe characters.
_DEVICE_TOKEN = re.compile(r"^[A-Za-z0-9._:~-]{8,4096}$")
#: The platforms of push devices.
PLATFORMS = ("android", "ios", "web")


@json_schema(pattern=_TYPE.pattern)
def _type(instance: Any, attribute: Any, value: str) -> None:
    if not _TYPE.match(value):
        raise ValueError("Use 2-63 lowercase letters, digits and underscores, starting with a "
                         "letter (e.g. lead_assigned).")


def _texts(instance: Any) -> list[tuple[str, str]]:
    """The (field, text) pairs of a template that may hold placeholders."""
    texts = [("body", instance.body)]
    if instance.subject:
        texts.append(("subject", instance.subject))
    return texts


def _used(instance: Any) -> set[str] | None:
    """The names the template's texts use; None when a text is malformed."""
    names: set[str] = set()
    for _, text in _texts(instance):
        try:
            names |= {p.name for p in templating.placeholders(text)}
        except templating.TemplateSyntaxError:
            return None
    return names


def _placeholders_of(instance: Any, field: str, text: str) -> None:
    found = templating.placeholders(text)  # TemplateSyntaxError is a ValueError
    declared = set(instance.variables)
    unknown = [p.name for p in found if p.name not in declared]
    if unknown:
        raise ValueError(f"{{#{unknown[0]}#}} is not declared: add {unknown[0]!r} to the "
                         "variables, or correct the name")
    if field == "body" and instance.channel == "sms":
        problems = templating.dlt_problems(found, text)
        if problems:
            raise ValueError(problems[0])


def _body(instance: Any, attribute: Any, value: str) -> None:
    if not value.strip():
        raise ValueError("Write the message.")
    limit = BODY_MAX.get(instance.channel, min(BODY_MAX.values()))
    if len(value) > limit:
        raise ValueError(f"At most {limit} characters for {instance.channel} "
                         f"(got {len(value)}).")
    _placeholders_of(instance, "body", value)


@json_schema(maxLength=SUBJECT_MAX)
def _subject(instance: Any, attribute: Any, value: str | None) -> None:
    if instance.channel == "sms":
        if value:
            raise ValueError("An SMS has no subject; leave it empty.")
        return
    if not value or not value.strip():
        raise ValueError("An e-mail needs a subject and a push message a title."
                         if instance.channel == "email" else "A push message needs a title.")
    if len(value) > SUBJECT_MAX:
        raise ValueError(f"At most {SUBJECT_MAX} characters (got {len(value)}).")
    _placeholders_of(instance, "subject", value)


@json_schema(maxItems=VARIABLES_MAX, items={"pattern": templating.NAME.pattern})
def _variables(instance: Any, attribute: Any, value: list[str]) -> None:
    if len(value) > VARIABLES_MAX:
        raise ValueError(f"At most {VARIABLES_MAX} variables (got {len(value)}).")
    for name in value:
        if not templating.NAME.match(name):
            raise ValueError(f"{name!r} is not a variable name: a lowercase letter, then "
                             "lowercase letters, digits or underscores (at most 32)")
    if len(set(value)) != len(value):
        raise ValueError("A variable is declared twice.")
    used = _used(instance)
    if used is not None:
        unused = [name for name in value if name not in used]
        if unused:
            raise ValueError(f"{unused[0]!r} is declared but the message never uses "
                             f"{{#{unused[0]}#}}")


@json_schema(pattern=_DLT_ID.pattern)
def _dlt_template_id(instance: Any, attribute: Any, value: str | None) -> None:
    if instance.channel != "sms":
        if value:
            raise ValueError("Only SMS templates carry a DLT template id; leave it empty.")
        return
    if not value:
        raise ValueError("An SMS template needs its DLT template id (19 digits) as "
                         "registered with the operator.")
    if not _DLT_ID.match(value):
        raise ValueError(f"A DLT template id is 19 digits (got {value!r}).")


def _kind(instance: Any, attribute: Any, value: str) -> None:
    if value not in KINDS:
        raise ValueError(f"One of {', '.join(KINDS)}.")
    promotional_category = instance.category in PROMOTIONAL_CATEGORIES
    if value == "promotional" and not promotional_category and instance.category in CATEGORIES:
        raise ValueError(f"Promotional messages belong in {', '.join(PROMOTIONAL_CATEGORIES)}.")
    if value != "promotional" and promotional_category:
        raise ValueError(f"Messages in {instance.category} are promotional: choose "
                         "promotional, or another category.")


@attrs.frozen
class TemplateIn:
    """A template of one notification type on one channel: the POST and PUT body, and the
    console's form. Variables are ``{#name#}`` in the body (and subject); each is declared in
    ``variables``."""

    type: str = attrs.field(validator=_type, metadata={
        "description": "The notification type (lead_assigned): what callers of notify name."})
    channel: str = attrs.field(validator=v.in_(CHANNELS))
    category: str = attrs.field(validator=v.in_(CATEGORIES))
    body: str = attrs.field(validator=[not_blank, _body])
    kind: str = attrs.field(default="transactional",
                            validator=[v.in_(KINDS), _kind])
    subject: str | None = attrs.field(default=None, validator=_subject)
    variables: list[str] = attrs.field(factory=list, validator=_variables)
    dlt_template_id: str | None = attrs.field(default=None, validator=_dlt_template_id)
    active: bool = True


@attrs.frozen
class TemplateOut:
    """A template as the API shows it."""

    id: uuid.UUID
    type: str
    channel: str
    category: str
    kind: str
    subject: str | None
    body: str
    variables: list[str]
    dlt_template_id: str | None
    active: bool
    created_by: str
    created_at: dt.datetime
    updated_by: str
    updated_at: dt.datetime


@attrs.frozen
class TemplatePage:
    """A page of templates, newest first; ``next_cursor`` asks for the next one."""

    items: list[TemplateOut]
    next_cursor: str | None


@attrs.frozen
class TemplateQuery:
    """Filters and keyset pagination of the template list."""

    channel: str | None = attrs.field(default=None, validator=v.optional(v.in_(CHANNELS)))
    type: str | None = attrs.field(default=None, validator=v.optional(_type))
    limit: int | None = attrs.field(default=None, validator=v.optional([v.ge(1), v.le(100)]))
    cursor: str | None = attrs.field(default=None, validator=v.optional(v.max_len(200)))


@attrs.frozen
class TemplateId:
    """The path of one template."""

    template_id: uuid.UUID


# -- sending ----------------------------------------------------------------------------------

@json_schema(pattern=_E164.pattern)
def _phone(instance: Any, attribute: Any, value: str | None) -> None:
    if value is not None and not _E164.match(value):
        raise ValueError("A phone number in E.164 form, e.g. +919812345678.")


def _email(instance: Any, attribute: Any, value: str | None) -> None:
    if value is not None and not _EMAIL.match(value):
        raise ValueError("An e-mail address, e.g. asha@example.com.")


def _push_tokens(instance: Any, attribute: Any, value: list[str]) -> None:
    if len(value) > 10:
        raise ValueError(f"At most 10 device tokens (got {len(value)}).")
    if any(not _TOKEN.match(token) for token in value):
        raise ValueError("A device token is 1-4096 visible ASCII characters.")


def _time_zone(instance: Any, attribute: Any, value: str | None) -> None:
    if value is None:
        return
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"Not an IANA time zone (e.g. Asia/Kolkata): {value!r}.") from None


def _values(instance: Any, attribute: Any, value: dict[str, str]) -> None:
    for name, text in value.items():
        if not templating.NAME.match(name):
            raise ValueError(f"{name!r} is not a variable name.")
        if len(text) > VALUE_MAX:
            raise ValueError(f"The value of {name!r} is longer than {VALUE_MAX} characters.")


def _channels(instance: Any, attribute: Any, value: list[str] | None) -> None:
    if value is None:
        return
    if not value:
        raise ValueError("Name at least one channel, or leave channels out for all.")
    for channel in value:
        if channel not in CHANNELS:
            raise ValueError(f"One of {', '.join(CHANNELS)} (got {channel!r}).")
    if len(set(value)) != len(value):
        raise ValueError("A channel is named twice.")


def _dedupe_key(instance: Any, attribute: Any, value: str | None) -> None:
    if value is not None and not 1 <= len(value) <= 200:
        raise ValueError("A de-duplication key is 1-200 characters.")


@attrs.frozen
class NotifyIn:
    """A notification to send (``api.notify`` / ``api.notify_in``).

    :ivar type: the notification type; its active templates say which channels exist.
    :ivar user_id: the recipient (their preferences, daily cap, unsubscribe links).
    :ivar phone, email, push_tokens: the addresses to use (E.164 phone; tokens newest
        first: a token the provider refuses as unknown gives way to the next). No
        ``push_tokens``: the user's registered devices, the most recently seen first.
    :ivar time_zone: the recipient's IANA zone (quiet hours, daily cap); None for
        ``plugins.notifications.default_time_zone``.
    :ivar variables: a value for every variable the templates declare.
    :ivar dedupe_key: the same key twice makes one notification (``lead:<id>:assigned``).
    :ivar channels: a subset of the type's channels; None for every channel that has an
        active template and an address.
    """

    type: str = attrs.field(validator=_type)
    user_id: uuid.UUID
    phone: str | None = attrs.field(default=None, validator=_phone)
    email: str | None = attrs.field(default=None, validator=_email)
    push_tokens: list[str] = attrs.field(factory=list, validator=_push_tokens)
    time_zone: str | None = attrs.field(default=None, validator=_time_zone)
    variables: dict[str, str] = attrs.field(factory=dict, validator=_values)
    dedupe_key: str | None = attrs.field(default=None, validator=_dedupe_key)
    channels: list[str] | None = attrs.field(default=None, validator=_channels)


@attrs.frozen
class DeliveryOut:
    """One channel of a notification."""

    id: uuid.UUID
    channel: str
    status: str
    attempts: int
    provider: str | None
    reason: str | None
    next_attempt_at: dt.datetime | None
    sent_at: dt.datetime | None


@attrs.frozen
class NotificationOut:
    """A requested notification and its deliveries.

    :ivar duplicate: an earlier request with the same ``dedupe_key`` made it (nothing new
        was stored or published).
    """

    id: uuid.UUID
    type: str
    user_id: uuid.UUID | None
    dedupe_key: str | None
    created_at: dt.datetime
    deliveries: list[DeliveryOut]
    duplicate: bool = False


@attrs.frozen
class SendResult:
    """What ``api.send_now`` did: the message was accepted by ``provider``."""

    notification_id: uuid.UUID
    delivery_id: uuid.UUID
    provider: str
    provider_message_id: str
    attempts: int


# -- preferences --------------------------------------------------------------------------------

@json_schema(enum=list(PROMOTIONAL_CATEGORIES))
def _optional_category(instance: Any, attribute: Any, value: str) -> None:
    """Only promotional categories can be turned off."""
    if value in CATEGORIES and value not in PROMOTIONAL_CATEGORIES:
        raise ValueError(f"{value} messages are transactional: they cannot be turned off "
                         f"(only {', '.join(PROMOTIONAL_CATEGORIES)} can).")
    if value not in PROMOTIONAL_CATEGORIES:
        raise ValueError(f"One of {', '.join(PROMOTIONAL_CATEGORIES)} (got {value!r}).")


@attrs.frozen
class OptOut:
    """One category on one channel the user does not want."""

    category: str = attrs.field(validator=_optional_category)
    channel: str = attrs.field(validator=v.in_(CHANNELS))


@attrs.frozen
class PreferencesIn:
    """The signed-in user's opt-outs, replacing the previous ones (the PUT body)."""

    opted_out: list[OptOut] = attrs.field(factory=list, validator=v.max_len(50))


@attrs.frozen
class PreferenceOut:
    """One category on one channel: whether the user gets it, and whether they may say no."""

    category: str
    channel: str
    enabled: bool
    can_opt_out: bool


@attrs.frozen
class PreferencesOut:
    """Every category on every channel."""

    items: list[PreferenceOut]


@attrs.frozen
class UnsubscribeToken:
    """The path of an unsubscribe link."""

    token: str = attrs.field(validator=v.max_len(300))


# -- push devices -------------------------------------------------------------------------------

@json_schema(pattern=_DEVICE_TOKEN.pattern, minLength=8, maxLength=4096)
def _device_token(instance: Any, attribute: Any, value: str) -> None:
    if not _DEVICE_TOKEN.match(value):
        raise ValueError("A device token is 8-4096 letters, digits and . _ : ~ - (the token "
                         "the app got from FCM or APNs).")


@attrs.frozen
class DeviceIn:
    """A device of the signed-in user that receives push notifications (the PUT body)."""

    token: str = attrs.field(validator=_device_token, metadata={
        "description": "The registration token the app got from FCM (or APNs)."})
    platform: str = attrs.field(validator=v.in_(PLATFORMS))


@attrs.frozen
class DeviceToken:
    """The path of one device."""

    token: str = attrs.field(validator=_device_token)


@attrs.frozen
class DeviceOut:
    """A registered device: ``last_seen_at`` is its last registration or refresh."""

    token: str
    platform: str
    created_at: dt.datetime
    last_seen_at: dt.datetime


@attrs.frozen
class DeviceList:
    """The signed-in user's devices, the most recently seen first."""

    items: list[DeviceOut]


# -- the console's ledger -----------------------------------------------------------------------

@attrs.frozen
class LedgerQuery:
    """Filters of the console's Messages page."""

    status: str | None = attrs.field(default=None, validator=v.optional(v.in_(STATUSES)))
    channel: str | None = attrs.field(default=None, validator=v.optional(v.in_(CHANNELS)))


# -- staff decisions on a delivery whose fate is unknown -------------------------------------

#: What staff may decide about an ``unknown`` delivery once they have checked the provider's
#: own records: it was delivered, it was not and is sent again, or it was not and stays so.
DECISIONS = ("delivered", "resend", "failed")
DECISION_NOTE_MAX = 500


def _decision(instance: Any, attribute: Any, value: str) -> None:
    if value not in DECISIONS:
        raise ValueError("Choose what happened to it.")


def _decision_note(instance: Any, attribute: Any, value: str) -> None:
    if not value.strip():
        raise ValueError("Say what you checked (the provider's log, the recipient).")
    if len(value) > DECISION_NOTE_MAX:
        raise ValueError(f"At most {DECISION_NOTE_MAX} characters (got {len(value)}).")


@attrs.frozen(kw_only=True)
class DecisionIn:
    """Staff's decision about an ``unknown`` delivery (the console's form), and what they
    checked to make it."""

    decision: str = attrs.field(default="", validator=_decision)
    note: str = attrs.field(converter=lambda s: s.strip() if isinstance(s, str) else s,
                            validator=_decision_note)
