"""SQL for the auth tables. Every statement is parameterised; the atomic ones say why."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from propmubi.db import Database, Tx
from propmubi.ids import valid_uuids


async def create_challenge(db: Database | Tx, challenge_id: uuid.UUID, phone: str,
                           code_hash: bytes, expires_at: dt.datetime) -> None:
    """Store a new OTP challenge."""
    await db.execute(
        "INSERT INTO auth_otp_challenges (id, phone, code_hash, expires_at) "
        "VALUES (%s, %s, %s, %s)", (challenge_id, phone, code_hash, expires_at))


# One statement counts the guess and, when it is right, consumes the challenge. The row lock
# makes concurrent guesses queue, and each re-reads attempts/consumed_at after the one before
# commits: no more than max_attempts guesses are ever compared, and a code is used once.
_GUESS = """
UPDATE auth_otp_challenges
SET attempts = attempts + 1,
    consumed_at = CASE WHEN code_hash = %(hash)s THEN now() END
WHERE id = %(id)s AND consumed_at IS NULL AND expires_at > now() AND attempts < %(max)s
RETURNING phone, consumed_at IS NOT NULL AS ok
"""


async def guess(tx: Tx, challenge_id: uuid.UUID, code_hash: bytes, max_attempts: int
                ) -> str | None:
    """Count one guess; the challenge's phone when it was right, else None."""
    row = await tx.fetchrow(_GUESS, {"id": challenge_id, "hash": code_hash, "max": max_attempts})
    return row["phone"] if row is not None and row["ok"] else None


async def upsert_user(tx: Tx, user_id: uuid.UUID, phone: str) -> tuple[uuid.UUID, bool]:
    """The user with this phone, created (as a buyer) when new; ``(id, created)``."""
    created = await tx.fetchval(
        "INSERT INTO auth_users (id, phone, last_login_at) VALUES (%s, %s, now()) "
        "ON CONFLICT (phone) DO NOTHING RETURNING id", (user_id, phone))
    if created is not None:
        await tx.execute("INSERT INTO auth_user_roles (user_id, role) VALUES (%s, 'buyer')",
                         (created,))
        return created, True
    existing = await tx.fetchval(
        "UPDATE auth_users SET last_login_at = now() WHERE phone = %s RETURNING id", (phone,))
    return existing, False


async def roles_of(q: Database | Tx, user_id: uuid.UUID) -> list[str]:
    """The user's role names."""
    rows = await q.fetch("SELECT role FROM auth_user_roles WHERE user_id = %s ORDER BY role",
                         (user_id,))
    return [r["role"] for r in rows]


async def grant_role(db: Database | Tx, user_id: uuid.UUID, role: str) -> None:
    """Give a role (no-op when held)."""
    await db.execute("INSERT INTO auth_user_roles (user_id, role) VALUES (%s, %s) "
                     "ON CONFLICT DO NOTHING", (user_id, role))


async def user(db: Database, user_id: uuid.UUID) -> dict[str, Any] | None:
    """A user's profile row."""
    return await db.fetchrow(
        "SELECT id, phone, created_at, last_login_at FROM auth_users WHERE id = %s", (user_id,))


async def create_session(tx: Tx, session_id: uuid.UUID, user_id: uuid.UUID,
                         device: str | None) -> None:
    """Start a refresh-token family."""
    await tx.execute("INSERT INTO auth_sessions (id, user_id, device) VALUES (%s, %s, %s)",
                     (session_id, user_id, device))


async def add_refresh_token(tx: Tx, token_id: uuid.UUID, session_id: uuid.UUID,
                            user_id: uuid.UUID, token_hash: bytes, expires_at: dt.datetime
                            ) -> None:
    """Store a refresh token (its hash) in its family."""
    await tx.execute(
        "INSERT INTO auth_refresh_tokens (id, family_id, user_id, token_hash, expires_at) "
        "VALUES (%s, %s, %s, %s, %s)", (token_id, session_id, user_id, token_hash, expires_at))


# Conditional: of two concurrent exchanges of one token, the second waits for the first's row
# lock, re-checks rotated_at, and matches nothing. A session older than its maximum age is
# not live, however recently it was refreshed.
_ROTATE = """
UPDATE auth_refresh_tokens t SET rotated_at = now()
FROM auth_sessions s
WHERE t.token_hash = %s AND t.rotated_at IS NULL AND t.revoked_at IS NULL
  AND t.expires_at > now() AND s.id = t.family_id AND s.revoked_at IS NULL
  AND s.created_at > now() - %s
RETURNING t.family_id, t.user_id, s.created_at AS session_started_at
"""


async def rotate(tx: Tx, token_hash: bytes, max_age: dt.timedelta
                 ) -> dict[str, Any] | None:
    """Mark a live token of a session younger than ``max_age`` as exchanged; its family, user
    and the session's start, or None when it is not live."""
    return await tx.fetchrow(_ROTATE, (token_hash, max_age))


