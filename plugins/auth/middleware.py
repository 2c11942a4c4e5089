"""The authentication middleware: ``Authorization: Bearer <access token>`` -> the principal."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from propmubi.web.appkeys import AUTH_ERROR, PRINCIPAL, SERVICES, SUBJECT
from propmubi.web.auth import Principal
from propmubi_plugins.auth.state import Ctx
from propmubi_plugins.auth.tokens import InvalidToken


@web.middleware
async def authenticate(request: web.Request, handler: Any) -> web.StreamResponse:
    """Set PRINCIPAL and SUBJECT from a valid bearer token, or AUTH_ERROR from a refused one.

    It never refuses a request itself: public routes ignore credentials, and routes declared
    with ``roles=`` answer 401 (``error="invalid_token"``) through the core's role check.
    """
    header = request.headers.get("Authorization")
    if header is not None:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            request[AUTH_ERROR] = "expected 'Authorization: Bearer <token>'"
        else:
            # A middleware is given no context: it finds auth's through the app's services.
            ctx: Ctx = request.app[SERVICES].context("auth")
            try:
                claims = ctx.state.keyring.verify(token.strip())
            except InvalidToken as exc:
                request[AUTH_ERROR] = str(exc)
            else:
                request[PRINCIPAL] = Principal(subject=claims.subject, roles=claims.roles,
                                               session=claims.session)
                request[SUBJECT] = claims.subject
    return await handler(request)
