"""The console's session middleware: who is signed in, CSRF on every POST, and the sign-in
form (401) in place of any page a signed-out browser asks for."""

from __future__ import annotations

import hmac
import warnings
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

import aiohttp_jinja2
from aiohttp import web
from aiohttp.web_exceptions import NotAppKeyWarning

from propmubi.config import Config
from propmubi.console import store
from propmubi.console.accounts import StaffUser, credential_stamp
from propmubi.console.context import template_context
from propmubi.console.sessions import (
    COOKIE_NAME,
    CSRF_FIELD,
    SESSION,
    SessionStore,
    clear_cookie,
    set_cookie,
)
from propmubi.errors import Forbidden, Unauthorized
from propmubi.web.appkeys import CONSOLE_PREFIX, CONSOLE_USER, SERVICES, is_console_path
from propmubi.web.routing import ROUTE_KEY

__all__ = ["LOGIN_PATH", "console_session_middleware", "safe_next"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

LOGIN_PATH = CONSOLE_PREFIX + "/login"
HOME = CONSOLE_PREFIX + "/"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def safe_next(target: str | None) -> str:
    """``target`` when it is a console path on this site, else the dashboard.

    Only relative paths under ``/console`` pass: no scheme, no host, no ``//host`` or
    ``/\\host`` (browsers read both as another site), no control characters; and not the
    sign-in page itself, which would loop.
    """
    if not target or len(target) > 2048 or "\\" in target:
        return HOME
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in target):
        return HOME
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not is_console_path(parts.path):
        return HOME
    if parts.path.rstrip("/") == LOGIN_PATH:
        return HOME
    return target


def see_other(location: str) -> web.Response:
    """A 303 redirect (after a POST, the browser follows it with a GET)."""
    return web.Response(status=303, headers={"Location": location})


def _sign_in_page(request: web.Request, sessions: SessionStore) -> web.Response:
    """The 401 answer to a signed-out GET: the sign-in form itself, at the page's own address,
    returning there once signed in (no redirect, no script needed)."""
    if request.get(SESSION) is None:
        request[SESSION] = sessions.new()  # a pre-login session, for the form's CSRF token
    response = aiohttp_jinja2.render_template("console/login.html", request, {
        "next": safe_next(request.path_qs), "email": "", "error": None,
        "notice": "Sign in to open this page."}, status=401)
    response.headers["Cache-Control"] = "no-store"
    return response


async def _csrf_token(request: web.Request) -> str | None:
    token = request.headers.get("X-CSRF-Token")
    if token:
        return token
    if request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        value = (await request.post()).get(CSRF_FIELD)
        return value if isinstance(value, str) else None
    return None


def _set_template_context(request: web.Request) -> None:
    # aiohttp-jinja2 merges this per-request context into every render, under its own plain
    # string key, which aiohttp warns about (the key is not ours to change).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotAppKeyWarning)
        request[aiohttp_jinja2.REQUEST_CONTEXT_KEY] = template_context(request)


def console_session_middleware(config: Config) -> Callable[..., Awaitable[web.StreamResponse]]:
    """The middleware; a no-op outside ``/console``."""

    @web.middleware
    async def console_session(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not is_console_path(request.path):
            return await handler(request)
        services = request.app[SERVICES]
        sessions = SessionStore(services)
        cookie = request.cookies.get(COOKIE_NAME, "")
        session = await sessions.load(cookie) if cookie else None
        if session is not None and session.user_id:
            row = await store.by_id(services.db, session.user_id)
            if row is None or row["disabled"] or not hmac.compare_digest(
                    (session.stamp or "").encode(),
                    credential_stamp(row["password_hash"]).encode()):
                # A disabled account, or one whose password changed since this session
                # signed in, is signed out at its next request, wherever it is.
                await sessions.end(session)
                session = None
            elif CONSOLE_USER not in request:
                request[CONSOLE_USER] = StaffUser.from_row(row).as_console_user()
        request[SESSION] = session
        _set_template_context(request)
        spec = getattr(request.match_info.handler, ROUTE_KEY, None)
        if spec is not None and isinstance(spec.max_body, int) and \
                not isinstance(spec.max_body, bool):
            # A page with its own body limit (a photo upload): the form, the CSRF token's
            # too, is read under that limit instead of [http] max_body_bytes.
            request = request.clone(client_max_size=spec.max_body)
        # An unmatched route (404, 405) has no handler to protect; it answers as such.
        if request.method not in _SAFE_METHODS and request.match_info.http_exception is None:
            token = await _csrf_token(request)
            if session is None or not session.csrf_ok(token):
                raise Forbidden("this form has expired or did not come from this site; "
                                "reload the page and try again")
        try:
            response = await handler(request)
        except Unauthorized:
            if request.method not in ("GET", "HEAD"):
                raise
            response = _sign_in_page(request, sessions)
        current = request.get(SESSION)
        if current is not None and current.ended:
            clear_cookie(response)
        elif current is not None:
            if current.dirty:
                await sessions.save(current)
            if current.new:
                set_cookie(response, current, config)
        elif cookie:
            clear_cookie(response)  # it named a session that is gone
        return response

    return console_session