async def touch_session(tx: Tx, session_id: uuid.UUID) -> None:
    """Record the session's latest use."""
    await tx.execute("UPDATE auth_sessions SET last_used_at = now() WHERE id = %s",
                     (session_id,))


async def find_token(q: Database | Tx, token_hash: bytes) -> dict[str, Any] | None:
    """Any token by hash, live or not: its family, user and whether it was already rotated."""
    return await q.fetchrow(
        "SELECT family_id, user_id, rotated_at IS NOT NULL AS rotated FROM auth_refresh_tokens "
        "WHERE token_hash = %s", (token_hash,))


async def revoke_session(tx: Tx, session_id: uuid.UUID, reason: str,
                         user_id: uuid.UUID | None = None) -> bool:
    """Revoke a family and all its tokens; False when it was already revoked (or, with
    ``user_id``, is not that user's)."""
    done = await tx.fetchval(
        "UPDATE auth_sessions SET revoked_at = now(), revoke_reason = %s "
        "WHERE id = %s AND revoked_at IS NULL AND (%s::uuid IS NULL OR user_id = %s::uuid) "
        "RETURNING id", (reason, session_id, user_id, user_id))
    if done is None:
        return False
    await tx.execute("UPDATE auth_refresh_tokens SET revoked_at = now() "
                     "WHERE family_id = %s AND revoked_at IS NULL", (session_id,))
    return True


async def sessions_of(db: Database, user_id: uuid.UUID) -> list[dict[str, Any]]:
    """A user's live sessions, newest first."""
    return await db.fetch(
        "SELECT id, device, created_at, last_used_at FROM auth_sessions "
        "WHERE user_id = %s AND revoked_at IS NULL ORDER BY created_at DESC", (user_id,))


async def purge_expired(db: Database, older_than: dt.timedelta, batch: int) -> int:
    """Delete up to ``batch`` OTP challenges and ``batch`` refresh tokens that expired more
    than ``older_than`` ago; how many rows went. Batches keep each statement's locks short."""
    challenges = await db.execute(
        "DELETE FROM auth_otp_challenges WHERE id IN (SELECT id FROM auth_otp_challenges "
        "WHERE expires_at < now() - %s LIMIT %s)", (older_than, batch))
    tokens = await db.execute(
        "DELETE FROM auth_refresh_tokens WHERE id IN (SELECT id FROM auth_refresh_tokens "
        "WHERE expires_at < now() - %s LIMIT %s)", (older_than, batch))
    return max(challenges, tokens)


async def user_id_by_phone(db: Database | Tx, phone: str) -> uuid.UUID | None:
    """The id of the user with this E.164 phone number."""
    return await db.fetchval("SELECT id FROM auth_users WHERE phone = %s", (phone,))


async def revoke_role(db: Database | Tx, user_id: uuid.UUID, role: str) -> bool:
    """Take a role away; False when it was not held."""
    return await db.execute("DELETE FROM auth_user_roles WHERE user_id = %s AND role = %s",
                            (user_id, role)) > 0


# -------------------------------------------------------------------------------------------------
# Consent ledger, profiles, export and erasure
# -------------------------------------------------------------------------------------------------


async def add_consent(tx: Tx, user_id: uuid.UUID, purpose: str, policy_version: str,
                      granted: bool, ip: str | None, user_agent: str | None) -> dict[str, Any]:
    """Append a consent decision; the stored row."""
    row = await tx.fetchrow(
        "INSERT INTO auth_consents (user_id, purpose, policy_version, granted, ip, user_agent) "
        "VALUES (%s, %s, %s, %s, %s, %s) "
        "RETURNING id, purpose, policy_version, granted, recorded_at, host(ip) AS ip, user_agent",
        (user_id, purpose, policy_version, granted, ip, user_agent))
    assert row is not None  # an INSERT ... RETURNING returns its row
    return row


async def consent_history(q: Database | Tx, user_id: uuid.UUID) -> list[dict[str, Any]]:
    """Every consent decision of a user, newest first."""
    return await q.fetch(
        "SELECT id, purpose, policy_version, granted, recorded_at, host(ip) AS ip, user_agent "
        "FROM auth_consents WHERE user_id = %s ORDER BY recorded_at DESC, id DESC", (user_id,))


async def consents_in_force(q: Database | Tx, user_id: uuid.UUID) -> list[dict[str, Any]]:
    """The latest decision per purpose."""
    return await q.fetch(
        "SELECT DISTINCT ON (purpose) id, purpose, policy_version, granted, recorded_at, "
        "host(ip) AS ip, user_agent FROM auth_consents WHERE user_id = %s "
        "ORDER BY purpose, recorded_at DESC, id DESC", (user_id,))


