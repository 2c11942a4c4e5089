"""SQL for the auth_kyc_* tables. Every statement is parameterised."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from propmubi.db import Database, Tx

_RECORD_COLUMNS = ("id, user_id, role, status, legal_name, document_kind, reason, submitted_at, "
                   "decided_at, decided_by, created_at, updated_at, erased_at")


async def records_of(q: Database | Tx, user_id: uuid.UUID) -> list[dict[str, Any]]:
    """A user's KYC records, by role."""
    return await q.fetch(f"SELECT {_RECORD_COLUMNS} FROM auth_kyc_records WHERE user_id = %s "
                         "ORDER BY role", (user_id,))


async def record(q: Database | Tx, record_id: uuid.UUID) -> dict[str, Any] | None:
    """One record by id."""
    return await q.fetchrow(f"SELECT {_RECORD_COLUMNS} FROM auth_kyc_records WHERE id = %s",
                            (record_id,))


async def lock_record(tx: Tx, *, record_id: uuid.UUID | None = None,
                      user_id: uuid.UUID | None = None, role: str | None = None
                      ) -> dict[str, Any] | None:
    """A record (by id, or by user and role), row-locked until the transaction ends: two
    concurrent transitions of one record run one after the other, the second seeing the
    first's status."""
    if record_id is not None:
        return await tx.fetchrow(f"SELECT {_RECORD_COLUMNS} FROM auth_kyc_records "
                                 "WHERE id = %s FOR UPDATE", (record_id,))
    return await tx.fetchrow(f"SELECT {_RECORD_COLUMNS} FROM auth_kyc_records "
                             "WHERE user_id = %s AND role = %s FOR UPDATE", (user_id, role))


async def insert_record(tx: Tx, record_id: uuid.UUID, user_id: uuid.UUID, role: str,
                        status: str, legal_name: str, document_kind: str) -> bool:
    """Create a user's first record for a role; False when a concurrent request did first."""
    created = await tx.fetchval(
        "INSERT INTO auth_kyc_records (id, user_id, role, status, legal_name, document_kind, "
        "submitted_at) VALUES (%s, %s, %s, %s, %s, %s, now()) "
        "ON CONFLICT (user_id, role) DO NOTHING RETURNING id",
        (record_id, user_id, role, status, legal_name, document_kind))
    return created is not None


async def resubmit(tx: Tx, record_id: uuid.UUID, status: str, legal_name: str,
                   document_kind: str) -> None:
    """Replace a record's submission (its numbers are replaced separately)."""
    await tx.execute(
        "UPDATE auth_kyc_records SET status = %s, legal_name = %s, document_kind = %s, "
        "submitted_at = now(), updated_at = now() WHERE id = %s",
        (status, legal_name, document_kind, record_id))


async def decide(tx: Tx, record_id: uuid.UUID, status: str, reason: str | None,
                 staff_id: uuid.UUID) -> None:
    """Record a reviewer's decision."""
    await tx.execute(
        "UPDATE auth_kyc_records SET status = %s, reason = %s, decided_at = now(), "
        "decided_by = %s, updated_at = now() WHERE id = %s",
        (status, reason, staff_id, record_id))


async def replace_numbers(tx: Tx, record_id: uuid.UUID,
                          numbers: list[tuple[str, str, bytes, bytes, str]]) -> None:
    """Replace a record's numbers with ``(kind, key_id, nonce, ciphertext, masked)`` rows."""
    await tx.execute("DELETE FROM auth_kyc_numbers WHERE record_id = %s", (record_id,))
    for kind, key_id, nonce, ciphertext, masked in numbers:
        await tx.execute(
            "INSERT INTO auth_kyc_numbers (record_id, kind, key_id, nonce, ciphertext, masked) "
            "VALUES (%s, %s, %s, %s, %s, %s)", (record_id, kind, key_id, nonce, ciphertext,
                                                masked))


