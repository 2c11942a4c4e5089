"""KYC of agents and builders: the state machine, number formats, reveals, export and erasure.

States of one (user, role) record::

    not_started -> submitted -> verified | rejected
    rejected -> resubmitted -> verified | rejected

The applicant (re)submits; a console reviewer decides. Every transition appends to the record's
history and publishes ``auth.kyc_status_changed`` in the same transaction. ``not_started`` has
no row: a record exists from its first submission.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import Any

import attrs

from propmubi.context import Services
from propmubi.db import Database, Tx
from propmubi.errors import Conflict, FieldError, Forbidden, NotFound, ValidationFailed
from propmubi.events import publish
from propmubi.ids import uuid7
from propmubi_plugins.auth import api, kyc_store, pii
from propmubi_plugins.auth.events import KycStatusChanged

#: Roles that go through KYC.
KYC_ROLES = ("agent", "builder")
#: Identity documents a submission is made with.
DOCUMENT_KINDS = ("pan", "aadhaar")
NOT_STARTED, SUBMITTED, VERIFIED, REJECTED, RESUBMITTED = (
    "not_started", "submitted", "verified", "rejected", "resubmitted")
PENDING = (SUBMITTED, RESUBMITTED)
#: status -> the statuses it may move to.
TRANSITIONS: dict[str, tuple[str, ...]] = {
    NOT_STARTED: (SUBMITTED,),
    SUBMITTED: (VERIFIED, REJECTED),
    REJECTED: (RESUBMITTED,),
    RESUBMITTED: (VERIFIED, REJECTED),
    VERIFIED: (),
}
#: How long a reveal's page shows the number to the staff member who asked.
REVEAL_TTL = dt.timedelta(minutes=5)

_FORMATS = {
    "pan": (re.compile(r"[A-Z]{5}[0-9]{4}[A-Z]"), "a PAN is 5 letters, 4 digits, 1 letter"),
    # 12 digits; UIDAI never issues numbers starting with 0 or 1.
    "aadhaar": (re.compile(r"[2-9][0-9]{11}"), "an Aadhaar number is 12 digits, not starting "
                                               "with 0 or 1"),
    # Registration formats differ by state (A51800012345, PRM/KA/RERA/1251/446/AG/171231/001234,
    # UPRERAAGT10202): letters, digits, '/' and '-', with at least one digit.
    "rera": (re.compile(r"(?=[A-Z/-]*[0-9])[A-Z0-9][A-Z0-9/-]{4,49}"),
             "a RERA registration number is 5-50 letters, digits, '/' or '-'"),
    "licence": (re.compile(r"(?=[A-Z/-]*[0-9])[A-Z0-9][A-Z0-9/-]{3,39}"),
                "a licence number is 4-40 letters, digits, '/' or '-'"),
}


@attrs.frozen
class Submission:
    """What an applicant submits for a role (already shape-checked at the edge)."""

    legal_name: str
    document_kind: str
    document_number: str
    rera_number: str | None = None
    licence_number: str | None = None


class IllegalTransition(Conflict):
    """The record's status does not allow this step."""

    slug, title = "kyc-illegal-transition", "KYC status does not allow this"


def normalise_number(kind: str, text: str, field: str) -> str:
    """A number in its stored form (upper case, no spaces); 422 naming ``body.<field>``."""
    value = re.sub(r"\s+", "", text).upper()
    pattern, message = _FORMATS[kind]
    if not pattern.fullmatch(value):
        raise ValidationFailed([FieldError("body", field, message)])
    return value


def _numbers(role: str, sub: Submission) -> dict[str, str]:
    """Every number of a submission, validated: ``{kind: number}``."""
    errors: list[FieldError] = []
    wanted = [(sub.document_kind, sub.document_number, "document_number"),
              ("rera", sub.rera_number, "rera_number"),
              ("licence", sub.licence_number, "licence_number")]
    if role == "builder" and not sub.rera_number:
        # A builder sells projects registered with RERA under its own registration.
        errors.append(FieldError("body", "rera_number", "required for builders"))
    numbers = {}
    for kind, text, field in wanted:
        if text is None:
            continue
        try:
            numbers[kind] = normalise_number(kind, text, field)
        except ValidationFailed as exc:
            errors += exc.extra["errors"]
    if errors:
        raise ValidationFailed(errors)
    return numbers


def _check(old: str, new: str) -> None:
    if new not in TRANSITIONS[old]:
        raise IllegalTransition(f"a KYC record that is {old} cannot become {new}",
                                status_now=old)