async def set_name(tx: Tx, user_id: uuid.UUID, name: str | None) -> None:
    """Change a user's display name."""
    await tx.execute("UPDATE auth_users SET name = %s WHERE id = %s", (name, user_id))


async def names(db: Database, ids: list[str]) -> dict[str, str]:
    """Display names of the users among ``ids`` (text; non-UUIDs skipped): the name they gave,
    else their phone number; "erased user" once erased."""
    rows = await db.fetch(
        "SELECT id::text AS id, CASE WHEN erased_at IS NOT NULL THEN 'erased user' "
        "ELSE coalesce(name, phone) END AS name FROM auth_users WHERE id = ANY(%s::uuid[])",
        (valid_uuids(ids),))
    return {row["id"]: row["name"] for row in rows}


async def profile(q: Database | Tx, user_id: uuid.UUID) -> dict[str, Any] | None:
    """A user's row with name and erasure state."""
    return await q.fetchrow(
        "SELECT id, phone, name, created_at, last_login_at, erased_at FROM auth_users "
        "WHERE id = %s", (user_id,))


async def all_sessions_of(q: Database | Tx, user_id: uuid.UUID) -> list[dict[str, Any]]:
    """Every session of a user, revoked ones too, newest first."""
    return await q.fetch(
        "SELECT id, device, created_at, last_used_at, revoked_at, revoke_reason "
        "FROM auth_sessions WHERE user_id = %s ORDER BY created_at DESC", (user_id,))


# Erasure keeps the row (events and other tables refer to the id) but nothing that identifies
# the person: the phone becomes a placeholder no real number can equal, so it may register again.
_ERASE_USER = """
UPDATE auth_users SET phone = 'erased:' || id::text, name = NULL, last_login_at = NULL,
                      erased_at = now()
WHERE id = %s AND erased_at IS NULL
RETURNING id
"""


async def erase_user(tx: Tx, user_id: uuid.UUID, phone: str) -> bool:
    """Anonymise a user: profile, roles, sessions, tokens, codes, consent metadata; False when
    already erased."""
    if await tx.fetchval(_ERASE_USER, (user_id,)) is None:
        return False
    await tx.execute("DELETE FROM auth_user_roles WHERE user_id = %s", (user_id,))
    await tx.execute("UPDATE auth_sessions SET revoked_at = coalesce(revoked_at, now()), "
                     "revoke_reason = coalesce(revoke_reason, 'erased'), device = NULL "
                     "WHERE user_id = %s", (user_id,))
    await tx.execute("DELETE FROM auth_refresh_tokens WHERE user_id = %s", (user_id,))
    await tx.execute("DELETE FROM auth_otp_challenges WHERE phone = %s", (phone,))
    # The decisions stay (proof of what was agreed when); where they came from does not.
    await tx.execute("UPDATE auth_consents SET ip = NULL, user_agent = NULL WHERE user_id = %s",
                     (user_id,))
    return True


# -------------------------------------------------------------------------------------------------
# The console's user directory
# -------------------------------------------------------------------------------------------------

_USER_LIST = """
SELECT u.id, u.phone, u.name, u.created_at, u.last_login_at, u.erased_at,
       coalesce(array_agg(r.role ORDER BY r.role) FILTER (WHERE r.role IS NOT NULL), '{}') AS roles
FROM auth_users u LEFT JOIN auth_user_roles r ON r.user_id = u.id
WHERE (%(phone)s::text IS NULL OR u.phone LIKE %(phone)s || '%%')
  AND (%(name)s::text IS NULL OR (u.name IS NOT NULL AND lower(u.name) LIKE %(name)s || '%%'))
  AND (%(before)s::timestamptz IS NULL OR (u.created_at, u.id) < (%(before)s, %(before_id)s))
GROUP BY u.id
ORDER BY u.created_at DESC, u.id DESC
LIMIT %(limit)s
"""


def _like_prefix(text: str) -> str:
    # LIKE wildcards typed by staff are taken literally.
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def search_users(db: Database, *, phone_prefix: str | None, name_prefix: str | None,
                       before: tuple[dt.datetime, uuid.UUID] | None, limit: int
                       ) -> list[dict[str, Any]]:
    """Users newest first, optionally whose phone or (lower-cased) name starts with a prefix;
    ``before`` is the keyset position (created_at, id) of the previous page's last row."""
    return await db.fetch(_USER_LIST, {
        "phone": _like_prefix(phone_prefix) if phone_prefix else None,
        "name": _like_prefix(name_prefix.lower()) if name_prefix else None,
        "before": before[0] if before else None, "before_id": before[1] if before else None,
        "limit": limit})


async def signups_since(db: Database, since: dt.datetime) -> int:
    """How many users registered since ``since``."""
    return await db.fetchval("SELECT count(*) FROM auth_users WHERE created_at >= %s", (since,))
