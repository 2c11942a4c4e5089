"""KYC of agents and builders: the state machine, number formats, reveals, export, erasure and
the re-encryption of identity numbers under a new key.

States of one (user, role) record::

    not_started -> submitted -> verified | rejected
    rejected -> resubmitted -> verified | rejected

The applicant (re)submits; a console reviewer decides. Every transition appends to the record's
history (with the reason of a rejection) and publishes ``auth.kyc_status_changed`` (ids and
statuses only: a reason is free text about the person) in the same transaction.
``not_started`` has no row: a record exists from its first submission.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import Any

from propmubi.actors import Actor
from propmubi.db import Database, Tx
from propmubi.errors import Conflict, FieldError, Forbidden, NotFound, ValidationFailed
from propmubi.ids import uuid7
from propmubi_plugins.auth import api, pii
from propmubi_plugins.auth.events import KycStatusChanged
from propmubi_plugins.auth.kyc import store
from propmubi_plugins.auth.kyc.models import (
    KYC_ROLES,
    PUBLIC_NUMBER_KINDS,
    Decision,
    KycNumberOut,
    KycRecordOut,
    KycSubmissionIn,
    KycTransitionOut,
    RevealForm,
    Rotation,
)
from propmubi_plugins.auth.service import check_own, event_actor, stored_ip
from propmubi_plugins.auth.state import Ctx

NOT_STARTED, SUBMITTED, VERIFIED, REJECTED, RESUBMITTED = (
    "not_started", "submitted", "verified", "rejected", "resubmitted")
PENDING = (SUBMITTED, RESUBMITTED)
#: Decisions, counted per day for the dashboard.
DECISIONS = (VERIFIED, REJECTED)
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


def _numbers(role: str, sub: KycSubmissionIn) -> dict[str, str]:
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


def _reviewer(actor: Actor, what: str) -> uuid.UUID:
    """The staff account id of a console reviewer; Forbidden for anyone else (decisions and
    reveals are recorded against a staff account)."""
    if actor.kind != "staff":
        raise Forbidden(f"only a console reviewer may {what}")
    return uuid.UUID(actor.id)


async def _transition(ctx: Ctx, tx: Tx, actor: Actor, rec: dict[str, Any], old: str, new: str,
                      reason: str | None) -> None:
    by_user = actor.user_id if actor.kind == "user" else None
    by_staff = uuid.UUID(actor.id) if actor.kind == "staff" else None
    await store.add_transition(tx, uuid7(), rec["id"], old, new, reason, by_user, by_staff)
    await ctx.publish(tx, KycStatusChanged(user_id=rec["user_id"], role=rec["role"],
                                           old_status=old, new_status=new),
                      actor=event_actor(actor))


async def submit(ctx: Ctx, actor: Actor, role: str, submission: KycSubmissionIn
                 ) -> KycRecordOut:
    """The applicant (``actor``, a user) submits (from not_started) or resubmits (from
    rejected) the KYC of one of their roles; the record, numbers masked.

    :raises Forbidden: the actor is not a user, or does not hold ``role`` (now, in the
        database).
    :raises ValidationFailed: a number does not fit its kind's format.
    :raises IllegalTransition: the record is pending or verified.
    """
    user_id = actor.user_id
    if user_id is None:
        raise Forbidden("only the applicant may submit their KYC")
    if role not in await api.user_roles(ctx.db, user_id):
        raise Forbidden(f"only users with the {role} role may submit KYC for it")
    numbers = _numbers(role, submission)
    keyring = ctx.state.pii
    async with ctx.db.transaction() as tx:
        rec = await store.lock_record(tx, user_id=user_id, role=role)
        if rec is None:
            record_id = uuid7()
            if await store.insert_record(tx, record_id, user_id, role, SUBMITTED,
                                         submission.legal_name, submission.document_kind):
                old, new = NOT_STARTED, SUBMITTED
                rec = {"id": record_id, "user_id": user_id, "role": role}
            else:  # a concurrent first submission won: this one is now a repeat
                rec = await store.lock_record(tx, user_id=user_id, role=role)
        if rec is not None and "status" in rec:
            old = rec["status"]
            new = RESUBMITTED if old == REJECTED else SUBMITTED
            _check(old, new)
            await store.resubmit(tx, rec["id"], new, submission.legal_name,
                                 submission.document_kind)
        assert rec is not None
        sealed = []
        for kind, number in numbers.items():
            box = keyring.seal(number, pii.associated_data(rec["id"], user_id, kind))
            shown = number if kind in PUBLIC_NUMBER_KINDS else pii.mask(number)
            sealed.append((kind, box.key_id, box.nonce, box.ciphertext, shown))
        await store.replace_numbers(tx, rec["id"], sealed)
        await _transition(ctx, tx, actor, rec, old, new, None)
        stored = await store.record(tx, rec["id"])
        assert stored is not None  # written above, in this transaction
        return _out((await _views(tx, [stored]))[0])


async def decide(ctx: Ctx, actor: Actor, record_id: uuid.UUID, decision: Decision
                 ) -> dict[str, Any]:
    """A reviewer (``actor``, a staff member) verifies or rejects a pending record; the
    record's row with its new status.

    :raises Forbidden: the actor is not a staff member.
    :raises ValidationFailed: a rejection without a reason (field ``reason``).
    :raises NotFound: no such record.
    :raises IllegalTransition: the record is not pending.
    """
    staff_id = _reviewer(actor, "decide on a KYC record")
    reason = (decision.reason or "").strip() or None
    if not decision.verified and reason is None:
        raise ValidationFailed([FieldError("body", "reason", "a rejection needs a reason")])
    new = VERIFIED if decision.verified else REJECTED
    async with ctx.db.transaction() as tx:
        rec = await store.lock_record(tx, record_id=record_id)
        if rec is None:
            raise NotFound(f"no KYC record {record_id}")
        _check(rec["status"], new)
        await store.decide(tx, record_id, new, None if decision.verified else reason, staff_id)
        await _transition(ctx, tx, actor, rec, rec["status"], new, reason)
        return {**rec, "status": new}


async def reveal(ctx: Ctx, actor: Actor, record_id: uuid.UUID, form: RevealForm, *,
                 ip: str | None) -> uuid.UUID:
    """Audit a staff member's reveal of one number; the reveal's id (its page shows it).

    :param ip: where the staff member asked from, kept in the audit (NULL when it is not
        an IP).
    :raises Forbidden: the actor is not a staff member.
    :raises ValidationFailed: no reason (field ``reason``).
    :raises NotFound: the record has no number of that kind.
    """
    staff_id = _reviewer(actor, "reveal an identity number")
    reason = form.reason.strip()
    if not reason:
        raise ValidationFailed([FieldError("body", "reason", "say why you need the number")])
    async with ctx.db.transaction() as tx:
        row = await store.sealed_number(tx, record_id, form.kind)
        if row is None:
            raise NotFound(f"KYC record {record_id} has no {form.kind} number")
        reveal_id = uuid7()
        await store.add_reveal(tx, reveal_id, record_id, row["user_id"], form.kind, staff_id,
                               reason[:500], stored_ip(ip))
    return reveal_id


async def revealed(ctx: Ctx, actor: Actor, reveal_id: uuid.UUID) -> tuple[dict[str, Any], str]:
    """A recent reveal of this staff member and the full number it was made for.

    :raises NotFound: unknown, someone else's, or older than :data:`REVEAL_TTL`.
    """
    staff_id = _reviewer(actor, "see a revealed number")
    audit = await store.reveal(ctx.db, reveal_id, staff_id, REVEAL_TTL)
    row = audit and await store.sealed_number(ctx.db, audit["record_id"], audit["kind"])
    if audit is None or row is None:
        raise NotFound("this reveal has expired or is not yours; reveal the number again")
    number = ctx.state.pii.open(
        pii.Sealed(row["key_id"], bytes(row["nonce"]), bytes(row["ciphertext"])),
        pii.associated_data(row["record_id"], row["user_id"], row["kind"]))
    return audit, number


async def _views(q: Database | Tx, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Records with their masked numbers and history, as JSON-ready dicts."""
    ids = [r["id"] for r in records]
    numbers: dict[uuid.UUID, list[dict[str, str]]] = {i: [] for i in ids}
    for n in await store.numbers_of(q, ids):
        numbers[n["record_id"]].append({"kind": n["kind"], "masked": n["masked"]})
    history: dict[uuid.UUID, list[dict[str, Any]]] = {i: [] for i in ids}
    for t in await store.history(q, ids):
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


