"""Staff accounts: argon2id password hashes, creation, and checking a sign-in."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from typing import Any

import attrs
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from propmubi.console import store
from propmubi.db import Database, UniqueViolation
from propmubi.ids import uuid7

__all__ = ["ROLES", "AccountError", "StaffUser", "authenticate", "change_password", "create_staff",
           "credential_stamp", "generate_password", "hash_password"]

ROLES = ("staff", "admin")
MIN_PASSWORD_LENGTH = 12
# argon2-cffi's defaults are the RFC 9106 "low memory" profile of argon2id.
_hasher = PasswordHasher()
# Unknown addresses are verified against this, so that they take as long as a wrong password
# and the response time does not tell which addresses have accounts.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


class AccountError(Exception):
    """A staff account cannot be created or changed; the message says why."""


@attrs.frozen
class StaffUser:
    """A signed-in staff member, as the console shows and checks them."""

    id: str
    email: str
    name: str
    roles: tuple[str, ...]
    #: :func:`credential_stamp` of the password hash the account was loaded with.
    stamp: str = attrs.field(default="", eq=False, repr=False)

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> StaffUser:
        """Build from a ``core_staff`` row."""
        return cls(id=str(row["id"]), email=row["email"], name=row["name"],
                   roles=tuple(row["roles"]), stamp=credential_stamp(row["password_hash"]))

    def as_console_user(self) -> dict[str, Any]:
        """The mapping stored in ``request[CONSOLE_USER]``."""
        return {"id": self.id, "email": self.email, "name": self.name, "roles": list(self.roles)}


def credential_stamp(password_hash: str) -> str:
    """What a console session records of the password it was signed in with.

    Every new password gets a new hash (a fresh salt), so a session whose stamp no longer
    matches the account's hash was signed in before the password changed and is ended. It is
    a digest of the hash, so the session store holds nothing to test passwords against.
    """
    return hashlib.sha256(password_hash.encode()).hexdigest()


def generate_password() -> str:
    """A strong random password (about 128 bits), printable and easy to paste."""
    return secrets.token_urlsafe(16)


def hash_password(password: str) -> str:
    """The argon2id hash of ``password``, in PHC string format."""
    return _hasher.hash(password)


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")


def _check_email(email: str) -> str:
    email = email.strip()
    local, _, domain = email.partition("@")
    if not local or "." not in domain or any(c.isspace() for c in email):
        raise AccountError(f"{email!r} is not an e-mail address")
    return email


async def create_staff(db: Database, email: str, name: str, password: str,
                       roles: list[str]) -> StaffUser:
    """Create an account.

    :raises AccountError: on a taken address, an unknown role, or a short password.
    """
    email = _check_email(email)
    bad = [r for r in roles if r not in ROLES]
    if bad or not roles:
        raise AccountError(f"unknown role {bad[0] if bad else ''!r}; roles are "
                           f"{', '.join(ROLES)}")
    if not name.strip():
        raise AccountError("the name must not be empty")
    _check_password(password)
    try:
        row = await store.insert(db, uuid7(), email, name.strip(), hash_password(password),
                                 sorted(set(roles)))
    except UniqueViolation:
        raise AccountError(f"a staff account for {email} already exists") from None
    return StaffUser.from_row(row)


async def change_password(db: Database, email: str, password: str) -> None:
    """Set a new password; the account's console sessions end at their next request (their
    :func:`credential_stamp` no longer matches).

    :raises AccountError: on an unknown address or a short password.
    """
    _check_password(password)
    if not await store.set_password(db, email, hash_password(password)):
        raise AccountError(f"no staff account for {email}")


async def authenticate(db: Database, email: str, password: str) -> StaffUser | None:
    """The account when ``email`` and ``password`` match an enabled account, else None.

    Unknown addresses, wrong passwords and disabled accounts are indistinguishable to the
    caller, and cost the same argon2 verification.
    """
    row = await store.by_email(db, email.strip()) if email.strip() else None
    try:
        # argon2 takes tens of milliseconds of CPU by design: off the event loop.
        await asyncio.to_thread(_hasher.verify, row["password_hash"] if row else _DUMMY_HASH,
                                password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return None
    if row is None or row["disabled"]:
        return None
    rehash = hash_password(password) if _hasher.check_needs_rehash(row["password_hash"]) else None
    await store.record_login(db, row["id"], rehash)
    user = StaffUser.from_row(row)
    # A re-hash changes the stored hash: the new session is stamped with the new one.
    return attrs.evolve(user, stamp=credential_stamp(rehash)) if rehash else user
