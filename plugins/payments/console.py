"""The payments plugin's console pages (mounted under ``/console``).

- ``/payments``: intents, newest first, by status; a payment's page shows its booking,
  buyer, provider events (as received, with what processing did) and refunds, with the
  admin's refund form and, for sandbox intents outside production, buttons that complete
  the payment or its refunds as the sandbox provider would.
- ``/payments/refunds``: refunds by status (failed ones need staff).
- ``/payments/reconciliation``: the settlement lines of a day, problems first.
"""

from __future__ import annotations

import datetime as dt
import time
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
)
from propmubi.errors import BadRequest, FieldError, NotFound, ProblemError
from propmubi.types import ConsolePage, ConsoleWidget
from propmubi.web.appkeys import CONSOLE_PREFIX
from propmubi_plugins.payments import reconcile, sandbox_flow, service, store
from propmubi_plugins.payments.models import MANUAL_REASONS, RefundIn
from propmubi_plugins.payments.state import Ctx

BASE = CONSOLE_PREFIX + "/payments"
INTENT_STATUSES = ("created", "attempted", "authorized", "captured", "failed")
REFUND_STATUSES = ("pending", "processed", "failed")


def _status(request: web.Request, allowed: tuple[str, ...]) -> str | None:
    status = request.query.get("status") or None
    if status is not None and status not in allowed:
        raise BadRequest(f"unknown status {status!r}")
    return status


async def _page(request: web.Request, ctx: Ctx, fetch: Any, allowed: tuple[str, ...]
                ) -> tuple[list[dict[str, Any]], str | None, str | None]:
    status = _status(request, allowed)
    rows = await fetch(ctx.db, status, parse_cursor(request.query.get("cursor")),
                       ctx.settings.page_size + 1)
    more = len(rows) > ctx.settings.page_size
    rows = rows[:ctx.settings.page_size]
    return rows, (cursor_of(rows[-1]["created_at"], rows[-1]["id"]) if more else None), status


async def intents(request: web.Request, ctx: Ctx) -> web.Response:
    """Payment intents, newest first, by status."""
    rows, next_cursor, status = await _page(request, ctx, store.intents_page, INTENT_STATUSES)
    names = await actor_names(request.app, [f"user:{r['buyer_id']}" for r in rows])
    return render("payments/intents.html", request, {
        "rows": rows, "names": names, "status": status, "statuses": INTENT_STATUSES,
        "next_cursor": next_cursor, "page_url": BASE, "money": exact})


async def intent(request: web.Request, ctx: Ctx, *, errors: FormErrors | None = None,
                 typed: Any = None, status: int = 200) -> web.Response:
    """One payment: booking, buyer, provider events, refunds, the refund form."""
    intent_id = path_uuid(request, "id", "payment")
    detail = await service.intent_detail(ctx, intent_id)
    if detail is None:
        raise NotFound("no such payment")
    row = detail["intent"]
    refs = [f"user:{row['buyer_id']}", *(r["requested_by"] for r in detail["refunds"])]
    return render("payments/intent.html", request, {
        **detail, "names": await actor_names(request.app, refs), "money": exact,
        "page_url": f"{BASE}/{intent_id}", "reasons": MANUAL_REASONS,
        "left": row["captured_minor"] - row["refunded_minor"],
        "sandbox": sandbox_flow.available(ctx, row), "form_key": str(uuid.uuid4()),
        "bookings_url": CONSOLE_PREFIX + "/bookings",
        "errors": errors or FormErrors(), "typed": typed or {}}, status=status)


async def refund(request: web.Request, ctx: Ctx) -> web.Response:
    """The admin's refund form: a refund, or the page again with the refused fields (422)."""
    intent_id = path_uuid(request, "id", "payment")
    form, errors = await read_form(request, RefundIn)
    if form is None:
        return await intent(request, ctx, errors=errors, typed=await request.post(),
                            status=422)
    key = str((await request.post()).get("key", ""))[:100]
    try:
        row = await service.request_refund(ctx, staff_actor(request), intent_id, form,
                                           key or str(uuid.uuid4()))
    except ProblemError as exc:
        if exc.status != 422:
            raise
        errors = FormErrors([FieldError("form", "amount_minor", exc.detail or exc.title)])
        return await intent(request, ctx, errors=errors, typed=await request.post(),
                            status=422)
    flash(request, f"Refund of {exact(row.amount_minor, row.currency)} requested.", "success")
    return see_other(f"{BASE}/{intent_id}")