async def numbers_of(q: Database | Tx, record_ids: list[uuid.UUID]) -> list[dict[str, Any]]:
    """The masked numbers of some records (no ciphertext)."""
    if not record_ids:
        return []
    return await q.fetch(
        "SELECT record_id, kind, masked FROM auth_kyc_numbers WHERE record_id = ANY(%s::uuid[]) "
        "ORDER BY record_id, kind", (record_ids,))


async def sealed_number(q: Database | Tx, record_id: uuid.UUID, kind: str
                        ) -> dict[str, Any] | None:
    """One number's ciphertext row."""
    return await q.fetchrow(
        "SELECT n.record_id, n.kind, n.key_id, n.nonce, n.ciphertext, r.user_id "
        "FROM auth_kyc_numbers n JOIN auth_kyc_records r ON r.id = n.record_id "
        "WHERE n.record_id = %s AND n.kind = %s", (record_id, kind))


async def add_transition(tx: Tx, transition_id: uuid.UUID, record_id: uuid.UUID, old: str,
                         new: str, reason: str | None, by_user: uuid.UUID | None,
                         by_staff: uuid.UUID | None) -> None:
    """Append to a record's history."""
    await tx.execute(
        "INSERT INTO auth_kyc_transitions (id, record_id, old_status, new_status, reason, "
        "by_user, by_staff) VALUES (%s, %s, %s, %s, %s, %s, %s)",
        (transition_id, record_id, old, new, reason, by_user, by_staff))


async def history(q: Database | Tx, record_ids: list[uuid.UUID]) -> list[dict[str, Any]]:
    """The transitions of some records, oldest first, with the reviewer's name."""
    if not record_ids:
        return []
    return await q.fetch(
        "SELECT t.record_id, t.old_status, t.new_status, t.reason, t.by_user, t.by_staff, "
        "t.at, s.name AS staff_name FROM auth_kyc_transitions t "
        "LEFT JOIN core_staff s ON s.id = t.by_staff "
        "WHERE t.record_id = ANY(%s::uuid[]) ORDER BY t.record_id, t.id", (record_ids,))


# Keyset on (submitted_at, id), served by auth_kyc_records_queue_idx.
QUEUE = """
SELECT r.id, r.user_id, r.role, r.status, r.legal_name, r.submitted_at, u.phone
FROM auth_kyc_records r JOIN auth_users u ON u.id = r.user_id
WHERE r.status IN ('submitted', 'resubmitted')
  AND (r.submitted_at, r.id) > (%(after_at)s, %(after_id)s)
ORDER BY r.submitted_at, r.id
LIMIT %(limit)s
"""

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


async def queue(q: Database | Tx, after: tuple[dt.datetime, uuid.UUID] | None, limit: int
                ) -> list[dict[str, Any]]:
    """Pending records, oldest submission first, after a ``(submitted_at, id)`` cursor."""
    after_at, after_id = after or (_EPOCH, uuid.UUID(int=0))
    return await q.fetch(QUEUE, {"after_at": after_at, "after_id": after_id, "limit": limit})


async def pending_count(q: Database | Tx) -> int:
    """How many records wait for a decision."""
    return await q.fetchval("SELECT count(*) FROM auth_kyc_records "
                            "WHERE status IN ('submitted', 'resubmitted')")


async def add_reveal(tx: Tx, reveal_id: uuid.UUID, record_id: uuid.UUID, user_id: uuid.UUID,
                     kind: str, staff_id: uuid.UUID, reason: str, ip: str | None) -> None:
    """Audit one reveal of a number."""
    await tx.execute(
        "INSERT INTO auth_kyc_reveals (id, record_id, user_id, kind, staff_id, reason, ip) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s)",
        (reveal_id, record_id, user_id, kind, staff_id, reason, ip))


async def reveal(q: Database | Tx, reveal_id: uuid.UUID, staff_id: uuid.UUID,
                 max_age: dt.timedelta) -> dict[str, Any] | None:
    """A reveal made by ``staff_id`` less than ``max_age`` ago (else None)."""
    return await q.fetchrow(
        "SELECT id, record_id, user_id, kind, staff_id, reason, ip, at FROM auth_kyc_reveals "
        "WHERE id = %s AND staff_id = %s AND at > now() - %s", (reveal_id, staff_id, max_age))