async def _transition(tx: Tx, rec: dict[str, Any], old: str, new: str, reason: str | None,
                      by_user: uuid.UUID | None, by_staff: uuid.UUID | None) -> None:
    await kyc_store.add_transition(tx, uuid7(), rec["id"], old, new, reason, by_user, by_staff)
    actor = str(by_user) if by_user else f"staff:{by_staff}"
    await publish(tx, KycStatusChanged(user_id=rec["user_id"], role=rec["role"],
                                       old_status=old, new_status=new, reason=reason),
                  actor=actor)


async def submit(services: Services, user_id: uuid.UUID, role: str, sub: Submission
                 ) -> dict[str, Any]:
    """Submit (from not_started) or resubmit (from rejected) a role's KYC; the record, masked.

    :raises Forbidden: the user does not hold ``role`` (now, in the database).
    :raises ValidationFailed: a number does not fit its kind's format.
    :raises IllegalTransition: the record is pending or verified.
    """
    if role not in await api.user_roles(services.db, user_id):
        raise Forbidden(f"only users with the {role} role may submit KYC for it")
    numbers = _numbers(role, sub)
    keyring = pii.keyring(services)
    async with services.db.transaction() as tx:
        rec = await kyc_store.lock_record(tx, user_id=user_id, role=role)
        if rec is None:
            record_id = uuid7()
            if await kyc_store.insert_record(tx, record_id, user_id, role, SUBMITTED,
                                             sub.legal_name, sub.document_kind):
                old, new = NOT_STARTED, SUBMITTED
                rec = {"id": record_id, "user_id": user_id, "role": role}
            else:  # a concurrent first submission won: this one is now a repeat
                rec = await kyc_store.lock_record(tx, user_id=user_id, role=role)
        if rec is not None and "status" in rec:
            old = rec["status"]
            new = RESUBMITTED if old == REJECTED else SUBMITTED
            _check(old, new)
            await kyc_store.resubmit(tx, rec["id"], new, sub.legal_name, sub.document_kind)
        assert rec is not None
        sealed = []
        for kind, number in numbers.items():
            box = keyring.seal(number, pii.associated_data(rec["id"], user_id, kind))
            sealed.append((kind, box.key_id, box.nonce, box.ciphertext, pii.mask(number)))
        await kyc_store.replace_numbers(tx, rec["id"], sealed)
        await _transition(tx, rec, old, new, None, user_id, None)
        return (await _views(tx, [await kyc_store.record(tx, rec["id"])]))[0]


async def decide(services: Services, record_id: uuid.UUID, verified: bool,
                 reason: str | None, staff_id: uuid.UUID) -> dict[str, Any]:
    """A reviewer verifies or rejects a pending record (a rejection needs a reason).

    :raises ValidationFailed: a rejection without a reason (field ``reason``).
    :raises NotFound: no such record.
    :raises IllegalTransition: the record is not pending.
    """
    reason = (reason or "").strip() or None
    if not verified and reason is None:
        raise ValidationFailed([FieldError("body", "reason", "a rejection needs a reason")])
    new = VERIFIED if verified else REJECTED
    async with services.db.transaction() as tx:
        rec = await kyc_store.lock_record(tx, record_id=record_id)
        if rec is None:
            raise NotFound(f"no KYC record {record_id}")
        _check(rec["status"], new)
        await kyc_store.decide(tx, record_id, new, reason if not verified else None, staff_id)
        await _transition(tx, rec, rec["status"], new, reason, None, staff_id)
        return {**rec, "status": new}


async def reveal(services: Services, record_id: uuid.UUID, kind: str, reason: str,
                 staff_id: uuid.UUID, ip: str | None) -> uuid.UUID:
    """Audit a staff member's reveal of one number; the reveal's id (its page shows it).

    :raises ValidationFailed: no reason (field ``reason``).
    :raises NotFound: the record has no number of that kind.
    """
    reason = reason.strip()
    if not reason:
        raise ValidationFailed([FieldError("body", "reason", "say why you need the number")])
    async with services.db.transaction() as tx:
        row = await kyc_store.sealed_number(tx, record_id, kind)
        if row is None:
            raise NotFound(f"KYC record {record_id} has no {kind} number")
        reveal_id = uuid7()
        await kyc_store.add_reveal(tx, reveal_id, record_id, row["user_id"], kind, staff_id,
                                   reason[:500], ip)
    return reveal_id


