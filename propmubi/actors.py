"""Who acts: the second argument of every plugin service function."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Literal

import attrs

from propmubi.types import ADMIN_ROLE, ANY_ROLE, Principal

__all__ = ["STAFF_ROLES", "Actor"]

#: Roles that act for the platform (staff accounts, and users holding these roles).
STAFF_ROLES = frozenset({"staff", ADMIN_ROLE})


def _roles(roles: Iterable[str]) -> frozenset[str]:
    # A typed converter: mypy's attrs plugin cannot solve the generic `converter=frozenset`.
    return frozenset(roles)


@attrs.frozen
class Actor:
    """An API user, a staff member in the console, or the system (jobs, handlers, CLI).

    :ivar kind: ``user`` (an API caller; ``id`` is a user id), ``staff`` (a console account;
        ``id`` is a staff account id, not a user id) or ``system``.
    :ivar id: the user's or staff account's id, or the system part's name.
    :ivar roles: the roles held (a staff member's console roles, a user's roles).
    """

    kind: Literal["user", "staff", "system"]
    id: str
    roles: frozenset[str] = attrs.field(factory=frozenset, converter=_roles)

    @classmethod
    def user(cls, principal: Principal) -> Actor:
        """The signed-in API caller."""
        return cls("user", principal.subject, principal.roles)

    @classmethod
    def staff(cls, staff_id: uuid.UUID | str, roles: Iterable[str] = ("staff",)) -> Actor:
        """A staff member acting in the console."""
        return cls("staff", str(staff_id), frozenset(roles))

    @classmethod
    def system(cls, part: str = "system") -> Actor:
        """The platform itself: a job, an event handler or an operator's CLI command."""
        return cls("system", part, STAFF_ROLES)

    @property
    def ref(self) -> str:
        """``<kind>:<id>``: what events, history rows and audit logs record as the actor."""
        return f"{self.kind}:{self.id}"

    @property
    def is_staff(self) -> bool:
        """Acts for the platform: staff, admins and the system may do what owners may."""
        return self.kind != "user" or bool(self.roles & STAFF_ROLES)

    @property
    def user_id(self) -> uuid.UUID | None:
        """The user id of an API user (None for staff and the system)."""
        return uuid.UUID(self.id) if self.kind == "user" else None

    def has_any(self, roles: Iterable[str]) -> bool:
        """Whether this actor satisfies a requirement of any of ``roles`` (admin: all)."""
        wanted = set(roles)
        return ANY_ROLE in wanted or ADMIN_ROLE in self.roles or bool(wanted & self.roles)
