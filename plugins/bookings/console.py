"""Console pages of bookings: the list (by status), a booking with its history and the cancel
form (admins), holds about to expire; and the "Bookings today" dashboard card.

Pages show what staff recognise: the project's name, the unit's code, the buyer's name
(``actor_names``) and amounts in rupees, never raw ids. The cancel form posts and redirects
(POST-redirect-GET), works without JavaScript, and goes through the API's service as
``Actor.staff`` (so the same rules, history and events); a refused form is the page again with
status 422 and each message next to its field.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from aiohttp import web

from propmubi.console.formatting import exact
from propmubi.console.forms import FormErrors, read_form
from propmubi.console.names import actor_names
from propmubi.console.pages import (
    cursor_of,
    flash,
    parse_cursor,
    path_uuid,
    render,
    see_other,
    staff_actor,
    staff_id,
)
from propmubi.errors import Conflict, Forbidden, NotFound
from propmubi.types import ConsolePage, ConsoleWidget
from propmubi_plugins.bookings import service, settlement, store
from propmubi_plugins.bookings.models import CANCEL_REASONS, NOTE_MAX, STATUSES, CancelForm
from propmubi_plugins.bookings.state import Ctx
from propmubi_plugins.catalog import api as catalog

PREFIX = "/console/bookings"
PAGE_SIZE = 25
#: How far ahead the "about to expire" page looks.
EXPIRING_WINDOW = dt.timedelta(minutes=5)
EXPIRING_MAX = 200

STATUS_LABELS = {"held": "Held", "payment_pending": "Payment pending", "paid": "Paid",
                 "confirmed": "Confirmed", "expired": "Expired", "released": "Released",
                 "cancelled": "Cancelled", "refunded": "Refunded"}
REASON_LABELS = {"buyer_request": "The buyer asked", "financing_refused": "Loan refused",
                 "changed_mind": "The buyer changed their mind",
                 "duplicate_booking": "A duplicate booking",
                 "builder_request": "The builder asked", "payment_dispute": "Payment dispute",
                 "other": "Another reason"}


_HELPERS = {"money": exact, "status_labels": STATUS_LABELS,
            "reason_labels": REASON_LABELS, "statuses": STATUSES, "prefix": PREFIX}


def _page(name: str, request: web.Request, context: dict[str, Any], status: int = 200
          ) -> web.Response:
    return render(name, request, {**_HELPERS, **context}, status=status)


async def _named(request: web.Request, ctx: Ctx, rows: list[dict[str, Any]]
                 ) -> list[dict[str, Any]]:
    """Rows with their project's name, unit's code and buyer's name."""
    projects: dict[uuid.UUID, str] = {}
    for project_id in {r["project_id"] for r in rows}:
        project = await catalog.project(ctx.db, project_id)
        projects[project_id] = project["name"] if project else "deleted project"
    names = await actor_names(request.app, [f"user:{r['buyer_id']}" for r in rows])
    out = []
    for row in rows:
        unit = await catalog.unit(ctx.db, row["unit_id"])
        out.append({**row, "project_name": projects[row["project_id"]],
                    "unit_code": unit["code"] if unit else "deleted unit",
                    "buyer_name": names[f"user:{row['buyer_id']}"]})
    return out


async def bookings_page(request: web.Request, ctx: Ctx) -> web.Response:
    """Bookings, newest first, optionally of one status (keyset pages)."""
    status = request.query.get("status") or None
    if status not in (None, *STATUSES):
        status = None
    rows = await service.bookings_rows(ctx, staff_actor(request), status=status,
                                       after=parse_cursor(request.query.get("cursor")),
                                       limit=PAGE_SIZE + 1, everyone=True)
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    return _page("bookings/list.html", request, {
        "rows": await _named(request, ctx, rows), "status": status or "",
        "next_cursor": cursor_of(rows[-1]["held_at"], rows[-1]["id"]) if more else None})