async def reveals_of(q: Database | Tx, record_id: uuid.UUID) -> list[dict[str, Any]]:
    """The reveal audit of a record, newest first, with the staff member's name."""
    return await q.fetch(
        "SELECT v.id, v.kind, v.staff_id, v.reason, v.ip, v.at, s.name AS staff_name "
        "FROM auth_kyc_reveals v LEFT JOIN core_staff s ON s.id = v.staff_id "
        "WHERE v.record_id = %s ORDER BY v.at DESC, v.id DESC", (record_id,))


async def count_decision(tx: Tx, day: dt.date, outcome: str) -> None:
    """Add one decision to a day's count."""
    await tx.execute(
        "INSERT INTO auth_kyc_daily_decisions (day, outcome, count) VALUES (%s, %s, 1) "
        "ON CONFLICT (day, outcome) DO UPDATE SET count = auth_kyc_daily_decisions.count + 1",
        (day, outcome))


async def decisions_on(q: Database | Tx, day: dt.date) -> dict[str, int]:
    """``{"verified": n, "rejected": m}`` of a day."""
    rows = await q.fetch("SELECT outcome, count FROM auth_kyc_daily_decisions WHERE day = %s",
                         (day,))
    counts = {"verified": 0, "rejected": 0}
    counts.update({r["outcome"]: r["count"] for r in rows})
    return counts


async def numbers_to_rotate(tx: Tx, current_key_id: str,
                            after: tuple[uuid.UUID, str], limit: int) -> list[dict[str, Any]]:
    """A batch of numbers not under the current key, after a ``(record_id, kind)`` cursor,
    locked (SKIP LOCKED: a row being resubmitted right now is left to the next run)."""
    return await tx.fetch(
        "SELECT n.record_id, n.kind, n.key_id, n.nonce, n.ciphertext, r.user_id "
        "FROM auth_kyc_numbers n JOIN auth_kyc_records r ON r.id = n.record_id "
        "WHERE n.key_id <> %s AND (n.record_id, n.kind) > (%s, %s) "
        "ORDER BY n.record_id, n.kind LIMIT %s FOR UPDATE OF n SKIP LOCKED",
        (current_key_id, after[0], after[1], limit))


async def reseal(tx: Tx, record_id: uuid.UUID, kind: str, key_id: str, nonce: bytes,
                 ciphertext: bytes) -> None:
    """Store a number re-encrypted under another key."""
    await tx.execute(
        "UPDATE auth_kyc_numbers SET key_id = %s, nonce = %s, ciphertext = %s, "
        "updated_at = now() WHERE record_id = %s AND kind = %s",
        (key_id, nonce, ciphertext, record_id, kind))


async def key_id_counts(q: Database | Tx) -> dict[str, int]:
    """How many numbers each key id seals."""
    rows = await q.fetch("SELECT key_id, count(*) AS n FROM auth_kyc_numbers GROUP BY key_id")
    return {r["key_id"]: r["n"] for r in rows}


async def erase(tx: Tx, user_id: uuid.UUID) -> None:
    """Forget a user's numbers, legal names and free-text reasons; keep statuses and dates."""
    await tx.execute("DELETE FROM auth_kyc_numbers WHERE record_id IN "
                     "(SELECT id FROM auth_kyc_records WHERE user_id = %s)", (user_id,))
    # Reasons are free text a reviewer typed: they may quote the person's details.
    await tx.execute("UPDATE auth_kyc_transitions SET reason = NULL WHERE record_id IN "
                     "(SELECT id FROM auth_kyc_records WHERE user_id = %s)", (user_id,))
    await tx.execute(
        "UPDATE auth_kyc_records SET legal_name = NULL, document_kind = NULL, reason = NULL, "
        "erased_at = now(), updated_at = now() WHERE user_id = %s", (user_id,))
