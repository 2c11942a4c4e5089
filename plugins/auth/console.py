"""Console pages of the auth plugin: the user directory (search, detail with roles, sessions,
consent history and KYC) and the sign-ups card. The KYC review queue is
:mod:`propmubi_plugins.auth.kyc.console`."""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from typing import Any

import phonenumbers
from aiohttp import web

from propmubi.console.forms import FormErrors, read_form
from propmubi.console.pages import (
    cursor_of,
    flash,
    parse_cursor,
    path_uuid,
    render,
    see_other,
    staff_actor,
)
from propmubi.errors import NotFound, ValidationFailed
from propmubi.types import ConsolePage, ConsoleWidget
from propmubi_plugins.auth import service, store
from propmubi_plugins.auth.api import ROLES
from propmubi_plugins.auth.kyc import service as kyc
from propmubi_plugins.auth.models import RoleForm
from propmubi_plugins.auth.state import Ctx

log = logging.getLogger(__name__)

PREFIX = "/console/users"
PAGE_SIZE = 25



def _search_terms(region: str, text: str) -> tuple[str | None, str | None]:
    """``(phone prefix, name prefix)`` for what staff typed: a phone number (whole or its
    start) or the start of a name."""
    text = text.strip()[:100]
    if not text:
        return None, None
    compact = text.replace(" ", "").replace("-", "")
    if compact.lstrip("+").isdigit():
        try:
            return service.normalise_phone(compact, region), None
        except ValidationFailed:
            pass
        if compact.startswith("+"):
            return compact, None
        # A national number's start: staff type "98123", the store holds "+9198123...".
        code = phonenumbers.country_code_for_region(region)
        return f"+{code}{compact.lstrip('0')}", None
    return None, text


async def users(request: web.Request, ctx: Ctx) -> web.Response:
    """Users, newest first, searchable by phone number or name."""
    q = request.query.get("q", "")
    phone, name = _search_terms(ctx.settings.default_region, q)
    rows = await store.search_users(ctx.db, phone_prefix=phone, name_prefix=name,
                                    before=parse_cursor(request.query.get("cursor")),
                                    limit=PAGE_SIZE + 1)
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    next_cursor = cursor_of(rows[-1]["created_at"], rows[-1]["id"]) if more else None
    return render("auth/users.html", request, {"rows": rows, "q": q, "next_cursor": next_cursor,
                                               "prefix": PREFIX})


async def _user_page(request: web.Request, ctx: Ctx, user_id: uuid.UUID,
                     errors: FormErrors | None = None) -> web.Response:
    """The user page; with ``errors``, a 422 showing them next to the role form's fields."""
    profile = await store.profile(ctx.db, user_id)
    if profile is None:
        raise NotFound("no such user")
    return render("auth/user.html", request, {
        "user": profile, "roles": await store.roles_of(ctx.db, user_id),
        "all_roles": ROLES, "sessions": await store.all_sessions_of(ctx.db, user_id),
        "consents": await store.consent_history(ctx.db, user_id),
        "kyc": await kyc.export_user(ctx, staff_actor(request), user_id),
        "kyc_url": str(request.app.router["auth-kyc-queue"].url_for()), "prefix": PREFIX,
        "errors": errors or FormErrors()}, status=422 if errors else 200)


async def user_detail(request: web.Request, ctx: Ctx) -> web.Response:
    """One user: profile, roles, sessions, consent history and KYC records."""
    return await _user_page(request, ctx, path_uuid(request, "id", "user"))


async def change_role(request: web.Request, ctx: Ctx) -> web.Response:
    """Grant or revoke an API role (admins only); it applies at the user's next refresh."""
    user_id = path_uuid(request, "id", "user")
    form, errors = await read_form(request, RoleForm)
    if form is None:
        return await _user_page(request, ctx, user_id, errors)
    actor = staff_actor(request)
    if form.action == "grant":
        await service.grant_role(ctx, actor, user_id, form.role)
        flash(request, f"Granted {form.role}; it applies at the user's next token refresh.",
              "success")
    elif await service.revoke_role(ctx, actor, user_id, form.role):
        flash(request, f"Revoked {form.role}; it applies at the user's next token refresh.",
              "success")
    else:
        flash(request, f"The user did not have the {form.role} role.", "error")
    log.info("console: staff %s %s role %s of user %s", actor.id, form.action, form.role,
             user_id)
    return see_other(f"{PREFIX}/{user_id}")


async def revoke_session(request: web.Request, ctx: Ctx) -> web.Response:
    """Sign one of the user's devices out."""
    user_id = path_uuid(request, "id", "user")
    session_id = path_uuid(request, "session", "session")
    try:
        await service.revoke_session(ctx, staff_actor(request), user_id, session_id)
        flash(request, "The session is revoked; its refresh token no longer works.", "success")
    except NotFound:
        flash(request, "That session was already revoked.", "error")
    return see_other(f"{PREFIX}/{user_id}")


async def _signups(request: web.Request, ctx: Ctx) -> dict[str, Any]:
    midnight = ctx.clock.now().replace(hour=0, minute=0, second=0, microsecond=0)
    return {"today": await store.signups_since(ctx.db, midnight),
            "week": await store.signups_since(ctx.db, midnight - dt.timedelta(days=6)),
            "url": PREFIX}


def pages() -> list[ConsolePage]:
    """The user directory's pages."""
    return [
        ConsolePage(path="/users", handler=users, name="auth-users", nav_label="Users",
                    nav_order=20),
        ConsolePage(path="/users/{id}", handler=user_detail, name="auth-user"),
        ConsolePage(path="/users/{id}/roles", handler=change_role, name="auth-user-roles",
                    method="POST", role="admin"),
        ConsolePage(path="/users/{id}/sessions/{session}/revoke", handler=revoke_session,
                    name="auth-user-session-revoke", method="POST"),
    ]


def widgets() -> list[ConsoleWidget]:
    """The sign-ups card."""
    return [ConsoleWidget(name="auth-signups", title="Sign-ups", template="auth/signups.html",
                          load=_signups, order=10)]
