"""Console pages of the KYC review queue (queue, detail, approve, reject, reveal) and its
dashboard cards. Forms post and redirect (POST-redirect-GET); everything works without
JavaScript."""

from __future__ import annotations

import datetime as dt
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
from propmubi.errors import Conflict, ValidationFailed
from propmubi.types import ConsolePage, ConsoleWidget
from propmubi.web.appkeys import CONFIG, SERVICES
from propmubi.web.ratelimit import client_ip
from propmubi_plugins.auth import kyc, kyc_store

PREFIX = "/console/kyc"
PAGE_SIZE = 25


async def queue(request: web.Request) -> web.Response:
    """Pending KYC records, oldest submission first (keyset pagination)."""
    db = request.app[SERVICES].db
    rows = await kyc_store.queue(db, parse_cursor(request.query.get("after")), PAGE_SIZE + 1)
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    next_cursor = (cursor_of(rows[-1]['submitted_at'], rows[-1]['id'])
                   if more else None)
    return render("auth/kyc_queue.html", request, {
        "rows": rows, "next_cursor": next_cursor, "first_page": "after" not in request.query,
        "pending": await kyc_store.pending_count(db)})


async def detail(request: web.Request, errors: dict[str, str] | None = None,
                 status: int = 200) -> web.Response:
    """One record: masked numbers, history, decisions and reveals."""
    record_id = path_uuid(request, "id", "KYC record")
    view = await kyc.detail(request.app[SERVICES].db, record_id)
    return render("auth/kyc_detail.html", request,
                   {"record": view, "errors": errors or {}, "kinds_label": _KIND_LABELS},
                   status=status)


_KIND_LABELS = {"pan": "PAN", "aadhaar": "Aadhaar", "rera": "RERA registration",
                "licence": "Licence"}


def _field_errors(exc: ValidationFailed) -> dict[str, str]:
    return {e["field"]: e["message"] for e in exc.extra.get("errors", [])}


async def _decide(request: web.Request, verified: bool) -> web.Response:
    record_id = path_uuid(request, "id", "KYC record")
    form = await request.post()
    reason = str(form.get("reason", ""))[:1000]
    try:
        await kyc.decide(request.app[SERVICES], record_id, verified, reason,
                         staff_id(request))
    except ValidationFailed as exc:
        # The form is shown again with the message next to the field.
        return await detail(request, errors=_field_errors(exc), status=422)
    except Conflict as exc:
        flash(request, f"Nothing changed: {exc.detail}.", "error")
        return see_other(f"{PREFIX}/{record_id}")
    flash(request, "KYC verified." if verified else "KYC rejected.", "success")
    return see_other(f"{PREFIX}/{record_id}")


async def approve(request: web.Request) -> web.Response:
    """Verify a pending record."""
    return await _decide(request, True)


async def reject(request: web.Request) -> web.Response:
    """Reject a pending record (the reason is required and shown to the applicant)."""
    return await _decide(request, False)


async def reveal(request: web.Request) -> web.Response:
    """Audit a reveal (reason required), then show the number on its own page."""
    record_id = path_uuid(request, "id", "KYC record")
    form = await request.post()
    kind = str(form.get("kind", ""))
    services = request.app[SERVICES]
    ip = client_ip(request, request.app[CONFIG].http.trust_forwarded)
    try:
        reveal_id = await kyc.reveal(services, record_id, kind,
                                     str(form.get("reason", ""))[:500], staff_id(request), ip)
    except ValidationFailed as exc:
        errors = {f"reveal_{kind}" if f == "reason" else f: m
                  for f, m in _field_errors(exc).items()}
        return await detail(request, errors=errors, status=422)
    return see_other(f"{PREFIX}/reveals/{reveal_id}")


async def reveal_page(request: web.Request) -> web.Response:
    """The full number of a reveal, only to its staff member, only for a few minutes."""
    reveal_id = path_uuid(request, "reveal_id", "reveal")
    audit, number = await kyc.revealed(request.app[SERVICES], reveal_id, staff_id(request))
    view = await kyc.detail(request.app[SERVICES].db, audit["record_id"])
    response = render("auth/kyc_reveal.html", request, {
        "record": view, "audit": audit, "number": number, "kinds_label": _KIND_LABELS,
        "minutes": int(kyc.REVEAL_TTL.total_seconds() // 60)})
    response.headers["Pragma"] = "no-cache"
    return response


def pages() -> list[ConsolePage]:
    """The KYC queue's pages."""
    return [
        ConsolePage(path="/kyc", handler=queue, name="auth-kyc-queue", nav_label="KYC",
                    nav_order=200),
        ConsolePage(path="/kyc/reveals/{reveal_id}", handler=reveal_page,
                    name="auth-kyc-reveal-page"),
        ConsolePage(path="/kyc/{id}", handler=detail, name="auth-kyc-detail"),
        ConsolePage(path="/kyc/{id}/approve", handler=approve, name="auth-kyc-approve",
                    method="POST"),
        ConsolePage(path="/kyc/{id}/reject", handler=reject, name="auth-kyc-reject",
                    method="POST"),
        ConsolePage(path="/kyc/{id}/reveal", handler=reveal, name="auth-kyc-reveal",
                    method="POST"),
    ]


async def _pending(request: web.Request) -> dict[str, Any]:
    return {"count": await kyc_store.pending_count(request.app[SERVICES].db), "url": PREFIX}


async def _decisions_today(request: web.Request) -> dict[str, Any]:
    today = dt.datetime.now(dt.UTC).date()
    counts = await kyc_store.decisions_on(request.app[SERVICES].db, today)
    return {"day": today.isoformat(), **counts}


def widgets() -> list[ConsoleWidget]:
    """The KYC dashboard cards."""
    return [
        ConsoleWidget(name="auth-kyc-pending", title="Pending KYC",
                      template="auth/kyc_widget_pending.html", load=_pending, order=20),
        ConsoleWidget(name="auth-kyc-decisions", title="KYC decisions today",
                      template="auth/kyc_widget_decisions.html", load=_decisions_today,
                      order=21),
    ]
