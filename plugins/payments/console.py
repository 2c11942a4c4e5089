"""The plugin's staff console pages (``propmubi_console_pages``), mounted under ``/console``.

The console shell signs staff in and checks each page's role and every form's CSRF token;
a page handler receives the plugin's context when it names ``ctx``. Forms are plain HTML
posts that work without JavaScript: read one with ``read_form`` into a models.py class; on
errors render the page again with status 422 and ``errors`` (the template puts each message
next to its field) and what was typed; on success flash a message and redirect
(POST-redirect-GET). Changes go through the service as ``Actor.staff(...)``, so the console
keeps the API's rules and publishes the same events.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from propmubi.actors import Actor
from propmubi.console.forms import FormErrors, read_form
from propmubi.console.pages import flash, render, see_other, staff_id
from propmubi.types import ConsolePage
from propmubi.web.appkeys import CONSOLE_PREFIX, CONSOLE_USER
from propmubi_plugins.payments import service
from propmubi_plugins.payments.models import ItemIn
from propmubi_plugins.payments.state import Ctx

#: The page's path (ConsolePage paths are mounted under /console), and its address.
PATH = "/payments/items"
PAGE = CONSOLE_PREFIX + PATH
#: Activity lines shown under the list.
ACTIVITY_SHOWN = 10


def _staff(request: web.Request) -> Actor:
    """The signed-in staff member, as the service's actor."""
    return Actor.staff(staff_id(request), request[CONSOLE_USER].get("roles", ("staff",)))


async def items_page(request: web.Request, ctx: Ctx) -> web.Response:
    """Items, newest first, with the create form and the activity log."""
    return await _render(request, ctx)


async def create_item(request: web.Request, ctx: Ctx) -> web.Response:
    """The create form: a new item, or the page again with the refused fields (422)."""
    form, errors = await read_form(request, ItemIn)
    if form is None:
        return await _render(request, ctx, typed=await request.post(), errors=errors,
                             status=422)
    item = await service.create_item(ctx, _staff(request), form)
    flash(request, f"Created “{item.title}”.", "success")
    return see_other(PAGE)


async def _render(request: web.Request, ctx: Ctx, *, typed: Mapping[str, Any] | None = None,
                  errors: FormErrors | None = None, status: int = 200) -> web.Response:
    actor = _staff(request)
    page = await service.list_items(ctx, actor, request.query.get("cursor"), None)
    return render("payments/items.html", request, {
        "page_url": PAGE, "items": page.items, "next_cursor": page.next_cursor,
        "activity": await service.recent_activity(ctx, actor, ACTIVITY_SHOWN),
        "typed": typed or {}, "errors": errors or FormErrors(),
        "started_at": ctx.state.started_at,
    }, status=status)


def pages() -> list[ConsolePage]:
    """The items page and its form's target; the page has a menu entry."""
    return [
        ConsolePage(path=PATH, handler=items_page, name="payments-items",
                    nav_label="Payments"),
        ConsolePage(path=PATH, handler=create_item, name="payments-create",
                    method="POST"),
    ]
