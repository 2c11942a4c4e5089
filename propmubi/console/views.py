"""The console shell's own pages: sign-in, sign-out, the dashboard and the staff list."""

from __future__ import annotations

import logging
import math
from typing import Any

import aiohttp_jinja2
from aiohttp import web
from markupsafe import Markup

from propmubi.console import accounts, store
from propmubi.console.lockout import Lockout
from propmubi.console.middleware import HOME, LOGIN_PATH, safe_next, see_other
from propmubi.console.sessions import SESSION, SessionStore
from propmubi.context import takes_ctx
from propmubi.events.bus import EventBus
from propmubi.events.ops import group_stats
from propmubi.web.appkeys import CONFIG, CONSOLE_USER, CONSOLE_WIDGETS, PLUGINS, SERVICES
from propmubi.web.ratelimit import client_ip

__all__ = ["dashboard", "login_form", "login_submit", "logout", "root", "staff_list"]

log = logging.getLogger(__name__)

#: The one answer to a failed sign-in, whatever failed: no hint of which addresses exist.
BAD_CREDENTIALS = "Wrong e-mail address or password."


def _render(name: str, request: web.Request, context: dict[str, Any], status: int = 200
            ) -> web.Response:
    response = aiohttp_jinja2.render_template(name, request, context, status=status)
    # Pages show who is signed in and carry CSRF tokens: never from a shared cache.
    response.headers["Cache-Control"] = "no-store"
    return response


async def root(request: web.Request) -> web.Response:
    """``/console`` -> ``/console/``."""
    return see_other(HOME)


async def login_form(request: web.Request) -> web.Response:
    """The sign-in form; a signed-in user goes straight on."""
    target = safe_next(request.query.get("next"))
    session = request.get(SESSION)
    if request.get(CONSOLE_USER) is not None and session is not None and session.user_id:
        return see_other(target)
    if session is None:
        # A pre-login session, only to carry the form's CSRF token.
        request[SESSION] = SessionStore(request.app[SERVICES]).new()
    return _render("console/login.html", request, {"next": target, "email": "", "error": None})


def _wait_text(seconds: float) -> str:
    if seconds < 90:
        return f"{max(1, math.ceil(seconds))} seconds"
    return f"{math.ceil(seconds / 60)} minutes"


async def login_submit(request: web.Request) -> web.Response:
    """Check the credentials; on success rotate the session and go on to ``next``."""
    services = request.app[SERVICES]
    config = request.app[CONFIG]
    form = await request.post()
    email = str(form.get("email", "")).strip()[:320]
    password = str(form.get("password", ""))[:1024]
    target = safe_next(str(form.get("next", "")))
    ip = client_ip(request, config.http.trust_forwarded)
    lockout = Lockout(services.redis, services.keys, config.console)
    context: dict[str, Any] = {"next": target, "email": email, "error": BAD_CREDENTIALS}

    # Counted before the password is checked, atomically: of many sign-ins sent at once,
    # only those under the limit reach the (slow) password check.
    attempt = await lockout.attempt(email, ip)
    if not attempt.allowed:
        wait = attempt.wait
        context["error"] = (f"Too many failed sign-ins. Try again in {_wait_text(wait)}.")
        response = _render("console/login.html", request, context, status=429)
        response.headers["Retry-After"] = str(max(1, math.ceil(wait)))
        return response
    user = await accounts.authenticate(services.db, email, password) if email else None
    if user is None:
        await lockout.failed(email, ip)
        return _render("console/login.html", request, context, status=401)
    await lockout.succeeded(email, ip)
    session = await SessionStore(services).rotate(request.get(SESSION), user.id, user.stamp)
    session.flash(f"Signed in as {user.name}.")
    request[SESSION] = session
    return see_other(target)


async def logout(request: web.Request) -> web.Response:
    """End the server session; the browser lands on the sign-in page."""
    sessions = SessionStore(request.app[SERVICES])
    session = request.get(SESSION)
    if session is not None:
        await sessions.end(session)
    fresh = sessions.new()
    fresh.flash("You are signed out.")
    request[SESSION] = fresh
    return see_other(LOGIN_PATH)


async def dashboard(request: web.Request) -> web.Response:
    """Event-bus health and the enabled plugins (later plugins may add widgets here)."""
    services = request.app[SERVICES]
    try:
        stats = await group_stats(services, EventBus(services).groups)
        bus_error = None
    except Exception as exc:  # the dashboard must open even when Redis misbehaves
        stats, bus_error = [], f"{type(exc).__name__}: {exc}"
    plugins = [{"name": p.name, "version": p.info.version, "description": p.info.description,
                "source": p.source} for p in request.app[PLUGINS]]
    return _render("console/dashboard.html", request,
                   {"stats": stats, "bus_error": bus_error, "plugins": plugins,
                    "widgets": await _widgets(request)})


async def _widgets(request: web.Request) -> list[dict[str, Any]]:
    """The dashboard cards this user may see, each rendered (or its error)."""
    roles = (request.get(CONSOLE_USER) or {}).get("roles", ())
    cards = []
    for widget in request.app.get(CONSOLE_WIDGETS, []):
        if widget.role not in roles and "admin" not in roles:
            continue
        try:
            if takes_ctx(widget.load):
                ctx = request.app[SERVICES].contexts[widget.plugin]
                context = await widget.load(request, ctx=ctx)
            else:
                context = await widget.load(request)
            body, error = Markup(aiohttp_jinja2.render_string(widget.template, request,
                                                               context)), None
        except Exception as exc:  # one broken card must not take the dashboard down
            log.exception("console: dashboard widget %s failed", widget.name)
            body, error = None, f"{type(exc).__name__}: {exc}"
        cards.append({"name": widget.name, "title": widget.title, "body": body, "error": error})
    return cards


async def staff_list(request: web.Request) -> web.Response:
    """Every staff account (admins only)."""
    rows = await store.list_all(request.app[SERVICES].db)
    return _render("console/staff.html", request, {
        "staff": rows, "roles_of": lambda row: ", ".join(row["roles"]),
        "state_of": lambda row: "disabled" if row["disabled"] else "active"})


def pages() -> list[Any]:
    """The shell's console pages."""
    from propmubi.types import ConsolePage

    return [
        ConsolePage(path="", handler=root, name="console-root", public=True),
        ConsolePage(path="/login", handler=login_form, name="console-login", public=True),
        ConsolePage(path="/login", handler=login_submit, name="console-login-submit",
                    method="POST", public=True),
        ConsolePage(path="/logout", handler=logout, name="console-logout", method="POST",
                    public=True),
        ConsolePage(path="/", handler=dashboard, name="console-dashboard",
                    nav_label="Dashboard", nav_order=0),
        ConsolePage(path="/staff", handler=staff_list, name="console-staff",
                    nav_label="Staff", nav_order=900, role="admin"),
    ]