async def sandbox(request: web.Request, ctx: Ctx) -> web.Response:
    """Complete a sandbox payment (captured / failed) or its pending refunds."""
    intent_id = path_uuid(request, "id", "payment")
    outcome = str((await request.post()).get("outcome", ""))
    done = await sandbox_flow.complete(ctx, intent_id, outcome, time.time())
    flash(request, done, "success")
    return see_other(f"{BASE}/{intent_id}")


async def refunds(request: web.Request, ctx: Ctx) -> web.Response:
    """Refunds, newest first, by status."""
    rows, next_cursor, status = await _page(request, ctx, store.refunds_page, REFUND_STATUSES)
    names = await actor_names(request.app, [r["requested_by"] for r in rows])
    return render("payments/refunds.html", request, {
        "rows": rows, "names": names, "status": status, "statuses": REFUND_STATUSES,
        "next_cursor": next_cursor, "page_url": f"{BASE}/refunds", "money": exact,
        "base": BASE})


async def reconciliation(request: web.Request, ctx: Ctx) -> web.Response:
    """Settlement lines of a day (or the latest), problems first."""
    day = None
    if request.query.get("day"):
        try:
            day = dt.date.fromisoformat(request.query["day"])
        except ValueError:
            raise BadRequest("the day is not a date (YYYY-MM-DD)") from None
    rows = await store.settlement_lines(ctx.db, day, request.query.get("problems") == "1", 500)
    return render("payments/reconciliation.html", request, {
        "rows": rows, "day": day, "money": exact, "base": BASE,
        "problems": sum(r["status"] != "matched" for r in rows),
        "stuck_minutes": ctx.settings.stuck_after_minutes, "poll_every": reconcile.POLL_FOR})


async def today(request: web.Request, ctx: Ctx) -> dict[str, Any]:
    """The dashboard card: payments captured and refunds requested today (UTC)."""
    start = ctx.clock.now().replace(hour=0, minute=0, second=0, microsecond=0)
    row = await ctx.db.fetchrow(
        "SELECT (SELECT count(*) FROM payments_intents WHERE status = 'captured'"
        "        AND updated_at >= %s) AS captured,"
        " (SELECT coalesce(sum(captured_minor), 0)::bigint FROM payments_intents"
        "        WHERE status = 'captured' AND updated_at >= %s) AS captured_minor,"
        " (SELECT count(*) FROM payments_refunds WHERE created_at >= %s) AS refunds,"
        " (SELECT count(*) FROM payments_refunds WHERE status = 'failed') AS failed_refunds",
        (start, start, start))
    return {**(row or {}), "money": exact, "base": BASE}


def pages() -> list[ConsolePage]:
    """The payments pages; refunds and the sandbox are POST forms."""
    return [
        ConsolePage(path="/payments", handler=intents, name="payments-intents",
                    nav_label="Payments", nav_order=60),
        ConsolePage(path="/payments/refunds", handler=refunds, name="payments-refunds",
                    nav_label="Refunds", nav_order=61),
        ConsolePage(path="/payments/reconciliation", handler=reconciliation,
                    name="payments-reconciliation", nav_label="Reconciliation", nav_order=62),
        ConsolePage(path="/payments/{id}", handler=intent, name="payments-intent"),
        ConsolePage(path="/payments/{id}/refunds", handler=refund, name="payments-refund",
                    method="POST", role="admin"),
        ConsolePage(path="/payments/{id}/sandbox", handler=sandbox, name="payments-sandbox",
                    method="POST"),
    ]


def widgets() -> list[ConsoleWidget]:
    """Today's payments card."""
    return [ConsoleWidget(name="payments-today", title="Payments today",
                          template="payments/widget.html", load=today, order=60)]
