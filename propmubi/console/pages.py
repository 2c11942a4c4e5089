"""Helpers for plugins' console page handlers: rendering, redirects, flashes, path ids and
keyset cursors. One way to do each, so every console page behaves alike."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from propmubi import cursors
from propmubi.actors import Actor
from propmubi.console.middleware import see_other
from propmubi.console.sessions import SESSION
from propmubi.errors import BadRequest, NotFound
from propmubi.web.appkeys import CONSOLE_USER

__all__ = ["cursor_of", "flash", "parse_cursor", "path_uuid", "render", "see_other",
           "staff_actor", "staff_id"]


#: What a console list answers (400) to a page link that is not one of its own.
BROKEN_LINK = "the page link is not valid; start from the first page"


def render(name: str, request: web.Request, context: dict[str, Any], status: int = 200
           ) -> web.Response:
    """Render a console template; never cached (pages carry CSRF tokens and personal data)."""
    response = aiohttp_jinja2.render_template(name, request, context, status=status)
    response.headers["Cache-Control"] = "no-store"
    return response


def flash(request: web.Request, message: str, category: str = "info") -> None:
    """Show ``message`` once on the next page (``info``, ``success`` or ``error``)."""
    session = request.get(SESSION)
    if session is not None:
        session.flash(message, category)


def path_uuid(request: web.Request, key: str, what: str = "record") -> uuid.UUID:
    """The UUID in the path's ``{key}``; a malformed one is a 404 like an unknown one."""
    try:
        return uuid.UUID(request.match_info[key])
    except ValueError:
        raise NotFound(f"no such {what}") from None


def staff_id(request: web.Request) -> uuid.UUID:
    """The signed-in staff account's id."""
    return uuid.UUID(str(request[CONSOLE_USER]["id"]))


def staff_actor(request: web.Request) -> Actor:
    """The signed-in staff member as the actor of what they do (``staff:<id>``, their roles)."""
    return Actor.staff(staff_id(request), request[CONSOLE_USER].get("roles", ()))


def cursor_of(at: dt.datetime, ident: uuid.UUID) -> str:
    """A keyset position ``(timestamp, id)`` as a page link's ``cursor``
    (:func:`propmubi.cursors.pack_position`)."""
    return cursors.pack_position(at, ident)


def parse_cursor(text: str | None) -> tuple[dt.datetime, uuid.UUID] | None:
    """The keyset position of a ``cursor`` (None for the first page); 400 when mangled."""
    if not text:
        return None
    try:
        return cursors.unpack_position(text)  # in UTC, or ValueError
    except ValueError:
        raise BadRequest(BROKEN_LINK) from None
