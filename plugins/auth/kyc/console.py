"""Console pages of the KYC review queue (queue, detail, approve, reject, reveal) and its
dashboard cards. Forms post and redirect (POST-redirect-GET); a refused form is shown again
(422) with the message next to its field; everything works without JavaScript."""

from __future__ import annotations

from typing import Any

from aiohttp import web

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
from propmubi.errors import Conflict, FieldError, ValidationFailed
from propmubi.types import ConsolePage, ConsoleWidget
from propmubi.web.appkeys import CONFIG
from propmubi.web.ratelimit import client_ip
from propmubi_plugins.auth.kyc import service, store
from propmubi_plugins.auth.kyc.models import (
    PUBLIC_NUMBER_KINDS,
    Decision,
    RejectForm,
    RevealForm,
)
from propmubi_plugins.auth.state import Ctx

PREFIX = "/console/kyc"
PAGE_SIZE = 25
_KIND_LABELS = {"pan": "PAN", "aadhaar": "Aadhaar", "rera": "RERA registration",
                "licence": "Licence"}


async def queue(request: web.Request, ctx: Ctx) -> web.Response:
    """Pending KYC records, oldest submission first (keyset pagination)."""
    rows = await store.queue(ctx.db, parse_cursor(request.query.get("after")), PAGE_SIZE + 1)
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    next_cursor = cursor_of(rows[-1]["submitted_at"], rows[-1]["id"]) if more else None
    return render("auth/kyc_queue.html", request, {
        "rows": rows, "next_cursor": next_cursor, "first_page": "after" not in request.query,
        "pending": await store.pending_count(ctx.db)})


async def _detail(request: web.Request, ctx: Ctx, errors: FormErrors | None = None,
                  refused: str | None = None, reveal_kind: str | None = None) -> web.Response:
    """The record page; with ``errors``, a 422 showing them next to the fields of the
    ``refused`` form (``reject``, or ``reveal`` of the number ``reveal_kind``)."""
    record_id = path_uuid(request, "id", "KYC record")
    view = await service.detail(ctx, staff_actor(request), record_id)
    account = f"user:{view['user_id']}"
    names = await actor_names(request.app, [account])
    return render("auth/kyc_detail.html", request, {
        "record": view, "account": names[account], "errors": errors or FormErrors(),
        "refused": refused,
        "reveal_kind": reveal_kind, "kinds_label": _KIND_LABELS,
        "public_kinds": PUBLIC_NUMBER_KINDS}, status=422 if errors else 200)


async def detail(request: web.Request, ctx: Ctx) -> web.Response:
    """One record: masked numbers, history, decisions and reveals."""
    return await _detail(request, ctx)


def _form_errors(exc: ValidationFailed) -> FormErrors:
    """The service's field errors, as the form's."""
    return FormErrors(FieldError("form", e["field"], e["message"])
                      for e in exc.extra.get("errors", []))


async def _decide(request: web.Request, ctx: Ctx, decision: Decision) -> web.Response:
    record_id = path_uuid(request, "id", "KYC record")
    try:
        await service.decide(ctx, staff_actor(request), record_id, decision)
    except ValidationFailed as exc:
        return await _detail(request, ctx, _form_errors(exc), "reject")
    except Conflict as exc:
        flash(request, f"Nothing changed: {exc.detail}.", "error")
        return see_other(f"{PREFIX}/{record_id}")
    flash(request, "KYC verified." if decision.verified else "KYC rejected.", "success")
    return see_other(f"{PREFIX}/{record_id}")


async def approve(request: web.Request, ctx: Ctx) -> web.Response:
    """Verify a pending record."""
    return await _decide(request, ctx, Decision(verified=True))


async def reject(request: web.Request, ctx: Ctx) -> web.Response:
    """Reject a pending record (the reason is required and shown to the applicant)."""
    form, errors = await read_form(request, RejectForm)
    if form is None:
        return await _detail(request, ctx, errors, "reject")
    return await _decide(request, ctx, Decision(verified=False, reason=form.reason))


async def reveal(request: web.Request, ctx: Ctx) -> web.Response:
    """Audit a reveal (reason required), then show the number on its own page."""
    record_id = path_uuid(request, "id", "KYC record")
    form, errors = await read_form(request, RevealForm)
    kind = str((await request.post()).get("kind", ""))
    if form is None:
        return await _detail(request, ctx, errors, "reveal", kind)
    ip = client_ip(request, request.app[CONFIG].http.trust_forwarded)
    try:
        reveal_id = await service.reveal(ctx, staff_actor(request), record_id, form, ip=ip)
    except ValidationFailed as exc:
        return await _detail(request, ctx, _form_errors(exc), "reveal", kind)
    return see_other(f"{PREFIX}/reveals/{reveal_id}")


async def reveal_page(request: web.Request, ctx: Ctx) -> web.Response:
    """The full number of a reveal, only to its staff member, only for a few minutes."""
    reveal_id = path_uuid(request, "reveal_id", "reveal")
    actor = staff_actor(request)
    audit, number = await service.revealed(ctx, actor, reveal_id)
    view = await service.detail(ctx, actor, audit["record_id"])
    response = render("auth/kyc_reveal.html", request, {
        "record": view, "audit": audit, "number": number, "kinds_label": _KIND_LABELS,
        "minutes": int(service.REVEAL_TTL.total_seconds() // 60)})
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


async def _pending(request: web.Request, ctx: Ctx) -> dict[str, Any]:
    return {"count": await store.pending_count(ctx.db), "url": PREFIX}


async def _decisions_today(request: web.Request, ctx: Ctx) -> dict[str, Any]:
    today = ctx.clock.now().date()
    counts = await store.decisions_on(ctx.db, today)
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