async def expiring_page(request: web.Request, ctx: Ctx) -> web.Response:
    """Holds that expire in the next five minutes, soonest first."""
    now = ctx.clock.now()
    rows = await store.expiring(ctx.db, now, now + EXPIRING_WINDOW, EXPIRING_MAX)
    return _page("bookings/expiring.html", request,
                 {"rows": await _named(request, ctx, rows), "now": now})


async def _detail(request: web.Request, ctx: Ctx, booking_id: uuid.UUID,
                  errors: FormErrors | None = None, typed: dict[str, str] | None = None,
                  status: int = 200) -> web.Response:
    actor = staff_actor(request)
    row = await service.booking(ctx, actor, booking_id)  # expired first if stale
    (named,) = await _named(request, ctx, [row])
    history = await store.history(ctx.db, booking_id)
    names = await actor_names(request.app, [h["actor"] for h in history])
    return _page("bookings/detail.html", request, {
        "booking": named, "history": history, "actor_names": names,
        "may_cancel": "admin" in actor.roles and row["status"] == "confirmed",
        "reasons": [(code, REASON_LABELS[code]) for code in CANCEL_REASONS],
        "note_max": NOTE_MAX, "errors": errors or FormErrors(), "typed": typed or {}},
        status=status)


async def booking_page(request: web.Request, ctx: Ctx) -> web.Response:
    """One booking: unit, project, buyer, amounts, its history by name, and (admins, for a
    confirmed booking) the cancel form."""
    return await _detail(request, ctx, path_uuid(request, "id", "booking"))


async def cancel(request: web.Request, ctx: Ctx) -> web.Response:
    """Cancel a confirmed booking (admins): a reason is required; the fee and refund follow
    the booking's terms."""
    booking_id = path_uuid(request, "id", "booking")
    form, errors = await read_form(request, CancelForm)
    if form is None:
        posted = await request.post()
        typed = {k: str(posted.get(k, "")).strip() for k in ("reason_code", "note")}
        return await _detail(request, ctx, booking_id, errors=errors, typed=typed, status=422)
    try:
        row = await settlement.cancel(ctx, staff_actor(request), booking_id, form.to_input())
    except (Conflict, Forbidden) as exc:
        flash(request, f"Nothing changed: {exc.detail}.", "error")
        return see_other(f"{PREFIX}/{booking_id}")
    except NotFound:
        raise NotFound("no such booking") from None
    ctx.log.info("console: staff %s cancelled booking %s", staff_id(request), booking_id)
    flash(request, f"Booking cancelled: {exact(row.refund_minor, row.currency)} to refund, "
                   f"fee {exact(row.fee_minor, row.currency)}.", "success")
    return see_other(f"{PREFIX}/{booking_id}")


def pages() -> list[ConsolePage]:
    """Every bookings console page (staff; cancelling needs the admin role)."""
    return [
        ConsolePage(path="/bookings", handler=bookings_page, name="bookings-list",
                    nav_label="Bookings", nav_order=50),
        ConsolePage(path="/bookings/expiring", handler=expiring_page,
                    name="bookings-expiring"),
        ConsolePage(path="/bookings/{id}", handler=booking_page, name="bookings-detail"),
        ConsolePage(path="/bookings/{id}/cancel", handler=cancel, name="bookings-cancel",
                    method="POST", role="admin"),
    ]


async def _today(request: web.Request, ctx: Ctx) -> dict[str, Any]:
    now = ctx.clock.now()
    counts = await store.counts_since(ctx.db, now.replace(hour=0, minute=0, second=0,
                                                          microsecond=0))
    return {"held": counts.get("held", 0), "confirmed": counts.get("confirmed", 0),
            "cancelled": counts.get("cancelled", 0), "url": PREFIX,
            "expiring_url": f"{PREFIX}/expiring"}


def widgets() -> list[ConsoleWidget]:
    """The dashboard card."""
    return [ConsoleWidget(name="bookings-today", title="Bookings today (UTC)",
                          template="bookings/widget_today.html", load=_today, order=50)]