def _out(view: dict[str, Any]) -> KycRecordOut:
    def when(text: str | None) -> dt.datetime | None:
        return dt.datetime.fromisoformat(text) if text else None

    return KycRecordOut(
        role=view["role"], status=view["status"],
        id=uuid.UUID(view["id"]) if view["id"] else None, legal_name=view["legal_name"],
        document_kind=view["document_kind"],
        numbers=[KycNumberOut(**n) for n in view["numbers"]], reason=view["reason"],
        submitted_at=when(view["submitted_at"]), decided_at=when(view["decided_at"]),
        history=[KycTransitionOut(old_status=h["old_status"], new_status=h["new_status"],
                                  reason=h["reason"], at=dt.datetime.fromisoformat(h["at"]),
                                  by=h["by"])
                 for h in view["history"]])


async def records(ctx: Ctx, actor: Actor, user_id: uuid.UUID) -> list[KycRecordOut]:
    """A user's KYC records, masked: one per KYC role held (``not_started`` when never
    submitted), plus any record of a role no longer held."""
    check_own(actor, user_id)
    roles = [r for r in await api.user_roles(ctx.db, user_id) if r in KYC_ROLES]
    views = {v["role"]: v for v in await _views(ctx.db, await store.records_of(ctx.db, user_id))}
    for role in roles:
        views.setdefault(role, {"id": None, "role": role, "status": NOT_STARTED,
                                "legal_name": None, "document_kind": None, "numbers": [],
                                "reason": None, "submitted_at": None, "decided_at": None,
                                "history": []})
    return [_out(views[role]) for role in sorted(views)]


