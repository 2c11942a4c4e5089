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

import uuid

from aiohttp import web

from propmubi.actors import Actor
from propmubi.errors import Forbidden, Unauthorized
from propmubi.types import ADMIN_ROLE, ANY_ROLE, Principal
from propmubi.web.appkeys import AUTH_ERROR, PRINCIPAL

__all__ = ["ADMIN_ROLE", "ANY_ROLE", "BEARER_SCHEME", "Principal", "actor_of", "check_roles",
           "signed_in"]

#: Name of the OpenAPI security scheme that role-guarded routes reference.
BEARER_SCHEME = "bearerAuth"


def _quote(text: str) -> str:
    # A quoted-string in an auth-param: no quotes or backslashes, no control characters.
    return "".join(c for c in text if c.isprintable() and c not in '"\\')


def check_roles(request: web.Request, roles: tuple[str, ...]) -> Principal:
    """Return the request's principal if it has one of ``roles``; raise 401 or 403 otherwise.

    :raises Unauthorized: nobody (valid) is signed in.
    :raises Forbidden: the caller lacks every one of ``roles``.
    """
    principal: Principal | None = request.get(PRINCIPAL)  # Request.get is untyped for keys
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


def actor_of(request: web.Request) -> Actor | None:
    """The signed-in API caller as the actor of a service call, or None when anonymous.

    :raises Unauthorized: the credentials name a subject that is not a user id (a token of
        another kind of principal must not act as a user).
    """
    principal = request.get(PRINCIPAL)
    if principal is None:
        return None
    try:
        uuid.UUID(principal.subject)
    except ValueError:
        raise Unauthorized("the token's subject is not a user") from None
    return Actor.user(principal)


def signed_in(request: web.Request) -> Actor:
    """:func:`actor_of` for routes declared with ``roles=`` (anonymous callers never reach
    them); 401 if one does."""
    actor = actor_of(request)
    if actor is None:
        raise Unauthorized("this route needs an access token (Authorization: Bearer ...)",
                           headers={"WWW-Authenticate": "Bearer"})
    return actor
