"""The KYC JSON API (``/api/v1/me/kyc``): an agent's or builder's own KYC, numbers masked."""

from __future__ import annotations

import datetime as dt
import uuid

import attrs
from aiohttp import web
from attrs import validators as v

from propmubi.web.appkeys import PRINCIPAL, SERVICES
from propmubi.web.routing import Routes
from propmubi_plugins.auth import kyc

routes = Routes(tags=["kyc"])

_NUMBER = [v.min_len(1), v.max_len(64)]


@attrs.frozen
class KycRole:
    """The role a KYC record is for."""

    role: str = attrs.field(validator=v.in_(kyc.KYC_ROLES),
                            metadata={"description": "agent or builder"})


@attrs.frozen
class KycSubmissionIn:
    """A (re)submission: the legal name and identity numbers. Numbers are checked against
    their kind's format (PAN ``ABCDE1234F``; Aadhaar 12 digits; RERA and licence numbers:
    letters, digits, ``/`` and ``-``); spaces are ignored and letters upper-cased."""

    legal_name: str = attrs.field(validator=[v.min_len(2), v.max_len(200)])
    document_kind: str = attrs.field(validator=v.in_(kyc.DOCUMENT_KINDS), metadata={
        "description": "the identity document: pan or aadhaar"})
    document_number: str = attrs.field(validator=_NUMBER)
    rera_number: str | None = attrs.field(default=None, validator=v.optional(_NUMBER), metadata={
        "description": "RERA registration number (required for builders)"})
    licence_number: str | None = attrs.field(default=None, validator=v.optional(_NUMBER),
                                             metadata={"description": "trade licence number"})


@attrs.frozen
class KycNumberOut:
    """An identity number, masked: all but the last four characters are ``X``."""

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


def _out(view: dict) -> KycRecordOut:
    def when(text: str | None) -> dt.datetime | None:
        return dt.datetime.fromisoformat(text) if text else None

    return KycRecordOut(
        role=view["role"], status=view["status"],
        id=uuid.UUID(view["id"]) if view["id"] else None, legal_name=view["legal_name"],
        document_kind=view["document_kind"],
        numbers=[KycNumberOut(**n) for n in view["numbers"]], reason=view["reason"],
        submitted_at=when(view["submitted_at"]), decided_at=when(view["decided_at"]),
        history=[KycTransitionOut(old_status=h["old_status"], new_status=h["new_status"],
                                  reason=h["reason"], at=when(h["at"]), by=h["by"])
                 for h in view["history"]])


@routes.get("/me/kyc", response=list[KycRecordOut], roles=list(kyc.KYC_ROLES))
async def my_kyc(request: web.Request) -> list[KycRecordOut]:
    """My KYC records, one per KYC role I hold; identity numbers are always masked."""
    user_id = uuid.UUID(request[PRINCIPAL].subject)
    return [_out(view) for view in await kyc.records_for(request.app[SERVICES].db, user_id)]


@routes.put("/me/kyc/{role}", params=KycRole, body=KycSubmissionIn, response=KycRecordOut,
            roles=list(kyc.KYC_ROLES), errors=[403, 409], rate_limit="20/hour")
async def submit_kyc(request: web.Request, params: KycRole, body: KycSubmissionIn
                     ) -> KycRecordOut:
    """Submit my KYC for a role, or resubmit it after a rejection.

    Allowed when the record is not started (-> submitted) or rejected (-> resubmitted); a
    pending or verified record answers 409. Only a holder of the role may submit for it (403).
    Numbers are encrypted at rest and answered masked.
    """
    user_id = uuid.UUID(request[PRINCIPAL].subject)
    view = await kyc.submit(request.app[SERVICES], user_id, params.role,
                            kyc.Submission(**attrs.asdict(body)))
    return _out(view)