async def detail(ctx: Ctx, actor: Actor, record_id: uuid.UUID) -> dict[str, Any]:
    """One record for the console: masked numbers, history, the reveal audit, whether it is
    pending.

    :raises Forbidden: the actor does not act for the platform.
    :raises NotFound: no such record.
    """
    if not actor.is_staff:
        raise Forbidden("only staff may review KYC records")
    rec = await store.record(ctx.db, record_id)
    if rec is None:
        raise NotFound(f"no KYC record {record_id}")
    view = (await _views(ctx.db, [rec]))[0]
    view["user_id"] = str(rec["user_id"])
    view["reveals"] = await store.reveals_of(ctx.db, record_id)
    view["pending"] = rec["status"] in PENDING
    return view


async def export_user_in(ctx: Ctx, q: Database | Tx, actor: Actor, user_id: uuid.UUID
                         ) -> list[dict[str, Any]]:
    """The user's KYC records for a data export, read in ``q`` (the caller's transaction, or
    the pool): status, legal name, masked numbers, history (JSON-serialisable; full numbers
    never leave through an export)."""
    check_own(actor, user_id)
    return await _views(q, await store.records_of(q, user_id))


async def export_user(ctx: Ctx, actor: Actor, user_id: uuid.UUID) -> list[dict[str, Any]]:
    """:func:`export_user_in`, read from the pool."""
    return await export_user_in(ctx, ctx.db, actor, user_id)


async def erase_user_in(ctx: Ctx, tx: Tx, actor: Actor, user_id: uuid.UUID) -> None:
    """Erase the user's KYC personal data in ``tx``: ciphertexts, legal names and reasons go;
    statuses and dates of the history stay (anonymised), and the reveal audit keeps its facts
    (it never held a number)."""
    check_own(actor, user_id)
    await store.erase(tx, user_id)


async def rotate_keys(ctx: Ctx, actor: Actor, batch: int) -> Rotation:
    """Re-encrypt every number not under the current PII key, ``batch`` numbers per
    transaction (an operator's task: the system only). Numbers that cannot be opened are
    listed and left as they are.

    :raises Forbidden: the actor is not the system.
    """
    if actor.kind != "system":
        raise Forbidden("only an operator may re-encrypt identity numbers")
    keyring = ctx.state.pii
    done = batches = 0
    failures: list[str] = []
    after = (uuid.UUID(int=0), "")
    while True:
        async with ctx.db.transaction() as tx:
            rows = await store.numbers_to_rotate(tx, keyring.current_id, after, batch)
            if not rows:
                break
            for row in rows:
                aad = pii.associated_data(row["record_id"], row["user_id"], row["kind"])
                try:
                    number = keyring.open(pii.Sealed(row["key_id"], bytes(row["nonce"]),
                                                     bytes(row["ciphertext"])), aad)
                except (pii.PiiKeyError, pii.PiiDecryptError) as exc:
                    failures.append(f"record {row['record_id']} {row['kind']}: {exc}")
                    continue
                box = keyring.seal(number, aad)
                await store.reseal(tx, row["record_id"], row["kind"], box.key_id, box.nonce,
                                   box.ciphertext)
                done += 1
            # Keyset, not OFFSET: rows that failed stay behind the cursor instead of looping.
            after = (rows[-1]["record_id"], rows[-1]["kind"])
        batches += 1
    return Rotation(reencrypted=done, batches=batches, failures=failures)
