"""Who is calling, and the one role check every plugin's routes use.

An authentication middleware (contributed by a plugin through ``propmubi_middlewares``) sets
``request[PRINCIPAL]`` (and ``request[SUBJECT]``, for per-subject rate limits) when the caller
presents valid credentials, or ``request[AUTH_ERROR]`` when the credentials presented were
refused. A route declares what it needs with ``Routes.route(..., roles=[...])``; the endpoint
wrapper calls :func:`check_roles` before the handler sees any input:

- no principal: 401 with ``WWW-Authenticate: Bearer`` (plus ``error="invalid_token"`` when a
  token was presented and refused);
- a principal without any of the roles: 403 (``error="insufficient_scope"``).

``admin`` satisfies every role requirement; :data:`ANY_ROLE` admits any authenticated caller.
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs
from aiohttp import web

from propmubi.errors import Forbidden, Unauthorized
from propmubi.web.appkeys import AUTH_ERROR, PRINCIPAL

__all__ = ["ADMIN_ROLE", "ANY_ROLE", "BEARER_SCHEME", "Principal", "check_roles"]

#: In ``roles=``: any authenticated caller, whatever their roles.
ANY_ROLE = "*"
#: The role that passes every role check.
ADMIN_ROLE = "admin"
#: Name of the OpenAPI security scheme that role-guarded routes reference.
BEARER_SCHEME = "bearerAuth"


@attrs.frozen
class Principal:
    """An authenticated caller.

    :ivar subject: the caller's stable id (a user id).
    :ivar roles: the caller's role names.
    :ivar session: the sign-in session the credentials belong to, when there is one.
    """

    subject: str
    roles: frozenset[str] = attrs.field(default=frozenset(), converter=frozenset)
    session: str | None = None

    def has_any(self, roles: Iterable[str]) -> bool:
        """Whether this caller satisfies a requirement of any of ``roles``."""
        wanted = set(roles)
        return ANY_ROLE in wanted or ADMIN_ROLE in self.roles or bool(wanted & self.roles)


def _quote(text: str) -> str:
    # A quoted-string in an auth-param: no quotes or backslashes, no control characters.
    return "".join(c for c in text if c.isprintable() and c not in '"\\')


def check_roles(request: web.Request, roles: tuple[str, ...]) -> Principal:
    """Return the request's principal if it has one of ``roles``; raise 401 or 403 otherwise.

    :raises Unauthorized: nobody (valid) is signed in.
    :raises Forbidden: the caller lacks every one of ``roles``.
    """
    principal = request.get(PRINCIPAL)
    if principal is None:
        error = request.get(AUTH_ERROR)
        if error:
            challenge = (f'Bearer error="invalid_token", '
                         f'error_description="{_quote(error)}"')
            raise Unauthorized(f"the access token was refused: {error}",
                               headers={"WWW-Authenticate": challenge})
        raise Unauthorized("this route needs an access token (Authorization: Bearer ...)",
                           headers={"WWW-Authenticate": "Bearer"})
    if not principal.has_any(roles):
        raise Forbidden(f"this route needs one of the roles: {', '.join(sorted(roles))}",
                        headers={"WWW-Authenticate": 'Bearer error="insufficient_scope"'})
    return principal
