"""The attrs classes of the KYC API (``/api/v1/me/kyc``), its service and its console forms."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import attrs
from attrs import validators as v

#: Roles that go through KYC.
KYC_ROLES = ("agent", "builder")
#: Identity documents a submission is made with.
DOCUMENT_KINDS = ("pan", "aadhaar")
#: Every kind of number a record may hold (the identity document's and the registrations).
NUMBER_KINDS = ("pan", "aadhaar", "rera", "licence")
#: Kinds that are public record (RERA registrations are published on each state's RERA
#: register, and buyers look them up): shown in full, never masked or revealed.
PUBLIC_NUMBER_KINDS = ("rera",)

_NUMBER: Any = v.and_(v.min_len(1), v.max_len(64))


def _text(message: str, longest: int) -> Any:
    """A validator for a form's free text: not blank, at most ``longest`` characters."""

    def check(instance: Any, attribute: attrs.Attribute, value: str) -> None:
        if not value.strip():
            raise ValueError(message)
        if len(value) > longest:
            raise ValueError(f"at most {longest} characters")

    return check


def _kind(instance: Any, attribute: attrs.Attribute, value: str) -> None:
    if value not in NUMBER_KINDS:
        raise ValueError("not a kind of number: " + ", ".join(NUMBER_KINDS))


# -------------------------------------------------------------------------------------------------
# The API
# -------------------------------------------------------------------------------------------------


@attrs.frozen
class KycRole:
    """The role a KYC record is for."""

    role: str = attrs.field(validator=v.in_(KYC_ROLES),
                            metadata={"description": "agent or builder"})


@attrs.frozen
class KycSubmissionIn:
    """A (re)submission: the legal name and identity numbers. Numbers are checked against
    their kind's format (PAN ``ABCDE1234F``; Aadhaar 12 digits; RERA and licence numbers:
    letters, digits, ``/`` and ``-``); spaces are ignored and letters upper-cased."""

    legal_name: str = attrs.field(validator=[v.min_len(2), v.max_len(200)])
    document_kind: str = attrs.field(validator=v.in_(DOCUMENT_KINDS), metadata={
        "description": "the identity document: pan or aadhaar"})
    document_number: str = attrs.field(validator=_NUMBER)
    rera_number: str | None = attrs.field(default=None, validator=v.optional(_NUMBER), metadata={
        "description": "RERA registration number (required for builders)"})
    licence_number: str | None = attrs.field(default=None, validator=v.optional(_NUMBER),
                                             metadata={"description": "trade licence number"})


@attrs.frozen
class KycNumberOut:
    """An identity number as shown: masked (all but the last four characters ``X``), except
    the public kinds (RERA registrations), shown in full."""

    kind: str
    masked: str


@attrs.frozen
class KycTransitionOut:
    """One step of a record's history."""

    old_status: str
    new_status: str
    reason: str | None
    at: dt.datetime
    by: str


@attrs.frozen
class KycRecordOut:
    """My KYC for one role. ``status``: not_started, submitted, verified, rejected or
    resubmitted; ``reason`` is the latest rejection's."""

    role: str
    status: str
    id: uuid.UUID | None = None
    legal_name: str | None = None
    document_kind: str | None = None
    numbers: list[KycNumberOut] = attrs.Factory(list)
    reason: str | None = None
    submitted_at: dt.datetime | None = None
    decided_at: dt.datetime | None = None
    history: list[KycTransitionOut] = attrs.Factory(list)


# -------------------------------------------------------------------------------------------------
# The service's other inputs and outputs
# -------------------------------------------------------------------------------------------------


@attrs.frozen
class Decision:
    """A reviewer's decision on a pending record; a rejection needs a ``reason`` (shown to the
    applicant)."""

    verified: bool
    reason: str | None = None


@attrs.frozen
class Rotation:
    """What a re-encryption under the current PII key did.

    :ivar reencrypted: numbers moved to the current key.
    :ivar batches: transactions committed.
    :ivar failures: one line per number that could not be opened, saying why.
    """

    reencrypted: int
    batches: int
    failures: list[str]


# -------------------------------------------------------------------------------------------------
# Console forms
# -------------------------------------------------------------------------------------------------


@attrs.frozen
class RejectForm:
    """The record page's rejection form."""

    reason: str = attrs.field(default="", validator=_text("a rejection needs a reason", 1000))


@attrs.frozen
class RevealForm:
    """A record page's reveal form (one per number): which number, and why it is needed."""

    kind: str = attrs.field(validator=_kind)
    reason: str = attrs.field(default="", validator=_text("say why you need the number", 500))
