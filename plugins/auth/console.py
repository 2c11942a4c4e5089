"""Console pages of the auth plugin: the user directory (search, detail with roles, sessions,
consent history and KYC), the sign-ups card, and (from kyc_console) the KYC review queue."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from aiohttp import web

from propmubi.console.pages import (
    cursor_of,
    flash,
    parse_cursor,
    path_uuid,
    render,
    see_other,
    staff_id,
)
from propmubi.errors import NotFound, ValidationFailed
from propmubi.types import ConsolePage, ConsoleWidget
from propmubi.web.appkeys import SERVICES
from propmubi_plugins.auth import kyc, kyc_console, service, store
from propmubi_plugins.auth.api import ROLES

log = logging.getLogger(__name__)

PREFIX = "/console/users"
PAGE_SIZE = 25


def _search_terms(rt: service.AuthRuntime, text: str) -> tuple[str | None, str | None]:
    """``(phone prefix, name prefix)`` for what staff typed: a phone number (whole or its
    start) or the start of a name."""
    text = text.strip()[:100]
    if not text:
        return None, None
    compact = text.replace(" ", "").replace("-", "")
    if compact.lstrip("+").isdigit():
        try:
            return service.normalise_phone(compact, rt.settings.default_region), None
        except ValidationFailed:
            pass
        if compact.startswith("+"):
            return compact, None
        # A national number's start: staff type "98123", the store holds "+9198123...".
        import phonenumbers

        code = phonenumbers.country_code_for_region(rt.settings.default_region)
        return f"+{code}{compact.lstrip('0')}", None
    return None, text


async def users(request: web.Request) -> web.Response:
    """Users, newest first, searchable by phone number or name."""
    services = request.app[SERVICES]
    q = request.query.get("q", "")
    phone, name = _search_terms(service.runtime(services), q)
    rows = await store.search_users(services.db, phone_prefix=phone, name_prefix=name,
                                    before=parse_cursor(request.query.get("cursor")),
                                    limit=PAGE_SIZE + 1)
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    next_cursor = cursor_of(rows[-1]["created_at"], rows[-1]["id"]) if more else None
    return render("auth/users.html", request, {"rows": rows, "q": q, "next_cursor": next_cursor,
                                               "prefix": PREFIX})


async def user_detail(request: web.Request) -> web.Response:
    """One user: profile, roles, sessions, consent history and KYC records."""
    services = request.app[SERVICES]
    user_id = path_uuid(request, "id", "user")
    profile = await store.profile(services.db, user_id)
    if profile is None:
        raise NotFound("no such user")
    return render("auth/user.html", request, {
        "user": profile, "roles": await store.roles_of(services.db, user_id),
        "all_roles": ROLES, "sessions": await store.all_sessions_of(services.db, user_id),
        "consents": await store.consent_history(services.db, user_id),
        "kyc": await kyc.export_user(services.db, user_id),
        "kyc_url": kyc_console.PREFIX, "prefix": PREFIX})


async def change_role(request: web.Request) -> web.Response:
    """Grant or revoke an API role (admins only); it applies at the user's next refresh."""
    services = request.app[SERVICES]
    user_id = path_uuid(request, "id", "user")
    form = await request.post()
    role, action = str(form.get("role", "")), str(form.get("action", ""))
    if await store.profile(services.db, user_id) is None:
        raise NotFound("no such user")
    if role not in ROLES or action not in ("grant", "revoke"):
        flash(request, "Choose a role and whether to grant or revoke it.", "error")
    elif action == "grant":
        await store.grant_role(services.db, user_id, role)
        flash(request, f"Granted {role}; it applies at the user's next token refresh.",
              "success")
    elif await store.revoke_role(services.db, user_id, role):
        flash(request, f"Revoked {role}; it applies at the user's next token refresh.",
              "success")
    else:
        flash(request, f"The user did not have the {role} role.", "error")
    log.info("console: staff %s %s role %s of user %s", staff_id(request), action, role,
             user_id)
    return see_other(f"{PREFIX}/{user_id}")


async def revoke_session(request: web.Request) -> web.Response:
    """Sign one of the user's devices out."""
    rt = service.runtime(request.app[SERVICES])
    user_id = path_uuid(request, "id", "user")
    session_id = path_uuid(request, "session", "session")
    try:
        await service.revoke_session(rt, user_id, session_id)
        flash(request, "The session is revoked; its refresh token no longer works.", "success")
    except NotFound:
        flash(request, "That session was already revoked.", "error")
    return see_other(f"{PREFIX}/{user_id}")


async def _signups(request: web.Request) -> dict[str, Any]:
    db = request.app[SERVICES].db
    now = dt.datetime.now(dt.UTC)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return {"today": await store.signups_since(db, midnight),
            "week": await store.signups_since(db, midnight - dt.timedelta(days=6)),
            "url": PREFIX}


def pages() -> list[ConsolePage]:
    """Every auth console page."""
    return [
        ConsolePage(path="/users", handler=users, name="auth-users", nav_label="Users",
                    nav_order=20),
        ConsolePage(path="/users/{id}", handler=user_detail, name="auth-user"),
        ConsolePage(path="/users/{id}/roles", handler=change_role, name="auth-user-roles",
                    method="POST", role="admin"),
        ConsolePage(path="/users/{id}/sessions/{session}/revoke", handler=revoke_session,
                    name="auth-user-session-revoke", method="POST"),
        *kyc_console.pages(),
    ]


def widgets() -> list[ConsoleWidget]:
    """Every auth dashboard card."""
    return [ConsoleWidget(name="auth-signups", title="Sign-ups", template="auth/signups.html",
                          load=_signups, order=10),
            *kyc_console.widgets()]