async def revealed(services: Services, reveal_id: uuid.UUID, staff_id: uuid.UUID
                   ) -> tuple[dict[str, Any], str]:
    """A recent reveal of this staff member and the full number it was made for.

    :raises NotFound: unknown, someone else's, or older than :data:`REVEAL_TTL`.
    """
    audit = await kyc_store.reveal(services.db, reveal_id, staff_id, REVEAL_TTL)
    row = audit and await kyc_store.sealed_number(services.db, audit["record_id"],
                                                  audit["kind"])
    if audit is None or row is None:
        raise NotFound("this reveal has expired or is not yours; reveal the number again")
    number = pii.keyring(services).open(
        pii.Sealed(row["key_id"], bytes(row["nonce"]), bytes(row["ciphertext"])),
        pii.associated_data(row["record_id"], row["user_id"], row["kind"]))
    return audit, number


async def _views(q: Database | Tx, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Records with their masked numbers and history, as JSON-ready dicts."""
    ids = [r["id"] for r in records]
    numbers: dict[uuid.UUID, list[dict[str, str]]] = {i: [] for i in ids}
    for n in await kyc_store.numbers_of(q, ids):
        numbers[n["record_id"]].append({"kind": n["kind"], "masked": n["masked"]})
    history: dict[uuid.UUID, list[dict[str, Any]]] = {i: [] for i in ids}
    for t in await kyc_store.history(q, ids):
        history[t["record_id"]].append({
            "old_status": t["old_status"], "new_status": t["new_status"],
            "reason": t["reason"], "at": t["at"].isoformat(),
            "by": "applicant" if t["by_user"] else "reviewer",
            "reviewer": t["staff_name"]})
    return [{"id": str(r["id"]), "role": r["role"], "status": r["status"],
             "legal_name": r["legal_name"], "document_kind": r["document_kind"],
             "numbers": numbers[r["id"]], "reason": r["reason"],
             "submitted_at": _iso(r["submitted_at"]), "decided_at": _iso(r["decided_at"]),
             "history": history[r["id"]]} for r in records]


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


async def records_for(db: Database, user_id: uuid.UUID) -> list[dict[str, Any]]:
    """My KYC records, masked: one per KYC role I hold (``not_started`` when never
    submitted), plus any record of a role I no longer hold."""
    roles = [r for r in await api.user_roles(db, user_id) if r in KYC_ROLES]
    views = {v["role"]: v for v in await _views(db, await kyc_store.records_of(db, user_id))}
    for role in roles:
        views.setdefault(role, {"id": None, "role": role, "status": NOT_STARTED,
                                "legal_name": None, "document_kind": None, "numbers": [],
                                "reason": None, "submitted_at": None, "decided_at": None,
                                "history": []})
    return [views[role] for role in sorted(views)]


async def detail(db: Database, record_id: uuid.UUID) -> dict[str, Any]:
    """One record for the console: masked numbers, history, the reveal audit, the phone."""
    rec = await kyc_store.record(db, record_id)
    if rec is None:
        raise NotFound(f"no KYC record {record_id}")
    view = (await _views(db, [rec]))[0]
    view["user_id"] = str(rec["user_id"])
    view["reveals"] = await kyc_store.reveals_of(db, record_id)
    view["pending"] = rec["status"] in PENDING
    return view


async def export_user(tx_or_db: Database | Tx, user_id: uuid.UUID) -> list[dict[str, Any]]:
    """The user's KYC records for a data export: status, legal name, masked numbers, history
    (JSON-serialisable; full numbers never leave through an export)."""
    return await _views(tx_or_db, await kyc_store.records_of(tx_or_db, user_id))


async def erase_user(tx: Tx, user_id: uuid.UUID) -> None:
    """Erase the user's KYC personal data in ``tx``: ciphertexts, legal names and reasons go;
    statuses and dates of the history stay (anonymised), and the reveal audit keeps its facts
    (it never held a number)."""
    await kyc_store.erase(tx, user_id)


async def count_decision(tx: Tx, occurred_at: dt.datetime, new_status: str) -> None:
    """Count a verification or rejection on its (UTC) day; other transitions are not
    decisions."""
    if new_status in (VERIFIED, REJECTED):
        await kyc_store.count_decision(tx, occurred_at.astimezone(dt.UTC).date(), new_status)


async def on_status_changed(tx: Tx, delivery: Any) -> None:
    """The ``auth.kyc_status_changed`` consumer: feeds the "KYC decisions today" card. The
    core records the event as handled in ``tx``, so a redelivery counts nothing twice."""
    await count_decision(tx, delivery.envelope.occurred_at, delivery.event.new_status)
