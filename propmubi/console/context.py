"""What every console template can use: the menu, the signed-in user, flashes, CSRF fields.

The session middleware puts these in the request's template context, where aiohttp-jinja2
merges them into every render; the values that cost something (the menu, the flashes) are
callables the layout calls, so requests that render nothing pay nothing, and flash messages are
consumed only by a page that shows them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import attrs
from aiohttp import web
from markupsafe import Markup, escape

from propmubi.console.sessions import CSRF_FIELD, SESSION
from propmubi.types import ConsolePage
from propmubi.web.appkeys import CONSOLE_PAGES, CONSOLE_PREFIX, CONSOLE_USER

__all__ = ["NavEntry", "may_see", "nav_entries", "template_context"]



@attrs.frozen
class NavEntry:
    """One menu link."""

    label: str
    url: str
    active: bool = False


def may_see(page: ConsolePage, roles: Iterable[str]) -> bool:
    """Whether a user with ``roles`` may open ``page`` (admins may open everything)."""
    held = set(roles)
    return page.public or page.role in held or "admin" in held


def nav_entries(pages: Sequence[ConsolePage], roles: Iterable[str], current: str
                ) -> list[NavEntry]:
    """The menu for a user: every page with a ``nav_label`` they may see, by ``nav_order``."""
    roles = list(roles)
    entries = []
    for page in sorted((p for p in pages if p.nav_label and p.method == "GET"),
                       key=lambda p: (p.nav_order, p.nav_label)):
        # `not page.nav_label` never holds here (filtered above); it narrows the type.
        if not page.nav_label or page.public or not may_see(page, roles):
            continue
        url = CONSOLE_PREFIX + page.path
        active = current == url or (page.path not in ("", "/") and current.startswith(url + "/"))
        entries.append(NavEntry(label=page.nav_label, url=url, active=active))
    return entries


def template_context(request: web.Request) -> dict[str, Any]:
    """The template variables of one console request."""

    def nav() -> list[NavEntry]:
        user = request.get(CONSOLE_USER)
        if user is None:
            return []
        pages: list[ConsolePage] = request.app.get(CONSOLE_PAGES, [])
        return nav_entries(pages, user.get("roles", ()), request.path)

    def csrf_token() -> str:
        session = request.get(SESSION)
        return session.csrf if session is not None else ""

    def csrf_field() -> Markup:
        token = csrf_token()
        if not token:
            return Markup("")
        return Markup('<input type="hidden" name="{}" value="{}">').format(CSRF_FIELD,
                                                                            escape(token))

    def flashes() -> list[tuple[str, str]]:
        session = request.get(SESSION)
        return session.pop_flashes() if session is not None else []

    def current_user() -> dict[str, Any] | None:
        # Read when rendering: a middleware inside this one may set the user.
        return request.get(CONSOLE_USER)

    return {"current_user": current_user, "nav": nav, "csrf_token": csrf_token,
            "csrf_field": csrf_field, "flashes": flashes}
